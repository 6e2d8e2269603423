"""`ewsjf bench --suite`: every workload of the suite at the engine's operating points, one pass/fail table.

For each workload (bench/suite_workloads.py) the loads are the arrival-rate scales at which FCFS's mean TTFT
is about 1, 3 and 10 s (bench/suite_loads.py, cached on disk) plus an overload point (OVERLOAD x the 10 s
scale). Each cell runs fcfs, oracle-sjf, hrrn and ewsjf on the sim engine and checks the goals of
bench/suite_goals.py; classes are the workload's prompt-length terciles, with per-decile views in the
markdown report. Per workload, a Pareto plot (bench/suite_report.py) sweeps EWSJF's fairness knob
(fcfs_wait_factor) and SJF with aging at the 10 s point; the same sweep runs in every cell where the
near-limit goal applies, to tell an unreachable goal (no swept scheduler gets there within the fairness
bounds) from a failure of EWSJF's. Request counts are bounded (--suite-requests) so the
whole suite runs in minutes on two cores.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from ewsjf_core.config import EWSJFConfig
from ewsjf_core.sim import EngineConfig, RooflineStepTime
from ewsjf_core.sim.config import DEFAULT_WAITING_HEAD_SHARE

from . import arg_types as T
from . import inputs, suite_goals, suite_report
from .metrics import class_edges, summarize
from .suite_loads import DEFAULT_CACHE, operating_points
from .suite_policies import run_policy
from .suite_workloads import BY_NAME, SUITE

CELL_POLICIES = ("fcfs", "oracle-sjf", "hrrn", "ewsjf")
TARGETS_S = (1.0, 3.0, 10.0)
OVERLOAD = 1.5
# The Pareto sweep: EWSJF's fairness knob (the starvation bound's slack over the FCFS wait) and SJF's aging.
PARETO_EWSJF = tuple(f"ewsjf:fcfs_wait_factor={x:g}" for x in (0.5, 1.0, 1.5, 2.0, 4.0, 1e3))
PARETO_AGING = tuple(f"sjf-aging:{x:g}" for x in (0.0, 0.003, 0.01, 0.03, 0.1, 1.0))


def add_arguments(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--suite", action="store_true",
                   help="run the workload suite at FCFS-defined operating points and print the goals table "
                        "(each workload sets its own model and GPU: --model/--gpu do not apply; engine options "
                        "and --ewsjf-set/--ewsjf-config do; see bench/suite.py)")
    g.add_argument("--suite-workloads", default=",".join(w.name for w in SUITE),
                   help="comma list of suite workloads (default: all)")
    g.add_argument("--suite-requests", type=T.int_in(50, 1_000_000), default=1000,
                   help="requests per workload (default 1000)")
    g.add_argument("--suite-cache", default=DEFAULT_CACHE, help="operating-point cache file ('' disables)")
    g.add_argument("--no-pareto", action="store_true", help="skip the Pareto sweeps")


def _engine(args) -> EngineConfig:
    return EngineConfig(token_budget=args.token_budget, max_running=args.max_running, kv_blocks=args.kv_blocks,
                        block_size=args.block_size, chunked_prefill=not args.no_chunked_prefill,
                        prefix_caching=not args.no_prefix_caching,
                        gpu_memory_utilization=args.gpu_memory_utilization)


def _engine_key(e: EngineConfig) -> dict:
    return {k: getattr(e, k) for k in ("token_budget", "max_running", "kv_blocks", "block_size", "chunked_prefill",
                                       "prefix_caching", "gpu_memory_utilization")}


def _deciles(w, ttft: np.ndarray) -> list[float]:
    """Mean TTFT per prompt-length decile (requests ranked by prompt length, split into ten equal groups)."""
    order = np.argsort(w.prompt_tokens, kind="stable")
    return [float(np.nanmean(ttft[part])) for part in np.array_split(order, 10)]


def run_workload(sw, n: int, engine: EngineConfig, ecfg: EWSJFConfig | None, cache: str | None,
                 pareto: bool, seed: int = 0, head_share: float = DEFAULT_WAITING_HEAD_SHARE) -> dict:
    t0 = time.perf_counter()
    w = sw.build(min(n, sw.max_requests or n), seed)
    st = RooflineStepTime(sw.model, sw.gpu)
    edges = class_edges(w.prompt_tokens)

    def fcfs_mean(scale: float) -> float:
        return summarize(run_policy(w.scale_rate(scale), "fcfs", st, engine), edges)["ttft_s"]["mean"]

    key = {"workload": sw.name, "requests": len(w), "seed": seed, "model": sw.model, "gpu": sw.gpu,
           "engine": _engine_key(engine)}
    points = operating_points(key, fcfs_mean, TARGETS_S, cache or None)
    points = points + [{"target_s": None, "scale": OVERLOAD * points[-1]["scale"], "fcfs_mean_ttft_s": None,
                        "reached": True}]
    cells = []
    for pt in points:
        wl = w.scale_rate(pt["scale"])
        metrics, deciles = {}, {}
        for pol in CELL_POLICIES:
            res = run_policy(wl, pol, st, engine, ecfg, head_share)
            metrics[pol] = summarize(res, edges)
            deciles[pol] = _deciles(wl, res.first_token_s - wl.arrival_s)
        # The sweep: the Pareto plot at the 10 s point, and the near-limit goal's frontier wherever it applies.
        front = {}
        if pareto and (pt["target_s"] == TARGETS_S[2]
                       or metrics["fcfs"]["ttft_s"]["mean"] >= suite_goals.NEAR_LIMIT_FCFS_MEAN_S):
            front = {spec: summarize(run_policy(wl, spec, st, engine, ecfg, head_share), edges)
                     for spec in PARETO_EWSJF + PARETO_AGING}
        label = f"{pt['target_s']:g} s" if pt["target_s"] else f"overload ({OVERLOAD:g}x)"
        cells.append({"label": label, "point": pt, "metrics": metrics, "deciles": deciles, "front": front,
                      "goals": suite_goals.check_cell(metrics, front=front)})
    front = {**cells[2]["front"], **cells[2]["metrics"]} if cells[2]["front"] else {}
    return {"workload": sw.name, "what": sw.what, "model": sw.model, "gpu": sw.gpu, "describe": w.describe(),
            "class_edges": list(edges), "cells": cells, "pareto": front, "wall_s": time.perf_counter() - t0}


def run_suite(args) -> int:
    t0 = time.perf_counter()
    names = [x.strip() for x in args.suite_workloads.split(",") if x.strip()]
    for name in names:
        if name not in BY_NAME:
            raise ValueError(f"unknown suite workload {name!r}: use {', '.join(BY_NAME)}")
    ecfg = inputs.ewsjf_config(args.ewsjf_config, args.ewsjf_set)
    engine = _engine(args)
    results = []
    for name in names:
        r = run_workload(BY_NAME[name], args.suite_requests, engine, ecfg, args.suite_cache, not args.no_pareto,
                         args.seed, args.ewsjf_head_share)
        results.append(r)
        print(f"  {name}: {len(r['cells'])} loads in {r['wall_s']:.1f} s", file=sys.stderr)
    doc = {"command": "ewsjf bench --suite " + " ".join(a for a in sys.argv[2:] if a != "--suite"),
           "ewsjf_config": (ecfg or EWSJFConfig()).to_dict(), "engine": _engine_key(engine),
           "ewsjf_head_share": args.ewsjf_head_share,
           "workloads": results, "wall_s": time.perf_counter() - t0}
    print(suite_report.summary_text(results))
    if args.out:
        written = suite_report.write(args.out, doc, plots=not args.no_plots)
        print("\nwrote " + ", ".join(written))
    print(f"total {time.perf_counter() - t0:.1f} s")
    return 0
