"""Run selected cells of `ewsjf bench --suite` (EWSJF only; the baselines' figures cached in a file), to try a
candidate on the cells it targets before the full suite (issue 9).

    .venv/bin/python scripts/suite_cells.py published:10,bwb:3,sharegpt:ovl [--seed N] [--set k=v,...]

Prints per cell EWSJF's short-class mean and long-class p99 against HRRN's and FCFS's, the fairness ratios and
the checks of bench/suite_goals.py (the near-limit goal without the frontier sweep), on the requests the suite
measures. Operating points and request counts are the suite's (its cache, or found anew). Baselines are cached
in $EWSJF_CELLS_CACHE (default /tmp/ewsjf_suite_cells.json): delete it after changing the simulator.
"""

from __future__ import annotations

import argparse
import json
import os

from ewsjf.bench import suite_goals
from ewsjf.bench.metrics import class_edges, summarize
from ewsjf.bench.suite import cell_scale, measured_from, suite_build, workload_points
from ewsjf.bench.suite_policies import run_policy
from ewsjf.bench.suite_workloads import BY_NAME
from ewsjf_core.sim import EngineConfig, RooflineStepTime

BASELINES = ("fcfs", "oracle-sjf", "hrrn")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("cells", help="comma list of workload:load, load one of 1, 3, 10, ovl")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", default="", help="EWSJF config overrides, k=v,...")
    args = ap.parse_args()
    cache_path = os.environ.get("EWSJF_CELLS_CACHE", "/tmp/ewsjf_suite_cells.json")
    cache = json.load(open(cache_path)) if os.path.exists(cache_path) else {}
    engine = EngineConfig()
    spec = "ewsjf" + (":" + args.set if args.set else "")
    n_ok = n_checks = 0
    for cell in args.cells.split(","):
        name, load = cell.split(":")
        sw = BY_NAME[name]
        w = suite_build(sw, seed=args.seed)
        st = RooflineStepTime(sw.model, sw.gpu)
        wl = w.scale_rate(cell_scale(workload_points(sw, w, engine, args.seed), load))
        edges, first = class_edges(w.prompt_tokens), measured_from(w)
        metrics = {}
        for pol in BASELINES:
            k = f"{name}:{len(w)}:{first}:{load}:{args.seed}:{pol}"
            if k not in cache:
                cache[k] = summarize(run_policy(wl, pol, st, engine), edges, measured_from=first)
                json.dump(cache, open(cache_path, "w"))
            metrics[pol] = cache[k]
        metrics["ewsjf"] = summarize(run_policy(wl, spec, st, engine), edges, measured_from=first)
        goals = suite_goals.check_cell(metrics)
        marks = " | ".join(f"{g} {suite_goals.mark(v['ok'])} {v['why']}" for g, v in goals.items())
        n_checks += sum(v["ok"] is not None for v in goals.values())
        n_ok += sum(bool(v["ok"]) for v in goals.values())
        print(f"{cell:>18}: {marks}", flush=True)
    print(f"{n_ok}/{n_checks} checks pass")


if __name__ == "__main__":
    main()
