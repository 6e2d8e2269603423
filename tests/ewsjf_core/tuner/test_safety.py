"""A tuner that raises or hangs never stops scheduling: the last good parameters stay in force."""

import threading
import time

import pytest

from ewsjf.bindings.ewsjf_queue import EWSJFQueue
from ewsjf_core.tuner import (FunctionObjective, ProcessExecutor, ThreadExecutor, TrialError, TrialTimeout, Tuner,
                              TunerSettings)

from .helpers import SPACE, hanging, poor_config, quadratic, raising


def serve_while(queue, cond, max_s=5.0):
    """Scheduling on this thread (add, begin_step, pop), one round at least (a tuner whose trials fail at once may
    have stopped before this thread's first look at cond()), then while cond() holds: returns requests served."""
    served = 0
    rid = 0
    t_end = time.monotonic() + max_s
    while served == 0 or (cond() and time.monotonic() < t_end):
        for _ in range(8):
            queue.add(rid, 1 + (rid * 37) % 3000, arrival_time=float(rid))
            rid += 1
        queue.begin_step(float(rid))
        for _ in range(8):
            queue.pop()
            served += 1
    return served


def settings(**kw):
    base = dict(trials_per_window=3, executor="thread", trial_timeout_s=0.3, duty_cycle=1.0,
                max_consecutive_failures=3, guard_s=0.1)
    base.update(kw)
    return TunerSettings(**base)


def test_raising_objective_keeps_last_good_and_scheduling_goes_on():
    q = EWSJFQueue(poor_config())
    good = q.config
    t = Tuner(q, FunctionObjective(raising, SPACE.names), settings(), executor=ThreadExecutor()).start()
    served = serve_while(q, lambda: t.running)
    t.stop()
    assert t.stopped_reason.startswith("3 consecutive")
    assert [r.status for r in t.state.history] == ["error"] * 3
    assert "objective exploded" in t.state.history[0].error
    assert q.config is good and served > 0
    q.add("after", 10, 0.0)
    q.begin_step(1.0)
    assert q.pop() == "after"


def test_hanging_objective_is_abandoned_and_scheduling_goes_on():
    q = EWSJFQueue(poor_config())
    good = q.config
    t = Tuner(q, FunctionObjective(hanging, SPACE.names), settings(), executor=ThreadExecutor(max_abandoned=2))
    t0 = time.monotonic()
    t.start()
    served = serve_while(q, lambda: t.running)
    t.stop()
    assert time.monotonic() - t0 < 10.0         # two 0.3 s timeouts, then the tuner gives up
    assert [r.status for r in t.state.history] == ["timeout", "timeout", "error"]   # then: executor broken
    assert t.stopped_reason.startswith("executor broken")
    assert q.config is good and served > 0


class HangingLive:
    """A live-mode objective (its candidate is in force during the trial) that hangs."""
    stateless = False
    in_process = True
    applies_candidate = True

    def prepare(self, ctx):
        return True

    def evaluate(self, ctx, config):
        time.sleep(30)


def test_hanging_live_trial_restores_last_good():
    q = EWSJFQueue(poor_config())
    good = q.config
    t = Tuner(q, HangingLive(), settings(mode="live", live_trial_s=0.1, trial_timeout_s=0.1),
              executor=ThreadExecutor(max_abandoned=5))
    rec = t.run_trial()
    assert rec.status == "timeout"
    assert q.config == good                  # the candidate that was in force is gone again


def test_objective_returning_nan_is_a_failure():
    q = EWSJFQueue(poor_config())
    t = Tuner(q, FunctionObjective(lambda v: float("nan"), SPACE.names), settings(), executor=ThreadExecutor())
    assert t.run_trial().status == "error"
    assert q.config == poor_config()


def _slow(x):
    time.sleep(x)
    return x


def test_process_executor_kills_a_hung_worker_and_recovers():
    ex = ProcessExecutor(nice=5)
    try:
        assert ex.call(_slow, 0.0, timeout=30) == 0.0
        with pytest.raises(TrialTimeout):
            ex.call(_slow, 30.0, timeout=0.3)
        with pytest.raises(TrialError, match="ZeroDivisionError"):
            ex.call(divmod, 1, 0, timeout=30)
        assert ex.call(_slow, 0.0, timeout=30) == 0.0
    finally:
        ex.close()


def test_background_thread_tunes_and_applies_with_low_duty_cycle():
    q = EWSJFQueue(poor_config())
    t = Tuner(q, FunctionObjective(quadratic, SPACE.names),
              settings(trials_per_window=4, duty_cycle=0.5, trial_timeout_s=10), executor=ThreadExecutor())
    t.start()
    served = serve_while(q, lambda: t.state.applied == 0, max_s=20)
    t.stop()
    assert t.state.applied == 1 and served > 0
    best = max((r for r in t.state.history[:4]), key=lambda r: r.reward)
    assert SPACE.from_config_values(q.config) == SPACE.clip(best.point)
    assert best.reward > quadratic(SPACE.as_mapping(SPACE.from_config_values(poor_config())))
    assert not t.running
    m = t.metrics()
    assert m["trials"] >= 4 and m["applied"] == 1 and m["params"] == SPACE.as_mapping(SPACE.clip(best.point))


def test_process_executor_takes_the_longest_trial_timeout_the_settings_allow():
    """Connection.poll refused more than 2**31 ms: every replay trial of a tuner with trial_timeout_s above
    ~25 days failed (the tuner then stopped), and the next call read the answer of the one before."""
    ex = ProcessExecutor(nice=5)
    try:
        assert ex.call(abs, -3, timeout=TunerSettings(trial_timeout_s=1e9).trial_timeout_s) == 3
        assert ex.call(abs, -4, timeout=30) == 4
    finally:
        ex.close()


@pytest.mark.parametrize("duty_cycle, trial_interval_s", [(1e-300, 0.0), (1e-12, 1e9), (0.25, 0.0), (1.0, 5.0)])
def test_the_background_pause_is_one_a_thread_can_wait_for_every_duty_cycle(duty_cycle, trial_interval_s):
    """duty_cycle 1e-12 after a 1 s trial asked Event.wait for 1e12 s: OverflowError, counted as a loop error
    with no pause at all, so trials ran back to back until the tuner stopped itself."""
    t = Tuner(EWSJFQueue(), FunctionObjective(quadratic, SPACE.names),
              settings(duty_cycle=duty_cycle, trial_interval_s=trial_interval_s), executor=ThreadExecutor())
    for busy in (0.0, 1e-9, 1.0, 1e9):
        pause = t.pause_after(busy)
        assert trial_interval_s <= pause <= 1e9
        if duty_cycle < 1:
            assert pause >= min(busy * (1 - duty_cycle) / duty_cycle, 1e9)
    done = threading.Event()
    threading.Timer(0.01, done.set).start()
    assert done.wait(t.pause_after(1.0))   # accepted: returns when set, not OverflowError


def test_stop_never_waits_for_a_trial_in_flight():
    ex = ProcessExecutor(nice=5)
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("r", _catch(lambda: ex.call(_slow, 30.0, timeout=60))))
    t.start()
    time.sleep(1.5)                      # the worker is up and sleeping in the call
    t0 = time.monotonic()
    ex.close()
    t.join(10)
    assert time.monotonic() - t0 < 5.0 and not t.is_alive()
    assert isinstance(box["r"], TrialError)


def _catch(fn):
    try:
        return fn()
    except Exception as e:  # noqa: BLE001
        return e
