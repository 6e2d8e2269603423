"""The scheduler's share of a trace replay: the `sim` replay's CPU time under FCFS and under EWSJF, same run.

    .venv/bin/python -m ewsjf.bench.replay_overhead [--window 0:900] [--runs 3] [--workload azure]
    .venv/bin/python -m ewsjf.bench.replay_overhead \
        --workload bench/data/mooncake_synthetic/synthetic_trace_1500.jsonl \
        --window 0:100000 --max-model-len 65536     # prompts ~12k tokens with prefix ids (the prefix cache's cost)

The workload and engine are `ewsjf bench`'s defaults (Llama-3-8B on an A100-80GB preset, the `sim`
engine). Both policies are warmed first (kernels compiled or loaded from the cache, then an untimed
replay of the workload's head), then replayed alternately `--runs` times. Each replay is timed in process
CPU seconds (time.process_time) and in wall seconds: on a shared machine the wall also counts the time
spent waiting for a core, the CPU time does not. Reported: every run, the medians, and EWSJF / FCFS
(target <= 2.5x) both as the ratio of the medians and as the median of each run's ratio (a run's two replays
back to back: on a VM whose speed drifts within minutes it follows the drift less). Figures only; nothing
asserts a speed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from ewsjf_core.sim import EngineConfig
from ewsjf_core.sim.context_length import context_length

from . import arg_types as T
from . import engines, inputs
from .workloads import load_workload, prepare

POLICIES = ("fcfs", "ewsjf")


def measure(workload: str, window: tuple[float, float], runs: int, model: str = "llama-3-8b",
            gpu: str = "a100-80gb", max_model_len: int | None = None) -> dict[str, dict[str, list[float]]]:
    """CPU and wall seconds of each replay, per policy (warm-up not included); max_model_len None: the
    model's context length."""
    w = prepare(load_workload(workload, "auto"), window=window, max_requests=None)
    step_model = inputs.step_model(model, gpu)
    engine = EngineConfig(max_model_len=max_model_len or context_length(model))
    out: dict[str, dict[str, list[float]]] = {p: {"cpu_s": [], "wall_s": []} for p in POLICIES}
    for policy in POLICIES:
        engines.warm_up(policy, w, step_model, engine)
    for _ in range(runs):
        for policy in POLICIES:
            cpu0, wall0 = time.process_time(), time.perf_counter()
            engines.run_sim(w, policy, step_model, engine)
            out[policy]["cpu_s"].append(time.process_time() - cpu0)
            out[policy]["wall_s"].append(time.perf_counter() - wall0)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workload", default="azure", help="built-in workload or trace file (default azure)")
    ap.add_argument("--window", type=T.window, default=(0.0, 900.0), metavar="START:END",
                    help="requests arriving in [START, END) seconds (default 0:900)")
    ap.add_argument("--runs", type=T.int_in(1, 100), default=3, help="replays per policy (median taken)")
    ap.add_argument("--max-model-len", type=T.int_in(2), default=None,
                    help="context length: longer prompts are rejected (default: the model's)")
    args = ap.parse_args(argv)
    res = measure(args.workload, args.window, args.runs, max_model_len=args.max_model_len)
    for policy, r in res.items():
        print(f"{policy:6s} cpu s {', '.join(f'{x:.3f}' for x in r['cpu_s'])}   "
              f"wall s {', '.join(f'{x:.3f}' for x in r['wall_s'])}")
    med = {p: {k: statistics.median(v) for k, v in r.items()} for p, r in res.items()}
    print(f"median: fcfs {med['fcfs']['cpu_s']:.3f} s cpu ({med['fcfs']['wall_s']:.3f} s wall), ewsjf "
          f"{med['ewsjf']['cpu_s']:.3f} s cpu ({med['ewsjf']['wall_s']:.3f} s wall); EWSJF / FCFS = "
          f"{med['ewsjf']['cpu_s'] / med['fcfs']['cpu_s']:.2f}x cpu, "
          f"{med['ewsjf']['wall_s'] / med['fcfs']['wall_s']:.2f}x wall")
    paired = statistics.median(e / f for e, f in zip(res["ewsjf"]["cpu_s"], res["fcfs"]["cpu_s"]))
    print(f"median of each run's EWSJF / FCFS: {paired:.2f}x cpu")
    return 0


if __name__ == "__main__":
    sys.exit(main())
