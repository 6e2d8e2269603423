"""Writes ewsjf_core/sim/gpu_presets.py from fitted GPUSpecs (what `ewsjf calibrate DIR --write` does)."""

from __future__ import annotations

from .gpu_presets import GPU_PRESETS
from .gpu_spec import GPUSpec

_PRESET_FIELDS = ("gemm_flops", "gemm_sustained_flops", "gemm_bandwidth", "gemm_kernel_s", "gemm_smooth_p",
                  "gemm_min_rows", "gemm_tile_rows", "gemm_droop_flops", "power_tau_s", "elem_bandwidth",
                  "elem_kernel_s", "attn_kernel_s", "attn_row_s", "attn_flops", "attn_chunk_flops", "attn_chunk_row_s",
                  "decode_kernel_s", "decode_seq_s", "decode_bandwidth", "eager_layer_s", "eager_smooth_p")


def _num(v: float) -> str:
    return "0" if abs(v) < 1e-15 else f"{v:.5g}"


def preset_source(key: str, g: GPUSpec) -> str:
    args = [repr(g.name), f"{g.peak_flops:.4g}", f"{g.hbm_bandwidth:.4g}", f"{g.memory_bytes:.4g}"]
    args += [f"{f}={_num(getattr(g, f))}" for f in _PRESET_FIELDS]
    elementwise = tuple((o, float(f"{a:.4g}"), float(f"{b:.4g}")) for o, a, b in g.torch_elementwise)
    args += [f"torch_elementwise={elementwise!r}",
             f"calibrated={g.calibrated}", f"calibration={g.calibration!r}", f"residuals={g.residuals!r}"]
    return f"    {key!r}: GPUSpec(\n        " + ",\n        ".join(args) + "),\n"


def write_presets(specs: dict[str, GPUSpec], path: str, command: str) -> None:
    """Rewrite gpu_presets.py: the fitted specs, and every other preset as it was."""
    merged = dict(GPU_PRESETS)
    merged.update(specs)
    body = "".join(preset_source(k, merged[k]) if k in specs else
                   f"    {k!r}: {merged[k]!r},\n" for k in merged)
    with open(path, "w") as f:
        f.write(f'"""GPU presets: datasheet figures and device parameters fitted by\n\n    {command}\n\n'
                '(re-run it rather than editing by hand; '
                'ewsjf_core/sim/README.md, "Step-time model and GPU calibration")."""\n\n'
                "from __future__ import annotations\n\nfrom .gpu_spec import GPUSpec\n\n"
                f"GPU_PRESETS: dict[str, GPUSpec] = {{\n{body}}}\n")
