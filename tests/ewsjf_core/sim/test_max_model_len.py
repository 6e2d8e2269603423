"""Prompts longer than the context (max_model_len) are rejected as vLLM does, counted, never served."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ewsjf.bench.cli import main as cli_main
from ewsjf.bindings.baselines import FCFSQueue
from ewsjf.bench.metrics import summarize
from ewsjf_core.sim import EngineConfig, RooflineStepTime, VirtualClock, Workload, simulate
from ewsjf_core.sim.context_length import context_length


def replay(w, **cfg):
    clock = VirtualClock()
    return simulate(w, FCFSQueue(clock=clock), RooflineStepTime("llama-3-8b", "a100-80gb"), EngineConfig(**cfg),
                    clock=clock)


def test_long_prompts_rejected_counted_and_never_served():
    w = Workload(np.array([0.0, 0.1, 0.2, 0.3]), np.array([100, 9000, 8192, 8000]), np.array([10, 10, 10, 500]))
    res = replay(w, max_model_len=8192)
    assert res.rejected.tolist() == [False, True, True, False]   # a prompt of max_model_len leaves no room
    assert np.isnan(res.first_token_s[[1, 2]]).all() and np.isnan(res.first_scheduled_s[[1, 2]]).all()
    assert summarize(res)["rejected"] == 2
    # Request 3 stops at the context length (192 outputs), as vLLM's length cap does.
    assert res.step_log["emitted"].sum() == 10 + 192
    free = replay(w)
    assert not free.rejected.any() and free.step_log["emitted"].sum() == 530


def test_engine_config_checks_max_model_len():
    with pytest.raises(ValueError, match="max_model_len"):
        EngineConfig(max_model_len=0)
    with pytest.raises(ValueError, match="max_model_len"):
        EngineConfig(max_model_len=2.5)


def test_context_length_from_preset_and_config(tmp_path):
    assert context_length("llama-3-8b") == 8192
    (tmp_path / "config.json").write_text(json.dumps({"max_position_embeddings": 32768}))
    assert context_length(str(tmp_path)) == 32768
    (tmp_path / "c2.json").write_text(json.dumps({"text_config": {"max_position_embeddings": 4096}}))
    assert context_length(str(tmp_path / "c2.json")) == 4096
    assert context_length("no-such-model") is None


def test_bench_rejects_by_the_models_context_and_the_flag(tmp_path, capsys):
    trace = tmp_path / "t.csv"
    trace.write_text("arrival_s,prompt_tokens,output_tokens\n0,100,5\n0.5,9000,5\n1.0,200,5\n")
    out = tmp_path / "r.json"
    assert cli_main(["bench", "--workload", str(trace), "--policies", "fcfs", "--no-progress", "--json", str(out)]) == 0
    m = json.loads(out.read_text())["runs"][0]["metrics"]
    assert m["rejected"] == 1 and m["completed"] == 2          # Llama-3-8B: 8192 tokens
    assert cli_main(["bench", "--workload", str(trace), "--policies", "fcfs", "--no-progress", "--json", str(out),
                     "--max-model-len", "16384"]) == 0
    m = json.loads(out.read_text())["runs"][0]["metrics"]
    assert m["rejected"] == 0 and m["completed"] == 3
