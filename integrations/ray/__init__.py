"""EWSJF-aware request routing across vLLM replicas on Ray Serve.

The policies (`policies`), the router's state (`state`, `tracker`, `prefix_index`) and the request parser
(`requests`) import no Ray: the bench's multi-instance simulator shares them. `router` (the Serve
`RequestRouter`) and `deployment` (a vLLM replica body) need `ray[serve]` (`pip install 'ewsjf[ray]'`).
"""

from __future__ import annotations

from typing import Any

from .policies import POLICIES, RoutingPolicy, make_policy
from .state import QueueLoad, ReplicaStats, ReplicaView, RequestInfo
from .tracker import ReplicaTracker

_LAZY = {"EWSJFRequestRouter": "router", "ewsjf_router_config": "router", "ROUTER_CLASS": "router",
         "VLLMReplica": "deployment", "RoutingStatsPublisher": "replica", "stats_from_ewsjf": "replica"}

__all__ = ["POLICIES", "RoutingPolicy", "make_policy", "QueueLoad", "ReplicaStats", "ReplicaView",
           "RequestInfo", "ReplicaTracker", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
