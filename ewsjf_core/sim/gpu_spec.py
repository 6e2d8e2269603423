"""A GPU as the step-time model sees it: a few device parameters measured or fitted per GPU, shared by every model.

The parameters describe kernels, not models (ewsjf_core/sim/roofline.py turns them into kernel times):
- GEMMs (linear layers): a rounded roofline between the achieved FLOP/s plateau and the bandwidth of operand
  reads, plus a fixed time per kernel; compute counts the token rows rounded up to whole tiles
  (`gemm_tile_rows`), at least `gemm_min_rows`. Isolated GEMMs run at the burst clock and droop on long kernels
  (`gemm_droop_flops`); back-to-back in a forward pass the GPU runs at its power-limited sustained rate.
- Element-wise kernels (vLLM's fused norm+residual, rotary, SiLU-and-mul, KV-cache write): bytes moved at the
  measured element-wise bandwidth plus a fixed time per kernel.
- Attention: prefill costs a fixed time, a per-query-row term and its FLOPs at an achieved rate (causal chunks
  without cached context, and chunks after cached tokens, each their own rate); decode reads the KV cache at an
  achieved bandwidth, plus a fixed time and a per-sequence term.
The H100/H200/A100 presets were fitted by `ewsjf calibrate tests/ewsjf_core/sim/data/gpu_profiles` (see
README.md here, "Step-time model and GPU calibration"); `calibration` states what was fitted and the residuals.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class GPUSpec:
    name: str
    peak_flops: float
    """Datasheet dense bf16 tensor-core FLOP/s (no sparsity); informational."""
    hbm_bandwidth: float
    """Datasheet HBM bytes per second; informational."""
    memory_bytes: float
    gemm_flops: float = 0.0
    """Achieved bf16 GEMM FLOP/s on large GEMMs (0: 72% of peak_flops)."""
    gemm_bandwidth: float = 0.0
    """Achieved bytes/s of a GEMM's operand reads at small batch (0: 76% of hbm_bandwidth)."""
    gemm_kernel_s: float = 4e-6
    gemm_smooth_p: float = 2.5
    """Roofline knee: time = (compute^p + memory^p)^(1/p)."""
    gemm_min_rows: float = 64.0
    gemm_tile_rows: float = 64.0
    """Token rows of a GEMM tile: compute counts rows rounded up to a multiple of this."""
    gemm_droop_flops: float = 1e14
    """An isolated GEMM's compute time grows by FLOPs / gemm_droop_flops (its clock droops on long kernels)."""
    gemm_sustained_flops: float = 0.0
    """GEMM FLOP/s under continuous load (the power-limited clock of a busy GPU; 0: gemm_flops). The kernel
    measurements (short bursts from idle) run at the burst clock; gemm_sustained_flops / gemm_flops scales every
    compute-bound rate (GEMMs, prefill attention) of a busy GPU."""
    power_tau_s: float = 0.0
    """Time constant of the clock's fall from burst to sustained when a forward starts on an idle GPU (only used
    to compare with measurements that start each step from idle; 0: sustained from the start)."""
    elem_bandwidth: float = 0.0
    """Element-wise kernels' bytes/s (0: 76% of hbm_bandwidth)."""
    elem_kernel_s: float = 2e-6
    attn_kernel_s: float = 6e-6
    """Prefill attention: fixed time per layer."""
    attn_row_s: float = 0.0
    """Prefill attention: seconds per query token per (head x head_dim) unit."""
    attn_flops: float = 0.0
    """Prefill attention FLOP/s for causal chunks with nothing cached before (0: 50% of peak_flops)."""
    attn_chunk_flops: float = 0.0
    """Prefill attention FLOP/s for the part of a chunk that attends to cached tokens (0: attn_flops)."""
    attn_chunk_row_s: float = 0.0
    """Prefill attention: extra seconds per query token per (head x head_dim) unit of a chunk after cached tokens
    (the measured kernels for that case, FlashAttention-2 with a lower-right mask or cuDNN with an explicit mask,
    pay a per-row cost that causal FlashAttention does not)."""
    decode_kernel_s: float = 6e-6
    decode_seq_s: float = 0.0
    """Decode attention: seconds per sequence per KV head."""
    decode_bandwidth: float = 0.0
    """Decode attention: bytes/s of KV-cache reads (0: 76% of hbm_bandwidth)."""
    eager_layer_s: float = 0.0
    """CPU time per layer when a forward runs eagerly (torch launches, no CUDA graph); only used to compare with
    eager measurements of the calibration script, 0 when unknown."""
    eager_smooth_p: float = 4.0
    """Overlap of CPU launches and GPU work in an eager forward: time = (gpu^q + cpu^q)^(1/q)."""
    torch_elementwise: tuple[tuple[str, float, float], ...] = ()
    """The calibration script's unfused torch element-wise ops: (op, fixed seconds, bytes multiplier over one
    fused pass). Only for comparing with its whole-step measurements (vLLM runs fused kernels)."""
    step_overhead_s: float = 1.5e-3
    """Fixed time per engine step outside the forward: scheduling, input preparation, sampling (assumption)."""
    per_seq_overhead_s: float = 5e-6
    """Extra time per sequence in the step outside the forward (assumption)."""
    calibrated: bool = False
    calibration: str = "not calibrated: efficiencies assumed"
    residuals: tuple[tuple[str, float], ...] = field(default=(), compare=False)
    """(what, value) pairs the calibration reported, e.g. ("linear layer mean |err|", 0.018)."""

    def datasheet(self) -> "GPUSpec":
        """Only the name and datasheet figures (every fitted parameter at its default): a fit's starting point."""
        return GPUSpec(self.name, self.peak_flops, self.hbm_bandwidth, self.memory_bytes)

    def __post_init__(self) -> None:
        for f in ("peak_flops", "hbm_bandwidth", "memory_bytes"):
            if not getattr(self, f) > 0:
                raise ValueError(f"GPUSpec {self.name!r}: {f} must be > 0")
        defaults = {"gemm_flops": 0.72 * self.peak_flops, "gemm_bandwidth": 0.76 * self.hbm_bandwidth,
                    "elem_bandwidth": 0.76 * self.hbm_bandwidth, "attn_flops": 0.5 * self.peak_flops,
                    "decode_bandwidth": 0.76 * self.hbm_bandwidth}
        for f, v in defaults.items():
            if not getattr(self, f):
                object.__setattr__(self, f, v)
        if not self.gemm_sustained_flops:
            object.__setattr__(self, "gemm_sustained_flops", self.gemm_flops)
        if not self.attn_chunk_flops:
            object.__setattr__(self, "attn_chunk_flops", self.attn_flops)
        if self.gemm_smooth_p < 1:
            raise ValueError(f"GPUSpec {self.name!r}: gemm_smooth_p must be >= 1")


_ALIASES = {"a100": "a100-80gb", "h100": "h100-80gb", "h200-141gb": "h200"}


def gpu_key(name: str) -> str:
    """The preset key of a GPU name or alias (a100 -> a100-80gb); unknown names come back normalised."""
    key = str(name).lower().replace("_", "-")
    return _ALIASES.get(key, key)


def get_gpu(name: str | GPUSpec) -> GPUSpec:
    from .gpu_presets import GPU_PRESETS
    from .measured_gpu import is_measurement_folder, measured_gpu

    if isinstance(name, GPUSpec):
        return name
    if is_measurement_folder(name):
        return measured_gpu(name)
    key = gpu_key(name)
    if key not in GPU_PRESETS:
        raise ValueError(f"unknown GPU {name!r}: use one of {', '.join(GPU_PRESETS)}, or a folder of measurements")
    return GPU_PRESETS[key]
