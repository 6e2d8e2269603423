"""Search EWSJF's knobs jointly over suite cells (issue 9): does one configuration reach every reachable check?

The frontier sweep (`ewsjf bench --suite`) judges reachability one cell at a time; this asks it of the cells
together. Bayesian optimisation (scikit-optimize) over the knobs in SPACE, each evaluation a
`scripts/suite_cells.py CELLS --seed S --set ...` run (EWSJF only; the baselines come from its cache), scored by the
checks passing less FAIR_PENALTY per fairness miss. Two evaluations run at once (one per core here); every one is
appended to LOG as a JSON line, and a run started again reads LOG first and goes on from there.

    .venv/bin/python scripts/joint_search.py all --seed 0 --calls 40 --log /tmp/joint.jsonl
    .venv/bin/python scripts/joint_search.py all --seed 0 --log /tmp/joint.jsonl --best 5   # the best so far

Keep draws out of the search to validate its best point on (`suite_cells.py all --seed 1,2 --set ...`,
`held-out-0,...`): a point fitted to one draw is what issue 9 warns against. `--start EARLIER_LOG` evaluates an
earlier search's best points first (after the default); a log resumes only the cells and seeds it was written for.
Issue 9's thirty-fourth pass (bench/SUITE_PASSES.md) is two such searches: on the suite alone, and with held-out draws.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from skopt import Optimizer
from skopt.space import Real

from suite_cells import cells_cache_path, tally_checks   # scripts/ is on sys.path when run by path

from ewsjf.bench.suite_goals import GOALS
from ewsjf_core.config import EWSJFConfig

SPACE = [
    Real(1.05, 1.6, name="fcfs_wait_factor"),
    Real(1e-4, 1e-2, prior="log-uniform", name="a_u"),
    Real(0.3, 3.0, prior="log-uniform", name="b_u"),
    Real(0.01, 1.0, prior="log-uniform", name="b_f"),
    Real(0.0, 1.0, name="own_size_slack"),
    Real(0.0, 1.0, name="late_bypass_share"),
    Real(0.0, 1.0, name="slot_work_weight"),
    Real(0.5, 4.0, name="kv_work_weight"),
    Real(0.8, 0.999, name="tail_floor_quantile"),
]
FAIR_PENALTY = 3.0
"""A fairness miss costs this many checks in the score: the bound is the one goal a user cannot trade away."""
SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "suite_cells.py")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("cells", help="suite_cells.py's cells (all, held-out-N, workload:load, ...)")
    ap.add_argument("--seed", default="0", help="suite_cells.py's --seed")
    ap.add_argument("--calls", type=int, default=40, help="evaluations in all, those in LOG included")
    ap.add_argument("--workers", type=int, default=2, help="evaluations at once")
    ap.add_argument("--log", required=True, help="JSON lines, one per evaluation (read first: a run resumes)")
    ap.add_argument("--best", type=int, default=0, help="print the best K evaluations in LOG and stop")
    ap.add_argument("--start", default=None, help="an earlier search's LOG: its best --start-k points (in this "
                                                  "space) are evaluated first, after the default")
    ap.add_argument("--start-k", type=int, default=4)
    args = ap.parse_args()
    run = {"cells": args.cells, "seed": args.seed}
    done = _read_log(args.log)
    if args.best:
        for row in _by_score(done)[:args.best]:
            print(json.dumps(row))
        return
    _check_resumable(args.log, done, run)
    opt = Optimizer(SPACE, base_estimator="GP", acq_func="EI", n_initial_points=max(0, 10 - len(done)),
                    random_state=len(done))
    for row in done:
        opt.tell(_point(row["config"]), -row["score"])
    pending = [] if done else _first_points(args.start, args.start_k)
    with ThreadPoolExecutor(args.workers) as pool:
        while len(done) < args.calls:
            want = min(args.workers, args.calls - len(done)) - len(pending)
            batch = pending + (opt.ask(n_points=want) if want > 0 else [])
            pending = []
            configs = [{d.name: float(v) for d, v in zip(SPACE, x)} for x in batch]
            for config, row in zip(configs, pool.map(lambda c: _evaluate(c, run), configs)):
                opt.tell(_point(config), -row["score"])
                done.append(row)
                with open(args.log, "a") as f:
                    f.write(json.dumps(row) + "\n")
                print(f"[{len(done)}/{args.calls}] score {row['score']:.1f} pass {row['pass']:.0f}/{row['checks']} "
                      f"fails {row['fails']} in {row['seconds']:.0f} s: {_set_arg(config)}", flush=True)


def _evaluate(config: dict[str, float], run: dict[str, str]) -> dict:
    """One suite_cells.py run of `config` on its own copy of the baselines' cache (runs at once would overwrite
    each other's additions), as a LOG row."""
    with tempfile.TemporaryDirectory() as tmp:
        cache = os.path.join(tmp, "cells.json")
        shared = cells_cache_path()
        if os.path.exists(shared):
            shutil.copy(shared, cache)
        saved = os.path.join(tmp, "run.json")
        t0 = time.time()
        subprocess.run([sys.executable, SCRIPT, run["cells"], "--seed", run["seed"], "--set", _set_arg(config),
                        "--save", saved], check=True, stdout=subprocess.DEVNULL,
                       env={**os.environ, "EWSJF_CELLS_CACHE": cache})
        with open(saved) as f:
            cells = json.load(f)["cells"]
    return log_row(config, run, cells, time.time() - t0)


def log_row(config: dict[str, float], run: dict[str, str], cells: dict[str, dict], seconds: float) -> dict:
    """An evaluation as LOG keeps it: what was run (cells and seeds), the score (checks passing less FAIR_PENALTY per
    fairness miss), the totals, the failing checks by goal and each cell's pass shares (cells as suite_cells.py
    --save writes them)."""
    tally = tally_checks(cells)
    fails = {g: float(tally[g]) for g in GOALS}
    return {"config": config, "run": run, "score": tally["pass"] - FAIR_PENALTY * fails["fair"], "pass": tally["pass"],
            "checks": tally["checks"], "fails": fails, "seconds": seconds,
            "cells": {k: v["pass"] for k, v in cells.items()}}


def _check_resumable(path: str, done: list[dict], run: dict[str, str]) -> None:
    """A search resumes only on its own cells and seeds, and only from points of SPACE (scores of other cells, or
    points the optimiser cannot hold, would mislead it)."""
    for i, row in enumerate(done, 1):
        if row.get("run") != run:
            raise SystemExit(f"--log {path}: row {i} scored {row.get('run')}, not {run}: give this search its own log")
        if not _in_space(row["config"]):
            raise SystemExit(f"--log {path}: row {i}'s config lies outside SPACE ({_set_arg(row['config'])})")


def _first_points(start: str | None, k: int) -> list[list[float]]:
    """The default, then the best k points of an earlier search's LOG that lie in SPACE."""
    points = [_point({d.name: getattr(EWSJFConfig(), d.name) for d in SPACE})]
    for row in _by_score(_read_log(start) if start else []):
        if len(points) <= k and _in_space(row["config"]) and _point(row["config"]) not in points:
            points.append(_point(row["config"]))
    return points


def _by_score(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: -r["score"])


def _in_space(config: dict[str, float]) -> bool:
    return all(d.name in config and d.low <= config[d.name] <= d.high for d in SPACE)


def _read_log(path: str) -> list[dict]:
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def _point(config: dict[str, float]) -> list[float]:
    return [config[d.name] for d in SPACE]


def _set_arg(config: dict[str, float]) -> str:
    return ",".join(f"{k}={v:.6g}" for k, v in config.items())


if __name__ == "__main__":
    main()
