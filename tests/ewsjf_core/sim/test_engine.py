"""The sim engine: exact timings on tiny cases, and invariants on random workloads."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ewsjf.bindings import EWSJFQueue
from ewsjf.bindings.baselines import FCFSQueue, HRRNQueue, OracleSJFQueue, SJFQueue
from ewsjf_core.sim import EngineConfig, RooflineStepTime, SimEngine, VirtualClock, Workload, simulate
from ewsjf_core.tuner.replay import CostModelStepTime


class LinearStep:
    """step = a + b * tokens (easy to compute by hand)."""

    def __init__(self, a=0.01, b=1e-4):
        self.a, self.b = a, b

    def step_time(self, prefill_tokens, attn2, decode_tokens, kv_read, prefill_seqs=0):
        return self.a + self.b * (prefill_tokens + decode_tokens)


def run(w, queue_cls=FCFSQueue, model=None, **cfg):
    clock = VirtualClock()
    q = queue_cls(clock=clock)
    res = simulate(w, q, model or LinearStep(), EngineConfig(**cfg), clock=clock,
                   oracle_output=queue_cls is OracleSJFQueue)
    return res, q


def wl(arr, p, o, prefix=None):
    return Workload(np.array(arr, float), np.array(p), np.array(o), prefix_blocks=prefix)


def test_single_request_exact_times():
    res, q = run(wl([1.0], [100], [5]))
    # step 1: prefill 100 tokens -> first token at 1 + 0.01 + 0.01 = 1.02; then 4 decode steps of 0.0101
    assert res.first_token_s[0] == pytest.approx(1.02)
    assert res.finish_s[0] == pytest.approx(1.02 + 4 * 0.0101)
    assert res.steps == 5
    assert res.first_scheduled_s[0] == 1.0
    assert len(q) == 0
    assert res.info["blocks_in_use_at_end"] == 0


def test_chunked_prefill_splits_long_prompt():
    res, _ = run(wl([0.0], [20000], [1]), token_budget=8192)
    assert res.steps == 3
    assert list(res.step_log["prefill_tokens"]) == [8192, 8192, 20000 - 2 * 8192]
    assert res.finish_s[0] == res.first_token_s[0]


def test_no_chunking_waits_for_budget_and_rejects_oversize():
    res, _ = run(wl([0.0, 0.0], [5000, 9000], [2, 2]), token_budget=8192, chunked_prefill=False)
    assert res.rejected.tolist() == [False, True]
    assert res.completed.tolist() == [True, False]


def test_decode_and_prefill_share_a_step():
    # r0 decodes while r1's prefill runs: the step carries both.
    res, _ = run(wl([0.0, 0.015], [10, 50], [10, 3]))
    log = res.step_log
    both = (log["prefill_tokens"] > 0) & (log["decode_tokens"] > 0)
    assert both.any()
    assert res.completed.all()


def test_fcfs_vs_sjf_order():
    w = wl([0.0, 0.0], [4000, 100], [2, 2])
    fc, _ = run(w, token_budget=4000, max_running=2)
    sj, _ = run(w, SJFQueue, token_budget=4000, max_running=2)
    assert fc.first_token_s[0] < fc.first_token_s[1]
    assert sj.first_token_s[1] < sj.first_token_s[0]


def test_kv_pressure_preempts_and_recomputes():
    w = wl([0.0] * 6, [200] * 6, [300] * 6)
    big, _ = run(w, kv_blocks=10_000)
    small, _ = run(w, kv_blocks=80, block_size=16)   # 1280 tokens: not all 6 * 500 fit
    assert big.preemptions.sum() == 0
    assert small.preemptions.sum() > 0
    assert small.completed.all()
    assert small.info["peak_blocks_used"] <= 80
    assert small.info["blocks_in_use_at_end"] == 0
    assert small.sim_end_s > big.sim_end_s


def test_max_running_and_budget_respected():
    rng = np.random.default_rng(0)
    n = 300
    w = wl(np.sort(rng.uniform(0, 5, n)), rng.integers(1, 3000, n), rng.integers(1, 200, n))
    res, _ = run(w, token_budget=1024, max_running=16, kv_blocks=2000)
    log = res.step_log
    assert log["running"].max() <= 16
    assert (log["prefill_tokens"] + log["decode_tokens"]).max() <= 1024
    assert res.completed.all()


def test_queue_sees_virtual_clock_and_feedback():
    calls = []

    class Spy(FCFSQueue):
        def begin_step(self, now=None):
            calls.append(("begin", now, self.clock()))

        def observe_step(self, d, p, dec, at_cap=False):
            super().observe_step(d, p, dec, at_cap)
            calls.append(("obs", d, p, dec))

    res, q = run(wl([0.5, 0.7], [10, 10], [3, 3]), Spy)
    begins = [c for c in calls if c[0] == "begin"]
    assert all(c[1] == c[2] for c in begins)
    assert [c[1] for c in begins] == sorted(c[1] for c in begins)
    assert begins[0][1] == 0.5
    assert sum(c[1] for c in calls if c[0] == "obs") == pytest.approx(res.busy_s)
    assert res.scheduler_cpu_s > 0


def test_host_callbacks_called():
    seen = []

    class CB(FCFSQueue):
        def on_first_token(self, rid, t):
            seen.append(("first", rid, t))

        def on_finish(self, rid, out, t):
            seen.append(("fin", rid, out, t))

    res, _ = run(wl([0.0, 0.0], [10, 20], [1, 4]), CB)
    assert ("fin", 1, 4, res.finish_s[1]) in seen
    assert sum(1 for s in seen if s[0] == "first") == 2


def test_completions_fed_to_the_queue():
    """Every finished request reaches observe_finished with its prompt and output lengths, once."""
    seen = []

    class Done(FCFSQueue):
        def observe_finished(self, prompt_tokens, output_tokens):
            super().observe_finished(prompt_tokens, output_tokens)
            seen.append((prompt_tokens, output_tokens))

    run(wl([0.0, 0.0, 0.5], [10, 20, 30], [1, 4, 2]), Done)
    assert sorted(seen) == [(10, 1), (20, 4), (30, 2)]


def test_prefix_cache_reuse():
    blocks = [np.arange(4), np.arange(4), np.array([0, 1, 9, 10])]
    w = wl([0.0, 10.0, 20.0], [2048, 2048, 2048], [2, 2, 2], prefix=blocks)
    on, _ = run(w)
    off, _ = run(w, prefix_caching=False)
    # Request 1 reuses all its 16-token blocks but the last (vLLM leaves >= 1 token to compute), request 2
    # its first 2 prefix ids.
    assert on.cached_tokens.tolist() == [0, 2048 - 16, 2 * 512]
    assert off.cached_tokens.tolist() == [0, 0, 0]
    assert on.step_log["prefill_tokens"].sum() == 3 * 2048 - (2048 - 16) - 2 * 512
    assert on.first_token_s[1] - 10.0 < off.first_token_s[1] - 10.0


def test_one_kv_block_is_kept_aside_as_vllms_null_block():
    w = wl([0.0], [150], [10])   # 160 tokens: 10 blocks of 16
    assert run(w, kv_blocks=10)[0].rejected.tolist() == [True]
    res, _ = run(w, kv_blocks=11)
    assert res.completed.all() and res.info["kv_blocks"] == 11 and res.info["peak_blocks_used"] == 10


def test_prefix_cache_eviction_under_pressure():
    rng = np.random.default_rng(1)
    n = 60
    blocks = [rng.integers(0, 12, size=4) for _ in range(n)]
    for b in blocks:
        b[0] = 0
    w = wl(np.sort(rng.uniform(0, 3, n)), [2048] * n, rng.integers(1, 50, n), prefix=blocks)
    res, _ = run(w, kv_blocks=700)
    assert res.completed.all()
    assert res.info["peak_blocks_used"] <= 700
    # Nothing is held at the end; cached blocks stay in the free queue (as in vLLM), within its size.
    assert res.info["blocks_in_use_at_end"] == 0
    assert 0 < res.info["cached_blocks_at_end"] <= 700


def test_roofline_model_runs_azure_like_slice():
    rng = np.random.default_rng(2)
    n = 400
    w = wl(np.sort(rng.uniform(0, 20, n)), rng.integers(10, 8000, n), rng.integers(1, 400, n))
    res, _ = run(w, model=RooflineStepTime("llama-3-8b", "a100-80gb"))
    assert res.completed.all()
    assert res.info["kv_blocks"] == RooflineStepTime("llama-3-8b", "a100-80gb").kv_blocks()


POLICIES = [FCFSQueue, SJFQueue, OracleSJFQueue, HRRNQueue, EWSJFQueue]


@given(
    data=st.lists(st.tuples(st.floats(0, 5), st.integers(1, 3000), st.integers(1, 300)), min_size=1, max_size=40),
    budget=st.sampled_from([64, 512, 4096]),
    max_running=st.sampled_from([1, 4, 64]),
    kv=st.sampled_from([None, 40, 200, 2000]),
    chunked=st.booleans(),
    pol=st.sampled_from(POLICIES),
    prefix=st.booleans(),
    chunk_caps=st.sampled_from([(0, 0.0), (0, 0.25), (256, 0.0), (256, 1.0)]),
)
def test_invariants(data, budget, max_running, kv, chunked, pol, prefix, chunk_caps):
    data.sort(key=lambda t: t[0])
    a, p, o = (np.array(x) for x in zip(*data))
    rng = np.random.default_rng(len(data))
    blocks = [rng.integers(0, 3, size=int(pi) // 512 + 1) for pi in p] if prefix else None
    w = wl(a, p, o, prefix=blocks)
    max_running = min(max_running, budget)
    threshold, head_share = chunk_caps   # vLLM's per-request chunk cap, and EWSJF's share for the next waiting
    res, q = run(w, pol, token_budget=budget, max_running=max_running, kv_blocks=kv, chunked_prefill=chunked,
                 long_prefill_token_threshold=threshold, waiting_head_share=head_share)
    done = res.completed
    # every request is either completed or rejected, never both, never lost
    assert np.all(done ^ res.rejected)
    assert len(q) == 0
    kvb = res.info["kv_blocks"] - 1   # as in vLLM, one block is the null block
    for i in range(len(w)):
        need_blocks = math.ceil((p[i] + o[i]) / 16)
        fits = need_blocks <= kvb and (chunked or p[i] + o[i] <= budget)
        assert res.rejected[i] == (not fits)
        if done[i]:
            assert a[i] <= res.first_scheduled_s[i] <= res.first_token_s[i] <= res.finish_s[i]
    log = res.step_log
    assert (log["prefill_tokens"] + log["decode_tokens"]).max(initial=0) <= budget
    assert log["running"].max(initial=0) <= max_running
    assert res.info["peak_blocks_used"] <= kvb
    # Nothing is held at the end; cached blocks stay in the free queue (as in vLLM), within its size.
    assert res.info["blocks_in_use_at_end"] == 0
    assert res.info["cached_blocks_at_end"] <= kvb
    assert log["emitted"].sum() == o[done].sum()  # one emitted token per output token


def test_preempted_request_reuses_its_cached_blocks():
    # vLLM keeps a preempted request's full blocks in the prefix cache until they are reused: resuming
    # recomputes less with prefix caching on.
    w = wl([0.0] * 6, [200] * 6, [300] * 6)
    on, _ = run(w, kv_blocks=80, prefix_caching=True)
    off, _ = run(w, kv_blocks=80, prefix_caching=False)
    assert on.preemptions.sum() > 0 and off.preemptions.sum() > 0
    assert on.completed.all() and off.completed.all()
    per_pre_on = (on.step_log["prefill_tokens"].sum() - 1200) / on.preemptions.sum()
    per_pre_off = (off.step_log["prefill_tokens"].sum() - 1200) / off.preemptions.sum()
    assert per_pre_on < per_pre_off


def test_with_kv_blocks_sizes_the_cache_as_the_simulator_does():
    roofline = RooflineStepTime("llama-3-8b", "a100-80gb")
    given = EngineConfig(kv_blocks=123)
    assert given.with_kv_blocks(roofline) is given
    sized = EngineConfig(block_size=32, gpu_memory_utilization=0.8).with_kv_blocks(roofline)
    assert sized.kv_blocks == roofline.kv_blocks(32, 0.8) and sized.block_size == 32
    assert EngineConfig().with_kv_blocks(CostModelStepTime(0.01, 1e-4, 0.0, 1e-4)).kv_blocks is None  # unlimited


@pytest.mark.parametrize("rid", [-1, 3, True, 1.0, "0"])
def test_submit_refuses_an_id_outside_the_workload(rid):
    """-1 used to submit the last request (a list index), 3 raised IndexError, True submitted request 1."""
    clock = VirtualClock()
    engine = SimEngine(wl([0.0, 0.1, 0.2], [10, 30, 20], [5, 5, 3]), FCFSQueue(clock=clock), LinearStep(), clock=clock)
    with pytest.raises(ValueError, match=f"request {rid!r}"):
        engine.submit(rid)
    assert engine.num_waiting == 0 and engine.done == 0 and not engine.has_work()


def test_submit_refuses_a_request_submitted_before():
    """A running or finished request submitted again was queued a second time (duplicated): it crashed the step
    that finished it (KeyError), or was served twice."""
    clock = VirtualClock()
    engine = SimEngine(wl([0.0, 0.1], [10, 30], [5, 5]), FCFSQueue(clock=clock), LinearStep(), clock=clock)
    engine.submit(0)
    for _ in range(3):   # waiting, then running (then finished, below)
        with pytest.raises(ValueError, match="request 0 was submitted before"):
            engine.submit(0)
        engine.step()
    while engine.has_work():
        engine.step()
    with pytest.raises(ValueError, match="request 0 was submitted before"):
        engine.submit(0)
    assert engine.done == 1 and engine.num_waiting == 0
    assert engine.submit(1) and engine.num_waiting == 1
