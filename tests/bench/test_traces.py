"""Trace loaders (small files written per test; one check on the vendored Azure trace)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from ewsjf.bench.traces import (TraceError, arrivals, load_azure, load_burstgpt, load_csv, load_lengths, load_mooncake,
                                save_csv)

AZURE_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "bench", "data", "azure_llm_2023")


def test_azure_default_trace():
    w = load_azure([os.path.join(AZURE_DIR, "AzureLLMInferenceTrace_code.csv"),
                    os.path.join(AZURE_DIR, "AzureLLMInferenceTrace_conv.csv")])
    assert len(w) == 8819 + 19366
    assert w.arrival_s[0] == 0.0
    assert 3400 < w.duration_s < 3700
    assert w.prompt_tokens.min() >= 1 and w.output_tokens.min() >= 1


def test_azure_errors(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.9799600,10,5\n"
                 "2023-11-16 18:17:04.0,abc,5\n")
    with pytest.raises(TraceError, match=r"a.csv:3: ContextTokens"):
        load_azure(str(p))
    p.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\nnot-a-date,10,5\n")
    with pytest.raises(TraceError, match=r"a.csv:2: TIMESTAMP"):
        load_azure(str(p))
    p.write_text("time,a,b\n")
    with pytest.raises(TraceError, match=r"a.csv:1: expected the header"):
        load_azure(str(p))
    p.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03,10\n")
    with pytest.raises(TraceError, match=r"a.csv:2: expected 3 fields"):
        load_azure(str(p))
    with pytest.raises(TraceError, match="no such trace file"):
        load_azure(str(tmp_path / "missing.csv"))


def test_azure_merge_on_one_axis(tmp_path):
    a = tmp_path / "AzureLLMInferenceTrace_code.csv"
    b = tmp_path / "AzureLLMInferenceTrace_conv.csv"
    a.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:00:02,100,1\n2023-11-16 18:00:04,0,3\n")
    b.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:00:01.5,7,9\n")
    w = load_azure([str(a), str(b)])
    assert w.arrival_s.tolist() == [0.0, 0.5, 2.5]
    assert w.prompt_tokens.tolist() == [7, 100, 1]   # 0 raised to 1
    assert w.name == "azure-code+azure-conv"


def test_lengths_poisson_and_gamma(tmp_path):
    p = tmp_path / "sharegpt.csv"
    rows = "\n".join(f"{10 + i},{20 + i},{30 + 2 * i},0.5" for i in range(500))
    p.write_text("num_prefill_tokens,num_decode_tokens,num_total_tokens,pd_ratio\n" + rows + "\n")
    w = load_lengths(str(p), rate=5.0, seed=1)
    assert len(w) == 500
    assert sorted(w.prompt_tokens.tolist()) == list(range(10, 510))
    assert w.rate == pytest.approx(5.0, rel=0.15)
    g = load_lengths(str(p), rate=5.0, cv=4.0, seed=1, n=2000)
    assert len(g) == 2000
    gaps = np.diff(g.arrival_s)
    assert gaps.std() / gaps.mean() > 2.5
    assert load_lengths(str(p), rate=5.0, seed=1).arrival_s.tolist() == w.arrival_s.tolist()
    bad = tmp_path / "bad.csv"
    bad.write_text("num_prefill_tokens,num_decode_tokens\n1,2\n3,x\n")
    with pytest.raises(TraceError, match=r"bad.csv:3: num_decode_tokens"):
        load_lengths(str(bad), rate=1.0)
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(TraceError, match=r"bad.csv:1: header"):
        load_lengths(str(bad), rate=1.0)
    with pytest.raises(ValueError, match="rate"):
        arrivals(3, rate=0.0)


def test_mooncake(tmp_path):
    p = tmp_path / "m.jsonl"
    lines = [{"timestamp": 1000, "input_length": 1024, "output_length": 5, "hash_ids": [1, 2]},
             {"timestamp": 500, "input_length": 600, "output_length": 1, "hash_ids": [1]}]
    p.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    w = load_mooncake(str(p))
    assert w.arrival_s.tolist() == [0.0, 0.5]
    assert w.prompt_tokens.tolist() == [600, 1024]
    assert [b.tolist() for b in w.prefix_blocks] == [[1], [1, 2]]
    assert [b.tolist() for b in w.head(1).prefix_blocks] == [[1]]


def test_burstgpt(tmp_path):
    p = tmp_path / "BurstGPT_1.csv"
    p.write_text("Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
                 "7.5,ChatGPT,472,18,490,Conversation log\n"
                 "5.0,GPT-4,1021,0,1021,API log\n"          # failed: never ran
                 "6.0,ChatGPT,0,250,250,Conversation log\n")
    w = load_burstgpt(str(p))
    assert w.arrival_s.tolist() == [0.0, 1.5]   # re-based to the first request that ran
    assert w.prompt_tokens.tolist() == [1, 472] and w.output_tokens.tolist() == [250, 18]
    assert w.name == "BurstGPT_1"
    q = tmp_path / "reordered.csv"   # the Hugging Face export puts the columns in another order
    q.write_text("Log Type,Timestamp,Request tokens,Response tokens,Total tokens,Model\nAPI log,3,10,2,12,GPT-4\n")
    assert load_burstgpt(str(q)).prompt_tokens.tolist() == [10]


def test_generic_csv(tmp_path):
    p = tmp_path / "g.csv"
    p.write_text("arrival_s,prompt_tokens,output_tokens,priority\n1.5,10,2,1\n0.5,20,3,0\n")
    w = load_csv(str(p))
    assert w.arrival_s.tolist() == [0.5, 1.5] and w.priority.tolist() == [0, 1]
    p.write_text("0.0,10,2\n1.0,20,3\n")
    w = load_csv(str(p))
    assert w.prompt_tokens.tolist() == [10, 20]
    out = tmp_path / "out.csv"
    save_csv(w, str(out))
    assert load_csv(str(out)).prompt_tokens.tolist() == [10, 20]


@pytest.mark.parametrize("loader, name, text, match", [
    (load_mooncake, "m.jsonl", '{"timestamp": 0, "input_length": 5, "output_length": 1}\n'
                               '{"timestamp": 1, "input_length": 5}\n', r"m.jsonl:2: missing field 'output_length'"),
    (load_mooncake, "m.jsonl", '{"timestamp": 0, "input_length": 5, "output_length": 1}\n{oops\n',
     r"m.jsonl:2: not valid JSON"),
    (load_mooncake, "m.jsonl", '{"timestamp": 0, "input_length": 5.5, "output_length": 1}\n',
     r"m.jsonl:1: input_length"),
    (load_csv, "g.csv", "0.0,10,2\n1.0,20\n", r"g.csv:2: expected 3 fields"),
    (load_csv, "g.csv", "0.0,10,2\nsoon,20,3\n", r"g.csv:2: arrival_s"),
    (load_csv, "g.csv", "0.0,10,2.5\n", r"g.csv:1: output_tokens"),
    (load_csv, "g.csv", "arrival_s,prompt,output_tokens\n", r"g.csv:1: header"),
    (load_csv, "g.csv", "", "no requests"),
    (load_burstgpt, "b.csv", "Timestamp,Model,Request tokens,Total tokens\n", r"b.csv:1: expected a BurstGPT header"),
    (load_burstgpt, "b.csv", "Timestamp,Request tokens,Response tokens\n1,10,2\nlater,10,2\n",
     r"b.csv:3: Timestamp must be a number"),
    (load_burstgpt, "b.csv", "Timestamp,Request tokens,Response tokens\n-1,10,2\n", r"b.csv:2: Timestamp must be"),
    (load_burstgpt, "b.csv", "Timestamp,Request tokens,Response tokens\n1,10.5,2\n", r"b.csv:2: Request tokens"),
    (load_burstgpt, "b.csv", "Timestamp,Request tokens,Response tokens\n1,10,2,9\n", r"b.csv:2: expected 3 fields"),
    (load_burstgpt, "b.csv", "Timestamp,Request tokens,Response tokens\n1,10,0\n", "every row failed"),
    (load_burstgpt, "b.csv", "", "empty file"),
])
def test_malformed_trace_names_file_line_and_field(tmp_path, loader, name, text, match):
    p = tmp_path / name
    p.write_text(text)
    with pytest.raises(TraceError, match=match):
        loader(str(p))
