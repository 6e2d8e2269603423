"""StepPops: the requests EWSJFQueue popped since the engine's step began, and the prefill each was counted.

A pop counts its request's effective prefill as admitted (the starvation bound's progress), and the request as
admitted from its queue, and as a starvation promotion if it was popped as starved (the admission log). An engine
may put a request back in the same step it popped it (vLLM does when the step's budget turns out too small): that
request was never admitted, so prepend retracts its count. Logging a pop is two list appends; the popped slots'
prefill, queue and reason are read in numpy calls when the round releases the slots (before they are reused), and
turned into item -> (prefill, queue, starved) only when a prepend asks. Items are matched by equality where they
are hashable (request ids: an equal id is the same request), by identity where not (an engine's own request
objects, a dict say, come back as the object that was popped).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ewsjf_core.selection import REASON_STARVED


MAX_POPS = 1 << 16
"""Pops remembered for retraction. An engine step pops at most its batch (hundreds); an engine that never ends
its steps (no begin_step or end_pops) would have every pop kept, and every popped request referenced, forever:
past this the oldest half are forgotten, and stay admitted as after a step's end."""


class _Identity:
    """The key of an unhashable item: the object itself, compared by identity (held, so its id stays its own)."""

    __slots__ = ("item",)

    def __init__(self, item: Any) -> None:
        self.item = item

    def __eq__(self, other: object) -> bool:
        return type(other) is _Identity and other.item is self.item

    def __hash__(self) -> int:
        return id(self.item)


def item_key(item: Any) -> Any:
    """`item` as a dict key: itself where hashable (an equal id is the same request), else by identity."""
    try:
        hash(item)
    except TypeError:
        return _Identity(item)
    return item


class StepPops:
    """Popped items and slots, appended to by the queue's pops (public lists, never replaced)."""

    def __init__(self) -> None:
        self.items: list[Any] = []   # every pop since the step began
        self.slots: list[int] = []   # the last len(slots) of items: their prefill not yet read
        self._prefill: list[float] = []   # the prefill of items[:len(_prefill)]
        self._queue: list[int] = []       # the queue column each of items[:len(_queue)] was popped from
        self._starved: list[bool] = []    # whether each of items[:len(_starved)] was popped as starved
        # item key -> (prefill, queue, starved), for pops before the last retract()
        self._counted: dict[Any, tuple[float, int, bool]] = {}

    def __bool__(self) -> bool:
        return bool(self.items or self._counted)

    def end_step(self) -> None:
        """The step is over: its pops stay admitted even if prepended later."""
        if self.items or self._counted:
            self.items.clear()
            self.slots.clear()
            self._prefill.clear()
            self._queue.clear()
            self._starved.clear()
            self._counted = {}

    def kept(self) -> list[Any]:
        """The keys (item_key) of the items popped this step and not retracted."""
        return [*self._counted, *map(item_key, self.items)]

    def last_kept_queue(self, queue: np.ndarray) -> int | None:
        """The queue column of the last item popped this step and not retracted (queue: as read() takes it), or None
        if there is none. O(1): items popped since the last retract are all kept, and the last of them is read or
        its slot unread (not reused yet)."""
        if self.items:
            return int(queue[self.slots[-1]]) if self.slots else self._queue[-1]
        if self._counted:
            return next(reversed(self._counted.values()))[1]
        return None

    def read(self, prefill: np.ndarray, queue: np.ndarray, reasons: np.ndarray) -> None:
        """Read the prefill and queue column (prefill[slot], queue[slot]) of the slots popped since the last read,
        before the slots are reused or leave their queue, and whether each was popped as starved. `reasons`: the
        reasons (ewsjf_core.selection) of the current order's popped prefix, whose last len(slots) are those pops
        (a read releases the prefix, or comes from a retract, which leaves it in place)."""
        if self.slots:
            slots = np.array(self.slots, np.int64)
            self._prefill += prefill[slots].tolist()
            self._queue += queue[slots].tolist()
            self._starved += (reasons[reasons.shape[0] - slots.shape[0]:] == REASON_STARVED).tolist()
            self.slots.clear()
            if len(self._prefill) > MAX_POPS:
                half = len(self._prefill) // 2
                del self.items[:half]
                del self._prefill[:half]
                del self._queue[:half]
                del self._starved[:half]

    def retract(self, item: Any, prefill: np.ndarray, queue: np.ndarray,
                reasons: np.ndarray) -> tuple[float, int, bool] | None:
        """(prefill, queue column, starved) counted for `item` if it was popped this step (then no longer counted),
        else None. prefill, queue, reasons: as read() takes them."""
        self.read(prefill, queue, reasons)
        if self.items:
            self._counted.update(zip(map(item_key, self.items), zip(self._prefill, self._queue, self._starved)))
            self.items.clear()
            self._prefill.clear()
            self._queue.clear()
            self._starved.clear()
            if len(self._counted) > MAX_POPS:
                self._counted = dict(list(self._counted.items())[len(self._counted) // 2:])
        return self._counted.pop(item_key(item), None)
