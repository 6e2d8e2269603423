"""Trace loaders on hostile files: every failure is a TraceError naming file and line, reads are bounded."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from ewsjf.bench import trace_input
from ewsjf.bench.traces import TraceError, load_azure, load_csv, load_lengths, load_mooncake
from ewsjf.bench.trace_input import MAX_ARRIVAL_S, MAX_TOKENS, text_lines

BIG = str(2 ** 70)
AZ = "TIMESTAMP,ContextTokens,GeneratedTokens\n"


def write(tmp_path, name: str, data) -> str:
    p = tmp_path / name
    if isinstance(data, bytes):
        p.write_bytes(data)
    else:
        p.write_text(data)
    return str(p)


@pytest.mark.parametrize("loader, name, text, match", [
    (load_csv, "g.csv", f"0,{BIG},5\n", r"g.csv:1: prompt_tokens must be in \[0, 2147483647\]"),
    (load_csv, "g.csv", f"0,5,{BIG}\n", r"g.csv:1: output_tokens"),
    (load_csv, "g.csv", f"0,5,5,{BIG}\n", r"g.csv:1: priority"),
    (load_csv, "g.csv", "0,1e30,5\n", r"g.csv:1: prompt_tokens"),
    (load_csv, "g.csv", "0,5,5\n1e300,5,5\n", r"g.csv:2: arrival_s must be finite"),
    (load_csv, "g.csv", "0,5,5\nnan,5,5\n", r"g.csv:2: arrival_s"),
    (load_azure, "a.csv", AZ + f"2023-11-16 18:17:03.9,{BIG},5\n", r"a.csv:2: ContextTokens"),
    (load_azure, "a.csv", AZ + "2023-11-16 18:17:03.9,5,5\n99999-11-16 18:17:03.9,5,5\n",
     r"a.csv:3: TIMESTAMP must be a date-time with a 4-digit year"),
    (load_azure, "a.csv", AZ + "1500-11-16 18:17:03.9,5,5\n2023-11-16 18:17:03.9,5,5\n",
     r"a.csv:3: TIMESTAMP .* more than 8589934592 s"),
    (load_mooncake, "m.jsonl", json.dumps({"timestamp": 0, "input_length": 2 ** 70, "output_length": 3}),
     r"m.jsonl:1: input_length"),
    (load_mooncake, "m.jsonl", json.dumps({"timestamp": 0, "input_length": 3, "output_length": 3,
                                           "hash_ids": [2 ** 70]}), r"m.jsonl:1: hash_ids"),
    (load_mooncake, "m.jsonl", json.dumps({"timestamp": 2 ** 2000, "input_length": 3, "output_length": 3}),
     r"m.jsonl:1: timestamp"),
    (load_mooncake, "m.jsonl", '{"timestamp": ' + "9" * 5000 + ', "input_length": 3, "output_length": 3}',
     r"m.jsonl:1: not valid JSON"),
    (load_mooncake, "m.jsonl", "[" * 100_000, r"m.jsonl:1: not valid JSON"),
    (load_mooncake, "m.jsonl", '{"timestamp": 0, "input_length": true, "output_length": 3}',
     r"m.jsonl:1: input_length must be an integer"),
])
def test_values_beyond_limits_name_file_and_line(tmp_path, loader, name, text, match):
    with pytest.raises(TraceError, match=match):
        loader(write(tmp_path, name, text))


def test_lengths_file_beyond_int64_and_draw_count(tmp_path):
    p = write(tmp_path, "l.csv", f"num_prefill_tokens,num_decode_tokens\n{BIG},4\n")
    with pytest.raises(TraceError, match=r"l.csv:2: num_prefill_tokens"):
        load_lengths(p, rate=1.0)
    ok = write(tmp_path, "ok.csv", "num_prefill_tokens,num_decode_tokens\n5,4\n")
    with pytest.raises(ValueError, match="number of requests"):
        load_lengths(ok, rate=1.0, n=10 ** 13)


@pytest.mark.parametrize("loader", [load_csv, load_azure, load_mooncake])
def test_devices_folders_binary_files(tmp_path, loader):
    with pytest.raises(TraceError, match="not a regular file"):
        loader(str(tmp_path))
    if os.path.exists("/dev/zero"):
        with pytest.raises(TraceError, match="/dev/zero: not a regular file"):
            loader("/dev/zero")
    with pytest.raises(TraceError, match=r"b.bin:1: not UTF-8 text"):
        loader(write(tmp_path, "b.bin", bytes(range(256)) * 4))


def test_lines_are_read_with_bounded_reads(tmp_path, monkeypatch):
    monkeypatch.setattr(trace_input, "MAX_LINE_CHARS", 100)
    p = write(tmp_path, "long.csv", "0,5,5\n" + "1" * 1000)   # no newline: one endless "line"
    with pytest.raises(TraceError, match=r"long.csv:2: line longer than 100 characters"):
        load_csv(p)
    assert [n for n, _ in text_lines(write(tmp_path, "ok.csv", "a\nb\n"))] == [1, 2]


def test_values_at_the_limits_load(tmp_path):
    w = load_csv(write(tmp_path, "g.csv", f"0,{MAX_TOKENS},1\n{MAX_ARRIVAL_S:.0f},1,{MAX_TOKENS}\n"))
    assert w.prompt_tokens.tolist() == [MAX_TOKENS, 1] and w.arrival_s[-1] == MAX_ARRIVAL_S
    a = load_azure(write(tmp_path, "a.csv", AZ + "2023-11-16 18:17:03.9799600,5,5\n2023-11-16 18:17:05.5,6,6\n"))
    assert a.arrival_s.tolist() == pytest.approx([0.0, 1.52004])
    m = load_mooncake(write(tmp_path, "m.jsonl", json.dumps({"timestamp": 1.7e12, "input_length": 3,
                                                             "output_length": 3, "hash_ids": [2 ** 63 - 1]})))
    assert m.prefix_blocks[0].tolist() == [2 ** 63 - 1] and np.all(m.arrival_s == 0)


def test_mooncake_hash_ids_past_the_prompt_are_dropped(tmp_path):
    # 1,000 ids for a 600-token prompt (2 blocks of 512): the rest name no token, and would cost memory
    m = load_mooncake(write(tmp_path, "m.jsonl", json.dumps({"timestamp": 0, "input_length": 600,
                                                             "output_length": 3, "hash_ids": list(range(1000))})))
    assert m.prefix_blocks[0].tolist() == [0, 1]
