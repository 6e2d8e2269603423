"""Routing policies: pure functions of the request and the candidate replicas' views.

Each policy ranks the candidates, best first (`rank`); Ray Serve's router tries them in that order, the
simulator takes the first. Policies hold no replica state (the `ReplicaTracker` does), only their own
cursor or random generator, so the Ray router and the bench's multi-instance simulator share them.

| name | ranks by |
|---|---|
| `round-robin` | a rotating cursor |
| `power-of-two` | two random candidates, fewer ongoing requests first (Ray Serve's default router) |
| `prefix-affinity` | longest expected prefix-cache hit, fewest ongoing on ties; fewest ongoing when the load is |
| | imbalanced (Ray Serve LLM's PrefixCacheAffinityRouter) |
| `lmetric` | (waiting prefill tokens + the request's uncached tokens) x (running batch + 1) (LMetric) |
| `ewsjf` | short: LMetric over the in-flight batch; long (`length_split`): least prefill work on the |
| | small-batch half (`long_pool`) |
| `ewsjf-balanced` | prefill work EWSJF computes before it + its own + the delay it imposes on longer requests |
| | it overtakes |
"""

from __future__ import annotations

import inspect
import math
import random
from abc import ABC, abstractmethod
from typing import Sequence

from .length_split import work_median
from .state import ReplicaView, RequestInfo


class RoutingPolicy(ABC):
    """Ranks candidate replicas for one request."""

    name: str = ""

    @abstractmethod
    def rank(self, request: RequestInfo, replicas: Sequence[ReplicaView]) -> list[ReplicaView]:
        """The candidates to try, best first (a policy may leave some out, never all)."""

    @staticmethod
    def _sorted(replicas: Sequence[ReplicaView], key) -> list[ReplicaView]:
        return sorted(replicas, key=lambda v: (key(v), v.ongoing, v.replica_id))


class RoundRobin(RoutingPolicy):
    name = "round-robin"

    def __init__(self) -> None:
        self._next = 0

    def rank(self, request, replicas):
        if not replicas:
            return []  # the cursor stays where it was
        ordered = sorted(replicas, key=lambda v: v.replica_id)
        start = self._next % len(ordered)
        self._next += 1
        return ordered[start:] + ordered[:start]


class PowerOfTwo(RoutingPolicy):
    name = "power-of-two"

    def __init__(self, seed: int | None = None) -> None:
        self._rng = random.Random(seed)

    def rank(self, request, replicas):
        picked = self._rng.sample(list(replicas), min(2, len(replicas)))
        return sorted(picked, key=lambda v: v.ongoing)  # stable: a tie keeps the random order


class PrefixAffinity(RoutingPolicy):
    name = "prefix-affinity"

    def __init__(self, imbalanced_threshold: int = 10) -> None:
        v = imbalanced_threshold
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"prefix-affinity router: imbalanced_threshold must be an integer >= 0, got {v!r}")
        self.imbalanced_threshold = v

    def rank(self, request, replicas):
        loads = [v.ongoing for v in replicas]
        if loads and max(loads) - min(loads) > self.imbalanced_threshold:
            return self._sorted(replicas, lambda v: v.ongoing)
        return self._sorted(replicas, lambda v: -v.cached_tokens)


class LMetric(RoutingPolicy):
    """LMetric: the replica minimising (prefill tokens to compute there) x (its batch size).

    The prefill tokens are those waiting there plus the request's own after its expected prefix hit; the
    batch size counts the request itself (+1), so idle replicas are still told apart by the prefill term."""

    name = "lmetric"

    def rank(self, request, replicas):
        return self._sorted(replicas, lambda v: (v.waiting_tokens() + v.new_tokens(request)) * (v.running + 1))


class EWSJFAware(RoutingPolicy):
    """Short and long requests on different replicas: what EWSJF's order cannot do inside one replica.

    vLLM schedules the running batch's chunked prefills before any waiting request, so a short request that
    lands on a replica prefilling a long prompt shares its steps (a full-budget prefill step takes ~0.6 s on
    an 8B model, a short one tens of ms) whatever EWSJF's order. So the router keeps them apart:

    - a short request goes where LMetric's product is least, (prefill work there + its own) x (batch + 1),
      the batch counting the requests routed there since the last report (they join it before the next
      one): it avoids replicas holding long prefill work and needs no weights;
    - a long request (its effective tokens above the work median of the waiting prefill work, see
      `length_split`) goes to the half of the replicas with the smallest batches, where its prefill stalls
      the fewest running requests and which short requests avoid (their batches grow with the short
      requests LMetric sends them), and there to the least prefill work: it is admitted after the shorter
      work EWSJF puts first and, within the starvation bound, after the work already waiting, so the work
      there is its wait.
    Tradeoff: concentrating long prefills on half the replicas lowers mean and short-request TTFT and raises
    the long requests' tail under bursts (`ewsjf-balanced` keeps the tail lower). `long_pool` is the share of
    the replicas long requests may use (half by default, the pool that matches the work median's halves);
    the bench sweeps it to draw the tradeoff curve (`ewsjf bench --instances N --tradeoff`), it is not tuned."""

    name = "ewsjf"

    def __init__(self, long_pool: float = 0.5) -> None:
        if isinstance(long_pool, bool) or not isinstance(long_pool, (int, float)) or not 0 < long_pool <= 1:
            raise ValueError(f"ewsjf router: long_pool must be a share of the replicas in (0, 1], got {long_pool!r}")
        self.long_pool = float(long_pool)

    def rank(self, request, replicas):
        if not replicas:
            return []
        tokens = min(v.new_tokens(request) for v in replicas)  # its length where its prefix is cached
        if tokens <= work_median(replicas, tokens):
            return self._sorted(replicas, lambda v: (v.waiting_tokens() + v.new_tokens(request)) * (v.batch + 1))
        batches = sorted(v.batch for v in replicas)
        edge = batches[pool_size(self.long_pool, len(batches)) - 1]  # the pool: batches at or below the edge
        return self._sorted(replicas, lambda v: (v.batch > edge, v.waiting_tokens() + v.new_tokens(request)))


class EWSJFBalanced(RoutingPolicy):
    """The replica where the request adds the least waiting to everyone, EWSJF's order taken into account:
    the prefill work computed there before it (the running batch's unfinished prefills, then its own and
    shorter queues when the replica has a backlog, everything when it keeps up), its own uncached tokens,
    and the delay it imposes on the longer requests waiting there that EWSJF lets it overtake (its tokens
    once per overtaken request). Like LMetric it needs no weights; unlike LMetric a short request is not
    charged for long work it will overtake, but pays for the long requests it delays. It spreads long work
    evenly: a lower TTFT tail than `ewsjf` under bursts, a higher mean."""

    name = "ewsjf-balanced"

    def rank(self, request, replicas):
        def score(v: ReplicaView) -> float:
            new = v.new_tokens(request)
            return v.tokens_ahead(new) + new + new * v.requests_behind(new)

        return self._sorted(replicas, score)


POLICIES: dict[str, type[RoutingPolicy]] = {
    cls.name: cls for cls in (RoundRobin, PowerOfTwo, PrefixAffinity, LMetric, EWSJFAware, EWSJFBalanced)}


def pool_size(share: float, replicas: int) -> int:
    """Replicas in a pool of `share` of `replicas`: at least one, rounded up (half of 3 is 2)."""
    return max(1, min(replicas, math.ceil(round(share * replicas, 9))))


def make_policy(name: str, **kwargs) -> RoutingPolicy:
    """A policy by name (`POLICIES`); kwargs go to its constructor."""
    cls = POLICIES.get(name)
    if cls is None:
        raise ValueError(f"unknown routing policy {name!r}; choose from {', '.join(POLICIES)}")
    accepted = set(inspect.signature(cls).parameters)
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise ValueError(f"routing policy {name!r} has no option(s) {', '.join(unknown)}"
                         + (f"; it takes {', '.join(sorted(accepted))}" if accepted else "; it takes none"))
    return cls(**kwargs)


def routing_policy(name: str, seed: int | None = None, **options) -> RoutingPolicy:
    """make_policy with the router's seed, which only power-of-two takes (the other policies are
    deterministic)."""
    if name == "power-of-two":
        options["seed"] = seed
    return make_policy(name, **options)
