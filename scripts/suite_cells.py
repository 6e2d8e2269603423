"""Run selected cells of `ewsjf bench --suite` (EWSJF only; the baselines' figures cached in a file), to try a
candidate on the cells it targets before the full suite (issue 9).

    .venv/bin/python scripts/suite_cells.py published:10,bwb:3,sharegpt:ovl [--seed N] [--set k=v,...]
    .venv/bin/python scripts/suite_cells.py all --seed 0,1,2 --set own_size_slack=0   # every cell, three draws
    .venv/bin/python scripts/suite_cells.py all --seed 0 --policy sjf-aging:0.03      # another scheduler scored alike
    .venv/bin/python scripts/suite_cells.py all --seed 0,1,2 --gpu h100-80gb          # on another GPU
    .venv/bin/python scripts/suite_cells.py all --seed 0,1,2 --save /tmp/default.json   # keep a run's figures
    .venv/bin/python scripts/suite_cells.py all --seed 0,1,2 --set b_u=3 --against /tmp/default.json
    .venv/bin/python scripts/suite_cells.py all --seed 0 --jitter 2                   # each cell 3 replays
    .venv/bin/python scripts/suite_cells.py held-out-3,held-out-4 --seed 0            # fresh held-out draws

A cell token `held-out-N` stands for the 20 cells of draw N of the five held-out shapes (bench/synthetic_traces.py
HELD_OUT, written as `python -m ewsjf.bench.synthetic_traces --seed N` writes them), each at every load; the CSV
files go to $EWSJF_HELD_OUT_DIR (default ~/.cache/ewsjf/held_out/sN) and are replayed as trace files.

Prints per cell EWSJF's short-class mean and long-class p99 against HRRN's and FCFS's, the fairness ratios and
the checks of bench/suite_goals.py (the near-limit goal without the frontier sweep), on the requests the suite
measures, then per seed the checks passing and the failing ones by goal (near-limit misses count as failures
here). Operating points and request counts are the suite's (its cache, or found anew). Baselines are cached
in $EWSJF_CELLS_CACHE (default /tmp/ewsjf_suite_cells.json), keyed by the simulator's and the baselines' source.
`--save FILE` writes each cell's checks and figures as JSON; `--against FILE` (a saved run) then prints every check
that changed from it, both runs' totals over the cells run in both, and the geometric means of the candidate's short
mean and long p99 against the saved run's (a candidate that moves figures without flipping checks shows there).
`--jitter K` replays each cell K more times with every arrival moved by up to a microsecond and counts each check by
its share of passing replays (totals in hundredths): at a goal's edge the replays are chaotic, and a candidate's
difference counts where it holds over them.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import inspect
import json
import os
import sys
from collections import Counter
from statistics import geometric_mean

import numpy as np

from ewsjf.bench import engines, suite_goals, suite_policies
from ewsjf.bench import metrics as bench_metrics
from ewsjf.bench.metrics import class_edges, summarize
from ewsjf.bench.suite import CELL_LOADS, cell_workload, measured_from, on_hardware, suite_build
from ewsjf.bench.suite_loads import CACHE_ROOT, cache_key
from ewsjf.bench.suite_policies import run_policy
from ewsjf.bench.suite_trace import content_key, from_trace
from ewsjf.bench.suite_workloads import SUITE
from ewsjf.bench.synthetic_traces import HELD_OUT, write_draws
from ewsjf.bindings import baselines
from ewsjf_core.sim import EngineConfig, RooflineStepTime, Workload
from ewsjf_core.sim.config import DEFAULT_PREEMPTION_GUARD, DEFAULT_WAITING_HEAD_SHARE
from ewsjf_core.sim.measured_gpu import gpu_identity
from ewsjf_core.sim.model_spec import model_identity

BASELINES = ("fcfs", "oracle-sjf", "hrrn")
_BASELINE_CODE = hashlib.sha256("".join(inspect.getsource(m) for m in (baselines, engines, bench_metrics,
                                                                       suite_policies)).encode()).hexdigest()
"""With the simulator's source (suite_loads.cache_key), what a cached baseline figure depends on: a change to any
of them makes new keys, so no stale figure is read."""
ALL_CELLS = [f"{w.name}:{load}" for w in SUITE for load in CELL_LOADS]
JITTER_S = 1e-6
"""--jitter moves each arrival later by up to this (seconds)."""
HELD_OUT_TOKEN = "held-out-"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("cells", help="comma list of workload:load (load one of 1, 3, 10, ovl; workload a suite name or a "
                                  "trace file), 'all' (every suite cell) or held-out-N (draw N of the held-out shapes)")
    ap.add_argument("--seed", default="0", help="a seed, or a comma list of seeds (each its own draw)")
    ap.add_argument("--set", default="", help="EWSJF config overrides, k=v,...")
    ap.add_argument("--watermark", type=float, default=0.0,
                    help="vLLM's --watermark for every policy (bench --watermark): a fraction of the KV blocks kept "
                         "free by admissions")
    ap.add_argument("--gpu", default=None,
                    help="replay every cell on this GPU preset, or folder of GPU measurements, instead of its "
                         "workload's own (bench --suite-gpu)")
    ap.add_argument("--model", default=None,
                    help="replay every cell with this model preset, or HF config.json (bench --suite-model)")
    ap.add_argument("--preemption-guard", action=argparse.BooleanOptionalAction, default=DEFAULT_PREEMPTION_GUARD,
                    help="the watermark learned from preemptions (bench --ewsjf-preemption-guard) for the policy "
                         "scored in EWSJF's place, whichever it is (--policy); the baselines never have it "
                         "(default: on, as EWSJF's scheduler runs)")
    ap.add_argument("--head-share", type=float, default=DEFAULT_WAITING_HEAD_SHARE,
                    help="EWSJF's share of the chunk budget for the next waiting request (bench --ewsjf-head-share)")
    ap.add_argument("--policy", default="ewsjf",
                    help="the candidate in EWSJF's place, a suite spec (bench/suite_policies.py): sjf-aging:0.03, hrrn")
    ap.add_argument("--jitter", type=int, default=0,
                    help="also replay each cell this many times with every arrival moved by up to a microsecond, and "
                         "count each check's share of passing replays")
    ap.add_argument("--save", default=None, help="write each cell's checks and figures to this JSON file")
    ap.add_argument("--against", default=None, help="a file --save wrote: print what changed from it")
    args = ap.parse_args()
    saved = _read_run(args.against) if args.against else None
    cache_path = cells_cache_path()
    cache = _read_cache(cache_path)
    cells = expand_cells(args.cells)
    spec = args.policy + (":" + args.set if args.set else "")
    total = Counter()
    run: dict[str, dict] = {}
    for seed in [int(s) for s in args.seed.split(",")]:
        seed_run: dict[str, dict] = {}
        for cell in cells:
            replays = _cell_goals(cell, seed, spec, cache, cache_path, args)
            goals = replays[0][0]
            share = {g: _pass_share([r[0][g]["ok"] for r in replays]) for g in goals}
            seed_run[f"{seed}/{cell}"] = {"pass": share, **{k: float(np.mean([r[1][k] for r in replays]))
                                                            for k in replays[0][1]}}
            marks = " | ".join(f"{g} {_mark(v['ok'], share[g], len(replays))} {v['why']}" for g, v in goals.items())
            print(f"{cell:>18}: {marks}", flush=True)
        tally = tally_checks(seed_run)
        print(f"seed {seed}: {_summary(tally)}", flush=True)
        total.update(tally)
        run.update(seed_run)
    if "," in args.seed:
        print(f"all seeds: {_summary(total)}")
    if args.save:
        with open(args.save, "w") as f:
            json.dump({"command": " ".join(sys.argv), "cells": run}, f, indent=1)
    if saved is not None:
        _compare(saved, run)


def cells_cache_path() -> str:
    """Where the baselines' figures are cached: $EWSJF_CELLS_CACHE, or a file in /tmp."""
    return os.environ.get("EWSJF_CELLS_CACHE", "/tmp/ewsjf_suite_cells.json")


def expand_cells(spec: str) -> list[str]:
    """The cells a comma list names: `all` (every suite cell), `held-out-N` (draw N of the held-out shapes, written
    as CSV files first), or a workload:load cell as it is."""
    cells: list[str] = []
    for token in (t.strip() for t in spec.split(",") if t.strip()):
        if token == "all":
            cells += ALL_CELLS
        elif token.startswith(HELD_OUT_TOKEN):
            cells += [f"{path}:{load}" for path in held_out_files(_draw_seed(token)) for load in CELL_LOADS]
        else:
            cells.append(token)
    return cells


def _draw_seed(token: str) -> int:
    text = token[len(HELD_OUT_TOKEN):]
    if not text.isdigit():
        raise SystemExit(f"cells: {token!r}: a held-out draw is {HELD_OUT_TOKEN}N, N a seed (a whole number >= 0)")
    return int(text)


def held_out_files(seed: int, folder: str | None = None) -> list[str]:
    """Draw `seed` of every held-out shape as a CSV file in folder/s<seed> (rewritten each time: a draw is cheap and
    the same for a seed, so no stale file is ever replayed)."""
    root = folder or os.environ.get("EWSJF_HELD_OUT_DIR") or os.path.join(CACHE_ROOT, "held_out")
    return write_draws(list(HELD_OUT), os.path.join(root, f"s{seed}"), seed=seed)


def _read_cache(path: str) -> dict:
    """The cached baseline figures; a missing or unreadable file is an empty cache (its figures are recomputed)."""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        print(f"{path}: unreadable ({e}); the baselines are recomputed", flush=True)
        return {}


def _read_run(path: str) -> dict[str, dict]:
    """A run --save wrote: {"SEED/CELL": {"pass": {goal: share of replays passing, or None}, "short_mean_s": x,
    "long_p99_s": y}}."""
    with open(path) as f:
        saved = json.load(f)
    if not isinstance(saved, dict) or not isinstance(saved.get("cells"), dict):
        raise SystemExit(f"--against {path}: not a run that --save wrote (no 'cells')")
    return saved["cells"]


def _compare(saved: dict[str, dict], run: dict[str, dict]) -> None:
    """Print the checks whose pass share changed from `saved` to `run`, both totals and the figures'
    geometric-mean ratios, over the cells in both."""
    both = [k for k in run if k in saved]
    if not both:
        print("against: no cell of this run is in the saved one")
        return
    for k in both:
        for goal, now in run[k]["pass"].items():
            was = saved[k]["pass"].get(goal)
            if was is not None and now is not None and was != now:
                print(f"{'GAIN' if now > was else 'LOST'} {k} {goal}: {_count(was)} -> {_count(now)}")
    for name, cells in (("saved", saved), ("this run", run)):
        shares = [x for k in both for x in cells[k]["pass"].values() if x is not None]
        print(f"{name}: {_count(sum(shares))}/{len(shares)} checks pass on the {len(both)} cells run in both")
    for fig in ("short_mean_s", "long_p99_s"):
        ratios = [run[k][fig] / saved[k][fig] for k in both if run[k][fig] > 0 and saved[k][fig] > 0]
        if ratios:
            print(f"{fig} against the saved run: geometric mean x{geometric_mean(ratios):.4f}")


def tally_checks(cells: dict[str, dict]) -> Counter:
    """Over cells as --save writes them: the checks that apply ("checks"), the pass shares summed ("pass") and, per
    goal, the shares failing."""
    tally = Counter()
    for cell in cells.values():
        for goal, share in cell["pass"].items():
            if share is not None:
                tally["checks"] += 1
                tally["pass"] += share
                tally[goal] += 1.0 - share
    return tally


def _pass_share(oks: list[bool | None]) -> float | None:
    """The share of a cell's replays that pass a goal (None where it does not apply)."""
    return None if oks[0] is None else sum(map(bool, oks)) / len(oks)


def _mark(ok: bool | None, share: float | None, replays: int) -> str:
    """The trace's own verdict, and with --jitter the count of replays passing."""
    mark = suite_goals.mark(ok)
    return mark if replays == 1 or share is None else f"{mark} ({round(share * replays)}/{replays})"


def _count(x: float) -> str:
    """A count of checks passing: whole, or in hundredths where replays disagree (--jitter)."""
    return f"{x:.0f}" if abs(x - round(x)) < 1e-9 else f"{x:.2f}"


def _summary(tally: Counter) -> str:
    fails = ", ".join(f"{g} {_count(tally[g])}" for g in suite_goals.GOALS)
    return f"{_count(tally['pass'])}/{tally['checks']} checks pass; failing checks by goal: {fails}"


def _cell_goals(cell: str, seed: int, spec: str, cache: dict, cache_path: str,
                args: argparse.Namespace) -> list[tuple[dict[str, dict], dict[str, float]]]:
    """Per replay of the cell by EWSJF run as `spec` (the trace, then args.jitter copies of it, _jittered), its goal
    checks (bench/suite_goals.py; the baselines cached, on the trace) and its short mean and long p99; args: the
    engine and hardware options."""
    name, load = cell.rsplit(":", 1)
    watermark, gpu, model = args.watermark, args.gpu, args.model
    sw = on_hardware(from_trace(name), gpu, model)
    engine = EngineConfig(kv_watermark=watermark)
    w = suite_build(sw, seed=seed)
    st = RooflineStepTime(sw.model, sw.gpu)
    # The suite's operating points (FCFS's on the engine as vLLM ships it), so a watermark compares the same loads.
    wl = cell_workload(sw, w, load, seed)
    edges, first = class_edges(w.prompt_tokens), measured_from(w)
    metrics = {}
    for pol in BASELINES:
        k = cache_key({"cell": cell, **content_key(sw), "requests": len(w), "measured_from": first, "seed": seed,
                       "policy": pol, "code": _BASELINE_CODE, **({"watermark": watermark} if watermark else {}),
                       **({"gpu": gpu_identity(sw.gpu)} if gpu else {}),
                       **({"model": model_identity(sw.model)} if model else {})})
        if k not in cache:
            cache[k] = summarize(run_policy(wl, pol, st, engine), edges, measured_from=first)
            tmp = f"{cache_path}.{os.getpid()}.tmp"   # whole or not at all: another run may be reading it
            with open(tmp, "w") as f:
                json.dump(cache, f)
            os.replace(tmp, cache_path)
        metrics[pol] = cache[k]
    guard = args.preemption_guard
    ours_engine = dataclasses.replace(engine, preemption_guard=guard)
    replays = []
    for j in range(args.jitter + 1):
        replay = run_policy(_jittered(wl, seed, j), spec, st, ours_engine, ewsjf_head_share=args.head_share,
                            ewsjf_preemption_guard=guard)
        ours = summarize(replay, edges, measured_from=first)
        figures = {"short_mean_s": suite_goals.short_mean(ours), "long_p99_s": suite_goals.long_p99(ours)}
        replays.append((suite_goals.check_cell({**metrics, "ewsjf": ours}), figures))
    return replays


def _jittered(wl: Workload, seed: int, j: int) -> Workload:
    """Replay j of a cell: the trace itself (0), or its arrivals each moved later by up to JITTER_S (order kept), a
    change no schedule should feel. At the edge of a goal the replays are chaotic (bench/SUITE_PASSES.md,
    twenty-sixth pass: `fcfs_wait_factor` 1.2 -> 1.2001 flipped two held-out fairness checks), so a candidate's
    difference counts where it holds over the jittered replays, not on one."""
    if j == 0:
        return wl
    rng = np.random.default_rng([seed, j])
    moved = wl.arrival_s + rng.uniform(0.0, JITTER_S, len(wl))
    return dataclasses.replace(wl, arrival_s=np.maximum.accumulate(moved))


if __name__ == "__main__":
    main()
