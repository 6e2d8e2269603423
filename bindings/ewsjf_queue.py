"""EWSJFQueue: the EWSJF policy behind the WaitingQueue interface, keyed by the engine's request ids.

Hot-path costs: add/prepend are a few list appends (routing and linking run batched, jitted, at the next
flush); a step computes the admission order of the next `order_chunk` requests in one jitted call,
O(queues + chunk); each pop is then O(1) Python. Nothing per step scans the waiting set.

Parameters are swapped by set_config(), safe from any thread: it stores the new config in one attribute;
the engine thread installs it at its next begin_step (or pop), so the hot path takes no lock.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable, Iterator

import numpy as np

from ewsjf.bindings.base import (Clock, RequestId, WaitingQueue, check_now, check_request,
                                 check_step_feedback, request_id_list)
from ewsjf_core.config import EWSJFConfig
from ewsjf_core.cost_model import PrefillCostModel
from ewsjf_core.scoring import pack_params
from ewsjf_core.selection import REASON_STARVED
from ewsjf_core.waiting import WaitingSet

_log = logging.getLogger(__name__)

# Config fields whose change needs a new partition (the rest only change scoring).
_PARTITION_FIELDS = ("window", "k0", "alpha", "min_size", "min_rel_range", "max_queues", "band_up",
                     "band_down", "max_bubbles", "bubble_width", "output_weight")


class EWSJFQueue(WaitingQueue):
    """Waiting requests ordered by EWSJF. Not thread-safe except set_config() and config."""

    def __init__(self, config: EWSJFConfig | None = None, clock: Clock | None = None) -> None:
        super().__init__(clock)
        if config is not None and not isinstance(config, EWSJFConfig):
            raise TypeError(f"config must be an EWSJFConfig, got {type(config).__name__}")
        if config is not None:
            config.validate()
        self._config = config or EWSJFConfig()
        self._pending_config: EWSJFConfig | None = None
        self._set = WaitingSet(self._config)
        self._cost = PrefillCostModel(self._config)
        self._params = pack_params(self._config, *self._cost.coefficients[:3])
        self._slot_of: dict[RequestId, int] = {}
        self._ids = np.empty(self._set.capacity, dtype=object)  # request id by slot
        self._now: float | None = None
        self._arrivals_since_partition = 0
        # Current admission order: slots, why each was chosen, its source queue column, and its ids.
        self._order_slots = np.empty(0, np.int32)
        self._order_reasons = np.empty(0, np.int8)
        self._order_sources = np.empty(0, np.int32)
        self._order_ids: list[RequestId] = []
        self._pos = 0    # requests of the current order already popped
        # Effective prefill counted for each request popped since the step began: one prepended in the
        # same step was never admitted (the engine skipped it), so prepend retracts its count.
        self._step_pops: dict[RequestId, float] = {}
        self._limit = 0  # pops allowed from the current order; 0 when it is stale
        self._last_scores = np.empty(0)
        # (reasons, sources) of popped prefixes, folded into the counters when stats() asks.
        self._popped_log: list[tuple[np.ndarray, np.ndarray]] = []
        self._starvation_promotions = 0
        self._admitted = np.zeros(self._set.n_queues + 1, np.int64)
        self._last_source_queue = -1
        self.config_install_errors = 0

    # ----- requests in -----
    def add(self, request_id: RequestId, prompt_tokens: int, arrival_time: float | None = None,
            priority: int = 0, cached_tokens: int = 0, predicted_output_tokens: int | None = None) -> None:
        self._enqueue(request_id, prompt_tokens, arrival_time, priority, cached_tokens,
                      predicted_output_tokens, False)
        self._arrivals_since_partition += 1

    def prepend(self, request_id: RequestId, prompt_tokens: int, arrival_time: float | None = None,
                priority: int = 0, cached_tokens: int = 0, predicted_output_tokens: int | None = None) -> None:
        self._enqueue(request_id, prompt_tokens, arrival_time, priority, cached_tokens,
                      predicted_output_tokens, True)

    def _enqueue(self, request_id, prompt_tokens, arrival_time, priority, cached_tokens,
                 predicted_output_tokens, front: bool) -> None:
        if arrival_time is None:
            arrival_time = float(self.clock())
        check_request(request_id, prompt_tokens, arrival_time, priority, cached_tokens, predicted_output_tokens)
        try:
            waiting = request_id in self._slot_of
        except TypeError:
            raise TypeError(f"request id {request_id!r} is not hashable") from None
        if waiting:
            raise KeyError(f"request {request_id!r} is already waiting")
        if front and self._step_pops:
            counted = self._step_pops.pop(request_id, None)
            if counted is not None:
                self._set.retract(counted)
        prefill = max(1, prompt_tokens - cached_tokens)
        size = float(prefill)
        if predicted_output_tokens:
            size += self._config.output_weight * predicted_output_tokens
        row = self._set.class_row(int(priority))
        slot = self._set.alloc()
        if slot >= self._ids.shape[0]:
            self._ids = np.concatenate([self._ids, np.empty(self._set.capacity - self._ids.shape[0], object)])
        self._ids[slot] = request_id
        self._slot_of[request_id] = slot
        self._set.stage(slot, size, float(prefill), float(arrival_time), row, front)
        self._limit = 0

    def remove(self, request_ids: Iterable[RequestId]) -> None:
        """Remove waiting requests (aborts). All ids are checked before any is removed; a str (or any
        non-iterable) is one id."""
        slot_of = self._slot_of
        unique = request_ids if type(request_ids) is tuple and len(request_ids) == 1 \
            else request_id_list(request_ids)
        missing = [rid for rid in unique if rid not in slot_of]
        if missing:
            raise KeyError(f"request(s) not waiting: {', '.join(map(repr, missing[:5]))}"
                           + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""))
        self._sync()
        self._set.flush_staged()  # a staged request must be linked before it can be unlinked
        slots = [slot_of.pop(rid) for rid in unique]
        self._ids[slots] = None
        self._set.discard(slots)

    # ----- requests out -----
    def peek(self) -> RequestId:
        if self._pos >= self._limit:
            self._refresh_order()
        return self._order_ids[self._pos]

    def pop(self) -> RequestId:
        pos = self._pos
        if pos >= self._limit:
            self._refresh_order()
            pos = 0
        self._pos = pos + 1
        request_id = self._order_ids[pos]
        del self._slot_of[request_id]
        self._step_pops[request_id] = self._set.prefill[self._order_slots[pos]]
        return request_id

    def __len__(self) -> int:
        return len(self._slot_of)

    def __contains__(self, request_id: object) -> bool:
        try:
            return request_id in self._slot_of
        except TypeError:
            return False

    def __iter__(self) -> Iterator[RequestId]:
        if not self._slot_of:
            return iter(())
        self._refresh_order(limit=len(self._slot_of))
        # Hand the full order over instead of caching it: the hot path's order stays one chunk long.
        ids, self._order_ids, self._limit = self._order_ids, [], 0
        return iter(ids)

    # ----- steps -----
    def end_pops(self) -> None:
        """The engine's step is over: requests popped so far stay admitted even if prepended later (a
        preempted request's recompute is admitted work again when it resumes). begin_step calls it; an
        engine that skips begin_step in some steps (vLLM's lazy adapter) calls it at every step start."""
        self._step_pops.clear()

    def begin_step(self, now: float | None = None) -> None:
        self._now = check_now(now) if now is not None else float(self.clock())
        self._step_pops.clear()
        self._install_pending_config()
        cfg = self._config
        self._sync()
        self._set.age_bubbles(cfg.bubble_empty_rounds)   # flushes: nothing staged, depths current
        self._set.retire_empty_classes()
        if len(self._popped_log) > 64:
            self._fold_popped_log()
        every = cfg.repartition_every
        ws = self._set
        if ws.window_count < ws.window.shape[0]:
            # Cold start: the initial edges are a guess. Partition from data as soon as there is enough,
            # then each time the samples have doubled, until every repartition_every arrivals.
            every = min(every, max(cfg.min_partition_samples, ws.window_count - self._arrivals_since_partition))
        if cfg.repartition_every and self._arrivals_since_partition >= every:
            self.repartition()

    def observe_step(self, duration_s: float, prefill_tokens: int, decode_tokens: int) -> None:
        check_step_feedback(duration_s, prefill_tokens, decode_tokens)
        self._cost.observe(duration_s, prefill_tokens, decode_tokens)
        self._set.observe_decode(decode_tokens)
        self._params = pack_params(self._config, *self._cost.coefficients[:3], self._set.out_work)

    @property
    def cost_coefficients(self) -> tuple[float, float, float, float]:
        """(c0, c1, c2, cd) of the fitted prefill-cost model (four floats: safe to read from any thread;
        a torn read during an update is harmless to the tuner that reads it)."""
        return self._cost.coefficients

    def prefill_cost(self, tokens: float) -> float:
        """Current C_prefill(tokens) estimate in seconds (floored like the scoring kernel's)."""
        return max(self._cost.cost(tokens), self._config.min_prefill_cost)

    def repartition(self) -> bool:
        """Refine-and-Prune over the recent-arrival window and re-route every waiting request.

        Returns False (partition kept) when fewer than min_partition_samples arrivals were recorded.
        """
        self._install_pending_config()
        self._sync()
        c0, c1, _, _ = self._cost.coefficients
        changed = self._set.repartition(self._config, min(max(c0 / max(c1, 1e-12), 1.0), 4096.0))
        self._arrivals_since_partition = 0
        if self._admitted.shape[0] != self._set.n_queues + 1:
            self._fold_popped_log()
            self._admitted = np.zeros(self._set.n_queues + 1, np.int64)
        return changed

    # ----- parameters -----
    @property
    def config(self) -> EWSJFConfig:
        pending = self._pending_config
        return pending if pending is not None else self._config

    def set_config(self, config: EWSJFConfig) -> None:
        """Swap parameters atomically; takes effect at the next step. Safe from any thread.

        The config is validated here (ValueError naming the field; the current config keeps serving). If
        installing it still fails at the next step (say, MemoryError building the new partition), the
        previous config stays installed and `config_install_errors` counts it."""
        if not isinstance(config, EWSJFConfig):
            raise TypeError(f"config must be an EWSJFConfig, got {type(config).__name__}")
        config.validate()
        self._pending_config = config

    def _install_pending_config(self) -> None:
        new = self._pending_config
        if new is None:
            return
        self._pending_config = None
        old = self._config
        try:
            self._apply_config(old, new)
        except Exception:  # noqa: BLE001 - scheduling must go on with the last good parameters
            _log.exception("EWSJF: installing a new config failed; the previous one stays in force")
            self.config_install_errors += 1
            self._apply_config(new, old)

    def _apply_config(self, old: EWSJFConfig, new: EWSJFConfig) -> None:
        self._config = new
        self._set.set_deadline_bound(new)
        self._params = pack_params(new, *self._cost.coefficients[:3], self._set.out_work)
        if new.window != old.window:
            self._set.resize_window(new.window)
        if any(getattr(new, f) != getattr(old, f) for f in _PARTITION_FIELDS):
            self.repartition()
        self._limit = 0

    # ----- internals -----
    def _sync(self, keep_order: bool = False) -> None:
        """Hand popped slots back to the WaitingSet and drop the cached order (keep_order: keep the
        unpopped rest of it, so pops go on exactly as they would have)."""
        pos = self._pos
        if pos:
            popped = self._order_slots[:pos]
            self._ids[popped] = None  # drop the references: slots are reused later
            self._set.admit(popped)  # advances the admission progress behind the starvation bound
            self._popped_log.append((self._order_reasons[:pos], self._order_sources[:pos]))
            self._pos = 0
            if keep_order:
                self._order_slots = self._order_slots[pos:]
                self._order_reasons = self._order_reasons[pos:]
                self._order_sources = self._order_sources[pos:]
                self._order_ids = self._order_ids[pos:]
                self._limit = max(self._limit - pos, 0)
        if not keep_order:
            self._limit = 0

    def _fold_popped_log(self) -> None:
        log, self._popped_log = self._popped_log, []
        if not log:
            return
        reasons = np.concatenate([r for r, _ in log])
        sources = np.concatenate([s for _, s in log])
        self._starvation_promotions += int(np.count_nonzero(reasons == REASON_STARVED))
        n = self._admitted.shape[0]
        self._admitted += np.bincount(sources, minlength=n)[:n]
        self._last_source_queue = int(sources[-1])

    def _refresh_order(self, limit: int | None = None) -> None:
        self._install_pending_config()
        self._sync()
        n = len(self._slot_of)
        if n == 0:
            raise IndexError("EWSJFQueue is empty")
        now = self._now if self._now is not None else float(self.clock())
        k = limit if limit is not None else min(self._config.order_chunk, n)
        slots, reasons, sources, scores = self._set.order(now, k, self._params)
        self._order_slots, self._order_reasons, self._order_sources = slots, reasons, sources
        self._order_ids = self._ids[slots].tolist()
        self._last_scores = scores
        self._limit = len(self._order_ids)

    def stats(self) -> dict[str, Any]:
        """Per-queue depth, bounds, spread, density, last score and admissions; counters; parameters.

        Changes no admission order: the pops after it return what they would have without it."""
        self._sync(keep_order=True)
        self._fold_popped_log()
        ws = self._set
        ws.flush()
        nq = ws.n_queues
        depth = ws.depth.sum(axis=0)
        scores = self._last_scores if self._last_scores.shape[0] == nq else np.full(nq, -np.inf)
        queues = []
        for q in np.nonzero(ws.q_active)[0].tolist():
            bubble = q >= ws.max_queues
            queues.append({
                "id": q, "bubble": bubble, "lo": float(ws.q_lo[q]) if not bubble else float(ws.q_pos[q]),
                "hi": float(ws.q_hi[q]) if not bubble else float(ws.q_pos[q]),
                "mean": float(ws.q_mean[q]), "spread": float(ws.q_spread[q]),
                "density": float(ws.q_density[q]), "depth": int(depth[q]),
                "score": float(scores[q]), "admitted": int(self._admitted[q]),
            })
        c0, c1, c2, cd = self._cost.coefficients
        return {
            "policy": "ewsjf", "waiting": len(self), "queues": queues,
            "resume_lane_depth": int(depth[nq]), "priority_classes": sorted(ws.row_of_priority),
            "repartitions": ws.repartitions, "starvation_promotions": self._starvation_promotions,
            "last_source_queue": self._last_source_queue,
            "admitted_work": ws.admitted_work,
            "cost_model": {"c0": c0, "c1": c1, "c2": c2, "decode": cd, "steps": self._cost.steps,
                           "skipped_steps": self._cost.skipped, "resets": self._cost.resets,
                           "prefill_rate_tps": self._cost.prefill_rate},
            "config_install_errors": self.config_install_errors,
            # Seconds FCFS would make a request arriving now wait: waiting prefill tokens / prefill rate.
            "fcfs_wait_estimate_s": ws.waiting_work / self._cost.prefill_rate,
            "params": self._config.to_dict(),
        }
