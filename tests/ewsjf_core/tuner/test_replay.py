"""Replay mode through the built-in sim, and the tuned queue driven from the sim's step hook."""

import numpy as np

from ewsjf.bindings.ewsjf_queue import EWSJFQueue
from ewsjf_core.config import EWSJFConfig
from ewsjf.bench.traces import arrivals
from ewsjf_core.sim.workload import Workload
from ewsjf_core.tuner import ProcessExecutor, ThreadExecutor, TrialContext, TunerSettings, WindowRecorder
from ewsjf_core.tuner.replay import CostModelStepTime, ReplayObjective

from .helpers import poor_config

COEFFS = (7e-3, 2e-5, 5e-10, 3e-4)
STEP = CostModelStepTime(*COEFFS)


def workload(n=400, rate=12.0, cv=3.0, seed=0):
    rng = np.random.default_rng(seed)
    prompt = np.where(rng.random(n) < 0.6, rng.integers(20, 300, n), rng.integers(1500, 6000, n))
    out = rng.integers(5, 120, n)
    return Workload(arrivals(n, rate, cv, seed), prompt, out, name="test-mixed")


def _trial_context(rec, end):
    """What ReplayObjective.prepare sees of the serving side: a TrialContext, nothing of a tuner."""
    return TrialContext(clock=lambda: end, recorder=rec,
                        settings=TunerSettings(window_s=1e9, min_window_requests=50),
                        config=EWSJFConfig, cost_coefficients=lambda: COEFFS, queue_cap=20.0,
                        wait=lambda s: False)


def context():
    w = workload()
    rec = WindowRecorder()
    for i in range(len(w)):
        rec.on_arrival(i, 100.0 + float(w.arrival_s[i]), int(w.prompt_tokens[i]))
        rec.on_finish(i, int(w.output_tokens[i]))
    return ReplayObjective(EWSJFQueue).prepare(_trial_context(rec, 100.0 + float(w.arrival_s[-1])))


def test_replay_scores_every_candidate_on_the_same_window_deterministically():
    obj = ReplayObjective(EWSJFQueue)
    ctx = context()
    assert len(ctx.workload) == 400 and ctx.workload.arrival_s[0] == 0.0
    a = obj.evaluate(ctx, EWSJFConfig())
    b = obj.evaluate(ctx, EWSJFConfig())
    p = obj.evaluate(ctx, poor_config())
    for out in (a, p):
        assert out["metrics"]["completed"] == 400
        assert set(out["terms"]) == {"compactness", "load_balance", "queue_count_penalty", "latency_penalty"}
        assert np.isfinite(out["reward"])
    strip = lambda o: {k: v for k, v in o["metrics"].items() if not k.startswith("replay_")}  # noqa: E731
    assert a["reward"] == b["reward"] and strip(a) == strip(b)
    n = obj.evaluate(ctx, EWSJFConfig(a_u=0.0, b_u=0.0, a_f=0.0, b_f=1.0))
    assert len({a["reward"], p["reward"], n["reward"]}) > 1          # the parameters matter to the score


def test_replay_in_worker_process_matches_in_process():
    obj = ReplayObjective(EWSJFQueue)
    ctx = context()
    ex = ProcessExecutor(nice=5)
    try:
        remote = ex.call(obj.evaluate, ctx, poor_config(), timeout=60)
    finally:
        ex.close()
    local = ThreadExecutor().call(obj.evaluate, ctx, poor_config(), timeout=60)
    assert remote["reward"] == local["reward"] and remote["terms"] == local["terms"]
