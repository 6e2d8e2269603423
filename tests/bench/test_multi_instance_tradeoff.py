"""The ewsjf router's long-pool tradeoff curve: the pool sizes, the misses per point, the per-miss explanation."""

import json

import pytest

from ewsjf.bench import cli
from ewsjf.bench import multi_instance_tradeoff as T

BASES = ("lmetric", "power-of-two")


def _metrics(mean, p99, short):
    return {"mean": mean, "p99": p99, "short_mean": short}


def _ratios(ours, other):
    return {k: ours[k] / other[k] for k in T.GOAL_METRICS}


def test_pool_sizes():
    assert T.pool_sizes(1) == [1] and T.pool_sizes(4) == [1, 2, 3, 4]
    assert T.pool_sizes(16) == [2, 4, 6, 8, 10, 12, 14, 16]
    assert T.pool_sizes(12) == [2, 3, 5, 6, 8, 9, 11, 12] and T.default_pool(16) == 8 and T.default_pool(5) == 3


def test_curve_and_explanations_from_a_known_tradeoff():
    # a larger pool lowers p99 and raises the mean: the default (2/4) misses p99 vs power-of-two only
    runs = [{"instances": 4, "load": 1.0, "policy": "ewsjf", "router": r, "metrics": m} for r, m in (
        ("lmetric", _metrics(1.0, 10.0, 0.5)), ("power-of-two", _metrics(1.1, 8.0, 0.6)),
        ("ewsjf", _metrics(0.9, 9.0, 0.4)))]
    curve = {1: _metrics(0.8, 12.0, 0.35), 3: _metrics(1.05, 7.5, 0.45), 4: _metrics(1.2, 7.0, 0.55)}
    calls = []

    def simulate(n, load, pol, k):
        calls.append((n, load, pol, k))
        return curve[k]

    points = T.run_curve(runs, simulate, BASES, _ratios)
    assert sorted(c[3] for c in calls) == [1, 3, 4]                   # the default point reuses the goal run
    by_pool = {p["pool"]: p for p in points}
    assert by_pool[2]["default"] and by_pool[2]["misses"] == ["p99 vs power-of-two"]
    assert by_pool[1]["misses"] == ["p99 vs lmetric", "p99 vs power-of-two"]
    assert by_pool[3]["misses"] == ["mean vs lmetric"]
    assert set(by_pool[4]["misses"]) == {"mean vs lmetric", "mean vs power-of-two", "short_mean vs lmetric"}
    [e] = T.explain(points)
    assert e["miss"] == "p99 vs power-of-two" and e["best_pool"] == 4 and e["fixed_by"] == 3
    assert e["then_misses"] == ["mean vs lmetric"] and not e["curve_meets_goal"]
    [line] = T.explanation_lines([e])
    assert "removed at pool 3/4, which then misses mean vs lmetric" in line
    assert T.curve_rows(points, BASES)[1][2] == "2/4 (default)"


def test_no_curve_without_the_baselines():
    runs = [{"instances": 2, "load": 1.0, "policy": "ewsjf", "router": "ewsjf", "metrics": _metrics(1, 1, 1)}]
    assert T.run_curve(runs, lambda *a: None, BASES, _ratios) == []


def test_cli_tradeoff_smoke(tmp_path, capsys):
    out = tmp_path / "t.json"
    rc = cli.main(["bench", "--instances", "2", "--routers", "power-of-two,lmetric,ewsjf", "--max-requests", "200",
                   "--tradeoff", "--no-progress", "--json", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "tradeoff: the ewsjf router with every long-pool size" in text
    doc = json.loads(out.read_text())["multi_instance_tradeoff"]
    assert [p["pool"] for p in doc["curve"]] == [1, 2] and doc["curve"][0]["default"]
    assert all(set(p["ratios"]) == set(BASES) for p in doc["curve"])


def test_cli_tradeoff_reruns_the_replicas_on_the_engine_of_the_goal_runs(cluster_runs):
    """The curve's other pool sizes ran EWSJF replicas without --ewsjf-head-share (default 0.25) while its
    default point is the goal run, with it: one curve over two engines."""
    rc = cli.main(["bench", "--instances", "3", "--routers", "power-of-two,lmetric,ewsjf", "--max-requests", "120",
                   "--tradeoff", "--no-progress", "--ewsjf-head-share", "0.4"])
    assert rc == 0
    seen = [(cfg.router_options, engine.waiting_head_share) for cfg, engine in cluster_runs]
    reruns = [share for options, share in seen if options]
    assert len(reruns) == 2 and set(share for _, share in seen) == {0.4}


@pytest.mark.parametrize("argv, message", [
    (["--tradeoff"], "give --instances N too"),
    (["--instances", "2", "--routers", "ewsjf,lmetric", "--tradeoff"], "add power-of-two to --routers"),
])
def test_a_tradeoff_that_would_not_be_drawn_is_refused_before_any_run(capsys, argv, message):
    rc = cli.main(["bench", *argv, "--max-requests", "50", "--no-progress"])
    captured = capsys.readouterr()
    assert rc == 2 and message in captured.err
    assert "==" not in captured.out   # nothing ran
