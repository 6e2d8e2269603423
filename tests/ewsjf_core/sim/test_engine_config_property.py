"""Any EngineConfig the constructor accepts replays a mixed workload to the end; every value it refuses is a
ValueError naming the field.

test_engine.py's invariants draw a few engine settings from small menus; here every field is drawn over its
whole domain (bounds included: two KV blocks, a context length beyond int64, every block size), under fcfs
and ewsjf, on a workload with long prompts and shared prefixes.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ewsjf.bindings import EWSJFQueue
from ewsjf.bindings.baselines import FCFSQueue
from ewsjf_core.sim import (GPU_PRESETS, MODEL_PRESETS, EngineConfig, RooflineStepTime, VirtualClock, Workload,
                            rejection_reasons, simulate)
from ewsjf_core.sim.workload import PREFIX_BLOCK_TOKENS

MAX_STEPS = 200_000
"""Far more than any drawn replay needs (the slowest, one token per step, takes ~40,000): reaching it is a hang."""

BLOCK_SIZES = [b for b in range(1, PREFIX_BLOCK_TOKENS + 1) if PREFIX_BLOCK_TOKENS % b == 0]


class LinearStep:
    """A step-time model without a GPU (so kv_blocks None means an unlimited cache)."""

    def step_time(self, prefill_tokens, attn2, decode_tokens, kv_read, prefill_seqs=0):
        return 0.01 + 1e-4 * (prefill_tokens + decode_tokens)


ROOFLINE = RooflineStepTime("llama-3-8b", "a100-80gb")


def mixed_workload(seed: int, n: int = 30) -> Workload:
    """Short and long prompts (up to 12k tokens), outputs of 1 to 200, prompts sharing their first prefix ids."""
    rng = np.random.default_rng(seed)
    prompts = rng.choice([1, 5, 40, 700, 3000, 12000], n)
    prefix = [rng.integers(0, 3, size=int(p) // PREFIX_BLOCK_TOKENS + 1) for p in prompts]
    return Workload(np.sort(rng.uniform(0, 3, n)), prompts, rng.choice([1, 2, 30, 200], n), prefix_blocks=prefix)


def _edges(lo: int, hi: int):
    return st.one_of(st.just(lo), st.just(hi), st.integers(lo, hi))


def _fraction(hi: float):
    return st.one_of(st.just(0.0), st.just(hi), st.floats(0.0, hi))


@st.composite
def engine_configs(draw) -> EngineConfig:
    budget = draw(_edges(1, 20_000))
    return EngineConfig(
        token_budget=budget, max_running=draw(_edges(1, min(300, budget))),
        kv_blocks=draw(st.one_of(st.none(), _edges(2, 3000), st.just(2 ** 70))),
        block_size=draw(st.sampled_from(BLOCK_SIZES)), chunked_prefill=draw(st.booleans()),
        prefix_caching=draw(st.booleans()), reserve_full_sequence=draw(st.booleans()),
        long_prefill_token_threshold=draw(st.one_of(st.just(0), _edges(1, 20_000), st.just(2 ** 70))),
        waiting_head_share=draw(_fraction(1.0)), kv_watermark=draw(_fraction(math.nextafter(1.0, 0.0))),
        max_model_len=draw(st.one_of(st.none(), _edges(2, 20_000), st.just(2 ** 63), st.just(2 ** 70))),
        # Llama-3-8B on an A100-80GB leaves KV memory from 0.25 up (below: test_kv_sizing_names_the_field).
        gpu_memory_utilization=draw(st.one_of(st.just(1.0), st.floats(0.3, 1.0))))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=engine_configs(), seed=st.integers(0, 1000), policy=st.sampled_from([FCFSQueue, EWSJFQueue]),
       roofline=st.booleans())
def test_any_accepted_config_replays_every_request(cfg, seed, policy, roofline):
    w = mixed_workload(seed)
    clock = VirtualClock()
    queue = policy(clock=clock)
    step_time = ROOFLINE if roofline else LinearStep()
    res = simulate(w, queue, step_time, cfg, clock=clock, max_steps=MAX_STEPS)
    assert res.steps < MAX_STEPS
    assert np.all(res.completed ^ res.rejected)   # each request finished or was rejected, once
    reasons = rejection_reasons(w, cfg, cfg.with_kv_blocks(step_time).kv_blocks)
    assert [bool(r) for r in reasons] == res.rejected.tolist()   # rejected for a reason said up front
    assert len(queue) == 0
    assert res.info["blocks_in_use_at_end"] == 0
    assert res.step_log["emitted"].sum() == generated_tokens(w, cfg)[res.completed].sum()


def generated_tokens(w: Workload, cfg: EngineConfig) -> np.ndarray:
    """Output tokens each request generates: its own, stopped at the context length."""
    if cfg.max_model_len is None:
        return w.output_tokens
    return np.maximum(np.minimum(w.output_tokens, cfg.max_model_len - w.prompt_tokens.astype(object)), 1)


def test_an_engine_with_only_the_null_block_is_refused_and_one_more_block_serves():
    """kv_blocks=1 was accepted: the one block is vLLM's null block, so the engine rejected every request. It is
    refused now, naming the field; with two blocks a request that fits one block is served."""
    with pytest.raises(ValueError, match="kv_blocks must be an integer >= 2"):
        EngineConfig(kv_blocks=1)
    w = Workload(np.array([0.0, 0.1]), np.array([10, 100]), np.array([2, 2]))
    res = simulate(w, FCFSQueue(clock=VirtualClock()), LinearStep(), EngineConfig(kv_blocks=2, block_size=16))
    assert res.completed.tolist() == [True, False] and res.rejected.tolist() == [False, True]


@settings(max_examples=60, deadline=None)
@given(model=st.sampled_from(sorted(MODEL_PRESETS)), gpu=st.sampled_from(sorted(GPU_PRESETS)),
       block_size=st.sampled_from(BLOCK_SIZES),
       utilization=st.one_of(st.just(1.0), st.just(math.ulp(0.0)), st.floats(1e-6, 1.0)))
def test_kv_sizing_gives_blocks_or_names_the_utilization_that_fits(model, gpu, block_size, utilization):
    """KV blocks sized from a model and GPU preset: at least one, or a ValueError that names
    gpu_memory_utilization and the least one that leaves a block (when any does), which then sizes."""
    step_time = RooflineStepTime(model, gpu)
    cfg = EngineConfig(block_size=block_size, gpu_memory_utilization=utilization)
    try:
        blocks = cfg.with_kv_blocks(step_time).kv_blocks
    except ValueError as e:
        said = str(e)
        assert f"gpu_memory_utilization {utilization:g}" in said
        least = re.search(r"needs gpu_memory_utilization >= ([0-9.]+)", said)
        if least is None:
            assert "not even at gpu_memory_utilization 1" in said
            with pytest.raises(ValueError):
                EngineConfig(block_size=block_size, gpu_memory_utilization=1.0).with_kv_blocks(step_time)
            return
        utilization = float(least.group(1))
        blocks = EngineConfig(block_size=block_size, gpu_memory_utilization=utilization).with_kv_blocks(step_time)
        blocks = blocks.kv_blocks
    assert isinstance(blocks, int) and blocks >= 1


_NOT_A_NUMBER = [None, "0.5", [0.5], True]
REFUSED = {
    "token_budget": [0, -1, 1.5, "8", None, True, float("nan")],
    "max_running": [0, -1, 2.0, "4", True],
    "kv_blocks": [0, 1, -3, 10.0, "100", False],
    "block_size": [0, 3, 1024, 16.0, "16", True],
    "max_model_len": [0, 1, 2.5, "8192", True],
    "long_prefill_token_threshold": [-1, 1.5, "0", None, True],
    "waiting_head_share": [-0.1, 1.1, float("nan"), float("inf"), *_NOT_A_NUMBER],
    "kv_watermark": [-0.1, 1.0, float("nan"), *_NOT_A_NUMBER],
    "gpu_memory_utilization": [0, -0.5, 1.01, float("nan"), *_NOT_A_NUMBER],
    "chunked_prefill": ["false", 0, 1, None, "no"],
    "prefix_caching": ["false", 0, None],
    "reserve_full_sequence": ["true", 1, None],
}


@pytest.mark.parametrize("field,value", [(f, v) for f, vs in REFUSED.items() for v in vs])
def test_refused_values_are_value_errors_naming_the_field(field, value):
    with pytest.raises(ValueError, match=f"EngineConfig.{field}"):
        EngineConfig(**{field: value})


@pytest.mark.parametrize("option, value", [("progress_every", 0), ("progress_every", -5), ("progress_every", None),
                                           ("max_steps", 0), ("max_steps", -1), ("max_steps", 1.5)])
def test_simulate_refuses_bad_loop_bounds_by_name(option, value):
    """progress_every=0 divided by zero at the first step; max_steps=0 still ran a step, max_steps=-1 too."""
    with pytest.raises(ValueError, match=option):
        simulate(mixed_workload(0, n=3), FCFSQueue(clock=VirtualClock()), LinearStep(), progress=lambda *_: None,
                 **{option: value})
