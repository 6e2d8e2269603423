"""`ewsjf bench --suite`: every workload of the suite at the engine's operating points, one pass/fail table.

For each workload (bench/suite_workloads.py) the loads are the arrival-rate scales at which FCFS's mean TTFT
is about 1, 3 and 10 s (bench/suite_loads.py, cached on disk) plus an overload point (OVERLOAD x the 10 s
scale). The engine starts idle and its running batch takes minutes to fill, so the first WARMUP_SHARE of each
workload's arrivals is replayed but not measured: the loads are found, and every policy judged, on the requests
after it. Without that, a finite replay's mean TTFT is reached above the engine's capacity too (a queue that
grows for as long as requests arrive, seen over its first minutes); a cell whose FCFS mean TTFT still grows
over the measured arrivals (last quarter above STEADY_GROWTH x the first) is labelled "not steady". Each cell
runs fcfs, oracle-sjf, hrrn and ewsjf (with --suite-tuner: ewsjf-tuned, EWSJF with its Bayesian tuner) on the sim
engine and checks the goals of bench/suite_goals.py; classes are the workload's prompt-length terciles, with
per-decile views in the markdown report. Per workload, a Pareto plot (bench/suite_report.py) sweeps EWSJF's fairness
knob (fcfs_wait_factor) and SJF with aging at the 10 s point; the same sweep runs in every cell where the near-limit
goal applies, and where EWSJF misses dominating an HRRN that breaks the fairness bounds, to tell an unreachable goal
(no swept scheduler gets there within the fairness bounds) from a failure of EWSJF's. Request counts are bounded
(--suite-requests) so the whole suite runs in minutes on two cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections import Counter

import numpy as np

from ewsjf_core.config import EWSJFConfig
from ewsjf_core.sim import MODEL_PRESETS, EngineConfig, RooflineStepTime, rejection_reasons
from ewsjf_core.sim.gpu_spec import get_gpu, gpu_key
from ewsjf_core.sim.model_spec import get_model, model_identity
from ewsjf_core.sim.measured_gpu import gpu_identity, is_measurement_folder
from ewsjf_core.sim.config import DEFAULT_PREEMPTION_GUARD, DEFAULT_WAITING_HEAD_SHARE

from . import arg_types as T
from . import inputs, suite_goals, suite_report, suite_trace
from .metrics import class_edges, summarize
from .suite_loads import DEFAULT_CACHE, operating_points
from .suite_policies import run_policy
from .suite_workloads import BY_NAME, SUITE, SuiteWorkload

DEFAULT_WORKLOADS = ",".join(w.name for w in SUITE)
CELL_POLICIES = ("fcfs", "oracle-sjf", "hrrn", "ewsjf")
TARGETS_S = (1.0, 3.0, 10.0)
OVERLOAD = 1.5
SUITE_REQUESTS = 4000
WARMUP_SHARE = 0.25
STEADY_GROWTH = 2.0
# The Pareto sweep: EWSJF's fairness knob (the starvation bound's slack over the FCFS wait) and SJF's aging.
PARETO_EWSJF = tuple(f"ewsjf:fcfs_wait_factor={x:g}" for x in (0.5, 1.0, 1.5, 2.0, 4.0, 1e3))
PARETO_AGING = tuple(f"sjf-aging:{x:g}" for x in (0.0, 0.003, 0.01, 0.03, 0.1, 1.0))


def add_arguments(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--suite", action="store_true",
                   help="run the workload suite at FCFS-defined operating points and print the goals table "
                        "(each workload sets its own trace, loads, model and GPU: the replay options --window, "
                        "--policies, --model, --gpu, ... are refused; --suite-gpu and --suite-model apply, and so do "
                        "engine options and --ewsjf-set/--ewsjf-config; --workload FILE [--format, --cv] runs it on "
                        "your own trace; see bench/suite.py)")
    g.add_argument("--suite-workloads", default=DEFAULT_WORKLOADS,
                   help="comma list of suite workloads (default: all; with --workload FILE: none, the trace alone)")
    g.add_argument("--suite-requests", type=T.int_in(50, 1_000_000), default=SUITE_REQUESTS,
                   help=f"requests per workload (default {SUITE_REQUESTS}; the first {WARMUP_SHARE:g} of them are "
                        "not measured)")
    g.add_argument("--suite-cache", default=DEFAULT_CACHE, help="operating-point cache file ('' disables)")
    g.add_argument("--no-pareto", action="store_true", help="skip the Pareto sweeps")
    g.add_argument("--suite-tuner", action="store_true",
                   help="EWSJF runs with its Bayesian tuner on (the ewsjf-tuned policy: trials replay the recorded "
                        "window on the cell's engine, as a `tuner:` section runs them in vLLM); the baselines and "
                        "the Pareto sweep are unchanged")
    g.add_argument("--suite-gpu", default=None,
                   help="replay every workload on this GPU preset instead of its own (a100-80gb; h100-80gb, h200: "
                        "the default configuration checked on hardware it was not measured on), or on a folder of "
                        "GPU measurements (gpu_calib.py's layout, fitted when first used)")
    g.add_argument("--suite-model", default=None,
                   help="replay every workload with this model preset instead of its own (qwen2.5-7b, llama-2-7b, "
                        "...), or with the model an HF config.json describes (the file or its folder)")


def _engine_key(e: EngineConfig) -> dict:
    key = {k: getattr(e, k) for k in ("token_budget", "max_running", "kv_blocks", "block_size", "chunked_prefill",
                                      "prefix_caching", "gpu_memory_utilization")}
    if e.kv_watermark:   # keys of engines without a watermark stay what they were (cached loads)
        key["kv_watermark"] = e.kv_watermark
    return key


def on_hardware(sw: SuiteWorkload, gpu: str | None = None, model: str | None = None) -> SuiteWorkload:
    """`sw` replayed on another GPU preset and/or model preset (their step times and KV cache), or as it is: a
    check of the default on hardware it was not measured on (`ewsjf bench --suite --suite-gpu h100-80gb`)."""
    if gpu:
        gpu = os.path.realpath(gpu) if is_measurement_folder(gpu) else gpu_key(gpu)
        get_gpu(gpu)   # an unknown name fails here, naming the presets; a folder is fitted (or refused) here
        sw = dataclasses.replace(sw, gpu=gpu)
    if model:
        key = str(model).lower()
        model = os.path.realpath(model) if key not in MODEL_PRESETS and os.path.exists(model) else key
        get_model(model)   # an unknown name fails here, naming the presets; an HF config.json is read here
        sw = dataclasses.replace(sw, model=model)
    return sw


def _deciles(w, ttft: np.ndarray, first: int) -> list[float]:
    """Mean TTFT per prompt-length decile of the requests from index `first` on (ranked by prompt length,
    split into ten equal groups)."""
    order = np.argsort(w.prompt_tokens[first:], kind="stable")
    return [float(np.nanmean(ttft[first:][part])) for part in np.array_split(order, 10)]


def suite_build(sw, n: int = SUITE_REQUESTS, seed: int = 0):
    """The workload `sw` as the suite replays it: its first n requests (at most its own cap)."""
    return sw.build(min(n, sw.max_requests or n), seed)


def measured_from(w) -> int:
    """The first request the suite measures (the ones before it warm the engine up)."""
    return int(WARMUP_SHARE * len(w))


def workload_points(sw, w, engine: EngineConfig, seed: int = 0, cache: str | None = DEFAULT_CACHE) -> list[dict]:
    """The operating points of `w` (a suite_build of sw): one per target, found by bisection on FCFS's mean
    TTFT over the measured requests (cached), then the overload point."""
    st = RooflineStepTime(sw.model, sw.gpu)
    edges, first = class_edges(w.prompt_tokens), measured_from(w)

    def fcfs_mean(scale: float) -> float:
        res = run_policy(w.scale_rate(scale), "fcfs", st, engine)
        return summarize(res, edges, measured_from=first)["ttft_s"]["mean"]

    key = {"workload": sw.name, "requests": len(w), "measured_from": first, "seed": seed,
           "model": model_identity(sw.model), "gpu": gpu_identity(sw.gpu), "engine": _engine_key(engine),
           **suite_trace.content_key(sw)}
    points = operating_points(key, fcfs_mean, TARGETS_S, cache or None)
    return points + [{"target_s": None, "scale": OVERLOAD * points[-1]["scale"], "fcfs_mean_ttft_s": None,
                      "reached": True}]


CELL_LOADS = tuple(f"{t:g}" for t in TARGETS_S) + ("ovl",)
"""A cell's load by name: its target (seconds of FCFS mean TTFT) or 'ovl', the overload point."""


def cell_scale(points: list[dict], load: str) -> float:
    """The rate scale of a cell named by its load (one of CELL_LOADS)."""
    if load == "ovl":
        return points[-1]["scale"]
    return points[TARGETS_S.index(float(load))]["scale"]


def cell_workload(sw, w, load: str, seed: int = 0):
    """`w` (a suite_build of sw) at the rate of the cell named by `load`: the suite's operating point, FCFS's on the
    engine as vLLM ships it (found anew or read from the cache)."""
    return w.scale_rate(cell_scale(workload_points(sw, w, EngineConfig(), seed), load))


def add_cell_arguments(ap: argparse.ArgumentParser) -> None:
    """The arguments that name one cell, for the diagnostics in scripts/ (cell_from_args reads them)."""
    ap.add_argument("workload", help="a suite workload's name or a trace file (bench/suite_trace.py)")
    ap.add_argument("load", choices=CELL_LOADS)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--gpu", default=None, help="another GPU preset or measurements folder (bench --suite-gpu)")
    ap.add_argument("--model", default=None, help="another model preset or HF config.json (bench --suite-model)")


def cell_from_args(args: argparse.Namespace) -> tuple:
    """(the suite workload on its hardware, its suite_build, the cell's replay) of the cell add_cell_arguments named."""
    sw = on_hardware(suite_trace.from_trace(args.workload), args.gpu, args.model)
    w = suite_build(sw, seed=args.seed)
    return sw, w, cell_workload(sw, w, args.load, args.seed)


def _check_served(sw, w, engine: EngineConfig, step_model) -> None:
    """A workload the engine rejects whole (a trace of prompts larger than the KV cache) is refused by name before
    its loads are searched; one it rejects in part is said on stderr, as a plain replay says it (every policy
    skips the same requests, and the figures count the others)."""
    kv_blocks = inputs.sized_engine(engine, step_model).kv_blocks
    why = rejection_reasons(w, engine, kv_blocks)
    inputs.check_servable(why, engine, kv_blocks, False, what=f"suite workload {sw.name} on {sw.model}, {sw.gpu}")
    rejected = Counter(r for r in why if r)
    if rejected:
        print(f"  warning: suite workload {sw.name}: {sum(rejected.values())} of {len(w)} requests rejected by the "
              f"engine ({', '.join(f'{k}: {v}' for k, v in rejected.items())}); the figures count the others",
              file=sys.stderr)


def _steady(ttft: np.ndarray, first: int) -> bool:
    """Whether FCFS's mean TTFT stays level over the measured arrivals (see STEADY_GROWTH)."""
    x = ttft[first:]
    q = len(x) // 4
    return bool(q) and float(np.nanmean(x[-q:])) <= STEADY_GROWTH * max(float(np.nanmean(x[:q])), 1e-9)


def run_workload(sw, n: int, engine: EngineConfig, ecfg: EWSJFConfig | None, cache: str | None,
                 pareto: bool, seed: int = 0, head_share: float = DEFAULT_WAITING_HEAD_SHARE,
                 preemption_guard: bool = DEFAULT_PREEMPTION_GUARD, tuner: bool = False) -> dict:
    """Every cell of `sw`; with `tuner`, the policy in EWSJF's column is ewsjf-tuned (its figures under "ewsjf")."""
    t0 = time.perf_counter()
    w = suite_build(sw, n, seed)
    st = RooflineStepTime(sw.model, sw.gpu)
    _check_served(sw, w, engine, st)
    edges, first = class_edges(w.prompt_tokens), measured_from(w)
    cells = []
    points = workload_points(sw, w, engine, seed, cache)
    top = points[len(TARGETS_S) - 1]["scale"]   # the highest target's point: the Pareto plot's
    for pt in points:
        if pt["scale"] in {c["point"]["scale"] for c in cells}:
            continue   # a target past a cliff in FCFS's mean TTFT lands where the last one did: one cell
        wl = w.scale_rate(pt["scale"])
        metrics, deciles, ttfts = {}, {}, {}
        for pol in CELL_POLICIES:
            spec = "ewsjf-tuned" if tuner and pol == "ewsjf" else pol
            res = run_policy(wl, spec, st, engine, ecfg, head_share, preemption_guard)
            ttfts[pol] = res.first_token_s - wl.arrival_s
            metrics[pol] = summarize(res, edges, measured_from=first)
            deciles[pol] = _deciles(wl, ttfts[pol], first)
        pt = {**pt, "steady": _steady(ttfts["fcfs"], first)}
        is_long = wl.prompt_tokens[first:] > edges[1]
        later = {pol: suite_goals.later_than_fcfs(t[first:], ttfts["fcfs"][first:], is_long)
                 for pol, t in ttfts.items() if pol != "fcfs"}
        # The sweep: the Pareto plot at the highest target's point, and the frontier wherever it may decide a goal
        # (suite_goals.sweep_decides).
        front = {}
        if pareto and (pt["scale"] == top or suite_goals.sweep_decides(metrics)):
            front = {spec: summarize(run_policy(wl, spec, st, engine, ecfg, head_share, preemption_guard), edges,
                                       measured_from=first)
                     for spec in PARETO_EWSJF + PARETO_AGING}
        label = f"{pt['target_s']:g} s" if pt["target_s"] else f"overload ({OVERLOAD:g}x)"
        if pt["target_s"] and not pt["reached"]:
            label += ", not reached"
        if pt["target_s"] and not pt["steady"]:
            label += ", not steady"
        cells.append({"label": label, "point": pt, "metrics": metrics, "deciles": deciles, "front": front,
                      "later_than_fcfs": later, "goals": suite_goals.check_cell(metrics, front=front)})
    top_cell = next(c for c in cells if c["point"]["scale"] == top)
    front = {**top_cell["front"], **top_cell["metrics"]} if top_cell["front"] else {}
    return {"workload": sw.name, "what": sw.what, "model": sw.model, "gpu": sw.gpu, "describe": w.describe(),
            "class_edges": list(edges), "measured_from": first, "cells": cells, "pareto": front,
            "wall_s": time.perf_counter() - t0}


def selected_workloads(names: str, trace: str | None = None, fmt: str = "auto", cv: float = 1.0) -> list:
    """The suite workloads named in `names` (comma list), then a user's trace (`--workload FILE`) if given."""
    chosen = []
    for name in filter(None, (x.strip() for x in names.split(","))):
        if name not in BY_NAME:
            raise ValueError(f"unknown suite workload {name!r}: use {', '.join(BY_NAME)} (a trace file: --workload)")
        chosen.append(BY_NAME[name])
    if trace is not None:
        chosen.append(suite_trace.from_trace(trace, fmt, cv))
    if not chosen:
        raise ValueError("--suite-workloads: no workload named")
    return chosen


def run_suite(args, trace: str | None = None, names: str | None = None) -> int:
    """The suite over `names` (default --suite-workloads), then `trace` (`--workload FILE`) if given."""
    t0 = time.perf_counter()
    names = args.suite_workloads if names is None else names
    workloads = [on_hardware(sw, args.suite_gpu, args.suite_model)
                 for sw in selected_workloads(names, trace, args.format, args.cv)]
    ecfg = inputs.ewsjf_config(args.ewsjf_config, args.ewsjf_set)
    engine = inputs.engine_config(args, with_context_length=False)   # each workload's model sets it
    results = []
    for sw in workloads:
        r = run_workload(sw, args.suite_requests, engine, ecfg, args.suite_cache, not args.no_pareto,
                         args.seed, args.ewsjf_head_share, args.ewsjf_preemption_guard, args.suite_tuner)
        results.append(r)
        print(f"  {sw.name}: {len(r['cells'])} loads in {r['wall_s']:.1f} s", file=sys.stderr)
    doc = {"command": "ewsjf bench --suite " + " ".join(a for a in sys.argv[2:] if a != "--suite"),
           "ewsjf_config": (ecfg or EWSJFConfig()).to_dict(), "engine": _engine_key(engine),
           "ewsjf_head_share": args.ewsjf_head_share, "ewsjf_preemption_guard": args.ewsjf_preemption_guard,
           "ewsjf_tuner": args.suite_tuner, "workloads": results, "wall_s": time.perf_counter() - t0}
    print(suite_report.summary_text(results))
    hardware = sorted({f"{r['model']} on {r['gpu']}" for r in results})
    print(f"hardware: {', '.join(hardware)}" + (" (--suite-gpu / --suite-model)" if args.suite_gpu or args.suite_model
                                                else ""))
    if args.out:
        written = suite_report.write(args.out, doc, plots=not args.no_plots)
        print("\nwrote " + ", ".join(written))
    print(f"total {time.perf_counter() - t0:.1f} s")
    return 0
