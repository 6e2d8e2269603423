"""StepPops: the step's pops and the prefill (queue, starved) each was counted, read before slots are reused."""

import numpy as np

from ewsjf.bindings.step_pops import MAX_POPS, StepPops
from ewsjf_core.selection import REASON_LANE, REASON_SCORED, REASON_STARVED


def _pop(p, item, slot):
    p.items.append(item)
    p.slots.append(slot)


def test_retract_returns_each_pops_count_once_read_before_reuse():
    prefill = np.array([10.0, 20.0, 30.0, 40.0])
    queue = np.array([0, 1, 2, 3], np.int32)
    p = StepPops()
    assert not p
    _pop(p, "a", 0)
    _pop(p, "b", 2)
    p.read(prefill, queue, np.array([REASON_SCORED, REASON_STARVED], np.int8))  # the round releases slots 0, 2 ...
    prefill[[0, 2]] = -1.0      # ... and they are reused
    queue[[0, 2]] = 9
    _pop(p, "c", 3)
    assert p
    next_order = np.array([REASON_LANE], np.int8)   # the popped prefix of the next order: "c"
    assert p.retract("b", prefill, queue, next_order) == (30.0, 2, True)
    assert p.retract("b", prefill, queue, next_order) is None     # retracted once
    _pop(p, "d", 1)
    next_order = np.array([REASON_LANE, REASON_STARVED], np.int8)   # "c", "d": the last read only
    assert sorted(p.kept()) == ["a", "c", "d"]
    assert p.retract("d", prefill, queue, next_order) == (20.0, 1, True)
    assert p.retract("a", prefill, queue, next_order) == (10.0, 0, False)
    assert p.retract("c", prefill, queue, next_order) == (40.0, 3, False)
    assert p.retract("zz", prefill, queue, next_order) is None and p.kept() == []


def test_end_step_forgets_the_steps_pops():
    prefill, queue, reasons = np.array([5.0]), np.zeros(1, np.int32), np.full(1, REASON_SCORED, np.int8)
    p = StepPops()
    items, slots = p.items, p.slots
    _pop(p, "a", 0)
    assert p.retract("x", prefill, queue, reasons) is None and p   # counted, not retracted
    p.end_step()
    assert not p and p.retract("a", prefill, queue, reasons) is None
    assert p.items is items and p.slots is slots   # the queue's pops keep appending to the same lists


def test_unhashable_items_are_matched_by_identity():
    prefill, queue, reasons = np.array([10.0, 20.0]), np.zeros(2, np.int32), np.full(2, REASON_SCORED, np.int8)
    p = StepPops()
    a, twin = {"id": "a"}, {"id": "a"}   # equal, but another object: not the request that was popped
    _pop(p, a, 0)
    _pop(p, ["b"], 1)
    assert p.retract(twin, prefill, queue, reasons) is None
    assert p.retract(a, prefill, queue, reasons) == (10.0, 0, False) and p.retract(a, prefill, queue, reasons) is None
    p.end_step()
    assert not p


def test_an_engine_that_never_ends_a_step_has_its_oldest_pops_forgotten():
    p = StepPops()
    n = MAX_POPS + 10
    prefill, queue, reasons = np.arange(n, dtype=float), np.zeros(n, np.int32), np.full(n, REASON_SCORED, np.int8)
    for i in range(n):
        _pop(p, f"r{i}", i)
    p.read(prefill, queue, reasons)
    assert len(p.items) <= MAX_POPS // 2 + 10          # bounded: the oldest half forgotten (still admitted)
    assert p.retract(f"r{n - 1}", prefill, queue, reasons[:0]) == (n - 1, 0, False)   # recent pops still retract
    assert p.retract("r0", prefill, queue, reasons[:0]) is None


def test_the_last_kept_pop_is_the_last_one_not_retracted_read_or_not():
    queue, reasons = np.array([0, 1, 2, 3], np.int32), np.full(4, REASON_SCORED, np.int8)
    prefill = np.zeros(4)
    p = StepPops()
    assert p.last_kept_queue(queue) is None
    _pop(p, "a", 1)
    assert p.last_kept_queue(queue) == 1           # unread: its slot's queue
    p.read(prefill, queue, reasons[:1])
    queue[1] = 9                                   # the slot reused
    assert p.last_kept_queue(queue) == 1           # read before
    _pop(p, "b", 2)
    _pop(p, "c", 3)
    p.retract("c", prefill, queue, reasons[:2])
    assert p.last_kept_queue(queue) == 2           # "c" put back: "b"
    p.retract("b", prefill, queue, reasons[:2])
    p.retract("a", prefill, queue, reasons[:2])
    assert p.last_kept_queue(queue) is None        # every pop of the step put back
