"""Trace loaders: files on disk -> `Workload`. Malformed input raises `TraceError` naming file and line.

Formats
- Azure LLM inference trace 2023 (`TIMESTAMP,ContextTokens,GeneratedTokens`, wall-clock timestamps):
  `load_azure(paths)` merges several files (e.g. code + conv) on one time axis, relative to the earliest
  row of all of them.
- Length-only files (ShareGPT / BWB stats from Sarathi/Etalon: `num_prefill_tokens,num_decode_tokens,...`):
  `load_lengths(path, rate=..., cv=...)` draws arrivals: Poisson (cv = 1) or Gamma inter-arrival times
  with the given coefficient of variation (cv > 1: burstier), seeded.
- Mooncake JSON lines (`timestamp` in ms, `input_length`, `output_length`, `hash_ids`): `load_mooncake`.
  Each hash id stands for one 512-token prompt block; equal ids are equal blocks (prefix reuse).
- BurstGPT (`Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type`, seconds since the trace's start;
  columns found by name, in any order): `load_burstgpt`. A response of 0 tokens is a failed request (the dataset's
  README), which never ran on the engine: such rows are left out, not raised to 1.
- Generic CSV `arrival_s,prompt_tokens,output_tokens[,priority]` (header optional): `load_csv`.

Lengths of 0 in a trace are raised to 1 (an engine always processes at least one token); every other
value must be an integer.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from typing import Iterable, Sequence

import numpy as np

from ewsjf_core.sim.workload import PREFIX_BLOCK_TOKENS, Workload, concat

from .trace_input import (MAX_ARRIVAL_S, MAX_PRIORITY, MAX_REQUESTS, TraceError, arrival_field, check_int, int_field,
                          seconds_field, text_lines)

__all__ = ["TraceError", "arrivals", "load_azure", "load_burstgpt", "load_csv", "load_lengths", "load_mooncake",
           "save_csv"]


def _open_rows(path) -> Iterable[tuple[int, list[str]]]:
    """(line number, cells) of the non-blank CSV rows, read line by line with bounded reads."""
    line = 0

    def texts():
        nonlocal line
        for line, text in text_lines(path):
            yield text

    try:
        for row in csv.reader(texts()):
            if row and any(c.strip() for c in row):
                yield line, row
    except csv.Error as e:
        raise TraceError(f"{path}:{line}: not a CSV row ({e})") from None


# ---------------------------------------------------------------------------------------------- Azure
AZURE_HEADER = ["TIMESTAMP", "ContextTokens", "GeneratedTokens"]
_YEAR = re.compile(r"\d{4}-")


def _load_azure_file(path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    stamps: list[str] = []
    prompt: list[int] = []
    output: list[int] = []
    lines: list[int] = []
    header_seen = False
    for line, row in _open_rows(path):
        if not header_seen:
            if [c.strip() for c in row] != AZURE_HEADER:
                raise TraceError(f"{path}:{line}: expected the header {','.join(AZURE_HEADER)}, got {','.join(row)!r}")
            header_seen = True
            continue
        if len(row) != 3:
            raise TraceError(f"{path}:{line}: expected 3 fields (TIMESTAMP,ContextTokens,GeneratedTokens), "
                             f"got {len(row)}")
        stamp = row[0].strip()
        if not _YEAR.match(stamp):
            # numpy parses longer years but wraps them silently (year 99999 becomes a date in the past).
            raise TraceError(f"{path}:{line}: TIMESTAMP must be a date-time with a 4-digit year "
                             f"(e.g. 2023-11-16 18:17:03.9799600), got {stamp[:40]!r}")
        stamps.append(stamp)
        prompt.append(int_field(path, line, "ContextTokens", row[1]))
        output.append(int_field(path, line, "GeneratedTokens", row[2]))
        lines.append(line)
    if not header_seen:
        raise TraceError(f"{path}: empty file")
    try:
        # Microseconds: years 0000-9999 all fit (nanoseconds wrap outside 1678-2262).
        ts = np.array(stamps, dtype="datetime64[us]")
    except ValueError:
        for s, line in zip(stamps, lines):
            try:
                np.datetime64(s, "us")
            except ValueError:
                raise TraceError(f"{path}:{line}: TIMESTAMP {s!r} is not a date-time "
                                 f"(expected e.g. 2023-11-16 18:17:03.9799600)") from None
        raise
    if np.isnat(ts).any():
        line = lines[int(np.argmax(np.isnat(ts)))]
        raise TraceError(f"{path}:{line}: TIMESTAMP is not a date-time")
    return ts, np.maximum(np.array(prompt, dtype=np.int64), 1), np.maximum(np.array(output, dtype=np.int64), 1), \
        np.array(lines, dtype=np.int64)


def load_azure(paths: str | os.PathLike | Sequence[str | os.PathLike], name: str | None = None) -> Workload:
    """One or more Azure 2023 CSVs merged on one time axis (seconds after the earliest row)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    parts = [_load_azure_file(p) for p in paths]
    if not any(len(t) for t, _, _, _ in parts):
        raise TraceError(f"{', '.join(map(str, paths))}: no requests")
    t0 = min(t.min() for t, _, _, _ in parts if len(t))
    ws = []
    for path, (t, p, o, lines) in zip(paths, parts):
        offset_us = (t - t0).astype(np.int64)
        if len(t) and offset_us.max() > MAX_ARRIVAL_S * 1e6:
            i = int(np.argmax(offset_us))
            raise TraceError(f"{path}:{lines[i]}: TIMESTAMP {t[i]} is more than {MAX_ARRIVAL_S:.0f} s (~272 "
                             f"years) after the trace's earliest row {t0}")
        ws.append(Workload.from_unsorted(offset_us / 1e6, p, o))
    default = "+".join(os.path.splitext(os.path.basename(str(p)))[0].replace("AzureLLMInferenceTrace_", "azure-")
                       for p in paths)
    return concat(ws, name or default)


# ------------------------------------------------------------------------------------ arrivals, lengths
def arrivals(n: int, rate: float, cv: float = 1.0, seed: int = 0) -> np.ndarray:
    """n arrival times (the first at 0) of a renewal process with mean rate `rate` req/s.

    cv = 1: Poisson (exponential gaps). Otherwise Gamma gaps with shape 1/cv^2 (same mean 1/rate).
    """
    if not (rate > 0 and math.isfinite(rate)):
        raise ValueError(f"arrival rate must be a finite number > 0 req/s, got {rate!r}")
    if not (cv > 0 and math.isfinite(cv)):
        raise ValueError(f"arrival cv must be a finite number > 0, got {cv!r}")
    rng = np.random.default_rng(seed)
    if cv == 1.0:
        gaps = rng.exponential(1.0 / rate, size=n)
    else:
        shape = 1.0 / (cv * cv)
        gaps = rng.gamma(shape, 1.0 / (rate * shape), size=n)
    t = np.cumsum(gaps)
    return t - t[0] if n else t


def load_lengths(path, rate: float, cv: float = 1.0, seed: int = 0, n: int | None = None,
                 shuffle: bool = True, name: str | None = None) -> Workload:
    """A ShareGPT/BWB length file (`num_prefill_tokens,num_decode_tokens,...`) with drawn arrivals.

    shuffle: take the rows in a seeded random order (the files are not in arrival order anyway).
    n: use this many requests (rows are drawn with replacement when n exceeds the file).
    """
    rows = _open_rows(path)
    header = None
    prompt: list[int] = []
    output: list[int] = []
    for line, row in rows:
        if header is None:
            header = [c.strip() for c in row]
            try:
                ip, io = header.index("num_prefill_tokens"), header.index("num_decode_tokens")
            except ValueError:
                raise TraceError(f"{path}:{line}: header must name num_prefill_tokens and num_decode_tokens, "
                                 f"got {','.join(row)!r}") from None
            continue
        if len(row) < len(header):
            raise TraceError(f"{path}:{line}: expected {len(header)} fields, got {len(row)}")
        prompt.append(int_field(path, line, "num_prefill_tokens", row[ip]))
        output.append(int_field(path, line, "num_decode_tokens", row[io]))
    if not prompt:
        raise TraceError(f"{path}: no requests")
    p = np.maximum(np.array(prompt, dtype=np.int64), 1)
    o = np.maximum(np.array(output, dtype=np.int64), 1)
    rng = np.random.default_rng(seed + 1)
    count = len(p) if n is None else int(n)
    if not 1 <= count <= MAX_REQUESTS:
        raise ValueError(f"number of requests to draw must be in [1, {MAX_REQUESTS}], got {count}")
    if count <= len(p):
        idx = rng.permutation(len(p))[:count] if shuffle else np.arange(count)
    else:
        idx = rng.integers(0, len(p), size=count)
    default = os.path.splitext(os.path.basename(str(path)))[0]
    suffix = f"@{rate:g}rps" + ("" if cv == 1.0 else f",cv{cv:g}")
    return Workload(arrivals(count, rate, cv, seed), p[idx], o[idx], name=(name or default) + suffix)


# -------------------------------------------------------------------------------------------- Mooncake
def load_mooncake(path, name: str | None = None) -> Workload:
    """Mooncake JSON lines: timestamp (ms), input_length, output_length, hash_ids (512-token blocks)."""
    t: list[float] = []
    p: list[int] = []
    o: list[int] = []
    blocks: list[np.ndarray] = []
    for line, text in text_lines(path):
        if not text.strip():
            continue
        try:
            d = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as e:
            raise TraceError(f"{path}:{line}: not valid JSON ({getattr(e, 'msg', 'nested too deeply')})") from None
        except ValueError as e:   # e.g. an integer literal beyond Python's digit limit
            raise TraceError(f"{path}:{line}: not valid JSON ({e})") from None
        if not isinstance(d, dict):
            raise TraceError(f"{path}:{line}: expected a JSON object")
        for key in ("timestamp", "input_length", "output_length"):
            if key not in d:
                raise TraceError(f"{path}:{line}: missing field {key!r}")
        ts = d["timestamp"]
        if isinstance(ts, bool) or not isinstance(ts, (int, float)):
            raise TraceError(f"{path}:{line}: timestamp must be a number of ms >= 0, got {ts!r}")
        try:
            seconds = ts / 1000.0
        except OverflowError:   # an int beyond float range
            seconds = math.inf
        t.append(arrival_field(path, line, "timestamp (as seconds)", seconds))
        p.append(max(1, check_int(path, line, "input_length", d["input_length"])))
        o.append(max(1, check_int(path, line, "output_length", d["output_length"])))
        h = d.get("hash_ids", [])
        if not isinstance(h, list):
            raise TraceError(f"{path}:{line}: hash_ids must be a list of integers")
        h = h[:-(-p[-1] // PREFIX_BLOCK_TOKENS)]   # ids past the prompt's blocks name no token (and cost memory)
        for x in h:
            check_int(path, line, "hash_ids[]", x, -(2 ** 63), 2 ** 63 - 1)
        blocks.append(np.asarray(h, dtype=np.int64))
    if not t:
        raise TraceError(f"{path}: no requests")
    w = Workload.from_unsorted(t, p, o, None, blocks, name or os.path.splitext(os.path.basename(str(path)))[0])
    return w.rebase()


# ------------------------------------------------------------------------------------------- BurstGPT
BURSTGPT_COLUMNS = ("Timestamp", "Request tokens", "Response tokens")
"""The columns load_burstgpt reads (the others, Model, Total tokens and Log Type, are not needed to replay)."""


def is_burstgpt_header(cells: Sequence[str]) -> bool:
    return all(c in cells for c in BURSTGPT_COLUMNS)


def load_burstgpt(path, name: str | None = None) -> Workload:
    """A BurstGPT CSV: arrivals from Timestamp (seconds, re-based to the first request), prompts from Request
    tokens, outputs from Response tokens; failed requests (0 response tokens) left out."""
    t: list[float] = []
    p: list[int] = []
    o: list[int] = []
    cols, width = None, 0
    for line, row in _open_rows(path):
        cells = [c.strip() for c in row]
        if cols is None:
            if not is_burstgpt_header(cells):
                raise TraceError(f"{path}:{line}: expected a BurstGPT header naming {', '.join(BURSTGPT_COLUMNS)}, "
                                 f"got {','.join(row)[:200]!r}")
            cols = [cells.index(c) for c in BURSTGPT_COLUMNS]
            width = len(cells)
            continue
        if len(cells) != width:
            raise TraceError(f"{path}:{line}: expected {width} fields as the header names, got {len(cells)}")
        stamp, prompt, output = (cells[i] for i in cols)
        a = seconds_field(path, line, "Timestamp", stamp)
        prompt_tokens = int_field(path, line, "Request tokens", prompt)
        output_tokens = int_field(path, line, "Response tokens", output)
        if output_tokens == 0:
            continue
        t.append(a)
        p.append(max(1, prompt_tokens))
        o.append(output_tokens)
    if cols is None:
        raise TraceError(f"{path}: empty file")
    if not t:
        raise TraceError(f"{path}: no requests (every row failed: 0 Response tokens)")
    w = Workload.from_unsorted(t, p, o, None, None, name or os.path.splitext(os.path.basename(str(path)))[0])
    return w.rebase()


# --------------------------------------------------------------------------------------------- generic
CSV_FIELDS = ("arrival_s", "prompt_tokens", "output_tokens", "priority")


def load_csv(path, name: str | None = None) -> Workload:
    """Generic CSV `arrival_s,prompt_tokens,output_tokens[,priority]`; a header line naming them is optional."""
    t: list[float] = []
    p: list[int] = []
    o: list[int] = []
    pr: list[int] = []
    cols = None
    first = True
    for line, row in _open_rows(path):
        cells = [c.strip() for c in row]
        if first:
            first = False
            if cells and cells[0] == "arrival_s":
                if cells[:3] != list(CSV_FIELDS[:3]) or len(cells) > 4 or (len(cells) == 4 and cells[3] != "priority"):
                    raise TraceError(f"{path}:{line}: header must be arrival_s,prompt_tokens,output_tokens"
                                     f"[,priority], got {','.join(row)!r}")
                cols = len(cells)
                continue
        if cols is None:
            cols = len(cells)
        if len(cells) != cols or cols not in (3, 4):
            raise TraceError(f"{path}:{line}: expected {cols if cols in (3, 4) else '3 or 4'} fields "
                             f"(arrival_s,prompt_tokens,output_tokens[,priority]), got {len(cells)}")
        t.append(seconds_field(path, line, "arrival_s", cells[0]))
        p.append(max(1, int_field(path, line, "prompt_tokens", cells[1])))
        o.append(max(1, int_field(path, line, "output_tokens", cells[2])))
        pr.append(int_field(path, line, "priority", cells[3], -MAX_PRIORITY, MAX_PRIORITY) if cols == 4 else 0)
    if not t:
        raise TraceError(f"{path}: no requests")
    return Workload.from_unsorted(t, p, o, pr, None, name or os.path.splitext(os.path.basename(str(path)))[0])


def save_csv(workload: Workload, path) -> None:
    """Write a workload in the generic CSV format (with header)."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_FIELDS)
        for a, p, o, pr in zip(workload.arrival_s, workload.prompt_tokens, workload.output_tokens,
                               workload.priority):
            w.writerow([repr(float(a)), int(p), int(o), int(pr)])
