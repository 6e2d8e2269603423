"""WaitingSet: the one place that owns the waiting requests' arrays (struct of arrays, slot-indexed).

Slots are reused through a free list; capacity doubles when it runs out. New requests are staged in
Python lists and committed in one batch (route + link, both jitted) at the next flush, which keeps add()
to a few list appends. Popped and removed slots are unlinked at the next flush as well, then freed.
Everything here speaks slots; request ids live one layer up, in ewsjf.bindings.

The starvation bound has three parts, all fixed when a request is committed:
- deadline = arrival + max_wait (seconds; the plain bound, math.inf by default);
- due_work, in admitted work (ewsjf_core.progress_bound): with fcfs_wait_factor > 0, the admission progress
  after which FCFS would already have admitted the request, times the factor (non-decreasing in commit order);
- not_before, its time floor (seconds; ewsjf_core.progress_bound.commit_time_floor, non-decreasing too).
A request is starved once now > deadline, or once the admission progress passes its due point (past_due) and now
is past its floor.

Order inside a queue: by deadline, then arrival time, then insertion (ewsjf_core.links). Arrival time is
vLLM's own rule within a priority class (its priority queue orders by (priority, arrival_time)), and it
matters when requests reach the engine out of arrival order (several API servers):
  - max_wait = inf: every deadline is inf, so a queue is in exact arrival order. With one queue (the
    FCFS-equivalent configuration: max_queues=1, no bubbles, max_wait=inf, fcfs_wait_factor=0) EWSJF then
    admits by (priority, arrival_time) exactly like vLLM's queue.
  - finite max_wait: deadline order is arrival order too (one max_wait for all).
Selection looks for starved requests at the queue heads only, which is exact while both bounds grow along
a queue: true for in-order arrivals. A request committed late but with an earlier arrival goes in front of
later arrivals whose due points may be smaller; they then wait until it is due too (its own due point is
at most the running last one), so their bound loosens by at most one commit's slack, never unboundedly.
"""

from __future__ import annotations

from array import array

import numpy as np

from ewsjf_core.admission_wait import S_TAU, count_wait_quantile, observe_admissions
from ewsjf_core.config import EWSJFConfig
from ewsjf_core.commit import (B_ADMITTED, B_ADMITTED_N, B_BACKLOG_MEAN, B_COUNT_SHARE, B_COUNTS, B_DUE_ADMITTED,
                               B_DUE_ADMITTED_N, B_FACTOR, B_LAST_DUE, B_LAST_DUE_N, B_MAX_WAIT, B_OUT_WORK,
                               B_PREFILL_RATE, B_TAIL_QUANTILE, B_TAIL_STATE, BOUND_SIZE, COL_SLOT, F_ARRIVAL,
                               F_BACKLOGS, F_DEADLINE, F_DUE_N, F_DUE_WORK, F_NOT_BEFORE, F_PREFILL, F_SIZE,
                               SLOT_FIELDS, STAGED_WIDTH, commit_flush)
from ewsjf_core.links import link_in_order, list_members, unlink
from ewsjf_core.progress_bound import OutputEstimate, commit_due_work, delay_later_due
from ewsjf_core.queue_layout import QueueLayout
from ewsjf_core.reroute import PartitionJob
from ewsjf_core.routing import route_lengths
from ewsjf_core.selection import policy_order
from ewsjf_core.step_kernel import age_bubbles, begin_step_kernel, mark_due_admission

_NO_SLOTS = np.empty(0, np.int32)
_NO_ROWS = np.empty((0, STAGED_WIDTH))
_NO_REASONS = np.empty(0, np.int8)
_NO_SCORES = np.empty(0)


def _staged_rows(buf: array) -> np.ndarray:
    """A staged buffer as rows (STAGED_COLUMNS) for the kernels that take rows (a view: nothing may append to
    the buffer while it lives; an empty one is not viewed, as the set keeps appending to it)."""
    return np.frombuffer(buf).reshape(-1, STAGED_WIDTH) if buf else _NO_ROWS


class WaitingSet(QueueLayout):
    """Waiting-request metadata plus the queue partition (QueueLayout); not thread-safe (the engine thread
    owns it)."""

    def __init__(self, config: EWSJFConfig, capacity: int = 1024) -> None:
        self.capacity = 0
        # The per-slot float fields are rows of one array (the kernels take it whole), each also named:
        self._slot_f = np.empty((len(SLOT_FIELDS), 0))
        self.size = self._slot_f[F_SIZE]           # job size used for routing and scoring
        self.prefill = self._slot_f[F_PREFILL]     # effective prefill tokens (uncached prompt)
        self.arrival = self._slot_f[F_ARRIVAL]
        self.deadline = self._slot_f[F_DEADLINE]   # past it (seconds), a request is starved (module docstring)
        self.due_work = self._slot_f[F_DUE_WORK]   # past it (admitted work), a request is starved: prefill part...
        self.due_n = self._slot_f[F_DUE_N]         # ...and request part (ewsjf_core.progress_bound.past_due)
        self.not_before = self._slot_f[F_NOT_BEFORE]   # and not due before this time (its floor, seconds)
        self.backlogs = self._slot_f[F_BACKLOGS]       # its work ahead at commit, in mean backlogs
        self.seq = np.empty(0, np.int64)   # insertion order: breaks deadline ties in FIFO order
        self.cls = np.empty(0, np.int32)
        self.qid = np.empty(0, np.int32)
        self.nxt = np.empty(0, np.int32)
        self.prv = np.empty(0, np.int32)
        self._free: list[int] = []   # free slots, a stack: the last freed is reused first
        self._freed: list[np.ndarray | list[int]] = []   # slots freed since, oldest first (moved onto _free by alloc)
        self._grow(capacity)
        self.n_linked = 0
        self.row_of_priority: dict[int, int] = {}   # live priority classes only (see retire_empty_classes)
        self._free_rows: list[int] = [0]   # rows of no class; the initial layout has one row
        self.class_order = np.empty(0, np.int32)
        # Staged requests, committed by the next flush in one kernel call: STAGED_COLUMNS per request, flat in a
        # buffer numpy reads without a conversion (one that parses tuples costs ~10 us amid an engine step).
        self._staged_adds = array("d")
        self._staged_fronts = array("d")
        self._to_unlink: list[np.ndarray] = []   # popped prefixes (arrays)
        self._to_unlink_few: list[int] = []       # single removals (ints)
        self.window = np.zeros(config.window)
        # Kernel-written scalars (ewsjf_core.commit): insertion seq, window position and fill, arrivals
        # committed since the last partition; and the starvation bound's parameters and running state.
        self._counters = np.zeros(4, np.int64)
        # Python mirrors of what the per-step checks read (a numpy read costs more than the check itself).
        self._arrivals = 0          # arrivals committed since the last partition
        self._window_fill = 0       # recorded sizes in the window
        self._bubbles_open = False  # False only when no bubble queue can be open
        self._bound = np.zeros(BOUND_SIZE)
        self._bound[:5] = (config.max_wait, config.fcfs_wait_factor, 0.0, 0.0, -np.inf)
        self._bound[B_DUE_ADMITTED] = -np.inf   # no due request admitted yet
        self._bound[B_TAIL_QUANTILE] = config.tail_floor_quantile
        self._bound[B_TAIL_STATE + 1] = -np.inf   # no floor written yet
        self._bound[B_COUNT_SHARE] = 1.0   # the admission-count wait counted whole until KV memory says otherwise
        self.outputs = OutputEstimate()   # output tokens per request, the weight of the request part
        self._progress_output_weight = config.progress_output_weight
        self.repartitions = 0
        self._partition_job: PartitionJob | None = None   # a re-partition being built in the background
        self.partition_wanted = False   # a config swap asked for a new partition (QueueLayout.partition_due)
        self._layout(config, np.asarray(config.initial_edges), None)

    # ----- configuration -----
    def apply_config(self, old: EWSJFConfig, new: EWSJFConfig) -> None:
        """Install `new` in place of `old`: the starvation bound for later commits and the window size now;
        when a field that shapes the partition changed (EWSJFConfig.needs_new_partition), a new partition
        is due: built in the background from the next partition_due() check on, like a periodic one, so no
        step waits for it."""
        self._bound[B_MAX_WAIT] = new.max_wait
        self._bound[B_FACTOR] = new.fcfs_wait_factor
        self._bound[B_TAIL_QUANTILE] = new.tail_floor_quantile
        if old.tail_floor_quantile and not new.tail_floor_quantile:
            # Floors are time, kept by a swap; turned off, the queued requests lose theirs (still in order).
            self.not_before[:] = -np.inf
        self._progress_output_weight = new.progress_output_weight
        self._bound[B_OUT_WORK] = self.out_work
        if (new.max_wait, new.fcfs_wait_factor, new.progress_output_weight) != (
                old.max_wait, old.fcfs_wait_factor, old.progress_output_weight):
            self._rebase_bounds()
        if new.window != old.window:
            self.resize_window(new.window)
        if new.needs_new_partition(old):
            self.partition_wanted = True

    def _rebase_bounds(self) -> None:
        """A swap changed the starvation bound: each queued request's deadline and due point are set again
        under the new one, as if committed now in arrival order (FCFS still makes it wait for the work ahead
        of it now), and the queues re-sorted. Bounds set under different settings would leave a queue out of
        (deadline, due point) order: its starved requests would no longer be a prefix of it, and a newer
        request at its head could hold an older starved one back."""
        self.flush()
        self._cancel_replay()   # the order keys change
        nq = self.n_queues
        members = list_members(self.head, self.nxt, 0, nq, self.n_linked)
        members = members[np.lexsort((self.seq[members], self.arrival[members]))]
        b = self._bound
        self.deadline[members] = self.arrival[members] + b[B_MAX_WAIT]
        last = np.array([-np.inf, 0.0])
        # The lanes (resumed requests) go first: their work is ahead of everyone. The running mean of the
        # backlog is a scratch copy: these are not arrivals.
        commit_due_work(members, self.prefill[members], float(self.work[:, nq].sum()),
                        float(self.depth[:, nq].sum()), b[B_ADMITTED], b[B_ADMITTED_N], b[B_FACTOR],
                        b[B_BACKLOG_MEAN], 1 << 40, last, b[B_OUT_WORK], self.due_work, self.due_n,
                        self.backlogs)
        b[B_LAST_DUE], b[B_LAST_DUE_N] = last
        unlink(members, self.cls, self.qid, self.prefill, self.nxt, self.prv, self.head, self.tail, self.depth,
               self.work)
        link_in_order(members, self.deadline, self.arrival, self.cls, self.qid, self.prefill, self.nxt, self.prv,
                      self.head, self.tail, self.depth, self.work)

    def resize(self, slots: np.ndarray, size: np.ndarray, prefill: np.ndarray) -> None:
        """New job sizes and work (`prefill`) for linked slots: the sizes they were queued with no longer hold (an
        engine's prefix cache was reset). Each keeps its arrival, deadline, due point and class; one in a lane keeps
        its place there, one in a queue is routed again by its new size, and the queues are relinked in
        (deadline, arrival, insertion) order, as commits would have linked them."""
        self.flush()
        self._cancel_replay()   # the queues' members change beyond the log's reach
        nq = self.n_queues
        in_lane = self.qid[slots] == nq
        lane = slots[in_lane]
        np.add.at(self.work, (self.cls[lane], nq), prefill[in_lane] - self.prefill[lane])
        self.size[lane], self.prefill[lane] = size[in_lane], prefill[in_lane]
        queued = slots[~in_lane]
        if not queued.shape[0]:
            return
        members = list_members(self.head, self.nxt, 0, nq, self.n_linked)
        unlink(members, self.cls, self.qid, self.prefill, self.nxt, self.prv, self.head, self.tail, self.depth,
               self.work)
        self.size[queued], self.prefill[queued] = size[~in_lane], prefill[~in_lane]
        self.qid[queued] = route_lengths(self.size[queued], self.q_lo, self.q_hi, self.n_main, self.band_up,
                                         self.band_down, self.b_center, self.b_active, self.b_idle,
                                         self.bubble_width, self.max_queues)
        self._bubbles_as_queues()
        self._bubbles_open = self._bubbles_open or bool(self.b_active.any())
        members = members[np.lexsort((self.seq[members], self.arrival[members], self.deadline[members]))]
        link_in_order(members, self.deadline, self.arrival, self.cls, self.qid, self.prefill, self.nxt, self.prv,
                      self.head, self.tail, self.depth, self.work)

    @property
    def admitted_work(self) -> float:
        """Effective prefill tokens of every request popped for admission (the starvation bound's clock)..."""
        return float(self._bound[B_ADMITTED])

    @property
    def admitted_n(self) -> float:
        """...and how many they are (progress in two parts: ewsjf_core.progress_bound)."""
        return float(self._bound[B_ADMITTED_N])

    @property
    def out_work(self) -> float:
        """Output tokens a request's work counts in the starvation bound (ewsjf_core.progress_bound)."""
        return self._progress_output_weight * self.outputs.per_request

    @property
    def waiting_work(self) -> float:
        """Effective prefill tokens of every linked request (all classes, queues and lanes)."""
        return float(self.work.sum())

    @property
    def window_count(self) -> int:
        return self._window_fill

    # ----- slots -----
    def _grow(self, new_capacity: int) -> None:
        old = self.capacity
        slot_f = np.zeros((len(SLOT_FIELDS), new_capacity))
        slot_f[:, :old] = self._slot_f
        self._slot_f = slot_f
        for i, name in enumerate(SLOT_FIELDS):
            setattr(self, name, slot_f[i])
        for name, fill in (("seq", 0), ("cls", 0), ("qid", 0), ("nxt", -1), ("prv", -1)):
            arr = getattr(self, name)
            grown = np.full(new_capacity, fill, dtype=arr.dtype)
            grown[:old] = arr
            setattr(self, name, grown)
        self._free.extend(range(new_capacity - 1, old - 1, -1))
        self.capacity = new_capacity

    def alloc(self) -> int:
        if self._freed:
            self._take_freed()
        if not self._free:
            self._grow(self.capacity * 2)
        return self._free.pop()

    def _take_freed(self) -> None:
        """Move the slots freed since onto the free stack, in the order they were freed (an array's conversion
        comes at the first add after it rather than inside the step that freed it)."""
        free = self._free
        for slots in self._freed:
            free.extend(slots if type(slots) is list else slots.tolist())
        self._freed = []

    def class_row(self, priority: int) -> int:
        """The row of a priority class, opened on first use (reusing a retired row when there is one)."""
        row = self.row_of_priority.get(priority)
        if row is None:
            if self._free_rows:
                row = self._free_rows.pop()
            else:
                row = self.head.shape[0]
                grow = max(row, 1)
                self.head, self.tail, self.depth = (
                    np.vstack([a, np.full((grow, a.shape[1]), f, a.dtype)])
                    for a, f in ((self.head, -1), (self.tail, -1), (self.depth, 0)))
                self.work = np.vstack([self.work, np.zeros((grow, self.work.shape[1]))])
                self._free_rows.extend(range(self.head.shape[0] - 1, row, -1))
            self.row_of_priority[priority] = row
            self._order_classes()
        return row

    def _order_classes(self) -> None:
        self.class_order = np.array([self.row_of_priority[p] for p in sorted(self.row_of_priority)], np.int32)

    def retire_empty_classes(self) -> int:
        """Close the priority classes with no request linked (call right after a flush, when nothing is
        staged); returns how many. Their rows are reused by later classes, and the row arrays shrink when
        at most a quarter of them is in use, so a stream of distinct priorities leaves the per-step cost
        (classes visited) and memory flat."""
        if len(self.row_of_priority) <= 1 or self._staged_adds or self._staged_fronts:
            return 0
        occupied = self.depth[self.class_order].any(axis=1)
        if occupied.all():
            return 0
        empty = set(self.class_order[~occupied].tolist())
        for p in [p for p, r in self.row_of_priority.items() if r in empty]:
            del self.row_of_priority[p]
        self._free_rows.extend(sorted(empty, reverse=True))
        self._order_classes()
        if self.head.shape[0] > 8 and 4 * len(self.row_of_priority) <= self.head.shape[0]:
            self._compact_rows()
        return len(empty)

    def _compact_rows(self) -> None:
        """Renumber the live classes 0..n-1 (in priority order) and drop the other rows."""
        self._cancel_replay()
        live = self.class_order
        remap = np.full(self.head.shape[0], -1, np.int32)
        remap[live] = np.arange(live.shape[0], dtype=np.int32)
        members = list_members(self.head, self.nxt, 0, self.head.shape[1], self.n_linked)
        self.cls[members] = remap[self.cls[members]]
        keep = live if live.shape[0] else np.zeros(1, np.int32)  # at least one row
        self.head, self.tail, self.depth, self.work = (a[keep] for a in (self.head, self.tail, self.depth, self.work))
        self.row_of_priority = {p: int(remap[r]) for p, r in self.row_of_priority.items()}
        self._free_rows = [] if live.shape[0] else [0]
        self._order_classes()

    def stage(self, slot: int, size: float, prefill: float, arrival: float, row: int, front: bool) -> None:
        """Record a request for the next flush: into its queue by size, or (front) onto its lane."""
        (self._staged_fronts if front else self._staged_adds).extend((slot, size, prefill, arrival, row))

    def admit(self, slots: np.ndarray, reasons: np.ndarray, now: float) -> None:
        """Popped for admission at `now` (an order's prefix, with its reasons): advance the admission progress, record
        it just after the last due request among them (ewsjf_core.selection's bypass share counts from there), observe
        the admission-count waits it completes, then discard them."""
        b = self._bound
        mark_due_admission(slots, reasons, slots.shape[0], self.prefill, b)
        b[B_ADMITTED] += float(self.prefill[slots].sum())
        b[B_ADMITTED_N] += slots.shape[0]
        observe_admissions(b[B_ADMITTED_N], now, b[B_COUNTS:])
        self.outputs.observe_admitted(slots.shape[0])
        self.discard(slots)

    def observe_decode(self, decode_tokens: list[int]) -> None:
        """Engine steps' decode tokens, in order (feed the output term of the progress work)."""
        self.outputs.observe_steps(decode_tokens)
        if self._progress_output_weight:   # 0 (the default): out_work stays 0, no write per step
            self._bound[B_OUT_WORK] = self.out_work

    @property
    def time_floor(self) -> dict[str, float]:
        """The time floor (ewsjf_core.progress_bound): how long no request is due (tail_s, as of the next commit), the
        larger of the backlogs' lower bound (backlog_s: their quantile over fastest_prefill_tps) and the admission-count
        wait (count_wait_s, times count_share: ewsjf_core.admission_wait). Seconds 0 before a rate is set."""
        b = self._bound
        rate = float(b[B_PREFILL_RATE])
        count_wait, share = float(b[B_COUNTS + S_TAU]), float(b[B_COUNT_SHARE])
        backlog = float(b[B_TAIL_STATE]) / rate if rate > 0.0 else 0.0
        tail = max(backlog, share * count_wait) if rate > 0.0 else 0.0
        return {"tail_s": tail, "backlog_s": backlog, "fastest_prefill_tps": rate, "count_wait_s": count_wait,
                "count_share": share}

    def set_time_floor(self, tokens_per_s: float, count_share: float) -> None:
        """The engine's fastest prefill rate (a full token budget of prefill per step, at its marginal cost), which
        turns the time floor's backlogs into seconds (ewsjf_core.progress_bound: a lower bound of FCFS's waits), and
        the share of the admission-count wait the floor counts (ewsjf_core.admission_wait: 1 - the memory-time share
        of a request's work), taking the admission-count waits' quantile anew."""
        b = self._bound
        b[B_PREFILL_RATE] = tokens_per_s
        b[B_COUNT_SHARE] = count_share
        count_wait_quantile(b[B_TAIL_QUANTILE], b[B_COUNTS:])

    def delay_due(self, arrival: float, work: float) -> None:
        """A running request that arrived at `arrival` was preempted and goes back with `work`. FCFS would serve it
        again before every request that arrived after it, so their due points move by its work (one request); its
        re-admission then counts as progress as before, and a preemption no longer brings them nearer their due points
        (ewsjf_core.progress_bound). Requests staged but not yet committed count it in their backlog instead (the
        commit links lanes first). Costs the requests moved, once per preemption."""
        delay_later_due(arrival, work, self.n_queues, self.tail, self.prv, self.arrival, self.due_work, self.due_n)
        b = self._bound
        b[B_LAST_DUE] += work   # later commits stay at or past these: a queue's starved requests remain its prefix
        b[B_LAST_DUE_N] += 1.0

    def retract(self, prefill: float) -> None:
        """Undo the admission progress of a popped request (its prefill) the engine put back unadmitted."""
        b = self._bound
        b[B_ADMITTED] -= prefill
        b[B_ADMITTED_N] -= 1
        b[B_DUE_ADMITTED] = min(b[B_DUE_ADMITTED], b[B_ADMITTED])
        b[B_DUE_ADMITTED_N] = min(b[B_DUE_ADMITTED_N], b[B_ADMITTED_N])
        self.outputs.observe_admitted(-1)

    def discard(self, slots: np.ndarray | list[int]) -> None:
        """Mark linked slots to unlink (and free) at the next flush."""
        if isinstance(slots, list):
            self._to_unlink_few.extend(slots)
        else:
            self._to_unlink.append(slots)

    def flush(self) -> None:
        """Commit staged changes in one kernel call: unlink and free discarded slots, then route and link
        staged ones."""
        if self._to_unlink or self._to_unlink_few or self._staged_adds or self._staged_fronts:
            gone = self._take_gone()
            adds, fronts = self._take_staged()
            self._before_commit(gone, adds)
            self.n_linked += commit_flush(gone, _staged_rows(adds), _staged_rows(fronts), *self._kernel_state())
            self._release(gone)

    def flush_staged(self) -> None:
        """Route and link staged requests (leaves discarded slots for the next flush)."""
        if self._staged_adds or self._staged_fronts:
            adds, fronts = self._take_staged()
            self._before_commit(_NO_SLOTS, adds)
            self.n_linked += commit_flush(_NO_SLOTS, _staged_rows(adds), _staged_rows(fronts), *self._kernel_state())

    def begin(self, order: np.ndarray, order_reasons: np.ndarray, popped: list[int] | np.ndarray, now: float,
              limit: int, params: np.ndarray, max_idle: int, cost_state: np.ndarray, feedback: array, out_work: float):
        """A step's start in one kernel call (ewsjf_core.step_kernel): fit the cost model's `cost_state` to
        `feedback` (flat rows (duration_s, prefill_tokens, decode_tokens); its coefficients and out_work go
        into `params`), admit `popped` (the slots of the first len(popped) of the last `order`, as a list or
        an array: still linked, not discarded; `order_reasons`, the order's, tell the due ones), flush, age the
        bubbles, and return the first `limit` slots in admission order."""
        n_popped = len(popped)
        if not (limit or n_popped or feedback or self._to_unlink or self._to_unlink_few or self._staged_adds
                or self._staged_fronts or self._bubbles_open):
            return _NO_SLOTS, _NO_REASONS, _NO_SLOTS, _NO_SCORES   # nothing changed: no kernel call
        gone = self._take_gone()
        adds, fronts = self._take_staged()   # nothing staged: the empty buffers go in as they are
        if n_popped:
            self.outputs.observe_admitted(n_popped)
        if self._partition_job is not None:   # rare: its log takes what is unlinked as one array
            self._before_commit(np.concatenate((gone, order[:n_popped])), adds)
        delta, slots, reasons, sources, scores, bubbles = begin_step_kernel(
            order, order_reasons, n_popped, gone, adds, fronts, *self._kernel_state(), max_idle, now, limit,
            self.class_order, params, cost_state, feedback, out_work)
        self._bubbles_open = bubbles > 0
        self.n_linked += delta
        self._release(gone)
        self._release(popped)
        return slots, reasons, sources, scores

    def _take_gone(self) -> np.ndarray:
        if not (self._to_unlink or self._to_unlink_few):
            return _NO_SLOTS
        parts = self._to_unlink + ([np.array(self._to_unlink_few, np.int32)] if self._to_unlink_few else [])
        self._to_unlink = []
        self._to_unlink_few = []
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _take_staged(self) -> tuple[array, array]:
        """The staged arrivals and fronts, handed over as their flat buffers (STAGED_WIDTH per request); the
        commit they go to records the arrivals in the window and may open bubbles for them."""
        adds, fronts = self._staged_adds, self._staged_fronts
        if adds:
            self._staged_adds = array("d")
            n_adds = len(adds) // STAGED_WIDTH
            self._arrivals += n_adds
            self._window_fill = min(self.window.shape[0], self._window_fill + n_adds)
            self._bubbles_open = True
        if fronts:
            self._staged_fronts = array("d")
        return adds, fronts

    def _before_commit(self, gone: np.ndarray, adds: array) -> None:
        """A background partition reads the arrays a commit writes: wait for it, and log the commit (`adds`:
        the staged buffer) for its install (ewsjf_core.reroute)."""
        job = self._partition_job
        if job is not None:
            job.wait()
            added = _staged_rows(adds)[:, COL_SLOT].astype(np.int32)
            job.record(gone, self.cls[gone], self.prefill[gone], added)

    def _release(self, gone: np.ndarray | list[int]) -> None:
        """Free unlinked slots (an array or a list: read by the next alloc, _take_freed)."""
        if len(gone):
            self._freed.append(gone)
            if len(self._freed) > 64:   # bounds what the batches' views keep alive while nothing is added
                self._take_freed()

    def _kernel_state(self) -> tuple:
        """The arrays and settings commit_flush works on, in its argument order after (gone, adds, fronts)."""
        return (self._counters, self._bound, self._slot_f, self.seq, self.cls, self.qid, self.nxt, self.prv,
                self.head, self.tail, self.depth, self.work,
                self.q_lo, self.q_hi, self.n_main, self.band_up, self.band_down, self.b_center, self.b_active,
                self.b_idle, self.bubble_width, self.q_active, self.q_pos, self.q_mean, self.window)

    # ----- per step -----
    def order(self, now: float, limit: int, params: np.ndarray):
        """The first `limit` slots in admission order (flushes first)."""
        self.flush()
        b = self._bound
        return policy_order(now, b[B_ADMITTED], b[B_ADMITTED_N], b[B_DUE_ADMITTED], b[B_DUE_ADMITTED_N], limit,
                            self.class_order, self.head, self.nxt, self.size, self.prefill, self.arrival,
                            self.deadline, self.due_work, self.due_n, self.not_before, self.backlogs, self.q_active,
                            self.q_pos, self.q_mean, params)

    def age_bubbles(self, max_idle: int) -> None:
        """One step's round of bubble aging (flushes first, so depths are current)."""
        self.flush()
        if self._bubbles_open:
            alive = age_bubbles(self.depth, self.depth.shape[0], self.max_queues, self.b_active, self.b_idle,
                                max_idle)
            self.q_active[self.max_queues:] = self.b_active
            self._bubbles_open = alive > 0
