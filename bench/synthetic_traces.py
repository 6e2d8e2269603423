"""Synthetic stand-ins for the two trace shapes issue 9 names and this repository does not hold.

Issue 9 reports EWSJF losing to HRRN on a long-prompt conversation trace (prompts p50 ~7k, p99 ~85k tokens,
outputs ~350) and breaking its starvation bound on a reasoning trace (short prompts, outputs mean ~2.6k, up to
32k: the engine is KV- and decode-bound). Neither trace is vendored, so these draw lengths with the stated
quantiles (log-normal, the usual fit for token counts) and arrivals at 1 req/s: a check of the suite's goals on
shapes the suite's own workloads do not cover, run as a user would run their trace:

    python -m ewsjf.bench.synthetic_traces --out traces/          # long_conv.csv, reasoning.csv and HELD_OUT
    ewsjf bench --suite --workload traces/reasoning.csv

They are not real traces: a pass here says the design holds on the shape, not on the trace.

HELD_OUT holds five more shapes, drawn the same way, that no parameter was ever measured on: a check against
fitting the defaults to the suite (bench/SUITE.md, "Held-out shapes"). Each stands for a common serving mix:
summarization (long prompts, short outputs), bursty chat (short prompts, Gamma CV 3), retrieval-augmented prompts
(a narrow 2-6k band), code generation (wide prompts, long outputs) and an agent-like bimodal mix (15% of the
prompts 12-40k tokens among short ones).
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
    heavy: Shape | None = None
    """A second shape the lengths of a heavy_share of the requests are drawn from (a bimodal mix)."""
    heavy_share: float = 0.0


SHAPES = {
    "long_conv": Shape("long_conv", prompt_p50=7000, prompt_p99=85000, output_mean=350, output_sigma=0.9,
                       output_max=4096, prompt_max=131072, cv=2.0),
    "reasoning": Shape("reasoning", prompt_p50=200, prompt_p99=2500, output_mean=2600, output_sigma=1.0,
                       output_max=32768, prompt_max=131072, cv=1.0),
}

HELD_OUT = {
    "summarize": Shape("summarize", prompt_p50=3000, prompt_p99=24000, output_mean=180, output_sigma=0.7,
                       output_max=2048, prompt_max=131072, cv=1.0),
    "chat_bursty": Shape("chat_bursty", prompt_p50=120, prompt_p99=2000, output_mean=280, output_sigma=0.9,
                         output_max=4096, prompt_max=131072, cv=3.0),
    "rag": Shape("rag", prompt_p50=1800, prompt_p99=6000, output_mean=120, output_sigma=0.6, output_max=2048,
                 prompt_max=131072, cv=1.5),
    "codegen": Shape("codegen", prompt_p50=1500, prompt_p99=12000, output_mean=600, output_sigma=1.2,
                     output_max=8192, prompt_max=131072, cv=1.0),
    "bimodal": Shape("bimodal", prompt_p50=100, prompt_p99=800, output_mean=200, output_sigma=0.8, output_max=4096,
                     prompt_max=131072, cv=2.0, heavy_share=0.15,
                     heavy=Shape("bimodal_heavy", prompt_p50=12000, prompt_p99=40000, output_mean=300,
                                 output_sigma=0.8, output_max=4096, prompt_max=131072, cv=1.0)),
}
ALL_SHAPES = {**SHAPES, **HELD_OUT}
DEFAULT_REQUESTS = 4000
"""Requests per file unless --requests says otherwise."""


def draw(shape: Shape, n: int, seed: int = 0) -> Workload:
    """n requests of `shape` at 1 req/s (gaps of CV shape.cv); lengths from _lengths, a heavy_share of them
    (drawn independently) from shape.heavy's."""
    prompt, output = _lengths(shape, n, np.random.default_rng(seed))
    if shape.heavy is not None:
        rng = np.random.default_rng([seed, 1])
        heavy_prompt, heavy_output = _lengths(shape.heavy, n, rng)
        pick = rng.random(n) < shape.heavy_share
        prompt, output = np.where(pick, heavy_prompt, prompt), np.where(pick, heavy_output, output)
    return Workload(arrivals(n, 1.0, shape.cv, seed), prompt, output, name=shape.name)


def _lengths(shape: Shape, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Log-normal prompts through (p50, p99), log-normal outputs with the given mean and log-sigma, both
    clipped to [1, max]."""
    prompt_sigma = math.log(shape.prompt_p99 / shape.prompt_p50) / _Z99
    prompt = rng.lognormal(math.log(shape.prompt_p50), prompt_sigma, n)
    # A log-normal's mean is exp(mu + sigma^2 / 2): mu from the wanted mean.
    out_mu = math.log(shape.output_mean) - shape.output_sigma ** 2 / 2
    output = rng.lognormal(out_mu, shape.output_sigma, n)
    p = np.clip(np.rint(prompt), 1, shape.prompt_max).astype(np.int64)
    o = np.clip(np.rint(output), 1, shape.output_max).astype(np.int64)
    return p, o


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ewsjf.bench.synthetic_traces", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="folder for the CSV files (arrival_s,prompt_tokens,output_tokens)")
    ap.add_argument("--requests", type=T.int_in(1, MAX_REQUESTS), default=DEFAULT_REQUESTS)
    ap.add_argument("--seed", type=T.int_in(0, 2 ** 63 - 1), default=0)
    ap.add_argument("--shapes", default=",".join(ALL_SHAPES), help=f"comma list of {', '.join(ALL_SHAPES)} "
                    "(default: all; the last five are held out, bench/SUITE.md)")
    args = ap.parse_args(argv)
    names = [s.strip() for s in args.shapes.split(",") if s.strip()]
    unknown = [s for s in names if s not in ALL_SHAPES]
    if unknown or not names:
        ap.error(f"--shapes: {'unknown ' + ', '.join(unknown) if unknown else 'none named'} "
                 f"(use {', '.join(ALL_SHAPES)})")
    for path in write_draws(names, args.out, args.requests, args.seed):
        print(path)
    return 0


def write_draws(names: list[str], out: str, requests: int = DEFAULT_REQUESTS, seed: int = 0) -> list[str]:
    """Draw `seed` of each named shape as out/<name>.csv; each file written whole (a temporary file, then renamed),
    so a reader never sees half of one. Returns the paths."""
    os.makedirs(out, exist_ok=True)
    paths = []
    for name in names:
        path = os.path.join(out, f"{name}.csv")
        tmp = f"{path}.{os.getpid()}.tmp"
        save_csv(draw(ALL_SHAPES[name], requests, seed), tmp)
        os.replace(tmp, path)
        paths.append(path)
    return paths


if __name__ == "__main__":
    raise SystemExit(main())
