"""The starvation bound measured in admission progress (work), not estimated in seconds.

FCFS admits a request once everything that was waiting ahead of it has been admitted. Let A be the admitted
work so far (effective prefill tokens of every request popped for admission: a counter the engine's own
admissions advance, whatever limits them: prefill compute, KV memory or decode slots). A request committed
when A = A0 with W0 tokens waiting ahead of it would be admitted by FCFS when A reaches A0 + W0. Its due
point is

    due_work = A0 + fcfs_wait_factor * max(W0, W_mean)

and once A passes it the request is starved (served before the scored order, oldest first). So at most
(fcfs_wait_factor - 1) * W0 tokens of later arrivals can overtake it: bounded overtaking, and its wait stays
within about fcfs_wait_factor times its FCFS wait at any engine speed. No throughput estimate is involved
(the earlier form, arrival + W0 / prefill rate, assumed admissions wait for prefill compute; under KV or
decode pressure they wait far longer, and the bound fired early or late).

W_mean, a running mean of W0 over recent commits, is the floor of the slack: a request that arrives to a
short backlog may still be overtaken by about one typical backlog, which stays below the backlogs that set
FCFS's tail waits (the p99 and longest waits the bound protects). Due points are made non-decreasing in
commit order, so each FIFO queue stays sorted by them and its starved requests are a prefix.
"""

from __future__ import annotations

import numpy as np
from numba import njit

BACKLOG_MEAN_WEIGHT = 1.0 / 512.0
"""Weight of each commit in the running mean W_mean: about the last 500 arrivals count."""


@njit(cache=True, nogil=True)
def commit_due_work(slots: np.ndarray, prefills: np.ndarray, waiting_work: float, admitted: float, factor: float,
                    backlog_mean: float, n_committed: int, last_due: float, due_work: np.ndarray):
    """Write due_work for a commit batch (earlier members are ahead of later ones); factor 0 disables (inf).

    Returns (last due point, updated W_mean). The mean starts as a plain average (its first commits), then
    becomes an exponential one.
    """
    ahead = waiting_work
    for i in range(slots.shape[0]):
        s = slots[i]
        if factor <= 0.0:
            due_work[s] = np.inf
            continue
        k = n_committed + i + 1
        w = 1.0 / k if k * BACKLOG_MEAN_WEIGHT < 1.0 else BACKLOG_MEAN_WEIGHT
        backlog_mean += w * (ahead - backlog_mean)
        d = admitted + factor * max(ahead, backlog_mean)
        if d < last_due:
            d = last_due
        last_due = d
        due_work[s] = d
        ahead += prefills[i]
    return last_due, backlog_mean
