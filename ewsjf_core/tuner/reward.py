"""The tuner's reward, term by term (EWSJF.md section 4; the exact definitions are this project's).

    R = l1 * compactness + l2 * load_balance - l3 * queue_count_penalty - l4 * latency_penalty

The first three judge the partition, from EWSJFQueue.stats()["queues"] snapshots (each queue a dict with
lo, hi, mean, spread, density, depth). Each is averaged over the snapshots taken during the window (the
replay samples stats() every few steps; live mode samples it while the trial runs), so a term reflects
the partition the traffic actually met, not only the last instant.

- compactness in [0, 1]: mean over queues of 1 / (1 + spread / mean). 1 when every queue holds a single
  length; a queue whose length spread equals its mean scores 0.5. Homogeneous queues are the point of
  Refine-and-Prune (a head request then stands for its queue).
- load_balance in [0, 1]: Jain's index of the waiting work per queue, work_q = depth_q * mean_q tokens,
  over the queues with anything waiting: (sum w)^2 / (n * sum w^2). 1 when the waiting work is spread
  evenly (or nothing waits); 1/n when one queue holds it all.
- queue_count_penalty in [0, 1]: (N - 1) / (cap - 1), N the number of queues, cap the most queues the
  tuner may allow (the max_queues upper bound plus bubbles). More queues cost more per step and dilute
  the partition statistics.
- latency_penalty >= 0: log(1 + mean_r TTFT_r / C_prefill(b_r)) over the window's requests with a first
  token, b_r the request's effective (uncached) prompt length and C_prefill the fitted prefill-cost
  model. TTFT relative to the request's own prefill cost is the slowdown a user of that size feels; the
  mean weights short requests (small C_prefill) heavily, which is what EWSJF exists to protect, and the
  log keeps a saturated window from swamping the scale of the other terms.

Default weights make latency dominate: the partition terms are bounded by 1 each and weigh 0.01, so
together they can never buy more than about 3% of mean slowdown. They break ties between candidates of
equal latency (e.g. alpha and max_queues, which latency alone often cannot tell apart).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ewsjf_core.field_checks import FloatBounds, check_float


@dataclass(frozen=True)
class RewardWeights:
    l1: float = 0.01   # compactness
    l2: float = 0.01   # load_balance
    l3: float = 0.01   # queue_count_penalty
    l4: float = 1.0    # latency_penalty

    def __post_init__(self) -> None:
        for k in asdict(self):
            check_float(self, k, FloatBounds(0.0, 1e9))


@dataclass(frozen=True)
class RewardTerms:
    compactness: float
    load_balance: float
    queue_count_penalty: float
    latency_penalty: float

    def reward(self, w: RewardWeights = RewardWeights()) -> float:
        return (w.l1 * self.compactness + w.l2 * self.load_balance
                - w.l3 * self.queue_count_penalty - w.l4 * self.latency_penalty)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def compactness(queues: Sequence[Mapping[str, Any]]) -> float:
    """Mean over queues of 1 / (1 + spread / mean); 1.0 for no queues."""
    vals = []
    for q in queues:
        mean = float(q.get("mean", 0.0) or 0.0)
        spread = float(q.get("spread", 0.0) or 0.0)
        if not (math.isfinite(mean) and math.isfinite(spread)) or mean <= 0:
            continue
        vals.append(1.0 / (1.0 + max(spread, 0.0) / mean))
    return float(np.mean(vals)) if vals else 1.0


def load_balance(queues: Sequence[Mapping[str, Any]]) -> float:
    """Jain's index of depth * mean over the queues with waiting requests; 1.0 when none wait."""
    work = []
    for q in queues:
        depth = float(q.get("depth", 0) or 0)
        mean = float(q.get("mean", 0.0) or 0.0)
        if depth > 0 and math.isfinite(mean) and mean > 0:
            work.append(depth * mean)
    if len(work) <= 1:
        return 1.0
    w = np.asarray(work)
    return float(w.sum() ** 2 / (len(w) * float(np.dot(w, w))))


def queue_count_penalty(n_queues: float, cap: float) -> float:
    """(N - 1) / (cap - 1), clipped to [0, 1]; 0 when cap <= 1."""
    if cap <= 1:
        return 0.0
    return float(min(max((n_queues - 1.0) / (cap - 1.0), 0.0), 1.0))


def latency_penalty(ttft_s: Iterable[float], prefill_cost_s: Iterable[float]) -> float:
    """log(1 + mean TTFT / C_prefill) over requests with a finite TTFT; 0.0 when there are none."""
    t = np.asarray(list(ttft_s) if not isinstance(ttft_s, np.ndarray) else ttft_s, dtype=float)
    c = np.asarray(list(prefill_cost_s) if not isinstance(prefill_cost_s, np.ndarray) else prefill_cost_s,
                   dtype=float)
    if t.shape != c.shape:
        raise ValueError(f"latency_penalty: {t.size} TTFTs but {c.size} prefill costs")
    ok = np.isfinite(t) & np.isfinite(c) & (c > 0)
    if not ok.any():
        return 0.0
    return float(math.log1p(float(np.mean(np.maximum(t[ok], 0.0) / c[ok]))))


def partition_terms(snapshots: Sequence[Sequence[Mapping[str, Any]]], cap: float) -> tuple[float, float, float]:
    """(compactness, load_balance, queue_count_penalty), each averaged over stats()["queues"] snapshots.
    No snapshot: (1, 1, 0), i.e. the partition neither helps nor hurts."""
    if not snapshots:
        return 1.0, 1.0, 0.0
    c = float(np.mean([compactness(s) for s in snapshots]))
    b = float(np.mean([load_balance(s) for s in snapshots]))
    p = float(np.mean([queue_count_penalty(len(s), cap) for s in snapshots]))
    return c, b, p


def terms_from(snapshots: Sequence[Sequence[Mapping[str, Any]]], cap: float,
               ttft_s: Iterable[float], prefill_cost_s: Iterable[float]) -> RewardTerms:
    c, b, p = partition_terms(snapshots, cap)
    return RewardTerms(c, b, p, latency_penalty(ttft_s, prefill_cost_s))
