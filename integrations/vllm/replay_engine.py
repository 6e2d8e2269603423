"""The engine the tuner's replay trials simulate, read from the vLLM scheduler they tune.

The tuner scores candidate parameters by replaying the recent window through the simulator
(ewsjf_core.tuner.replay), on an EngineConfig given by TunerSettings.engine. Left at the simulator's
defaults, a trial would replay on another engine than the one it tunes: another token budget and running
cap, no KV limit at all (the step-time model the tuner replays with, fitted from the step feedback, has no
memory figure), and none of the adapter's share of the chunk budget. Under KV pressure, where the order
matters most for fairness (README, "The workload suite"), the trials would not see it. So the integration
fills TunerSettings.engine from the scheduler's own settings at construction; a key the user set in the
tuner's `engine` mapping wins over the derived one.
"""

from __future__ import annotations

import logging
from typing import Any

from ewsjf.integrations.vllm.config import VLLMOptions
from ewsjf_core.sim.config import EngineConfig
from ewsjf_core.sim.workload import PREFIX_BLOCK_TOKENS

logger = logging.getLogger("vllm.ewsjf")


def replay_engine(scheduler: Any, options: VLLMOptions) -> dict[str, Any]:
    """EngineConfig keyword arguments mirroring `scheduler` (a vLLM v1 Scheduler after its constructor) and
    the adapter's own engine options (`waiting_head_share`, `preemption_guard`). Settings the scheduler does not
    expose are left to EngineConfig's defaults."""
    sc = scheduler.scheduler_config
    engine: dict[str, Any] = {
        "token_budget": int(getattr(scheduler, "max_num_scheduled_tokens", None) or sc.max_num_batched_tokens),
        "max_running": int(getattr(scheduler, "max_num_running_reqs", None) or sc.max_num_seqs),
        "prefix_caching": bool(scheduler.cache_config.enable_prefix_caching),
        "chunked_prefill": bool(getattr(sc, "enable_chunked_prefill", True)),
        "long_prefill_token_threshold": int(getattr(sc, "long_prefill_token_threshold", 0) or 0),
        "reserve_full_sequence": bool(getattr(scheduler, "scheduler_reserve_full_isl", False)),
        "waiting_head_share": float(options.waiting_head_share),
        "kv_watermark": float(getattr(sc, "watermark", 0.0) or 0.0),
        "preemption_guard": bool(options.preemption_guard),
    }
    blocks = getattr(getattr(scheduler, "kv_cache_config", None), "num_blocks", None)
    if blocks:
        engine["kv_blocks"] = int(blocks)
    block_size = getattr(scheduler, "block_size", None) or scheduler.cache_config.block_size
    if block_size and PREFIX_BLOCK_TOKENS % int(block_size) == 0:
        engine["block_size"] = int(block_size)
    else:   # the simulator's prefix blocks must be whole KV blocks
        logger.info("EWSJF tuner: replays keep block_size %d (vLLM's %s does not divide %d)",
                    EngineConfig.block_size, block_size, PREFIX_BLOCK_TOKENS)
    max_model_len = getattr(scheduler, "max_model_len", None)
    if max_model_len:
        engine["max_model_len"] = int(max_model_len)
    return engine
