"""Winner application and the rollback guard, on a controlled clock and recorded traffic."""

import numpy as np
import pytest

from ewsjf_core.tuner.guard import calibration
from ewsjf_core.tuner import FunctionObjective, ThreadExecutor, Tuner, TunerSettings, WindowRecorder

from .helpers import SPACE, FakeQueue, close, point_of, poor_config, quadratic

COST = 0.01          # C_prefill of every request (seconds): slowdown = TTFT / COST


def feed(rec, start, end, ttft, n=50, first_id=0):
    for i in range(n):
        t = start + (end - start) * i / n
        rid = first_id + i
        rec.on_arrival(rid, t, 100)
        rec.on_first_token(rid, t + ttft)
        rec.on_finish(rid, 10, t + ttft + 0.1)


def setup(threshold=0.25):
    now = [0.0]
    q = FakeQueue(poor_config(), clock=lambda: now[0])
    rec = WindowRecorder()
    t = Tuner(q, FunctionObjective(quadratic, SPACE.names),
              TunerSettings(trials_per_window=3, executor="thread", guard_s=60, rollback_min_samples=20,
                            rollback_threshold=threshold),
              recorder=rec, executor=ThreadExecutor(), cost_coefficients=lambda: (COST, 0.0, 0.0, 0.0))
    feed(rec, 0, 60, ttft=COST)                 # before the swap: slowdown 1
    now[0] = 60.0
    for _ in range(3):
        t.run_trial()
    assert t.state.applied == 1 and t.guard.pending is not None
    return t, q, rec, now


def test_winner_of_window_is_applied():
    t, q, rec, now = setup()
    best = max(t.state.history, key=lambda r: r.reward)
    assert close(point_of(q.config), SPACE.clip(best.point))
    assert t.state.history[0].point == point_of(poor_config())     # the parameters in force go first
    assert best.reward > t.state.history[0].reward
    assert t.check_guard() is None                                 # guard_s not over yet


def test_rollback_when_live_latency_worsens():
    t, q, rec, now = setup()
    applied = t.state.history.index(max(t.state.history, key=lambda r: r.reward))
    feed(rec, 60, 120, ttft=2 * COST, first_id=1000)   # after: slowdown 2 > 1.25
    now[0] = 121.0
    assert t.check_guard() == "rolled_back"
    assert q.config == poor_config()
    assert t.state.rollbacks == 1 and t.state.history[applied].status == "rolled_back"
    assert t.state.last_good == SPACE.as_mapping(point_of(poor_config()))
    assert t.state.history[applied].metrics["guard_after"] == pytest.approx(2.0)


def test_rollback_restores_the_tuned_parameters_and_keeps_what_the_host_set_since():
    """The rollback reinstated the whole config in force before the swap: a host's set_config while the guard
    watched (here a starvation bound) was silently undone."""
    t, q, rec, now = setup()
    q.set_config(q.config.replace(max_wait=30.0))
    feed(rec, 60, 120, ttft=2 * COST, first_id=1000)
    now[0] = 121.0
    assert t.check_guard() == "rolled_back"
    assert q.config == poor_config().replace(max_wait=30.0)


def test_swap_kept_when_latency_holds():
    t, q, rec, now = setup()
    feed(rec, 60, 120, ttft=1.1 * COST, first_id=1000)   # within the 25% threshold
    now[0] = 121.0
    assert t.check_guard() == "kept"
    assert t.state.last_good == SPACE.as_mapping(point_of(q.config))
    assert q.config != poor_config()


def test_guard_waits_for_enough_samples_then_keeps():
    t, q, rec, now = setup()
    feed(rec, 60, 61, ttft=5 * COST, n=5, first_id=1000)   # too few to judge
    now[0] = 121.0
    assert t.check_guard() is None
    now[0] = 60.0 + 4 * 60 + 1                             # waited long enough: judged with what exists
    assert t.check_guard() == "kept"


def test_calibration_is_live_over_replayed_slowdown_on_the_same_requests():
    rec = WindowRecorder()
    feed(rec, 0, 10, ttft=2 * COST, n=10)
    rec.on_arrival("no-first-token", 10.0, 100)
    snap = rec.snapshot(0, 10)
    replay = [COST] * 10 + [5 * COST]       # aligned by arrival order; the last one has no live TTFT
    rho, n = calibration(snap, replay, 1e-4)
    assert n == 10 and rho == pytest.approx(2.0)
    assert calibration(snap, [], 1e-4) == (pytest.approx(np.nan, nan_ok=True), 0)


def test_calibration_is_not_swung_by_a_few_replay_outliers():
    """The figure the guard compares before and after a swap: one replayed request 1000x slower among 100
    (the mean slowdowns' ratio would read 0.09) leaves the typical request's live/replay factor about 1."""
    rec = WindowRecorder()
    feed(rec, 0, 10, ttft=COST, n=100)
    snap = rec.snapshot(0, 10)
    replay = [COST] * 99 + [1000 * COST]
    rho, n = calibration(snap, replay, 1e-4)
    assert n == 100 and 0.9 < rho < 1.1
    slower = [COST / 3] * 100      # live 3x slower than replayed on every request
    assert calibration(snap, slower, 1e-4)[0] == pytest.approx(3.0)
