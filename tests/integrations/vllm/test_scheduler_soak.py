"""Messy traffic through vLLM's real scheduler with EWSJF, checked after every step (virtual harness).

Arrivals of mixed prompt lengths (1 to 700 tokens, some sharing a prefix, prefix caching on), outputs of 1 to
20 tokens, aborts of waiting and running requests, forced preemptions, a stream of distinct priorities under
vLLM's priority policy, KV caches small enough for preemption storms, sync and async scheduling. After every
step: each request added is in exactly one place (waiting, vLLM's held queue, running, finished or aborted),
the adapter's len, bool, iteration and membership agree with one another and with EWSJF's stats(), and the
priority classes EWSJF keeps are those of requests still around. At the end every finished request got all
its tokens.

CI runs STEPS steps per case; a long soak:
    EWSJF_VLLM_SOAK_STEPS=20000 .venv/bin/python -m pytest -q tests/integrations/vllm/test_scheduler_soak.py
"""

from __future__ import annotations

import os
import random

import pytest

from ewsjf.bench.virtual_vllm import VirtualVLLM

STEPS = int(os.environ.get("EWSJF_VLLM_SOAK_STEPS", "300"))
MAX_NUM_SEQS = 8

CASES = {   # name: (async scheduling, vLLM policy, KV blocks of 16 tokens)
    "sync-priority-tiny-kv": (False, "priority", 24),
    "async-priority": (True, "priority", 64),
    "sync-fcfs": (False, "fcfs", 64),
    "async-fcfs-tiny-kv": (True, "fcfs", 24),
}


def _engine(asy: bool, policy: str, num_blocks: int) -> VirtualVLLM:
    config = {"repartition_every": 40, "min_partition_samples": 16, "max_wait": 3.0}
    return VirtualVLLM("ewsjf", policy=policy, num_blocks=num_blocks, max_num_seqs=MAX_NUM_SEQS,
                       max_num_batched_tokens=512, max_model_len=2048, async_scheduling=asy,
                       scheduler_kwargs={"ewsjf_config": config,
                                         "ewsjf_options": {"log_interval_s": 0.0, "metrics_interval_s": 0.0}})


def _arrive(v: VirtualVLLM, rng: random.Random, expected: dict[str, int], max_prompt: int, policy: str) -> None:
    for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
        rid = f"r{len(expected)}"
        prompt = min(rng.choice([1, 2, 5, 17, 40, 100, 300, 700]), max_prompt)
        out = rng.choice([1, 1, 2, 5, 20])
        priority = v.steps // 5 + rng.randrange(3) if policy == "priority" else 0   # the palette moves on
        v.add_request(rid, prompt_tokens=prompt, output_tokens=out, priority=priority,
                      prefix_group=rng.choice([None, None, 1, 2]), prefix_tokens=64)
        expected[rid] = out


def _disturb(v: VirtualVLLM, rng: random.Random) -> None:
    sched = v.scheduler
    if rng.random() < 0.1 and sched.requests:   # client aborts: waiting and running alike
        v.abort(rng.sample(sorted(sched.requests), min(len(sched.requests), rng.choice([1, 1, 2]))))
    if rng.random() < 0.1 and sched.running:
        v.preempt(rng.choice(sched.running).request_id if rng.random() < 0.5 else None)


def _check(v: VirtualVLLM, expected: dict[str, int]) -> None:
    sched = v.scheduler
    waiting = sched.waiting
    order = list(waiting)
    waiting_ids = [r.request_id for r in order]
    assert len(waiting_ids) == len(set(waiting_ids)) == len(waiting) and bool(waiting) == bool(order)
    assert all(r in waiting and waiting.has_request(r.request_id) for r in order)
    places = [set(v.waiting_ids()), set(v.running_ids()), set(v.finish_time) - v.aborted, v.aborted]
    for rid in expected:
        assert sum(rid in place for place in places) == 1, rid
    assert len(sched.requests) == len(places[0]) + len(places[1])   # vLLM holds exactly the unfinished
    stats = sched.ewsjf_queue.stats()
    assert stats["waiting"] == len(waiting) == len(sched.ewsjf_queue)
    assert sum(q["depth"] for q in stats["queues"]) + stats["resume_lane_depth"] == len(waiting)
    # Classes of requests gone are retired (those popped in the last admission round go at the next one).
    assert len(stats["priority_classes"]) <= len(waiting) + 2 * MAX_NUM_SEQS + 1


@pytest.mark.parametrize("case", sorted(CASES))
def test_messy_traffic_loses_nothing_and_the_queue_agrees_with_vllm(case):
    asy, policy, num_blocks = CASES[case]
    rng = random.Random(case)
    v = _engine(asy, policy, num_blocks)
    expected: dict[str, int] = {}
    max_prompt = num_blocks * 16 - 48   # every request fits the KV cache alone (else it would wait forever)
    for _ in range(STEPS):
        _arrive(v, rng, expected, max_prompt, policy)
        _disturb(v, rng)
        if v.has_unfinished():
            v.step()
        else:
            v.advance_to(v.now + 0.01)
        _check(v, expected)
    for _ in range(20 * STEPS):
        if not v.has_unfinished():
            break
        v.step()
        _check(v, expected)
    assert not v.has_unfinished() and not v.scheduler.waiting
    assert v.aborted and v.preemptions and len(expected) > STEPS // 2
    assert all(v.output_tokens[rid] == expected[rid] for rid in set(v.finish_time) - v.aborted)
    assert len(v.admission_order) == len(set(v.admission_order))
