"""KV-cache read rate of one-token (decode) attention per torch SDPA backend, MHA (40 KV heads) against GQA (8).

Why: the whole-step grid of Llama-2-13B (tests/ewsjf_core/sim/data/gpu_holdout) ran torch's flash kernel and its
decode steps came out far slower than the preset's decode rate; this tells the kernel's rate from the GPU's.
Run on a CUDA machine: `python3 scripts/decode_attention_rate.py` (about 15 s); on a CPU it only smoke-tests.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

BACKENDS = {"flash": SDPBackend.FLASH_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION,
            "efficient": SDPBackend.EFFICIENT_ATTENTION}
HEADS = [(40, 40), (32, 8)]  # (query heads, KV heads): Llama-2-13B, Llama-3-8B
HEAD_DIM = 128


def mean_ms(fn, reps: int = 20) -> float:
    for _ in range(3):
        fn()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    for _ in range(reps):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / reps


def main() -> None:
    cuda = torch.cuda.is_available()
    dev, dtype = ("cuda", torch.bfloat16) if cuda else ("cpu", torch.float32)
    shapes = [(64, 4096), (256, 1024), (128, 4096)] if cuda else [(2, 64)]
    for hq, hkv in HEADS:
        for batch, context in shapes:
            q = torch.randn(batch, hq, 1, HEAD_DIM, device=dev, dtype=dtype)
            k = torch.randn(batch, hkv, context, HEAD_DIM, device=dev, dtype=dtype)
            v = torch.randn_like(k)
            kv_bytes = 2 * k.numel() * k.element_size()
            for name, backend in BACKENDS.items():
                def attend():
                    return F.scaled_dot_product_attention(q, k, v, enable_gqa=hq != hkv)
                try:
                    with sdpa_kernel([backend]):
                        ms = mean_ms(attend) if cuda else (attend(), float("nan"))[1]
                except RuntimeError as e:
                    print(f"heads {hq}/{hkv} batch {batch} context {context} {name}: no kernel ({str(e)[:60]})")
                    continue
                rate = kv_bytes / ms / 1e9 if cuda else float("nan")
                print(f"heads {hq}/{hkv} batch {batch} context {context} {name:9s} {ms:8.3f} ms {rate:6.2f} TB/s")


if __name__ == "__main__":
    main()
