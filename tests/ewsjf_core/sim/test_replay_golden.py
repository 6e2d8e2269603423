"""The sim's per-request results are pinned: speed work on the engine must not change any of them.

Small replays (the vendored Azure and Mooncake traces, a roomy and a tight KV cache so that preemption,
recompute and the prefix cache all run) under four policies; every per-request array and the step count
must equal the recorded ones exactly (SHA-256 of the float64 array; the step count and busy time as
numbers, the preemption and prefix-hit totals to show what the cases exercise). A deliberate change of the engine's behaviour regenerates the record:

    .venv/bin/python -m tests.ewsjf_core.sim.test_replay_golden --write
"""

from __future__ import annotations

import hashlib
import json
import os
import sys

import numpy as np
import pytest

from ewsjf.bench.workloads import load_workload
from ewsjf.bindings import EWSJFQueue
from ewsjf.bindings.baselines import POLICIES
from ewsjf_core.sim import EngineConfig, RooflineStepTime, VirtualClock, simulate

GOLDEN = os.path.join(os.path.dirname(__file__), "data", "replay_golden.json")
CASES = {
    "azure-roomy": ("azure", (0.0, 120.0), EngineConfig()),
    "azure-tight": ("azure", (0.0, 120.0), EngineConfig(kv_blocks=3000, max_running=64)),
    "mooncake-tight": ("mooncake", None, EngineConfig(kv_blocks=4000)),
}
POLICY_NAMES = ("fcfs", "sjf", "hrrn", "ewsjf")
ARRAYS = ("first_token_s", "finish_s", "first_scheduled_s", "preemptions", "cached_tokens", "rejected")


def replay(case: str, policy: str):
    name, window, engine = CASES[case]
    if name == "mooncake":
        from ewsjf.bench.traces import load_mooncake
        from ewsjf.bench.workloads import DATA_DIR
        w = load_mooncake(os.path.join(DATA_DIR, "mooncake_synthetic", "synthetic_trace_1500.jsonl")).head(400)
    else:
        w = load_workload(name).slice(*window)
    clock = VirtualClock()
    queue = EWSJFQueue(clock=clock) if policy == "ewsjf" else POLICIES[policy](clock=clock)
    return simulate(w, queue, RooflineStepTime("llama-3-8b", "a100-80gb"), engine, clock=clock)


def digest(a) -> str:
    return hashlib.sha256(np.ascontiguousarray(np.asarray(a, dtype="<f8")).tobytes()).hexdigest()


def record(case: str, policy: str) -> dict:
    res = replay(case, policy)
    out = {k: digest(getattr(res, k)) for k in ARRAYS}
    out.update(steps=int(res.steps), busy_s=float(res.busy_s), requests=len(res.finish_s),
               preemptions_total=int(np.sum(res.preemptions)), cached_tokens_total=int(np.sum(res.cached_tokens)))
    return out


@pytest.fixture(scope="module")
def golden() -> dict:
    with open(GOLDEN) as f:
        return json.load(f)


@pytest.mark.parametrize("policy", POLICY_NAMES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_replay_is_bit_identical_to_the_record(golden, case, policy):
    want = golden[f"{case}/{policy}"]
    got = record(case, policy)
    assert got == want


def test_the_record_exercises_preemption_and_the_prefix_cache(golden):
    assert golden["azure-tight/fcfs"]["preemptions_total"] > 0
    assert golden["mooncake-tight/fcfs"]["cached_tokens_total"] > 0


if __name__ == "__main__" and "--write" in sys.argv:
    data = {f"{c}/{p}": record(c, p) for c in sorted(CASES) for p in POLICY_NAMES}
    with open(GOLDEN, "w") as f:
        json.dump(data, f, indent=1)
    print(f"wrote {GOLDEN}")
