"""AdmissionLog: what EWSJFQueue admitted, per source queue and by reason, for stats().

Each order the queue hands out comes with each request's reason (ewsjf_core.selection: lane, starved,
scored) and source queue; the popped prefix of each is recorded as two array views (no per-pop work) and
folded into the counters when stats() asks, or when the log grows long.
"""

from __future__ import annotations

import numpy as np

from ewsjf_core.selection import REASON_STARVED

_FOLD_AFTER = 64   # prefixes kept before folding: bounds the log's memory between stats() calls


class AdmissionLog:
    def __init__(self, n_queues: int) -> None:
        self._prefixes: list[tuple[np.ndarray, np.ndarray, int]] = []
        self.starvation_promotions = 0
        self.admitted = np.zeros(n_queues + 1, np.int64)
        """Requests admitted from each queue column (the last column: the resume lanes)."""
        self.last_source_queue = -1

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
        self.last_source_queue = int(sources[-1])

    def resize(self, n_queues: int) -> None:
        """A new partition with n_queues queues: per-queue counts restart (queue ids changed meaning)."""
        if self.admitted.shape[0] != n_queues + 1:
            self.fold()
            self.admitted = np.zeros(n_queues + 1, np.int64)
