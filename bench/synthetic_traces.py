"""Synthetic stand-ins for the two trace shapes issue 9 names and this repository does not hold.

Issue 9 reports EWSJF losing to HRRN on a long-prompt conversation trace (prompts p50 ~7k, p99 ~85k tokens,
outputs ~350) and breaking its starvation bound on a reasoning trace (short prompts, outputs mean ~2.6k, up to
32k: the engine is KV- and decode-bound). Neither trace is vendored, so these draw lengths with the stated
quantiles (log-normal, the usual fit for token counts) and arrivals at 1 req/s: a check of the suite's goals on
shapes the suite's own workloads do not cover, run as a user would run their trace:

    python -m ewsjf.bench.synthetic_traces --out traces/          # writes long_conv.csv and reasoning.csv
    ewsjf bench --suite --workload traces/reasoning.csv

They are not real traces: a pass here says the design holds on the shape, not on the trace.
"""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import dataclass

import numpy as np

from ewsjf_core.sim import Workload

from . import arg_types as T
from .trace_input import MAX_REQUESTS
from .traces import arrivals, save_csv

_Z99 = 2.3263478740408408   # the standard normal's 0.99-quantile


@dataclass(frozen=True)
class Shape:
    name: str
    prompt_p50: float
    prompt_p99: float
    output_mean: float
    output_sigma: float
    output_max: int
    prompt_max: int
    cv: float
    """Coefficient of variation of inter-arrival gaps (1 Poisson, > 1 bursty Gamma)."""


SHAPES = {
    "long_conv": Shape("long_conv", prompt_p50=7000, prompt_p99=85000, output_mean=350, output_sigma=0.9,
                       output_max=4096, prompt_max=131072, cv=2.0),
    "reasoning": Shape("reasoning", prompt_p50=200, prompt_p99=2500, output_mean=2600, output_sigma=1.0,
                       output_max=32768, prompt_max=131072, cv=1.0),
}


def draw(shape: Shape, n: int, seed: int = 0) -> Workload:
    """n requests of `shape` at 1 req/s: log-normal prompts through (p50, p99), log-normal outputs with the
    given mean and log-sigma, both clipped to [1, max]."""
    rng = np.random.default_rng(seed)
    prompt_sigma = math.log(shape.prompt_p99 / shape.prompt_p50) / _Z99
    prompt = rng.lognormal(math.log(shape.prompt_p50), prompt_sigma, n)
    # A log-normal's mean is exp(mu + sigma^2 / 2): mu from the wanted mean.
    out_mu = math.log(shape.output_mean) - shape.output_sigma ** 2 / 2
    output = rng.lognormal(out_mu, shape.output_sigma, n)
    p = np.clip(np.rint(prompt), 1, shape.prompt_max).astype(np.int64)
    o = np.clip(np.rint(output), 1, shape.output_max).astype(np.int64)
    return Workload(arrivals(n, 1.0, shape.cv, seed), p, o, name=shape.name)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ewsjf.bench.synthetic_traces", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="folder for the CSV files (arrival_s,prompt_tokens,output_tokens)")
    ap.add_argument("--requests", type=T.int_in(1, MAX_REQUESTS), default=4000)
    ap.add_argument("--seed", type=T.int_in(0, 2 ** 63 - 1), default=0)
    ap.add_argument("--shapes", default=",".join(SHAPES), help=f"comma list of {', '.join(SHAPES)}")
    args = ap.parse_args(argv)
    names = [s.strip() for s in args.shapes.split(",") if s.strip()]
    unknown = [s for s in names if s not in SHAPES]
    if unknown or not names:
        ap.error(f"--shapes: {'unknown ' + ', '.join(unknown) if unknown else 'none named'} "
                 f"(use {', '.join(SHAPES)})")
    os.makedirs(args.out, exist_ok=True)
    for name in names:
        path = os.path.join(args.out, f"{name}.csv")
        save_csv(draw(SHAPES[name], args.requests, args.seed), path)
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
