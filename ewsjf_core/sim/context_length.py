"""A model's context length (vLLM's default max_model_len): max_position_embeddings of its config."""

from __future__ import annotations

import json
import os

from .model_spec import hf_config_path

# Context lengths of the model presets (max_position_embeddings in each model's config.json).
PRESET_CONTEXT = {"llama-3-8b": 8192, "llama-3-70b": 8192, "llama-2-7b": 4096, "llama-2-13b": 4096,
                  "qwen2.5-7b": 32768}
_KEYS = ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length", "max_sequence_length")


def context_length(model: str) -> int | None:
    """max_model_len for a model preset name or an HF config.json path (file or folder); None if unknown."""
    key = str(model).lower().replace("_", "-")
    if key in PRESET_CONTEXT:
        return PRESET_CONTEXT[key]
    path = hf_config_path(model)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            cfg = json.load(f)
    except (OSError, json.JSONDecodeError):
        return None   # get_model() reports a bad config file
    for c in (cfg, cfg.get("text_config") or {}):
        for k in _KEYS:
            v = c.get(k)
            if isinstance(v, int) and not isinstance(v, bool) and v > 1:
                return v
    return None
