"""Fidelity smoke test: the sim and vLLM's real scheduler (virtual engine) agree on a small workload with
shared prefix blocks under KV-cache pressure (the full matrix is `ewsjf bench --fidelity`)."""

from __future__ import annotations

import argparse
import math

import numpy as np
import pytest

from ewsjf.bench import engines, fidelity
from ewsjf.bench.metrics import summarize
from ewsjf_core.sim import EngineConfig, RooflineStepTime, Workload


def prefix_workload(n: int = 30, rate: float = 0.6, seed: int = 0) -> Workload:
    """Prompts of 1-12k tokens: a run of one of 4 shared documents' 512-token blocks, then 1-3 own blocks."""
    rng = np.random.default_rng(seed)
    arrival = np.cumsum(rng.exponential(1 / rate, n))
    prompts, blocks = [], []
    for i in range(n):
        doc = int(rng.integers(4))
        ids = [100 * doc + j for j in range(int(rng.integers(2, 24)))]
        ids += [10_000 + 64 * i + j for j in range(int(rng.integers(1, 4)))]
        prompts.append(len(ids) * 512 - int(rng.integers(0, 400)))
        blocks.append(np.array(ids))
    return Workload(arrival, np.array(prompts), rng.integers(4, 300, n), prefix_blocks=blocks, name="prefix")


def test_rel_error():
    assert fidelity.rel_error(1.05, 1.0) == pytest.approx(0.05)
    assert fidelity.rel_error(0, 0) == 0.0 and math.isinf(fidelity.rel_error(3, 0))


def test_every_case_has_two_loads_and_a_trace_candidate():
    names = [c.name for c in fidelity.CASES]
    assert len(set(names)) == len(names) and {"azure-code", "azure-conv", "sharegpt", "bwb", "mooncake"} <= set(names)
    assert any(not c.prefix_caching for c in fidelity.CASES)
    for c in fidelity.CASES:
        assert len(c.loads) == 2 and c.loads[0] < c.loads[1] and c.trace


def test_row_filters_select_a_workload_a_load_and_a_policy():
    (f,) = fidelity.row_filters("mooncake@0.2:ewsjf")
    assert f.matches("mooncake", 0.2, "ewsjf")
    assert not f.matches("mooncake", 0.08, "ewsjf") and not f.matches("mooncake", 0.2, "fcfs")
    assert not f.matches("mooncake-no-cache", 0.2, "ewsjf")
    a, b = fidelity.row_filters("bwb, sharegpt:fcfs")
    assert a.matches("bwb", 4.0, "ewsjf") and b.matches("sharegpt", 0.45, "fcfs")
    assert not b.matches("sharegpt", 0.45, "ewsjf")


@pytest.mark.parametrize("text, message", [
    ("moon", "unknown fidelity workload"), ("mooncake@0.3", "runs at loads"), ("mooncake@x", "not a number"),
    ("bwb:sjf", "policy 'sjf'"), (",", "expected")])
def test_row_filters_name_what_is_wrong(text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        fidelity.row_filters(text)


def test_run_matrix_runs_only_the_selected_rows():
    logs = []
    cases = tuple(fidelity.Case(name, ("no/such/trace.csv",), (1.0, 2.0)) for name in ("a", "b"))
    assert fidelity.run_matrix(cases=cases, only=(fidelity.RowFilter("b", 2.0),), log=logs.append) == []
    assert len(logs) == 1 and logs[0].startswith("  skip b:")    # case a was never looked at


@pytest.mark.parametrize("prefix_caching", [True, False])
def test_sim_matches_vllm_on_prefix_blocks_under_kv_pressure(prefix_caching):
    pytest.importorskip("vllm")
    w = prefix_workload()
    st = RooflineStepTime("llama-3-8b", "a100-80gb")
    engine = EngineConfig(kv_blocks=1200, prefix_caching=prefix_caching)
    sim_res, ref_res = engines.run("sim", w, "fcfs", st, engine), engines.run("vllm", w, "fcfs", st, engine)
    # Prefix hits at first admission, request by request, as vLLM's 16-token blocks give them.
    assert sim_res.cached_tokens.tolist() == ref_res.cached_tokens.tolist()
    assert (ref_res.cached_tokens.sum() > 0) == prefix_caching
    sim, ref = summarize(sim_res), summarize(ref_res)
    for keys in (("ttft_s", "mean"), ("ttft_s", "p50"), ("output_tps",)):
        s, v = fidelity._pick(sim, keys), fidelity._pick(ref, keys)
        assert abs(fidelity.rel_error(s, v)) <= 0.05, (keys, s, v)
    assert abs(sim["preemptions"] - ref["preemptions"]) <= 2


def test_sim_matches_vllm_under_a_kv_watermark():
    """EngineConfig.kv_watermark is vLLM's --watermark: with it, both engines hold admissions back alike."""
    pytest.importorskip("vllm")
    w = prefix_workload()
    st = RooflineStepTime("llama-3-8b", "a100-80gb")
    runs = {}
    for watermark in (0.0, 0.2):
        engine = EngineConfig(kv_blocks=1200, kv_watermark=watermark)
        runs[watermark] = [engines.run(e, w, "fcfs", st, engine) for e in ("sim", "vllm")]
        (sim_res, ref_res) = runs[watermark]
        assert np.array_equal(np.argsort(sim_res.first_scheduled_s, kind="stable"),
                              np.argsort(ref_res.first_scheduled_s, kind="stable")), watermark
        sim, ref = summarize(sim_res), summarize(ref_res)
        for keys in (("ttft_s", "mean"), ("ttft_s", "p50")):
            s, v = fidelity._pick(sim, keys), fidelity._pick(ref, keys)
            assert abs(fidelity.rel_error(s, v)) <= 0.05, (watermark, keys, s, v)
    # The watermark held admissions back in both (the workload is under KV pressure).
    for i in range(2):
        assert summarize(runs[0.2][i])["ttft_s"]["mean"] > summarize(runs[0.0][i])["ttft_s"]["mean"]


def storm_workload(n: int = 120, seed: int = 0) -> Workload:
    """Short prompts with long outputs arriving faster than a small KV cache drains them: preemptions."""
    rng = np.random.default_rng(seed)
    arrival = np.cumsum(rng.exponential(1 / 6.0, n))
    return Workload(arrival, rng.integers(50, 400, n), rng.integers(200, 900, n), name="storm")


def test_sim_matches_vllm_with_the_preemption_guard():
    """EngineConfig.preemption_guard is VLLMOptions.preemption_guard: both engines learn the same watermark from
    the same preemptions, so EWSJF admits in the same order with as many preemptions; the guard halves them."""
    pytest.importorskip("vllm")
    w, st = storm_workload(), RooflineStepTime("llama-3-8b", "a100-80gb")
    preemptions = {}
    for guard in (False, True):
        engine = EngineConfig(kv_blocks=400, prefix_caching=False, preemption_guard=guard)
        sim_res, ref_res = (engines.run(e, w, "ewsjf", st, engine) for e in ("sim", "vllm"))
        assert np.array_equal(np.argsort(sim_res.first_scheduled_s, kind="stable"),
                              np.argsort(ref_res.first_scheduled_s, kind="stable")), guard
        sim, ref = summarize(sim_res), summarize(ref_res)
        assert sim["preemptions"] == ref["preemptions"], guard
        assert abs(fidelity.rel_error(sim["ttft_s"]["mean"], ref["ttft_s"]["mean"])) <= 0.05, guard
        preemptions[guard] = sim["preemptions"]
    assert 0 < preemptions[True] <= 0.6 * preemptions[False]


def test_mooncake_row_under_ewsjf_agrees_with_vllm():
    """The row the id-granular prefix cache and the missing null block made miss (one preemption in the sim,
    none in vLLM); the vendored trace's window, a few seconds."""
    pytest.importorskip("vllm")
    (row,) = fidelity.run_matrix(only=fidelity.row_filters("mooncake@0.2:ewsjf"), log=lambda _: None)
    assert row["ok"] and row["sim"]["preemptions"] == row["vllm"]["preemptions"], row


def test_vllm_replay_gives_distinct_prefix_ids_distinct_tokens_and_no_shared_content_past_the_ids():
    """Ids 1,000,000 apart (they shared a token once), and prompts longer than their ids cover (the part past
    them is the request's own in the sim): vLLM's prefix hits are the sim's, request by request."""
    pytest.importorskip("vllm")
    ids = [[5, 6], [1_000_005, 6], [5, 6], [7], [7]]
    prompts = [1024, 1024, 1024, 2048, 2048]   # the last two: 512 tokens named, 1,536 past their id
    w = Workload(np.arange(5) * 30.0, np.array(prompts), np.full(5, 8), prefix_blocks=[np.array(i) for i in ids],
                 name="ids")
    st = RooflineStepTime("llama-3-8b", "a100-80gb")
    sim_res, ref_res = (engines.run(e, w, "fcfs", st, EngineConfig()) for e in ("sim", "vllm"))
    # Hits are whole blocks, one token left to compute (request 2: 63 of its 64 blocks).
    assert ref_res.cached_tokens.tolist() == sim_res.cached_tokens.tolist() == [0, 0, 1008, 0, 512]
