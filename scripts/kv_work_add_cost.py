"""What counting a request's work in KV memory-time costs an add (issue 9's default since its ninth pass, issue 11).

    .venv/bin/python scripts/kv_work_add_cost.py [--runs 7] [--pushes 5000]

EWSJFQueue.push per request, warm, with the default config (kv_work_weight=1, own_size_slack=1, since the
suite's ninth pass) and with prefill alone (both 0, the earlier defaults), alternating in one process, median of
the runs. Before timing, each queue is fed what makes the KV work take its full path: completions
(observe_finished) and steps held below the token budget while a request waited (observe_step), so phi and the
outputs' share are above 0 (ewsjf_core.kv_work).
"""

from __future__ import annotations

import argparse
import statistics
import time

from ewsjf.bindings import EWSJFQueue
from ewsjf_core.config import EWSJFConfig

CONFIGS = {
    "kv_work_weight=0,own_size_slack=0": EWSJFConfig(kv_work_weight=0.0, own_size_slack=0.0),
    "default": EWSJFConfig(),
}


def _pressured(config: EWSJFConfig) -> EWSJFQueue:
    q = EWSJFQueue(config, clock=lambda: 0.0)
    for i in range(64):
        q.observe_finished(100 + 50 * i, 300)
    waiter = q.push("waiter", 10, arrival_time=0.0)
    q.observe_step(0.05, 8000, 100)       # a full step: the token budget as seen
    for _ in range(200):
        q.observe_step(0.02, 0, 100)      # held below the budget while a request waits
    q.remove_handles([waiter])
    return q


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--pushes", type=int, default=5000)
    args = ap.parse_args()
    per_push: dict[str, list[float]] = {name: [] for name in CONFIGS}
    for _ in range(args.runs):
        for name, config in CONFIGS.items():
            q = _pressured(config)
            t0 = time.perf_counter()
            for i in range(args.pushes):
                q.push(i, 50 + (37 * i) % 4000, 1e-3 * i)
            per_push[name].append((time.perf_counter() - t0) / args.pushes * 1e6)
    for name, xs in per_push.items():
        print(f"{name}: push {statistics.median(xs):.2f} us per request (runs: {', '.join(f'{x:.2f}' for x in xs)})")


if __name__ == "__main__":
    main()
