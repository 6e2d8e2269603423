"""AdmissionOrder: the order EWSJFQueue hands out requests in, and how much of it has been popped.

An order is a prefix of the policy order computed at one moment (ewsjf_core.selection): slots, why each
was chosen, and its source queue column. It is computed a prefix at a time: `cap` is how long it may grow
at `now`; `prefix_hint` is how long a prefix a round computes first (twice the pops of the last order, so
a step that admits a few requests orders a few). The prefixes of an order do not depend on its length, so
extending it (same moment, same state) changes no pop. Any change to what it was computed from drops it
(`limit` = 0).
"""

from __future__ import annotations

import numpy as np

MIN_PREFIX = 16

_NO_SLOTS = np.empty(0, np.int32)


class AdmissionOrder:
    """The current order and the pop cursor. EWSJFQueue's pops read `slot_list` (list_slots()), `pos` and
    `limit`."""

    def __init__(self) -> None:
        self.slots = _NO_SLOTS
        self.reasons = np.empty(0, np.int8)
        self.sources = _NO_SLOTS
        # slots as Python ints (cheap to index per pop), converted at the order's first pop (list_slots), so
        # an order dropped or extended before any pop is never converted.
        self.slot_list: list[int] | None = None
        self.pos = 0     # requests already popped from it
        self.limit = 0   # pops allowed from it; 0 when it is stale
        self.cap = 0
        self.now = 0.0
        self.scores = np.empty(0)   # the queues' scores it was computed with (for stats)
        self.prefix_hint = MIN_PREFIX

    def adopt(self, slots: np.ndarray, reasons: np.ndarray, sources: np.ndarray, scores: np.ndarray, cap: int,
              now: float) -> None:
        """Serve a newly computed order (or a longer prefix of this one) of at most `cap` requests at `now`."""
        self.slots, self.reasons, self.sources, self.scores = slots, reasons, sources, scores
        self.slot_list = None
        self.limit = slots.shape[0]
        self.cap, self.now = cap, now

    def list_slots(self) -> list[int]:
        """slot_list, converted from `slots` if it is not yet."""
        if self.slot_list is None:
            self.slot_list = self.slots.tolist()
        return self.slot_list

    def drop(self) -> None:
        self.limit = 0

    @property
    def extendable(self) -> bool:
        """Whether a longer prefix of this order may still be computed."""
        return 0 < self.limit < self.cap

    def release_popped(self, keep: bool) -> None:
        """The popped prefix (the first `pos` of slots, slot_list, reasons, sources: read it before) leaves
        the order; keep: the rest still serves (its pops go on as they would have), else the order is
        dropped."""
        pos = self.pos
        self.prefix_hint = max(MIN_PREFIX, 2 * pos)
        self.pos = 0
        if keep:
            self.slots, self.reasons, self.sources = self.slots[pos:], self.reasons[pos:], self.sources[pos:]
            if self.slot_list is not None:
                self.slot_list = self.slot_list[pos:]
            self.limit = self.cap = max(self.limit - pos, 0)
        else:
            self.limit = 0
