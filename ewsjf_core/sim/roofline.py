"""Kernel times from a GPU's device parameters (GPUSpec): GEMM, element-wise, prefill and decode attention.

Every function is plain arithmetic, so it takes Python floats (the step-time model) or numpy arrays (the
calibration fits the same formulas over whole measurement tables).
"""

from __future__ import annotations

from .gpu_spec import GPUSpec


def _max(a, b):
    return (a + b + abs(a - b)) * 0.5


def gemm_time(g: GPUSpec, rows, n, k, dtype_bytes: int = 2, isolated: bool = False):
    """One [rows x k] @ [k x n] GEMM: fixed time + rounded roofline of compute (rows padded to tiles, at least
    gemm_min_rows) vs operand bytes.
    isolated: timed alone as the per-op measurements do, whose clock droops on long kernels."""
    tiles = -(-rows // g.gemm_tile_rows) * g.gemm_tile_rows  # rows padded to whole tensor-core tiles
    compute = 2.0 * _max(tiles, g.gemm_min_rows) * n * k / g.gemm_flops
    if isolated:
        compute = compute * (1.0 + 2.0 * rows * n * k / g.gemm_droop_flops)
    memory = dtype_bytes * (n * k + rows * k + rows * n) / g.gemm_bandwidth
    p = g.gemm_smooth_p
    return g.gemm_kernel_s + (compute ** p + memory ** p) ** (1.0 / p)


def torch_op_elements(hidden: int, heads: int, kv_heads: int, head_dim: int, intermediate: int,
                      gated: bool = True) -> dict[str, int]:
    """Elements per token that one pass of each element-wise op of the calibration script reads and writes (its
    ideal traffic; torch's unfused compositions move a fitted multiple of it)."""
    return {"rms_norm": 2 * hidden, "attn_rope": 2 * (heads + kv_heads) * head_dim,
            "mlp_act": (3 if gated else 2) * intermediate, "add": 3 * hidden}


def elementwise_time(g: GPUSpec, nbytes):
    """One fused element-wise kernel moving `nbytes`."""
    return g.elem_kernel_s + nbytes / g.elem_bandwidth


def prefill_attention_time(g: GPUSpec, heads: int, head_dim: int, tokens, causal_pairs, cached_pairs,
                           chunk_rows=None):
    """One layer's prefill attention: `tokens` query rows, `chunk_rows` of them in chunks after cached tokens
    (default: the cached share of the pairs); (query, key) pairs within the new tokens (causal) and against
    cached tokens. FLOPs are 4 * heads * head_dim per pair (QK^T and PV)."""
    hd = heads * head_dim
    if chunk_rows is None:
        chunk_rows = tokens * cached_pairs / (causal_pairs + cached_pairs)
    return (g.attn_kernel_s + hd * (tokens * g.attn_row_s + chunk_rows * g.attn_chunk_row_s)
            + 4.0 * hd * (causal_pairs / g.attn_flops + cached_pairs / g.attn_chunk_flops))


def decode_attention_time(g: GPUSpec, kv_heads: int, head_dim: int, seqs, context_tokens, dtype_bytes: int = 2):
    """One layer's decode attention: `seqs` one-token queries reading `context_tokens` cached K/V entries in all."""
    kv_bytes = context_tokens * 2.0 * kv_heads * head_dim * dtype_bytes
    return g.decode_kernel_s + seqs * kv_heads * g.decode_seq_s + kv_bytes / g.decode_bandwidth
