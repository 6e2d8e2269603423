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


def _op_seconds(row: dict, op: str) -> float | None:
    for key in (f"time_stats.{op}.median", f"{op}_median_ms"):
        v = row.get(key)
        if v not in (None, ""):
            return float(v) * 1e-3
    return None


def read_layer_file(path: str) -> list[LayerRow]:
    rows = []
    with open(path, newline="") as f:
        for line, r in enumerate(csv.DictReader(f), start=2):
            if int(r.get("num_tensor_parallel_workers") or 1) != 1:
                continue
            try:
                ops = {op: t for op in LINEAR_OPS + ELEMENTWISE_OPS if (t := _op_seconds(r, op)) is not None}
                rows.append(LayerRow(os.path.basename(path), int(r["n_head"]), int(r["n_kv_head"]), int(r["n_embd"]),
                                     int(r["n_expanded_embd"]), str(r.get("use_gated_mlp", "True")) == "True",
                                     int(r["num_tokens"]), ops))
            except (KeyError, ValueError) as e:
                raise ValueError(f"{path}:{line}: bad layer row ({e})") from None
    return rows


def read_attention(path: str) -> list[AttentionRow]:
    best: dict[tuple, AttentionRow] = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            a = AttentionRow(r["kind"], int(r["batch"]), int(r["q_len"]), int(r["kv_len"]),
                             float(r["time_ms_median"]) * 1e-3, r.get("backend", ""))
            key = (a.kind, a.batch, a.q_len, a.kv_len)
            if key not in best or a.seconds < best[key].seconds:
                best[key] = a
    return list(best.values())


_SCENARIO = re.compile(r"^(\w+) prefill=(\[.*?\]) decode=(None|\(\d+, \d+\)) graph=(True|False)$")


def steps_from_meta(meta: dict, source: str) -> list[StepRow]:
    out = []
    for s in meta.get("part4", {}).get("scenarios", []):
        m = _SCENARIO.match(s.get("scenario", ""))
        if not m or "median_ms" not in s or "graph_error" in s:
            continue
        prefill = tuple((int(c), int(k)) for c, k in re.findall(r"\((\d+), (\d+)\)", m.group(2)))
        dec = re.findall(r"\d+", m.group(3))
        out.append(StepRow(m.group(1), prefill, int(dec[0]) if dec else 0, int(dec[1]) if dec else 0,
                           m.group(4) == "True", float(s["median_ms"]) * 1e-3, source))
    return out


def steps_from_csv(path: str) -> list[StepRow]:
    """Rows of a steps CSV; several prefill sequences are split evenly (the CSV keeps only their sums)."""
    out = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            n = int(r["prefill_seqs"])
            prefill = tuple((int(r["prefill_tokens"]) // n, int(r["cached_before"]) // n) for _ in range(n))
            out.append(StepRow(r["scenario"], prefill, int(r["decode_seqs"]), int(r["decode_context"]),
                               r["graph"] == "True", float(r["time_ms_median"]) * 1e-3, os.path.basename(path)))
    return out


def read_profile(folder: str) -> GPUProfile:
    p = GPUProfile(os.path.basename(os.path.normpath(folder)), folder)
    for path in sorted(glob.glob(os.path.join(folder, "*_mlp.csv")) + glob.glob(os.path.join(folder, "*_linear*.csv"))):
        p.layers += read_layer_file(path)
    if os.path.exists(os.path.join(folder, "attention.csv")):
        p.attention = read_attention(os.path.join(folder, "attention.csv"))
    meta_path = os.path.join(folder, "meta.json")
    if os.path.exists(meta_path):
        with open(meta_path) as f:
            p.meta = json.load(f)
        p.steps = steps_from_meta(p.meta, "meta.json")
    if not p.steps:
        for path in sorted(glob.glob(os.path.join(folder, "steps*.csv"))):
            p.steps += steps_from_csv(path)
    return p


def read_profiles(root: str) -> dict[str, GPUProfile]:
    """Every GPU folder under `root` (or `root` itself when it holds measurement files)."""
    if not os.path.isdir(root):
        raise ValueError(f"{root}: not a folder of GPU measurements")
    folders = [root] if glob.glob(os.path.join(root, "*.csv")) else \
        sorted(d for d in glob.glob(os.path.join(root, "*")) if os.path.isdir(d) and glob.glob(os.path.join(d, "*.csv")))
    if not folders:
        raise ValueError(f"{root}: no measurement CSV files (expected <gpu>/*_mlp.csv, attention.csv, ...)")
    profiles = {}
    for d in folders:
        p = read_profile(d)
        profiles[p.gpu] = p
    return profiles
