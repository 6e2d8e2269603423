"""Re-routing the queued requests into a new partition's queues, built into new arrays so that it can run
off the engine thread, and the log that brings such a build up to date when it is installed.

A periodic re-partition (QueueLayout.start_partition) computes the edges and routes and links every
queued request (not the lanes) into NEW arrays on a worker thread, from the set's arrays as they were at
its start: the engine thread writes none of those arrays until the job is done (WaitingSet waits for it
before any write). The engine keeps committing meanwhile; each commit's unlinked slots (with their class
row and prefill at the time: a freed slot may be reused before the install) and linked adds are logged.
The install (next admission round) takes the lanes from the current structure, swaps the new arrays in
and replays the log (replay_changes): O(changes since the start) instead of O(waiting). The queues end
up with the members an in-place re-route would give at that moment, in the same (deadline, arrival, seq)
order; only the order in which routing opens bubbles can differ (logged adds are routed after the rest).
"""

from __future__ import annotations

from concurrent.futures import Future, wait
from dataclasses import dataclass

import numpy as np
from numba import njit

from ewsjf_core.config import EWSJFConfig
from ewsjf_core.links import link_in_order, list_members, members_in_order, unlink_one
from ewsjf_core.routing import route_lengths


@dataclass
class Queues:
    """A partition's queues (main then bubble columns) and the routing settings they were built under."""
    lo: np.ndarray
    hi: np.ndarray
    mean: np.ndarray
    spread: np.ndarray
    density: np.ndarray
    active: np.ndarray
    n_main: int
    max_queues: int
    band_up: float
    band_down: float
    bubble_width: float


def new_queues(config: EWSJFConfig, lo: np.ndarray, hi: np.ndarray | None, mean=None, spread=None,
               density=None) -> Queues:
    """The queue arrays for core ranges [lo, hi] (hi None: contiguous initial queues, each band ending
    exactly at the next queue's lower edge)."""
    if hi is None:
        hi = np.append(lo[1:] / config.band_up, np.inf)
    n_main = min(lo.shape[0], config.max_queues)
    nq = config.max_queues + config.max_bubbles
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
    active = np.zeros(nq, np.bool_)
    active[:n_main] = True
    return Queues(q_lo, q_hi, q_mean, q_spread, q_density, active, n_main, config.max_queues, config.band_up,
                  config.band_down, config.bubble_width)


@dataclass
class Routed:
    """The queued requests (lanes excepted) routed and linked into new arrays; member marks them."""
    head: np.ndarray
    tail: np.ndarray
    depth: np.ndarray
    work: np.ndarray
    nxt: np.ndarray
    prv: np.ndarray
    qid: np.ndarray
    member: np.ndarray
    b_center: np.ndarray
    b_active: np.ndarray
    b_idle: np.ndarray

    def fit_capacity(self, capacity: int, qid: np.ndarray) -> None:
        """Pad the slot arrays to a capacity that grew since the build (new slots: unlinked)."""
        old = self.nxt.shape[0]
        if old < capacity:
            self.nxt, self.prv, self.member = (np.concatenate([a, np.full(capacity - old, f, a.dtype)])
                                               for a, f in ((self.nxt, -1), (self.prv, -1), (self.member, 0)))
            self.qid = np.concatenate([self.qid, qid[old:capacity]])


@dataclass
class Members:
    """What route_members reads of the set: its lists (None before the first layout) and slot fields."""
    head: np.ndarray | None
    n_cols: int      # columns of head that are queues (the lane is the next)
    n_linked: int
    nxt: np.ndarray
    deadline: np.ndarray
    arrival: np.ndarray
    seq: np.ndarray
    cls: np.ndarray
    size: np.ndarray
    prefill: np.ndarray
    qid: np.ndarray


def route_members(q: Queues, max_bubbles: int, m: Members) -> Routed:
    """Route every member of m's queues (not lanes) into q and link them, in (deadline, arrival, seq)
    order per class row, into new arrays (m's arrays are only read)."""
    rows = m.head.shape[0] if m.head is not None else 1
    nq = q.lo.shape[0]
    capacity = m.nxt.shape[0]
    r = Routed(np.full((rows, nq + 1), -1, np.int32), np.full((rows, nq + 1), -1, np.int32),
               np.zeros((rows, nq + 1), np.int64), np.zeros((rows, nq + 1)), np.full(capacity, -1, np.int32),
               np.full(capacity, -1, np.int32), m.qid.copy(), np.zeros(capacity, np.bool_), np.zeros(max_bubbles),
               np.zeros(max_bubbles, np.bool_), np.zeros(max_bubbles, np.int64))
    if m.head is None:
        return r
    members, in_order = members_in_order(m.head, m.nxt, m.deadline, m.arrival, m.seq, m.n_cols, m.n_linked)
    if not in_order:  # never expected (queues are kept in that order); sort rather than trust it
        members = list_members(m.head, m.nxt, 0, m.n_cols, m.n_linked)
        members = members[np.lexsort((m.seq[members], m.arrival[members], m.deadline[members], m.cls[members]))]
    if members.shape[0]:
        r.qid[members] = route_lengths(m.size[members], q.lo, q.hi, q.n_main, q.band_up, q.band_down, r.b_center,
                                       r.b_active, r.b_idle, q.bubble_width, q.max_queues)
        link_in_order(members, m.deadline, m.arrival, m.cls, r.qid, m.prefill, r.nxt, r.prv, r.head, r.tail,
                      r.depth, r.work)
        r.member[members] = True
    return r


def build_layout(partition, partition_args: tuple, config: EWSJFConfig, members: Members):
    """The background job: the edges (partition(*partition_args)), their queues, and the members routed."""
    edges = partition(*partition_args)
    lo, hi, mean, spread, _, density = edges
    queues = new_queues(config, lo, hi, mean, spread, density)
    return edges, queues, route_members(queues, config.max_bubbles, members)


class PartitionJob:
    """A re-partition being built in the background, and the changes committed since its start."""

    def __init__(self, config: EWSJFConfig, future: Future, rows: int) -> None:
        self.config = config
        self.future = future
        self.rows = rows              # class rows at the start: a change of shape cancels the replay
        self.cancelled = False        # install by re-routing in place instead (the log is not enough)
        self._log: list[tuple[np.ndarray, bool, np.ndarray, np.ndarray]] = []

    def wait(self) -> None:
        """Block until the build is done (it reads the set's arrays until then)."""
        wait([self.future])

    def record(self, gone: np.ndarray, gone_rows: np.ndarray, gone_prefill: np.ndarray,
               added: np.ndarray) -> None:
        """One commit: `gone` unlinked (with their class row and prefill), then `added` linked."""
        if self.cancelled:
            return
        if gone.shape[0]:
            self._log.append((gone.astype(np.int32), False, gone_rows, gone_prefill))
        if added.shape[0]:
            self._log.append((added, True, added, added))   # the add's fields are read at replay

    def events(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The log as arrays for replay_changes: slots, is_add, class row and prefill (of gone slots)."""
        if not self._log:
            return np.empty(0, np.int32), np.empty(0, np.bool_), np.empty(0, np.int32), np.empty(0)
        slots = np.concatenate([e[0] for e in self._log]).astype(np.int32)
        is_add = np.concatenate([np.full(e[0].shape[0], e[1]) for e in self._log])
        rows = np.concatenate([np.zeros(e[0].shape[0], np.int32) if e[1] else e[2] for e in self._log])
        prefill = np.concatenate([np.zeros(e[0].shape[0]) if e[1] else e[3] for e in self._log])
        return slots, is_add, rows.astype(np.int32), prefill.astype(np.float64)


@njit(cache=True, nogil=True)
def replay_changes(slots: np.ndarray, is_add: np.ndarray, rows_at: np.ndarray, prefill_at: np.ndarray,
                   member: np.ndarray, size: np.ndarray, deadline: np.ndarray, arrival: np.ndarray,
                   cls: np.ndarray, prefill: np.ndarray, qid: np.ndarray, nxt: np.ndarray, prv: np.ndarray,
                   head: np.ndarray, tail: np.ndarray, depth: np.ndarray, work: np.ndarray, q_lo: np.ndarray,
                   q_hi: np.ndarray, n_main: int, band_up: float, band_down: float, b_center: np.ndarray,
                   b_active: np.ndarray, b_idle: np.ndarray, bubble_width: float, max_queues: int) -> None:
    """Apply a PartitionJob's log to its Routed arrays: unlink the members that left (by the row and
    prefill they had then), then route and link the adds still linked (in commit order; an add is still
    linked iff its slot has no later event: a slot's events alternate add, gone)."""
    n = slots.shape[0]
    live = np.zeros(n, np.bool_)
    by_slot = np.argsort(slots, kind="mergesort")   # stable: each slot's events stay in log order
    for i in range(n):
        e = by_slot[i]
        if is_add[e] and (i + 1 == n or slots[by_slot[i + 1]] != slots[e]):
            live[e] = True
    for e in range(n):
        s = slots[e]
        if is_add[e] or not member[s]:
            continue     # a lane's request, or one added since the start (linked below only if live)
        member[s] = False
        unlink_one(s, rows_at[e], qid[s], prefill_at[e], nxt, prv, head, tail, depth, work)
    adds = slots[live]
    sizes = np.empty(adds.shape[0])
    for i in range(adds.shape[0]):
        sizes[i] = size[adds[i]]
    qids = route_lengths(sizes, q_lo, q_hi, n_main, band_up, band_down, b_center, b_active, b_idle, bubble_width,
                         max_queues)
    for i in range(adds.shape[0]):
        qid[adds[i]] = qids[i]
        member[adds[i]] = True
    link_in_order(adds, deadline, arrival, cls, qid, prefill, nxt, prv, head, tail, depth, work)
