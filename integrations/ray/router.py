"""`EWSJFRequestRouter`: a Ray Serve request router over the routing policies of `policies.py`.

Configure it on a deployment (`ewsjf_router_config()` builds the config):

    RequestRouterConfig(request_router_class="ewsjf.integrations.ray.router:EWSJFRequestRouter",
                        request_router_kwargs={"policy": "ewsjf"}, request_routing_stats_period_s=0.5)

Per request it parses the prompt (requests.py), refreshes the tracker from the replicas' published
`routing_stats`, ranks the candidates with the policy and returns one rank per replica (Serve tries them
in order, skipping full ones). `on_request_routed` and `on_request_completed` keep the tracker's
in-flight accounting. A request whose prompt cannot be read is still routed (fewest ongoing first).
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any, List, Optional

from ray.serve.request_router import PendingRequest, ReplicaID, RequestRouter, RunningReplica

from ewsjf_core.field_checks import as_float, short

from .policies import RoutingPolicy, routing_policy
from .requests import check_reading, find_payload, request_info
from .state import ReplicaStats, RequestInfo
from .tracker import ReplicaTracker

logger = logging.getLogger("ray.serve.ewsjf")
ROUTER_CLASS = "ewsjf.integrations.ray.router:EWSJFRequestRouter"


def router_parts(policy: str = "ewsjf", prefix_capacity_blocks: int = 65536, block_tokens: int = 16,
                 chars_per_token: float = 4.0, seed: int | None = None,
                 **policy_kwargs: Any) -> tuple[RoutingPolicy, ReplicaTracker]:
    """The router's policy and tracker from its options (`request_router_kwargs`); a bad option raises
    ValueError naming it."""
    check_reading(block_tokens, chars_per_token)
    return routing_policy(policy, seed, **policy_kwargs), ReplicaTracker(prefix_capacity_blocks)


class EWSJFRequestRouter(RequestRouter):
    def initialize_state(self, policy: str = "ewsjf", prefix_capacity_blocks: int = 65536,
                         block_tokens: int = 16, chars_per_token: float = 4.0, seed: int | None = None,
                         **policy_kwargs: Any) -> None:
        self.policy, self.tracker = router_parts(policy, prefix_capacity_blocks, block_tokens, chars_per_token,
                                                 seed, **policy_kwargs)
        self.block_tokens = block_tokens
        self.chars_per_token = float(chars_per_token)
        self.decisions: dict[str, int] = {}  # live replica's unique id -> requests routed there
        self.bad_stats = 0

    def _refresh(self, replicas: List[RunningReplica]) -> None:
        self.tracker.set_replicas(r.replica_id.unique_id for r in self._replicas.values())
        for r in replicas:
            raw = r.routing_stats
            if not raw:
                continue
            try:
                self.tracker.update_stats(r.replica_id.unique_id, ReplicaStats.from_dict(raw))
            except ValueError:
                self.bad_stats += 1
                logger.warning("EWSJF router: ignoring bad routing stats of %s", r.replica_id, exc_info=True)

    def _request(self, pending: Optional[PendingRequest]) -> Optional[RequestInfo]:
        if pending is None:
            return None
        payload = find_payload(pending.args, pending.kwargs)
        if payload is None:
            return None
        try:
            return request_info(pending.metadata.internal_request_id, payload, self.block_tokens,
                                self.chars_per_token)
        except ValueError:
            logger.warning("EWSJF router: cannot read the prompt of %s", pending.metadata.request_id, exc_info=True)
            return None

    async def choose_replicas(self, candidate_replicas: List[RunningReplica],
                              pending_request: Optional[PendingRequest] = None) -> List[List[RunningReplica]]:
        if pending_request is not None:
            pending_request.routing_context.should_backoff = True  # back off when every rank is full
        if not candidate_replicas:
            return []
        self._refresh(candidate_replicas)
        by_id = {r.replica_id.unique_id: r for r in candidate_replicas}
        request = self._request(pending_request)
        views = self.tracker.views(request, by_id)
        if request is None:
            ranked = sorted(views, key=lambda v: v.ongoing)
        else:
            ranked = self.policy.rank(request, views)
        return [[by_id[v.replica_id]] for v in ranked]

    def on_request_routed(self, pending_request: PendingRequest, replica_id: ReplicaID, result: Any) -> None:
        rid = replica_id.unique_id
        decisions = self.decisions
        decisions[rid] = decisions.get(rid, 0) + 1
        live = {r.unique_id for r in self._replicas}
        gone = decisions.keys() - live - {rid}
        for k in gone:   # replicas gone (scaled down, restarted): their counts leave with them
            del decisions[k]
        request = self._request(pending_request)
        if request is None:
            request = RequestInfo(pending_request.metadata.internal_request_id, 1)
        try:
            self.tracker.set_replicas(live)
            self.tracker.routed(rid, request, time.time())
        except (KeyError, ValueError):
            logger.warning("EWSJF router: cannot account request %s", request.request_id, exc_info=True)

    def on_request_completed(self, replica_id: ReplicaID, internal_request_id: str) -> None:
        self.tracker.completed(internal_request_id)

    def routing_summary(self) -> dict[str, Any]:
        """Decisions per replica, stats updates seen, requests in flight (for tests and logs)."""
        ids = self.tracker.replica_ids()
        seen = {rid: v.stats.to_dict() for rid in ids if (v := self.tracker.view(rid)).stats is not None}
        return {"policy": self.policy.name, "decisions": dict(self.decisions),
                "stats_updates": self.tracker.stats_updates, "bad_stats": self.bad_stats,
                "replica_stats_seen": seen, "ongoing": {rid: self.tracker.ongoing(rid) for rid in ids}}


def ewsjf_router_config(policy: str = "ewsjf", stats_period_s: float = 0.5, **kwargs: Any):
    """A RequestRouterConfig selecting this router with `policy` (see policies.POLICIES); every option is
    checked here, on the driver, rather than when Serve starts the router."""
    from ray.serve.config import RequestRouterConfig

    if not 0 < as_float(stats_period_s) < math.inf:
        raise ValueError(f"ewsjf router: stats_period_s must be a finite number > 0, got {short(stats_period_s)}")
    router_parts(policy, **kwargs)

    return RequestRouterConfig(request_router_class=ROUTER_CLASS,
                               request_router_kwargs={"policy": policy, **kwargs},
                               request_routing_stats_period_s=stats_period_s)
