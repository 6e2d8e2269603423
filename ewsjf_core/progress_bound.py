"""The starvation bound measured in admission progress (work), not estimated in seconds.

FCFS admits a request once everything that was waiting ahead of it has been admitted. Let A be the admitted
work so far (effective prefill tokens of every request popped for admission: a counter the engine's own
admissions advance, whatever limits them: prefill compute, KV memory or decode slots). A request committed
when A = A0 with W0 tokens waiting ahead of it would be admitted by FCFS when A reaches A0 + W0. Its due
point is

    due point = A0 + fcfs_wait_factor * max(W0, W_mean)

and once A passes it the request is starved (served before the scored order, oldest first). So at most
(fcfs_wait_factor - 1) * W0 tokens of later arrivals can overtake it (plus the bypass share of
ewsjf_core.selection once it is due): bounded overtaking, and its wait stays within about fcfs_wait_factor
times its FCFS wait in admitted work, in seconds too while the engine admits work at a rate the order does
not change. No throughput estimate is involved
(the earlier form, arrival + W0 / prefill rate, assumed admissions wait for prefill compute; under KV or
decode pressure they wait far longer, and the bound fired early or late).

W_mean, a running mean of W0 over recent commits, is the floor of the slack: a request that arrives to a
short backlog may still be overtaken by about one typical backlog, which stays below the backlogs that set
FCFS's tail waits (the p99 and longest waits the bound protects). The slack beyond W0 is also capped, at that
of a request arriving to SLACK_CAP_BACKLOGS mean backlogs:

    due point = A0 + W0 + (fcfs_wait_factor - 1) * min(W0, SLACK_CAP_BACKLOGS * W_mean)   (W0 >= W_mean)

The requests that arrive behind the deepest backlogs are the ones whose FCFS waits make the tail; a slack in
proportion to W0 stretched exactly those by the whole factor, and short requests gain little from overtaking them
further. Capped (issue 9's seventeenth pass, bench/SUITE_PASSES.md): with the bypass share counted from each due
admission (ewsjf_core.selection), the suite over seeds 0-2 passes 260 of 347 checks on the A100 against 254
(fairness failures 5 -> 2), 271 of 346 on the H200 against 264 (5 -> 1). Due points are made non-decreasing in
commit order, so each FIFO queue stays sorted by them and its starved requests are a prefix.

Preemptions (WaitingSet.delay_due, delay_later_due). A running request the engine preempts goes back to the queue
and is admitted again, and A counts both admissions. Counted as progress alone, the re-admission ran the bound's
clock fast wherever the engine preempts often (KV-bound engines): requests came due before FCFS would have served
them, and EWSJF served them nearly in FCFS order (the reasoning shape at overload: 79 promotions per 100 requests,
long p99 0.86x FCFS's, the short class's mean 2x HRRN's). FCFS too would serve the preempted request again before
every request that arrived after it, so their due points move by its work when it is put back: its re-admission
brings them no nearer being due. Requests that arrived before it keep theirs: FCFS would not have run it before
them, its admission overtook them. (Taking its work out of A instead, which moves every waiting request alike, costs
O(1) but measured 5 fairness failures against 3 over the suite's presets, and 3 against 1 on the trace shapes on the
A100 and the H200.)
Issue 9's twenty-first pass (bench/SUITE_PASSES.md), with kv_work_weight 2 (ewsjf_core.kv_work).

A request's work is its effective prefill, plus, with progress_output_weight > 0, that weight times the
engine's mean output tokens per admitted request (OutputEstimate: decode tokens per step over admissions per
step, from the step feedback; no oracle). Prefill alone misweighs requests once KV memory is what the engine
runs out of: a policy that prefers short prompts with long outputs then admits few prefill tokens per
second, so a bound counted in prefill tokens comes due later in seconds than FCFS's wait (published setting
@ 10 s: long p99 1.80x FCFS's; 1.54x with weight 1). Elsewhere the output term makes every overtaking
request as costly as any other and gives up most of the short-request gain, hence off by default
(bench/SUITE_PASSES.md). Progress and due points are kept in two parts (prefill tokens, requests) and
compared at the current estimate (overdue), so the estimate's drift as the history builds up (long outputs
take long to show up) moves neither ahead of the other.

The time floor (EWSJFConfig.tail_floor_quantile, commit_time_floor). The goal bounds the long class's p99 and the
longest wait against FCFS's, not every request's own wait: a request whose FCFS wait is far below FCFS's tail can
wait longer without moving the tail, and the short requests gain what it gives up. Let T_i be a lower bound of
request i's FCFS wait in seconds: its backlog W0 over the engine's fastest prefill rate (a full token budget of
prefill per step at the fitted cost model's marginal cost, without the per-step c0 the decodes share), which no
order and no memory limit can beat. A request is not due before arrival + tau, tau the quantile (0.99, the goal's)
of T over the last TAIL_WINDOW arrivals. Since every T_i <= FCFS's wait of i, tau <= FCFS's p99 wait, so the floor
keeps the p99 and the longest wait where FCFS puts them; a request's due point in work is not moved, only held until
its floor, so the bound above still holds for every request whose due point comes later. The same floor counted in
work (the backlogs' own p99) gained more on the A100 and broke the published setting's fairness (1.41-1.69x), as
admitted work is not time there (bench/SUITE_PASSES.md, eighteenth pass). Floors are made non-decreasing in commit
order, like due points, so a queue's starved requests stay a prefix of it.

Where KV memory or the running cap holds admissions, FCFS's waits are far longer than T, and that floor holds little
(sharegpt @ 10 s: tau 7.1 s against FCFS's p99 wait of 22.5 s). The floor is the larger of tau and a measured wait,
(1 - m) tau_n: tau_n the quantile of the admission-count waits (ewsjf_core.admission_wait: how long each arrival took
to see as many admissions as there were requests ahead of it, which a short-first order reaches about as soon as FCFS
or sooner wherever prefill compute or the running cap holds admissions), m the memory-time share of the bound's work
(ewsjf_core.kv_work), where short prompts with long outputs make that count run slow (issue 9's twenty-fourth pass).
"""

from __future__ import annotations

import numpy as np
from numba import njit

BACKLOG_MEAN_WEIGHT = 1.0 / 512.0
"""Weight of each commit in the running mean W_mean: about the last 500 arrivals count."""

SLACK_CAP_BACKLOGS = 2.0
"""The slack beyond a request's own FCFS wait, (fcfs_wait_factor - 1) * W0, is at most that of a request arriving
to this many mean backlogs (module docstring)."""


TAIL_WINDOW = 1024
"""Arrivals the time floor's quantile is taken over (512-4096 gave the same suite checks on the cells it moves)."""
_TAIL_REFRESH = 16
"""The quantile is recomputed every this many commits (and at each of the first 64)."""


OUTPUT_MEMORY_STEPS = 8192.0
"""OutputEstimate's horizon in engine steps: far longer than a request's decode, so the decode tokens counted
come from about the requests counted."""
_OUTPUT_KEEP = 1.0 - 1.0 / OUTPUT_MEMORY_STEPS


class OutputEstimate:
    """Mean output tokens per admitted request: exponentially forgotten sums of decode tokens (per step) and
    of admissions. Starts at 0 (prefill-only work) and follows the engine's own history."""

    def __init__(self) -> None:
        self.decoded = 0.0
        self.admitted = 0.0
        self.per_request = 0.0

    def observe_steps(self, decode_tokens: list[int]) -> None:
        """Steps' decode tokens, in order."""
        keep = _OUTPUT_KEEP
        decoded, admitted, per_request = self.decoded, self.admitted, self.per_request
        for tokens in decode_tokens:
            decoded = keep * decoded + tokens
            admitted *= keep
            if admitted >= 1.0:
                per_request = decoded / admitted
        self.decoded, self.admitted, self.per_request = decoded, admitted, per_request

    def observe_admitted(self, n: int) -> None:
        self.admitted += n


@njit(cache=True, nogil=True)
def overdue(progress: float, progress_n: float, due_work: float, due_n: float, out_work: float) -> float:
    """Work admitted past a due point (negative: not due yet). Progress (prefill admitted, requests admitted)
    and the due point (its prefill and request parts) are compared with each request counting out_work output
    tokens at today's estimate: both sides use the same estimate, so its drift (it grows as the engine's
    history builds up) moves neither ahead of the other."""
    return progress - due_work + out_work * (progress_n - due_n)


@njit(cache=True, nogil=True)
def past_due(progress: float, progress_n: float, due_work: float, due_n: float, out_work: float) -> bool:
    return overdue(progress, progress_n, due_work, due_n, out_work) > 0.0


@njit(cache=True, nogil=True)
def _slack_scale(ahead: float, backlog_mean: float, factor: float) -> float:
    """The due point's offset over the work ahead W0 (> 0): factor * max(W0, W_mean) / W0, with the part beyond
    W0 at most (factor - 1) * SLACK_CAP_BACKLOGS * W_mean."""
    if ahead < backlog_mean:
        return factor * backlog_mean / ahead
    return 1.0 + (factor - 1.0) * min(ahead, SLACK_CAP_BACKLOGS * backlog_mean) / ahead


@njit(cache=True, nogil=True)
def tail_quantile(ring: np.ndarray, seen: int, quantile: float) -> float:
    """The quantile of the last min(seen, len(ring)) samples of a ring written at seen % len(ring) (seen > 0)."""
    k = min(seen, ring.shape[0])
    rank = min(k - 1, int(quantile * k))
    return np.partition(ring[:k], rank)[rank]


@njit(cache=True, nogil=True)
def commit_time_floor(slots: np.ndarray, prefills: np.ndarray, arrival: np.ndarray, waiting_work: float,
                      quantile: float, rate: float, count_hold: float, state: np.ndarray, ring: np.ndarray,
                      not_before: np.ndarray) -> None:
    """Write the time floors (not_before, seconds) of a commit batch (earlier members are ahead of later ones;
    prefills per member, arrival and not_before per slot): arrival + max(tau / rate, count_hold), count_hold the
    admission-count wait's part (ewsjf_core.admission_wait), in seconds.
    state: (tau in work, the last floor, commits seen), updated in place; ring: the last len(ring) backlogs.
    quantile 0 or no rate yet: no floor (-inf)."""
    tau, last, seen = state[0], state[1], int(state[2])
    ahead = waiting_work
    window = ring.shape[0]
    for i in range(slots.shape[0]):
        ring[seen % window] = ahead
        seen += 1
        if seen % _TAIL_REFRESH == 0 or seen < 64:
            tau = tail_quantile(ring, seen, quantile)
        floor = -np.inf
        if quantile > 0.0 and rate > 0.0:
            floor = max(arrival[slots[i]] + max(tau / rate, count_hold), last)
            last = floor
        not_before[slots[i]] = floor
        ahead += prefills[i]
    state[0], state[1], state[2] = tau, last, seen


@njit(cache=True, nogil=True)
def commit_due_work(slots: np.ndarray, prefills: np.ndarray, waiting_prefill: float, waiting_n: float,
                    admitted: float, admitted_n: float, factor: float, backlog_mean: float, n_committed: int,
                    last_due: np.ndarray, out_work: float, due_work: np.ndarray, due_n: np.ndarray,
                    backlogs: np.ndarray) -> float:
    """Write due points (due_work: prefill part, due_n: request part) for a commit batch (earlier members are
    ahead of later ones); factor 0 disables (inf). last_due (prefill part, request part) is updated in place;
    backlogs: each one's work ahead W0 in mean backlogs W_mean (inf before any; ewsjf_core.selection's late bypass
    share is granted only to requests behind at most SLACK_CAP_BACKLOGS).

    Returns the updated W_mean (in work at out_work per request). The mean starts as a plain average (its
    first commits), then becomes an exponential one.
    """
    ahead_p, ahead_n = waiting_prefill, waiting_n
    for i in range(slots.shape[0]):
        s = slots[i]
        if factor <= 0.0:
            due_work[s] = np.inf
            due_n[s] = 0.0
            continue
        k = n_committed + i + 1
        w = 1.0 / k if k * BACKLOG_MEAN_WEIGHT < 1.0 else BACKLOG_MEAN_WEIGHT
        ahead = ahead_p + out_work * ahead_n
        backlog_mean += w * (ahead - backlog_mean)
        backlogs[s] = ahead / backlog_mean if backlog_mean > 0.0 else np.inf
        if ahead > 0.0:   # the scale applies to both parts
            r = _slack_scale(ahead, backlog_mean, factor)
            sp, sn = r * ahead_p, r * ahead_n
        else:   # nothing ahead: the floor, counted as prefill
            sp, sn = factor * backlog_mean, 0.0
        dp, dn = admitted + sp, admitted_n + sn
        if dp + out_work * dn < last_due[0] + out_work * last_due[1]:
            dp, dn = last_due[0], last_due[1]
        last_due[0], last_due[1] = dp, dn
        due_work[s] = dp
        due_n[s] = dn
        ahead_p += prefills[i]
        ahead_n += 1.0
    return backlog_mean


@njit(cache=True, nogil=True)
def delay_later_due(arrival_p: float, work: float, n_queues: int, tail: np.ndarray, prv: np.ndarray,
                    arrival: np.ndarray, due_work: np.ndarray, due_n: np.ndarray) -> None:
    """Move by (work, one request) the due points of every queued request that arrived after arrival_p (a preempted
    request put back: module docstring). Each queue is in arrival order, so its later arrivals are a suffix: walked
    from its tail, the cost is the requests moved plus one per queue (the lanes, columns n_queues and on, untouched)."""
    for c in range(tail.shape[0]):
        for q in range(n_queues):
            s = tail[c, q]
            while s >= 0 and arrival[s] > arrival_p:
                due_work[s] += work
                due_n[s] += 1.0
                s = prv[s]
