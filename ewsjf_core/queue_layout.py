"""The queue partition of a WaitingSet: its queues' ranges, the arrival window they are fitted to,
Refine-and-Prune and re-routing the waiting requests into the new queues (in place, or for the periodic one
in the background, its install replaying the changes made meanwhile: ewsjf_core.reroute), and describing
the queues.

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
from ewsjf_core.links import list_members
from ewsjf_core.partition import refine_and_prune
from ewsjf_core.reroute import (Members, PartitionJob, Queues, Routed, build_layout, new_queues, replay_changes,
                                route_members)

_log = logging.getLogger(__name__)


class QueueLayout:
    """The partition half of WaitingSet (see the module docstring)."""

    def partition_due(self, config: EWSJFConfig) -> bool:
        """Whether the periodic re-partition is due (call after a flush). Cold start: the initial edges
        are a guess, so partition from data as soon as there is enough, then each time the samples have
        doubled, until the window is full; then every repartition_every arrivals; and after a config swap
        that changes the partition's settings (partition_wanted)."""
        if self.partition_wanted:
            return True
        every = config.repartition_every
        since = self._arrivals
        if not every or since < min(every, config.min_partition_samples):
            return False   # the common answer, cheaply: `every` below is never under either
        count = self.window_count
        if count < self.window.shape[0]:
            every = min(every, max(config.min_partition_samples, count - since))
        return since >= every

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
        self._drop_partition()
        self.partition_wanted = False
        if not self._enough_samples(config):
            return False
        self._install_partition(config, refine_and_prune(*self._partition_args(config, cost_offset)))
        return True

    def start_partition(self, config: EWSJFConfig, cost_offset: float) -> None:
        """Begin a periodic re-partition: a worker thread computes Refine-and-Prune over a copy of the
        window (a jitted kernel that releases the GIL) and re-routes the queued requests into new arrays
        (ewsjf_core.reroute); finish_partition() installs it. The engine's steps run meanwhile; the set's
        writes wait for the job (they are logged and replayed at the install)."""
        self._drop_partition()
        self.partition_wanted = False
        if self._enough_samples(config):
            future = _partition_worker().submit(build_layout, refine_and_prune,
                                                self._partition_args(config, cost_offset), config, self._members())
            self._partition_job = PartitionJob(config, future, self.head.shape[0])

    def finish_partition(self) -> bool:
        """Install the partition start_partition() began (waiting for it if it is still being computed, so
        the result never depends on timing: it is always installed at the call after its start). Returns
        whether one was installed; a failed computation is logged and the partition kept."""
        if self._partition_job is None:
            return False
        self.flush()   # logged for the replay
        job, self._partition_job = self._partition_job, None
        try:
            edges, queues, routed = job.future.result()
        except Exception:  # noqa: BLE001 - scheduling goes on with the current partition
            _log.exception("EWSJF: a background re-partition failed; the current queues stay")
            return False
        if job.cancelled or self.head.shape[0] != job.rows:   # the log cannot bring it up to date
            self._install_partition(job.config, edges)
            return True
        self._install_layout(job.config, queues, routed, job)
        self.repartitions += 1
        return True

    def _drop_partition(self) -> None:
        """Forget a background partition (after it is done: it reads the arrays the caller will write)."""
        job, self._partition_job = self._partition_job, None
        if job is not None:
            job.wait()

    def _cancel_replay(self) -> None:
        """Something changes what the queues hold or their order keys beyond the log's reach: wait for the
        background partition, and install it by re-routing in place."""
        job = self._partition_job
        if job is not None:
            job.wait()
            job.cancelled = True

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
        queues = new_queues(config, lo, hi, mean, spread, density)
        self._install_layout(config, queues, route_members(queues, config.max_bubbles, self._members()), None)

    def _members(self) -> Members:
        """The queued requests as route_members reads them (no lists yet at the first layout)."""
        head = getattr(self, "head", None)
        return Members(head, self.n_queues if head is not None else 0, self.n_linked, self.nxt, self.deadline,
                       self.arrival, self.seq, self.cls, self.size, self.prefill, self.qid)

    def _install_layout(self, config: EWSJFConfig, q: Queues, r: Routed, job: PartitionJob | None) -> None:
        """Swap in routed queues: the changes logged since they were built (job) replayed, the lanes taken
        from the current lists. Everything is allocated before any state changes (a MemoryError leaves the
        set intact)."""
        nq = q.lo.shape[0]
        r.fit_capacity(self.capacity, self.qid)
        if job is not None:
            replay_changes(*job.events(), r.member, self.size, self.deadline, self.arrival, self.cls, self.prefill,
                           r.qid, r.nxt, r.prv, r.head, r.tail, r.depth, r.work, q.lo, q.hi, q.n_main, q.band_up,
                           q.band_down, r.b_center, r.b_active, r.b_idle, q.bubble_width, q.max_queues)
        q_pos = q.lo.copy()
        if getattr(self, "head", None) is not None:   # after the replay: a slot gone may be in a lane now
            lane = self.n_queues
            lane_slots = list_members(self.head, self.nxt, lane, lane + 1, self.n_linked)
            r.nxt[lane_slots], r.prv[lane_slots], r.qid[lane_slots] = self.nxt[lane_slots], self.prv[lane_slots], nq
            for new, old in ((r.head, self.head), (r.tail, self.tail), (r.depth, self.depth), (r.work, self.work)):
                new[:, nq] = old[:, lane]
        self.head, self.tail, self.depth, self.work = r.head, r.tail, r.depth, r.work
        self.nxt, self.prv, self.qid = r.nxt, r.prv, r.qid
        self.q_lo, self.q_hi, self.q_mean, self.q_spread, self.q_density = q.lo, q.hi, q.mean, q.spread, q.density
        self.q_pos, self.q_active = q_pos, q.active
        self.b_center, self.b_active, self.b_idle = r.b_center, r.b_active, r.b_idle
        self._bubbles_open = True
        self.max_queues, self.n_main = config.max_queues, q.n_main
        self.band_up, self.band_down, self.bubble_width = config.band_up, config.band_down, config.bubble_width
        self._bubbles_as_queues()

    def _bubbles_as_queues(self) -> None:
        """Bubbles that routing opened are queues from now on: their columns take the bubbles' state (as
        ewsjf_core.commit.commit_flush does inside its kernel)."""
        mq = self.max_queues
        self.q_active[mq:], self.q_pos[mq:], self.q_mean[mq:] = self.b_active, self.b_center, self.b_center


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
