"""Short CI version of the soak through vLLM's real scheduler (the full run: python -m ewsjf.bench.soak_vllm)."""

import math

from ewsjf.bench.soak_vllm import SoakSettings, run_soak


def test_short_soak_loses_nothing_and_keeps_the_cost_model_sane():
    report = run_soak(SoakSettings(steps=1200, windows=3, tuner=False, check_timing=False, abort_prob=0.02,
                                   preempt_every=40, churn_steps=50, seed=3))
    assert not report.failures, report.failures
    assert report.added > 50 and report.aborted > 0 and report.preemptions > 0
    assert report.finished + report.aborted == report.added
    assert all(math.isfinite(w.cost_error) for w in report.windows)
