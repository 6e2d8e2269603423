"""`sim`: a fast continuous-batching engine in virtual time, modelled on vLLM v1's scheduler.

Each step (one forward pass) at virtual time `now`:
1. Requests whose arrival time is <= now are added to the waiting queue (`queue.add`, with the prefix-cache
   hit known at arrival as `cached_tokens`; with `oracle_output=True` the true output length is passed as
   `predicted_output_tokens`). With nothing running and nothing waiting, time jumps to the next arrival.
2. `queue.begin_step(now)`.
3. Running requests are scheduled first: every decoding request computes one token (this needs
   token_budget >= max_running, checked); requests still in prefill continue in admission order with
   chunks of the remaining token budget. When the KV cache has no free block for them, the most recently
   admitted running request is preempted (recompute, like vLLM: its blocks are freed, it is put back with
   `queue.prepend`, and later prefills its prompt plus the tokens it had generated) until the rest fit.
4. If nothing was preempted in this step, waiting requests are admitted in the queue's order
   (`peek`, then `pop` once it fits) while token budget, `max_running` and free KV blocks allow: a request
   needs blocks for its cached prefix hit plus its first chunk (chunked prefill) or its whole prompt
   (chunked_prefill=False; a prompt larger than the remaining budget then ends admission, as in vLLM).
   Admission stops at the first request that does not fit (head-of-line), as vLLM does.
5. The step's duration comes from the step-time model; the clock advances by it; requests that finished
   their prefill emit their first token at the step's end time; decoders emit one token each; requests
   reaching their output length finish and free their blocks. `queue.observe_step(duration, prefill_tokens,
   decode_tokens)` reports the step.

KV cache: `kv_blocks` blocks of `block_size` tokens. Prefix caching (only for workloads with
`prefix_blocks`): each prefix block id stands for 512 tokens (512 / block_size engine blocks); a request
reuses the longest run of leading ids already cached (at most prompt - 1 tokens, as vLLM always computes
one token); blocks of a finished prefill enter the cache; unreferenced cached blocks are evicted LRU when
space is needed.

Requests whose prompt plus output can never fit in the whole KV cache are rejected at admission
(`SimResult.rejected`), as vLLM rejects prompts beyond its capacity.

Speed: decoding requests are accounted in aggregate (counts per block phase, a sum of contexts and a
finish-step table), so a step costs O(prefilling + admitted + finished requests), not O(running).
`SimResult.scheduler_cpu_s` is the wall time (single thread, so CPU time) spent inside the queue's methods.

Optional host callbacks: if the queue has `on_first_token(request_id, t)` and/or
`on_finish(request_id, output_tokens, t)`, they are called when a request emits its first token and when it
finishes (virtual time t); their time counts as scheduler time too.
"""

from __future__ import annotations

import heapq
import math
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .workload import PREFIX_BLOCK_TOKENS, Workload


class VirtualClock:
    """The simulation's clock: call it (or read `.now`) for the current virtual time in seconds.

    Pass the instance as the queue's clock (`FCFSQueue(clock=clock)`) and to `simulate(..., clock=clock)`.
    """

    __slots__ = ("now",)

    def __init__(self, start: float = 0.0) -> None:
        self.now = float(start)

    def __call__(self) -> float:
        return self.now

    def __repr__(self) -> str:
        return f"VirtualClock(now={self.now!r})"


@dataclass(frozen=True)
class EngineConfig:
    token_budget: int = 8192
    """max_num_batched_tokens: tokens computed per step at most."""
    max_running: int = 256
    """max_num_seqs: running requests at most."""
    kv_blocks: int | None = None
    """KV-cache blocks; None: derived from GPU memory by the step-time model (its kv_blocks()), or
    unlimited if the model has none."""
    block_size: int = 16
    chunked_prefill: bool = True
    prefix_caching: bool = True
    gpu_memory_utilization: float = 0.9
    """Used when kv_blocks is None, as vLLM's --gpu-memory-utilization."""

    def __post_init__(self) -> None:
        for name in ("token_budget", "max_running", "block_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"EngineConfig.{name} must be an integer >= 1, got {v!r}")
        if self.kv_blocks is not None and (isinstance(self.kv_blocks, bool) or not isinstance(self.kv_blocks, int)
                                           or self.kv_blocks < 1):
            raise ValueError(f"EngineConfig.kv_blocks must be an integer >= 1 or None, got {self.kv_blocks!r}")
        if self.token_budget < self.max_running:
            raise ValueError(f"EngineConfig.token_budget ({self.token_budget}) must be >= max_running "
                             f"({self.max_running}): every running request decodes each step")
        if PREFIX_BLOCK_TOKENS % self.block_size:
            raise ValueError(f"EngineConfig.block_size ({self.block_size}) must divide {PREFIX_BLOCK_TOKENS}")
        if not 0 < self.gpu_memory_utilization <= 1:
            raise ValueError("EngineConfig.gpu_memory_utilization must be in (0, 1]")


@dataclass
class SimResult:
    """Per-request arrays aligned with `workload` (NaN where a request never got there), plus totals."""

    workload: Workload
    first_token_s: np.ndarray
    finish_s: np.ndarray
    first_scheduled_s: np.ndarray
    """Virtual time the request was first admitted (queue wait = this - arrival)."""
    preemptions: np.ndarray
    cached_tokens: np.ndarray
    """Prefix-cache hit (tokens) at the request's first admission."""
    rejected: np.ndarray
    steps: int
    scheduler_cpu_s: float
    sim_end_s: float
    busy_s: float
    """Virtual time spent in steps (the GPU busy time)."""
    wall_s: float
    """Real seconds the simulation took."""
    step_log: dict[str, np.ndarray] = field(default_factory=dict)
    """Per step: start_s, duration_s, prefill_tokens, decode_tokens, running, waiting, emitted (tokens)."""
    info: dict[str, Any] = field(default_factory=dict)
    step_model: Any = None
    """The step-time model used (for isolated latencies in metrics)."""

    @property
    def completed(self) -> np.ndarray:
        return ~np.isnan(self.finish_s)


def simulate(workload: Workload, queue, step_time, config: EngineConfig = EngineConfig(), *,
             clock: VirtualClock | None = None, oracle_output: bool = False,
             on_step: Callable[[int, float, float, int, int], None] | None = None,
             progress: Callable[[int, int], None] | None = None, progress_every: int = 2000,
             max_steps: int | None = None, log_steps: bool = True) -> SimResult:
    """Replay `workload` through the engine with `queue` deciding admission order.

    queue: a fresh WaitingQueue (duck-typed: add, prepend, peek, pop, begin_step, observe_step). Its clock
        should be `clock`; if `clock` is None the queue's clock is used when it is a VirtualClock, else a new
        VirtualClock is made and assigned to `queue.clock`.
    step_time: an object with step_time(prefill_tokens, prefill_attn_tokens2, decode_tokens, kv_tokens_read,
        prefill_seqs) -> seconds (e.g. RooflineStepTime), and optionally kv_blocks(block_size, utilization).
    on_step(step, start_s, duration_s, prefill_tokens, decode_tokens): called after every step.
    progress(finished_or_rejected, total): called every `progress_every` steps and at the end.
    max_steps: stop early after this many steps (unfinished requests keep NaN times).
    """
    if clock is None:
        qc = getattr(queue, "clock", None)
        clock = qc if isinstance(qc, VirtualClock) else VirtualClock()
    try:
        if getattr(queue, "clock", None) is not clock:
            queue.clock = clock
    except AttributeError:
        pass
    cfg = config
    n = len(workload)
    bs = cfg.block_size
    if cfg.kv_blocks is not None:
        total_blocks = cfg.kv_blocks
    elif hasattr(step_time, "kv_blocks"):
        total_blocks = int(step_time.kv_blocks(bs, cfg.gpu_memory_utilization))
    else:
        total_blocks = 1 << 60
    st = step_time.step_time
    perf = time.perf_counter
    wall0 = perf()

    arr = workload.arrival_s.tolist()
    P = workload.prompt_tokens.tolist()
    O = workload.output_tokens.tolist()
    PR = workload.priority.tolist()
    use_prefix = bool(cfg.prefix_caching and workload.prefix_blocks is not None)
    HB = PREFIX_BLOCK_TOKENS // bs  # engine blocks per prefix block
    hashes = [h.tolist() for h in workload.prefix_blocks] if use_prefix else None

    nan = math.nan
    first_tok = [nan] * n
    finish = [nan] * n
    first_sched = [nan] * n
    preempt_count = [0] * n
    cached_at_admit = [0] * n
    rejected = [False] * n

    # Per running request.
    computed = [0] * n      # prefillers: tokens computed so far
    target = [0] * n        # prefillers: tokens to compute before the next output token
    gen = [0] * n           # outputs generated (prefillers, finished); decoders: at dec_start
    held = [0] * n          # prefillers: private blocks held
    dec_start = [0] * n     # decoders: first decode step
    dec_base = [0] * n      # decoders: context (tokens in KV) at dec_start
    shared = [0] * n        # engine blocks referenced through the prefix cache
    refs: list[list[int]] = [[] for _ in range(n)] if use_prefix else []

    running: dict[int, None] = {}       # admission order (preemption victim = last)
    prefilling: list[int] = []          # running requests still in prefill, admission order
    decoding: set[int] = set()
    n_dec = 0
    kv_sum = 0                          # sum of decoders' contexts at the current step
    phase_count = [0] * bs              # decoders needing a new block at steps == phase (mod bs)
    finish_at: dict[int, list[int]] = {}
    peak_used = 0
    # Self prefix cache (prefix_caching without prefix ids): blocks of a preempted request stay cached in the
    # free queue (FIFO: allocation takes the oldest freed first) until reused. Positions in that queue are
    # counted: alloc_head = blocks allocated so far, free_tail = end of the queue.
    self_cache = bool(cfg.prefix_caching and not use_prefix)
    stash: dict[int, tuple[int, int]] = {}   # rid -> (queue position after its blocks, its full blocks)
    alloc_head = 0
    holes: list[tuple[int, int]] = []        # queue positions taken out of the free queue (cache hits)
    free_tail = total_blocks if total_blocks < (1 << 59) else 0
    used = 0                            # blocks in use (private + prefix cache, referenced or not)
    cache: dict[int, int] = {}          # prefix block id -> references
    lru: OrderedDict[int, None] = OrderedDict()  # unreferenced cached ids, oldest first

    dec_alloc = 0
    q_add, q_prepend, q_peek, q_pop = queue.add, queue.prepend, queue.peek, queue.pop
    q_begin, q_observe = queue.begin_step, queue.observe_step
    # Optional host callbacks (duck-typed; the tuner's queues use them).
    q_first = getattr(queue, "on_first_token", None)
    q_fin = getattr(queue, "on_finish", None)
    qcpu = 0.0
    waiting = 0
    done = 0
    nxt = 0
    step = 0
    now = 0.0
    busy = 0.0
    log_start: list[float] = []
    log_dur: list[float] = []
    log_pf: list[int] = []
    log_dec: list[int] = []
    log_run: list[int] = []
    log_wait: list[int] = []
    log_emit: list[int] = []

    def prefix_hit(rid: int, total: int) -> int:
        """Leading prefix blocks of rid cached now (count), capped to total - 1 tokens."""
        k = 0
        for h in hashes[rid]:
            if h in cache:
                k += 1
            else:
                break
        return min(k, (total - 1) // PREFIX_BLOCK_TOKENS)

    def evict(need: int) -> None:
        nonlocal used
        while lru and total_blocks - used < need:
            h, _ = lru.popitem(last=False)
            del cache[h]
            used -= HB

    def release_refs(rid: int) -> None:
        for h in refs[rid]:
            c = cache[h] - 1
            cache[h] = c
            if c == 0:
                lru[h] = None
        refs[rid] = []
        shared[rid] = 0

    def alloc(k: int) -> None:
        """Advance the free-queue head by k blocks, skipping positions that left the queue."""
        nonlocal alloc_head
        h = alloc_head
        while holes and holes[0][0] <= h + k:
            s0, e0 = heapq.heappop(holes)
            if e0 <= h:
                continue
            if s0 > h:
                k -= s0 - h
            h = e0
        alloc_head = h + k

    def preempt(victim: int) -> None:
        nonlocal n_dec, kv_sum, used, waiting, qcpu, free_tail
        del running[victim]
        if victim in decoding:
            decoding.discard(victim)
            s0, b0 = dec_start[victim], dec_base[victim]
            ctx = b0 + (step - s0)
            n_dec -= 1
            kv_sum -= ctx
            phase_count[(s0 - b0) % bs] -= 1
            fs = s0 + O[victim] - gen[victim] - 1
            finish_at[fs].remove(victim)
            gen[victim] += step - s0
            # After this step's decode blocks were allocated (dec_alloc), the victim holds one more token's.
            blocks = -(-(ctx + dec_alloc) // bs) - shared[victim]
            kv_tokens = ctx
        else:
            prefilling.remove(victim)
            blocks = held[victim]
            kv_tokens = computed[victim]
        used -= blocks
        held[victim] = 0
        computed[victim] = 0
        hit = 0
        if use_prefix:
            release_refs(victim)
            hit = prefix_hit(victim, P[victim] + gen[victim]) * PREFIX_BLOCK_TOKENS
        elif self_cache:
            # Its full blocks stay in the prefix cache until reused (freed tail-first, as vLLM does).
            full = kv_tokens // bs
            if full:
                stash[victim] = (free_tail + blocks, full)
                hit = min(full, (P[victim] + gen[victim] - 1) // bs) * bs
        free_tail += blocks
        preempt_count[victim] += 1
        t0 = perf()
        q_prepend(victim, P[victim] + gen[victim], arr[victim], PR[victim], hit,
                  O[victim] - gen[victim] if oracle_output else None)
        qcpu += perf() - t0
        waiting += 1

    while done < n:
        # 1. arrivals
        while nxt < n and arr[nxt] <= now:
            hit = prefix_hit(nxt, P[nxt]) * PREFIX_BLOCK_TOKENS if use_prefix else 0
            t0 = perf()
            q_add(nxt, P[nxt], arr[nxt], PR[nxt], hit, O[nxt] if oracle_output else None)
            qcpu += perf() - t0
            waiting += 1
            nxt += 1
        if not running and not waiting:
            now = arr[nxt]
            clock.now = now
            continue
        clock.now = now
        t0 = perf()
        q_begin(now)
        qcpu += perf() - t0

        budget = cfg.token_budget
        preempted = False
        dec_alloc = 0
        # 3a. decoders: one token each, maybe a new block each
        ph = step % bs
        need = phase_count[ph]
        if need and total_blocks - used < need:
            if use_prefix:
                evict(need)
            while total_blocks - used < phase_count[ph] and running:
                preempt(next(reversed(running)))
                preempted = True
            need = phase_count[ph]
        used += need
        if holes:
            alloc(need)
        else:
            alloc_head += need
        dec_alloc = 1
        dec_tokens = n_dec
        budget -= dec_tokens
        kv_read = kv_sum
        pf_tokens = 0
        attn2 = 0.0
        sched: list[tuple[int, int]] = []
        # 3b. running prefills, admission order
        i = 0
        while i < len(prefilling) and budget > 0:
            rid = prefilling[i]
            c0 = computed[rid]
            c = target[rid] - c0
            if c > budget:
                c = budget
            nb = -(-(c0 + c) // bs) - shared[rid] - held[rid]
            if nb > total_blocks - used:
                if use_prefix:
                    evict(nb)
                while nb > total_blocks - used:
                    victim = next(reversed(running))
                    preempt(victim)
                    preempted = True
                    if victim == rid:
                        break
                if rid not in running:
                    break
            used += nb
            if holes:
                alloc(nb)
            else:
                alloc_head += nb
            held[rid] += nb
            sched.append((rid, c))
            pf_tokens += c
            attn2 += c * (c0 + (c + 1) * 0.5)
            kv_read += c0
            budget -= c
            i += 1
        # 4. admissions
        if not preempted:
            chunked = cfg.chunked_prefill
            while waiting and budget > 0 and len(running) < cfg.max_running:
                t0 = perf()
                rid = q_peek()
                qcpu += perf() - t0
                g = gen[rid]
                total = P[rid] + g
                if (-(-(P[rid] + O[rid]) // bs) > total_blocks
                        or (not chunked and P[rid] + O[rid] > cfg.token_budget)):
                    t0 = perf()
                    q_pop()
                    qcpu += perf() - t0
                    waiting -= 1
                    rejected[rid] = True
                    done += 1
                    continue
                hitb = prefix_hit(rid, total) if use_prefix else 0
                cached = hitb * PREFIX_BLOCK_TOKENS
                sblk = 0
                if stash and rid in stash:
                    # Blocks of this (preempted) request still in the cache: the leading ones not reused since.
                    endpos, full = stash[rid]
                    sblk = min(full, endpos - alloc_head, (total - 1) // bs)
                    if sblk < 0:
                        sblk = 0
                    cached = sblk * bs
                c = total - cached
                if c > budget:
                    if not chunked:
                        break
                    c = budget
                nb = -(-(cached + c) // bs) - hitb * HB - sblk
                if hitb:
                    # Pin the hit blocks first so that eviction cannot take them.
                    hs = hashes[rid][:hitb]
                    for h in hs:
                        r = cache[h]
                        if r == 0:
                            del lru[h]
                        cache[h] = r + 1
                    refs[rid] = hs
                    shared[rid] = hitb * HB
                if nb + sblk > total_blocks - used:
                    if use_prefix:
                        evict(nb)
                    if nb + sblk > total_blocks - used:
                        if hitb:
                            release_refs(rid)
                        break
                if stash:
                    stash.pop(rid, None)
                    if sblk:
                        # its surviving blocks leave the free queue: later allocations skip those positions
                        heapq.heappush(holes, (endpos - sblk, endpos))
                t0 = perf()
                q_pop()
                qcpu += perf() - t0
                waiting -= 1
                if first_sched[rid] != first_sched[rid]:
                    first_sched[rid] = now
                    cached_at_admit[rid] = cached
                running[rid] = None
                prefilling.append(rid)
                computed[rid] = cached
                target[rid] = total
                held[rid] = nb + sblk
                used += nb + sblk
                if holes:
                    alloc(nb)
                else:
                    alloc_head += nb
                sched.append((rid, c))
                pf_tokens += c
                attn2 += c * (cached + (c + 1) * 0.5)
                kv_read += cached
                budget -= c

        # 5. run the step
        if used > peak_used:
            peak_used = used
        n_pf = len(sched)
        if dec_tokens == 0 and n_pf == 0:
            if done >= n or (not waiting and not running):
                continue   # all rejected: the loop ends or jumps to the next arrival
            # Nothing fits (only possible with a queue that refuses to hand out work): wait for an arrival.
            if nxt < n:
                now = max(now, arr[nxt])
                continue
            raise RuntimeError("sim: waiting requests can never be scheduled (KV cache or budget too small)")
        dur = st(pf_tokens, attn2, dec_tokens, kv_read, n_pf)
        start = now
        now += dur
        busy += dur
        clock.now = now
        # decoders
        emitted = n_dec
        kv_sum += n_dec
        fin = finish_at.pop(step, None)
        if fin:
            for rid in fin:
                decoding.discard(rid)
                s0, b0 = dec_start[rid], dec_base[rid]
                ctx = b0 + (step - s0) + 1
                n_dec -= 1
                kv_sum -= ctx
                phase_count[(s0 - b0) % bs] -= 1
                b = -(-ctx // bs) - shared[rid]
                used -= b
                free_tail += b
                del running[rid]
                gen[rid] = O[rid]
                finish[rid] = now
                if use_prefix:
                    release_refs(rid)
                if q_fin is not None:
                    t0 = perf()
                    q_fin(rid, O[rid], now)
                    qcpu += perf() - t0
            done += len(fin)
        # prefills
        for rid, c in sched:
            c1 = computed[rid] + c
            computed[rid] = c1
            if c1 < target[rid]:
                continue
            prefilling.remove(rid)
            emitted += 1
            g = gen[rid] + 1
            gen[rid] = g
            if first_tok[rid] != first_tok[rid]:
                first_tok[rid] = now
                if q_first is not None:
                    t0 = perf()
                    q_first(rid, now)
                    qcpu += perf() - t0
            if use_prefix:
                # Full prefix blocks of the prompt enter the cache (if not there yet).
                full = min(len(hashes[rid]), P[rid] // PREFIX_BLOCK_TOKENS)
                have = len(refs[rid])
                if full > have:
                    mine = refs[rid] = list(refs[rid])
                    for h in hashes[rid][have:full]:
                        if h in cache:
                            break
                        cache[h] = 1
                        mine.append(h)
                        held[rid] -= HB
                        shared[rid] += HB
            if g >= O[rid]:
                del running[rid]
                used -= held[rid]
                free_tail += held[rid]
                held[rid] = 0
                finish[rid] = now
                done += 1
                if use_prefix:
                    release_refs(rid)
                if q_fin is not None:
                    t0 = perf()
                    q_fin(rid, O[rid], now)
                    qcpu += perf() - t0
                continue
            # becomes a decoder from the next step
            s0 = step + 1
            dec_start[rid] = s0
            dec_base[rid] = c1
            decoding.add(rid)
            n_dec += 1
            kv_sum += c1
            phase_count[(s0 - c1) % bs] += 1
            finish_at.setdefault(s0 + O[rid] - g - 1, []).append(rid)
        t0 = perf()
        q_observe(dur, pf_tokens, dec_tokens)
        qcpu += perf() - t0
        if log_steps:
            log_start.append(start)
            log_dur.append(dur)
            log_pf.append(pf_tokens)
            log_dec.append(dec_tokens)
            log_run.append(len(running))
            log_wait.append(waiting)
            log_emit.append(emitted)
        if on_step is not None:
            on_step(step, start, dur, pf_tokens, dec_tokens)
        step += 1
        if progress is not None and step % progress_every == 0:
            progress(done, n)
        if max_steps is not None and step >= max_steps:
            break
    if progress is not None:
        progress(done, n)
    step_log = {}
    if log_steps:
        step_log = {"start_s": np.array(log_start), "duration_s": np.array(log_dur),
                    "prefill_tokens": np.array(log_pf, dtype=np.int64),
                    "decode_tokens": np.array(log_dec, dtype=np.int64),
                    "running": np.array(log_run, dtype=np.int64), "waiting": np.array(log_wait, dtype=np.int64),
                    "emitted": np.array(log_emit, dtype=np.int64)}
    return SimResult(
        workload=workload, first_token_s=np.array(first_tok), finish_s=np.array(finish),
        first_scheduled_s=np.array(first_sched), preemptions=np.array(preempt_count, dtype=np.int64),
        cached_tokens=np.array(cached_at_admit, dtype=np.int64), rejected=np.array(rejected),
        steps=step, scheduler_cpu_s=qcpu, sim_end_s=now, busy_s=busy, wall_s=perf() - wall0,
        step_log=step_log, step_model=step_time,
        info={"kv_blocks": total_blocks, "block_size": bs, "token_budget": cfg.token_budget,
              "max_running": cfg.max_running, "chunked_prefill": cfg.chunked_prefill,
              "prefix_caching": use_prefix, "queue": type(queue).__name__,
              "step_time": repr(step_time), "blocks_in_use_at_end": used,
              "cached_blocks_at_end": len(cache) * HB, "peak_blocks_used": peak_used})
