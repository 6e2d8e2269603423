import numpy as np

from ewsjf.bindings.admission_order import MIN_PREFIX, AdmissionOrder


def _order(n: int, cap: int) -> AdmissionOrder:
    o = AdmissionOrder()
    o.adopt(np.arange(10, 10 + n, dtype=np.int32), np.zeros(n, np.int8), np.arange(n, dtype=np.int32) % 3,
            np.ones(3), cap, 5.0)
    return o


def test_a_new_order_serves_its_prefix_and_may_grow_to_its_cap():
    o = _order(4, 10)
    assert o.list_slots() == [10, 11, 12, 13] and o.limit == 4 and o.extendable
    assert not _order(4, 4).extendable
    o.drop()
    assert o.limit == 0 and not o.extendable


def test_releasing_the_popped_prefix_keeps_or_drops_the_rest():
    o = _order(6, 6)
    o.pos = 2
    o.release_popped(keep=True)
    assert o.pos == 0 and o.list_slots() == [12, 13, 14, 15] and o.slots.tolist() == [12, 13, 14, 15]
    assert o.sources.tolist() == [2, 0, 1, 2] and o.limit == o.cap == 4
    assert o.prefix_hint == MIN_PREFIX   # twice 2 pops, floored
    o.pos = 4
    o.release_popped(keep=False)
    assert o.limit == 0 and o.prefix_hint == MIN_PREFIX


def test_the_next_prefix_is_twice_the_last_pops():
    o = _order(64, 64)
    o.pos = 40
    o.release_popped(keep=False)
    assert o.prefix_hint == 80


def test_the_slot_list_is_made_at_the_first_single_pop_and_follows_a_release():
    o = _order(6, 6)
    assert o.slot_list is None   # converted at the order's first pop
    o.pos = 2
    o.release_popped(keep=True)
    assert o.slot_list is None and o.list_slots() == [12, 13, 14, 15] and o.slot_list == [12, 13, 14, 15]
    o.pos = 1
    o.release_popped(keep=True)
    assert o.slot_list == [13, 14, 15] and o.slots.tolist() == [13, 14, 15]
