"""Soak of the prefill-cost model under vLLM-like step feedback (issue 10, defect 1: windup).

vLLM reports every step, decode-only ones included. Each pattern below feeds the model a stream of steps
(2% timing noise, occasional absurd values) and checks, every CHECK_EVERY steps after a warm-up, that
  - the state is finite and the covariance stays bounded (no windup),
  - C_prefill at the prompt sizes prefilled in the recent past is within 20% of the truth,
  - a decode-only step's predicted time (c0 + cd * d) is within 20% of the truth.
(A direction no recent step excites, e.g. c1 vs c2 when every prompt has one size, is not identifiable
from the feedback: it returns to the prior, by design. That is why the check is on the sizes in use.)

CI runs STEPS steps per pattern (5 patterns, 100k in all). The long soak, 1M steps in all:
    EWSJF_SOAK_STEPS=200000 .venv/bin/python -m pytest -q tests/ewsjf_core/test_cost_model_soak.py
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from ewsjf_core.config import EWSJFConfig
from ewsjf_core.cost_model import PrefillCostModel

STEPS = int(os.environ.get("EWSJF_SOAK_STEPS", "20000"))
CHECK_EVERY = 500
WARMUP = 1000
TRUTH = np.array([0.008, 6e-5, 4e-9, 3e-5])  # c0, c1, c2, cd: deliberately not the config's prior


def _one_size(rng, n):
    """One prompt size (1024) prefilled in ~6% of steps; every step decodes 1-128 tokens."""
    p = np.where(rng.random(n) < 0.06, 1024, 0)
    return p, rng.integers(1, 129, n)


def _mixed(rng, n):
    """30% of steps prefill a log-uniform 16..8192 prompt; decode batch 0-256."""
    p = np.where(rng.random(n) < 0.3, np.exp(rng.uniform(math.log(16), math.log(8192), n)).astype(np.int64), 0)
    return p, rng.integers(0, 257, n)


def _chunked(rng, n):
    """Chunked prefill with a 2048-token budget: a prefill step fills what decode leaves."""
    d = rng.integers(1, 200, n)
    return np.where(rng.random(n) < 0.4, 2048 - d, 0), d


def _bursty(rng, n):
    """Long decode-only stretches (up to 5k steps) between bursts of mixed prefills."""
    p, d = _mixed(rng, n)
    t = np.arange(n)
    p[(t // 5000) % 2 == 1] = 0
    return p, d


def _drifting(rng, n):
    p, d = _mixed(rng, n)
    return p, d


PATTERNS = {"one-size": _one_size, "mixed": _mixed, "chunked": _chunked, "bursty": _bursty,
            "drifting": _drifting}


def _truth_at(pattern: str, t: np.ndarray) -> np.ndarray:
    """Per-step truth (n, 4): fixed, or (drifting) slowly scaled by 1 +- 0.4 over a 50k-step period."""
    scale = 1.0 + 0.4 * np.sin(2 * np.pi * t / 50_000) if pattern == "drifting" else np.ones(t.shape[0])
    return TRUTH[None, :] * scale[:, None]


def _absurd(rng, n, y, p):
    """0.1% of steps are timing glitches (x100 or x0.01); a few are corrupt (NaN, 1e300 s, 1e160 tokens)."""
    y = y.copy()
    p = p.astype(object)
    glitch = rng.random(n) < 1e-3
    y[glitch] *= rng.choice([100.0, 0.01], glitch.sum())
    for i in rng.choice(n, max(3, n // 20000), replace=False):
        kind = rng.integers(3)
        if kind == 0:
            y[i] = math.nan
        elif kind == 1:
            y[i] = 1e300
        else:
            p[i] = 10 ** 160
    return y, p


@pytest.mark.parametrize("pattern", list(PATTERNS))
def test_cost_model_soak(pattern):
    rng = np.random.default_rng(list(PATTERNS).index(pattern))
    p, d = PATTERNS[pattern](rng, STEPS)
    t = np.arange(STEPS)
    truth = _truth_at(pattern, t)
    y = truth[:, 0] + truth[:, 1] * p + truth[:, 2] * p.astype(float) ** 2 + truth[:, 3] * d
    y = y * (1.0 + rng.normal(0.0, 0.02, STEPS))
    y, p_fed = _absurd(rng, STEPS, y, p)
    cfg = EWSJFConfig()
    m = PrefillCostModel(cfg)
    bound = 1.0 / ((1.0 - cfg.cost_forgetting) * cfg.cost_prior_strength)
    yl, pl, dl = y.tolist(), p_fed.tolist(), d.tolist()
    worst = 0.0
    for i in range(STEPS):
        m.observe(yl[i], pl[i], dl[i])
        if i < WARMUP or (i + 1) % CHECK_EVERY:
            continue
        coef = m.coefficients
        assert all(math.isfinite(c) for c in coef), (pattern, i, coef)
        assert m.covariance_bound <= bound * 1.001, (pattern, i, m.covariance_bound)
        c0, c1, c2, cd = truth[i]
        recent = p[max(0, i - 200):i + 1]
        sizes = np.unique(recent[recent > 0])
        if sizes.shape[0]:
            for s in np.quantile(sizes, [0.0, 0.5, 1.0]):
                true_c = c0 + c1 * s + c2 * s * s
                err = abs(m.cost(s) - true_c) / true_c
                worst = max(worst, err)
                assert err <= 0.2, (pattern, i, s, m.cost(s), true_c)
        dm = float(np.median(d[max(0, i - 200):i + 1]))
        pred = coef[0] + coef[3] * dm
        true_d = c0 + cd * dm
        assert abs(pred - true_d) <= 0.2 * true_d, (pattern, i, dm, pred, true_d)
    print(f"{pattern}: {STEPS} steps, worst relative error of C_prefill at the sizes in use {worst:.3f}")
    assert m.resets == 0
    assert m.skipped >= 3  # the corrupt steps were refused, not fitted
    assert worst < 0.2
