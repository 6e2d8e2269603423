"""EWSJF schedulers for vLLM: `EWSJFScheduler` (over vLLM's Scheduler) and `AsyncEWSJFScheduler` (over
AsyncScheduler), sharing `EWSJFSchedulerMixin`.

    vllm serve MODEL --scheduler-cls ewsjf.integrations.vllm.EWSJFScheduler

What the mixin changes, and nothing else:
  - after vLLM's constructor, `self.waiting` becomes an EWSJFRequestQueue (vLLM's RequestQueue over
    EWSJFQueue): vLLM's admission loop then takes waiting requests in EWSJF order, with its own token
    budget, KV-cache and preemption logic untouched. kv_holding_waiting (requests already holding KV blocks,
    which vLLM drains first), deferred_waiting and running stay vLLM's.
  - schedule() starts the step at now = clock(): queue.begin_step(now) runs when vLLM first consults the
    waiting queue in that step (see EWSJFRequestQueue.start_step: steps that admit nothing skip it, which
    keeps EWSJF's per-step cost off steps where the order cannot matter); the admission order is computed then.
  - update_from_output() records (duration, prefill_tokens, decode_tokens) for the step whose output it
    processes; they reach queue.observe_step, in order, right before the next begin_step (or stats()),
    i.e. before the cost model is next used. duration = now - max(that step's schedule() time, previous output's time):
    the execution time in the synchronous engine, and the time between outputs when async scheduling keeps
    two steps in flight; idle gaps never count. Tokens: a request given exactly one token this step is
    counted as a decode, every other scheduled token as prefill (speculative-decoding verify tokens land in
    prefill: documented approximation, one C-speed count per step).
  - _free_request() tells the queue each finished request's prompt and output lengths (observe_finished).
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
from ewsjf_core.warmup import compile_kernels
from ewsjf.integrations.vllm.compat import (active_requests, admits_new, held_waiting, num_waiting, running_cap,
                                            streaming_sessions_idle)
from ewsjf.integrations.vllm.config import Settings, VLLMOptions, load_settings
from ewsjf.integrations.vllm.head_share import chunk_cap, head_cap
from ewsjf.integrations.vllm.metrics import EngineMetrics
from ewsjf.integrations.vllm.preemption_guard import make_guard, set_watermark
from ewsjf.integrations.vllm.replay_engine import replay_engine
from ewsjf.integrations.vllm.request_queue import EWSJFRequestQueue
from ewsjf.integrations.vllm.version import check_vllm_version

logger = logging.getLogger("vllm.ewsjf")

Clock = Callable[[], float]
_MAX_PENDING_FEEDBACK = 256  # feed the cost model at least this often even if no step admits anything


class EWSJFSchedulerMixin:
    """Shared by EWSJFScheduler and AsyncEWSJFScheduler; must come before vLLM's class in the bases."""

    waiting: EWSJFRequestQueue
    # Class-level defaults: vLLM's tests (and tools) build a scheduler with __new__ and set the attributes
    # they need by hand, then call update_from_output / finish_requests; those must still work.
    _ewsjf_out_tokens: dict[str, int] | None = None
    # Requests vLLM finished inside the update_from_output running now (its errors); None outside of one.
    _ewsjf_finishing: set[str] | None = None
    _ewsjf_inflight: Any = ()
    ewsjf_metrics: EngineMetrics | None = None
    _ewsjf_idle_exported = True
    _ewsjf_cached_fn = None
    _ewsjf_head_share = 0.0
    _ewsjf_guard = None
    _ewsjf_watermark_floor = 0

    def __init__(self, *args: Any, ewsjf_config: EWSJFConfig | Mapping[str, Any] | None = None,
                 ewsjf_options: VLLMOptions | Mapping[str, Any] | None = None, clock: Clock | None = None,
                 **kwargs: Any) -> None:
        check_vllm_version()
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]
        vllm_config = self.vllm_config  # type: ignore[attr-defined]
        settings = load_settings(getattr(vllm_config, "additional_config", None), ewsjf_config, ewsjf_options)
        self.ewsjf_settings: Settings = settings
        self._ewsjf_clock: Clock = clock or time.time
        if settings.tuner is None:
            self.ewsjf_queue = EWSJFQueue(settings.config, clock=self._ewsjf_clock)
        else:  # the Bayesian tuner in a background thread; trials replay in a niced worker process
            from ewsjf.bindings.tuned_queue import TunedEWSJFQueue
            tuner = settings.tuner   # its replays run on this engine's settings (what the user set wins)
            try:
                tuner = tuner.on_engine(replay_engine(self, settings.options))
            except ValueError as e:   # a setting the simulator cannot model: serve, replay on the user's
                logger.warning("EWSJF tuner: replays cannot mirror this engine (%s); they use the tuner's "
                               "engine settings", e)
            self.ewsjf_queue = TunedEWSJFQueue(settings.config, clock=self._ewsjf_clock, settings=tuner,
                                               start=True)
        # Output tokens so far per request (only with the tuner: it needs first-token and finish times).
        self._ewsjf_out_tokens: dict[str, int] | None = None if settings.tuner is None else {}
        compile_kernels()  # at engine start, so no request pays the JIT (or its cache load)
        opts = settings.options
        cached_fn = self._ewsjf_cached_tokens if (opts.prefix_cache_lookup
                                                  and self.cache_config.enable_prefix_caching) else None
        self._ewsjf_cached_fn = cached_fn
        self._ewsjf_head_share = opts.waiting_head_share
        self._ewsjf_guard = make_guard(self) if opts.preemption_guard else None
        if self._ewsjf_guard is not None:   # the user's --watermark stays the floor
            self._ewsjf_watermark_floor = self.kv_cache_manager.watermark_blocks  # type: ignore[attr-defined]
        max_model_len = vllm_config.model_config.max_model_len
        predict = _OutputCap(max_model_len) if opts.output_prediction == "max_tokens" else None
        old = self.waiting
        self.waiting = EWSJFRequestQueue(self.ewsjf_queue, cached_fn, predict)
        self.waiting.lazy_begin_step = opts.lazy_begin_step
        # vLLM's fcfs policy (its default) ignores request priorities; EWSJF's classes follow it.
        self.waiting.priority_classes = vllm_config.scheduler_config.policy == "priority"
        self.waiting.before_begin = self._ewsjf_feed
        for request in old:  # empty after vLLM's constructor; kept for subclasses that pre-fill it
            self.waiting.add_request(request)
        # Steps scheduled and not yet processed: (scheduler_output, schedule time, prefill, decode, at the cap,
        # requests left waiting for admission).
        self._ewsjf_inflight: deque[tuple[Any, float, int, int, bool, bool]] = deque()
        self._ewsjf_last_output = float("-inf")
        # Step feedback not yet given to the queue: (duration, prefill tokens, decode tokens, at the running cap,
        # requests left waiting).
        self._ewsjf_feedback: list[tuple[float, int, int, bool, bool]] = []
        self.ewsjf_steps = 0
        self.ewsjf_metrics = EngineMetrics.create(vllm_config, opts, self._ewsjf_clock)
        self._ewsjf_idle_exported = False
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
            self.waiting.cached_tokens_fn = None
            return 0

    def reset_prefix_cache(self, *args: Any, **kwargs: Any) -> bool:
        """vLLM's reset: the waiting requests were sized by prefix-cache hits that are now gone; size them again
        (in place: each keeps its place in the starvation bound), or EWSJF would go on ordering them as short."""
        reset = super().reset_prefix_cache(*args, **kwargs)  # type: ignore[misc]
        if reset:
            self.waiting.refresh_sizes()
        return reset

    # --- the hot path ---
    def schedule(self, *args: Any, **kwargs: Any):
        now = self._ewsjf_clock()
        self._ewsjf_idle_exported = False
        waiting = self.waiting
        if waiting.before_begin is None:  # a subclass swapped the adapter in
            waiting.before_begin = self._ewsjf_feed
        waiting.start_step(now)  # EWSJFQueue.begin_step(now), lazily at the step's first peek/pop
        if self._ewsjf_guard is not None:
            set_watermark(self, self._ewsjf_guard, self._ewsjf_watermark_floor)
        share = self._ewsjf_head_share
        cap = head_cap(self, share, self._ewsjf_cached_fn) if share else 0
        if cap:   # a share of the budget for the next waiting request (head_share.py)
            with chunk_cap(self, cap):
                output = super().schedule(*args, **kwargs)  # type: ignore[misc]
        else:
            output = super().schedule(*args, **kwargs)  # type: ignore[misc]
        waiting.end_step()   # a look at the queue before the next step runs no round this step skipped
        total = output.total_num_scheduled_tokens
        if total:
            decode = list(output.num_scheduled_tokens.values()).count(1)
            self._ewsjf_inflight.append((output, now, total - decode, decode, self._ewsjf_at_running_cap(),
                                         self._ewsjf_left_waiting()))
        self.ewsjf_steps += 1
        metrics = self.ewsjf_metrics
        if metrics is not None and (now >= metrics.next_due or now < metrics.since):   # (since: the clock went back)
            self._ewsjf_export(now)  # after the step admitted: the snapshot agrees with vLLM's own counts
        return output

    def _ewsjf_at_running_cap(self) -> bool:
        """Whether requests still wait with the running set at vLLM's cap (max_num_seqs) after this step's
        admissions: the cap, not KV memory or the token budget, held them (observe_step's at_running_cap). Streaming
        sessions waiting for input take a slot (vLLM counts them so) but wait for their client, not for admission."""
        return active_requests(self) >= running_cap(self) and num_waiting(self) > streaming_sessions_idle(self)

    def _ewsjf_left_waiting(self) -> bool:
        """Whether requests still wait in the EWSJF queue after this step's admissions (observe_step's waiting), as
        of now: the feedback reaches the queue steps later, when others may have arrived. Not while vLLM is paused
        for new requests (PAUSED_NEW: the running ones go on): the pause holds them, not KV memory or the cap, and
        a long pause would read as KV pressure afterwards."""
        return bool(self.waiting) and admits_new(self)

    def _ewsjf_export(self, now: float, force: bool = False) -> None:
        try:
            self.ewsjf_metrics.export(self.ewsjf_stats(), now, force)
        except Exception:  # observability must never take the engine down
            logger.warning("EWSJF: metrics export failed; disabled", exc_info=True)
            metrics, self.ewsjf_metrics = self.ewsjf_metrics, None
            metrics.close()   # its last snapshot would pass for current while the engine lives, and outlive it

    def _ewsjf_export_if_idle(self) -> None:
        """vLLM stops calling schedule() when nothing is left: write the final (empty) state right away,
        or /metrics would keep showing the last busy snapshot for as long as the engine idles."""
        if (self.ewsjf_metrics is not None and not self._ewsjf_idle_exported
                and not self.get_num_unfinished_requests()):  # type: ignore[attr-defined]
            self._ewsjf_idle_exported = True  # once per idle period
            self._ewsjf_export(self._ewsjf_clock(), force=True)

    def update_from_output(self, scheduler_output: Any, model_runner_output: Any):
        if self._ewsjf_out_tokens is None:
            outputs = super().update_from_output(scheduler_output, model_runner_output)  # type: ignore[misc]
        else:
            self._ewsjf_finishing = set()
            try:
                outputs = super().update_from_output(scheduler_output, model_runner_output)  # type: ignore[misc]
                self._ewsjf_report_tokens(outputs)
            finally:
                self._ewsjf_finishing = None
        inflight = self._ewsjf_inflight
        if inflight and scheduler_output.total_num_scheduled_tokens:
            # Outputs come back in scheduling order; drop entries of steps whose output never came.
            while inflight and inflight[0][0] is not scheduler_output:
                inflight.popleft()
            if inflight:
                _, started, prefill, decode, at_cap, waited = inflight.popleft()
                now = self._ewsjf_clock()
                duration = now - max(started, self._ewsjf_last_output)
                self._ewsjf_last_output = now
                if duration > 0:
                    feedback = self._ewsjf_feedback
                    feedback.append((duration, prefill, decode, at_cap, waited))
                    if len(feedback) >= _MAX_PENDING_FEEDBACK:
                        self._ewsjf_feed()
        self._ewsjf_export_if_idle()
        return outputs

    def _ewsjf_report_tokens(self, outputs: Any) -> None:
        """Tell the tuner (its rollback guard and replay window) first-token and finish times."""
        counts, finishing = self._ewsjf_out_tokens, self._ewsjf_finishing
        queue = self.ewsjf_queue
        now = self._ewsjf_clock()
        for engine_outputs in outputs.values():
            for out in engine_outputs.outputs:
                rid = out.request_id
                before = counts.get(rid, 0)
                after = before + len(out.new_token_ids)
                if before == 0 and after > 0:
                    queue.on_first_token(rid, now)
                if out.finish_reason is not None:
                    counts.pop(rid, None)
                    finishing.discard(rid)
                    queue.on_finish(rid, after, now)
                else:
                    counts[rid] = after
        for rid in finishing:   # finished inside the step without a finish output (none in vLLM 0.32)
            queue.on_finish(rid, counts.pop(rid, 0), now)

    def finish_requests(self, request_ids: Any, finished_status: Any):
        finished = super().finish_requests(request_ids, finished_status)  # type: ignore[misc]
        counts = self._ewsjf_out_tokens
        if counts is not None and finished and self._ewsjf_finishing is not None:
            # vLLM's own errors inside update_from_output: their finish output follows in this step's outputs,
            # after this step's tokens; _ewsjf_report_tokens reports them then, with all their tokens.
            self._ewsjf_finishing.update(getattr(request, "request_id", request) for request in finished)
        elif counts is not None and finished:
            # Aborted requests get no finish output: tell the tuner they left now (with the tokens they got),
            # or its replays would count them as backlog in every later window.
            now = self._ewsjf_clock()
            on_finish = self.ewsjf_queue.on_finish
            for request in finished:
                rid = getattr(request, "request_id", request)
                on_finish(rid, counts.pop(rid, 0), now)
        self._ewsjf_export_if_idle()
        return finished

    def _free_request(self, request: Request, *args: Any, **kwargs: Any):
        """vLLM frees every finished request here (stopped or aborted): a request that generated output tells
        the queue its output length (EWSJFQueue.observe_finished), and the preemption guard its lifetime,
        before vLLM forgets the request."""
        out, prompt = request.num_output_tokens, request.num_prompt_tokens
        if out > 0 and prompt > 0:   # (a prompt of embeddings alone has no tokens to size a class by)
            self.ewsjf_queue.observe_finished(prompt, out)
        if self._ewsjf_guard is not None and out > 0:
            self._ewsjf_guard.finished(int(out))
        return super()._free_request(request, *args, **kwargs)  # type: ignore[misc]

    def _preempt_request(self, request: Request, *args: Any, **kwargs: Any):
        """vLLM preempts a running request here: the preemption guard sees it."""
        if self._ewsjf_guard is not None:
            self._ewsjf_guard.preempted()
        return super()._preempt_request(request, *args, **kwargs)  # type: ignore[misc]

    def _ewsjf_feed(self) -> None:
        """Give the queued step feedback to the cost model (observe_step), oldest first.

        Feedback is queued by update_from_output and fed right before the queue's next begin_step, i.e.
        before the cost model is next used (admission order, starvation deadlines of new arrivals) and
        before stats() reads it: the model sees every step, in order, as if fed immediately, while steps
        that admit nothing do no EWSJF work at all (and the batch runs with warm caches)."""
        feedback = self._ewsjf_feedback
        if feedback:
            self._ewsjf_feedback = []
            observe = self.ewsjf_queue.observe_step
            for duration, prefill, decode, at_cap, waited in feedback:
                observe(duration, prefill, decode, at_cap, waited)

    # --- observability ---
    def ewsjf_stats(self) -> dict[str, Any]:
        """The queue's stats() plus the adapter's counters (what /metrics and the log summary show)."""
        self._ewsjf_feed()
        stats = self.ewsjf_queue.stats()
        stats["steps"] = self.ewsjf_steps
        stats["kv_holding_waiting"] = len(held_waiting(self))
        stats["running"] = len(self.running)  # type: ignore[attr-defined]
        guard = self._ewsjf_guard
        if guard is not None:
            stats["preemption_guard"] = {"watermark_blocks": guard.watermark, "preemptions": guard.preemptions,
                                         "lifetime_steps": guard.lifetime_steps}
        # unfinished (chunked) prefills of the running batch: ahead of every waiting request (Ray router). A resumed
        # request recomputes its output so far too: its prefill runs to num_tokens, not to its prompt's end.
        stats["prefilling_tokens"] = sum(r.num_tokens - r.num_computed_tokens for r in self.running  # type: ignore
                                         if r.is_prefill_chunk)
        return stats

    def shutdown(self) -> None:
        try:
            if self.ewsjf_metrics is not None:
                self.ewsjf_metrics.close()
            stop_tuner = getattr(self.ewsjf_queue, "stop_tuner", None)
            if stop_tuner is not None:
                stop_tuner()
        finally:
            super().shutdown()  # type: ignore[misc]


class _OutputCap:
    """output_prediction "max_tokens": the most output tokens a request can get, i.e. its max_tokens, but no more
    than max_model_len leaves after its prompt (vLLM stops it there). An offline LLM's max_tokens is not clamped
    to the context: 10**18 is valid there, and would be neither a job size nor within EWSJF's 2**53 bound."""

    def __init__(self, max_model_len: int) -> None:
        self.max_model_len = max_model_len

    def __call__(self, request: Request) -> int | None:
        if request.sampling_params is None:
            return None
        return max(0, min(request.max_tokens, self.max_model_len - request.num_prompt_tokens))


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
