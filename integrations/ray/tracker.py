"""The router's own accounting between two stats reports, and the views policies read.

Replica stats are polled (Ray Serve's controller fetches them every `request_routing_stats_period_s`, the
simulator every `stats_period_s`), so under a burst they are stale: many requests may be routed before the
next report shows them. The tracker remembers every request it routed (to which replica, when, how many
prefill tokens it expected to add there) and every completion it saw, so that a view is

    published stats  +  requests routed after the stats were taken  -  completions seen since

It is exact for the router's own requests when one router serves the replicas; with several routers (Ray
runs one per proxy and handle) each adds its own, and the published stats carry everyone's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from ewsjf_core.field_checks import finite_float, short

from .prefix_index import PrefixIndex
from .state import InFlight, ReplicaStats, ReplicaView, RequestInfo


@dataclass
class _Routed:
    replica_id: str
    tokens: int
    routed_at: float


@dataclass
class _Replica:
    stats: ReplicaStats | None = None
    ongoing: dict[str, _Routed] = field(default_factory=dict)  # request id -> record
    unseen: dict[str, _Routed] = field(default_factory=dict)  # routed at/after stats.time, in route order
    done_since_stats: int = 0


class ReplicaTracker:
    """Stats, in-flight requests and prefix guesses of a set of replicas. Not thread-safe: one event loop."""

    def __init__(self, prefix_capacity_blocks: int = 65536) -> None:
        self.prefix = PrefixIndex(prefix_capacity_blocks)
        self._replicas: dict[str, _Replica] = {}
        self._where: dict[str, str] = {}  # request id -> replica id
        self.routed_total = 0
        self.stats_updates = 0

    def set_replicas(self, replica_ids: Iterable[str]) -> None:
        """The live replica set: new ones are added, vanished ones (and their records) dropped."""
        if isinstance(replica_ids, str):  # iterating it would make one replica per character
            raise ValueError(f"replica_ids must be an iterable of ids, not the str {replica_ids!r}")
        live = set(replica_ids)
        for rid in live - set(self._replicas):
            self._replicas[rid] = _Replica()
        for rid in set(self._replicas) - live:
            for req in self._replicas.pop(rid).ongoing:
                self._where.pop(req, None)
            self.prefix.forget(rid)

    def replica_ids(self) -> list[str]:
        return list(self._replicas)

    def update_stats(self, replica_id: str, stats: ReplicaStats) -> None:
        """A stats report; an older report than the one held is ignored (reports may arrive out of order)."""
        rep = self._replica(replica_id)
        if not isinstance(stats, ReplicaStats) or finite_float(stats.time) is None:
            raise ValueError(f"replica {replica_id!r}: stats must be ReplicaStats with a finite time, got "
                             f"{short(stats)}")   # a NaN time dropped every unseen record and let older reports in
        if rep.stats is not None and stats.time <= rep.stats.time:
            return
        rep.stats = stats
        rep.done_since_stats = 0
        while rep.unseen:  # route order is time order: drop the prefix the stats now show
            first = next(iter(rep.unseen))
            if rep.unseen[first].routed_at >= stats.time:
                break
            del rep.unseen[first]
        self.stats_updates += 1

    def routed(self, replica_id: str, request: RequestInfo, now: float) -> None:
        """The request was sent to the replica at `now`."""
        if finite_float(now) is None:   # checked first: a str raised after the record was kept, leaking it as ongoing
            raise ValueError(f"request {request.request_id!r}: now must be a finite number, got {short(now)}")
        if request.request_id in self._where:
            raise ValueError(f"request {request.request_id!r} is already routed to "
                             f"{self._where[request.request_id]!r}")
        rep = self._replica(replica_id)
        hit = self.prefix.hit_blocks(replica_id, request.prefix_blocks) * request.block_tokens
        tokens = max(1, request.prompt_tokens - hit)
        record = _Routed(replica_id, tokens, now)
        rep.ongoing[request.request_id] = record
        if rep.stats is None or now >= rep.stats.time:
            rep.unseen[request.request_id] = record
        self._where[request.request_id] = replica_id
        self.prefix.record(replica_id, request.prefix_blocks)
        self.routed_total += 1

    def completed(self, request_id: str) -> str | None:
        """The request finished (or failed); returns its replica, None if unknown (already completed)."""
        replica_id = self._where.pop(request_id, None)
        if replica_id is None:
            return None
        rep = self._replicas[replica_id]
        rec = rep.ongoing.pop(request_id)
        rep.unseen.pop(request_id, None)
        if rep.stats is not None and rec.routed_at < rep.stats.time:
            rep.done_since_stats += 1
        return replica_id

    def ongoing(self, replica_id: str) -> int:
        return len(self._replica(replica_id).ongoing)

    def view(self, replica_id: str, request: RequestInfo | None = None) -> ReplicaView:
        rep = self._replica(replica_id)
        stats = rep.stats
        unseen = tuple(InFlight(req, r.tokens) for req, r in rep.unseen.items())
        running = max(0, (stats.running if stats is not None else 0) - rep.done_since_stats)
        cached = 0
        if request is not None and request.prefix_blocks:
            hit = self.prefix.hit_blocks(replica_id, request.prefix_blocks) * request.block_tokens
            cached = min(hit, request.prompt_tokens - 1)
        return ReplicaView(replica_id, len(rep.ongoing), running, stats, unseen, cached)

    def views(self, request: RequestInfo | None, replica_ids: Iterable[str] | None = None) -> list[ReplicaView]:
        ids = list(self._replicas) if replica_ids is None else list(replica_ids)
        return [self.view(rid, request) for rid in ids]

    def _replica(self, replica_id: str) -> _Replica:
        rep = self._replicas.get(replica_id)
        if rep is None:
            raise KeyError(f"unknown replica {replica_id!r} (known: {sorted(self._replicas)})")
        return rep
