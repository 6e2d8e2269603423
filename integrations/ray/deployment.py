"""`VLLMReplica`: a Ray Serve deployment body running one vLLM engine with the EWSJF scheduler.

    app = serve.deployment(VLLMReplica).options(
        num_replicas=4, ray_actor_options={"num_cpus": 1},
        request_router_config=ewsjf_router_config(stats_period_s=0.5),
    ).bind(engine_kwargs={"model": "meta-llama/Llama-3.1-8B-Instruct"})
    handle = serve.run(app)
    out = await handle.generate.remote({"prompt_token_ids": [...], "max_tokens": 64})

It accepts the request mapping the router parses (`prompt_token_ids` or `prompt`, plus sampling fields),
counts the requests it is serving, and publishes `record_routing_stats()` from the engine's EWSJF
snapshots. vLLM's AsyncLLM is the engine (no tokenizer needed when prompts are token ids).
"""

from __future__ import annotations

import uuid
from typing import Any, Mapping

from .replica import RoutingStatsPublisher

SCHEDULER_CLS = "ewsjf.integrations.vllm.EWSJFScheduler"
SAMPLING_FIELDS = ("max_tokens", "temperature", "top_p", "ignore_eos", "seed")


class VLLMReplica:
    """One vLLM AsyncLLM engine per replica; `engine_kwargs` are vLLM's AsyncEngineArgs."""

    def __init__(self, engine_kwargs: Mapping[str, Any], snapshot_interval_s: float = 0.1) -> None:
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        self._stats = RoutingStatsPublisher()  # before the engine: its EngineCore inherits the directory
        kwargs = dict(engine_kwargs)
        kwargs.setdefault("scheduler_cls", SCHEDULER_CLS)
        extra = dict(kwargs.pop("additional_config", None) or {})
        ewsjf = dict(extra.get("ewsjf") or {})
        ewsjf["vllm"] = {"metrics_interval_s": snapshot_interval_s, **(ewsjf.get("vllm") or {})}
        extra["ewsjf"] = ewsjf
        self.engine = AsyncLLM.from_engine_args(AsyncEngineArgs(additional_config=extra, **kwargs))
        self.ongoing = 0
        self.served = 0
        self.replica_id = _replica_tag()

    async def generate(self, request: Mapping[str, Any]) -> dict[str, Any]:
        from vllm import SamplingParams

        if not isinstance(request, Mapping):
            raise TypeError(f"request must be a mapping, got {type(request).__name__}")
        if "prompt_token_ids" in request:
            prompt: Any = {"prompt_token_ids": list(request["prompt_token_ids"])}
        elif isinstance(request.get("prompt"), str):
            prompt = request["prompt"]
        else:
            raise ValueError("request needs prompt_token_ids or prompt")
        sampling = SamplingParams(**{k: request[k] for k in SAMPLING_FIELDS if k in request})
        request_id = str(request.get("request_id") or uuid.uuid4().hex)
        self.ongoing += 1
        try:
            final = None
            async for out in self.engine.generate(prompt, sampling, request_id):
                final = out
        finally:
            self.ongoing -= 1
        self.served += 1
        assert final is not None
        return {"request_id": request_id, "replica": self.replica_id,
                "prompt_tokens": len(final.prompt_token_ids or ()),
                "output_tokens": len(final.outputs[0].token_ids), "finish_reason": final.outputs[0].finish_reason}

    def record_routing_stats(self) -> dict[str, Any]:
        """Called by Ray Serve every request_routing_stats_period_s; the router reads it as routing_stats."""
        stats = self._stats.record(self.ongoing)
        if stats:
            stats["replica"] = self.replica_id
            stats["served"] = self.served
        return stats

    def __del__(self) -> None:
        engine = getattr(self, "engine", None)
        if engine is not None:
            engine.shutdown()
        stats = getattr(self, "_stats", None)
        if stats is not None:
            stats.close()


def _replica_tag() -> str:
    try:
        from ray import serve

        return serve.get_replica_context().replica_id.unique_id
    except Exception:  # outside Serve (a plain Python test)
        return "local"
