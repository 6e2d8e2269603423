"""The Workload type: per-request arrays, slicing, rate scaling, concatenation."""

from __future__ import annotations

import numpy as np
import pytest

from ewsjf_core.sim import Workload, concat


def w3():
    return Workload(np.array([0.0, 1.0, 2.0]), np.array([10, 20, 30]), np.array([1, 2, 3]), name="w")


def test_workload_ops():
    w = w3()
    assert len(w) == 3 and w.duration_s == 2.0 and w.rate == 1.0
    assert w.priority.tolist() == [0, 0, 0]
    s = w.slice(0.5, 2.0)
    assert s.arrival_s.tolist() == [0.5] and s.prompt_tokens.tolist() == [20]
    assert w.head(2).prompt_tokens.tolist() == [10, 20]
    assert w.scale_rate(2.0).arrival_s.tolist() == [0.0, 0.5, 1.0]
    with pytest.raises(ValueError):
        w.scale_rate(0)
    with pytest.raises(ValueError, match="sorted"):
        Workload(np.array([1.0, 0.0]), np.array([1, 1]), np.array([1, 1]))
    with pytest.raises(ValueError, match=">= 1"):
        Workload(np.array([0.0]), np.array([0]), np.array([1]))
    with pytest.raises(ValueError):
        w.arrival_s[0] = 5.0   # read-only
    m = concat([w, w.scale_rate(2.0)])
    assert len(m) == 6 and np.all(np.diff(m.arrival_s) >= 0)
    assert w.describe()["requests"] == 3
