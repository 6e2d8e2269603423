"""TunedEWSJFQueue: the queue with the Bayesian tuner attached, driven synchronously (tick()) in a
controlled or virtual clock: live trials in two phases, replay trials from the sim's step hook."""

import dataclasses

import numpy as np
import pytest

from ewsjf.bindings.tuned_queue import TunedEWSJFQueue, bench_queue
from ewsjf_core.sim.engine import EngineConfig, VirtualClock, simulate
from ewsjf_core.tuner import ThreadExecutor, TunerSettings, WindowRecorder
from tests.ewsjf_core.tuner.helpers import SPACE, point_of, poor_config, quadratic
from tests.ewsjf_core.tuner.test_replay import COEFFS, STEP, workload

COST = 0.01


def test_live_trials_score_the_candidate_in_force_and_apply_the_best():
    now = [0.0]
    settings = TunerSettings(mode="live", trials_per_window=3, live_trial_s=10.0, guard_s=5.0,
                             rollback_min_samples=1000)
    q = TunedEWSJFQueue(poor_config(), clock=lambda: now[0], settings=settings, executor=ThreadExecutor(),
                        stats_every=4, cost_coefficients=lambda: (COST, 0.0, 0.0, 0.0))
    in_force = []
    rid = 0
    while now[0] < 40.0:
        # The "engine": a request's TTFT grows with the in-force parameters' distance to the optimum.
        slowdown = 1.0 - 10.0 * quadratic(SPACE.as_mapping(point_of(q.config)))
        q.add(rid, 100, arrival_time=now[0])
        q.begin_step(now[0])
        assert q.pop() == rid
        q.on_first_token(rid, now[0] + COST * slowdown)
        q.observe_step(0.01, 100, 0)
        in_force.append(tuple(point_of(q.config)))
        q.tick()
        rid += 1
        now[0] += 0.25
    hist = q.tuner.state.history
    assert [r.status for r in hist[:3]] == ["ok"] * 3
    assert hist[0].point == point_of(poor_config())
    for r in hist[:3]:
        assert tuple(SPACE.clip(r.point)) in in_force                     # each candidate really served
        expected = 1.0 - 10.0 * quadratic(SPACE.as_mapping(r.point))
        assert abs(r.metrics["ttft_mean_s"] / COST - expected) < 1e-6
        assert r.terms["compactness"] > 0                                 # partition samples were taken
    best = max(hist[:3], key=lambda r: r.reward)
    assert q.tuner.state.applied == 1
    assert len(hist) == 3 or hist[3].window == 1
    assert best.point != hist[0].point


def test_tuned_queue_tunes_in_virtual_time_from_sim_hook():
    w = workload(n=600)
    settings = TunerSettings(window_s=20.0, min_window_requests=100, trials_per_window=3, executor="thread")
    clock = VirtualClock()
    q = TunedEWSJFQueue(poor_config(), clock=clock, settings=settings, cost_coefficients=lambda: COEFFS)
    res = simulate(w, q, STEP, EngineConfig(), clock=clock, on_step=lambda *a: q.tick(trial_every_s=1.0))
    assert np.isfinite(res.first_token_s).all()
    m = q.stats()["tuner"]
    assert m["trials"] >= 3 and m["window"] >= 1 and m["failures"] == 0
    assert all(r.window == 0 for r in q.tuner.state.history[:3])
    assert q.stats()["policy"] == "ewsjf-tuned"


def _run_with_budget(budget):
    """A tuned replay whose windows (3 trials of at most 200 requests) come every 5 virtual seconds
    unless the replay budget holds them back. Per window: the arrivals and replayed requests just
    before its first trial, and its trials' replay size."""
    w = workload(n=1200, rate=40.0)
    settings = TunerSettings(window_s=10.0, window_requests=100, min_window_requests=100,
                             min_window_depth=0.0, max_replay_requests=200, trials_per_window=3,
                             retune_every_s=5.0, replay_budget=budget, executor="thread",
                             rollback_min_samples=10 ** 9)
    clock = VirtualClock()
    q = TunedEWSJFQueue(poor_config(), clock=clock, settings=settings, cost_coefficients=lambda: COEFFS)
    q.sim_trial_every_s = 1.0
    opened = {}

    def on_step(*a):
        before = (q.recorder.arrivals, q.tuner.context.budget.replayed)
        q.on_sim_step(*a)
        for r in q.tuner.state.history:
            opened.setdefault(r.window, (*before, r.metrics.get("replayed_requests")))

    simulate(w, q, STEP, EngineConfig(), clock=clock, on_step=on_step)
    return q, opened


def test_replay_budget_bounds_the_trials_replay_by_the_recorded_traffic():
    q, opened = _run_with_budget(1.0)
    tuner = q.stats()["tuner"]
    assert len(opened) >= 2 and tuner["windows_refused_by_budget"] > 0 and tuner["failures"] == 0
    hist = q.tuner.state.history     # (no guard replays here: the guard never has enough samples)
    assert tuner["replayed_requests"] == sum(r.metrics["replayed_requests"] for r in hist)
    first = sum(r.metrics["replayed_requests"] for r in hist if r.window == 0)     # free
    for window, (arrivals, replayed, size) in opened.items():
        assert 100 <= size <= 200
        if window > 0:      # the rule: a later window opens only when its trials fit in the arrivals
            assert replayed - first + 3 * size <= arrivals
    assert tuner["replayed_requests"] <= first + q.recorder.arrivals
    free, free_opened = _run_with_budget(None)      # the same run unbounded tunes more windows
    assert len(free_opened) > len(opened) + 2
    assert free.stats()["tuner"]["replayed_requests"] > q.recorder.arrivals + first


def test_the_bench_tuner_replays_on_the_engine_the_bench_runs():
    engine = EngineConfig(token_budget=4096, max_running=64, kv_blocks=500, waiting_head_share=0.25)
    q = bench_queue(VirtualClock(), engine=engine)
    assert EngineConfig(**q.tuner_settings.engine) == engine
    mine = bench_queue(VirtualClock(), settings=TunerSettings(engine={"kv_blocks": 900}), engine=engine)
    assert EngineConfig(**mine.tuner_settings.engine) == dataclasses.replace(engine, kv_blocks=900)
    assert bench_queue(VirtualClock()).tuner_settings.engine == {}   # no engine given: the sim's defaults



@pytest.mark.parametrize("value, message", [
    ("{bad", r"EWSJF_TUNER is not valid JSON"),
    ("[1]", r"EWSJF_TUNER must be a JSON object"),
    ('{"replay_budgt": 4}', r"EWSJF_TUNER: TunerSettings has no setting\(s\) replay_budgt"),
    ('{"replay_budget": -1}', r"EWSJF_TUNER: TunerSettings.replay_budget must be"),
    ('{"trial_every_s": "x"}', r"EWSJF_TUNER: trial_every_s must be a finite number > 0, got 'x'"),
    ('{"trial_every_s": -1}', r"EWSJF_TUNER: trial_every_s must be a finite number > 0, got -1"),
    ('{"weights": {"l9": 1}}', r"EWSJF_TUNER: .*l9"),
])
def test_a_bad_bench_tuner_override_is_refused_naming_the_variable_and_setting(monkeypatch, value, message):
    """EWSJF_TUNER ('[1]': "pop expected at most 1 argument, got 2"; '{"trial_every_s": "x"}': "could not convert
    string to float") failed without naming the variable, and a negative trial interval was taken."""
    monkeypatch.setenv("EWSJF_TUNER", value)
    with pytest.raises(ValueError, match=message):
        bench_queue(VirtualClock())


def test_the_bench_tuner_override_sets_settings_and_the_trial_interval(monkeypatch):
    monkeypatch.setenv("EWSJF_TUNER", '{"replay_budget": null, "trial_every_s": 2, "weights": {"l4": 2.0}}')
    q = bench_queue(VirtualClock())
    assert q.tuner_settings.replay_budget is None and q.sim_trial_every_s == 2.0
    assert q.tuner_settings.weights.l4 == 2.0 and q.tuner_settings.trials_per_window == 8   # the rest: the bench's


def test_the_recorder_given_is_the_one_the_queue_and_its_tuner_use():
    """An empty WindowRecorder is falsy (its len is 0): `recorder or WindowRecorder()` dropped the one given (its
    max_requests, its clock) for a default one."""
    rec = WindowRecorder(max_requests=600)
    q = TunedEWSJFQueue(poor_config(), clock=VirtualClock(), settings=TunerSettings(executor="thread"), recorder=rec)
    assert q.recorder is rec and q.tuner.recorder is rec
    q.add("r", 100, arrival_time=0.0)
    assert rec.arrivals == 1


def test_a_window_larger_than_the_recorder_keeps_is_refused_naming_the_setting():
    """min_window_requests above what the recorder keeps (20,000 by default) was accepted, and the tuner then
    never opened a window: no trial, no error, on any traffic."""
    settings = TunerSettings(min_window_requests=20_001, executor="thread")
    with pytest.raises(ValueError, match=r"TunerSettings.min_window_requests \(20001\) is more than the recorder"):
        TunedEWSJFQueue(poor_config(), clock=VirtualClock(), settings=settings)
    q = TunedEWSJFQueue(poor_config(), clock=VirtualClock(), settings=settings,
                        recorder=WindowRecorder(max_requests=20_001))
    assert q.tuner.settings.min_window_requests == q.recorder.max_requests


def test_a_refused_resize_leaves_the_recorded_sizes_as_they_were():
    q = TunedEWSJFQueue(clock=lambda: 0.0, settings=TunerSettings(executor="thread"), executor=ThreadExecutor())
    q.add("a", 1000, cached_tokens=992)
    q.add("b", 100)
    with pytest.raises(ValueError, match="'b'"):
        q.resize_all(lambda rid: (1000, 0, None) if rid == "a" else (100, 200, None))   # b: more cached than prompt
    assert q.recorder.snapshot().cached_tokens.tolist() == [992, 0]
    q.resize_all(lambda rid: (1000, 0, None) if rid == "a" else (100, 0, None))
    assert q.recorder.snapshot().cached_tokens.tolist() == [0, 0]
