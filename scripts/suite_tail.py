"""Who makes up the long class's tail in a suite cell, under each policy (issue 9, light-load dominance).

    .venv/bin/python scripts/suite_tail.py sharegpt 1 [--seed N] [--policies fcfs,hrrn,ewsjf] [--top 8]

The long class's p99 TTFT counts requests: over ~1,000 long requests it is the 10th-largest TTFT. A policy
lowers it by choosing whose waits are long, not only by how long they are. For each policy this prints the
long class's p99 and the prompt lengths of the requests at or above it (median and largest), then its `--top`
longest TTFTs with the request's prompt, arrival and wait, and the same request's TTFT / wait under the other
policies. On the requests the suite measures; operating points are the suite's (its cache, or found anew).
"""

from __future__ import annotations

import argparse

import numpy as np

from ewsjf.bench.metrics import class_edges
from ewsjf.bench.suite import add_cell_arguments, cell_from_args, measured_from
from ewsjf.bench.suite_policies import run_policy
from ewsjf_core.sim import EngineConfig, RooflineStepTime


def main() -> None:
    ap = argparse.ArgumentParser()
    add_cell_arguments(ap)
    ap.add_argument("--policies", default="fcfs,hrrn,ewsjf", help="suite policy specs, comma-separated")
    ap.add_argument("--top", type=int, default=8)
    args = ap.parse_args()
    sw, w, wl = cell_from_args(args)
    engine = EngineConfig()
    step_model = RooflineStepTime(sw.model, sw.gpu)
    prompt = wl.prompt_tokens
    long_edge = class_edges(w.prompt_tokens)[1]
    longs = np.flatnonzero((prompt > long_edge) & (np.arange(len(wl)) >= measured_from(w)))
    ttft, wait = {}, {}
    for spec in args.policies.split(","):
        res = run_policy(wl, spec, step_model, engine)
        ttft[spec], wait[spec] = res.first_token_s - wl.arrival_s, res.first_scheduled_s - wl.arrival_s
    print(f"{args.workload} @ {args.load}, seed {args.seed}: {len(longs)} long requests (prompt > {long_edge})")
    for spec in ttft:
        _print_tail(spec, longs, prompt, wl.arrival_s, ttft, wait, args.top)


def _print_tail(spec: str, longs: np.ndarray, prompt: np.ndarray, arrival: np.ndarray, ttft: dict, wait: dict,
                top: int) -> None:
    t = ttft[spec][longs]
    p99 = float(np.percentile(t, 99))
    tail = longs[t >= p99]
    print(f"\n{spec}: long p99 {p99:.2f} s; the {len(tail)} requests at or above it: prompt median "
          f"{int(np.median(prompt[tail]))}, largest {int(prompt[tail].max())} (all long: median "
          f"{int(np.median(prompt[longs]))}); longest wait {np.nanmax(wait[spec][longs]):.1f} s")
    others = [s for s in ttft if s != spec]
    for i in longs[np.argsort(-t)[:top]]:
        seen = "  ".join(f"{s} {ttft[s][i]:.2f} / {wait[s][i]:.2f}" for s in others)
        print(f"  #{i} prompt {prompt[i]:>6} arrival {arrival[i]:9.1f}  ttft {ttft[spec][i]:6.2f} wait "
              f"{wait[spec][i]:6.2f}  | {seen}")


if __name__ == "__main__":
    main()
