"""How long one engine step takes on a GPU: the model's kernels timed from the GPU's device parameters.

One engine step runs one forward pass over a batch that mixes prefill chunks and decode tokens (T tokens in
all, one sequence per chunk or decode). Per layer (ewsjf_core/sim/roofline.py has each kernel's formula):
1. Linear layers: four GEMMs over the T rows (QKV, output projection, gate+up, down).
2. Element-wise work as vLLM runs it, fused: two fused add+RMS-norm kernels, rotary embedding, SiLU-and-mul,
   the KV-cache write; each moves its bytes at the measured element-wise bandwidth plus a fixed kernel cost.
   (`elementwise="torch"` instead models the calibration script's unfused torch ops, to compare with its
   whole-step measurements.)
3. Attention: prefill chunks (query rows, causal pairs within the chunk, pairs against cached tokens) and
   decodes (KV-cache bytes read, sequences), with the per-GPU rates fitted to measured attention kernels.
Per step: the embedding, the final norm and the LM head (a GEMM over one row per sequence).
Outside the forward (an assumption, not measured): `step_overhead_s` per step (scheduling, input preparation,
sampling) plus `per_seq_overhead_s` per sequence. The forward runs as a CUDA graph (vLLM captures its steps);
`graph=False` adds the measured CPU launch time of an eager forward (only to compare with eager measurements).

The device parameters of each GPU preset are fitted to measurements (README.md here, "Step-time model and GPU
calibration"; re-fit with `ewsjf calibrate DIR`); GPUSpec.calibration states what was fitted.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Protocol

from .config import MIN_KV_BLOCKS
from .gpu_presets import GPU_PRESETS
from .gpu_spec import GPUSpec, get_gpu
from .model_spec import MODEL_PRESETS, ModelSpec, get_model
from .roofline import decode_attention_time, elementwise_time, gemm_time, prefill_attention_time, torch_op_elements

__all__ = ["GPU_PRESETS", "MODEL_PRESETS", "GPUSpec", "ModelSpec", "RooflineStepTime", "StepTimeModel",
           "get_gpu", "get_model"]


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


class RooflineStepTime:
    """The step-time model described in this module's docstring."""

    _CACHE_MAX = 200_000

    def __init__(self, model: ModelSpec | str, gpu: GPUSpec | str, *, elementwise: str = "fused",
                 **gpu_overrides) -> None:
        if elementwise not in ("fused", "torch"):
            raise ValueError(f"elementwise must be 'fused' or 'torch', got {elementwise!r}")
        self.model = get_model(model)
        self.gpu = replace(get_gpu(gpu), **gpu_overrides) if gpu_overrides else get_gpu(gpu)
        if elementwise == "torch" and not self.gpu.torch_elementwise:
            raise ValueError(f"{self.gpu.name}: no fitted torch element-wise ops (elementwise='torch')")
        self.elementwise = elementwise
        g = self.gpu
        r = g.gemm_sustained_flops / g.gemm_flops  # a busy GPU's clock: every compute-bound rate scales with it
        self._busy = replace(g, gemm_flops=g.gemm_sustained_flops, attn_flops=g.attn_flops * r,
                             attn_chunk_flops=g.attn_chunk_flops * r, attn_row_s=g.attn_row_s / r,
                             attn_chunk_row_s=g.attn_chunk_row_s / r)
        # The dense part is (per-token-count layers, embedding, norm) + (LM head over the sequences): two caches
        # keyed by what each depends on, added in the same order as _dense_time adds them (identical floats).
        self._tokens_cache: dict[tuple, float] = {}
        self._head_cache: dict[tuple, float] = {}
        self._attn_busy, self._attn_burst = self._attention_coefficients(self._busy), self._attention_coefficients(g)
        self._torch = elementwise == "torch"

    def _attention_coefficients(self, g: GPUSpec) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """All layers' attention is linear in its inputs: its coefficients, read off the kernel formulas once so
        that step_time stays a handful of float operations."""
        m, n = self.model, self.model.layers

        def pre(*a):
            return n * prefill_attention_time(g, m.heads, m.head_dim, *a)

        def dec(*a):
            return n * decode_attention_time(g, m.kv_heads, m.head_dim, *a, m.dtype_bytes)

        p0, d0 = pre(0.0, 0.0, 0.0, 0.0), dec(0.0, 0.0)
        return ((p0, pre(1.0, 0.0, 0.0, 0.0) - p0, pre(0.0, 1.0, 0.0, 0.0) - p0, pre(0.0, 0.0, 1.0, 0.0) - p0,
                 pre(0.0, 0.0, 0.0, 1.0) - p0, n * g.attn_kernel_s),
                (d0, dec(1.0, 0.0) - d0, dec(0.0, 1.0) - d0))

    def __repr__(self) -> str:
        return f"RooflineStepTime({self.model.name}, {self.gpu.name})"

    def describe(self) -> dict:
        m, g = self.model, self.gpu
        return {"model": m.name, "gpu": g.name, "params_b": round(m.params / 1e9, 3),
                "kv_bytes_per_token": m.kv_bytes_per_token, "gemm_tflops": round(g.gemm_flops / 1e12, 1),
                "gemm_tb_s": round(g.gemm_bandwidth / 1e12, 3), "attn_tflops": round(g.attn_flops / 1e12, 1),
                "decode_attn_tb_s": round(g.decode_bandwidth / 1e12, 3), "elementwise": self.elementwise,
                "step_overhead_ms": g.step_overhead_s * 1e3, "calibrated": g.calibrated,
                "calibration": g.calibration}

    # ------------------------------------------------------------------------------------- parts
    def layer_linear_time(self, tokens, busy: bool = True):
        """One layer's four GEMMs over `tokens` rows (floats or numpy arrays); busy: at the sustained clock."""
        g, dt = self._busy if busy else self.gpu, self.model.dtype_bytes
        return sum(gemm_time(g, tokens, n, k, dt) for n, k in self.model.gemm_shapes())

    def layer_elementwise_time(self, tokens, groups: int = 1):
        """One layer's element-wise kernels over `tokens` rows, fused (vLLM) or as the torch script's ops (which
        also copy K, V and the output per attention group: each prefill chunk, and the decodes together)."""
        m, g, dt = self.model, self.gpu, self.model.dtype_bytes
        h, qk, kv = m.hidden, (m.heads + m.kv_heads) * m.head_dim, m.kv_heads * m.head_dim
        act = (3 if m.gated_mlp else 2) * m.intermediate
        if self.elementwise == "fused":  # 2 x fused_add_rms_norm, rotary, silu_and_mul, reshape_and_cache
            per_token = dt * (2 * 4 * h + 2 * qk + act + 4 * kv)
            return 5 * g.elem_kernel_s + tokens * per_token / g.elem_bandwidth
        ops = dict((op, (fixed, mult)) for op, fixed, mult in g.torch_elementwise)
        ideal = torch_op_elements(h, m.heads, m.kv_heads, m.head_dim, m.intermediate, m.gated_mlp)
        t = sum(n * (ops[op][0] + tokens * ops[op][1] * dt * ideal[op] / g.elem_bandwidth)
                for op, n in (("rms_norm", 2), ("attn_rope", 1), ("mlp_act", 1), ("add", 2)))
        # the script's attention glue: K and V written into the cache, the output copied (3 plain copies)
        return t + 3 * groups * g.elem_kernel_s + tokens * dt * 2 * (2 * kv + m.heads * m.head_dim) / g.elem_bandwidth

    def _dense_time(self, tokens: int, seqs: int, groups: int, busy: bool) -> float:
        """Everything but attention: layers' GEMMs and element-wise kernels, embedding, final norm, LM head."""
        return self._tokens_time(tokens, groups, busy) + self._head_time(seqs, busy)

    def _tokens_time(self, tokens: int, groups: int, busy: bool) -> float:
        """The dense part that depends on the batch's token count: layers, embedding gather, final norm."""
        key = (tokens, groups, busy)
        t = self._tokens_cache.get(key)
        if t is None:
            m, g = self.model, self._busy if busy else self.gpu
            t = m.layers * (self.layer_linear_time(tokens, busy) + self.layer_elementwise_time(tokens, groups))
            t += 2 * elementwise_time(g, tokens * m.dtype_bytes * 2 * m.hidden)  # embedding gather, final norm
            _bounded_put(self._tokens_cache, key, t, self._CACHE_MAX)
        return t

    def _head_time(self, seqs: int, busy: bool) -> float:
        """The LM head over the step's sequences."""
        key = (seqs, busy)
        t = self._head_cache.get(key)
        if t is None:
            m, g = self.model, self._busy if busy else self.gpu
            t = gemm_time(g, seqs, m.vocab, m.hidden, m.dtype_bytes)
            _bounded_put(self._head_cache, key, t, self._CACHE_MAX)
        return t

    def attention_time(self, prefill_tokens: int, prefill_attn_tokens2: float, decode_tokens: int,
                       kv_tokens_read: int, prefill_seqs: int = 0, prefill_cached_tokens: int | None = None,
                       busy: bool = True) -> float:
        """All layers' attention. The causal pairs within chunks are estimated as if the prefill_seqs chunks were
        equal (exact for one chunk); the rest of prefill_attn_tokens2 attends to cached tokens."""
        attn_terms = self._attn_busy if busy else self._attn_burst
        (p0, p_tok, p_causal, p_cached, p_rows, p_kernel), (d0, d_seq, d_ctx) = attn_terms
        t = 0.0
        cached_tokens = 0.0
        # (min/max written as conditionals, with the same operand kept on ties: the sim calls this every step)
        if prefill_tokens > 0:
            n = prefill_seqs if prefill_seqs > 1 else 1
            causal = 0.5 * (prefill_tokens * prefill_tokens / n + prefill_tokens)
            if not causal < prefill_attn_tokens2:
                causal = prefill_attn_tokens2
            cached = prefill_attn_tokens2 - causal
            cached_tokens = prefill_cached_tokens if prefill_cached_tokens is not None else cached * n / prefill_tokens
            # query rows in chunks after cached tokens: exact for one chunk, else the cached share of the pairs
            rows = (prefill_tokens if cached > 0 else 0) if n == 1 else \
                prefill_tokens * cached / (1e-9 if 1e-9 > prefill_attn_tokens2 else prefill_attn_tokens2)
            t += p0 + p_tok * prefill_tokens + p_causal * causal + p_cached * cached + p_rows * rows
            if self._torch:  # the script runs one attention kernel per chunk (vLLM: one in all)
                t += (n - 1) * p_kernel
        if decode_tokens > 0:
            ctx = kv_tokens_read - cached_tokens
            t += d0 + d_seq * decode_tokens + d_ctx * (0.0 if 0.0 > ctx else ctx)
        return t

    def forward_time(self, prefill_tokens: int, prefill_attn_tokens2: float, decode_tokens: int,
                     kv_tokens_read: int, prefill_seqs: int = 0, *, prefill_cached_tokens: int | None = None,
                     graph: bool = True, from_idle: bool = False) -> float:
        """Seconds of the forward pass alone (no scheduling or sampling) on a busy GPU (sustained clock).
        from_idle: the GPU was idle before (its clock falls from burst to sustained with time constant
        power_tau_s), as the calibration script times steps. graph=False: launched eagerly (CPU launch bound)."""
        tokens = prefill_tokens + decode_tokens
        if tokens <= 0:
            return 0.0
        g, seqs = self.gpu, prefill_seqs + decode_tokens
        groups = prefill_seqs + (decode_tokens > 0) if self.elementwise == "torch" else 1
        attn = (prefill_tokens, prefill_attn_tokens2, decode_tokens, kv_tokens_read, prefill_seqs,
                prefill_cached_tokens)
        t = self._dense_time(tokens, seqs, groups, True) + self.attention_time(*attn, busy=True)
        if from_idle and g.power_tau_s > 0:
            burst = self._dense_time(tokens, seqs, groups, False) + self.attention_time(*attn, busy=False)
            x = burst / g.power_tau_s  # share of the step spent at the sustained clock (first-order fall)
            t = burst + (t - burst) * (1.0 - (1.0 - math.exp(-x)) / x)
        if not graph and g.eager_layer_s:
            q = g.eager_smooth_p
            t = (t ** q + (self.model.layers * g.eager_layer_s) ** q) ** (1.0 / q)
        return t

    def step_time(self, prefill_tokens: int, prefill_attn_tokens2: float, decode_tokens: int,
                  kv_tokens_read: int, prefill_seqs: int = 0, *, prefill_cached_tokens: int | None = None) -> float:
        """Seconds for one engine step: the forward (busy GPU, CUDA graph) plus the per-step and per-sequence
        overhead (assumptions). The sim calls this once per step: the dense part comes from a cache."""
        g = self.gpu
        tokens = prefill_tokens + decode_tokens
        if tokens <= 0:
            return g.step_overhead_s
        seqs = prefill_seqs + decode_tokens
        groups = prefill_seqs + (decode_tokens > 0) if self._torch else 1
        part = self._tokens_cache.get((tokens, groups, True))
        if part is None:
            part = self._tokens_time(tokens, groups, True)
        head = self._head_cache.get((seqs, True))
        if head is None:
            head = self._head_time(seqs, True)
        return (part + head + self.attention_time(prefill_tokens, prefill_attn_tokens2, decode_tokens, kv_tokens_read,
                                                  prefill_seqs, prefill_cached_tokens)
                + g.step_overhead_s + seqs * g.per_seq_overhead_s)

    # ------------------------------------------------------------------------------------- memory
    def kv_blocks(self, block_size: int = 16, gpu_memory_utilization: float = 0.9,
                  reserve_bytes: float = 2 * 1024 ** 3) -> int:
        """KV-cache blocks that fit beside the weights (vLLM-style: utilization * memory - weights - reserve); at
        least MIN_KV_BLOCKS (the null block and one to allocate), or ValueError."""
        block_bytes = block_size * self.model.kv_bytes_per_token
        free = self.gpu.memory_bytes * gpu_memory_utilization - self.model.weight_bytes - reserve_bytes
        blocks = int(free // block_bytes)
        if blocks < MIN_KV_BLOCKS:
            # The least utilization that leaves enough blocks, rounded up to what a user types.
            least = math.ceil((self.model.weight_bytes + reserve_bytes + MIN_KV_BLOCKS * block_bytes)
                              / self.gpu.memory_bytes * 1000)
            fix = (f"it needs gpu_memory_utilization >= {least / 1000:g}" if least <= 1000
                   else "not even at gpu_memory_utilization 1: it needs a smaller model or a GPU with more memory")
            raise ValueError(f"{self.model.name} does not fit on {self.gpu.name} at gpu_memory_utilization "
                             f"{gpu_memory_utilization:g}: no memory left for the KV cache beside the weights "
                             f"({self.model.weight_bytes / 2 ** 30:.1f} GiB) and {reserve_bytes / 2 ** 30:g} GiB "
                             f"of reserve; {fix}")
        return blocks


def _bounded_put(cache: dict, key, value: float, limit: int) -> None:
    """cache[key] = value, emptying the cache first when it holds `limit` entries (memory stays bounded)."""
    if len(cache) >= limit:
        cache.clear()
    cache[key] = value
