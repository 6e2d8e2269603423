"""The time floor's estimates of FCFS's waits in a suite cell, against FCFS's own waits (issue 9, twenty-fourth pass).

    .venv/bin/python scripts/floor_estimates.py sharegpt 10 [--seed N] [--gpu h200] [--model qwen2.5-7b] [--set k=v,...]

Replays the cell under FCFS (its waits over the measured requests: p50, p99, longest) and under EWSJF, reading the
time floor from EWSJFQueue.stats() every 256 steps: the backlogs' lower bound (backlog_s), the admission-count wait
(count_wait_s) and the share of it counted (count_share), and the floor they make (tail_s), as medians and p90 over
the second half of the run; then EWSJF's long-class p99 TTFT and longest wait against FCFS's; then the queue's
fitted prefill cost C_prefill(p) at the run's end (the cost model behind the floor's rate and the scores' urgency)
against the simulator's own time to prefill p tokens alone, in chunks of the token budget (--prompts). Operating
points and request counts are the suite's (its cache, or found anew).
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np

from ewsjf.bench import engines
from ewsjf.bench.metrics import class_edges, isolated_latency
from ewsjf.bench.suite import add_cell_arguments, cell_from_args, measured_from
from ewsjf.bench.suite_policies import parse, run_policy
from ewsjf_core.config import EWSJFConfig
from ewsjf_core.sim import EngineConfig, RooflineStepTime, VirtualClock, simulate
from ewsjf_core.sim.config import DEFAULT_PREEMPTION_GUARD, DEFAULT_WAITING_HEAD_SHARE

FIELDS = ("backlog_s", "count_wait_s", "count_share", "tail_s")
EVERY = 256


def replay_sampling_floor(wl, step_model, engine: EngineConfig, cfg: EWSJFConfig):
    """EWSJF on the cell as the suite runs it, with stats()["time_floor"] read every EVERY steps."""
    engine = engines.policy_engine("ewsjf", engine, DEFAULT_WAITING_HEAD_SHARE, DEFAULT_PREEMPTION_GUARD)
    clock = VirtualClock()
    queue = engines.make_queue("ewsjf", clock, cfg, engine.with_kv_blocks(step_model))
    samples, steps = [], [0]
    begin = queue.begin_step

    def sampled_begin(now=None):
        begin(now)
        steps[0] += 1
        if steps[0] % EVERY == 0:   # stats() changes no admission order
            samples.append([queue.stats()["time_floor"][f] for f in FIELDS])

    queue.begin_step = sampled_begin
    res = simulate(wl, queue, step_model, engine, clock=clock)
    return res, np.array(samples), queue


def main() -> None:
    ap = argparse.ArgumentParser()
    add_cell_arguments(ap)
    ap.add_argument("--set", default="", help="EWSJFConfig fields, k=v,...")
    ap.add_argument("--prompts", default="1000,4096,8192,16000,32000,72000",
                    help="prompt lengths whose fitted prefill cost is printed against the simulator's")
    args = ap.parse_args()
    sw, w, wl = cell_from_args(args)
    step_model, engine = RooflineStepTime(sw.model, sw.gpu), EngineConfig()
    first = measured_from(w)
    longs = np.flatnonzero((wl.prompt_tokens > class_edges(w.prompt_tokens)[1]) & (np.arange(len(wl)) >= first))
    fcfs = run_policy(wl, "fcfs", step_model, engine)
    cfg = dataclasses.replace(EWSJFConfig(), **parse("ewsjf:" + args.set)[1])
    ewsjf, floor, queue = replay_sampling_floor(wl, step_model, engine, cfg)
    print(f"{args.workload} @ {args.load}, seed {args.seed}")
    for name, res in (("fcfs", fcfs), ("ewsjf", ewsjf)):
        wait, ttft = res.first_scheduled_s - wl.arrival_s, res.first_token_s - wl.arrival_s
        measured = wait[first:]
        print(f"  {name:6s} waits p50 {np.percentile(measured, 50):7.2f} s, p99 {np.percentile(measured, 99):7.2f} s, "
              f"longest {measured.max():7.2f} s; long class p99 TTFT {np.percentile(ttft[longs], 99):7.2f} s")
    half = floor[len(floor) // 2:]
    for j, name in enumerate(FIELDS):
        column = half[:, j]
        print(f"  floor {name:13s} median {np.median(column):8.2f}, p90 {np.percentile(column, 90):8.2f}")
    prompts = np.array([int(x) for x in args.prompts.split(",")])
    # one output token: the latency of the prefill alone, on an idle engine, in chunks of the token budget
    alone = isolated_latency(prompts, np.ones_like(prompts), step_model, engine.token_budget)
    for p, t in zip(prompts.tolist(), alone.tolist()):
        print(f"  prefill of {p:6d} tokens: fitted {queue.prefill_cost(p):7.2f} s, simulator alone {t:7.2f} s")


if __name__ == "__main__":
    main()
