"""`ewsjf bench --instances N[,M...] --routers ...`: the multi-instance comparison of routers.

Every router runs the same workload at the same loads (relative to the N instances' capacity: the arrival
rate is multiplied by N) with the same scheduler on every engine (`--policies`, default ewsjf). Prints,
per N and load, the single-instance bench's latency columns plus the per-replica load spread, then the
goal check: our routers (`ewsjf`, `ewsjf-balanced`) against `lmetric` and `power-of-two` on mean TTFT, p99
TTFT and short-class mean TTFT (ratio < 1: ours is lower).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ewsjf.integrations.ray.policies import POLICIES

from . import arg_types as T
from . import console, engines, report
from .engines import DEFAULT_POLICIES as DEFAULT_SINGLE_POLICIES
from .metrics import summarize

DEFAULT_ROUTERS = tuple(POLICIES)
GOAL_BASELINES = ("lmetric", "power-of-two")
OURS = ("ewsjf", "ewsjf-balanced")
HEADER = ["router", "TTFT mean", "TTFT p99", "short mean", "medium mean", "long mean", "long p99", "tok/s",
          "req max/mean", "busy max/mean"]


MAX_INSTANCES = 1024
"""Each simulated instance is a whole engine with its own queue: far more would only exhaust memory."""
MIN_STATS_PERIOD_S = 0.01
"""About one engine step: finer reports show the router nothing new, and a period the virtual clock no longer
moves by (1e-300) left the event loop publishing forever."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("multi-instance (routers in front of N engines)")
    g.add_argument("--instances", type=T.int_list("instance counts", 1, MAX_INSTANCES), default=None,
                   metavar="N[,M...]",
                   help="simulate N engines behind a router (loads are relative to N engines' capacity)")
    g.add_argument("--routers", type=T.names("router", tuple(POLICIES)), default=",".join(DEFAULT_ROUTERS),
                   help=f"comma list of {', '.join(POLICIES)} (default: all)")
    g.add_argument("--stats-period", type=T.positive_float(hi=3600.0, lo=MIN_STATS_PERIOD_S), default=0.5,
                   help=f"seconds between replica stats reports to the router, >= {MIN_STATS_PERIOD_S:g} "
                        f"(default 0.5)")
    g.add_argument("--tradeoff", action="store_true",
                   help="also rerun the ewsjf router with every long-pool size (the mean/tail tradeoff curve) "
                        "and explain each goal miss with it")


def wanted(args) -> bool:
    return bool(getattr(args, "instances", None))


def check_args(args) -> None:
    """Refuse, before any run, what the multi-instance mode would ignore: an engine other than sim (its instances
    are sim engines), a --tradeoff that would not be drawn (no --instances, or routers it compares against
    missing: it was ignored, or run in full and then reported as not drawn)."""
    if wanted(args) and list(args.engine) != ["sim"]:
        raise ValueError(f"--engine {','.join(args.engine)}: --instances simulates its instances with the sim "
                         f"engine only")
    if not getattr(args, "tradeoff", False):
        return
    if not wanted(args):
        raise ValueError("--tradeoff is the multi-instance tradeoff curve: give --instances N too")
    missing = [r for r in ("ewsjf", *GOAL_BASELINES) if r not in args.routers]
    if missing:
        raise ValueError(f"--tradeoff compares the ewsjf router with {', '.join(GOAL_BASELINES)}: add "
                         f"{', '.join(missing)} to --routers")


def main(args, base, step_model, engine, ecfg, edges, loads, policies, show_progress, reasons: list[str]) -> int:
    """The `ewsjf bench --instances` path: run, print, and write --json / --out/results.json. `reasons`: why the
    engine rejects each request (sim.rejection_reasons), for the warnings."""
    import os

    if list(args.policies) == list(DEFAULT_SINGLE_POLICIES):
        policies = ["ewsjf"]  # the single-instance default compares schedulers; here the routers
    doc = run(args, base, step_model, engine, ecfg, edges, loads, policies, show_progress, reasons)
    path = args.json or (os.path.join(args.out, "results.json") if args.out else None)
    if path:
        report.write_json(path, {"settings": {"workload": base.describe(), "loads": loads, "policies": policies,
                                              "class_edges": list(edges)}, **doc})
        print(f"\nwrote {path}")
    return 0


def run(args, base, step_model, engine, ecfg, edges, loads, policies, show_progress,
        reasons: list[str]) -> dict[str, Any]:
    from .multi_instance import ClusterConfig, simulate_cluster  # the engines, only when asked for

    routers = list(args.routers)
    runs = []
    rejections_said: set[tuple[int, ...]] = set()
    with console.progress(show_progress) as bars:
        for n in args.instances:
            for load in loads:
                w = base.scale_rate(load * n)
                for pol in policies:
                    for router in routers:
                        label = f"N={n} {router}/{pol} @ {report.load_label(load)}"
                        cfg = ClusterConfig(n, router, pol, args.stats_period, args.seed)
                        replica_engine = engines.policy_engine(pol, engine, args.ewsjf_head_share,
                                                               args.ewsjf_preemption_guard)
                        res = simulate_cluster(w, step_model, replica_engine, cfg, ecfg, bars.task(label))
                        m = summarize(res, edges, args.slo_ttft, args.slo_tpot)
                        report.check_rejections(m, res.rejected, label, rejections_said, "every router", reasons)
                        runs.append({"instances": n, "load": load, "policy": pol, "router": router, "metrics": m,
                                     "spread": res.info["spread"]})
                        if not show_progress:
                            print(f"  {label}: replay {res.wall_s:.1f} s, mean TTFT "
                                  f"{report.fmt(m['ttft_s']['mean'])} s", file=sys.stderr)
    for n in args.instances:
        for load in loads:
            for pol in policies:
                sel = [r for r in runs if (r["instances"], r["load"], r["policy"]) == (n, load, pol)]
                print(f"\n== {n} instances, load {report.load_label(load)} x ({n} x trace rate), scheduler {pol} "
                      f"(seconds) ==")
                print(report.table(rows(sel), HEADER))
    goal = goal_check(runs)
    if goal:
        verdicts = ", ".join(f"{r}: {'MET' if all(g['ok'] for g in goal if g['router'] == r) else 'NOT met everywhere'}"
                             for r in OURS if any(g["router"] == r for g in goal))
        print(f"\n== goal: ewsjf router below lmetric and power-of-two on mean, p99 and short-class mean TTFT "
              f"-> {verdicts} (ratios ours / baseline) ==")
        print(report.table(goal_rows(goal), GOAL_HEADER))
    doc = {"multi_instance": runs, "multi_instance_goal": goal, "routers": routers,
           "instances": args.instances, "stats_period_s": args.stats_period}
    if getattr(args, "tradeoff", False):
        doc["multi_instance_tradeoff"] = tradeoff(args, base, step_model, engine, ecfg, edges, runs, show_progress)
    return doc


def tradeoff(args, base, step_model, engine, ecfg, edges, runs, show_progress) -> dict[str, Any]:
    """The `ewsjf` router's long-pool curve against the goal's baselines, and one explanation per miss."""
    from . import multi_instance_tradeoff as curve
    from .multi_instance import ClusterConfig, simulate_cluster

    with console.progress(show_progress) as bars:
        def simulate(n, load, pol, k):
            cfg = ClusterConfig(n, curve.ROUTER, pol, args.stats_period, args.seed, (("long_pool", k / n),))
            replica_engine = engines.policy_engine(pol, engine, args.ewsjf_head_share,   # as the goal runs'
                                                   args.ewsjf_preemption_guard)
            res = simulate_cluster(base.scale_rate(load * n), step_model, replica_engine, cfg, ecfg,
                                   bars.task(f"N={n} ewsjf pool {k}/{n}/{pol} @ {report.load_label(load)}"))
            return summarize(res, edges, args.slo_ttft, args.slo_tpot)

        points = curve.run_curve(runs, simulate, GOAL_BASELINES,
                                 lambda ours, other: {k: _ratio(get(ours), get(other)) for k, get in METRICS.items()})
    if not points:
        print("\n(no tradeoff curve: it needs the routers ewsjf, " + ", ".join(GOAL_BASELINES) + ")")
        return {"curve": [], "explanations": []}
    expl = curve.explain(points)
    print("\n== tradeoff: the ewsjf router with every long-pool size (ratios ours / baseline; misses of 6) ==")
    print(report.table(curve.curve_rows(points, GOAL_BASELINES), curve.header(GOAL_BASELINES)))
    print("\n== each miss of the default ewsjf router against the curve ==")
    print("\n".join(curve.explanation_lines(expl)) or "(no misses)")
    return {"curve": points, "explanations": expl}


def rows(runs: list[dict]) -> list[list[str]]:
    out = []
    for r in runs:
        m, s, c = r["metrics"], r["spread"], r["metrics"]["ttft_by_class_s"]
        out.append([r["router"], report.fmt(m["ttft_s"]["mean"]), report.fmt(m["ttft_s"]["p99"]),
                    report.fmt(c["short"]["mean"]), report.fmt(c["medium"]["mean"]), report.fmt(c["long"]["mean"]),
                    report.fmt(c["long"]["p99"]), report.fmt(m["output_tps"], 0),
                    report.fmt(s["requests_max_over_mean"]), report.fmt(s["busy_max_over_mean"])])
    return out


def goal_check(runs: list[dict]) -> list[dict]:
    """Per (N, load, scheduler, our router, baseline): ours / baseline for mean, p99 and short-class mean TTFT."""
    out = []
    index = {(r["instances"], r["load"], r["policy"], r["router"]): r["metrics"] for r in runs}
    for (n, load, pol, router), ours in index.items():
        if router not in OURS:
            continue
        for base in GOAL_BASELINES:
            other = index.get((n, load, pol, base))
            if other is None:
                continue
            ratios = {k: _ratio(get(ours), get(other)) for k, get in METRICS.items()}
            out.append({"instances": n, "load": load, "policy": pol, "router": router, "baseline": base,
                        "ratios": ratios,
                        "ok": all(x is not None and x < 1.0 for x in ratios.values())})
    return out


METRICS = {"mean": lambda m: m["ttft_s"]["mean"], "p99": lambda m: m["ttft_s"]["p99"],
           "short_mean": lambda m: m["ttft_by_class_s"]["short"]["mean"]}
GOAL_HEADER = ["N", "load", "router", "vs", "mean", "p99", "short mean", "met"]


def _ratio(a, b):
    if a is None or b is None or b <= 0:
        return None
    return a / b


def goal_rows(goal: list[dict]) -> list[list[str]]:
    return [[str(g["instances"]), report.fmt(g["load"]), g["router"], g["baseline"], report.fmt(g["ratios"]["mean"], 3),
             report.fmt(g["ratios"]["p99"], 3), report.fmt(g["ratios"]["short_mean"], 3),
             "yes" if g["ok"] else "NO"] for g in goal]
