"""`SimEngine`: one continuous-batching engine in virtual time that a driver steps.

    engine = SimEngine(workload, queue, step_model, EngineConfig(), clock=clock)
    engine.submit(i)            # request i of the workload arrives (now)
    while engine.has_work():
        engine.step()           # one forward pass: schedule, advance the clock, emit tokens
    engine.num_waiting, engine.num_running, engine.kv_usage, engine.prefix_hit_tokens(j)

`simulate()` is the single-engine driver; a multi-instance simulator runs several SimEngines on one
clock each and routes each arrival with `submit`. Scheduling is `StepBuilder`'s, KV blocks are
`BlockManager`'s, the running requests `RunningSet`'s; this class runs the step and records its outcome.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ewsjf_core.field_checks import is_integer
from ewsjf_core.preemption_guard import PreemptionGuard

from .block_manager import UNLIMITED, BlockManager
from .config import EngineConfig, VirtualClock
from .request_table import RequestTable
from .running import RunningSet
from .step_builder import StepBuilder
from .workload import Workload

LOG_FIELDS = ("start_s", "duration_s", "prefill_tokens", "decode_tokens", "running", "waiting", "emitted")


class SimEngine:
    """A steppable engine over the requests of `workload` (submitted by index, in any order)."""

    __slots__ = ('clock', 'config', 'queue', 'step_model', 'requests', 'running', 'blocks', 'builder', '_oracle',
                 '_max_len', '_st', '_q_observe', '_q_first', '_q_fin', '_q_done', 'now', 'steps', 'done', 'busy_s',
                 'peak_blocks', 'batch_size', '_qcpu', '_log', 'last_step', '_q_add', '_kv_blocks', '_submitted')

    def __init__(self, workload: Workload, queue, step_time, config: EngineConfig = EngineConfig(), *,
                 clock: VirtualClock | None = None, oracle_output: bool = False, log_steps: bool = True) -> None:
        if clock is None:
            qc = getattr(queue, "clock", None)
            clock = qc if isinstance(qc, VirtualClock) else VirtualClock()
        try:
            if getattr(queue, "clock", None) is not clock:
                queue.clock = clock
        except AttributeError:
            pass
        self.clock = clock
        self.config = config
        self.queue = queue
        self.step_model = step_time
        bs = config.block_size
        self._kv_blocks = config.with_kv_blocks(step_time).kv_blocks
        # vLLM's block pool keeps one of its blocks aside (the null block): the others hold tokens.
        total = self._kv_blocks - 1 if self._kv_blocks else UNLIMITED
        use_prefix = bool(config.prefix_caching and workload.prefix_blocks is not None)
        self.requests = RequestTable(workload, use_prefix, config.max_model_len)
        n = len(self.requests)
        self.running = RunningSet(n, bs)
        self.blocks = BlockManager(total, bs, n, self.requests.prefix_ids, self_cache=config.prefix_caching,
                                   prompt_tokens=self.requests.prompt)
        self.builder = StepBuilder(queue, self.running, self.blocks, self.requests,
                                   token_budget=config.token_budget, max_running=config.max_running,
                                   chunked_prefill=config.chunked_prefill, oracle_output=oracle_output,
                                   reserve_full_sequence=config.reserve_full_sequence,
                                   long_prefill_token_threshold=config.long_prefill_token_threshold,
                                   waiting_head_share=config.waiting_head_share,
                                   watermark_blocks=int(config.kv_watermark * (self._kv_blocks or 0)),
                                   guard=self._guard(config, total, bs))
        self._oracle = oracle_output
        self._max_len = config.max_model_len or UNLIMITED
        self._st = step_time.step_time
        self._q_add, self._q_observe = queue.add, queue.observe_step
        # Optional host callbacks (duck-typed; the tuner's queues use them).
        self._q_first = getattr(queue, "on_first_token", None)
        self._q_fin = getattr(queue, "on_finish", None)
        # Completion feedback (the WaitingQueue API; a duck-typed queue may lack it).
        self._q_done = getattr(queue, "observe_finished", None)
        self._submitted = bytearray(n)   # 1 once submitted: a request enters an engine once
        self.now = clock.now
        self.steps = 0
        self.done = 0
        """Requests finished or rejected."""
        self.busy_s = 0.0
        self.peak_blocks = 0
        self.batch_size = 0
        """Requests that got tokens in the last step."""
        self._qcpu = 0.0
        self._log: list[tuple] | None = [] if log_steps else None
        self.last_step: tuple[float, float, int, int] | None = None
        """(start_s, duration_s, prefill_tokens, decode_tokens) of the last step run."""

    @staticmethod
    def _guard(config: EngineConfig, total_blocks: int, block_size: int) -> PreemptionGuard | None:
        """The preemption guard of an engine that has one (a KV cache of known size)."""
        if not config.preemption_guard or total_blocks >= UNLIMITED or total_blocks < 1:
            return None
        return PreemptionGuard(int(total_blocks), block_size)

    # ------------------------------------------------------------------ live state
    @property
    def num_waiting(self) -> int:
        return self.builder.waiting

    @property
    def num_running(self) -> int:
        return len(self.running.order)

    @property
    def kv_usage(self) -> float:
        """Fraction of the KV blocks in use (including the prefix cache's evictable blocks); 1.0 when the cache
        has no block to allocate."""
        total = self.blocks.total
        return self.blocks.used / total if total else 1.0

    @property
    def scheduler_cpu_s(self) -> float:
        """Wall seconds spent inside the queue's methods."""
        return self._qcpu + self.builder.queue_cpu_s

    def has_work(self) -> bool:
        return bool(self.builder.waiting or self.running.order)

    def prefix_hit_tokens(self, rid: int) -> int:
        """Tokens of request rid's prompt this engine's prefix cache would serve now."""
        return self.blocks.prefix_hit(rid, self.requests.prompt[rid]) * self.blocks.block_size

    # ------------------------------------------------------------------ driving
    def advance_to(self, t: float) -> None:
        """Idle until virtual time t (no-op if t is in the past)."""
        if t > self.now:
            self.now = t
        self.clock.now = self.now

    def submit(self, rid: int) -> bool:
        """Request rid arrives now: it enters the waiting queue, or is rejected (False) if its prompt does
        not fit the context length (`max_model_len`), as vLLM rejects it on arrival. ValueError (nothing changed)
        for an id that is not a request of the workload or was submitted before."""
        if not is_integer(rid) or not 0 <= rid < len(self._submitted):
            raise ValueError(f"SimEngine.submit: request {rid!r} is not a request of the workload "
                             f"(0 to {len(self._submitted) - 1})")
        if self._submitted[rid]:
            raise ValueError(f"SimEngine.submit: request {rid} was submitted before")
        rid = int(rid)
        req = self.requests
        if req.prompt[rid] >= self._max_len:
            req.rejected[rid] = True
            self._submitted[rid] = 1
            self.done += 1
            return False
        hit = self.prefix_hit_tokens(rid) if req.prefix_ids is not None else 0
        t0 = time.perf_counter()
        self._q_add(rid, req.prompt[rid], req.arrival[rid], req.priority[rid], hit,
                    req.output[rid] if self._oracle else None)
        self._qcpu += time.perf_counter() - t0
        self._submitted[rid] = 1   # after the queue took it: a queue that refuses it leaves the engine unchanged
        self.builder.waiting += 1
        return True

    def step(self) -> bool:
        """Run one step at the current time: False (clock unchanged) if there was nothing to run or
        nothing could be scheduled (see `has_work`)."""
        builder = self.builder
        if not (builder.waiting or self.running.order):
            return False
        perf = time.perf_counter
        now = self.now
        clock = self.clock
        clock.now = now
        chunks, pf, attn2, dec, kv_read, _ = builder.build(self.steps, now)
        if builder.rejected:
            self._drain_rejected()
        used = self.blocks.used
        if used > self.peak_blocks:
            self.peak_blocks = used
        n_pf = len(chunks)
        if dec == 0 and n_pf == 0:
            return False
        dur = self._st(pf, attn2, dec, kv_read, n_pf)
        self.now = clock.now = end = now + dur
        self.busy_s += dur
        # decoders: each emitted a token; those at their output length finish
        run = self.running
        emitted = run.n_decoding
        run.kv_sum += emitted
        fin = run.finish_decoders(self.steps)
        if fin:
            self._finish_decoders(fin)
        if n_pf:
            emitted += self._complete_chunks(chunks, end)
        t0 = perf()
        self._q_observe(dur, pf, dec, builder.held_by == "cap")
        self._qcpu += perf() - t0
        self.batch_size = dec + n_pf
        if self._log is not None:
            self._log.append((now, dur, pf, dec, len(self.running.order), builder.waiting, emitted))
        self.last_step = (now, dur, pf, dec)
        self.steps += 1
        return True

    # ------------------------------------------------------------------ outcome of a step
    def _drain_rejected(self) -> None:
        for rid in self.builder.rejected:
            self.requests.rejected[rid] = True
        self.done += len(self.builder.rejected)
        self.builder.rejected.clear()

    def _finish_decoders(self, fin: list[tuple[int, int]]) -> None:
        """Decoders that computed their last token: [(rid, context)]; their blocks are freed."""
        bm = self.blocks
        bs, shared, free = bm.block_size, bm.shared, bm.free
        for rid, ctx in fin:
            free(rid, -(-ctx // bs) - shared[rid], ctx)
        self._finished([rid for rid, _ in fin])

    def _finished(self, rids: list[int]) -> None:
        """Record requests that emitted their last token in the step just run (their blocks are freed)."""
        req = self.requests
        finish, output, gen, now, q_fin = req.finish, req.output, self.running.gen, self.now, self._q_fin
        q_done, prompt = self._q_done, req.prompt
        guard = self.builder.guard
        for rid in rids:
            finish[rid] = now
            gen[rid] = output[rid]
            if guard is not None:
                guard.finished(int(output[rid]))
            if q_done is not None:
                t0 = time.perf_counter()
                q_done(int(prompt[rid]), int(output[rid]))
                self._qcpu += time.perf_counter() - t0
            if q_fin is not None:
                t0 = time.perf_counter()
                q_fin(rid, output[rid], now)
                self._qcpu += time.perf_counter() - t0
        self.done += len(rids)

    def _complete_chunks(self, chunks: list[tuple[int, int]], now: float) -> int:
        """Chunks computed; prefills that completed emit a token (first token, or the next after a
        recompute) and then decode from the next step, or finish. Returns tokens emitted."""
        run, bm, req = self.running, self.blocks, self.requests
        computed, target, gen = run.computed, run.target, run.gen
        emitted = 0
        first_token, output = req.first_token, req.output
        for rid, c in chunks:
            c1 = computed[rid] + c
            computed[rid] = c1
            if c1 < target[rid]:
                continue
            emitted += 1
            g = gen[rid] = gen[rid] + 1
            if first_token[rid] != first_token[rid]:
                first_token[rid] = now
                if self._q_first is not None:
                    t0 = time.perf_counter()
                    self._q_first(rid, now)
                    self._qcpu += time.perf_counter() - t0
            if g >= output[rid]:
                run.finish_prefill(rid)
                bm.free(rid, bm.held[rid], c1)
                self._finished([rid])
                continue
            run.start_decoding(rid, self.steps + 1, c1, output[rid])
        return emitted

    def step_log(self) -> dict[str, np.ndarray]:
        """Per step: start_s, duration_s, prefill_tokens, decode_tokens, running, waiting, emitted."""
        if self._log is None:
            return {}
        cols = list(zip(*self._log)) if self._log else [()] * len(LOG_FIELDS)
        return {k: np.array(v, dtype=float if k in ("start_s", "duration_s") else np.int64)
                for k, v in zip(LOG_FIELDS, cols)}

    def info(self) -> dict[str, Any]:
        cfg, bm = self.config, self.blocks
        return {"kv_blocks": self._kv_blocks or bm.total, "block_size": cfg.block_size,
                "token_budget": cfg.token_budget,
                "max_running": cfg.max_running, "chunked_prefill": cfg.chunked_prefill,
                "long_prefill_token_threshold": cfg.long_prefill_token_threshold,
                "waiting_head_share": cfg.waiting_head_share, "kv_watermark": cfg.kv_watermark,
                "preemption_guard": cfg.preemption_guard,
                "prefix_caching": self.requests.prefix_ids is not None, "queue": type(self.queue).__name__,
                "step_time": repr(self.step_model), "blocks_in_use_at_end": bm.used,
                "cached_blocks_at_end": bm.cached_blocks, "peak_blocks_used": self.peak_blocks}
