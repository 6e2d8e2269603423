"""WaitingSet (ewsjf_core.waiting): priority classes are retired when empty, and a queue orders by
(deadline, arrival time, insertion) - vLLM's (priority, arrival_time) in the FCFS-equivalent config."""

from __future__ import annotations

import math
import os
import random

import numpy as np
import pytest

from ewsjf.bindings import EWSJFConfig, EWSJFQueue
from ewsjf_core.scoring import pack_params
from ewsjf_core.waiting import WaitingSet

FCFS_EQUIVALENT = EWSJFConfig(max_queues=1, initial_edges=(1.0,), max_bubbles=0, max_wait=math.inf,
                              repartition_every=0)


def _state_sizes(ws: WaitingSet) -> tuple[int, int, int, int]:
    return len(ws.row_of_priority), ws.head.shape[0], ws.class_order.shape[0], len(ws._free_rows)


def test_ten_thousand_distinct_priorities_leave_state_flat():
    """Issue 10, defect 2: classes never retired made a step cost 10x and memory grow ~1.1 MB per 1,000."""
    cfg = EWSJFConfig()
    ws = WaitingSet(cfg)
    params = pack_params(cfg, 5e-3, 1e-4, 1e-9)
    sizes = []
    for p in range(10_000):
        for k in range(2):   # a couple of requests per priority, then served
            ws.stage(ws.alloc(), 100.0 + k, 100.0 + k, float(p), ws.class_row(p), front=False)
        slots, *_ = ws.order(float(p), 4, params)
        ws.discard(slots)
        ws.age_bubbles(cfg.bubble_empty_rounds)     # the step's flush
        ws.retire_empty_classes()
        sizes.append(_state_sizes(ws))
    # classes, rows, classes visited per step, free rows: as small after 10k priorities as after 10
    assert np.max(sizes, axis=0).tolist() == np.max(sizes[:10], axis=0).tolist()
    assert np.max(sizes, axis=0).tolist() <= [1, 2, 1, 2] and ws.n_linked == 0
    assert ws.capacity == 1024   # the initial slot capacity: never grew


def test_many_live_classes_then_drained_shrink_the_rows():
    cfg = EWSJFConfig()
    ws = WaitingSet(cfg)
    for p in range(1000):
        ws.stage(ws.alloc(), 50.0, 50.0, 0.0, ws.class_row(p), front=p % 3 == 0)
    ws.flush()
    assert ws.head.shape[0] >= 1000
    slots, *_ = ws.order(1.0, 1000, pack_params(cfg, 5e-3, 1e-4, 1e-9))
    ws.discard(slots[:-1])          # one request (the lowest urgency class) stays
    ws.flush()
    ws.retire_empty_classes()
    assert list(ws.row_of_priority) == [999] and ws.head.shape[0] == 1
    survivor = int(slots[-1])
    assert ws.cls[survivor] == 0 and ws.head[0].max() == survivor   # renumbered and still linked
    again, *_ = ws.order(2.0, 10, pack_params(cfg, 5e-3, 1e-4, 1e-9))
    assert again.tolist() == [survivor]


def test_retiring_classes_loses_and_duplicates_nothing():
    rnd = random.Random(7)
    t = [0.0]
    q = EWSJFQueue(EWSJFConfig(max_wait=5.0, min_partition_samples=8, repartition_every=40, order_chunk=4),
                   clock=lambda: t[0])
    waiting: dict[int, int] = {}
    popped = []
    for i in range(4000):
        t[0] += 0.01
        r = rnd.random()
        if r < 0.45:
            prio = rnd.randrange(-3, 3) if rnd.random() < 0.7 else rnd.randrange(10 ** 6)
            (q.prepend if rnd.random() < 0.1 else q.add)(i, rnd.choice([3, 60, 800, 9000]), arrival_time=t[0],
                                                         priority=prio)
            waiting[i] = prio
        elif r < 0.55 and waiting:
            rid = rnd.choice(list(waiting))
            q.remove([rid])
            del waiting[rid]
        elif r < 0.7:
            q.begin_step(t[0])
        elif waiting:
            rid = q.pop()
            # strict classes: nothing waiting has a more urgent priority than what was just admitted
            assert waiting.pop(rid) <= min(waiting.values(), default=math.inf)
            popped.append(rid)
    assert sorted(q) == sorted(waiting)
    assert len(popped) == len(set(popped))
    q.begin_step(t[0])
    assert len(q._set.row_of_priority) == len(set(waiting.values()))


@pytest.mark.parametrize("seed", range(5))
def test_fcfs_equivalent_config_orders_by_priority_then_arrival(seed):
    """Requests reach the engine out of arrival order (several API servers): vLLM's queue orders a class
    by arrival_time, and so does EWSJF's FCFS-equivalent configuration - across repartitions too."""
    rnd = random.Random(seed)
    q = EWSJFQueue(FCFS_EQUIVALENT.replace(min_partition_samples=16), clock=lambda: 1e6)
    reqs = []
    for i in range(300):
        arrival = round(rnd.uniform(0, 100), 1)  # ties on purpose: then insertion order
        prio = rnd.choice([0, 0, 0, 1, -1])
        q.add(f"r{i}", rnd.choice([5, 50, 700, 8000]), arrival_time=arrival, priority=prio)
        reqs.append((prio, arrival, i))
        if i == 150:
            q.repartition()
    q.begin_step(1e6)
    assert list(q) == [f"r{i}" for _, _, i in sorted(reqs)]


def test_within_a_queue_arrival_breaks_deadline_ties_and_max_wait_keeps_arrival_order():
    # fcfs_wait_factor = 0: deadline = arrival + max_wait, so a queue is in arrival order.
    q = EWSJFQueue(EWSJFConfig(fcfs_wait_factor=0.0, max_wait=30.0), clock=lambda: 10.0)
    for rid, arrival in (("c", 3.0), ("a", 1.0), ("b", 2.0), ("a2", 1.0)):
        q.add(rid, 100, arrival_time=arrival)
    q.begin_step(10.0)
    assert list(q) == ["a", "a2", "b", "c"]


def _filled(cfg: EWSJFConfig, n: int) -> WaitingSet:
    ws = WaitingSet(cfg)
    rng = random.Random(5)
    for i in range(n):
        size = float(rng.choice([rng.randint(10, 100), rng.randint(2000, 4000)]))
        ws.stage(ws.alloc(), size, size, 0.01 * i, ws.class_row(0), front=False)
    ws.flush()
    return ws


def test_a_background_partition_is_the_one_computed_in_place():
    cfg = EWSJFConfig(min_partition_samples=50)
    here, there = _filled(cfg, 400), _filled(cfg, 400)
    assert here.repartition(cfg, 50.0)
    there.start_partition(cfg, 50.0)
    assert there.repartitions == 0 and there.finish_partition() and not there.finish_partition()
    assert there.repartitions == 1
    for name in ("q_lo", "q_hi", "q_mean", "head", "nxt", "qid"):
        assert np.array_equal(getattr(here, name), getattr(there, name)), name


def test_a_failed_background_partition_keeps_the_queues(monkeypatch, caplog):
    cfg = EWSJFConfig(min_partition_samples=50)
    ws = _filled(cfg, 300)
    before = ws.q_lo.copy()

    def broken(*args):
        raise MemoryError("no room for the partition")

    monkeypatch.setattr("ewsjf_core.queue_layout.refine_and_prune", broken)
    ws.start_partition(cfg, 50.0)
    assert not ws.finish_partition()
    assert np.array_equal(ws.q_lo, before) and ws.repartitions == 0 and "background re-partition" in caplog.text
    slots, *_ = ws.order(1.0, 300, pack_params(cfg, 5e-3, 1e-4, 1e-9))
    assert sorted(slots.tolist()) == list(range(300))   # every request still linked, once


def test_a_partition_in_place_drops_one_started_in_the_background():
    cfg = EWSJFConfig(min_partition_samples=50)
    ws = _filled(cfg, 300)
    ws.start_partition(cfg, 50.0)
    ws.repartition(cfg.replace(max_queues=3), 50.0)
    assert not ws.finish_partition() and ws.max_queues == 3 and ws.repartitions == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_gets_its_own_partition_worker():
    """The worker thread does not survive a fork: a child that inherited the executor would wait forever."""
    cfg = EWSJFConfig(min_partition_samples=50)
    parent = _filled(cfg, 200)
    parent.start_partition(cfg, 50.0)
    assert parent.finish_partition()   # the parent's worker exists now
    pid = os.fork()
    if pid == 0:   # the child: a background partition must finish
        try:
            ws = _filled(cfg, 200)
            ws.start_partition(cfg, 50.0)
            os._exit(0 if ws.finish_partition() else 1)
        except BaseException:
            os._exit(2)
    import signal
    import time
    deadline = time.monotonic() + 60.0
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:   # hung on the inherited worker: fail, do not hang the suite
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the child's background partition never finished")
        time.sleep(0.05)
    assert os.waitstatus_to_exitcode(status) == 0


def test_freed_slots_are_reused_last_freed_first_though_handed_over_later():
    """Slots a flush or a round frees (arrays or lists) reach the free stack at the next alloc, in the order
    they were freed: allocation is what it would be had each been pushed onto the stack at once."""
    cfg = EWSJFConfig()
    ws = WaitingSet(cfg, capacity=8)
    slots = [ws.alloc() for _ in range(6)]
    for i, s in enumerate(slots):
        ws.stage(s, 10.0, 10.0, float(i), ws.class_row(0), front=False)
    ws.flush()
    ws.discard(np.array(slots[:2], np.int32))   # a popped prefix: an array
    ws.flush()
    ws.discard([slots[4]])                      # a removal: a list
    ws.flush()
    assert [ws.alloc() for _ in range(5)] == [slots[4], slots[1], slots[0], 6, 7]
    assert ws.alloc() == 8 and ws.capacity == 16   # then the stack runs out and the set grows


def test_rounds_that_free_without_adding_keep_the_pending_frees_bounded_and_lose_no_slot():
    """Hours of steps that pop or remove while nothing arrives: the freed batches waiting for an alloc stay
    bounded (each can be a view keeping its order alive), and every freed slot is handed out exactly once."""
    ws = WaitingSet(EWSJFConfig(), capacity=4096)
    slots = [ws.alloc() for _ in range(3000)]
    for i, s in enumerate(slots):
        ws.stage(s, 10.0, 10.0, float(i), ws.class_row(0), front=False)
    ws.flush()
    for k in range(0, 3000, 3):   # a thousand rounds, each freeing a few slots, no add in between
        ws.discard(np.array(slots[k:k + 3], np.int32))
        ws.flush()
        assert len(ws._freed) <= 65
    again = [ws.alloc() for _ in range(4096)]
    assert sorted(again) == list(range(4096)) and ws.capacity == 4096


def test_time_floors_follow_the_backlogs_quantile_and_a_swap_to_zero_clears_them():
    # 32 requests of 100 tokens, all arriving at 5 s: the i-th has 100 i tokens ahead. At 1,000 tokens/s of prefill
    # (ewsjf_core.progress_bound's time floor), each is not due before 5 s + the 0.99-quantile of the backlogs so
    # far / 1,000; floors never decrease in commit order.
    cfg = EWSJFConfig()
    ws = WaitingSet(cfg)
    ws.set_time_floor(1000.0, 1.0)
    slots = []
    for _ in range(32):
        slots.append(ws.alloc())
        ws.stage(slots[-1], 100.0, 100.0, 5.0, ws.class_row(0), front=False)
    ws.flush()
    floors = ws.not_before[slots]
    assert np.all(np.diff(floors) >= 0.0)
    assert floors[0] == 5.0 and floors[-1] == pytest.approx(5.0 + 3.1)   # the quantile of 0..3,100 tokens ahead
    ws.apply_config(cfg, EWSJFConfig(tail_floor_quantile=0.0))
    assert np.all(ws.not_before[slots] == -np.inf)
    with pytest.raises(ValueError, match="tail_floor_quantile"):
        EWSJFConfig(tail_floor_quantile=1.5)


def test_a_preemption_delays_the_due_points_of_later_arrivals_only():
    # FCFS serves a preempted request again before everyone who arrived after it: their due points move by its work
    # and one request; earlier arrivals and the lanes keep theirs, and later commits stay at or past the moved ones.
    ws = WaitingSet(EWSJFConfig())
    slots = []
    for arrival in (1.0, 2.0, 3.0, 4.0):
        slots.append(ws.alloc())
        ws.stage(slots[-1], 100.0, 100.0, arrival, ws.class_row(0), front=False)
    lane = ws.alloc()
    ws.stage(lane, 50.0, 50.0, 0.5, ws.class_row(0), front=True)
    ws.flush()
    work, n = ws.due_work[slots].copy(), ws.due_n[slots].copy()
    lane_due = (ws.due_work[lane], ws.due_n[lane])
    ws.delay_due(2.5, 300.0)
    assert list(ws.due_work[slots] - work) == [0.0, 0.0, 300.0, 300.0]
    assert list(ws.due_n[slots] - n) == [0.0, 0.0, 1.0, 1.0]
    assert (ws.due_work[lane], ws.due_n[lane]) == lane_due
    last = ws.alloc()
    ws.stage(last, 100.0, 100.0, 5.0, ws.class_row(0), front=False)
    ws.flush()
    assert ws.due_work[last] + ws.due_n[last] >= ws.due_work[slots[-1]] + ws.due_n[slots[-1]]


def test_arrivals_staged_with_a_put_back_request_count_it_in_their_backlog():
    # The commit links the lanes first: a request put back at the front is ahead of the arrivals staged with it.
    def due_of_arrival(with_front: bool) -> float:
        ws = WaitingSet(EWSJFConfig())
        if with_front:
            ws.stage(ws.alloc(), 400.0, 400.0, 0.0, ws.class_row(0), front=True)
        s = ws.alloc()
        ws.stage(s, 100.0, 100.0, 1.0, ws.class_row(0), front=False)
        ws.flush()
        return float(ws.due_work[s])
    assert due_of_arrival(True) == pytest.approx(due_of_arrival(False) + 1.2 * 400.0)
