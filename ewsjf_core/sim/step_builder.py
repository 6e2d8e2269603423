"""Which requests get tokens in the next step: vLLM v1's Scheduler.schedule(), in block counts.

1. Running requests first: every decoder computes one token (token_budget >= max_running is checked by
   EngineConfig); requests still in prefill continue in admission order with chunks of the remaining
   budget. When the KV cache has no free block for them, the most recently admitted running request is
   preempted (recompute: its blocks are freed, it goes back to the queue with `prepend`) until the rest fit.
2. If nothing was preempted, waiting requests are admitted in the queue's order (`peek`, then `pop` once it
   fits) while budget, max_running and free KV blocks allow. A request is admitted only if the KV cache
   can hold its whole sequence less its prefix-cache hit (`reserve_full_sequence`, vLLM's
   scheduler_reserve_full_isl; free blocks include cached ones not in use), and is allocated blocks for its
   first chunk (or its whole prompt without chunked prefill: a prompt larger than the remaining budget then
   ends admission); later chunks allocate as they run. Admission stops at the first request that does not
   fit (head-of-line), as vLLM does. The queue's `begin_step(now)` runs just before its first `peek` of the
   step, and not at all in steps that never consult it (the vLLM adapter's default, lazy_begin_step).
3. Chunk caps: vLLM's long_prefill_token_threshold (EngineConfig), and EngineConfig.waiting_head_share, the
   per-step cap EWSJF's vLLM scheduler sets so that a short next request gets room beside a running prefill
   (that one peeks at the queue, so begins its step, before the running prefills are scheduled).
"""

from __future__ import annotations

import time

from ewsjf_core.preemption_guard import PreemptionGuard

from .block_manager import BlockManager
from .running import RunningSet


Batch = tuple
"""One step's work, as returned by `StepBuilder.build`: (chunks [(rid, tokens)], prefill tokens,
attention work (sum over chunks of c * (context before + (c + 1) / 2)), decode tokens, KV tokens read
(decoders' contexts and the chunks' cached prefixes), whether anything was preempted)."""


def head_room_chunk_cap(remaining: list[int], room: int) -> int:
    """The largest chunk cap under which running prefills with `remaining` tokens each take at most `room` tokens
    together (so the waiting head still gets the rest of the budget); 0 when even a cap of one token would take
    more (no cap leaves the head its room). A single prefill gets `room` itself."""
    used = 0
    left = sorted(remaining)
    for i, tokens in enumerate(left):
        if used + tokens * (len(left) - i) > room:   # every prefill from here on is cut to the cap
            return (room - used) // (len(left) - i)
        used += tokens
    return room


class StepBuilder:
    """Owns the waiting side of the engine (the queue calls, the waiting count, preemption and rejection);
    the running side lives in `RunningSet`, the KV cache in `BlockManager`."""

    __slots__ = ('running', 'blocks', '_req', 'token_budget', 'max_running', 'chunked_prefill', '_oracle',
                 'reserve_full_sequence', '_pop', 'waiting', 'queue_cpu_s', 'rejected', '_prepend', '_peek',
                 '_begin', '_end_pops', 'long_prefill_cap', '_cap', 'head_share', '_begun', 'held_by',
                 'watermark_blocks', 'guard', '_watermark')

    def __init__(self, queue, running: RunningSet, blocks: BlockManager, requests, *, token_budget: int,
                 max_running: int, chunked_prefill: bool, oracle_output: bool,
                 reserve_full_sequence: bool = True, long_prefill_token_threshold: int = 0,
                 waiting_head_share: float = 0.0, watermark_blocks: int = 0,
                 guard: PreemptionGuard | None = None) -> None:
        self.running = running
        self.blocks = blocks
        self._req = requests
        self.token_budget = token_budget
        self.max_running = max_running
        self.chunked_prefill = chunked_prefill
        self._oracle = oracle_output
        self.reserve_full_sequence = reserve_full_sequence
        self.long_prefill_cap = long_prefill_token_threshold if chunked_prefill else 0
        self._cap = 0   # this step's chunk cap (0: none): vLLM applies it unless one request is eligible
        self.head_share = waiting_head_share if chunked_prefill else 0.0
        self.watermark_blocks = watermark_blocks   # kept free by an admission while others run (vLLM's watermark)
        self.guard = guard   # a watermark learned from preemptions (EngineConfig.preemption_guard)
        self._watermark = watermark_blocks   # this step's: the larger of the two
        self._begun = False   # the queue's begin_step ran in this step
        self._prepend, self._peek, self._pop = queue.prepend, queue.peek, queue.pop
        self._begin, self._end_pops = queue.begin_step, queue.end_pops
        self.waiting = 0
        self.queue_cpu_s = 0.0
        self.rejected: list[int] = []
        """Requests rejected during admission (the engine drains this list)."""
        self.held_by = ""
        """What kept the last step from admitting more while requests waited: "preempt" (nothing is admitted
        in a step that preempts), "cap" (max_running), "budget" (the token budget), "kv" (the next request's KV
        blocks); "" when nothing waited. A diagnostic (scripts/suite_waiters.py)."""

    # ------------------------------------------------------------------ preemption
    def preempt(self, victim: int, step: int, decode_allocated: int) -> None:
        """Recompute preemption of a running request: its blocks are freed, it is put back in the queue."""
        req, run, bm = self._req, self.running, self.blocks
        was_decoding, kv_tokens = run.remove(victim, step, req.output[victim])
        if was_decoding:
            # After this step's decode blocks were allocated, the victim holds one more token's.
            private = -(-(kv_tokens + decode_allocated) // bm.block_size) - bm.shared[victim]
        else:
            private = bm.held[victim]
        bm.free_preempted(victim, private, kv_tokens)
        if self.guard is not None:
            self.guard.preempted()
        total = req.prompt[victim] + run.gen[victim]
        hitb = bm.prefix_hit(victim, total)
        hit = hitb * bm.block_size
        if victim in bm.stash:
            hit += bm.stash_hit(victim, total, hitb) * bm.block_size
        req.preemptions[victim] += 1
        t0 = time.perf_counter()
        self._prepend(victim, total, req.arrival[victim], req.priority[victim], hit,
                      req.output[victim] - run.gen[victim] if self._oracle else None)
        self.queue_cpu_s += time.perf_counter() - t0
        self.waiting += 1

    # ------------------------------------------------------------------ the step
    def build(self, step: int, now: float) -> Batch:
        self._end_pops()   # earlier steps' pops were admitted, even if preempted (prepended) below
        run, bm = self.running, self.blocks
        preempted = False
        if self.guard is not None:
            self._watermark = max(self.watermark_blocks, self.guard.begin_step())
        # decoders: one token each, maybe a new block each
        need = run.decode_blocks_needed(step)
        if need and bm.total - bm.used < need:
            while bm.total - bm.used < run.decode_blocks_needed(step) and run.order:
                self.preempt(run.last(), step, 0)
                preempted = True
            need = run.decode_blocks_needed(step)
        if need:
            bm.allocate(need)
        dec = run.n_decoding
        # vLLM's long_prefill_token_threshold, decided at the step's start from the requests eligible.
        self._cap = self.long_prefill_cap if len(run.order) + self.waiting > 1 else 0
        self._begun = False
        chunks: list[tuple[int, int]] = []
        acc = [0, 0.0, run.kv_sum]   # prefill tokens, attention work, KV read
        budget = self.token_budget - dec
        if self.head_share and run.prefilling and self.waiting and not preempted:
            self._share_for_head(now, budget)
        if run.prefilling:
            budget, p = self._continue_prefills(chunks, acc, step, budget)
            preempted = preempted or p
        if not preempted and self.waiting and budget > 0:
            self._admit(chunks, acc, now, budget)
        self.held_by = ("" if not self.waiting else "preempt" if preempted
                        else "cap" if len(run.order) >= self.max_running
                        else "budget" if acc[0] + dec >= self.token_budget else "kv")
        return chunks, acc[0], acc[1], dec, acc[2], preempted

    def _share_for_head(self, now: float, budget: int) -> None:
        """EngineConfig.waiting_head_share: cap this step's chunks so that the queue's next request, if short
        and admissible (KV blocks, running slots), gets its prompt into this step."""
        run, bm, req = self.running, self.blocks, self._req
        if len(run.order) >= self.max_running:
            return
        t0 = time.perf_counter()
        self._begin(now)
        self._begun = True
        rid = self._peek()
        self.queue_cpu_s += time.perf_counter() - t0
        total = req.prompt[rid] + run.gen[rid]
        limit = self.head_share * self.token_budget
        need, hitb = total, 0
        if need > limit and req.prefix_ids is not None:   # as the vLLM scheduler: the hit only matters here
            hitb = bm.prefix_hit(rid, total)
            need -= hitb * bm.block_size
        if need > limit or need >= budget:
            return
        # Every running prefill's capped chunk must fit beside the head, not just the first one's; the cap
        # applies to the head's own chunk too, so a cap below its tokens would not get it in either.
        room = head_room_chunk_cap([run.target[r] - run.computed[r] for r in run.prefilling], budget - need)
        if room <= 0 or room < need:
            return
        cap = room if self._cap <= 0 else min(self._cap, room)
        free = bm.total - bm.used - self._watermark - self._prefill_blocks(cap, budget)
        if -(-total // bm.block_size) - hitb > free:
            return   # it would not be admitted this step anyway: leave the budget to the running prefills
        self._cap = cap

    def _prefill_blocks(self, cap: int, budget: int) -> int:
        """KV blocks the running prefills take this step with their chunks capped at `cap` (as
        _continue_prefills allocates them, before any admission)."""
        run, bm = self.running, self.blocks
        blocks = 0
        for rid in run.prefilling:
            if budget <= 0:
                break
            c0 = run.computed[rid]
            c = min(run.target[rid] - c0, cap, budget)
            blocks += -(-(c0 + c) // bm.block_size) - bm.shared[rid] - bm.held[rid]
            budget -= c
        return blocks

    def _continue_prefills(self, chunks: list, acc: list, step: int, budget: int) -> tuple[int, bool]:
        run, bm = self.running, self.blocks
        bs = bm.block_size
        computed, target, held, shared = run.computed, run.target, bm.held, bm.shared
        prefilling = run.prefilling
        preempted = False
        cap = self._cap
        i = 0
        while i < len(prefilling) and budget > 0:
            rid = prefilling[i]
            c0 = computed[rid]
            c = target[rid] - c0
            if 0 < cap < c:
                c = cap
            if c > budget:
                c = budget
            nb = -(-(c0 + c) // bs) - shared[rid] - held[rid]
            if nb > bm.total - bm.used:
                while nb > bm.total - bm.used:
                    victim = run.last()
                    self.preempt(victim, step, 1)
                    preempted = True
                    if victim == rid:
                        break
                if rid not in run.order:
                    break
            self._add_chunk(chunks, acc, rid, c, c0, nb)
            budget -= c
            i += 1
        return budget, preempted

    def _add_chunk(self, chunks: list, acc: list, rid: int, c: int, computed: int, blocks: int) -> None:
        """Put c prompt tokens of rid (computed before: `computed`) in the step, with their KV blocks; full
        prompt blocks enter the prefix cache now, as vLLM caches them when their chunk is scheduled."""
        self.blocks.allocate_for(rid, blocks)
        if self._req.prefix_ids is not None:
            self.blocks.cache_prompt(rid, min(computed + c, self._req.prompt[rid]))
        chunks.append((rid, c))
        acc[0] += c
        acc[1] += c * (computed + (c + 1) * 0.5)
        acc[2] += computed

    def _admit(self, chunks: list, acc: list, now: float, budget: int) -> None:
        run, bm, req = self.running, self.blocks, self._req
        bs, total_blocks = bm.block_size, bm.total
        P, O, gen = req.prompt, req.output, run.gen
        first_scheduled = req.first_scheduled
        order = run.order
        chunked, max_running, token_budget = self.chunked_prefill, self.max_running, self.token_budget
        prefix, stash = req.prefix_ids is not None, bm.stash
        reserve_full = self.reserve_full_sequence
        cap = self._cap
        peek, pop = self._peek, self._pop
        perf = time.perf_counter
        qcpu = 0.0
        waiting = self.waiting
        if waiting and budget > 0 and len(order) < max_running and not self._begun:
            # The queue's step starts at its first consultation, as the vLLM adapter does (lazy_begin_step):
            # steps that never look at the waiting queue do not commit arrivals or age anything.
            t0 = perf()
            self._begin(now)
            qcpu += perf() - t0
        while waiting and budget > 0 and len(order) < max_running:
            t0 = perf()
            rid = peek()
            qcpu += perf() - t0
            total = P[rid] + gen[rid]
            if -(-(P[rid] + O[rid]) // bs) > total_blocks or (not chunked and P[rid] + O[rid] > token_budget):
                t0 = perf()
                pop()
                qcpu += perf() - t0
                waiting -= 1
                self.rejected.append(rid)
                continue
            hitb = bm.prefix_hit(rid, total) if prefix else 0
            cached = hitb * bs
            sblk = 0
            stashed = rid in stash
            if stashed:
                sblk = bm.stash_hit(rid, total, hitb)
                cached += sblk * bs
            c = total - cached
            if 0 < cap < c:
                c = cap
            if c > budget:
                if not chunked:
                    break
                c = budget
            nb = -(-(cached + c) // bs) - hitb - sblk
            # The hit's blocks that sit in the free queue leave it: they count as needed (as in vLLM).
            revived = bm.evictable_in_hit(rid, hitb) if hitb else 0
            free = total_blocks - bm.used - (self._watermark if order else 0)
            if ((reserve_full and -(-total // bs) - hitb + revived > free)
                    or nb + sblk + revived > free):
                break
            if hitb:
                bm.pin(rid, hitb)
            if stashed:
                bm.readmit(rid, sblk)
            t0 = perf()
            pop()
            qcpu += perf() - t0
            waiting -= 1
            if first_scheduled[rid] != first_scheduled[rid]:
                first_scheduled[rid] = now
                req.cached_at_admit[rid] = cached
            run.admit(rid, cached, total)
            self._add_chunk(chunks, acc, rid, c, cached, nb)
            budget -= c
        self.waiting = waiting
        self.queue_cpu_s += qcpu
