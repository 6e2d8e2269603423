"""The shape of a decoder-only transformer (what the step-time model needs) and presets for common models."""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from typing import Any, Mapping

from ewsjf_core.field_checks import is_int_or_float


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

    def gemm_shapes(self) -> tuple[tuple[int, int], ...]:
        """(N, K) of each per-layer linear layer: QKV, output projection, (gate+)up, down."""
        h, d = self.hidden, self.head_dim
        up = (2 if self.gated_mlp else 1) * self.intermediate
        return (((self.heads + 2 * self.kv_heads) * d, h), (h, self.heads * d), (up, h), (h, self.intermediate))

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
            path = hf_config_path(config)
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
            if not isinstance(cfg["text_config"], Mapping):
                raise ValueError(f"{where}: text_config must be an object")
            cfg = dict(cfg["text_config"])

        def get(key: str, *alts: str, default=None) -> int:
            """The first of key, *alts set, as an integer (a float only when whole: 4096.0)."""
            for k in (key, *alts):
                if k in cfg and cfg[k] is not None:
                    v = cfg[k]
                    if not is_int_or_float(v) or (isinstance(v, float) and not (math.isfinite(v) and v.is_integer())):
                        raise ValueError(f"{where}: {k} must be an integer, got {v!r}")
                    return int(v)
            if default is None:
                raise ValueError(f"{where}: missing {key!r}")
            return default

        heads = get("num_attention_heads", "n_head")
        hidden = get("hidden_size", "n_embd", "d_model")
        dtype = str(cfg.get("torch_dtype", cfg.get("dtype", "bfloat16")))
        act = str(cfg.get("hidden_act", "silu"))
        return cls(
            name=name or str(cfg.get("_name_or_path") or cfg.get("model_type") or "model"),
            layers=get("num_hidden_layers", "n_layer"),
            hidden=hidden, heads=heads,
            kv_heads=get("num_key_value_heads", default=heads),
            intermediate=get("intermediate_size", "n_inner", default=4 * hidden),
            vocab=get("vocab_size"),
            head_dim=get("head_dim", default=hidden // max(heads, 1)),  # heads < 1: ModelSpec says so
            tied_embeddings=bool(cfg.get("tie_word_embeddings", False)),
            gated_mlp=act in ("silu", "swiglu", "gelu_pytorch_tanh") or "llama" in str(cfg.get("model_type", "")),
            dtype_bytes=4 if "float32" in dtype else 2,
        )


MODEL_PRESETS: dict[str, ModelSpec] = {
    "llama-3-8b": ModelSpec("Llama-3-8B", layers=32, hidden=4096, heads=32, kv_heads=8, intermediate=14336,
                            vocab=128256),
    "llama-2-13b": ModelSpec("Llama-2-13B", layers=40, hidden=5120, heads=40, kv_heads=40, intermediate=13824,
                             vocab=32000),
    "llama-2-7b": ModelSpec("Llama-2-7B", layers=32, hidden=4096, heads=32, kv_heads=32, intermediate=11008,
                            vocab=32000),
    "qwen2.5-7b": ModelSpec("Qwen2.5-7B", layers=28, hidden=3584, heads=28, kv_heads=4, intermediate=18944,
                            vocab=152064),
    "llama-3-70b": ModelSpec("Llama-3-70B", layers=80, hidden=8192, heads=64, kv_heads=8, intermediate=28672,
                             vocab=128256),
}
"""The four shapes measured on the H100/H200 (tests/ewsjf_core/sim/data/gpu_profiles) are llama-3-8b, llama-2-7b,
llama-3-70b (one layer at tensor parallel 1; the whole model needs more than one 80 GB GPU) and qwen2.5-7b."""


def hf_config_path(path: str | os.PathLike) -> str:
    """An HF config.json given as the file or as its model folder: the file's path."""
    path = os.fspath(path)
    return os.path.join(path, "config.json") if os.path.isdir(path) else path


def model_identity(name_or_path: str) -> str:
    """What a cache key records for a model: a preset's name, or a config's path and a digest of its bytes."""
    if str(name_or_path).lower() in MODEL_PRESETS or not os.path.exists(name_or_path):
        return str(name_or_path)
    path = hf_config_path(name_or_path)
    with open(path, "rb") as f:
        return f"{os.path.realpath(path)}@{hashlib.sha256(f.read()).hexdigest()[:16]}"


def get_model(name_or_path: str | ModelSpec) -> ModelSpec:
    """A preset name (case-insensitive: llama-3-8b, llama-2-13b, llama-2-7b, qwen2.5-7b, llama-3-70b) or an HF
    config path."""
    if isinstance(name_or_path, ModelSpec):
        return name_or_path
    key = str(name_or_path).lower()
    if key in MODEL_PRESETS:
        return MODEL_PRESETS[key]
    if os.path.exists(name_or_path):
        return ModelSpec.from_hf_config(name_or_path)
    raise ValueError(f"unknown model {name_or_path!r}: use a preset ({', '.join(MODEL_PRESETS)}) "
                     f"or the path of an HF config.json")
