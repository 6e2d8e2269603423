"""Selection order: which waiting requests the engine should admit next, in order (hot path, per step).

Priority classes are served strictly in urgency order (lower priority value first). Within a class:
  1. the resume lane: requests put back with prepend (preempted), most recently prepended first;
  2. starved requests: any request past its time deadline (arrival + max_wait) or past both its due point in
     admission progress and its time floor (ewsjf_core.progress_bound), oldest arrival first (across queues).
     Before each, heads of shorter queues (shortest first; not starved themselves) may bypass it while their effective
     work (prefill + the output estimate each) sums to at most bypass_share * its own (bypass_share =
     fcfs_wait_factor - 1; none for a request past its max_wait deadline), less the work admitted since it
     became due or since the last admission of a due request, whichever came later (so the share is spent
     once over all calls, not once per call: per call, a due request waited unboundedly under KV pressure,
     each step's order granting a fresh share; yet each due request of a run of them grants it afresh: counted
     from its own due point alone, the share of a request due long since is spent, and short requests waited
     for the whole run, 26-47 s at mooncake @ overload): a long request that has become due then delays short
     ones by a bounded amount of work instead of blocking them. Where that share would stop them, the late
     share (EWSJFConfig.late_bypass_share, scaled by the steps the running cap did not hold) still lets them pass
     while the due request's own lateness, the work admitted past its own due point, stays below that share of its
     work: spent by the first due requests of a run, it does not stretch the run, and it is granted only to a
     request that arrived behind at most SLACK_CAP_BACKLOGS mean backlogs (the deep backlogs set FCFS's tail; issue
     9's thirtieth pass, bench/SUITE_PASSES.md). With
     own_size_slack k > 0, a request's due point is compared as k times its own prefill later (an overtaking
     window proportional to its size, as SJF with aging grants; k = 0.5 by default, bench/SUITE_PASSES.md sixth to
     ninth passes);
  3. the queues by descending score: all of the best queue in FIFO (arrival) order, then backfill from
     the next-best queue, and so on.
Each queue is kept in deadline (and due-point) order, so its starved requests are a prefix of it: finding them costs
O(queues) per promoted request, never a scan of the waiting set. The whole call is
O(classes * queues + limit * queues_with_starved_heads).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ewsjf_core.progress_bound import SLACK_CAP_BACKLOGS, overdue, past_due
from ewsjf_core.scoring import P_BYPASS, P_LATE_BYPASS, P_OUT_WORK, P_OWN_SLACK, queue_scores

REASON_LANE, REASON_STARVED, REASON_SCORED = 0, 1, 2


@njit(cache=True, nogil=True)
def _due_work(h: int, due_work: np.ndarray, prefill: np.ndarray, own: float) -> float:
    """The prefill part of h's due point, which own_size_slack (own) moves by `own` times h's prefill."""
    return due_work[h] + own * prefill[h]


@njit(cache=True, nogil=True)
def _is_due(h: int, now: float, progress: float, progress_n: float, deadline: np.ndarray, due_work: np.ndarray,
            due_n: np.ndarray, not_before: np.ndarray, ow: float, prefill: np.ndarray, own: float) -> bool:
    """Past its max_wait deadline, or past its due point in work and its time floor (ewsjf_core.progress_bound)."""
    return now > deadline[h] or (now >= not_before[h] and past_due(
        progress, progress_n, _due_work(h, due_work, prefill, own), due_n[h], ow))


@njit(cache=True, nogil=True)
def _oldest_due_queue(cur: np.ndarray, now: float, progress: float, progress_n: float, arrival: np.ndarray,
                      deadline: np.ndarray, due_work: np.ndarray, due_n: np.ndarray, not_before: np.ndarray, ow: float,
                      prefill: np.ndarray, own: float) -> int:
    """The queue whose head is the oldest starved request (-1: none is)."""
    due = -1
    for q in range(cur.shape[0]):
        h = cur[q]
        if h >= 0 and _is_due(h, now, progress, progress_n, deadline, due_work, due_n, not_before, ow, prefill, own):
            if due < 0 or arrival[h] < arrival[cur[due]]:
                due = q
    return due


@njit(cache=True, nogil=True)
def count_admitted(acct: np.ndarray, work: float, why: int) -> None:
    """acct (admission progress: prefill, requests; then the same just after the last due request) after one
    more admission of `work` prefill, popped for `why`. The one rule both an order (_emit) and the admission of its
    popped prefix (ewsjf_core.step_kernel.mark_due_admission) count by, so they agree."""
    acct[0] += work
    acct[1] += 1.0
    if why == REASON_STARVED:
        acct[2], acct[3] = acct[0], acct[1]


@njit(cache=True, nogil=True)
def _emit(order: np.ndarray, reason: np.ndarray, source: np.ndarray, n: int, slot: int, why: int, q: int,
          acct: np.ndarray, prefill: np.ndarray) -> int:
    """Append `slot`; acct (progress as if the order so far were admitted, see count_admitted) follows it, so a
    due request further on sees the progress its turn will bring."""
    order[n] = slot
    reason[n] = why
    source[n] = q
    count_admitted(acct, prefill[slot], why)
    return n + 1


@njit(cache=True, nogil=True)
def _bypasses(order, reason, source, n: int, limit: int, cur: np.ndarray, nxt: np.ndarray, due: int, now: float,
              progress: float, progress_n: float, acct: np.ndarray, prefill: np.ndarray, deadline: np.ndarray,
              due_work: np.ndarray, due_n: np.ndarray, not_before: np.ndarray, backlogs: np.ndarray,
              q_pos: np.ndarray, by_pos: np.ndarray, params: np.ndarray) -> int:
    """Heads of shorter queues that go before the due request at cur[due] (shortest queue first) while their
    work stays within the larger of two budgets; never past a max_wait deadline. The bypass share of its own work
    is counted from the moment it became due or the last due request was admitted, whichever came later, across
    calls: the work admitted since (bypasses and everything else, this order's emitted so far included: acct, see
    _emit) is spent, so bypasses stop once the share is used up. The late share is counted from its own due point
    alone (granted only to a request behind at most SLACK_CAP_BACKLOGS mean backlogs). by_pos: the queues by position,
    ties by id. Returns the new count n."""
    ow, own = params[P_OUT_WORK], params[P_OWN_SLACK]
    d = cur[due]
    budget = 0.0
    if now <= deadline[d]:
        late = overdue(acct[0], acct[1], _due_work(d, due_work, prefill, own), due_n[d], ow)
        spent = min(late, overdue(acct[0], acct[1], acct[2], acct[3], ow))
        budget = params[P_BYPASS] * (prefill[d] + ow) - max(spent, 0.0)
        if backlogs[d] <= SLACK_CAP_BACKLOGS:
            budget = max(budget, params[P_LATE_BYPASS] * (prefill[d] + ow) - max(late, 0.0))
    # The shortest queue whose head fits and is not due goes first. Only its head changes and the budget only
    # shrinks (due-ness is fixed within the call), so a queue passed over never fits again: one walk in position
    # order, each queue drained while its head fits, is that order at O(queues + bypasses) per due request.
    for k in range(by_pos.shape[0]):
        q = by_pos[k]
        if q_pos[q] >= q_pos[due]:
            break
        h = cur[q]
        while n < limit and h >= 0 and prefill[h] + ow <= budget and not _is_due(
                h, now, progress, progress_n, deadline, due_work, due_n, not_before, ow, prefill, own):
            budget -= prefill[h] + ow
            n = _emit(order, reason, source, n, h, REASON_SCORED, q, acct, prefill)
            h = nxt[h]
        cur[q] = h
    return n


@njit(cache=True, nogil=True)
def policy_order(now: float, progress: float, progress_n: float, mark: float, mark_n: float, limit: int,
                 class_order: np.ndarray, head: np.ndarray, nxt: np.ndarray, size: np.ndarray, prefill: np.ndarray,
                 arrival: np.ndarray, deadline: np.ndarray, due_work: np.ndarray, due_n: np.ndarray,
                 not_before: np.ndarray, backlogs: np.ndarray, q_active: np.ndarray, q_pos: np.ndarray,
                 q_mean: np.ndarray, params: np.ndarray):
    """The first `limit` slots in admission order.

    head[c, q] is the first slot of class row c's queue q (-1 if empty); column q == n_queues is the
    class's resume lane. (progress, progress_n) is the admission progress that the due points (due_work,
    due_n) are compared with (ewsjf_core.progress_bound.past_due); (mark, mark_n) the progress at the last
    admission of a due request (the bypass share counts from it); backlogs[s] the work ahead of s at its commit in
    mean backlogs (ewsjf_core.progress_bound.commit_due_work). Returns (slots, reasons, source queue
    ids, scores of the first non-empty class).
    """
    nq = q_active.shape[0]
    order = np.empty(limit, dtype=np.int32)
    reason = np.empty(limit, dtype=np.int8)
    source = np.empty(limit, dtype=np.int32)
    first_scores = np.full(nq, -np.inf)
    scored_any = False
    n = 0
    cur = np.empty(nq, dtype=np.int32)
    by_pos = np.argsort(q_pos, kind="mergesort")
    acct = np.array([progress, progress_n, mark, mark_n])
    ow, own = params[P_OUT_WORK], params[P_OWN_SLACK]
    for c in class_order:
        if n >= limit:
            break
        s = head[c, nq]
        while s >= 0 and n < limit:
            n = _emit(order, reason, source, n, s, REASON_LANE, nq, acct, prefill)
            s = nxt[s]
        for q in range(nq):
            cur[q] = head[c, q]
        while n < limit:
            due = _oldest_due_queue(cur, now, progress, progress_n, arrival, deadline, due_work, due_n, not_before,
                                    ow, prefill, own)
            if due < 0:
                break
            n = _bypasses(order, reason, source, n, limit, cur, nxt, due, now, progress, progress_n, acct, prefill,
                          deadline, due_work, due_n, not_before, backlogs, q_pos, by_pos, params)
            if n >= limit:
                break
            n = _emit(order, reason, source, n, cur[due], REASON_STARVED, due, acct, prefill)
            cur[due] = nxt[cur[due]]
        if n >= limit:
            break
        scores = queue_scores(now, cur, size, prefill, arrival, q_active, q_pos, q_mean, params)
        if not scored_any:
            for q in range(nq):
                if cur[q] >= 0:
                    scored_any = True
            if scored_any:
                first_scores[:] = scores
        # Best score first; a stable sort sends ties to the lower queue id.
        by_score = np.argsort(-scores, kind="mergesort")
        for k in range(nq):
            q = by_score[k]
            s = cur[q]
            while s >= 0 and n < limit:
                n = _emit(order, reason, source, n, s, REASON_SCORED, q, acct, prefill)
                s = nxt[s]
            if n >= limit:
                break
    return order[:n], reason[:n], source[:n], first_scores
