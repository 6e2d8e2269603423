"""Residuals of a GPUSpec against a folder of measurements: linear layers, attention kernels, whole steps.

Linear layers are compared per layer (the four GEMMs summed) at every measured token count. A GEMM time that
is more than 15% above the time of the same GEMM at a LARGER token count is a cuBLAS heuristic outlier (a poor
kernel choice for that exact shape, e.g. M=448 for Llama-3-8B's gate+up on H100 and H200): no smooth model of
the hardware predicts it, so it is left out of the fit and of the stated residuals, and counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .gpu_profiles import GPUProfile, LayerRow, StepRow
from .gpu_spec import GPUSpec
from .model_spec import ModelSpec, get_model
from .roofline import decode_attention_time, gemm_time, prefill_attention_time
from .step_time import RooflineStepTime

OUTLIER_RATIO = 1.15
LINEAR_MIN_TOKENS = 64


def linear_outliers(rows: list[LayerRow], times: np.ndarray) -> np.ndarray:
    """[rows, 4] booleans: GEMM times above OUTLIER_RATIO x the fastest time of that GEMM at a larger batch."""
    out = np.zeros(times.shape, dtype=bool)
    groups: dict[tuple, list[int]] = {}
    for i, r in enumerate(rows):
        groups.setdefault((r.source, r.heads, r.kv_heads, r.hidden, r.intermediate), []).append(i)
    for idx in groups.values():
        idx.sort(key=lambda i: rows[i].tokens)
        for j in range(times.shape[1]):
            t = times[idx, j]
            later_min = np.minimum.accumulate(t[::-1])[::-1]
            for a in range(len(idx) - 1):
                if rows[idx[a]].tokens < rows[idx[a + 1]].tokens and t[a] > OUTLIER_RATIO * later_min[a + 1]:
                    out[idx[a], j] = True
    return out


def linear_arrays(p: GPUProfile):
    """The layer rows with linear ops, their token counts, [rows, 4, (N, K)] GEMM shapes and [rows, 4] times."""
    rows = [r for r in p.layers if all(op in r.ops for op in ("attn_pre_proj", "mlp_down_proj"))]
    shapes = np.array([[((r.heads + 2 * r.kv_heads) * (r.hidden // r.heads), r.hidden), (r.hidden, r.hidden),
                        ((2 if r.gated else 1) * r.intermediate, r.hidden), (r.hidden, r.intermediate)]
                       for r in rows], dtype=float)
    tokens = np.array([r.tokens for r in rows], dtype=float)
    times = np.array([[r.ops[op] for op in ("attn_pre_proj", "attn_post_proj", "mlp_up_proj", "mlp_down_proj")]
                      for r in rows])
    return rows, tokens, shapes, times


def attention_heads(p: GPUProfile) -> tuple[int, int, int]:
    part3 = p.meta.get("part3", {})
    return int(part3.get("heads", 32)), int(part3.get("kv_heads", 8)), int(part3.get("head_dim", 128))


def attention_arrays(p: GPUProfile):
    """((tokens, causal pairs, cached pairs, chunk rows, heads*head_dim), seconds) for prefill rows and
    ((seqs, kv_heads, KV bytes), seconds) for decode rows; None where the table has no such rows."""
    h, kvh, d = attention_heads(p)
    pre = [a for a in p.attention if a.kind in ("prefill", "prefill_chunk")]
    dec = [a for a in p.attention if a.kind == "decode"]
    out_pre = out_dec = None
    if pre:
        b, q, kv = (np.array([getattr(a, f) for a in pre], dtype=float) for f in ("batch", "q_len", "kv_len"))
        out_pre = ((b * q, b * q * (q + 1) / 2, b * q * (kv - q), np.where(kv > q, b * q, 0.0), np.full(len(pre), float(h * d))),
                   np.array([a.seconds for a in pre]))
    if dec:
        b, kv = (np.array([getattr(a, f) for a in dec], dtype=float) for f in ("batch", "kv_len"))
        out_dec = ((b, np.full(len(dec), float(kvh)), b * kv * 2 * kvh * d * 2), np.array([a.seconds for a in dec]))
    return out_pre, out_dec


def step_model_for(p: GPUProfile, g: GPUSpec, elementwise: str = "torch") -> RooflineStepTime:
    """The model of the measured whole steps (meta.json part4's shape; Llama-3-8B by default)."""
    m = p.meta.get("part4", {}).get("model")
    spec = ModelSpec(m["name"], layers=m["layers"], hidden=m["hidden"], heads=m["heads"], kv_heads=m["kv_heads"],
                     intermediate=m["inter"], vocab=m["vocab"]) if m else get_model("llama-3-8b")
    return RooflineStepTime(spec, g, elementwise=elementwise if g.torch_elementwise else "fused")


def step_forward(st, s: StepRow, graph: bool | None = None) -> float:
    """The model's forward time for a measured step (its chunks, decodes, graph/eager mode; from an idle GPU)."""
    p_tokens = sum(c for c, _ in s.prefill)
    attn2 = sum(c * (k + (c + 1) / 2) for c, k in s.prefill)
    cached = sum(k for _, k in s.prefill)
    return st.forward_time(p_tokens, attn2, s.decode_seqs, cached + s.decode_seqs * s.decode_context, len(s.prefill),
                           prefill_cached_tokens=cached, graph=s.graph if graph is None else graph, from_idle=True)


@dataclass
class Residuals:
    summary: dict = field(default_factory=dict)
    linear: list = field(default_factory=list)
    """(source, tokens, relative error of the per-layer sum, outlier GEMMs left out)"""
    attention: list = field(default_factory=list)
    """(kind, batch, q_len, kv_len, measured s, relative error)"""
    steps: list = field(default_factory=list)
    """(StepRow, predicted s, relative error, eager CPU bound)"""


def _stat(errs, fn) -> float:
    return float(fn(np.abs(errs))) if len(errs) else float("nan")


def residuals(p: GPUProfile, g: GPUSpec) -> Residuals:
    r = Residuals()
    rows, tokens, shapes, times = linear_arrays(p)
    if rows:
        keep = ~linear_outliers(rows, times)
        pred = np.stack([gemm_time(g, tokens, shapes[:, j, 0], shapes[:, j, 1], isolated=True) for j in range(4)], 1)
        err = np.where(keep, pred, 0).sum(1) / np.where(keep, times, 0).sum(1) - 1
        r.linear = [(x.source, x.tokens, float(e), int((~k).sum())) for x, e, k in zip(rows, err, keep)]
        big = tokens >= LINEAR_MIN_TOKENS
        r.summary.update({"linear mean |err|": _stat(err, np.mean), "linear max |err| (>= 64 tokens)":
                          _stat(err[big], np.max), "linear outlier GEMMs left out": int((~keep).sum())})
    h, kvh, d = attention_heads(p)
    errs = {"prefill": [], "prefill_chunk": [], "decode": []}
    for a in p.attention:
        if a.kind == "decode":
            t = decode_attention_time(g, kvh, d, a.batch, a.batch * a.kv_len)
        else:
            t = prefill_attention_time(g, h, d, a.batch * a.q_len, a.batch * a.q_len * (a.q_len + 1) / 2,
                                       a.batch * a.q_len * (a.kv_len - a.q_len),
                                       a.batch * a.q_len if a.kv_len > a.q_len else 0)
        e = t / a.seconds - 1
        errs.setdefault(a.kind, []).append(e)
        r.attention.append((a.kind, a.batch, a.q_len, a.kv_len, a.seconds, float(e)))
    for kind, es in errs.items():
        if es:
            r.summary[f"attention {kind} mean |err|"] = _stat(es, np.mean)
            r.summary[f"attention {kind} max |err|"] = _stat(es, np.max)
    if p.steps:
        st = step_model_for(p, g)
        for s in p.steps:
            t = step_forward(st, s)
            cpu_bound = (not s.graph) and st.model.layers * g.eager_layer_s >= 0.8 * step_forward(st, s, graph=True)
            r.steps.append((s, t, t / s.seconds - 1, cpu_bound))
        gpu = [e for s, _, e, cpu in r.steps if not cpu]
        cpu = [e for s, _, e, c in r.steps if c]
        r.summary.update({"steps mean |err|": _stat([e for *_, e, _ in r.steps], np.mean),
                          "steps max |err| (GPU bound)": _stat(gpu, np.max)})
        if cpu:
            r.summary["steps max |err| (eager, CPU launch bound)"] = _stat(cpu, np.max)
    return r
