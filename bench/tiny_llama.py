"""A tiny Llama model folder: config.json only (no weights, no tokenizer), for engines whose model never runs.

vLLM reads a model's config to size its scheduler and KV cache; the bench's vLLM harness (virtual_vllm) and the
tests that start a real CPU engine need a model folder, and nothing may be downloaded at run time, so they
write this one.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from typing import Any

TINY_LLAMA_CONFIG = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 128,
    "intermediate_size": 256, "num_attention_heads": 2, "num_key_value_heads": 2, "num_hidden_layers": 2,
    "vocab_size": 1024, "max_position_embeddings": 131072, "rms_norm_eps": 1e-5, "torch_dtype": "float32",
    "bos_token_id": 1, "eos_token_id": 2, "tie_word_embeddings": False,
}


def write_tiny_llama(directory: str | None = None, **overrides: Any) -> str:
    """Write a tiny Llama config.json (no weights, no tokenizer) into `directory` (default: a new temp dir)."""
    directory = directory or tempfile.mkdtemp(prefix="ewsjf-tiny-llama-")
    os.makedirs(directory, exist_ok=True)
    cfg = dict(TINY_LLAMA_CONFIG, **overrides)
    with open(os.path.join(directory, "config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg, f)
    return directory


_SHARED_MODEL_DIRS: dict[int, str] = {}


def shared_tiny_llama(max_position_embeddings: int) -> str:
    """One tiny-Llama folder per process and size, removed at exit (its users share it read-only)."""
    d = _SHARED_MODEL_DIRS.get(max_position_embeddings)
    if d is None or not os.path.isfile(os.path.join(d, "config.json")):
        d = write_tiny_llama(max_position_embeddings=max_position_embeddings)
        _SHARED_MODEL_DIRS[max_position_embeddings] = d
        atexit.register(shutil.rmtree, d, True)
    return d
