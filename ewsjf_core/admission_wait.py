"""The admission-count wait: the time floor's estimate of FCFS's waits where prefill is not what holds admissions.

The time floor (ewsjf_core.progress_bound) holds a request until the tail of FCFS's waits, so that the short
requests may overtake it until then. Its first estimate of that tail, tau / R (the recent backlogs' quantile over
the engine's fastest prefill rate), is a lower bound, and a loose one wherever KV memory or the running cap, not
prefill compute, holds admissions: on sharegpt @ 10 s it is 7.1 s (median over the run's second half) against FCFS's p99
wait of 22.5 s (scripts/floor_estimates.py; issue 9's twenty-fourth pass, bench/SUITE_PASSES.md).

FCFS admits a request once the n requests waiting ahead of it are admitted. With N the engine's admissions so far
(whatever the order), a request committed at N0 is where FCFS would admit it when N reaches N0 + n: its FCFS
admission point in admissions. Its admission-count wait is the time from its arrival until N passes that point,
observed for every arrival (a FIFO of pending points; each one passed records a wait), and tau_n is the quantile of
the last TAIL_WINDOW of them, taken when the host re-reads the floor's rate (every 64 engine steps: a quantile reads
the whole ring, ~30 us with cold caches, where the waits' writes are sequential). It is measured, not estimated from a
rate, so it sees whatever holds admissions.

When a wait ends: N grows when the queue's next round folds the last step's pops into the bound (the step kernel, or
WaitingSet.admit), at that round's time, not at the pops'. Under an engine that consults the queue only while requests
wait (vLLM's lazy begin_step, the simulator's), at sparse traffic the next round is the next arrival's: the waits then
include the gaps between arrivals (mooncake @ 1 s: tau_n 78 s against FCFS's longest wait of 14 s;
scripts/floor_estimates.py mooncake 1). Timed at the pops instead, tau_n there is 2.4 s, and the twenty-fourth pass's
held-out fairness gains go (A100: five fairness misses against none, at 1.25-1.33x, near the bound; not through
fewer requests promoted as due: 577 against 575 at chat_bursty seed 2 @ 1 s, scripts/suite_blockers.py;
bench/SUITE_PASSES.md, twenty-fifth pass). Kept as measured until what the inflation does there is understood.

Why not above FCFS's waits (an estimate, not a bound): wherever prefill compute or the running cap holds admissions, a
policy that admits the short requests first admits about as many requests per second as FCFS or more (a short
request costs less compute and holds one running slot like any other), and fewer requests wait ahead of an arrival
(the short ones left first).
Not so where KV memory holds admissions and the outputs hold the memory: short prompts with long outputs fill the
cache with fewer admissions, and the count wait ran past FCFS's waits (the published setting on the H100: long p99
1.25-1.40x FCFS's at 3 and 10 s). The share m of memory-time in the bound's work (ewsjf_core.kv_work) measures how
far that is so, and the floor counts (1 - m) tau_n: it leans back on the lower bound as the outputs' memory decides.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ewsjf_core.progress_bound import TAIL_WINDOW, tail_quantile

PENDING = 8192
"""Arrivals whose FCFS admission point is still ahead of the admissions. Past this many (a backlog deeper than that),
later arrivals go unobserved until points are passed: their neighbours in arrival order wait about alike."""

# Layout of the state: the pending FIFO's head and tail (counts), waits observed, tau_n (seconds).
S_HEAD, S_TAIL, S_SEEN, S_TAU = range(4)
STATE_SIZE = 4
SIZE = STATE_SIZE + TAIL_WINDOW + 2 * PENDING
"""The whole: state, the ring of the last TAIL_WINDOW waits, then PENDING (point, arrival) pairs."""


@njit(cache=True, nogil=True)
def note_arrivals(slots: np.ndarray, arrival: np.ndarray, admitted_n: float, waiting_n: float,
                  counts: np.ndarray) -> None:
    """Arrivals committed in this order (arrival per slot), waiting_n requests queued ahead of the first: their FCFS
    admission points join the FIFO (counts: this module's layout)."""
    pending = counts[STATE_SIZE + TAIL_WINDOW:]
    cap = pending.shape[0] // 2
    head, tail = int(counts[S_HEAD]), int(counts[S_TAIL])
    for i in range(slots.shape[0]):
        if tail - head >= cap:
            break
        k = tail % cap
        pending[2 * k] = admitted_n + waiting_n + i
        pending[2 * k + 1] = arrival[slots[i]]
        tail += 1
    counts[S_TAIL] = tail


@njit(cache=True, nogil=True)
def observe_admissions(admitted_n: float, now: float, counts: np.ndarray) -> None:
    """The admissions reached admitted_n at `now`: each pending point passed records its arrival's wait. Sequential
    writes only: the quantile is taken apart (count_wait_quantile), as it reads the whole ring."""
    ring = counts[STATE_SIZE:STATE_SIZE + TAIL_WINDOW]
    pending = counts[STATE_SIZE + TAIL_WINDOW:]
    cap = pending.shape[0] // 2
    head, tail, seen = int(counts[S_HEAD]), int(counts[S_TAIL]), int(counts[S_SEEN])
    k, r = head % cap, seen % TAIL_WINDOW
    while head < tail and pending[2 * k] <= admitted_n:
        ring[r] = now - pending[2 * k + 1]
        head += 1
        seen += 1
        k = k + 1 if k + 1 < cap else 0
        r = r + 1 if r + 1 < TAIL_WINDOW else 0
    counts[S_HEAD], counts[S_SEEN] = head, seen


@njit(cache=True, nogil=True)
def count_wait_quantile(quantile: float, counts: np.ndarray) -> float:
    """tau_n: the quantile of the last TAIL_WINDOW waits observed (0 before any), kept in the state."""
    seen = int(counts[S_SEEN])
    if seen > 0:
        counts[S_TAU] = tail_quantile(counts[STATE_SIZE:STATE_SIZE + TAIL_WINDOW], seen, quantile)
    return counts[S_TAU]
