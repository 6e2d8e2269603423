"""Is each suite operating point a steady state? A diagnostic of `ewsjf bench --suite`'s loads (issue 9).

    .venv/bin/python scripts/suite_stationarity.py [--times 4] [--seed 0] [--workloads sharegpt,bwb]

The suite sets each load by bisection: the rate scale where FCFS's mean TTFT over the suite's requests (1,000;
mooncake 500, published 600) is 1, 3 or 10 s. A finite replay reaches that mean below the engine's capacity (a
steady queue) or above it (a queue that grows for as long as requests arrive, seen over a few minutes). This
replays FCFS at each suite scale on a `--times` longer build of the same workload and prints the mean TTFT of
each quarter of the arrivals, and the engine's completion rate against the arrival rate: in a steady state the
quarters stay level; above capacity they grow with the arrival index. Workloads with trace arrivals (azure*,
mooncake) take later stretches of their trace in a longer build, at other rates: read those rows with that in
mind. Operating points come from the suite's cache (run `ewsjf bench --suite` once first).
"""

from __future__ import annotations

import argparse

import numpy as np

from ewsjf.bench.suite import TARGETS_S, _engine_key
from ewsjf.bench.suite_loads import DEFAULT_CACHE, operating_points
from ewsjf.bench.suite_policies import run_policy
from ewsjf.bench.suite_workloads import SUITE
from ewsjf_core.sim import EngineConfig, RooflineStepTime


def quarters(workload, scale: float, step_time, engine: EngineConfig) -> tuple[list[float], float, float]:
    """FCFS's mean TTFT per quarter of the arrivals, the arrival rate and the completion rate (requests/s)."""
    wl = workload.scale_rate(scale)
    res = run_policy(wl, "fcfs", step_time, engine)
    ttft = res.first_token_s - wl.arrival_s
    q = len(ttft) // 4
    means = [float(np.nanmean(ttft[i * q:(i + 1) * q])) for i in range(4)]
    span = float(wl.arrival_s[-1] - wl.arrival_s[0])
    done = np.isfinite(res.finish_s)
    served = float(np.nanmax(res.finish_s) - wl.arrival_s[0])
    return means, len(wl) / span, int(done.sum()) / served


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--times", type=int, default=4, help="how many times the suite's request count to replay")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workloads", default="", help="comma list (default: all)")
    args = ap.parse_args()
    engine = EngineConfig()
    names = set(filter(None, args.workloads.split(",")))
    for sw in SUITE:
        if names and sw.name not in names:
            continue
        n = min(1000, sw.max_requests or 1000)
        suite_build = sw.build(n, args.seed)
        key = {"workload": sw.name, "requests": len(suite_build), "seed": args.seed, "model": sw.model,
               "gpu": sw.gpu, "engine": _engine_key(engine)}
        points = operating_points(key, None, TARGETS_S, DEFAULT_CACHE)
        step_time = RooflineStepTime(sw.model, sw.gpu)
        longer = sw.build(n * args.times, args.seed)
        for target, point in zip(TARGETS_S, points):
            means, arriving, completing = quarters(longer, point["scale"], step_time, engine)
            print(f"{sw.name:>16} @ {target:g} s (scale {point['scale']:.3g}): {len(longer)} requests, FCFS mean "
                  f"TTFT by quarter of arrivals {' / '.join(f'{m:.1f}' for m in means)} s; arriving "
                  f"{arriving:.2f}/s, completing {completing:.2f}/s", flush=True)


if __name__ == "__main__":
    main()
