"""TunerSettings: every setting, the replay's engine included, is checked when built, not at the first trial."""

import pytest

from ewsjf.bindings.tuned_queue import TunedEWSJFQueue
from ewsjf_core.tuner import TunerSettings
from ewsjf_core.tuner.settings import EXECUTORS, MIN_GUARD_S, MIN_LIVE_TRIAL_S, MODES


@pytest.mark.parametrize("engine, message", [
    ({"token_budgte": 4096}, "no field\\(s\\) token_budgte"),
    ({"max_running": 0}, "max_running must be an integer >= 1"),
    ({"token_budget": 64, "max_running": 128}, "token_budget \\(64\\) must be >= max_running"),
    (["token_budget"], "must be a mapping"),
])
def test_an_engine_the_replay_could_not_build_is_refused_naming_it(engine, message):
    with pytest.raises(ValueError, match=message):
        TunerSettings(engine=engine)
    with pytest.raises(ValueError, match=message):
        TunerSettings().replace(engine=engine)


def test_a_valid_engine_is_kept_as_given():
    engine = {"token_budget": 4096, "max_running": 64, "kv_blocks": 900, "waiting_head_share": 0.25}
    assert TunerSettings(engine=engine).engine == engine
    assert TunerSettings.from_mapping({"engine": engine}).engine == engine


@pytest.mark.parametrize("values, field", [
    ({"state_path": 5}, "state_path"),          # would have written the state to file descriptor 5
    ({"state_path": ""}, "state_path"),
    ({"trials_per_window": "8"}, "trials_per_window"),
    ({"window_requests": 0}, "window_requests"),
    ({"worker_nice": 40}, "worker_nice"),
    ({"keep_top": True}, "keep_top"),
    ({"window_s": float("nan")}, "window_s"),
    ({"duty_cycle": 1.5}, "duty_cycle"),
    ({"replay_budget": 0}, "replay_budget"),
    ({"rollback_min_samples": 0}, "rollback_min_samples"),
    ({"min_window_depth": -1}, "min_window_depth"),
    ({"guard_s": 10 ** 400}, "guard_s"),
    ({"trial_timeout_s": 5e-324}, "trial_timeout_s"),   # a denormal: every trial timed out at once
    ({"trial_timeout_s": 0.0009}, "trial_timeout_s"),
    ({"live_trial_s": 5e-324}, "live_trial_s"),   # every live trial ended at once, saw no request, and failed
    ({"live_trial_s": 0.0009}, "live_trial_s"),
    ({"guard_s": 5e-324}, "guard_s"),   # an empty baseline window: the guard never armed
    ({"guard_s": 0.009}, "guard_s"),
    ({"mode": None}, "mode"),
    ({"weights": 3}, "weights"),
    ({"weights": {"l4": -1}}, "RewardWeights.l4"),
    ({"optimizer": {"acq_func": "bogus"}}, "OptimizerSettings.acq_func"),   # skopt would refuse it mid-trial
    ({"optimizer": {"n_points": 0}}, "OptimizerSettings.n_points"),
    ({"optimizer": {"xi": "a"}}, "OptimizerSettings.xi"),
])
def test_every_setting_is_typed_and_bounded_naming_it(values, field):
    with pytest.raises(ValueError, match=field):
        TunerSettings.from_mapping(values)


def test_the_shortest_live_trial_and_guard_are_accepted():
    s = TunerSettings(mode="live", live_trial_s=MIN_LIVE_TRIAL_S, guard_s=MIN_GUARD_S)
    assert (s.live_trial_s, s.guard_s) == (1e-3, 1e-2)


def test_settings_from_a_file_take_ints_for_floats_and_none_for_no_budget():
    s = TunerSettings.from_mapping({"window_s": 60, "replay_budget": None, "weights": {"l1": 0},
                                    "optimizer": {"acq_func": "LCB", "xi": 0}})
    assert s.window_s == 60.0 and type(s.window_s) is float and s.replay_budget is None
    assert s.weights.l1 == 0.0 and s.optimizer.acq_func == "LCB"
    assert TunerSettings() == TunerSettings.from_mapping({})


def test_live_mode_with_a_process_executor_is_refused_naming_both_fields():
    """Live trials act on the serving queue: the Tuner cannot run them in a worker process, so the settings
    refuse the pair when built rather than pass validation and fail when the tuner starts."""
    with pytest.raises(ValueError, match="mode.*executor"):
        TunerSettings(mode="live", executor="process")
    with pytest.raises(ValueError, match="mode.*executor"):
        TunerSettings(mode="live").replace(executor="process")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("executor", EXECUTORS)
def test_every_mode_and_executor_the_settings_accept_builds_a_tuner(mode, executor):
    try:
        settings = TunerSettings(mode=mode, executor=executor)
    except ValueError:
        assert (mode, executor) == ("live", "process")
        return
    queue = TunedEWSJFQueue(settings=settings)   # the host's default objective for the mode
    try:
        assert queue.tuner.settings is settings
    finally:
        queue.stop_tuner()
