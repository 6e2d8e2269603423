"""A periodic re-partition re-routed in the background (ewsjf_core.reroute): whatever the engine does between
start_partition and finish_partition, the installed queues hold exactly what installing the same edges in
place at that moment gives, in the same order. Exact comparisons use max_bubbles=0: with bubbles the
requests committed meanwhile are routed after the others, so which hole opens a bubble first can
legitimately differ; with bubbles the structure is still checked whole (nothing lost or duplicated, every
queue in (deadline, arrival, seq) order)."""

from __future__ import annotations

import math
from array import array
import random

import numpy as np
import pytest

from ewsjf.bindings import EWSJFConfig
from ewsjf_core.cost_model import PrefillCostModel
from ewsjf_core.partition import refine_and_prune
from ewsjf_core.scoring import pack_params
from ewsjf_core.selection import REASON_SCORED
from ewsjf_core.waiting import WaitingSet

B0 = 50.0


class _Twin:
    """One WaitingSet driven like an engine drives it, and the slots it holds (committed or staged)."""

    def __init__(self, cfg: EWSJFConfig) -> None:
        self.cfg = cfg
        self.ws = WaitingSet(cfg, capacity=64)
        self.cost = PrefillCostModel(cfg)
        self.params = pack_params(cfg, 5e-3, 1e-4, 1e-9)
        self.live: list[int] = []
        for p in (0, 1):
            self.ws.class_row(p)


def _apply(twins: list[_Twin], op: str, rng: random.Random, t: float, priorities=(0, 1)) -> None:
    """The same operation on every twin (their slots coincide: the same calls allocate the same slots)."""
    args = None
    for tw in twins:
        ws = tw.ws
        if op in ("add", "front"):
            if args is None:
                n = rng.randint(1, 40)
                args = [(float(rng.choice([rng.randint(10, 100), rng.randint(300, 900), rng.randint(2000, 9000)])),
                         t + rng.uniform(-0.5, 0.5), rng.choice(priorities)) for _ in range(n)]
            for size, arrival, p in args:
                slot = ws.alloc()
                ws.stage(slot, size, size, arrival, ws.class_row(p), front=op == "front")
                tw.live.append(slot)
        elif op in ("remove", "pop", "begin"):
            ws.flush_staged()   # as EWSJFQueue does: a staged request is linked before it is unlinked
            if args is None:
                k = min(len(tw.live), rng.randint(1, 30))
                args = rng.sample(range(len(tw.live)), k) if op == "remove" else k
            reasons = np.full(len(tw.live), REASON_SCORED, np.int8)
            if op == "remove":
                chosen = [tw.live[i] for i in args]
            else:
                slots, reasons = ws.order(t, args, tw.params)[:2]
                chosen = slots.tolist()
            for s in chosen:
                tw.live.remove(s)
            if op == "begin":   # the popped are admitted (and unlinked) by the round's kernel call
                ws.begin(np.array(chosen, np.int32), reasons, chosen, t, 8, tw.params, 3, tw.cost.state, array("d"),
                         0.0)
            else:
                ws.discard(chosen)
        elif op == "flush":
            ws.flush()


def _queues(ws: WaitingSet) -> dict[tuple[int, int], list[int]]:
    out = {}
    for c in range(ws.head.shape[0]):
        for q in range(ws.head.shape[1]):
            s, members = ws.head[c, q], []
            while s >= 0:
                members.append(int(s))
                s = ws.nxt[s]
            if members:
                out[(c, q)] = members
    return out


def _check_whole(tw: _Twin) -> None:
    """Every live request linked once, in its row and queue, each queue in (deadline, arrival, seq) order
    (the lanes excepted: they are stacks), depth and work summing their members."""
    ws = tw.ws
    ws.flush()
    queues = _queues(ws)
    linked = [s for m in queues.values() for s in m]
    assert sorted(linked) == sorted(tw.live) and ws.n_linked == len(linked)
    lane = ws.head.shape[1] - 1
    for (c, q), members in queues.items():
        assert all(ws.cls[s] == c and ws.qid[s] == q for s in members)
        assert ws.depth[c, q] == len(members)
        assert ws.work[c, q] == pytest.approx(float(ws.prefill[members].sum()))
        if q != lane:
            keys = [(ws.deadline[s], ws.arrival[s], ws.seq[s]) for s in members]
            assert keys == sorted(keys)
    assert not ws.depth[ws.head < 0].any()


def _run(cfg: EWSJFConfig, seed: int, between, priorities=(0, 1)):
    """Two twins with the same history; at the start, `there` begins a background partition and `here`
    computes the same edges; `between` runs on both; then `there` finishes and `here` installs in place."""
    rng = random.Random(seed)
    here, there = _Twin(cfg), _Twin(cfg)
    t = 0.0
    for _ in range(30):
        t += 1.0
        _apply([here, there], rng.choice(["add", "add", "add", "front", "remove", "pop", "begin"]), rng, t,
               priorities)
    here.ws.flush()
    assert here.ws._enough_samples(cfg)
    edges = refine_and_prune(*here.ws._partition_args(cfg, B0))
    there.ws.start_partition(cfg, B0)
    between(here, there, rng, t)
    assert there.ws.finish_partition()
    assert there.ws._partition_job is None
    here.ws._install_partition(cfg, edges)
    return here, there


def _random_steps(here: _Twin, there: _Twin, rng: random.Random, t: float, n: int = 25, priorities=(0, 1)):
    for _ in range(n):
        t += 0.1
        _apply([here, there], rng.choice(["add", "front", "remove", "pop", "begin", "flush"]), rng, t, priorities)


def _assert_same(here: _Twin, there: _Twin) -> None:
    a, b = here.ws, there.ws
    assert _queues(a) == _queues(b)
    for name in ("q_lo", "q_hi", "q_mean", "q_pos", "q_active", "depth", "b_active", "b_center"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert np.allclose(a.work, b.work, rtol=1e-12, atol=1e-9)
    assert a.repartitions == b.repartitions == 1
    _check_whole(here)
    _check_whole(there)
    for tw in (here, there):   # the next step's order is the same too
        tw.order = tw.ws.order(1e6, 64, tw.params)[0].tolist()
    assert here.order == there.order


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("max_wait", [math.inf, 30.0])
def test_a_background_reroute_equals_an_in_place_one_at_the_install(seed, max_wait):
    cfg = EWSJFConfig(min_partition_samples=20, max_bubbles=0, max_wait=max_wait, repartition_every=0)
    here, there = _run(cfg, seed, _random_steps)
    _assert_same(here, there)


@pytest.mark.parametrize("seed", range(6))
def test_with_bubbles_nothing_is_lost_or_duplicated(seed):
    cfg = EWSJFConfig(min_partition_samples=20, max_bubbles=3, bubble_width=0.05, repartition_every=0)
    here, there = _run(cfg, seed, _random_steps)
    _check_whole(here)
    _check_whole(there)


def test_a_slot_freed_and_reused_before_the_install():
    """A request leaves, its slot goes to a new request of another class, which leaves too and is reused
    again: the log unlinks each by the row and prefill it had then."""
    cfg = EWSJFConfig(min_partition_samples=20, max_bubbles=0, repartition_every=0)

    def churn(here, there, rng, t):
        for i in range(40):
            _apply([here, there], ["remove", "add", "begin", "add", "flush"][i % 5], rng, t + 0.01 * i)
    here, there = _run(cfg, 3, churn)
    _assert_same(here, there)


def test_capacity_growth_meanwhile_is_padded():
    cfg = EWSJFConfig(min_partition_samples=20, max_bubbles=0, repartition_every=0)

    def grow(here, there, rng, t):
        for i in range(12):   # ~240 adds against a capacity of 64: it doubles at least twice
            _apply([here, there], "add", rng, t + i)
            _apply([here, there], "flush", rng, t + i)
    here, there = _run(cfg, 4, grow)
    assert there.ws.capacity > 64
    _assert_same(here, there)


def _new_class_rows(here, there, rng, t) -> bool:
    _random_steps(here, there, rng, t, 10, priorities=(0, 1, 5, 6, 7))
    return there.ws.head.shape[0] != there.ws._partition_job.rows


def _bound_rebase(here, there, rng, t) -> bool:
    _random_steps(here, there, rng, t, 8)
    old = here.cfg
    for tw in (here, there):
        tw.ws.apply_config(old, old.replace(max_wait=5.0))
        assert not tw.ws.partition_wanted
    cancelled = there.ws._partition_job.cancelled
    _random_steps(here, there, rng, t + 1.0, 8)
    return cancelled


@pytest.mark.parametrize("meanwhile,seed", [(_new_class_rows, 5), (_bound_rebase, 6)])
def test_a_change_the_log_cannot_express_falls_back_to_rerouting_in_place(meanwhile, seed):
    """A new class row, or a bound rebase (through apply_config), while the job runs."""
    cfg = EWSJFConfig(min_partition_samples=20, max_bubbles=0, repartition_every=0)
    fell_back = []

    def steps(here, there, rng, t):
        fell_back.append(meanwhile(here, there, rng, t))
    here, there = _run(cfg, seed, steps)
    assert fell_back == [True]
    _assert_same(here, there)


def test_classes_compacted_meanwhile_fall_back_to_rerouting_in_place():
    cfg = EWSJFConfig(min_partition_samples=20, max_bubbles=0, repartition_every=0)

    def drain(here, there, rng, t):
        for tw in (here, there):
            tw.ws.flush_staged()
            tw.ws.discard(list(tw.live))
            tw.live = []
        _apply([here, there], "add", rng, t, priorities=(0,))
        for tw in (here, there):
            tw.ws.flush()
            rows = tw.ws.head.shape[0]
            assert tw.ws.retire_empty_classes() and tw.ws.head.shape[0] < rows   # compacted
        there.cancelled = there.ws._partition_job.cancelled
    here, there = _run(cfg, 8, drain, priorities=tuple(range(12)))
    assert there.cancelled
    _assert_same(here, there)


def test_a_failed_background_build_keeps_the_queues_and_the_changes(monkeypatch):
    cfg = EWSJFConfig(min_partition_samples=20, max_bubbles=0, repartition_every=0)
    tw = _Twin(cfg)
    rng = random.Random(7)
    for i in range(10):
        _apply([tw], "add", rng, float(i))
    tw.ws.flush()
    monkeypatch.setattr("ewsjf_core.queue_layout.build_layout", lambda *a: 1 / 0)
    tw.ws.start_partition(cfg, B0)
    for op in ("add", "remove", "begin", "flush"):
        _apply([tw], op, rng, 20.0)
    assert not tw.ws.finish_partition()
    _check_whole(tw)
