"""How wide EWSJF's queues are on each workload (issue 9, nineteenth pass): a diagnostic.

    .venv/bin/python scripts/queue_spread.py [WORKLOAD_OR_TRACE ...] [--set min_rel_range=0.1,max_queues=8]

Runs Refine-and-Prune (ewsjf_core.partition) on the prompt lengths of each suite workload as the suite builds it (seed
0), or of a trace file, under the default EWSJFConfig (or the default with --set's fields), and prints the queues (token
range: requests) and their cost spread: C(hi) / C(lo) on the partition's scale, log(b + c0 / c1) with the cost
model's prior c0 / c1. "request-weighted" averages the spread of the queue each request sits in: how much larger the
requests ahead of one in its FIFO queue can be. The queue's own partitions use the fitted cost model, so the bench's
edges differ slightly from these.
"""

from __future__ import annotations

import argparse

import numpy as np

from ewsjf.bench.suite import suite_build
from ewsjf.bench.suite_policies import parse
from ewsjf.bench.suite_trace import from_trace
from ewsjf.bench.suite_workloads import SUITE
from ewsjf_core.config import EWSJFConfig
from ewsjf_core.partition import refine_and_prune


def spreads(prompt_tokens: np.ndarray, config: EWSJFConfig) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Each queue's range as text, its cost spread and its member count, for these prompt lengths."""
    offset = config.prior_c0 / config.prior_c1
    lo, hi, _, _, count = refine_and_prune(prompt_tokens.astype(np.float64), offset, config.k0, config.alpha,
                                           config.min_size, config.min_rel_range, config.max_queues)[:5]
    spread = (hi + offset) / (lo + offset)
    return [f"{int(a)}-{int(b)}" for a, b in zip(lo, hi)], spread, count


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("workloads", nargs="*", help="suite workload names or trace files (default: the suite's)")
    ap.add_argument("--set", default="", help="EWSJFConfig fields, k=v,... (as scripts/suite_cells.py takes them)")
    args = ap.parse_args()
    config = EWSJFConfig(**parse(f"ewsjf:{args.set}")[1])
    for name in args.workloads or [w.name for w in SUITE]:
        ranges, spread, count = spreads(suite_build(from_trace(name), seed=0).prompt_tokens, config)
        weighted = float((spread * count).sum() / count.sum())
        print(f"{name}: {len(ranges)} queues, widest {spread.max():.2f}x, request-weighted {weighted:.2f}x")
        print("   " + " ".join(f"[{r}]:{int(n)}" for r, n in zip(ranges, count)))


if __name__ == "__main__":
    main()
