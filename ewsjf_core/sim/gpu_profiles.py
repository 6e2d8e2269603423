"""Reads a folder of GPU measurements (the layout that scripts/gpu_calib.py writes, one folder per GPU).

DIR/<gpu>/ holds any of:
- `*_mlp.csv`: per-layer op times against batch token count (Vidur's schema: `time_stats.<op>.median` in ms, or
  the vendored extract's `<op>_median_ms`), one model shape per file;
- `attention.csv`: kind (prefill | prefill_chunk | decode), batch, q_len, kv_len, time_ms_median, backend;
  the fastest backend per shape is kept (the closer proxy of vLLM's FlashAttention-3);
- `meta.json` (its part4 scenarios: whole forward steps with their chunk lists) and/or `steps*.csv`.
"""

from __future__ import annotations

import csv
import glob
import json
import math
import os
import re
from dataclasses import dataclass, field

LINEAR_OPS = ("attn_pre_proj", "attn_post_proj", "mlp_up_proj", "mlp_down_proj")
ELEMENTWISE_OPS = ("emb", "input_layernorm", "attn_rope", "post_attention_layernorm", "mlp_act", "add")


@dataclass(frozen=True)
class LayerRow:
    source: str
    heads: int
    kv_heads: int
    hidden: int
    intermediate: int
    gated: bool
    tokens: int
    ops: dict
    """op name -> median seconds for one layer."""


@dataclass(frozen=True)
class AttentionRow:
    kind: str
    batch: int
    q_len: int
    kv_len: int
    seconds: float
    backend: str


@dataclass(frozen=True)
class StepRow:
    scenario: str
    prefill: tuple[tuple[int, int], ...]
    """(new tokens, cached before) per prefill chunk."""
    decode_seqs: int
    decode_context: int
    """KV entries each decode attends to (cached tokens plus the new one)."""
    graph: bool
    seconds: float
    source: str


@dataclass
class GPUProfile:
    gpu: str
    folder: str
    layers: list[LayerRow] = field(default_factory=list)
    attention: list[AttentionRow] = field(default_factory=list)
    steps: list[StepRow] = field(default_factory=list)
    meta: dict = field(default_factory=dict)


def positive_number(value, what: str) -> float:
    """`value` as a finite float > 0, else ValueError naming `what` (a NaN or a zero would poison a fit)."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        x = math.nan
    if not (math.isfinite(x) and x > 0.0):
        raise ValueError(f"{what} must be a finite number > 0, got {value!r}")
    return x


def _ms_to_seconds(value, column: str) -> float:
    """A measured time in milliseconds, as seconds."""
    return positive_number(value, f"{column} (ms)") * 1e-3


def _count(row: dict, column: str, lo: int = 1) -> int:
    n = int(row[column])
    if n < lo:
        raise ValueError(f"{column} must be an integer >= {lo}, got {row[column]!r}")
    return n


def _csv_rows(path: str, what: str, parse) -> list:
    """parse(row) for each row of the CSV at `path` (None: skip it); a row it cannot read raises ValueError
    naming the file, the line and the column."""
    out = []
    with open(path, newline="") as f:
        for line, r in enumerate(csv.DictReader(f), start=2):
            try:
                item = parse(r)
            except KeyError as e:
                raise ValueError(f"{path}:{line}: bad {what} row (no column {e})") from None
            except (ValueError, TypeError) as e:
                raise ValueError(f"{path}:{line}: bad {what} row ({e})") from None
            if item is not None:
                out.append(item)
    return out


def _op_seconds(row: dict, op: str) -> float | None:
    for key in (f"time_stats.{op}.median", f"{op}_median_ms"):
        v = row.get(key)
        if v not in (None, ""):
            return _ms_to_seconds(v, key)
    return None


def read_layer_file(path: str) -> list[LayerRow]:
    def parse(r: dict) -> LayerRow | None:
        if int(r.get("num_tensor_parallel_workers") or 1) != 1:
            return None
        ops = {op: t for op in LINEAR_OPS + ELEMENTWISE_OPS if (t := _op_seconds(r, op)) is not None}
        return LayerRow(os.path.basename(path), _count(r, "n_head"), _count(r, "n_kv_head"), _count(r, "n_embd"),
                        _count(r, "n_expanded_embd"), str(r.get("use_gated_mlp", "True")) == "True",
                        _count(r, "num_tokens"), ops)
    return _csv_rows(path, "layer", parse)


def read_attention(path: str) -> list[AttentionRow]:
    def parse(r: dict) -> AttentionRow:
        return AttentionRow(r["kind"], _count(r, "batch"), _count(r, "q_len"), _count(r, "kv_len"),
                            _ms_to_seconds(r["time_ms_median"], "time_ms_median"), r.get("backend", ""))
    best: dict[tuple, AttentionRow] = {}
    for a in _csv_rows(path, "attention", parse):
        key = (a.kind, a.batch, a.q_len, a.kv_len)
        if key not in best or a.seconds < best[key].seconds:
            best[key] = a
    return list(best.values())


_SCENARIO = re.compile(r"^(\w+) prefill=(\[.*?\]) decode=(None|\(\d+, \d+\)) graph=(True|False)$")


def steps_from_meta(meta: dict, source: str) -> list[StepRow]:
    out = []
    part4 = meta.get("part4", {})
    scenarios = part4.get("scenarios", []) if isinstance(part4, dict) else None
    if not isinstance(scenarios, list):
        raise ValueError(f"{source}: part4.scenarios must be a list")
    for i, s in enumerate(scenarios):
        if not isinstance(s, dict):
            raise ValueError(f"{source}: part4.scenarios[{i}] must be an object")
        m = _SCENARIO.match(str(s.get("scenario", "")))
        if not m or "median_ms" not in s or "graph_error" in s:
            continue
        prefill = tuple((int(c), int(k)) for c, k in re.findall(r"\((\d+), (\d+)\)", m.group(2)))
        dec = re.findall(r"\d+", m.group(3))
        try:
            seconds = _ms_to_seconds(s["median_ms"], "median_ms")
        except (ValueError, TypeError) as e:
            raise ValueError(f"{source}: part4.scenarios[{i}]: {e}") from None
        out.append(StepRow(m.group(1), prefill, int(dec[0]) if dec else 0, int(dec[1]) if dec else 0,
                           m.group(4) == "True", seconds, source))
    return out


def steps_from_csv(path: str) -> list[StepRow]:
    """Rows of a steps CSV; several prefill sequences are split evenly (the CSV keeps only their sums)."""
    def parse(r: dict) -> StepRow:
        n = _count(r, "prefill_seqs", lo=0)
        prefill = tuple((_count(r, "prefill_tokens", 0) // n, _count(r, "cached_before", 0) // n) for _ in range(n))
        return StepRow(r["scenario"], prefill, _count(r, "decode_seqs", 0), _count(r, "decode_context", 0),
                       r["graph"] == "True", _ms_to_seconds(r["time_ms_median"], "time_ms_median"),
                       os.path.basename(path))
    return _csv_rows(path, "steps", parse)


def read_meta(path: str) -> dict:
    """meta.json: a JSON object (errors name the file)."""
    try:
        with open(path) as f:
            meta = json.load(f)
    except ValueError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: must hold a JSON object, got {type(meta).__name__}")
    return meta


def read_profile(folder: str) -> GPUProfile:
    p = GPUProfile(os.path.basename(os.path.normpath(folder)), folder)
    for path in sorted(glob.glob(os.path.join(folder, "*_mlp.csv")) + glob.glob(os.path.join(folder, "*_linear*.csv"))):
        p.layers += read_layer_file(path)
    if os.path.exists(os.path.join(folder, "attention.csv")):
        p.attention = read_attention(os.path.join(folder, "attention.csv"))
    meta_path = os.path.join(folder, "meta.json")
    if os.path.exists(meta_path):
        p.meta = read_meta(meta_path)
        p.steps = steps_from_meta(p.meta, meta_path)
    if not p.steps:
        for path in sorted(glob.glob(os.path.join(folder, "steps*.csv"))):
            p.steps += steps_from_csv(path)
    return p


def read_profiles(root: str) -> dict[str, GPUProfile]:
    """Every GPU folder under `root` (or `root` itself when it holds measurement files)."""
    if not os.path.isdir(root):
        raise ValueError(f"{root}: not a folder of GPU measurements")
    folders = [root] if glob.glob(os.path.join(root, "*.csv")) else \
        sorted(d for d in glob.glob(os.path.join(root, "*"))
               if os.path.isdir(d) and glob.glob(os.path.join(d, "*.csv")))
    if not folders:
        raise ValueError(f"{root}: no measurement CSV files (expected <gpu>/*_mlp.csv, attention.csv, ...)")
    profiles = {}
    for d in folders:
        p = read_profile(d)
        profiles[p.gpu] = p
    return profiles
