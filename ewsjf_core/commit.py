"""One flush of the waiting set in one jitted call: unlink what left, then commit what arrived.

A flush used to be 6-8 kernel calls (unlink, commit fields, due points, route, link, push_front), each
paying the call overhead (~0.6 us plus ~0.08 us per array argument). `commit_flush` composes the same
kernels in the same order inside one call, so a step pays that overhead once. It is a pure function over
the arrays it is given: the WaitingSet (ewsjf_core.waiting) owns them and is the only caller.

Staged requests arrive as one float64 matrix per kind, a row per request: STAGED_COLUMNS (slot, job size,
effective prefill tokens, arrival time, class row), built from Python lists with one conversion.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ewsjf_core import admission_wait
from ewsjf_core.admission_wait import note_arrivals
from ewsjf_core.links import link_in_order, push_front, unlink
from ewsjf_core.progress_bound import TAIL_WINDOW, commit_due_work, commit_time_floor
from ewsjf_core.routing import route_lengths

STAGED_COLUMNS = ("slot", "size", "prefill", "arrival", "row")
COL_SLOT, COL_SIZE, COL_PREFILL, COL_ARRIVAL, COL_ROW = range(5)
STAGED_WIDTH = len(STAGED_COLUMNS)

# Layout of the int64 `counters` array: next insertion seq, window write position, window fill, arrivals
# committed since the last partition.
CTR_SEQ, CTR_WINDOW_POS, CTR_WINDOW_COUNT, CTR_ARRIVALS = range(4)
# Layout of the float64 `bound` array (ewsjf_core.progress_bound): max_wait, fcfs_wait_factor, admitted
# prefill, W_mean, the last due point (prefill part, request part), admitted requests, out_work (the output
# tokens each request's work counts at today's estimate), and the progress (prefill, requests) at the last
# admission of a due request (ewsjf_core.selection's bypass share counts from it).
B_MAX_WAIT, B_FACTOR, B_ADMITTED, B_BACKLOG_MEAN, B_LAST_DUE, B_LAST_DUE_N, B_ADMITTED_N, B_OUT_WORK = range(8)
B_DUE_ADMITTED, B_DUE_ADMITTED_N = 8, 9
# The time floor (ewsjf_core.progress_bound.commit_time_floor): its quantile (config), the engine's fastest prefill
# rate (tokens/s, the host sets it from the cost model), its state (tau in work, the last floor, commits seen) and
# the ring of the last TAIL_WINDOW backlogs; then the share of the admission-count wait it counts (the host sets it
# from ewsjf_core.kv_work) and that wait's own block (ewsjf_core.admission_wait's layout).
B_TAIL_QUANTILE, B_PREFILL_RATE, B_TAIL_STATE, B_TAIL_RING = 10, 11, 12, 15
B_COUNT_SHARE = B_TAIL_RING + TAIL_WINDOW
B_COUNTS = B_COUNT_SHARE + 1
BOUND_SIZE = B_COUNTS + admission_wait.SIZE
# The per-slot float64 fields, rows of one `slot_f` array (each kernel call pays per array argument: one
# array for eight fields), in this order.
SLOT_FIELDS = ("size", "prefill", "arrival", "deadline", "due_work", "due_n", "not_before", "backlogs")
F_SIZE, F_PREFILL, F_ARRIVAL, F_DEADLINE, F_DUE_WORK, F_DUE_N, F_NOT_BEFORE, F_BACKLOGS = range(8)


@njit(cache=True, nogil=True)
def _block_sum(a: np.ndarray, lo: int, n: int) -> float:
    """numpy's pairwise-sum leaf (n <= 128): eight running sums, combined as a tree, then the tail."""
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[lo + i]
        return res
    r = np.empty(8)
    for j in range(8):
        r[j] = a[lo + j]
    i = 8
    while i < n - (n % 8):
        for j in range(8):
            r[j] += a[lo + i + j]
        i += 8
    res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@njit(cache=True, nogil=True)
def pairwise_sum(a: np.ndarray) -> float:
    """Sum of a 1-D array in numpy's pairwise order, so it equals ndarray.sum() bit for bit (the due points,
    and with them the admission order, must not depend on which side summed the backlog). numpy halves
    blocks over 128 (the half rounded down to a multiple of 8); the halving runs on an explicit stack
    (a recursive kernel cannot be loaded from numba's cache)."""
    if a.shape[0] <= 128:
        return _block_sum(a, 0, a.shape[0])
    s_lo = np.empty(64, np.int64)
    s_n = np.empty(64, np.int64)
    s_state = np.empty(64, np.int64)
    s_left = np.empty(64)
    top = 0
    s_lo[0], s_n[0], s_state[0] = 0, a.shape[0], 0
    ret = 0.0
    while top >= 0:
        lo, n = s_lo[top], s_n[top]
        if n <= 128:
            ret = _block_sum(a, lo, n)
            top -= 1
            continue
        half = n // 2
        half -= half % 8
        if s_state[top] == 0:      # sum the left half first
            s_state[top] = 1
            top += 1
            s_lo[top], s_n[top], s_state[top] = lo, half, 0
        elif s_state[top] == 1:    # then the right half
            s_left[top] = ret
            s_state[top] = 2
            top += 1
            s_lo[top], s_n[top], s_state[top] = lo + half, n - half, 0
        else:
            ret = s_left[top] + ret
            top -= 1
    return ret


@njit(cache=True, nogil=True)
def _commit_fields(staged: np.ndarray, slots: np.ndarray, size: np.ndarray, prefill: np.ndarray,
                   arrival: np.ndarray, cls: np.ndarray, seq: np.ndarray, deadline: np.ndarray,
                   due_work: np.ndarray, due_n: np.ndarray, not_before: np.ndarray, backlogs: np.ndarray,
                   work: np.ndarray, depth: np.ndarray, counters: np.ndarray, bound: np.ndarray,
                   arrivals: bool) -> None:
    """Write a staged batch's fields, time deadlines, due points and time floors (ewsjf_core.waiting's docstring);
    arrivals (not requests put back): their FCFS admission points join the admission-count wait's."""
    first = counters[CTR_SEQ]
    for i in range(slots.shape[0]):
        s = slots[i]
        size[s] = staged[i, COL_SIZE]
        prefill[s] = staged[i, COL_PREFILL]
        arrival[s] = staged[i, COL_ARRIVAL]
        cls[s] = np.int32(staged[i, COL_ROW])
        seq[s] = first + i
        deadline[s] = staged[i, COL_ARRIVAL] + bound[B_MAX_WAIT]
    waiting_work = pairwise_sum(work.ravel())
    waiting_n = 0
    for v in depth.ravel():
        waiting_n += v
    prefills = staged[:, COL_PREFILL].copy()   # contiguous, as both callees are compiled for
    # bound[B_LAST_DUE:B_LAST_DUE_N + 1] is a view: commit_due_work updates the last due point in place.
    bound[B_BACKLOG_MEAN] = commit_due_work(
        slots, prefills, waiting_work, float(waiting_n), bound[B_ADMITTED],
        bound[B_ADMITTED_N], bound[B_FACTOR], bound[B_BACKLOG_MEAN], first, bound[B_LAST_DUE:B_LAST_DUE_N + 1],
        bound[B_OUT_WORK], due_work, due_n, backlogs)
    counts = bound[B_COUNTS:]
    if arrivals:
        note_arrivals(slots, arrival, bound[B_ADMITTED_N], float(waiting_n), counts)
    commit_time_floor(slots, prefills, arrival, waiting_work, bound[B_TAIL_QUANTILE], bound[B_PREFILL_RATE],
                      bound[B_COUNT_SHARE] * counts[admission_wait.S_TAU], bound[B_TAIL_STATE:B_TAIL_RING],
                      bound[B_TAIL_RING:B_COUNT_SHARE], not_before)
    counters[CTR_SEQ] = first + slots.shape[0]


@njit(cache=True, nogil=True)
def _record_window(sizes: np.ndarray, window: np.ndarray, counters: np.ndarray) -> None:
    """Append sizes to the ring buffer of recent arrivals (only the last len(window) of them matter)."""
    w = window.shape[0]
    k = sizes.shape[0]
    pos = counters[CTR_WINDOW_POS]
    for i in range(max(0, k - w), k):
        window[pos] = sizes[i]
        pos = (pos + 1) % w
    counters[CTR_WINDOW_POS] = pos
    counters[CTR_WINDOW_COUNT] = min(w, counters[CTR_WINDOW_COUNT] + k)


@njit(cache=True, nogil=True)
def commit_flush(gone: np.ndarray, adds: np.ndarray, fronts: np.ndarray, counters: np.ndarray,
                 bound: np.ndarray, slot_f: np.ndarray, seq: np.ndarray, cls: np.ndarray, qid: np.ndarray,
                 nxt: np.ndarray, prv: np.ndarray, head: np.ndarray, tail: np.ndarray, depth: np.ndarray,
                 work: np.ndarray, q_lo: np.ndarray, q_hi: np.ndarray, n_main: int, band_up: float,
                 band_down: float, b_center: np.ndarray, b_active: np.ndarray, b_idle: np.ndarray,
                 bubble_width: float, q_active: np.ndarray, q_pos: np.ndarray, q_mean: np.ndarray,
                 window: np.ndarray) -> int:
    """Unlink `gone`, then push `fronts` onto their lanes, then route and link `adds` into their queues (the lanes
    first: a put-back request is ahead of every arrival staged with it, and their due points count it).

    slot_f holds the per-slot fields SLOT_FIELDS. Returns the change in the number of linked requests."""
    size, prefill, arrival = slot_f[F_SIZE], slot_f[F_PREFILL], slot_f[F_ARRIVAL]
    deadline, due_work, due_n = slot_f[F_DEADLINE], slot_f[F_DUE_WORK], slot_f[F_DUE_N]
    not_before, backlogs = slot_f[F_NOT_BEFORE], slot_f[F_BACKLOGS]
    unlink(gone, cls, qid, prefill, nxt, prv, head, tail, depth, work)
    lane = head.shape[1] - 1
    max_queues = q_active.shape[0] - b_active.shape[0]
    if fronts.shape[0]:
        slots = fronts[:, COL_SLOT].astype(np.int32)
        _commit_fields(fronts, slots, size, prefill, arrival, cls, seq, deadline, due_work, due_n, not_before,
                       backlogs, work, depth, counters, bound, False)
        for i in range(slots.shape[0]):
            qid[slots[i]] = lane
        push_front(slots, cls, qid, prefill, nxt, prv, head, tail, depth, work)
    if adds.shape[0]:
        slots = adds[:, COL_SLOT].astype(np.int32)
        _commit_fields(adds, slots, size, prefill, arrival, cls, seq, deadline, due_work, due_n, not_before,
                       backlogs, work, depth, counters, bound, True)
        sizes = adds[:, COL_SIZE].copy()
        qids = route_lengths(sizes, q_lo, q_hi, n_main, band_up, band_down, b_center, b_active, b_idle,
                             bubble_width, max_queues)
        for j in range(b_active.shape[0]):  # bubbles routing opened are queues from now on
            q_active[max_queues + j] = b_active[j]
            q_pos[max_queues + j] = b_center[j]
            q_mean[max_queues + j] = b_center[j]
        for i in range(slots.shape[0]):
            qid[slots[i]] = qids[i]
        link_in_order(slots, deadline, arrival, cls, qid, prefill, nxt, prv, head, tail, depth, work)
        _record_window(sizes, window, counters)
        counters[CTR_ARRIVALS] += slots.shape[0]
    return adds.shape[0] + fronts.shape[0] - gone.shape[0]
