"""vLLM's RequestQueue over EWSJFQueue: the object that replaces `Scheduler.waiting`.

vLLM hands the queue `Request` objects; EWSJFQueue works on ids and sizes. The adapter keeps an
id -> Request map and tells the queue each request's size when it enters:
  prompt_tokens = request.num_tokens (prompt plus any output already generated: a preempted request
                  recomputes both when it resumes);
  cached_tokens = tokens vLLM will not recompute: request.num_computed_tokens if non-zero, else
                  request.num_cached_tokens where the vLLM version records it, else the prefix-cache hit
                  found by `cached_tokens_fn` (a read-only lookup), capped at num_tokens - 1 (vLLM always
                  recomputes the last token).

Semantics, matched to vLLM 0.32's FCFSRequestQueue where vLLM relies on them:
  - add_request: a new request (vLLM's Scheduler.add_request / _enqueue_waiting_request).
  - prepend_request: a preempted request (Scheduler._preempt_request) or one skipped this step; it goes
    back ahead of everything else of its priority class (EWSJFQueue's resume lane).
  - prepend_requests(reqs): like deque.extendleft, the LAST of `reqs` ends up at the front. vLLM passes the
    requests it skipped in a step in reverse pop order, so they come back in their original order.
    A request popped and prepended in the same step (skipped) was never admitted: its admission progress
    (the starvation bound's) is retracted, so a request blocked for many steps counts once, when admitted.
  - remove_requests: ignores requests that are not in this queue (vLLM calls it on both self.waiting and
    self.kv_holding_waiting with the same list); remove_request raises ValueError like deque.remove.
  - pop/peek on an empty queue raise IndexError. peek then pop in the same step return the same request.
  - start_step(now) (called by the scheduler at the start of schedule()): EWSJFQueue.begin_step(now) runs
    at the step's first peek/pop, so steps in which vLLM never consults the waiting queue (running full,
    token budget spent on running requests, a preemption) skip it. Nothing in such a step depends on the
    order; the housekeeping begin_step does (a pending parameter swap, bubble aging, the periodic
    re-partition) waits for the next admission round: bubbles age per admission round, and requests that
    arrived meanwhile are committed (their starvation due point fixed from the admission progress and the
    waiting work then) at that round rather than at the next step. Set
    lazy_begin_step = False (option vllm.lazy_begin_step) to run it at the start of every step.
  - __iter__ yields requests in the order they would be popped now; queue[i] is the i-th of them (vLLM's
    FCFS queue is a deque, and callers index it: O(i), like deque indexing away from the ends).
vLLM's other queues (kv_holding_waiting, deferred_waiting, running) are left to vLLM.
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator

from vllm.v1.core.sched.request_queue import RequestQueue
from vllm.v1.request import Request

from ewsjf.bindings import EWSJFQueue

CachedTokensFn = Callable[[Request], int]


class EWSJFRequestQueue(RequestQueue):
    """vLLM RequestQueue whose order is EWSJF's. `queue` is the underlying EWSJFQueue."""

    def __init__(self, queue: EWSJFQueue, cached_tokens_fn: CachedTokensFn | None = None,
                 predict_output: Callable[[Request], int | None] | None = None) -> None:
        self.queue = queue
        self._requests: dict[str, Request] = {}
        self._cached_tokens_fn = cached_tokens_fn
        self._predict_output = predict_output
        self._step_now: float | None = None
        # EWSJFQueue's step boundary for its pop/prepend accounting (the baselines have none).
        self._end_pops: Callable[[], None] | None = getattr(queue, "end_pops", None)
        self.lazy_begin_step = True
        self.before_begin: Callable[[], None] | None = None
        """Called right before each EWSJFQueue.begin_step (the scheduler feeds its step feedback there)."""

    # --- steps ---
    def start_step(self, now: float) -> None:
        """A scheduler step starts at `now`. Lazy (default): EWSJFQueue.begin_step(now) runs at the step's
        first peek/pop, i.e. only in steps where vLLM consults the waiting queue; otherwise right away."""
        self._step_now = now
        if self._end_pops is not None:
            self._end_pops()  # pops of earlier steps stay admitted (see EWSJFQueue.end_pops)
        if not self.lazy_begin_step:
            self._begin()

    def _begin(self) -> None:
        now = self._step_now
        if now is not None:
            self._step_now = None
            if self.before_begin is not None:
                self.before_begin()
            self.queue.begin_step(now)

    # --- sizing ---
    def _sizes(self, request: Request) -> tuple[int, int, int | None]:
        num_tokens = request.num_tokens
        cached = request.num_computed_tokens
        if not cached:
            # Versions whose Request records a prefix-cache hit (num_cached_tokens, -1 until known) tell us.
            cached = max(0, getattr(request, "num_cached_tokens", 0) or 0)
        if not cached and self._cached_tokens_fn is not None:
            cached = self._cached_tokens_fn(request)
        cached = max(0, min(cached, num_tokens - 1))
        predicted = self._predict_output(request) if self._predict_output is not None else None
        return num_tokens, cached, predicted

    def _enter(self, request: Request, front: bool) -> None:
        prompt_tokens, cached, predicted = self._sizes(request)
        rid = request.request_id
        (self.queue.prepend if front else self.queue.add)(
            rid, prompt_tokens, request.arrival_time, request.priority, cached, predicted)
        self._requests[rid] = request

    # --- RequestQueue ---
    def add_request(self, request: Request) -> None:
        self._enter(request, front=False)

    def prepend_request(self, request: Request) -> None:
        self._enter(request, front=True)

    def prepend_requests(self, requests: Iterable[Request]) -> None:
        for request in requests:
            self._enter(request, front=True)

    def pop_request(self) -> Request:
        if not self._requests:
            raise IndexError("pop from an empty EWSJF queue")
        if self._step_now is not None:
            self._begin()
        return self._requests.pop(self.queue.pop())

    def peek_request(self) -> Request:
        if not self._requests:
            raise IndexError("peek from an empty EWSJF queue")
        if self._step_now is not None:
            self._begin()
        return self._requests[self.queue.peek()]

    def remove_request(self, request: Request) -> None:
        rid = request.request_id
        if self._requests.get(rid) is not request:
            raise ValueError(f"request {rid!r} is not in the EWSJF waiting queue")
        self.queue.remove((rid,))
        del self._requests[rid]

    def remove_requests(self, requests: Iterable[Request]) -> None:
        mine = self._requests
        ids = [r.request_id for r in requests if mine.get(r.request_id) is r]
        if not ids:
            return
        ids = list(dict.fromkeys(ids))
        self.queue.remove(ids)
        for rid in ids:
            del mine[rid]

    def has_request(self, request: Request | str) -> bool:
        rid = request if isinstance(request, str) else request.request_id
        return rid in self._requests

    def __contains__(self, request: object) -> bool:
        rid = getattr(request, "request_id", request)
        try:
            return rid in self._requests
        except TypeError:
            return False

    def __bool__(self) -> bool:
        return bool(self._requests)

    def __len__(self) -> int:
        return len(self._requests)

    def __iter__(self) -> Iterator[Request]:
        requests = self._requests
        return iter([requests[rid] for rid in self.queue])

    def __getitem__(self, index: int) -> Request:
        if not isinstance(index, int) or isinstance(index, bool):
            raise TypeError(f"EWSJF queue indices must be integers, not {type(index).__name__}")
        n = len(self._requests)
        i = index + n if index < 0 else index
        if not 0 <= i < n:
            raise IndexError("EWSJF queue index out of range")
        for position, rid in enumerate(self.queue):
            if position == i:
                return self._requests[rid]
        raise IndexError("EWSJF queue index out of range")  # unreachable while queue and map agree
