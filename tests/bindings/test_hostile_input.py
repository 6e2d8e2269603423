"""Hostile input to the host API (issue 10, defects 3 and 4): every rejection names the field or id and
leaves the queue unchanged; nothing is lost or duplicated."""

from __future__ import annotations

import math
import random

import pytest

from ewsjf.bindings import EWSJFConfig, EWSJFQueue
from ewsjf.bindings.baselines import FCFSQueue, SJFQueue
from ewsjf.bindings.tuned_queue import TunedEWSJFQueue
from ewsjf_core.tuner.settings import TunerSettings
from .helpers import Clock, drain


@pytest.mark.parametrize("make", [EWSJFQueue, FCFSQueue, SJFQueue])
def test_remove_of_a_string_is_one_id(make):
    q = make(clock=Clock(1.0))
    for rid in ("a", "b", "ab"):
        q.add(rid, 10, arrival_time=0.5)
    q.remove("ab")
    assert sorted(drain(q)) == ["a", "b"]
    q.add(7, 10, arrival_time=0.5)
    q.remove(7)   # a non-iterable id is one id too
    assert len(q) == 0
    with pytest.raises(KeyError, match="'zz'"):
        q.remove("zz")


@pytest.mark.parametrize("kwargs,field", [
    ({"prompt_tokens": 10 ** 400}, "prompt_tokens"), ({"prompt_tokens": 2 ** 60}, "prompt_tokens"),
    ({"cached_tokens": 10 ** 400}, "cached_tokens"), ({"arrival_time": 10 ** 400}, "arrival_time"),
    ({"predicted_output_tokens": 10 ** 400}, "predicted_output_tokens"), ({"priority": 10 ** 400}, "priority"),
    ({"arrival_time": float("nan")}, "arrival_time"), ({"priority": 2 ** 63}, "priority"),
])
@pytest.mark.parametrize("make", [EWSJFQueue, FCFSQueue])
def test_ints_beyond_float_range_name_the_field(make, kwargs, field):
    q = make(clock=Clock(1.0))
    args = {"prompt_tokens": 10, "arrival_time": 0.5} | kwargs
    with pytest.raises(ValueError, match=f"request 'x'.*{field}"):
        q.add("x", **args)
    assert len(q) == 0 and "x" not in q


@pytest.mark.parametrize("args,field", [
    ((10 ** 400, 1, 1), "duration_s"), ((math.nan, 1, 1), "duration_s"), ((0.1, -1, 1), "prefill_tokens"),
    ((0.1, 1, 1.5), "decode_tokens"), ((0.1, 1, 1, 1), "at_running_cap"), ((0.1, 1, 1, "false"), "at_running_cap"),
    ((0.1, 1, 1, False, 1), "waiting"),
])
@pytest.mark.parametrize("make", [EWSJFQueue, FCFSQueue])
def test_observe_step_rejections_name_the_field(make, args, field):
    q = make()
    before = q.stats()
    with pytest.raises(ValueError, match=field):
        q.observe_step(*args)
    assert q.stats() == before   # nothing recorded


def test_begin_step_rejects_a_time_beyond_float_range():
    with pytest.raises(ValueError, match="now"):
        EWSJFQueue().begin_step(10 ** 400)


def test_absurd_step_feedback_keeps_the_model_finite():
    q = EWSJFQueue(clock=Clock(1.0))
    for _ in range(50):
        q.observe_step(0.05, 500, 20)
    before = q.stats()["cost_model"]
    for dur, p, d in ((0.05, 10 ** 160, 1), (1e300, 100, 1), (0.05, 100, 10 ** 160), (1e-300, 0, 0)):
        q.observe_step(dur, p, d)
    cm = q.stats()["cost_model"]
    assert all(math.isfinite(cm[k]) for k in ("c0", "c1", "c2", "decode", "prefill_rate_tps"))
    assert cm["skipped_steps"] >= 3
    assert q.prefill_cost(1000) == pytest.approx(before["c0"] + before["c1"] * 1000 + before["c2"] * 1e6,
                                                 rel=0.05)


def test_stats_between_peek_and_pop_changes_nothing():
    cfg = EWSJFConfig(max_wait=3.0, order_chunk=3, repartition_every=7, min_partition_samples=5, min_size=4)
    for seed in range(30):
        runs = []
        for with_stats in (False, True):
            rnd, t = random.Random(seed), [0.0]
            q = EWSJFQueue(cfg, clock=lambda: t[0])
            out = []
            for i in range(80):
                r = rnd.random()
                if r < 0.5:
                    q.add(i, random.Random(i).choice([5, 50, 500, 5000]), arrival_time=t[0])
                elif r < 0.6:
                    q.begin_step(t[0])
                elif len(q):
                    if with_stats:
                        peeked = q.peek()
                        q.stats()
                        assert q.pop() == peeked
                        out.append(peeked)
                    else:
                        out.append(q.pop())
                t[0] += 0.3
            runs.append(out + drain(q))
        assert runs[0] == runs[1], seed


def test_tuned_add_never_fails_after_queueing(monkeypatch):
    q = TunedEWSJFQueue(clock=Clock(1.0), settings=TunerSettings(executor="thread"))
    q.add("a", 10, arrival_time=0.5)

    def broken(*a, **k):
        raise RuntimeError("recorder broke")
    monkeypatch.setattr(q, "_on_arrival", broken)
    q.add("b", 10, arrival_time=0.6)   # queued; the recorder's failure is logged, not raised
    assert "b" in q
    with pytest.raises(ValueError, match="prompt_tokens"):
        q.add("c", 10 ** 400)
    assert "c" not in q and len(q.recorder) == 1


def test_tuned_recorder_rows_stay_aligned_after_a_rejected_add():
    q = TunedEWSJFQueue(clock=Clock(1.0), settings=TunerSettings(executor="thread"))
    q.add("a", 10, arrival_time=0.5)
    with pytest.raises(ValueError):
        q.add("bad", 10, arrival_time=0.5, priority=10 ** 400)
    q.add("b", 20, arrival_time=0.7)
    snap = q.recorder.snapshot()
    assert snap.prompt_tokens.tolist() == [10, 20] and snap.arrival_s.tolist() == [0.5, 0.7]


# ----- set_config: validated before installing; a failed install keeps the old config serving -----
def test_set_config_validates_and_keeps_the_old_config():
    q = EWSJFQueue(clock=Clock(1.0))
    bad = EWSJFConfig()
    object.__setattr__(bad, "max_queues", 8 * 10 ** 11)
    with pytest.raises(ValueError, match="max_queues"):
        q.set_config(bad)
    q.add("a", 10, arrival_time=0.5)
    q.begin_step()
    assert q.config == EWSJFConfig() and drain(q) == ["a"]


def test_failed_install_keeps_the_old_config_serving(monkeypatch):
    q = EWSJFQueue(EWSJFConfig(min_partition_samples=4, repartition_every=0), clock=Clock(1.0))
    for i in range(20):
        q.add(i, 10 * (i + 1), arrival_time=0.01 * i)
    q.begin_step()

    real = type(q._set).resize_window

    def failing(self, new_size):
        if new_size == 500:
            raise MemoryError("simulated")
        real(self, new_size)
    monkeypatch.setattr(type(q._set), "resize_window", failing)
    old = q.config
    q.set_config(old.replace(max_queues=5, window=500))
    q.begin_step()
    assert q.config == old and q.config_install_errors == 1
    assert sorted(drain(q)) == list(range(20))


def test_a_partition_swapped_in_is_built_off_the_step_and_a_failed_build_keeps_the_queues(monkeypatch):
    """A config swap that changes the partition: the new queues are built in the background after the next
    admission round and installed at the round after; a build that fails keeps the queues serving."""
    import ewsjf_core.queue_layout as layout
    q = EWSJFQueue(EWSJFConfig(min_partition_samples=4, repartition_every=0), clock=Clock(1.0))
    for i in range(40):
        q.add(i, 10 * (i + 1) ** 2, arrival_time=0.01 * i)
    q.begin_step()
    popped = [q.pop()]
    before = [(x["lo"], x["hi"]) for x in q.stats()["queues"]]
    built = []
    real = layout.build_layout
    monkeypatch.setattr(layout, "build_layout", lambda *a: built.append(a[2].max_queues) or real(*a))
    q.set_config(q.config.replace(max_queues=2, initial_edges=(1.0,)))
    q.begin_step()
    popped.append(q.pop())   # round 1: the new config scores; its partition starts building
    assert len(q.stats()["queues"]) == len(before) == 3
    q.begin_step()
    popped.append(q.pop())   # round 2: installed
    assert built == [2] and len(q.stats()["queues"]) <= 2
    monkeypatch.setattr(layout, "build_layout", lambda *a: 1 / 0)
    q.set_config(q.config.replace(max_queues=6))
    for _ in range(3):
        q.begin_step()
        popped.append(q.pop())
    assert len(q.stats()["queues"]) <= 2 and q.config.max_queues == 6 and q.config_install_errors == 0
    assert sorted(popped + drain(q)) == list(range(40))   # none lost, none twice
