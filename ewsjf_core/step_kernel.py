"""A step's start in one jitted call: admit what was popped, flush, age bubbles, compute the order.

Inside an engine every call into a kernel or a numpy function finds cold caches (the engine's own step
touched megabytes in between), and then costs 15-40 us however little it computes. `begin_step_kernel`
does in one call what EWSJFQueue.begin_step and the step's first pop used to do in five or more (fitting the
cost model to the steps since, the admission sum, the flush, bubble aging, the policy order), composing the
same kernels in the same order,
so the admission order is unchanged. A pure function over the arrays the WaitingSet owns.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ewsjf_core.admission_wait import observe_admissions
from ewsjf_core.commit import (B_ADMITTED, B_ADMITTED_N, B_COUNTS, B_DUE_ADMITTED, B_DUE_ADMITTED_N,
                               F_ARRIVAL, F_BACKLOGS, F_DEADLINE, F_DUE_N, F_DUE_WORK, F_NOT_BEFORE, F_PREFILL, F_SIZE,
                               STAGED_WIDTH, commit_flush, pairwise_sum)
from ewsjf_core.cost_model import fit_steps, read_coefficients
from ewsjf_core.scoring import P_C0, P_C1, P_C2, P_OUT_WORK
from ewsjf_core.selection import count_admitted, policy_order


@njit(cache=True, nogil=True)
def age_bubbles(depth: np.ndarray, n_rows: int, base: int, active: np.ndarray, idle: np.ndarray,
                max_idle: int) -> int:
    """Count an empty round for each empty active bubble; retire those idle for max_idle rounds."""
    alive = 0
    for j in range(active.shape[0]):
        if not active[j]:
            continue
        occupied = 0
        for c in range(n_rows):
            occupied += depth[c, base + j]
        idle[j] = 0 if occupied > 0 else idle[j] + 1
        if idle[j] >= max_idle:
            active[j] = False
        else:
            alive += 1
    return alive


@njit(cache=True, nogil=True)
def mark_due_admission(slots: np.ndarray, reasons: np.ndarray, n: int, prefill: np.ndarray, bound: np.ndarray) -> None:
    """An order's first n slots are admitted: the bound's B_DUE_ADMITTED (prefill, requests) becomes the progress
    just after the last due one among them, counted as the order counted it (ewsjf_core.selection.count_admitted;
    unchanged if none is due). Call before the progress is advanced."""
    acct = np.array([bound[B_ADMITTED], bound[B_ADMITTED_N], bound[B_DUE_ADMITTED], bound[B_DUE_ADMITTED_N]])
    for i in range(n):
        count_admitted(acct, prefill[slots[i]], reasons[i])
    bound[B_DUE_ADMITTED], bound[B_DUE_ADMITTED_N] = acct[2], acct[3]


@njit(cache=True, nogil=True)
def buffer_rows(buf, width: int) -> np.ndarray:
    """A flat float64 buffer (array('d'), filled from Python without numpy) as rows of `width`."""
    rows = np.empty((len(buf) // width, width))
    for i in range(rows.shape[0]):
        for j in range(width):
            rows[i, j] = buf[i * width + j]
    return rows


@njit(cache=True, nogil=True)
def begin_step_kernel(order: np.ndarray, order_reasons: np.ndarray, n_popped: int, gone: np.ndarray, adds_buf,
                      fronts_buf, counters: np.ndarray, bound: np.ndarray, slot_f: np.ndarray, seq: np.ndarray,
                      cls: np.ndarray, qid: np.ndarray, nxt: np.ndarray, prv: np.ndarray, head: np.ndarray,
                      tail: np.ndarray, depth: np.ndarray, work: np.ndarray, q_lo: np.ndarray, q_hi: np.ndarray,
                      n_main: int, band_up: float, band_down: float, b_center: np.ndarray, b_active: np.ndarray,
                      b_idle: np.ndarray, bubble_width: float, q_active: np.ndarray, q_pos: np.ndarray,
                      q_mean: np.ndarray, window: np.ndarray, max_idle: int, now: float, limit: int,
                      class_order: np.ndarray, params: np.ndarray, cost_state: np.ndarray, feedback_buf,
                      out_work: float):
    """Fit the cost model to the step feedback not yet fitted (`feedback_buf`, rows of (duration_s,
    prefill_tokens, decode_tokens), into `cost_state`; its coefficients and out_work into `params`), advance
    the admission progress by the prefill of the first n_popped of the last `order` (popped last step; the
    admission-count waits they complete are observed at `now`: ewsjf_core.admission_wait),
    recording it just after the last due one among them (`order_reasons`, the order's, tell them;
    ewsjf_core.selection's bypass share counts from there), flush (see commit_flush: `gone`, then those popped,
    unlinked; the staged rows of `adds_buf` and `fronts_buf` committed), age the bubbles when any is open, then
    compute the first `limit` slots in admission order. The buffers come flat (buffer_rows): the host hands
    over what it staged without a numpy call. Returns (change in linked requests, slots, reasons, source queues
    and scores as policy_order, bubble queues open)."""
    feedback = buffer_rows(feedback_buf, 3)
    params[P_OUT_WORK] = out_work
    if feedback.shape[0]:
        fit_steps(cost_state, feedback)
        c0, c1, c2, _ = read_coefficients(cost_state)
        params[P_C0] = c0
        params[P_C1] = c1
        params[P_C2] = c2
    prefill = slot_f[F_PREFILL]
    admitted = order[:n_popped]
    if n_popped:
        popped_work = np.empty(admitted.shape[0])
        for i in range(admitted.shape[0]):
            popped_work[i] = prefill[admitted[i]]
        mark_due_admission(order, order_reasons, n_popped, prefill, bound)
        bound[B_ADMITTED] += pairwise_sum(popped_work)
        bound[B_ADMITTED_N] += admitted.shape[0]
        observe_admissions(bound[B_ADMITTED_N], now, bound[B_COUNTS:])
        gone = np.concatenate((gone, admitted)) if gone.shape[0] else admitted
    adds = buffer_rows(adds_buf, STAGED_WIDTH)
    fronts = buffer_rows(fronts_buf, STAGED_WIDTH)
    delta = commit_flush(gone, adds, fronts, counters, bound, slot_f, seq, cls, qid, nxt, prv, head, tail, depth,
                         work, q_lo, q_hi, n_main, band_up, band_down, b_center, b_active, b_idle, bubble_width,
                         q_active, q_pos, q_mean, window)
    base = q_active.shape[0] - b_active.shape[0]
    bubbles = 0
    for j in range(b_active.shape[0]):
        bubbles += b_active[j]
    if bubbles:
        bubbles = age_bubbles(depth, depth.shape[0], base, b_active, b_idle, max_idle)
        for j in range(b_active.shape[0]):
            q_active[base + j] = b_active[j]
    slots, reasons, sources, scores = policy_order(now, bound[B_ADMITTED], bound[B_ADMITTED_N], bound[B_DUE_ADMITTED],
                                                   bound[B_DUE_ADMITTED_N], limit, class_order, head, nxt,
                                                   slot_f[F_SIZE], prefill, slot_f[F_ARRIVAL],
                                                   slot_f[F_DEADLINE], slot_f[F_DUE_WORK], slot_f[F_DUE_N],
                                                   slot_f[F_NOT_BEFORE], slot_f[F_BACKLOGS], q_active, q_pos,
                                                   q_mean, params)
    return delta, slots, reasons, sources, scores, bubbles
