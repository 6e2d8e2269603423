"""EWSJFRequestRouter inside Ray Serve's RequestRouter base, with stand-in replicas (no Ray cluster)."""

import asyncio
from dataclasses import dataclass, field

import pytest

from .conftest import have

pytestmark = pytest.mark.skipif(not have("ray.serve"), reason="needs ray[serve] (pip install 'ewsjf[ray]')")


@dataclass
class FakeReplica:
    replica_id: object
    routing_stats: dict = field(default_factory=dict)
    max_ongoing_requests: int = 100


def _setup(stats_a, stats_b, policy="ewsjf"):
    from ray.serve._private.common import DeploymentHandleSource, DeploymentID, ReplicaID

    from ewsjf.integrations.ray.router import EWSJFRequestRouter

    dep = DeploymentID(name="llm", app_name="app")
    router = EWSJFRequestRouter(deployment_id=dep, handle_source=DeploymentHandleSource.UNKNOWN)
    router.initialize_state(policy=policy)
    a = FakeReplica(ReplicaID(unique_id="a", deployment_id=dep), stats_a)
    b = FakeReplica(ReplicaID(unique_id="b", deployment_id=dep), stats_b)
    router._replicas = {a.replica_id: a, b.replica_id: b}  # what update_replicas() would hold
    return router, a, b


def _pending(rid, payload):
    from ray.serve._private.common import RequestMetadata
    from ray.serve.request_router import PendingRequest

    return PendingRequest(args=[payload], kwargs={}, metadata=RequestMetadata(request_id=rid, internal_request_id=rid),
                          future=None)


def test_ranks_by_policy_accounts_in_flight_and_ignores_bad_stats():
    long_backlog = {"time": 1.0, "running": 2, "waiting": 3,
                    "queues": [[1, 256, 0, 80.0], [256, float("inf"), 3, 6000.0]]}
    short_backlog = {"time": 1.0, "running": 2, "waiting": 30,
                     "queues": [[1, 256, 30, 200.0], [256, float("inf"), 0, 6000.0]]}
    router, a, b = _setup(long_backlog, short_backlog, "ewsjf-balanced")
    short = _pending("s1", {"prompt_token_ids": list(range(50))})
    ranks = asyncio.run(router.choose_replicas([a, b], short))
    assert [r[0].replica_id.unique_id for r in ranks] == ["a", "b"]  # short: past the long backlog
    assert short.routing_context.should_backoff
    long = _pending("l1", {"prompt": "x" * 24000})  # ~6000 tokens
    ranks = asyncio.run(router.choose_replicas([a, b], long))
    assert ranks[0][0].replica_id.unique_id == "b"  # long: where less work waits in all
    router.on_request_routed(short, a.replica_id, None)
    router.on_request_routed(long, b.replica_id, None)
    s = router.routing_summary()
    assert s["decisions"] == {"a": 1, "b": 1} and s["ongoing"] == {"a": 1, "b": 1} and s["stats_updates"] == 2
    router.on_request_completed(a.replica_id, "s1")
    router.on_request_completed(a.replica_id, "s1")  # twice: no effect
    assert router.routing_summary()["ongoing"] == {"a": 0, "b": 1}
    # bad stats are counted and skipped; a request without a readable prompt still gets a ranking
    a.routing_stats = {"time": "soon"}
    ranks = asyncio.run(router.choose_replicas([a, b], _pending("x", {"other": 1})))
    assert len(ranks) == 2 and router.routing_summary()["bad_stats"] == 1


def test_replica_churn_leaves_no_state_behind():
    """Replicas replaced 200 times (scale-downs, restarts): the per-replica decisions and the tracker keep the
    live replicas only."""
    from ray.serve._private.common import ReplicaID

    router, a, b = _setup({}, {})
    dep = a.replica_id.deployment_id
    for i in range(200):
        fresh = FakeReplica(ReplicaID(unique_id=f"r{i}", deployment_id=dep))
        router._replicas = {a.replica_id: a, fresh.replica_id: fresh}   # b's slot taken by a new replica each time
        pending = _pending(f"q{i}", {"prompt_token_ids": [1, 2, 3]})
        asyncio.run(router.choose_replicas([a, fresh], pending))
        router.on_request_routed(pending, fresh.replica_id, None)   # as Serve reports where it went
        router.on_request_completed(fresh.replica_id, f"q{i}")
    summary = router.routing_summary()
    assert summary["decisions"] == {"r199": 1}
    assert set(summary["ongoing"]) == {"a", "r199"}


def test_bad_prompt_reading_options_fail_at_configuration_not_at_the_first_request():
    from ray.serve._private.common import DeploymentHandleSource, DeploymentID

    from ewsjf.integrations.ray.router import EWSJFRequestRouter, ewsjf_router_config

    with pytest.raises(ValueError, match="chars_per_token"):
        ewsjf_router_config(chars_per_token=0)
    router = EWSJFRequestRouter(deployment_id=DeploymentID(name="llm", app_name="app"),
                                handle_source=DeploymentHandleSource.UNKNOWN)
    with pytest.raises(ValueError, match="block_tokens"):
        router.initialize_state(block_tokens=0)


@pytest.mark.parametrize("options, named", [
    ({"policy": "nope"}, "unknown routing policy 'nope'"),
    ({"long_pool": 2.0}, "long_pool"),
    ({"policy": "lmetric", "long_pool": 0.5}, "long_pool"),
    ({"bogus": 1}, "bogus"),
    ({"prefix_capacity_blocks": 0}, "prefix_capacity_blocks"),
    ({"policy": "prefix-affinity", "imbalanced_threshold": -1}, "imbalanced_threshold"),
    ({"stats_period_s": float("inf")}, "stats_period_s"),   # Serve took it: the router never saw stats
    ({"stats_period_s": True}, "stats_period_s"),           # Serve took it as 1.0
])
def test_every_router_option_is_checked_on_the_driver(options, named):
    """These built a config that failed only when Serve started the router, in every handle's process."""
    from ewsjf.integrations.ray.router import ewsjf_router_config

    with pytest.raises(ValueError, match=named):
        ewsjf_router_config(**options)
    cfg = ewsjf_router_config(policy="ewsjf", stats_period_s=0.5, long_pool=0.75, prefix_capacity_blocks=128)
    assert cfg.request_router_kwargs == {"policy": "ewsjf", "long_pool": 0.75, "prefix_capacity_blocks": 128}
