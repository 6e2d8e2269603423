"""Where "long" starts, for a router that keeps long prefills away from short requests.

The split is the work median of the prefill work the replicas hold: the effective length below which half
of the waiting prefill tokens lie. It comes from the replicas' own reports (each EWSJF queue's depth and
mean effective length), the requests routed to them since (the router's in-flight records) and the request
being routed, so it follows the workload and the load without a constant: under a burst, when long requests
pile up in the queues, the split rises with them. A replica without queue stats (FCFS) contributes only the
requests routed there since its report.
"""

from __future__ import annotations

from typing import Sequence

from .state import ReplicaView


def waiting_work(view: ReplicaView) -> list[tuple[float, int]]:
    """(effective tokens, count) of the prefill work waiting on a replica: one entry per non-empty EWSJF
    queue (its mean length, its depth), one per request routed there after its stats were taken."""
    queues = view.stats.queues if view.stats is not None else ()
    work = [(q.mean_tokens, q.depth) for q in queues if q.depth > 0]
    work.extend((float(f.tokens), 1) for f in view.unseen)
    return work


def work_median(views: Sequence[ReplicaView], tokens: float) -> float:
    """The effective length that splits the waiting prefill work of `views`, plus a request of `tokens`, in
    two halves (the smallest length at which the cumulative work reaches half the total)."""
    work = sorted([item for v in views for item in waiting_work(v)] + [(float(tokens), 1)])
    half = sum(t * n for t, n in work) / 2.0
    total = 0.0
    for t, n in work:
        total += t * n
        if total >= half:
            return t
    return work[-1][0]
