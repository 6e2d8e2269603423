"""The queue partition of a WaitingSet: its queues' ranges, the arrival window they are fitted to, routing
and linking requests into them, Refine-and-Prune (in place, or in the background for the periodic one),
installing a partition (re-routing every waiting request) and describing the queues.

QueueLayout is a part of WaitingSet (its base class), split off by concern: it works on the arrays the
WaitingSet owns, and nothing else touches them.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ewsjf_core.commit import CTR_ARRIVALS, CTR_WINDOW_COUNT, CTR_WINDOW_POS
from ewsjf_core.config import EWSJFConfig
from ewsjf_core.links import link_in_order, list_members, members_in_order
from ewsjf_core.partition import refine_and_prune
from ewsjf_core.routing import route_lengths

_log = logging.getLogger(__name__)


class QueueLayout:
    """The partition half of WaitingSet (see the module docstring)."""

    def partition_due(self, config: EWSJFConfig) -> bool:
        """Whether the periodic re-partition is due (call after a flush). Cold start: the initial edges
        are a guess, so partition from data as soon as there is enough, then each time the samples have
        doubled, until the window is full; then every repartition_every arrivals."""
        if not config.repartition_every:
            return False
        since = self._arrivals
        every = config.repartition_every
        count = self.window_count
        if count < self.window.shape[0]:
            every = min(every, max(config.min_partition_samples, count - since))
        return since >= every

    def _link(self, slots: np.ndarray) -> None:
        link_in_order(slots, self.deadline, self.arrival, self.cls, self.qid, self.prefill, self.nxt, self.prv,
                      self.head, self.tail, self.depth, self.work)

    def _route(self, sizes: np.ndarray) -> np.ndarray:
        qids = route_lengths(sizes, self.q_lo, self.q_hi, self.n_main, self.band_up, self.band_down,
                             self.b_center, self.b_active, self.b_idle, self.bubble_width, self.max_queues)
        nq_main = self.max_queues
        self.q_active[nq_main:] = self.b_active
        self.q_pos[nq_main:] = self.b_center
        self.q_mean[nq_main:] = self.b_center
        return qids

    def resize_window(self, new_size: int) -> None:
        """Keep the most recent min(count, new_size) recorded sizes in a window of new_size."""
        w = self.window.shape[0]
        count = self.window_count
        recent = np.roll(self.window, -int(self._counters[CTR_WINDOW_POS]))[w - count:]
        recent = recent[-new_size:]
        self.window = np.zeros(new_size)
        self.window[:recent.shape[0]] = recent
        self._counters[CTR_WINDOW_COUNT] = self._window_fill = recent.shape[0]
        self._counters[CTR_WINDOW_POS] = recent.shape[0] % new_size

    def describe_queues(self, scores: np.ndarray, admitted: np.ndarray) -> dict:
        """The active queues (bounds, spread, density, depth, the given last score and admissions) and the
        set's own counters, as EWSJFQueue.stats() reports them. Call right after a flush."""
        nq = self.n_queues
        depth = self.depth.sum(axis=0)
        queues = []
        for q in np.nonzero(self.q_active)[0].tolist():
            bubble = q >= self.max_queues
            queues.append({
                "id": q, "bubble": bubble, "lo": float(self.q_lo[q] if not bubble else self.q_pos[q]),
                "hi": float(self.q_hi[q] if not bubble else self.q_pos[q]),
                "mean": float(self.q_mean[q]), "spread": float(self.q_spread[q]),
                "density": float(self.q_density[q]), "depth": int(depth[q]),
                "score": float(scores[q]) if scores.shape[0] == nq else -np.inf, "admitted": int(admitted[q]),
            })
        return {"queues": queues, "resume_lane_depth": int(depth[nq]),
                "priority_classes": sorted(self.row_of_priority), "repartitions": self.repartitions}

    @property
    def n_queues(self) -> int:
        """Queue columns (main + bubble); the lane is column n_queues."""
        return self.max_queues + self.b_active.shape[0]

    def repartition(self, config: EWSJFConfig, cost_offset: float) -> bool:
        """Refine-and-Prune over the window, then re-route every queued request (FIFO kept, lanes kept).
        Drops a partition started in the background. Returns False when the window holds fewer than
        min_partition_samples sizes (the edges are kept).

        cost_offset is b0 = c0 / c1 of the prefill-cost model (see ewsjf_core.partition).
        """
        self._partition_job = None
        if not self._enough_samples(config):
            return False
        self._install_partition(config, refine_and_prune(*self._partition_args(config, cost_offset)))
        return True

    def start_partition(self, config: EWSJFConfig, cost_offset: float) -> None:
        """Begin a periodic re-partition: Refine-and-Prune runs on a worker thread (a jitted kernel that
        releases the GIL) over a copy of the window; finish_partition() installs it. The engine's step runs
        meanwhile, so no step waits for the partition's computation, only for the re-routing."""
        self._partition_job = None
        if self._enough_samples(config):
            args = self._partition_args(config, cost_offset)
            self._partition_job = (config, _partition_worker().submit(refine_and_prune, *args))

    def finish_partition(self) -> bool:
        """Install the partition start_partition() began (waiting for it if it is still being computed, so
        the result never depends on timing: it is always installed at the call after its start). Returns
        whether one was installed; a failed computation is logged and the partition kept."""
        job, self._partition_job = self._partition_job, None
        if job is None:
            return False
        config, future = job
        try:
            edges = future.result()
        except Exception:  # noqa: BLE001 - scheduling goes on with the current partition
            _log.exception("EWSJF: a background re-partition failed; the current queues stay")
            return False
        self._install_partition(config, edges)
        return True

    def _enough_samples(self, config: EWSJFConfig) -> bool:
        """Flush, restart the arrivals count; with too few samples, keep the edges (re-laid out only when the
        number of queues changed) and say False."""
        self.flush()
        self._counters[CTR_ARRIVALS] = self._arrivals = 0
        if self.window_count >= config.min_partition_samples:
            return True
        if (config.max_queues, config.max_bubbles) != (self.max_queues, self.b_active.shape[0]):
            self._layout(config, self.q_lo[:self.n_main].copy(), self.q_hi[:self.n_main].copy())
        return False

    def _partition_args(self, config: EWSJFConfig, cost_offset: float) -> tuple:
        return (self.window[:self.window_count].copy(), cost_offset, config.k0, config.alpha, config.min_size,
                config.min_rel_range, config.max_queues)

    def _install_partition(self, config: EWSJFConfig, edges: tuple) -> None:
        lo, hi, mean, spread, _, density = edges
        self.flush()
        self._layout(config, lo, hi, mean, spread, density)
        self.repartitions += 1

    def _layout(self, config: EWSJFConfig, lo: np.ndarray, hi: np.ndarray | None, mean=None, spread=None,
                density=None) -> None:
        """Install queues with the given core ranges and re-link every queued request into them."""
        if hi is None:  # contiguous initial queues: each band ends exactly at the next queue's lower edge
            hi = np.append(lo[1:] / config.band_up, np.inf)
        n_main = min(lo.shape[0], config.max_queues)
        nq = config.max_queues + config.max_bubbles
        old = getattr(self, "head", None)
        members = np.empty(0, np.int32)
        if old is not None:
            old_nq = self.n_queues
            members, in_order = members_in_order(old, self.nxt, self.deadline, self.arrival, self.seq, old_nq,
                                                 self.n_linked)
            if not in_order:  # never expected (queues are kept in that order); sort rather than trust it
                members = list_members(old, self.nxt, 0, old_nq, self.n_linked)
                members = members[np.lexsort((self.seq[members], self.arrival[members], self.deadline[members],
                                              self.cls[members]))]
            lanes = (old[:, old_nq].copy(), self.tail[:, old_nq].copy(), self.depth[:, old_nq].copy(),
                     self.work[:, old_nq].copy())
            rows = old.shape[0]
        else:
            rows = 1
        # Allocate everything before changing any state: a failure (MemoryError) leaves the set intact.
        head = np.full((rows, nq + 1), -1, np.int32)
        tail = np.full((rows, nq + 1), -1, np.int32)
        depth = np.zeros((rows, nq + 1), np.int64)
        work = np.zeros((rows, nq + 1))
        q_lo = np.full(nq, np.inf)
        q_hi = np.full(nq, np.inf)
        q_lo[:n_main], q_hi[:n_main] = lo[:n_main], hi[:n_main]
        finite_hi = np.where(np.isfinite(q_hi[:n_main]), q_hi[:n_main], 2.0 * q_lo[:n_main])
        q_mean = np.zeros(nq)
        q_mean[:n_main] = mean[:n_main] if mean is not None else np.sqrt(q_lo[:n_main] * finite_hi)
        q_spread = np.zeros(nq)
        q_density = np.zeros(nq)
        if spread is not None:
            q_spread[:n_main], q_density[:n_main] = spread[:n_main], density[:n_main]
        q_active = np.zeros(nq, np.bool_)
        q_active[:n_main] = True
        if old is not None:
            head[:, nq], tail[:, nq], depth[:, nq], work[:, nq] = lanes
        self.head, self.tail, self.depth, self.work = head, tail, depth, work
        self.q_lo, self.q_hi, self.q_mean, self.q_spread, self.q_density = q_lo, q_hi, q_mean, q_spread, q_density
        self.q_pos, self.q_active = q_lo.copy(), q_active
        self.b_center = np.zeros(config.max_bubbles)
        self.b_active = np.zeros(config.max_bubbles, np.bool_)
        self._bubbles_open = True   # re-routing below may open some
        self.b_idle = np.zeros(config.max_bubbles, np.int64)
        self.max_queues, self.n_main = config.max_queues, n_main
        self.band_up, self.band_down, self.bubble_width = config.band_up, config.band_down, config.bubble_width
        if old is not None:
            lane_slots = list_members(self.head, self.nxt, nq, nq + 1, self.n_linked)
            self.qid[lane_slots] = nq
        if members.shape[0]:
            self.qid[members] = self._route(self.size[members])
            self._link(members)


_worker: ThreadPoolExecutor | None = None
_worker_pid = 0
_worker_lock = threading.Lock()


def _partition_worker() -> ThreadPoolExecutor:
    """One worker thread for every queue's background partitions, created at first use in each process (a
    forked child inherits the executor but not its thread, and would wait forever on it)."""
    global _worker, _worker_pid
    with _worker_lock:
        if _worker is None or _worker_pid != os.getpid():
            _worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ewsjf-partition")
            _worker_pid = os.getpid()
        return _worker
