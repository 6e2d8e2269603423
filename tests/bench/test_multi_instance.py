"""Multi-instance simulator: N engines behind a router; every request served once; the CLI path."""

import json

import numpy as np
import pytest

from ewsjf.bench import cli
from ewsjf.bench.multi_instance import Cluster, ClusterConfig, simulate_cluster
from ewsjf.integrations.ray.policies import POLICIES
from ewsjf_core.sim import EngineConfig, RooflineStepTime, Workload, simulate
from ewsjf_core.sim.engine import VirtualClock


def _workload(n=400, seed=0, prefix=False):
    rng = np.random.default_rng(seed)
    arr = np.cumsum(rng.exponential(0.02, n))
    prompt = np.where(rng.random(n) < 0.7, rng.integers(20, 400, n), rng.integers(2000, 6000, n))
    out = rng.integers(5, 80, n)
    blocks = [np.array([int(rng.integers(0, 3)), 100 + i]) for i in range(n)] if prefix else None
    return Workload(arr, prompt, out, prefix_blocks=blocks, name="synthetic")


STEP = RooflineStepTime("llama-3-8b", "a100-80gb")


@pytest.mark.parametrize("router", list(POLICIES))
def test_every_request_is_served_once_by_one_engine(router):
    w = _workload(prefix=True)
    cl = Cluster(w, STEP, EngineConfig(), ClusterConfig(3, router, "ewsjf", 0.2, seed=1))
    res = cl.run()
    assert np.all(np.isfinite(res.first_token_s)) and np.all(np.isfinite(res.finish_s))
    assert np.all(res.first_token_s >= w.arrival_s) and np.all(res.finish_s >= res.first_token_s)
    assert set(np.unique(cl.assigned)) == {0, 1, 2}
    # each engine finished exactly the requests routed to it, and the router has nothing left in flight
    assert [e.done for e in cl.engines] == np.bincount(cl.assigned, minlength=3).tolist()
    assert all(cl.tracker.ongoing(i) == 0 for i in cl.ids) and cl.tracker.routed_total == len(w)
    assert cl.tracker.stats_updates > 0
    spread = res.info["spread"]
    assert spread["requests_max_over_mean"] >= 1.0 and res.info["instances"] == 3
    if router == "round-robin":
        assert spread["requests_max_over_mean"] == pytest.approx(1.0, abs=0.01)


def test_one_instance_matches_the_single_engine_replay():
    w = _workload(200, seed=3)
    multi = simulate_cluster(w, STEP, EngineConfig(), ClusterConfig(1, "round-robin", "fcfs"))
    from ewsjf.bench.engines import make_queue
    clock = VirtualClock()
    single = simulate(w, make_queue("fcfs", clock), STEP, EngineConfig(), clock=clock)
    np.testing.assert_allclose(multi.first_token_s, single.first_token_s)
    np.testing.assert_allclose(multi.finish_s, single.finish_s)


def test_more_instances_lower_latency_at_the_same_total_rate():
    w = _workload(300, seed=2).scale_rate(4.0)
    one = simulate_cluster(w, STEP, EngineConfig(), ClusterConfig(1, "lmetric"))
    four = simulate_cluster(w, STEP, EngineConfig(), ClusterConfig(4, "lmetric"))
    assert np.mean(four.first_token_s - w.arrival_s) < np.mean(one.first_token_s - w.arrival_s)


def test_bad_cluster_config():
    with pytest.raises(ValueError, match="instances"):
        ClusterConfig(0)
    with pytest.raises(ValueError, match="stats_period_s"):
        ClusterConfig(2, stats_period_s=0)


@pytest.mark.parametrize("fields, named", [
    ({"instances": 2.5}, "instances"),            # passed, then range(2.5) raised TypeError in Cluster
    ({"instances": True}, "instances"),           # ran as one instance
    ({"instances": "2"}, "instances"),            # a bare TypeError from the comparison
    ({"stats_period_s": 1e-300}, "stats_period_s"),   # the event loop published forever (tick += 1e-300)
    ({"stats_period_s": True}, "stats_period_s"),
    ({"stats_period_s": "1"}, "stats_period_s"),
    ({"router": "nope"}, "nope"),
    ({"router": "lmetric", "router_options": (("long_pool", 0.5),)}, "long_pool"),
    ({"router_options": (("long_pool", 2.0),)}, "long_pool"),
    ({"router_options": (("long_pool",),)}, "router_options"),
    ({"replica_policy": "nope"}, "replica_policy"),
    # ClusterConfig.seed silently replaced the router option's seed 5 with 0
    ({"router": "power-of-two", "router_options": (("seed", 5),)}, "router_options sets seed.*ClusterConfig.seed"),
])
def test_a_cluster_config_that_cannot_run_is_refused_naming_the_field(fields, named):
    """Every one of these passed ClusterConfig and failed (or hung) in Cluster or its run."""
    with pytest.raises(ValueError, match=named):
        ClusterConfig(**{"instances": 2, **fields})


def test_cli_refuses_a_stats_period_below_one_engine_step(capsys):
    rc = cli.main(["bench", "--instances", "2", "--stats-period", "0.001", "--max-requests", "50", "--no-progress"])
    assert rc == 2 and "argument --stats-period: expected a finite number >= 0.01" in capsys.readouterr().err


def test_cli_multi_instance_smoke(tmp_path, capsys):
    out = tmp_path / "mi.json"
    rc = cli.main(["bench", "--instances", "2", "--routers", "power-of-two,lmetric,ewsjf", "--max-requests", "250",
                   "--no-progress", "--json", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "2 instances, load 1" in text and "goal: ewsjf router" in text
    doc = json.loads(out.read_text())
    assert {r["router"] for r in doc["multi_instance"]} == {"power-of-two", "lmetric", "ewsjf"}
    assert len(doc["multi_instance_goal"]) == 2
    rc = cli.main(["bench", "--instances", "2", "--routers", "nope", "--max-requests", "50", "--no-progress"])
    assert rc == 2 and "unknown router 'nope'" in capsys.readouterr().err


def test_sim_replicas_publish_their_queue_prefill_rate():
    w = _workload(n=200)
    cl = Cluster(w, STEP, EngineConfig(), ClusterConfig(2, "lmetric", "ewsjf", 0.2))
    cl.run()
    cl.publish(max(e.now for e in cl.engines) + 1.0)  # a report after the last step
    for rid, eng in zip(cl.ids, cl.engines):
        rate = cl.tracker.view(rid).stats.prefill_rate_tps
        assert rate == pytest.approx(eng.queue.stats()["cost_model"]["prefill_rate_tps"]) and rate > 0


@pytest.mark.parametrize("share", [0.0, 0.4])
def test_cli_multi_instance_replicas_run_with_the_ewsjf_head_share(cluster_runs, share):
    """--ewsjf-head-share reaches every EWSJF replica, as it reaches the single-instance EWSJF engine."""
    rc = cli.main(["bench", "--instances", "2", "--routers", "lmetric", "--max-requests", "120", "--no-progress",
                   "--policies", "ewsjf,fcfs", "--ewsjf-head-share", str(share)])
    assert rc == 0
    seen = [(cfg.replica_policy, engine.waiting_head_share) for cfg, engine in cluster_runs]
    assert sorted(seen) == [("ewsjf", share), ("fcfs", 0.0)]
