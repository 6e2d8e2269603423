"""The suite's goals at steady operating points: a diagnostic of what `ewsjf bench --suite` would say with loads
found after the warm-up (issue 9; see scripts/suite_stationarity.py for why).

    .venv/bin/python scripts/suite_steady.py [--workloads sharegpt,bwb,published] [--requests 4000] [--seed 0]
                                             [--ewsjf ewsjf:kv_work_weight=1]

For each workload: a build of --requests requests; loads by the same bisection as the suite's, on FCFS's mean
TTFT of the requests that arrive after the first --warmup share of them (the running batch has filled by then),
for 1, 3 and 10 s. At each load FCFS, HRRN and EWSJF (default config, the suite's engines) are replayed on the
whole build and judged on those later requests only: short-class mean TTFT and long-class p99 against HRRN's
(dominance), long p99 and longest wait against FCFS's (<= 1.25x, <= 1.5x), classes by the build's prompt-length
terciles. A load is reported steady when FCFS's mean TTFT in the last quarter of the measured arrivals is within
2x of the first quarter's (an overload grows without bound). Prints one line per cell.
"""

from __future__ import annotations

import argparse

import numpy as np

from ewsjf.bench.metrics import class_edges
from ewsjf.bench.suite import TARGETS_S
from ewsjf.bench.suite_loads import find_scale
from ewsjf.bench.suite_policies import run_policy
from ewsjf.bench.suite_workloads import BY_NAME
from ewsjf_core.sim import EngineConfig, RooflineStepTime


def measured(workload, policy: str, step_time, engine: EngineConfig, first: int) -> dict[str, np.ndarray]:
    """TTFT and queue wait of the requests from index `first` on, under `policy`."""
    res = run_policy(workload, policy, step_time, engine)
    ttft = (res.first_token_s - workload.arrival_s)[first:]
    return {"ttft": ttft, "wait": (res.first_scheduled_s - workload.arrival_s)[first:]}


def judge(m: dict[str, dict], classes: dict[str, np.ndarray]) -> str:
    short, long_ = classes["short"], classes["long"]
    sm = {k: float(np.nanmean(v["ttft"][short])) for k, v in m.items()}
    lp = {k: float(np.nanpercentile(v["ttft"][long_], 99)) for k, v in m.items()}
    longest = {k: float(np.nanmax(v["wait"])) for k, v in m.items()}
    dom = sm["ewsjf"] <= sm["hrrn"] and lp["ewsjf"] <= lp["hrrn"]
    fair = lp["ewsjf"] <= 1.25 * lp["fcfs"] and longest["ewsjf"] <= 1.5 * longest["fcfs"]
    hrrn_fair = lp["hrrn"] <= 1.25 * lp["fcfs"] and longest["hrrn"] <= 1.5 * longest["fcfs"]
    return (f"short mean ewsjf/hrrn/fcfs {sm['ewsjf']:.2f}/{sm['hrrn']:.2f}/{sm['fcfs']:.2f} s, long p99 "
            f"{lp['ewsjf']:.1f}/{lp['hrrn']:.1f}/{lp['fcfs']:.1f} s: dominates HRRN {'pass' if dom else 'FAIL'}; "
            f"fair {'pass' if fair else 'FAIL'} (p99 {lp['ewsjf'] / lp['fcfs']:.2f}x, wait "
            f"{longest['ewsjf'] / longest['fcfs']:.2f}x; HRRN {'within' if hrrn_fair else 'outside'} the bounds)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workloads", default="sharegpt,bwb,published")
    ap.add_argument("--requests", type=int, default=4000)
    ap.add_argument("--warmup", type=float, default=0.25, help="share of the arrivals not measured")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ewsjf", default="ewsjf", help="the EWSJF policy spec, e.g. ewsjf:kv_work_weight=1")
    args = ap.parse_args()
    engine = EngineConfig()
    for name in args.workloads.split(","):
        sw = BY_NAME[name]
        w = sw.build(args.requests, args.seed)
        first = int(args.warmup * len(w))
        step_time = RooflineStepTime(sw.model, sw.gpu)
        edges = class_edges(w.prompt_tokens)
        p = w.prompt_tokens[first:]
        classes = {"short": p <= edges[0], "long": p > edges[1]}

        def fcfs_mean(scale: float) -> float:
            return float(np.nanmean(measured(w.scale_rate(scale), "fcfs", step_time, engine, first)["ttft"]))

        for target in TARGETS_S:
            scale, value = find_scale(fcfs_mean, target)
            wl = w.scale_rate(scale)
            m = {pol: measured(wl, spec, step_time, engine, first)
                 for pol, spec in (("fcfs", "fcfs"), ("hrrn", "hrrn"), ("ewsjf", args.ewsjf))}
            q = len(m["fcfs"]["ttft"]) // 4
            head, tail = np.nanmean(m["fcfs"]["ttft"][:q]), np.nanmean(m["fcfs"]["ttft"][-q:])
            steady = "steady" if tail <= 2 * head else "GROWING"
            print(f"{name:>10} @ {target:g} s (scale {scale:.4g}, FCFS mean {value:.2f} s, {steady}): "
                  f"{judge(m, classes)}", flush=True)


if __name__ == "__main__":
    main()
