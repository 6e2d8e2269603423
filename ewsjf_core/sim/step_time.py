"""How long one engine step takes on a GPU: a roofline model from the model's shape and the GPU's specs.

One engine step runs one forward pass over a batch that mixes prefill chunks and decode tokens. Its time
is modelled as the sum of four parts (all per step, single GPU, no tensor parallelism):

1. Linear layers (QKV, output projection, gated MLP in every layer, plus the LM head for one token per
   sequence). FLOPs F = 2 * T * (linear params) with T the batch's tokens; bytes W = the weights read once.
   Time = smooth_max(F / (peak * compute_eff), W / (bandwidth * memory_eff)), where
   smooth_max(a, b) = (a^p + b^p)^(1/p) with p = 2: a roofline whose knee is rounded, as measured GPUs
   show (small batches are weight-read bound, large ones compute bound).
2. Element-wise layer work (norms, rotary embedding, activation, residual adds): memory traffic of
   ELEMENTWISE_BYTES(hidden, intermediate) bytes per token per layer at memory_eff * bandwidth.
3. Attention, analytical (no measured attention timings are available here): prefill chunks are
   compute bound, FLOPs = 4 * layers * heads * head_dim * sum_chunks c * (s + (c + 1) / 2) for a chunk of c
   new tokens after s cached ones (causal, FlashAttention style), at attn_compute_eff * peak; decode
   attention reads the KV cache, bytes = kv_tokens_read * kv_bytes_per_token, at memory_eff * bandwidth
   (smooth_max with its small FLOP count).
4. A fixed per-step overhead (scheduling, kernel launches, sampling) plus a small per-sequence term.
   These are assumptions, not measurements.

Calibration: compute_eff, memory_eff, p and ELEMENTWISE_BYTES were fitted to the per-layer linear and
element-wise timings that the Vidur project measured on an A100 for Llama-3-8B and Llama-2-7B
(tests/ewsjf_core/sim/test_step_time.py checks the per-layer time against every tensor-parallel-1 row of
those files: within 25% for each batch size and within 10% on average). The H100/H200 presets reuse the
A100 efficiency factors with their own peak FLOP/s and bandwidth: they are NOT calibrated (no GPU was
available to this project's session that wrote them); treat their absolute times as estimates.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, replace
from typing import Any, Mapping, Protocol


class StepTimeModel(Protocol):
    def step_time(self, prefill_tokens: int, prefill_attn_tokens2: float, decode_tokens: int,
                  kv_tokens_read: int, prefill_seqs: int = 0) -> float:
        """Seconds for one engine step.

        prefill_tokens: new prompt tokens computed this step (all chunks together).
        prefill_attn_tokens2: sum over prefill chunks of c * (s + (c + 1) / 2) (c new tokens, s cached before).
        decode_tokens: sequences decoding one token each.
        kv_tokens_read: cached KV tokens read by attention (decoders' contexts plus chunks' earlier tokens).
        prefill_seqs: sequences with a prefill chunk in the step.
        """
        ...


@dataclass(frozen=True)
class ModelSpec:
    name: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int
    head_dim: int = 0
    tied_embeddings: bool = False
    gated_mlp: bool = True
    dtype_bytes: int = 2

    def __post_init__(self) -> None:
        for f in ("layers", "hidden", "heads", "kv_heads", "intermediate", "vocab", "dtype_bytes"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"ModelSpec {self.name!r}: {f} must be an integer >= 1, got {v!r}")
        if self.heads % self.kv_heads:
            raise ValueError(f"ModelSpec {self.name!r}: heads ({self.heads}) must be a multiple of kv_heads "
                             f"({self.kv_heads})")
        if not self.head_dim:
            object.__setattr__(self, "head_dim", self.hidden // self.heads)

    @property
    def layer_linear_params(self) -> int:
        q = self.hidden * self.heads * self.head_dim
        kv = 2 * self.hidden * self.kv_heads * self.head_dim
        o = self.heads * self.head_dim * self.hidden
        mlp = (3 if self.gated_mlp else 2) * self.hidden * self.intermediate
        return q + kv + o + mlp

    @property
    def params(self) -> int:
        """All parameters (embeddings, LM head unless tied, norms)."""
        emb = self.vocab * self.hidden * (1 if self.tied_embeddings else 2)
        norms = self.layers * 2 * self.hidden + self.hidden
        return self.layers * self.layer_linear_params + emb + norms

    @property
    def weight_bytes(self) -> int:
        return self.params * self.dtype_bytes

    @property
    def kv_bytes_per_token(self) -> int:
        return 2 * self.layers * self.kv_heads * self.head_dim * self.dtype_bytes

    @classmethod
    def from_hf_config(cls, config: str | os.PathLike | Mapping[str, Any], name: str | None = None) -> "ModelSpec":
        """From a Hugging Face config.json (a path to the file or its folder, or the parsed mapping)."""
        where = "config"
        if not isinstance(config, Mapping):
            path = os.fspath(config)
            if os.path.isdir(path):
                path = os.path.join(path, "config.json")
            where = path
            try:
                with open(path, encoding="utf-8") as f:
                    config = json.load(f)
            except FileNotFoundError:
                raise ValueError(f"{path}: no such model config file") from None
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}: not valid JSON ({e})") from None
            name = name or os.path.basename(os.path.dirname(os.path.abspath(path)))
        cfg = dict(config)
        if "text_config" in cfg and "hidden_size" not in cfg:
            cfg = dict(cfg["text_config"])

        def get(key: str, *alts: str, default=None):
            for k in (key, *alts):
                if k in cfg and cfg[k] is not None:
                    return cfg[k]
            if default is None:
                raise ValueError(f"{where}: missing {key!r}")
            return default

        heads = int(get("num_attention_heads", "n_head"))
        hidden = int(get("hidden_size", "n_embd", "d_model"))
        dtype = str(cfg.get("torch_dtype", cfg.get("dtype", "bfloat16")))
        act = str(cfg.get("hidden_act", "silu"))
        return cls(
            name=name or str(cfg.get("_name_or_path") or cfg.get("model_type") or "model"),
            layers=int(get("num_hidden_layers", "n_layer")),
            hidden=hidden, heads=heads,
            kv_heads=int(get("num_key_value_heads", default=heads)),
            intermediate=int(get("intermediate_size", "n_inner", default=4 * hidden)),
            vocab=int(get("vocab_size")),
            head_dim=int(cfg.get("head_dim") or hidden // max(heads, 1)),  # heads < 1: ModelSpec says so
            tied_embeddings=bool(cfg.get("tie_word_embeddings", False)),
            gated_mlp=act in ("silu", "swiglu", "gelu_pytorch_tanh") or "llama" in str(cfg.get("model_type", "")),
            dtype_bytes=4 if "float32" in dtype else 2,
        )


@dataclass(frozen=True)
class GPUSpec:
    name: str
    peak_flops: float
    """Dense bf16 tensor-core FLOP/s (no sparsity)."""
    hbm_bandwidth: float
    """Bytes per second."""
    memory_bytes: float
    compute_eff: float = 0.72
    """Achieved fraction of peak FLOP/s on large GEMMs (fitted: A100, Vidur measurements, ~225 TFLOP/s)."""
    memory_eff: float = 0.76
    """Achieved fraction of HBM bandwidth on weight reads (fitted: A100, ~1.55 TB/s at batch 1)."""
    attn_compute_eff: float = 0.5
    """Achieved fraction of peak in prefill attention (assumption: FlashAttention-2 forward, not measured)."""
    step_overhead_s: float = 1.5e-3
    """Fixed time per engine step: scheduling, launches, sampling (assumption, not measured)."""
    per_seq_overhead_s: float = 5e-6
    """Extra time per sequence in the step (input preparation, sampling; assumption)."""
    calibrated: bool = False


MODEL_PRESETS: dict[str, ModelSpec] = {
    "llama-3-8b": ModelSpec("Llama-3-8B", layers=32, hidden=4096, heads=32, kv_heads=8, intermediate=14336,
                            vocab=128256),
    "llama-2-13b": ModelSpec("Llama-2-13B", layers=40, hidden=5120, heads=40, kv_heads=40, intermediate=13824,
                             vocab=32000),
    "llama-2-7b": ModelSpec("Llama-2-7B", layers=32, hidden=4096, heads=32, kv_heads=32, intermediate=11008,
                            vocab=32000),
    "qwen2.5-7b": ModelSpec("Qwen2.5-7B", layers=28, hidden=3584, heads=28, kv_heads=4, intermediate=18944,
                            vocab=152064),
}

GPU_PRESETS: dict[str, GPUSpec] = {
    # A100 SXM 80GB: 312 TFLOP/s bf16 dense, 2.039 TB/s HBM2e. Efficiencies fitted on A100 data.
    "a100-80gb": GPUSpec("A100-80GB", 312e12, 2.039e12, 80e9, calibrated=True),
    # H100 SXM 80GB: 989 TFLOP/s bf16 dense, 3.35 TB/s HBM3. Efficiencies copied from A100 (not calibrated).
    "h100-80gb": GPUSpec("H100-80GB", 989e12, 3.35e12, 80e9),
    # H200 SXM 141GB: same compute as H100, 4.8 TB/s HBM3e. Efficiencies copied from A100 (not calibrated).
    "h200": GPUSpec("H200", 989e12, 4.8e12, 141e9),
}

SMOOTH_P = 2.0
"""Exponent of the rounded roofline: time = (compute^p + memory^p)^(1/p)."""


def elementwise_bytes(model: ModelSpec) -> float:
    """Memory traffic of the element-wise ops per token per layer (fitted to the A100 measurements)."""
    return model.dtype_bytes * (20.0 * model.hidden + 4.0 * model.intermediate)


def get_model(name_or_path: str | ModelSpec) -> ModelSpec:
    """A preset name (case-insensitive: llama-3-8b, llama-2-13b, llama-2-7b, qwen2.5-7b) or an HF config path."""
    if isinstance(name_or_path, ModelSpec):
        return name_or_path
    key = str(name_or_path).lower()
    if key in MODEL_PRESETS:
        return MODEL_PRESETS[key]
    if os.path.exists(name_or_path):
        return ModelSpec.from_hf_config(name_or_path)
    raise ValueError(f"unknown model {name_or_path!r}: use a preset ({', '.join(MODEL_PRESETS)}) "
                     f"or the path of an HF config.json")


def get_gpu(name: str | GPUSpec) -> GPUSpec:
    if isinstance(name, GPUSpec):
        return name
    key = str(name).lower().replace("_", "-")
    aliases = {"a100": "a100-80gb", "h100": "h100-80gb", "h200-141gb": "h200"}
    key = aliases.get(key, key)
    if key not in GPU_PRESETS:
        raise ValueError(f"unknown GPU {name!r}: use one of {', '.join(GPU_PRESETS)}")
    return GPU_PRESETS[key]


class RooflineStepTime:
    """The step-time model described in this module's docstring."""

    def __init__(self, model: ModelSpec | str, gpu: GPUSpec | str, *, p: float = SMOOTH_P, **gpu_overrides) -> None:
        self.model = get_model(model)
        self.gpu = replace(get_gpu(gpu), **gpu_overrides) if gpu_overrides else get_gpu(gpu)
        m, g = self.model, self.gpu
        self.p = float(p)
        fl = g.peak_flops * g.compute_eff
        bw = g.hbm_bandwidth * g.memory_eff
        # Precomputed coefficients (seconds per unit) so step_time stays a handful of float operations.
        self._lin_s_per_token = 2.0 * m.layers * m.layer_linear_params / fl
        self._lm_s_per_seq = 2.0 * m.vocab * m.hidden / fl
        self._weights_s = m.dtype_bytes * (m.layers * m.layer_linear_params + m.vocab * m.hidden) / bw
        self._elem_s_per_token = m.layers * elementwise_bytes(m) / bw
        attn_flops_per = 4.0 * m.layers * m.heads * m.head_dim
        self._attn_prefill_s = attn_flops_per / (g.peak_flops * g.attn_compute_eff)
        self._attn_decode_flop_s = attn_flops_per / (g.peak_flops * g.attn_compute_eff)
        self._kv_s_per_token = m.kv_bytes_per_token / bw
        self._overhead = g.step_overhead_s
        self._per_seq = g.per_seq_overhead_s

    def __repr__(self) -> str:
        return f"RooflineStepTime({self.model.name}, {self.gpu.name})"

    def describe(self) -> dict:
        m, g = self.model, self.gpu
        return {"model": m.name, "gpu": g.name, "params_b": round(m.params / 1e9, 3),
                "kv_bytes_per_token": m.kv_bytes_per_token, "peak_tflops": g.peak_flops / 1e12,
                "hbm_tb_s": g.hbm_bandwidth / 1e12, "compute_eff": g.compute_eff, "memory_eff": g.memory_eff,
                "attn_compute_eff": g.attn_compute_eff, "step_overhead_ms": g.step_overhead_s * 1e3,
                "calibrated": g.calibrated, "smooth_p": self.p}

    def _smax(self, a: float, b: float) -> float:
        if self.p == 2.0:
            return math.sqrt(a * a + b * b)
        return (a ** self.p + b ** self.p) ** (1.0 / self.p)

    def linear_time(self, tokens: int, seqs: int = 0) -> float:
        """Linear layers (+ LM head for `seqs` sequences) of one step over `tokens` batch tokens."""
        return self._smax(tokens * self._lin_s_per_token + seqs * self._lm_s_per_seq, self._weights_s)

    def layer_time(self, tokens: int) -> float:
        """One layer's linear + element-wise time in seconds (what the A100 measurements hold)."""
        m, g = self.model, self.gpu
        compute = 2.0 * tokens * m.layer_linear_params / (g.peak_flops * g.compute_eff)
        weights = m.dtype_bytes * m.layer_linear_params / (g.hbm_bandwidth * g.memory_eff)
        return self._smax(compute, weights) + tokens * self._elem_s_per_token / m.layers

    def step_time(self, prefill_tokens: int, prefill_attn_tokens2: float, decode_tokens: int,
                  kv_tokens_read: int, prefill_seqs: int = 0) -> float:
        tokens = prefill_tokens + decode_tokens
        seqs = decode_tokens + prefill_seqs
        if tokens <= 0:
            return self._overhead
        t = math.sqrt((tokens * self._lin_s_per_token + seqs * self._lm_s_per_seq) ** 2 + self._weights_s ** 2) \
            if self.p == 2.0 else self.linear_time(tokens, seqs)
        t += tokens * self._elem_s_per_token
        if prefill_attn_tokens2:
            t += prefill_attn_tokens2 * self._attn_prefill_s
        if kv_tokens_read:
            a = kv_tokens_read * self._kv_s_per_token
            b = kv_tokens_read * self._attn_decode_flop_s
            t += math.sqrt(a * a + b * b)
        return t + self._overhead + seqs * self._per_seq

    # ------------------------------------------------------------------------------------- memory
    def kv_blocks(self, block_size: int = 16, gpu_memory_utilization: float = 0.9,
                  reserve_bytes: float = 2 * 1024 ** 3) -> int:
        """KV-cache blocks that fit beside the weights (vLLM-style: utilization * memory - weights - reserve)."""
        free = self.gpu.memory_bytes * gpu_memory_utilization - self.model.weight_bytes - reserve_bytes
        blocks = int(free // (block_size * self.model.kv_bytes_per_token))
        if blocks < 1:
            raise ValueError(f"{self.model.name} does not fit on {self.gpu.name}: no memory left for the KV cache")
        return blocks
