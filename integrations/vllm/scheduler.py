"""EWSJF schedulers for vLLM: `EWSJFScheduler` (over vLLM's Scheduler) and `AsyncEWSJFScheduler` (over
AsyncScheduler), sharing `EWSJFSchedulerMixin`.

    vllm serve MODEL --scheduler-cls ewsjf.integrations.vllm.EWSJFScheduler

What the mixin changes, and nothing else:
  - after vLLM's constructor, `self.waiting` becomes an EWSJFRequestQueue (vLLM's RequestQueue over
    EWSJFQueue): vLLM's admission loop then takes waiting requests in EWSJF order, with its own token
    budget, KV-cache and preemption logic untouched. kv_holding_waiting (requests already holding KV blocks,
    which vLLM drains first), deferred_waiting and running stay vLLM's.
  - schedule() starts with queue.begin_step(now); the admission order of the step is computed then.
  - update_from_output() feeds queue.observe_step(duration, prefill_tokens, decode_tokens) for the step
    whose output it processes. duration = now - max(that step's schedule() time, previous output's time):
    the execution time in the synchronous engine, and the time between outputs when async scheduling keeps
    two steps in flight; idle gaps never count. Tokens: a request given exactly one token this step is
    counted as a decode, every other scheduled token as prefill (speculative-decoding verify tokens land in
    prefill: documented approximation, one C-speed count per step).
  - the clock is injectable (`clock=`): the virtual harness runs vLLM's real scheduler in virtual time.

Auto async: vLLM instantiates exactly the class it is given. With async scheduling on (vLLM's default on
GPU), `EWSJFScheduler` builds an `AsyncEWSJFScheduler` instead, so one flag is right in both modes
(set `EWSJFScheduler.auto_async = False`, or name a class explicitly, to opt out).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any, Callable, Mapping

from vllm.v1.core.sched.async_scheduler import AsyncScheduler
from vllm.v1.core.sched.scheduler import Scheduler
from vllm.v1.request import Request

from ewsjf.bindings import EWSJFConfig, EWSJFQueue
from ewsjf.integrations.vllm.config import Settings, VLLMOptions, load_settings
from ewsjf.integrations.vllm.metrics import EngineMetrics
from ewsjf.integrations.vllm.request_queue import EWSJFRequestQueue
from ewsjf.integrations.vllm.version import check_vllm_version

logger = logging.getLogger("vllm.ewsjf")

Clock = Callable[[], float]


class EWSJFSchedulerMixin:
    """Shared by EWSJFScheduler and AsyncEWSJFScheduler; must come before vLLM's class in the bases."""

    waiting: EWSJFRequestQueue

    def __init__(self, *args: Any, ewsjf_config: EWSJFConfig | Mapping[str, Any] | None = None,
                 ewsjf_options: VLLMOptions | Mapping[str, Any] | None = None, clock: Clock | None = None,
                 **kwargs: Any) -> None:
        check_vllm_version()
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]
        vllm_config = self.vllm_config  # type: ignore[attr-defined]
        settings = load_settings(getattr(vllm_config, "additional_config", None), ewsjf_config, ewsjf_options)
        self.ewsjf_settings: Settings = settings
        self._ewsjf_clock: Clock = clock or time.time
        self.ewsjf_queue = EWSJFQueue(settings.config, clock=self._ewsjf_clock)
        opts = settings.options
        cached_fn = self._ewsjf_cached_tokens if (opts.prefix_cache_lookup
                                                  and self.cache_config.enable_prefix_caching) else None
        predict = _max_tokens if opts.output_prediction == "max_tokens" else None
        old = self.waiting
        self.waiting = EWSJFRequestQueue(self.ewsjf_queue, cached_fn, predict)
        for request in old:  # empty after vLLM's constructor; kept for subclasses that pre-fill it
            self.waiting.add_request(request)
        # Steps scheduled and not yet processed: (scheduler_output, schedule time, prefill, decode).
        self._ewsjf_inflight: deque[tuple[Any, float, int, int]] = deque()
        self._ewsjf_last_output = float("-inf")
        self.ewsjf_steps = 0
        self.ewsjf_metrics = EngineMetrics.create(vllm_config, opts, self._ewsjf_clock)
        async_on = bool(getattr(vllm_config.scheduler_config, "async_scheduling", False))
        if async_on != isinstance(self, AsyncScheduler):
            logger.warning("EWSJF: %s runs with async_scheduling=%s; vLLM pairs async scheduling with "
                           "AsyncScheduler: use ewsjf.integrations.vllm.EWSJFScheduler (it picks the variant)",
                           type(self).__name__, async_on)
        logger.info("EWSJF scheduler %s active (vLLM %s): %s; overrides from %s", type(self).__name__,
                    check_vllm_version(), _short_config(settings.config),
                    ", ".join(settings.sources) or "none (defaults)")

    # --- prefix-cache-aware sizing (read-only lookup; same call vLLM's admission makes) ---
    def _ewsjf_cached_tokens(self, request: Request) -> int:
        if not request.block_hashes or request.num_tokens <= 1:
            return 0
        kvm = self.kv_cache_manager  # type: ignore[attr-defined]
        try:
            if not kvm.prefix_cache_lookup_enabled(request):
                return 0
            _, hit, _ = kvm.coordinator.find_longest_cache_hit(request.block_hashes, request.num_tokens - 1)
            return int(hit)
        except Exception:  # an unexpected KV-cache layout: size by the full prompt from now on
            logger.warning("EWSJF: prefix-cache lookup failed; sizing requests by full prompt length",
                           exc_info=True)
            self.waiting._cached_tokens_fn = None
            return 0

    # --- the hot path ---
    def schedule(self, *args: Any, **kwargs: Any):
        now = self._ewsjf_clock()
        metrics = self.ewsjf_metrics
        if metrics is not None and now >= metrics.next_due:
            try:
                metrics.export(self.ewsjf_stats(), now)
            except Exception:  # observability must never take the engine down
                logger.warning("EWSJF: metrics export failed; disabled", exc_info=True)
                self.ewsjf_metrics = None
        self.ewsjf_queue.begin_step(now)
        output = super().schedule(*args, **kwargs)  # type: ignore[misc]
        total = output.total_num_scheduled_tokens
        if total:
            decode = list(output.num_scheduled_tokens.values()).count(1)
            self._ewsjf_inflight.append((output, now, total - decode, decode))
        self.ewsjf_steps += 1
        return output

    def update_from_output(self, scheduler_output: Any, model_runner_output: Any):
        outputs = super().update_from_output(scheduler_output, model_runner_output)  # type: ignore[misc]
        inflight = self._ewsjf_inflight
        if inflight and scheduler_output.total_num_scheduled_tokens:
            # Outputs come back in scheduling order; drop entries of steps whose output never came.
            while inflight and inflight[0][0] is not scheduler_output:
                inflight.popleft()
            if inflight:
                _, started, prefill, decode = inflight.popleft()
                now = self._ewsjf_clock()
                duration = now - max(started, self._ewsjf_last_output)
                self._ewsjf_last_output = now
                if duration > 0:
                    self.ewsjf_queue.observe_step(duration, prefill, decode)
        return outputs

    # --- observability ---
    def ewsjf_stats(self) -> dict[str, Any]:
        """The queue's stats() plus the adapter's counters (what /metrics and the log summary show)."""
        stats = self.ewsjf_queue.stats()
        stats["steps"] = self.ewsjf_steps
        stats["kv_holding_waiting"] = len(self.kv_holding_waiting)  # type: ignore[attr-defined]
        stats["running"] = len(self.running)  # type: ignore[attr-defined]
        return stats

    def shutdown(self) -> None:
        try:
            if self.ewsjf_metrics is not None:
                self.ewsjf_metrics.close()
        finally:
            super().shutdown()  # type: ignore[misc]


def _max_tokens(request: Request) -> int | None:
    return request.max_tokens if request.sampling_params is not None else None


def _short_config(cfg: EWSJFConfig) -> str:
    return (f"max_queues={cfg.max_queues} k0={cfg.k0} alpha={cfg.alpha:g} a_u={cfg.a_u:g} b_u={cfg.b_u:g} "
            f"a_f={cfg.a_f:g} b_f={cfg.b_f:g} w_base={cfg.w_base:g} max_wait={cfg.max_wait:g}s")


class AsyncEWSJFScheduler(EWSJFSchedulerMixin, AsyncScheduler):
    """EWSJF over vLLM's AsyncScheduler (async scheduling: one step scheduled ahead of the model)."""


class EWSJFScheduler(EWSJFSchedulerMixin, Scheduler):
    """EWSJF over vLLM's Scheduler. Under async scheduling it builds an AsyncEWSJFScheduler (auto_async)."""

    auto_async: bool = True

    def __new__(cls, *args: Any, **kwargs: Any):
        if cls is EWSJFScheduler and cls.auto_async:
            vllm_config = kwargs.get("vllm_config", args[0] if args else None)
            if getattr(getattr(vllm_config, "scheduler_config", None), "async_scheduling", False):
                # Not an EWSJFScheduler instance, so Python will not call __init__ again on it.
                instance = AsyncEWSJFScheduler.__new__(AsyncEWSJFScheduler)
                instance.__init__(*args, **kwargs)
                return instance
        return super().__new__(cls)
