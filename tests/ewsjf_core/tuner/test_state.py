"""Save/restore: a restarted tuner resumes with its history, best and last good parameters."""

import json

import pytest

from ewsjf_core.tuner import FunctionObjective, ThreadExecutor, TrialRecord, Tuner, TunerSettings, TunerState

from .helpers import SPACE, FakeQueue, close, point_of, poor_config, quadratic


def make(path, queue, seed=1, per_window=4, **settings):
    return Tuner(queue, FunctionObjective(quadratic, SPACE.names),
                 TunerSettings(seed=seed, trials_per_window=per_window, executor="thread", state_path=str(path),
                               retune_every_s=0.0, **settings),
                 executor=ThreadExecutor())


def test_json_round_trip(tmp_path):
    st = TunerState(seed=3, mode="replay", space=SPACE.to_dict(), window=2, best_point=[1e-3, 1, 0, 0.1, 5],
                    best_reward=-0.5, last_good=dict(zip(SPACE.names, [1e-3, 1, 0, 0.1, 5])), applied=1,
                    rollbacks=1, failures=2,
                    window_seeds=[[1e-3, 1, 0, 0.1, 5]])
    st.add_trial(TrialRecord(1, 0, [1e-3, 1, 0, 0.1, 5], -0.5, {"latency_penalty": 0.5}, {"x": 1.0}), keep=10)
    st.add_trial(TrialRecord(2, 0, [], None, status="error", error="boom"), keep=10)
    st.add_trial(TrialRecord(3, 0, [0, 0, 0, 0, 2], float("nan")), keep=10)   # NaN is saved as null
    path = tmp_path / "s.json"
    st.save(path)
    back = TunerState.load(path)
    assert back.to_json() == json.loads(path.read_text())
    assert back.history[0] == st.history[0] and back.history[1] == st.history[1]
    assert back.history[2].reward is None
    assert (back.seed, back.window, back.best_point, back.last_good, back.applied, back.window_seeds, back.trials) == \
        (3, 2, st.best_point, st.last_good, 1, st.window_seeds, 3)


def test_restart_resumes_exactly_where_it_stopped(tmp_path):
    path = tmp_path / "tuner.json"
    # Uninterrupted: 7 trials (one window of 4 closes and applies its winner, 3 into the next).
    q_ref = FakeQueue(poor_config())
    ref = make(tmp_path / "ref.json", q_ref)
    for _ in range(7):
        ref.run_trial()
    # Interrupted after 5 trials, then a new Tuner on a fresh queue (as after a process restart).
    q1 = FakeQueue(poor_config())
    t1 = make(path, q1)
    for _ in range(5):
        t1.run_trial()
    q2 = FakeQueue(poor_config())
    t2 = make(path, q2)
    assert t2.state.trials == 5
    assert close(point_of(q2.config), point_of(q1.config))   # last good parameters re-applied
    for _ in range(2):
        t2.run_trial()
    assert [(r.point, r.reward) for r in t2.state.history] == [(r.point, r.reward) for r in ref.state.history]
    assert q2.config == q_ref.config
    assert t2.state.best_point == ref.state.best_point


def test_state_for_another_space_or_corrupt_file_starts_afresh(tmp_path):
    path = tmp_path / "tuner.json"
    path.write_text("{not json")
    t = make(path, FakeQueue(poor_config()))
    assert t.state.trials == 0
    t.run_trial()
    assert TunerState.load(path).trials == 1
    t3 = make(path, FakeQueue(poor_config()), seed=99)   # another seed: not resumed
    assert t3.state.trials == 0


def test_bad_version_rejected():
    with pytest.raises(ValueError):
        TunerState.from_json({"version": 999})


@pytest.mark.parametrize("damage", ["nan_last_good", "missing_last_good_key", "string_seed", "missing_seed",
                                    "point_wrong_type", "history_not_list", "space_not_object",
                                    "best_point_wrong_length", "nan_reward", "count_below_newest_trial"])
def test_valid_json_with_wrong_content_warns_and_starts_afresh(tmp_path, caplog, damage):
    path = tmp_path / "tuner.json"
    t = make(path, FakeQueue(poor_config()))
    for _ in range(2):
        t.run_trial()
    d = json.loads(path.read_text())
    if damage == "nan_last_good":
        d["last_good"]["a_u"] = float("nan")
    elif damage == "missing_last_good_key":
        del d["last_good"]["alpha"]
    elif damage == "string_seed":
        d["seed"] = "1"
    elif damage == "missing_seed":
        del d["seed"]
    elif damage == "point_wrong_type":
        d["history"][0]["point"] = "abc"
    elif damage == "history_not_list":
        d["history"] = {"a": 1}
    elif damage == "space_not_object":
        d["space"] = [1, 2]
    elif damage == "best_point_wrong_length":
        d["best_point"] = [1.0]
    elif damage == "nan_reward":
        d["history"][0]["reward"] = float("nan")
    elif damage == "count_below_newest_trial":
        d["trials"] = 1
    path.write_text(json.dumps(d))   # json.dumps writes NaN: valid for Python's json.load
    with pytest.raises(ValueError):
        TunerState.load(path)
    with caplog.at_level("WARNING"):
        t2 = make(path, FakeQueue(poor_config()))
    assert t2.state.trials == 0
    assert "starting afresh" in caplog.text
    t2.run_trial()   # and it runs


def test_history_keeps_the_newest_trials_and_the_count_goes_on(tmp_path):
    # history_limit 1 is raised to what the next proposals read: this window and keep_top=1 earlier one.
    t = make(tmp_path / "tuner.json", FakeQueue(poor_config()), per_window=2, keep_top=1, history_limit=1)
    for _ in range(15):
        t.run_trial()
    assert t.state.trials == 15
    assert [r.trial for r in t.state.history] == [12, 13, 14, 15]
    saved = TunerState.load(tmp_path / "tuner.json")
    assert saved.trials == 15 and [r.trial for r in saved.history] == [12, 13, 14, 15]


def test_a_bounded_history_proposes_what_the_whole_one_does(tmp_path):
    runs = {}
    for limit in (1, 10_000):
        t = make(tmp_path / f"t{limit}.json", FakeQueue(poor_config()), per_window=2, keep_top=1,
                 history_limit=limit)
        proposals = []
        for _ in range(15):
            t.run_trial()
            proposals.append((t.state.history[-1].trial, t.state.history[-1].point))
        runs[limit] = (proposals, t.queue.config)
    assert runs[1] == runs[10_000]
    assert len(TunerState.load(tmp_path / "t10000.json").history) == 15


def test_a_state_file_from_before_the_trial_count_resumes_with_it(tmp_path):
    path = tmp_path / "tuner.json"
    t = make(path, FakeQueue(poor_config()))
    for _ in range(3):
        t.run_trial()
    d = json.loads(path.read_text())
    del d["trials"]
    path.write_text(json.dumps(d))
    assert TunerState.load(path).trials == 3
    t2 = make(path, FakeQueue(poor_config()))
    t2.run_trial()
    assert t2.state.trials == 4 and t2.state.history[-1].trial == 4


def test_a_long_history_on_file_is_trimmed_when_resumed(tmp_path):
    path = tmp_path / "tuner.json"
    t = make(path, FakeQueue(poor_config()), per_window=2, keep_top=0, history_limit=100)
    for _ in range(9):
        t.run_trial()
    t2 = make(path, FakeQueue(poor_config()), per_window=2, keep_top=0, history_limit=3)
    assert t2.state.trials == 9 and [r.trial for r in t2.state.history] == [7, 8, 9]
