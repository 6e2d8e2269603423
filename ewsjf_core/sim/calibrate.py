"""Fit a GPU's device parameters (GPUSpec) to a folder of measurements, and report the residuals.

    ewsjf calibrate DIR             # fit every GPU folder under DIR (same as python -m ewsjf_core.sim.calibrate)
    ewsjf calibrate DIR --write     # and rewrite ewsjf_core/sim/gpu_presets.py with the fit
    ewsjf calibrate DIR --check     # residuals of the current presets, no fit

The fits are over kernels, shared by every model shape in the folder (a few parameters per GPU, not per row):
GEMMs from the per-layer linear ops, element-wise bandwidth from the residual add, attention from the fastest
kernel per measured shape; the sustained GEMM rate is the script's long 8192^3 matmul (meta.json). Whole forward
steps (meta.json part4 / steps*.csv) check the result end to end (their element-wise ops are the script's
unfused torch ops: elementwise="torch"); only two things are fitted on them: the time constant of the clock's
fall from burst to sustained (on CUDA-graph steps with a prefill, the H100 grid; a GPU without such steps
borrows it) and the CPU launch time of an eager forward (the script's eager rows; vLLM runs CUDA graphs).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import replace

import numpy as np
from scipy.optimize import least_squares, minimize_scalar, nnls

from .fit_checks import attention_arrays, linear_arrays, linear_outliers, residuals, step_forward, step_model_for
from .gpu_profiles import GPUProfile, positive_number, read_profiles
from .preset_writer import write_presets
from .gpu_presets import GPU_PRESETS
from .gpu_spec import GPUSpec, get_gpu, gpu_key
from .roofline import gemm_time, torch_op_elements

_GEMM_FIELDS = ("gemm_kernel_s", "gemm_flops", "gemm_bandwidth", "gemm_smooth_p", "gemm_droop_flops")
_GEMM_SCALE = (1e-6, 1e12, 1e12, 1.0, 1e12)


def fit_gemm(p: GPUProfile, g: GPUSpec) -> GPUSpec:
    """GEMM parameters from the per-layer sums of the four linear ops, cuBLAS outliers left out. The loss is the
    4th power of the log error: the target is a bound on every row, so the worst rows weigh more than in L2."""
    rows, tokens, shapes, times = linear_arrays(p)
    if not rows:
        return g
    keep = ~linear_outliers(rows, times)
    measured = np.where(keep, times, 0.0).sum(1)

    def err(x):
        gg = replace(g, **{f: v * s for f, v, s in zip(_GEMM_FIELDS, x, _GEMM_SCALE)})
        t = sum(np.where(keep[:, j], gemm_time(gg, tokens, shapes[:, j, 0], shapes[:, j, 1], isolated=True), 0.0)
                for j in range(4))
        e = np.log(t / measured)
        return e * np.abs(e)  # squared by least_squares: sum of e^4

    x0 = [4.0, 0.7 * g.peak_flops / 1e12, 0.8 * g.hbm_bandwidth / 1e12, 3.0, 50.0]
    res = least_squares(err, x0, bounds=([0, 10, 0.1, 1.0, 1.0], [50, 5000, 20, 12, 1e6]), x_scale="jac")
    g = replace(g, **{f: float(v * s) for f, v, s in zip(_GEMM_FIELDS, res.x, _GEMM_SCALE)})
    # the sustained rate: the script's long back-to-back matmul (meta.json), where measured
    sustained = _sustained_tflops(p)
    return replace(g, gemm_sustained_flops=min(sustained * 1e12, g.gemm_flops) if sustained else g.gemm_flops)


def _sustained_tflops(p: GPUProfile) -> float | None:
    """meta.json's matmul_bf16.tflops_median (a finite number > 0), or None where not measured."""
    matmul = p.meta.get("matmul_bf16")
    if matmul is None:
        return None
    if not isinstance(matmul, dict):
        raise ValueError(f"{p.folder}/meta.json: matmul_bf16 must be an object, got {matmul!r}")
    value = matmul.get("tflops_median")
    return None if value is None else positive_number(value, f"{p.folder}/meta.json: matmul_bf16.tflops_median")


def _relative_nnls(a: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Non-negative coefficients minimising the relative error of a @ x against t."""
    scale = a.max(0)
    scale[scale == 0] = 1.0
    x, _ = nnls(a / t[:, None] / scale, np.ones(len(t)))
    return x / scale


def _torch_elements(r) -> dict[str, int]:
    return torch_op_elements(r.hidden, r.heads, r.kv_heads, r.hidden // r.heads, r.intermediate, r.gated)


def fit_elementwise(p: GPUProfile, g: GPUSpec) -> GPUSpec:
    """Fused kernels: fixed time and bandwidth from the residual add (one pass: read 2, write 1). The script's
    unfused torch ops: each op's fixed time and byte multiplier at that bandwidth."""
    adds = [r for r in p.layers if "add" in r.ops]
    if not adds:
        return g
    b = np.array([3.0 * 2 * r.hidden * r.tokens for r in adds])
    t = np.array([r.ops["add"] for r in adds])
    # bandwidth from adds far larger than L2 (smaller ones re-read their inputs from L2), fixed time from small ones
    l2 = float(p.meta.get("device", {}).get("L2_cache_size") or 50e6)
    big, small = b >= 2 * l2, b <= l2 / 8
    if big.sum() < 2 or not small.any():
        raise ValueError(f"{p.folder}: too few 'add' rows to fit the element-wise bandwidth")
    _, inv_bw = _relative_nnls(np.stack([np.ones(big.sum()), b[big]], 1), t[big])
    k = float(np.median(t[small] - b[small] * inv_bw))
    g = replace(g, elem_kernel_s=max(k, 0.0), elem_bandwidth=float(1.0 / inv_bw))
    columns = {"rms_norm": ("input_layernorm", "post_attention_layernorm"), "attn_rope": ("attn_rope",),
               "mlp_act": ("mlp_act",), "add": ("add",)}
    if not all(any(c in r.ops for r in p.layers) for c in ("attn_rope", "mlp_act", "input_layernorm")):
        return g
    ops = []
    for op, cols in columns.items():
        pts = [(2.0 * _torch_elements(r)[op] * r.tokens / g.elem_bandwidth, r.ops[c])
               for r in p.layers for c in cols if c in r.ops]
        x, y = np.array(pts).T
        fixed, mult = _relative_nnls(np.stack([np.ones_like(x), x], 1), y)
        ops.append((op, float(fixed), float(mult)))
    return replace(g, torch_elementwise=tuple(ops))


def fit_attention(p: GPUProfile, g: GPUSpec) -> GPUSpec:
    """Prefill: fixed + per query row + causal FLOPs + cached FLOPs; decode: fixed + per sequence + KV bytes."""
    pre, dec = attention_arrays(p)
    if pre is not None:
        (tokens, causal, cached, chunk_rows, hd), t = pre
        a = np.stack([np.ones_like(t), tokens * hd, 4 * hd * causal, 4 * hd * cached, chunk_rows * hd], 1)
        k, row, inv_f, inv_fc, chunk_row = _relative_nnls(a, t)
        g = replace(g, attn_kernel_s=float(k), attn_row_s=float(row), attn_flops=float(1 / max(inv_f, 1e-18)),
                    attn_chunk_row_s=float(chunk_row),
                    attn_chunk_flops=float(1 / max(inv_fc, 1e-18)) if inv_fc > 0 else float(1 / max(inv_f, 1e-18)))
    if dec is not None:
        (seqs, kvh, kv_bytes), t = dec
        k, per_seq, inv_bw = _relative_nnls(np.stack([np.ones_like(t), seqs * kvh, kv_bytes], 1), t)
        g = replace(g, decode_kernel_s=float(k), decode_seq_s=float(per_seq), decode_bandwidth=float(1 / inv_bw))
    return g


def fit_eager(p: GPUProfile, g: GPUSpec) -> GPUSpec:
    """An eager forward overlaps CPU launches with GPU work: time = (gpu^q + cpu^q)^(1/q), cpu = layers x
    eager_layer_s. Both fitted to the eager steps (the calibration script's; vLLM runs CUDA graphs)."""
    rows = [s for s in p.steps if not s.graph]
    if len(rows) < 3 or not g.torch_elementwise:
        return g
    st = step_model_for(p, g)
    gpu = np.array([step_forward(st, s, graph=True) for s in rows])
    t = np.array([s.seconds for s in rows])
    layers = st.model.layers

    def err(x):
        cpu, q = layers * x[0] * 1e-6, x[1]
        return np.log((gpu ** q + cpu ** q) ** (1 / q) / t)

    x0 = [float(np.median(t / layers)) * 1e6, 4.0]
    res = least_squares(err, x0, bounds=([1.0, 1.0], [1e5, 50.0]))
    return replace(g, eager_layer_s=float(res.x[0] * 1e-6), eager_smooth_p=float(res.x[1]))


def fit_power_tau(p: GPUProfile, g: GPUSpec) -> GPUSpec:
    """The clock's burst-to-sustained time constant, from whole steps run as CUDA graphs with a prefill (the
    compute-bound ones); unchanged when fewer than 4 such steps were measured."""
    rows = [s for s in p.steps if s.graph and s.prefill]
    if len(rows) < 4 or g.gemm_sustained_flops >= g.gemm_flops or not g.torch_elementwise:
        return g

    def err(log_tau: float) -> float:
        st = step_model_for(p, replace(g, power_tau_s=float(np.exp(log_tau))))
        return float(np.mean([abs(np.log(step_forward(st, s) / s.seconds)) for s in rows]))

    res = minimize_scalar(err, bounds=(np.log(1e-3), np.log(10.0)), method="bounded")
    return replace(g, power_tau_s=float(np.exp(res.x)))


def fit_profile(p: GPUProfile, base: GPUSpec, attention_from: GPUSpec | None = None) -> GPUSpec:
    g = fit_elementwise(p, fit_gemm(p, base))
    parts = ["linear", "element-wise"] if p.layers else []
    if p.attention:
        g = fit_attention(p, g)
        parts.append("attention")
    elif attention_from is not None:  # no attention measurements: scale another GPU's fit by FLOP/s and bandwidth
        fr, br = g.gemm_flops / attention_from.gemm_flops, g.gemm_bandwidth / attention_from.gemm_bandwidth
        a = attention_from
        g = replace(g, attn_kernel_s=a.attn_kernel_s, attn_row_s=a.attn_row_s / fr, attn_flops=a.attn_flops * fr,
                    attn_chunk_row_s=a.attn_chunk_row_s / fr,
                    attn_chunk_flops=a.attn_chunk_flops * fr, decode_kernel_s=a.decode_kernel_s,
                    decode_seq_s=a.decode_seq_s, decode_bandwidth=a.decode_bandwidth * br)
    g = fit_power_tau(p, g)
    if not g.power_tau_s and attention_from is not None and g.gemm_sustained_flops < g.gemm_flops:
        g = replace(g, power_tau_s=attention_from.power_tau_s)
    g = fit_eager(p, g)
    text = f"fitted to {p.gpu}/ measurements: {', '.join(parts) or 'nothing'}"
    if not p.attention:
        text += f"; attention NOT measured (scaled from {attention_from.name})" if attention_from else \
            "; attention NOT measured (assumed)"
    g = replace(g, calibrated=bool(p.layers), calibration=text)
    return replace(g, residuals=tuple((k, round(float(v), 4)) for k, v in residuals(p, g).summary.items()))


def fit_all(root: str) -> dict[str, GPUSpec]:
    """Fit every GPU folder under root; folders without attention get it scaled from a fitted H100/H200."""
    profiles = {gpu_key(k): v for k, v in read_profiles(root).items()}
    unknown = [k for k in profiles if k not in GPU_PRESETS]
    if unknown:
        raise ValueError(f"GPU folder(s) {', '.join(unknown)}: no preset with its datasheet figures; add one to "
                         f"ewsjf_core/sim/gpu_presets.py (name, peak bf16 FLOP/s, HBM bytes/s, memory bytes) first")
    # measured attention first, then the most whole steps: others borrow what they lack from the first fit
    order = sorted(profiles, key=lambda k: (not profiles[k].attention, -len(profiles[k].steps)))
    out: dict[str, GPUSpec] = {}
    for key in order:
        ref = next((v for v in out.values() if "attention" in v.calibration and "NOT" not in v.calibration), None)
        out[key] = fit_profile(profiles[key], GPU_PRESETS[key].datasheet(), attention_from=ref)
    return out


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("folder", help="measurements: DIR/<gpu>/{*_mlp.csv, attention.csv, meta.json, steps*.csv}")
    ap.add_argument("--write", action="store_true", help="rewrite ewsjf_core/sim/gpu_presets.py with the fit")
    ap.add_argument("--check", action="store_true", help="no fit: residuals of the current presets")
    ap.add_argument("--rows", action="store_true", help="print every whole-step row")


def run(args: argparse.Namespace) -> int:
    from .calibration_report import print_report

    try:
        profiles = {gpu_key(k): v for k, v in read_profiles(args.folder).items()}
        specs = {k: get_gpu(k) for k in profiles} if args.check else fit_all(args.folder)
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
    for key, g in specs.items():
        print_report(key, g, residuals(profiles[key], g), rows=args.rows)
    if args.write:
        path = os.path.join(os.path.dirname(__file__), "gpu_presets.py")
        write_presets(specs, path, f"python -m ewsjf_core.sim.calibrate {args.folder} --write")
        print(f"wrote {path}")
    elif not args.check:   # the fit is used by naming the folder (ewsjf_core.sim.measured_gpu)
        print("replay on a fit without rewriting the presets: ewsjf bench --gpu FOLDER (or --suite-gpu FOLDER), "
              f"FOLDER one of {', '.join(p.folder for p in profiles.values())}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ewsjf_core.sim.calibrate", description=__doc__.split("\n")[0])
    add_arguments(ap)
    return run(ap.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
