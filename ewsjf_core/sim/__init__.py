"""ewsjf_core.sim: a fast continuous-batching engine simulator in virtual time (no GPU, no vLLM).

    from ewsjf_core.sim import VirtualClock, simulate, EngineConfig, RooflineStepTime, summarize, load_azure
    clock = VirtualClock()
    queue = SomeWaitingQueue(clock=clock)          # anything implementing the WaitingQueue methods
    result = simulate(workload, queue, RooflineStepTime("llama-3-8b", "a100-80gb"), EngineConfig(), clock=clock)
    print(summarize(result)["ttft_by_class_s"]["short"]["mean"])

Nothing here imports `ewsjf.*`; the queue is duck-typed.
"""

from .engine import EngineConfig, SimEngine, SimResult, VirtualClock, simulate
from .metrics import class_edges, summarize
from .step_time import GPU_PRESETS, MODEL_PRESETS, GPUSpec, ModelSpec, RooflineStepTime, StepTimeModel, get_gpu, get_model
from .traces import TraceError, arrivals, load_azure, load_csv, load_lengths, load_mooncake, save_csv
from .workload import PREFIX_BLOCK_TOKENS, Workload, concat

__all__ = [
    "EngineConfig", "SimEngine", "SimResult", "VirtualClock", "simulate", "class_edges", "summarize", "GPU_PRESETS",
    "MODEL_PRESETS", "GPUSpec", "ModelSpec", "RooflineStepTime", "StepTimeModel", "get_gpu", "get_model",
    "TraceError", "arrivals", "load_azure", "load_csv", "load_lengths", "load_mooncake", "save_csv",
    "PREFIX_BLOCK_TOKENS", "Workload", "concat",
]
