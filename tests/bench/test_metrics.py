"""bench/metrics.py: the measured requests (a replay's warm-up left out of every latency figure)."""

from __future__ import annotations

import numpy as np
import pytest

from ewsjf.bench.metrics import summarize
from ewsjf.bindings.baselines import FCFSQueue
from ewsjf_core.sim import EngineConfig, VirtualClock, Workload, simulate


class _TenMs:
    def step_time(self, p, a, d, k, s=0):
        return 0.01


def _replay():
    # A long prompt first (it holds the engine for a few steps), then two short ones behind it.
    w = Workload(np.array([0.0, 0.0, 0.001]), np.array([20000, 10, 12]), np.array([2, 2, 2]))
    clock = VirtualClock()
    return simulate(w, FCFSQueue(clock=clock), _TenMs(), EngineConfig(token_budget=8192), clock=clock)


def test_latencies_count_the_requests_from_measured_from_on():
    res = _replay()
    ttft = res.first_token_s - res.workload.arrival_s
    whole = summarize(res, (100, 1000), step_time=_TenMs())
    later = summarize(res, (100, 1000), step_time=_TenMs(), measured_from=1)
    assert whole["ttft_s"]["mean"] == pytest.approx(ttft.mean())
    assert later["ttft_s"]["mean"] == pytest.approx(ttft[1:].mean())
    assert later["class_sizes"] == {"short": 2, "medium": 0, "long": 0}
    assert later["longest_wait_s"] == pytest.approx(float(np.max((res.first_scheduled_s - res.workload.arrival_s)[1:])))
    assert later["slowdown"]["n"] == 2
    # Counts and rates still cover the whole run.
    assert later["requests"] == 3 and later["measured_from"] == 1
    assert later["output_tps"] == whole["output_tps"] and later["makespan_s"] == whole["makespan_s"]


@pytest.mark.parametrize("bad", [-1, 3, 10])
def test_measured_from_out_of_range_is_refused(bad):
    with pytest.raises(ValueError, match="measured_from"):
        summarize(_replay(), (100, 1000), measured_from=bad)
