"""ItemSlots: items by slot, handles with generations, and the id map, checked on their own (the queue's
handle path: tests/bindings/test_handle_path.py)."""

import pytest

from ewsjf.bindings.item_slots import ItemSlots


def test_a_handle_is_refused_once_its_slot_is_reused():
    s = ItemSlots(2)
    s.fix_mode(False)
    first = s.put(1, "a", 2)
    assert s.holds(first) and s.items[1] == "a"
    s.clear([1])
    assert not s.holds(first)
    second = s.put(1, "b", 2)
    assert second != first and s.holds(second) and not s.holds(first)
    assert not s.holds(-1) and not s.holds("1") and not s.holds(1 << 40)


def test_put_grows_to_the_sets_capacity():
    s = ItemSlots(1)
    s.fix_mode(False)
    h = s.put(5, "x", 8)
    assert len(s.items) == 8 and s.holds(h) and s.items[5] == "x"


def test_ids_are_mapped_checked_and_taken_all_or_nothing():
    s = ItemSlots(4)
    s.fix_mode(True)
    for slot, rid in enumerate(("a", "b", "c")):
        s.put(slot, rid, 4)
    assert s.slot_of == {"a": 0, "b": 1, "c": 2}
    with pytest.raises(KeyError, match="already waiting"):
        s.check_new_id("b")
    with pytest.raises(TypeError, match="not hashable"):
        s.check_new_id(["x"])
    with pytest.raises(KeyError, match="'zz'"):
        s.take_ids(["a", "zz"])
    assert s.slot_of == {"a": 0, "b": 1, "c": 2}   # nothing taken
    assert s.take_ids("b") == [1] and s.take_ids(["c", "a", "c"]) == [2, 0]
    assert s.slot_of == {}


def test_handles_are_taken_all_or_nothing_and_deduplicated():
    s = ItemSlots(4)
    s.fix_mode(False)
    a, b = s.put(0, "a", 4), s.put(1, "b", 4)
    with pytest.raises(KeyError, match="handle"):
        s.take_handles([a, 999])
    assert s.take_handles([b, b, a]) == [1, 0]
    assert s.take_handles(a) == [0]


def test_the_first_add_fixes_the_mode():
    s = ItemSlots(1)
    assert s.keyed is None
    s.fix_mode(True)
    s.fix_mode(True)
    with pytest.raises(TypeError, match="driven by ids"):
        s.fix_mode(False)
