"""`ewsjf bench --instances N --tradeoff`: the mean/tail tradeoff curve of the `ewsjf` router, per goal miss.

The `ewsjf` router buys its lower mean and short-request TTFT by confining long prefills to a pool of the
replicas (half of them, the ones with the smallest batches); the price is the long requests' tail under
bursts, when the pool's backlog grows. The curve reruns `ewsjf` with every pool size k of N (k/N =
1/8 .. 1 when N > 8): k = N spreads long requests over all replicas, k = 1 confines them to one. Each point
is compared with the same baselines as the goal table. For each miss of the default router the report says
whether some pool size removes it, and what that point misses instead: the figures behind "no router of
this family meets the goal here".
"""

from __future__ import annotations

import math
from typing import Any, Callable

from . import report

GOAL_METRICS = ("mean", "p99", "short_mean")
ROUTER = "ewsjf"
DEFAULT_POOL = 0.5


def pool_sizes(n: int) -> list[int]:
    """Pool sizes on the curve: every k for up to 8 replicas, else k = ceil(f N) for f = 1/8 .. 1."""
    if n <= 8:
        return list(range(1, n + 1))
    return sorted({math.ceil(n * i / 8) for i in range(1, 9)})


def default_pool(n: int) -> int:
    from ewsjf.integrations.ray.policies import pool_size

    return pool_size(DEFAULT_POOL, n)


def run_curve(runs: list[dict], simulate: Callable[[int, float, str, int], dict[str, Any]],
              baselines: tuple[str, ...], ratios_of: Callable[[dict, dict], dict]) -> list[dict]:
    """One point per (N, load, scheduler, pool size k): the metrics' ratios to each baseline and the misses.

    `simulate(n, load, scheduler, k)` returns the metrics of `ewsjf` with a pool of k replicas; the default
    pool's point reuses the goal run."""
    index = {(r["instances"], r["load"], r["policy"], r["router"]): r["metrics"] for r in runs}
    points = []
    for (n, load, pol, router), ours in index.items():
        if router != ROUTER or any((n, load, pol, b) not in index for b in baselines):
            continue
        for k in pool_sizes(n):
            m = ours if k == default_pool(n) else simulate(n, load, pol, k)
            ratios = {b: ratios_of(m, index[(n, load, pol, b)]) for b in baselines}
            misses = [(b, key) for b in baselines for key in GOAL_METRICS
                      if ratios[b][key] is None or ratios[b][key] >= 1.0]
            points.append({"instances": n, "load": load, "policy": pol, "pool": k, "default": k == default_pool(n),
                           "ratios": ratios, "misses": [f"{key} vs {b}" for b, key in misses]})
    return points


def explain(points: list[dict]) -> list[dict]:
    """For each miss of the default pool: the best ratio any pool size reaches on that comparison and, at
    the pool sizes that remove the miss, the fewest misses they leave (what removing it costs)."""
    out = []
    groups: dict[tuple, list[dict]] = {}
    for p in points:
        groups.setdefault((p["instances"], p["load"], p["policy"]), []).append(p)
    for (n, load, pol), curve in groups.items():
        base = next(p for p in curve if p["default"])
        for miss in base["misses"]:
            key, _, b = miss.partition(" vs ")
            best = min(curve, key=lambda p: _val(p["ratios"][b][key]))
            fixing = [p for p in curve if miss not in p["misses"]]
            cheapest = min(fixing, key=lambda p: (len(p["misses"]), p["pool"])) if fixing else None
            out.append({"instances": n, "load": load, "policy": pol, "miss": miss,
                        "ratio": base["ratios"][b][key], "best_ratio": best["ratios"][b][key],
                        "best_pool": best["pool"],
                        "fixed_by": cheapest["pool"] if cheapest else None,
                        "then_misses": cheapest["misses"] if cheapest else None,
                        "curve_meets_goal": any(not p["misses"] for p in curve)})
    return out


def _val(x):
    return math.inf if x is None else x


def header(baselines: tuple[str, ...]) -> list[str]:
    return ["N", "load", "long pool", *(f"vs {b}: mean / p99 / short" for b in baselines), "misses"]


def curve_rows(points: list[dict], baselines: tuple[str, ...]) -> list[list[str]]:
    rows = []
    for p in points:
        cells = [" / ".join(report.fmt(p["ratios"][b][k], 3) for k in GOAL_METRICS) for b in baselines]
        rows.append([str(p["instances"]), report.fmt(p["load"]), f"{p['pool']}/{p['instances']}"
                     + (" (default)" if p["default"] else ""), *cells, str(len(p["misses"]))])
    return rows


def explanation_lines(expl: list[dict]) -> list[str]:
    lines = []
    for e in expl:
        head = (f"N={e['instances']} load {report.load_label(e['load'])}: {e['miss']} {report.fmt(e['ratio'], 3)}; "
                f"best on the curve {report.fmt(e['best_ratio'], 3)} (pool {e['best_pool']}/{e['instances']})")
        if e["fixed_by"] is None:
            lines.append(f"{head}; no pool size removes it")
        else:
            then = ", ".join(e["then_misses"]) or "nothing"
            lines.append(f"{head}; removed at pool {e['fixed_by']}/{e['instances']}, which then misses {then}")
    return lines
