"""AdmissionLog: what EWSJFQueue admitted, per source queue and by reason, for stats().

Each order the queue hands out comes with each request's reason (ewsjf_core.selection: lane, starved,
scored) and source queue; the popped prefix of each is recorded as two array views (no per-pop work) and
folded into the counters when stats() asks, or when the log grows long.

A request the engine pops and puts back in the same step (vLLM skips one it cannot schedule yet) was not
admitted. Its count stays with the queue it was first popped from while it waits (`held`), as the count of its
admission whenever that comes (from the resume lane, which has no per-queue count of its own), and is withdrawn
if it leaves the queue unadmitted (an abort): each request is counted once, and only once admitted. So is its
starvation promotion, if that first pop promoted it (a resume lane's pops never do).
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from ewsjf_core.selection import REASON_STARVED

_FOLD_AFTER = 64   # prefixes kept before folding: bounds the log's memory between stats() calls
MAX_HELD = 1 << 16
"""Held counts remembered. Each is released when its request is admitted or leaves; one whose admission the
queue missed (more pops in one step than StepPops remembers) would stay: past this the oldest half are
forgotten (their counts stand)."""


class AdmissionLog:
    def __init__(self, n_queues: int) -> None:
        self._prefixes: list[tuple[np.ndarray, np.ndarray, int]] = []
        self.starvation_promotions = 0
        self.admitted = np.zeros(n_queues + 1, np.int64)
        """Requests admitted from each queue column (the last column: the resume lanes)."""
        self.last_source_queue = -1
        """The queue column the last request admitted by an ended step was popped from (EWSJFQueue.end_pops sets it:
        a pop put back in its step is not one)."""
        self.held: dict[Any, tuple[int, bool]] = {}
        """Key of a request popped and put back unadmitted -> (the queue column its count stands in, -1 if that
        count was restarted with its partition; whether its pop counted as a starvation promotion)."""

    def record(self, reasons: np.ndarray, sources: np.ndarray, n: int) -> None:
        """The popped prefix (first n) of an order: its reasons and source queues (arrays nobody writes)."""
        self._prefixes.append((reasons, sources, n))
        if len(self._prefixes) > _FOLD_AFTER:
            self.fold()

    def fold(self) -> None:
        """Fold the recorded prefixes into the counters."""
        log, self._prefixes = self._prefixes, []
        if not log:
            return
        reasons = np.concatenate([r[:n] for r, _, n in log])
        sources = np.concatenate([s[:n] for _, s, n in log])
        self.starvation_promotions += int(np.count_nonzero(reasons == REASON_STARVED))
        n = self.admitted.shape[0]
        self.admitted += np.bincount(sources, minlength=n)[:n]

    def hold(self, key: Any, queue: int, starved: bool) -> None:
        """The request `key`, popped from queue column `queue` this step (starved: as a starvation promotion), was
        put back unadmitted: its counts stand, held until it is admitted (admitted_for_real) or leaves (withdraw).
        Popped from the resume lane (no count of its own, never starved), counts held from its first pop stay
        held."""
        if queue < self.admitted.shape[0] - 1:
            held = self.held
            held[key] = (queue, starved)
            if len(held) > MAX_HELD:
                self.held = dict(list(held.items())[len(held) // 2:])

    def admitted_for_real(self, keys: Iterable[Any]) -> None:
        """These requests' step is over and they were not put back: their held counts stand for good."""
        held = self.held
        for key in keys:
            held.pop(key, None)

    def withdraw(self, keys: Iterable[Any]) -> None:
        """These requests left the queue unadmitted: the counts held for them are withdrawn."""
        held = self.held
        for key in keys:
            queue, starved = held.pop(key, (-1, False))
            if queue >= 0:
                self.admitted[queue] -= 1
            self.starvation_promotions -= starved

    def resize(self, n_queues: int) -> None:
        """A new partition with n_queues queues: per-queue counts restart (queue ids changed meaning); held
        promotions stay held (the count of promotions goes on)."""
        if self.admitted.shape[0] != n_queues + 1:
            self.fold()
            self.admitted = np.zeros(n_queues + 1, np.int64)
            self.held = {key: (-1, True) for key, (_, starved) in self.held.items() if starved}
