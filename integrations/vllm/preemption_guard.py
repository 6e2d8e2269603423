"""EWSJF's preemption guard inside vLLM (VLLMOptions.preemption_guard; ewsjf_core.preemption_guard).

vLLM's KV cache manager keeps `watermark_blocks` free for any waiting or preempted request admitted beside
running ones (its `--watermark`, a constant share). With the guard on, the scheduler sets it each step to the
larger of the user's watermark and the guard's: after a step that preempted, the blocks the running batch grows
by between two completions (the mean output length over the block size), decaying over a request's lifetime.
The guard learns from vLLM's own events, `_preempt_request` and `_free_request` (a finished request's output
length). A release without those hooks runs without it, with a warning at start. The simulator does the same
(EngineConfig.preemption_guard).
"""

from __future__ import annotations

import logging
from typing import Any

from ewsjf_core.preemption_guard import PreemptionGuard

logger = logging.getLogger(__name__)


def make_guard(scheduler: Any) -> PreemptionGuard | None:
    """A guard over `scheduler`'s KV cache, or None (with a warning) where the release lacks the hooks."""
    kvm = scheduler.kv_cache_manager
    blocks = getattr(getattr(kvm, "block_pool", None), "num_gpu_blocks", 0)
    if not hasattr(kvm, "watermark_blocks") or not hasattr(scheduler, "_preempt_request") or blocks < 2:
        logger.warning("EWSJF: preemption_guard needs vLLM's KVCacheManager.watermark_blocks and "
                       "Scheduler._preempt_request, which this release lacks: running without it")
        return None
    return PreemptionGuard(blocks - 1, int(scheduler.cache_config.block_size))   # (the null block holds no tokens)


def set_watermark(scheduler: Any, guard: PreemptionGuard, floor: int) -> None:
    """Start the guard's step and give vLLM the watermark for it (never below the user's own, `floor`)."""
    scheduler.kv_cache_manager.watermark_blocks = max(floor, guard.begin_step())
