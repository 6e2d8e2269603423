"""ewsjf_core.sim: a fast continuous-batching engine simulator in virtual time (no GPU, no vLLM).

    from ewsjf_core.sim import VirtualClock, simulate, EngineConfig, RooflineStepTime, Workload
    clock = VirtualClock()
    queue = SomeWaitingQueue(clock=clock)          # anything implementing the WaitingQueue methods
    result = simulate(workload, queue, RooflineStepTime("llama-3-8b", "a100-80gb"), EngineConfig(), clock=clock)
    result.first_token_s - workload.arrival_s      # per-request TTFT

Trace files and report metrics serve the bench: `ewsjf.bench.traces` (loaders) and `ewsjf.bench.metrics`
(`summarize`). Nothing here imports `ewsjf.*`; the queue is duck-typed.
"""

from .engine import EngineConfig, SimEngine, SimResult, VirtualClock, rejection_reasons, simulate
from .step_time import (GPU_PRESETS, MODEL_PRESETS, GPUSpec, ModelSpec, RooflineStepTime, StepTimeModel, get_gpu,
                        get_model)
from .workload import PREFIX_BLOCK_TOKENS, Workload, concat

__all__ = [
    "EngineConfig", "SimEngine", "SimResult", "VirtualClock", "rejection_reasons", "simulate", "GPU_PRESETS",
    "MODEL_PRESETS", "GPUSpec", "ModelSpec", "RooflineStepTime", "StepTimeModel", "get_gpu", "get_model",
    "PREFIX_BLOCK_TOKENS", "Workload", "concat",
]
