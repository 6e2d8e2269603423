"""ItemSlots: what EWSJFQueue hands back, by slot: the engine's items (or request ids), their handles, and
the id map of a queue driven by ids.

The WaitingSet (ewsjf_core.waiting) speaks slots; engines speak request ids or their own request objects.
A handle is a slot plus the slot's generation (how many requests it has held), so a handle whose request
was popped or removed is refused even after its slot is reused. `items` and `slot_of` are public and never
replaced: the queue's pops read and clear them directly (one pop is a list read, a clear and two appends).
"""

from __future__ import annotations

from typing import Any, Iterable

from ewsjf.bindings.base import RequestId, request_id_list

_SLOT_BITS = 32
_SLOT_MASK = (1 << _SLOT_BITS) - 1


def _listed(kind: str, bad: list) -> str:
    return (f"{kind}(s) not waiting: {', '.join(map(repr, bad[:5]))}"
            + (f" and {len(bad) - 5} more" if len(bad) > 5 else ""))


class ItemSlots:
    """Items by slot (None: free or popped), their generations, and the id -> slot map (ids only)."""

    def __init__(self, capacity: int) -> None:
        # A list: a numpy object array gathers and clears pop_many's batch in one call each (a 256-pop step
        # 15-17% faster), but a single pop's read and clear cost ~0.5 us there against ~0.1 us in a list, which
        # engines that pop one request at a time (vLLM) pay per pop.
        self.items: list[Any] = [None] * capacity
        self._gen = [0] * capacity   # by slot: how many requests the slot has held
        self.slot_of: dict[RequestId, int] = {}   # empty unless driven by ids
        self._keyed: bool | None = None   # True: driven by ids; False: by handles; None: not yet known

    def fix_mode(self, keyed: bool) -> None:
        """The first add fixes how the queue is driven; the other way then raises TypeError."""
        if self._keyed is None:
            self._keyed = keyed
        elif self._keyed != keyed:
            used, other = ("ids (add/prepend)", "handles (push)") if self._keyed else (
                "handles (push)", "ids (add/prepend)")
            raise TypeError(f"EWSJFQueue: this queue is driven by {used}; it cannot also take {other}")

    @property
    def keyed(self) -> bool | None:
        return self._keyed

    def check_new_id(self, request_id: RequestId) -> None:
        """A new id must be hashable and not already waiting (checked before anything changes)."""
        try:
            waiting = request_id in self.slot_of
        except TypeError:
            raise TypeError(f"request id {request_id!r} is not hashable") from None
        if waiting:
            raise KeyError(f"request {request_id!r} is already waiting")

    def put(self, slot: int, item: Any, capacity: int) -> int:
        """Hold `item` at `slot` (the set's capacity may have grown); returns its handle."""
        gen = self._gen
        if slot >= len(gen):
            grow = capacity - len(gen)
            self.items.extend([None] * grow)
            gen.extend([0] * grow)
        self.items[slot] = item
        gen[slot] += 1
        if self._keyed:
            self.slot_of[item] = slot
        return (gen[slot] << _SLOT_BITS) | slot

    def holds(self, handle: int) -> bool:
        """Whether `handle` names a request that is waiting (not yet popped or removed)."""
        if type(handle) is not int or handle < 0:
            return False
        slot = handle & _SLOT_MASK
        return slot < len(self._gen) and self.items[slot] is not None and self._gen[slot] == handle >> _SLOT_BITS

    def take_ids(self, request_ids: Iterable[RequestId]) -> list[int]:
        """The slots of waiting ids, dropped from the map (all checked first: KeyError naming the missing, map
        unchanged); a str (or any non-iterable) is one id."""
        slot_of = self.slot_of
        unique = request_ids if type(request_ids) is tuple and len(request_ids) == 1 \
            else request_id_list(request_ids)
        missing = [rid for rid in unique if rid not in slot_of]
        if missing:
            raise KeyError(_listed("request", missing))
        return [slot_of.pop(rid) for rid in unique]

    def take_handles(self, handles: Iterable[int]) -> list[int]:
        """The slots of waiting handles (all checked first: KeyError naming the ones not waiting)."""
        hs = list(dict.fromkeys([handles] if isinstance(handles, int) else handles))
        bad = [h for h in hs if not self.holds(h)]
        if bad:
            raise KeyError(_listed("handle", bad))
        return [h & _SLOT_MASK for h in hs]

    def clear(self, slots: list[int]) -> None:
        """Drop the references held at `slots` (removed requests)."""
        items = self.items
        for slot in slots:
            items[slot] = None
