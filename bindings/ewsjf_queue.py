"""EWSJFQueue: the EWSJF policy behind the WaitingQueue interface, driven by request ids or by handles.

Hot-path costs: add/push are a few list appends (routing and linking run batched, jitted, at the next
flush); a step's work (fitting the step feedback, admitting the last step's pops, committing arrivals,
bubble aging) and a prefix of the admission order (AdmissionOrder) are one jitted call at the step's first
pop, O(changes + queues + prefix); each pop is then O(1) Python. Nothing per step scans the waiting set.
The step feedback and the cost model fitted to it are StepFeedback's; the items, handles and id map
ItemSlots'; the step's pops, and the prefill a prepend retracts, StepPops'.

Parameters are swapped by set_config(), safe from any thread: it stores the new config in one attribute;
the engine thread installs it at its next begin_step (or pop), so the hot path takes no lock.
"""

from __future__ import annotations

import logging
from array import array
from collections import deque
from operator import itemgetter
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from ewsjf.bindings.admission_log import AdmissionLog
from ewsjf.bindings.admission_order import AdmissionOrder
from ewsjf.bindings.base import (Clock, RequestId, WaitingQueue, check_finished, check_now, check_request,
                                 check_step_feedback)
from ewsjf.bindings.item_slots import ItemSlots
from ewsjf.bindings.step_feedback import StepFeedback
from ewsjf.bindings.step_pops import StepPops, item_key
from ewsjf_core.config import EWSJFConfig
from ewsjf_core.kv_work import KVWork
from ewsjf_core.waiting import WaitingSet

_log = logging.getLogger(__name__)
_RATE_REFRESH_STEPS = 64
"""The time floor's prefill rate (and its count share) is re-read from the cost model at the first round after this
many steps fed (the count of steps, not of fits: a queue fitted step by step and one fitted in batches read the same
rates)."""


class EWSJFQueue(WaitingQueue):
    """Waiting requests ordered by EWSJF. Not thread-safe except set_config() and config.

    Two ways to drive it, one per queue (the first add fixes which; mixing raises TypeError):
    - by id (the WaitingQueue API): add/prepend(request_id, ...), pop() -> id, remove(ids). The queue keeps
      an id -> slot map for remove() and `in`.
    - by handle (the fast path): push(item, ...) -> handle, an int the engine keeps; pop() -> item and
      pop_many(n) -> [items] in admission order; remove_handles(handles); holds(handle). `item` is any
      object the engine wants back (its request object, an index); no map is kept, so a pop touches no hash
      table. A handle is valid from push until its item is popped or removed, and never again (handles
      carry a generation: a stale one is refused even after its slot is reused).
    Both give the same admission order (tests/bindings/test_handle_path.py).
    """

    needs_request_ids = False
    """Whether this queue must be driven by ids (a subclass that records arrivals by id says True)."""

    def __init__(self, config: EWSJFConfig | None = None, clock: Clock | None = None) -> None:
        super().__init__(clock)
        if config is not None and not isinstance(config, EWSJFConfig):
            raise TypeError(f"config must be an EWSJFConfig, got {type(config).__name__}")
        if config is not None:
            config.validate()
        self._config = config or EWSJFConfig()
        # The config set_config() handed over, not yet installed: appended from any thread, taken by the engine
        # thread. deque append and popleft are atomic (a config set while another is being installed is never
        # lost), and maxlen 1 keeps only the last one set, however many arrive between two steps.
        self._pending_configs: deque[EWSJFConfig] = deque(maxlen=1)
        self._set = WaitingSet(self._config)
        self._feedback = StepFeedback(self._config)   # fitted before anything reads the model (_fold_feedback)
        self._slots = ItemSlots(self._set.capacity)
        # The pops read and clear these lists and this map directly (ItemSlots: public, never replaced).
        self._items, self._slot_of = self._slots.items, self._slots.slot_of
        self._count = 0
        self._now: float | None = None
        self._order = AdmissionOrder()
        self._popped = StepPops()   # logged per pop: a prepend in the same step retracts the pop's count
        self._step_items, self._step_slots = self._popped.items, self._popped.slots
        self._begin_pending = False  # begin_step's work waits for the step's first pop (see begin_step)
        self._admissions = AdmissionLog(self._set.n_queues)
        self._kv_work = KVWork()   # a request's work in the bound under KV pressure (observe_finished)
        self._steps_seen = 0       # steps fed (observe_step)...
        self._rate_seen = -_RATE_REFRESH_STEPS   # ...when the time floor's prefill rate was last read
        self.config_install_errors = 0

    # ----- requests in -----
    def add(self, request_id: RequestId, prompt_tokens: int, arrival_time: float | None = None,
            priority: int = 0, cached_tokens: int = 0, predicted_output_tokens: int | None = None) -> int:
        """Add a request by id; returns its handle (for holds(); remove it by id)."""
        return self._enqueue_id(request_id, prompt_tokens, arrival_time, priority, cached_tokens,
                                predicted_output_tokens, False)

    def prepend(self, request_id: RequestId, prompt_tokens: int, arrival_time: float | None = None,
                priority: int = 0, cached_tokens: int = 0, predicted_output_tokens: int | None = None) -> int:
        return self._enqueue_id(request_id, prompt_tokens, arrival_time, priority, cached_tokens,
                                predicted_output_tokens, True)

    def push(self, item: Any, prompt_tokens: int, arrival_time: float | None = None, priority: int = 0,
             cached_tokens: int = 0, predicted_output_tokens: int | None = None, front: bool = False) -> int:
        """Add `item` (front: put it back ahead of its class, like prepend); returns its handle."""
        self._slots.fix_mode(False)
        if arrival_time is None:
            arrival_time = float(self.clock())
        check_request(item, prompt_tokens, arrival_time, priority, cached_tokens, predicted_output_tokens,
                      keyed=False)
        return self._enqueue(item, prompt_tokens, arrival_time, priority, cached_tokens, predicted_output_tokens,
                             front)

    def _enqueue_id(self, request_id, prompt_tokens, arrival_time, priority, cached_tokens,
                    predicted_output_tokens, front: bool) -> int:
        self._slots.fix_mode(True)
        if arrival_time is None:
            arrival_time = float(self.clock())
        check_request(request_id, prompt_tokens, arrival_time, priority, cached_tokens, predicted_output_tokens,
                      keyed=False)   # the id's hashability: check_new_id, which looks it up anyway
        self._slots.check_new_id(request_id)
        return self._enqueue(request_id, prompt_tokens, arrival_time, priority, cached_tokens,
                             predicted_output_tokens, front)

    def _enqueue(self, item, prompt_tokens, arrival_time, priority, cached_tokens, predicted_output_tokens,
                 front: bool) -> int:
        """Stage a validated request; returns its handle."""
        if self._begin_pending:
            self._run_begin(False)
        counted = None
        if front and self._popped:
            self._fold_feedback()   # the retraction below and the feedback's decay happen in order
            order = self._order
            counted = self._popped.retract(item, self._set.prefill, self._set.qid, order.reasons[:order.pos])
            if counted is not None:
                prefill, queue, starved = counted
                self._set.retract(prefill)
                self._admissions.hold(item_key(item), queue, starved)   # counted when admitted, withdrawn if it leaves
        size, work = self._size_and_work(prompt_tokens, cached_tokens, predicted_output_tokens)
        if front and counted is None:   # a preemption (a put-back of this step's pop was never admitted)
            self._set.delay_due(float(arrival_time), work)
        row = self._set.class_row(int(priority))
        slot = self._set.alloc()
        handle = self._slots.put(slot, item, self._set.capacity)
        self._count += 1
        self._set.stage(slot, size, work, float(arrival_time), row, front)
        self._order.limit = 0
        return handle

    def _size_and_work(self, prompt_tokens: int, cached_tokens: int,
                       predicted_output_tokens: int | None) -> tuple[float, float]:
        """A request's job size (routing, scoring) and its work in the starvation bound: the effective prefill, or
        under KV pressure its KV memory-time (ewsjf_core.kv_work)."""
        prefill = max(1, prompt_tokens - cached_tokens)
        size = float(prefill)
        if predicted_output_tokens:
            size += self._config.output_weight * predicted_output_tokens
        cfg = self._config
        weight, slot_weight = cfg.kv_work_weight, cfg.slot_work_weight
        if not (weight or slot_weight):
            return size, float(prefill)
        # self._count: the requests waiting as it is sized (the slot share's regime, ewsjf_core.kv_work).
        return size, self._kv_work.work(prompt_tokens, float(prefill), weight, slot_weight, self._count)

    def resize_all(self, sizes: Callable[[Any], tuple[int, int, int | None]]) -> None:
        """Size every waiting request anew: sizes(item) -> its (prompt_tokens, cached_tokens,
        predicted_output_tokens) now (item: the request id, or the item pushed). For an engine whose prefix cache
        was reset: the cache hits its requests were sized by are gone. Each keeps its arrival, priority, starvation
        deadline and due point, and its place in its resume lane; a queued one moves to the queue its new size
        routes to (ewsjf_core.waiting.WaitingSet.resize). All sizes are checked first (ValueError naming the
        request and the field; nothing changes). Requests popped in this step stay popped."""
        self.settle()
        self._sync()
        self._set.flush()
        items = self._items
        slots = [slot for slot, item in enumerate(items) if item is not None]
        if not slots:
            return
        arrival = self._set.arrival
        new = []
        for slot in slots:
            prompt_tokens, cached_tokens, predicted = sizes(items[slot])
            check_request(items[slot], prompt_tokens, float(arrival[slot]), 0, cached_tokens, predicted, keyed=False)
            new.append(self._size_and_work(prompt_tokens, cached_tokens, predicted))
        size, work = np.array(new).T
        self._set.resize(np.array(slots, np.int32), size, work)

    def remove(self, request_ids: Iterable[RequestId]) -> None:
        """Remove waiting requests (aborts). All ids are checked before any is removed; a str (or any
        non-iterable) is one id."""
        self._discard(self._slots.take_ids(request_ids))

    def remove_handles(self, handles: Iterable[int]) -> None:
        """Remove waiting requests by handle (aborts). All are checked before any is removed: a handle that
        is not waiting (popped, removed, never issued) raises KeyError naming it."""
        self._discard(self._slots.take_handles(handles))

    def holds(self, handle: int) -> bool:
        """Whether `handle` names a request that is waiting (pushed or added, not yet popped or removed)."""
        return self._slots.holds(handle)

    def _discard(self, slots: list[int]) -> None:
        self.settle()
        self._sync()
        self._set.flush_staged()  # a staged request must be linked before it can be unlinked
        if self._admissions.held:   # requests popped and put back unadmitted, now leaving: not admitted
            items = self._items
            self._admissions.withdraw([item_key(items[slot]) for slot in slots])
        self._slots.clear(slots)
        self._count -= len(slots)
        self._set.discard(slots)

    # ----- requests out -----
    def peek(self) -> Any:
        order = self._order
        if order.pos >= order.limit:
            self._refresh_order()
        return self._items[order.list_slots()[order.pos]]

    def pop(self) -> Any:
        order = self._order
        pos = order.pos
        if pos >= order.limit:
            self._refresh_order()
            pos = order.pos
        order.pos = pos + 1
        self._count -= 1
        slot = order.list_slots()[pos]
        items = self._items
        item = items[slot]
        items[slot] = None  # popped: drop the reference (and the handle is no longer held)
        if self._slot_of:   # driven by ids (by handles the map stays empty)
            del self._slot_of[item]
        self._step_items.append(item)
        self._step_slots.append(slot)
        return item

    def pop_many(self, n: int) -> list[Any]:
        """Pop up to n requests (fewer when fewer wait), in the order n pop() calls would return them."""
        if type(n) is not int or n < 0:
            raise ValueError(f"pop_many: n must be an integer >= 0, got {n!r}")
        out: list[Any] = []
        n = min(n, self._count)
        order = self._order
        while n:
            if order.pos >= order.limit:
                self._refresh_order()
            pos = order.pos
            end = min(order.limit, pos + n)
            items = self._items
            slots = order.list_slots()[pos:end]
            batch = list(itemgetter(*slots)(items)) if len(slots) > 1 else [items[slots[0]]]
            for slot in slots:
                items[slot] = None   # popped: drop the references (and the handles are no longer held)
            self._step_items += batch
            self._step_slots += slots
            slot_of = self._slot_of
            if slot_of:   # driven by ids
                for item in batch:
                    del slot_of[item]
            if out:
                out += batch
            else:
                out = batch
            order.pos = end
            self._count -= end - pos
            n -= end - pos
        return out

    def __len__(self) -> int:
        return self._count

    def __contains__(self, request_id: object) -> bool:
        """By id (a queue driven by ids); a queue driven by handles answers holds(request_id)."""
        if self._slots.keyed is False:
            return self.holds(request_id)  # type: ignore[arg-type]
        try:
            return request_id in self._slot_of
        except TypeError:
            return False

    def __iter__(self) -> Iterator[Any]:
        if not self._count:
            return iter(())
        self._refresh_order(limit=self._count)
        # Hand the full order over instead of caching it: the hot path's order stays one chunk long.
        order = self._order
        items = [self._items[slot] for slot in order.list_slots()]
        order.slot_list, order.limit = None, 0
        return iter(items)

    # ----- steps -----
    def end_pops(self) -> None:
        """The engine's step is over: requests popped so far stay admitted even if prepended later (a
        preempted request's recompute is admitted work again when it resumes). begin_step calls it; an
        engine that skips begin_step in some steps (vLLM's lazy adapter) calls it at every step start."""
        popped = self._popped
        if popped:
            last = popped.last_kept_queue(self._set.qid)
            if last is not None:
                self._admissions.last_source_queue = last
            if self._admissions.held:
                self._admissions.admitted_for_real(popped.kept())
        popped.end_step()

    def begin_step(self, now: float | None = None) -> None:
        """A step starts at `now`. Its work (admitting last step's pops, committing arrivals, bubble aging,
        the periodic re-partition) runs at the step's first pop, in the same kernel call as the step's
        order, or before anything else that needs it (an add, a removal, observe_step, stats), so the
        admission order is exactly what it would be had it all run here."""
        now = check_now(now) if now is not None else float(self.clock())
        self.end_pops()
        if self._begin_pending:   # the last step's work, had no pop run it (the feedback since waits for
            self._run_begin(False)   # this step's kernel call)
        self._now = now
        if self._pending_configs:
            self._install_pending_config()
        self._begin_pending = True
        self._order.limit = 0

    def settle(self) -> None:
        """Do the pending begin_step's work now (engines need not call this; see begin_step), and fit the
        step feedback recorded since (inside that work's kernel call when there is one)."""
        if self._begin_pending:
            self._run_begin(False)
        self._fold_feedback()

    def _run_begin(self, with_order: bool) -> None:
        """begin_step's work: fit the step feedback recorded since, admit last step's pops, flush, age the
        bubbles (and with_order: compute the step's order) in one kernel call (ewsjf_core.step_kernel), handed
        what was staged and popped as it was kept (no numpy call before it); then retire empty classes, install the
        partition computed since the last round (which drops that order: the next pop computes it on the new
        queues), and start the next one in the background when due."""
        self._begin_pending = False
        # The cost model is fitted to the steps since the last round inside the step kernel (one call).
        feedback = self._take_feedback()
        n_fit = len(feedback) // 3
        cfg = self._config
        order = self._order
        last, last_reasons, popped = self._popped_for_round()
        cap = min(cfg.order_chunk, self._count) if with_order else 0
        model = self._feedback.model
        out_work = self._set.out_work
        params = self._feedback.params(cfg, out_work, fitting=n_fit > 0, cap_share=self._kv_work.phi_cap)
        slots, reasons, sources, scores = self._set.begin(last, last_reasons, popped, self._now,
                                                          min(cap, order.prefix_hint),
                                                          params, cfg.bubble_empty_rounds, model.state, feedback,
                                                          out_work)
        if n_fit:
            model.fitted(n_fit)
        if self._steps_seen >= self._rate_seen + _RATE_REFRESH_STEPS:
            self._set_time_floor()
        self._set.retire_empty_classes()   # drops empty classes only: the order stays what it is
        installed = self._set.finish_partition()
        if installed:
            self._after_partition()
        if self._set.partition_due(cfg):   # under the config of begin_step's time (a later swap comes after)
            self._set.start_partition(cfg, self._cost_offset())
            self._after_partition()   # too few samples to partition: the queues may be laid out anew at once
        if with_order and not installed:
            self._order.adopt(slots, reasons, sources, scores, cap, self._now)

    def observe_step(self, duration_s: float, prefill_tokens: int, decode_tokens: int,
                     at_running_cap: bool = False, waiting: bool | None = None) -> None:
        """A finished step's cost. Recorded here and fitted, in one kernel call with the steps fed since,
        right before anything reads the cost model or the admission progress: every step is seen, in order,
        as if fitted at once, and steps that admit nothing cost one list append. `waiting` (see
        WaitingQueue.observe_step): whether the step counts as one whose waiting requests something held
        (ewsjf_core.kv_work's phi); an engine that feeds steps later than they end says so, as of their end."""
        check_step_feedback(duration_s, prefill_tokens, decode_tokens, at_running_cap, waiting)
        self._steps_seen += 1
        self._kv_work.observe_step(prefill_tokens, decode_tokens, self._count > 0 if waiting is None else waiting,
                                   at_running_cap)
        if self._begin_pending:
            self._run_begin(False)  # the pending step's work (a re-partition) uses the model as it was
        if self._feedback.record(duration_s, prefill_tokens, decode_tokens):
            self._fold_feedback()   # steps that never consult the queue (hours of a full running batch)

    def observe_finished(self, prompt_tokens: int, output_tokens: int) -> None:
        """A request this queue admitted finished with `output_tokens` (its prompt had `prompt_tokens`): the
        engine's output lengths per prompt-length class, which weigh a request's work in the starvation bound
        where KV memory holds admissions (ewsjf_core.kv_work)."""
        check_finished(prompt_tokens, output_tokens)
        self._kv_work.observe_finished(prompt_tokens, output_tokens)

    def _set_time_floor(self) -> None:
        """The time floor's two estimates of FCFS's waits (ewsjf_core.progress_bound), from the step feedback.
        - The engine's fastest prefill rate, tokens per second: its token budget as seen over the fitted marginal cost
          of prefilling it whole in one step. Marginal: without the per-step c0, which the fit may have grown with the
          decodes' cost (PrefillCostModel.marginal_cost). With c0, on the H200 (the summarize shape @ 10 s) c0 went
          5 ms -> 390 ms at the running cap, the rate fell to a third, the floor rose above FCFS's waits and the
          longest wait reached 1.71x FCFS's. Not the cost model's prefill_rate: that is the rate realized over the
          steps run, decodes and the order's effect included, and a wait estimated from it is no lower bound.
        - The share of the admission-count wait it counts: 1 - the memory-time share of a request's work in the
          bound (ewsjf_core.admission_wait, ewsjf_core.kv_work)."""
        budget = self._kv_work.token_budget
        if budget > 0:
            self._rate_seen = self._steps_seen
            self._fold_feedback()
            cost = max(self._feedback.model.marginal_cost(budget), self._config.min_prefill_cost)
            self._set.set_time_floor(budget / cost, 1.0 - self._kv_work.memory_share(self._config.kv_work_weight))

    def _fold_feedback(self) -> None:
        """Fit the cost model to the steps recorded since the last fit, if any (one kernel call)."""
        if self._feedback.pending:
            self._feedback.model.fit_rows(StepFeedback.rows(self._take_feedback()))

    def _take_feedback(self) -> array:
        """The plausible steps recorded since the last fit, for the caller to fit; every step's decode tokens
        are counted here (the progress bound's output estimate)."""
        rows, decoded = self._feedback.take()
        if decoded:
            self._set.observe_decode(decoded)
        return rows

    @property
    def admitted_work(self) -> float:
        """The starvation bound's admission progress (effective prefill tokens admitted) as its kernels see it:
        a step's pops are counted at the next step's round. stats() counts them first."""
        return self._set.admitted_work

    @property
    def cost_coefficients(self) -> tuple[float, float, float, float]:
        """(c0, c1, c2, cd) of the prefill-cost model as last fitted (the steps observed since are fitted at
        the next admission round, or by settle()). A pure read, safe from any thread (the tuner's): it fits
        and caches nothing, where fitting from another thread raced the engine thread's own fit."""
        return self._feedback.model.coefficients_now()

    def prefill_cost(self, tokens: float) -> float:
        """Current C_prefill(tokens) estimate in seconds (floored like the scoring kernel's)."""
        self._fold_feedback()
        return max(self._feedback.model.cost(tokens), self._config.min_prefill_cost)

    def repartition(self) -> bool:
        """Refine-and-Prune over the recent-arrival window and re-route every waiting request.

        Returns False (partition kept) when fewer than min_partition_samples arrivals were recorded.
        """
        self.settle()
        self._install_pending_config()
        return self._repartition()

    def _repartition(self) -> bool:
        self._sync()
        changed = self._set.repartition(self._config, self._cost_offset())
        self._after_partition()
        return changed

    def _cost_offset(self) -> float:
        """b0 = c0 / c1 of the prefill-cost model, bounded (ewsjf_core.partition)."""
        self._fold_feedback()
        return self._feedback.cost_offset()

    def _after_partition(self) -> None:
        self._admissions.resize(self._set.n_queues)

    # ----- parameters -----
    @property
    def config(self) -> EWSJFConfig:
        try:
            return self._pending_configs[-1]
        except IndexError:
            return self._config

    def set_config(self, config: EWSJFConfig) -> None:
        """Swap parameters atomically; takes effect at the next step. Safe from any thread.

        Scoring and the starvation bound change at the next step. A change to a field that shapes the
        partition (EWSJFConfig.needs_new_partition) has the new queues built like a periodic partition: off
        the engine thread after the next admission round, installed at the round after, so no step waits
        for it (a build that fails is logged and the queues stay as they are, until the next periodic one).
        The config is validated here (ValueError naming the field; the current config keeps serving). If
        installing it still fails at the next step (say, MemoryError resizing the window), the previous
        config stays installed and `config_install_errors` counts it."""
        if not isinstance(config, EWSJFConfig):
            raise TypeError(f"config must be an EWSJFConfig, got {type(config).__name__}")
        config.validate()
        self._pending_configs.append(config)

    def _install_pending_config(self) -> None:
        try:
            new = self._pending_configs.popleft()
        except IndexError:
            return
        old = self._config
        try:
            self._apply_config(old, new)
        except Exception:  # noqa: BLE001 - scheduling must go on with the last good parameters
            _log.exception("EWSJF: installing a new config failed; the previous one stays in force")
            self.config_install_errors += 1
            self._apply_config(new, old)

    def _apply_config(self, old: EWSJFConfig, new: EWSJFConfig) -> None:
        self._fold_feedback()   # the step feedback counts before the admissions _sync counts
        self._sync()
        self._config = new
        self._feedback.config_changed()
        self._set.apply_config(old, new)
        self._order.drop()

    # ----- internals -----
    def _sync(self, keep_order: bool = False) -> None:
        """Hand popped slots back to the WaitingSet as admitted and drop the cached order (keep_order: keep
        the unpopped rest of it, so pops go on exactly as they would have). A round hands them to its kernel
        call instead (_popped_for_round)."""
        order = self._order
        if order.pos:
            # advances the admission progress behind the starvation bound
            now = self._now if self._now is not None else float(self.clock())
            self._set.admit(order.slots[:order.pos], order.reasons, now)
        self._release_popped(keep_order)

    def _popped_for_round(self) -> tuple[np.ndarray, np.ndarray, list[int] | np.ndarray]:
        """The last order, its reasons and its popped prefix (a list: the pops listed the order; none popped, an
        empty view), for the round's kernel call to admit, and the order dropped (the round computes the next
        one)."""
        order = self._order
        last, reasons, pos = order.slots, order.reasons, order.pos
        popped = order.slot_list[:pos] if order.slot_list is not None else last[:pos]
        self._release_popped(False)
        return last, reasons, popped

    def _release_popped(self, keep_order: bool) -> None:
        """The popped prefix leaves the order, recorded in the admission log (keep_order: see _sync)."""
        order = self._order
        if not order.pos:
            if not keep_order:
                order.drop()
            return
        self._popped.read(self._set.prefill, self._set.qid, order.reasons[:order.pos])  # before the slots are reused
        self._admissions.record(order.reasons, order.sources, order.pos)
        order.release_popped(keep_order)

    def _refresh_order(self, limit: int | None = None) -> None:
        order = self._order
        if limit is None and order.pos >= order.limit and order.extendable:
            self._extend_order(min(order.cap, 2 * order.limit))
            return
        if self._begin_pending:
            # The step's first pop: begin_step's work and the order in one call, unless a config swap
            # arrived since begin_step (it is installed first, then the order computed under it).
            self._run_begin(limit is None and not self._pending_configs)
            if order.limit:
                return
        self._fold_feedback()
        self._install_pending_config()
        self._sync()
        n = self._count
        if n == 0:
            raise IndexError("EWSJFQueue is empty")
        now = self._now if self._now is not None else float(self.clock())
        cap = limit if limit is not None else min(self._config.order_chunk, n)
        k = cap if limit is not None else min(cap, order.prefix_hint)
        order.adopt(*self._set.order(now, k, self._packed_params()), cap, now)

    def _extend_order(self, limit: int) -> None:
        """Compute a longer prefix of the current order. Nothing it depends on has changed since the order
        was computed (any change drops the order; the popped requests are still linked and not yet counted
        as admitted; the parameters are rewritten only for a new order), and the order's prefixes do not
        depend on its length, so the pops go on exactly as if the whole order had been computed at once."""
        order = self._order
        order.adopt(*self._set.order(order.now, limit, self._feedback.vector), order.cap, order.now)

    def _packed_params(self) -> np.ndarray:
        """The parameter vector the kernels read (StepFeedback.params), the recorded steps fitted first."""
        feedback = self._feedback
        if not feedback.params_current:
            self._fold_feedback()
        return feedback.params(self._config, self._set.out_work, cap_share=self._kv_work.phi_cap)

    def _last_source_queue(self) -> int:
        """The queue column the last request admitted was popped from: this step's last pop not put back, else the
        last of an earlier step (-1: none yet)."""
        last = self._popped.last_kept_queue(self._set.qid)
        return last if last is not None else self._admissions.last_source_queue

    def stats(self) -> dict[str, Any]:
        """Per-queue depth, bounds, spread, density, last score and admissions; counters; parameters.

        Changes no admission order: the pops after it return what they would have without it."""
        self.settle()
        if self._order.extendable:
            self._extend_order(self._order.cap)   # the pops after stats() go on as if it had not run
        self._sync(keep_order=True)
        admissions = self._admissions
        admissions.fold()
        ws = self._set
        ws.flush()
        model = self._feedback.model
        c0, c1, c2, cd = model.coefficients
        return {
            "policy": "ewsjf", "waiting": len(self), **ws.describe_queues(self._order.scores, admissions.admitted),
            "starvation_promotions": admissions.starvation_promotions,
            "last_source_queue": self._last_source_queue(),
            "admitted_work": ws.admitted_work,
            "cost_model": {"c0": c0, "c1": c1, "c2": c2, "decode": cd, "steps": model.steps,
                           "skipped_steps": model.skipped, "resets": model.resets,
                           "prefill_rate_tps": model.prefill_rate},
            "config_install_errors": self.config_install_errors,
            # Seconds FCFS would make a request arriving now wait: waiting prefill tokens / prefill rate.
            "fcfs_wait_estimate_s": ws.waiting_work / model.prefill_rate,
            # What held admissions in the recent steps with requests waiting (ewsjf_core.kv_work): steps that
            # ended below the token budget (KV memory or the running cap), and those at the running cap.
            "admissions_held": {"below_token_budget": self._kv_work.phi, "running_cap": self._kv_work.phi_cap},
            # The time floor (ewsjf_core.progress_bound): no request is due before it has waited tail_s.
            "time_floor": ws.time_floor,
            "params": self._config.to_dict(),
        }
