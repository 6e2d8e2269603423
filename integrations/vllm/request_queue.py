"""vLLM's RequestQueue over EWSJFQueue: the object that replaces `Scheduler.waiting`.

vLLM hands the queue `Request` objects; the adapter pushes each into EWSJFQueue with its size and keeps
the handle it gets back (request id -> (Request, handle)), and the queue pops the Request itself. Sizes:
  prompt_tokens = request.num_tokens (prompt plus any output already generated: a preempted request
                  recomputes both when it resumes);
  cached_tokens = tokens vLLM will not recompute: request.num_computed_tokens if non-zero, else
                  request.num_cached_tokens where the vLLM version records it, else the prefix-cache hit
                  found by `cached_tokens_fn` (a read-only lookup), capped at num_tokens - 1 (vLLM always
                  recomputes the last token). When vLLM resets its prefix cache, refresh_sizes() sizes every
                  waiting request again.

Semantics, matched to vLLM 0.32's FCFSRequestQueue where vLLM relies on them:
  - add_request: a new request (vLLM's Scheduler.add_request / _enqueue_waiting_request). The same request
    object added again while it waits moves to the back, re-sized (vLLM does that to a streaming session; a
    different request with a waiting request's id raises KeyError).
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
  - end_step() (called by the scheduler when schedule() returns) drops a begin_step the step skipped, and ends
    the step's pops (a request preempted between steps was admitted: its prepend retracts nothing).
  - __iter__ yields requests in the order they would be popped now (between steps: as of the last admission
    round); queue[i] is the i-th of them (vLLM's FCFS queue is a deque, and callers index it: O(i), like
    deque indexing away from the ends).
Priorities follow vLLM's scheduling policy (`priority_classes`, set by the scheduler): under
`--scheduling-policy priority` request.priority is the request's EWSJF priority class (classes served strictly,
lower value first); under `fcfs` (vLLM's default) vLLM ignores priorities, and so does EWSJF: every request is in
one class, so a client cannot step past the others (and the starvation bound) by claiming a priority. The policy
also decides, in vLLM, which running request a preemption takes (fcfs: the last admitted; priority: the lowest
priority, latest arrival) and the order of its held queue.
vLLM's other queues (kv_holding_waiting, deferred_waiting, running) are left to vLLM.
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator

from vllm.v1.core.sched.request_queue import RequestQueue
from vllm.v1.request import Request

from ewsjf.bindings.base import WaitingQueue, check_request

CachedTokensFn = Callable[[Request], int]


class EWSJFRequestQueue(RequestQueue):
    """vLLM RequestQueue whose order is EWSJF's. `queue` is the underlying EWSJFQueue.

    It drives the queue by handle (EWSJFQueue.push / pop: the queue hands back the Request itself, no id
    map inside the queue), unless the queue has no handles (the baseline policies of ewsjf.bindings) or
    needs request ids (`needs_request_ids`: the tuned queue's recorder matches first-token and finish
    reports by id). Either way the adapter keeps one map,
    request id -> (Request, handle), for vLLM's lookups by request (has_request, remove_request)."""

    def __init__(self, queue: WaitingQueue, cached_tokens_fn: CachedTokensFn | None = None,
                 predict_output: Callable[[Request], int | None] | None = None) -> None:
        self.queue = queue
        # By id: a policy without handles (the baselines), or a queue that needs the ids.
        self._by_id = not hasattr(queue, "push") or bool(getattr(queue, "needs_request_ids", False))
        self._waiting: dict[str, tuple[Request, int]] = {}
        self.cached_tokens_fn = cached_tokens_fn
        """request -> its prefix-cache hit in tokens, or None (size by num_tokens alone); the scheduler drops it
        when a lookup fails."""
        self.predict_output = predict_output
        """request -> its predicted output tokens (or None), added to its job size; None: not predicted."""
        self._step_now: float | None = None
        self.lazy_begin_step = True
        self.before_begin: Callable[[], None] | None = None
        """Called right before each EWSJFQueue.begin_step (the scheduler feeds its step feedback there)."""
        self.priority_classes = True
        """Whether request.priority is the request's class (vLLM's priority policy); False: every request is in
        class 0 (vLLM's fcfs policy ignores priorities). The scheduler sets it from its policy."""

    # --- steps ---
    def start_step(self, now: float) -> None:
        """A scheduler step starts at `now`. Lazy (default): EWSJFQueue.begin_step(now) runs at the step's
        first peek/pop, i.e. only in steps where vLLM consults the waiting queue; otherwise right away."""
        self._step_now = now
        self.queue.end_pops()  # pops of earlier steps stay admitted (see WaitingQueue.end_pops)
        if not self.lazy_begin_step:
            self._begin()

    def end_step(self) -> None:
        """The scheduler's step is over (its schedule() returned). A begin_step the step never needed is
        dropped here, as the next start_step would drop it: a look between steps (iteration, peek) then runs
        no admission round that vLLM's own steps skipped, so looking never changes what vLLM admits. The step's
        pops stay admitted: vLLM puts back the requests it skipped inside schedule(); one it preempts between
        steps (reset_prefix_cache) was admitted, and its prepend must not retract that."""
        self._step_now = None
        self.queue.end_pops()

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
        if not cached and self.cached_tokens_fn is not None:
            cached = self.cached_tokens_fn(request)
        cached = max(0, min(cached, num_tokens - 1))
        predicted = self.predict_output(request) if self.predict_output is not None else None
        return num_tokens, cached, predicted

    def refresh_sizes(self) -> None:
        """Size every waiting request again, in place (none lost or added): vLLM reset its prefix cache, and the
        hits they were sized by are gone. A policy that cannot re-size (a baseline without resize_all) keeps the
        sizes it has."""
        resize_all = getattr(self.queue, "resize_all", None)
        if resize_all is None or not self._waiting:
            return
        if self._by_id:
            waiting = self._waiting
            resize_all(lambda rid: self._sizes(waiting[rid][0]))
        else:
            resize_all(self._sizes)

    def _priority(self, request: Request) -> int:
        return request.priority if self.priority_classes else 0

    def _enter(self, request: Request, front: bool,
               sizes: tuple[int, int, int | None] | None = None) -> None:
        rid = request.request_id
        if rid in self._waiting:
            raise KeyError(f"request {rid!r} is already waiting")
        prompt_tokens, cached, predicted = sizes or self._sizes(request)
        q = self.queue
        if self._by_id:
            handle = (q.prepend if front else q.add)(rid, prompt_tokens, request.arrival_time,
                                                     self._priority(request), cached, predicted)
        else:
            handle = q.push(request, prompt_tokens, request.arrival_time, self._priority(request), cached,
                            predicted, front)
        self._waiting[rid] = (request, handle)

    # --- RequestQueue ---
    def add_request(self, request: Request) -> None:
        entry = self._waiting.get(request.request_id)
        if entry is not None and entry[0] is request:
            # vLLM re-queues a request still waiting here: a streaming session whose turn ends, by the output of a
            # step still in flight, after it was preempted (async). Its deque would hold it twice; here it moves
            # to the back with its new size. (vLLM 0.32 then drops it from its waiting queues: its own loss.)
            sizes = self._checked_sizes(request)
            self._remove([request.request_id])
            self._enter(request, False, sizes)
            return
        self._enter(request, front=False)

    def prepend_request(self, request: Request) -> None:
        self._enter(request, front=True)

    def prepend_requests(self, requests: Iterable[Request]) -> None:
        """All are checked before any goes back (an id waiting or given twice: KeyError; a bad size:
        ValueError naming the request), so a call that raises changes nothing."""
        batch = [(request, self._checked_sizes(request)) for request in requests]
        given: set[str] = set()
        for request, _ in batch:
            rid = request.request_id
            if rid in self._waiting or rid in given:
                raise KeyError(f"request {rid!r} is already waiting")
            given.add(rid)
        for request, sizes in batch:
            self._enter(request, True, sizes)

    def _checked_sizes(self, request: Request) -> tuple[int, int, int | None]:
        sizes = self._sizes(request)
        check_request(request.request_id, sizes[0], request.arrival_time, self._priority(request), sizes[1], sizes[2])
        return sizes

    def pop_request(self) -> Request:
        if not self._waiting:
            raise IndexError("pop from an empty EWSJF queue")
        if self._step_now is not None:
            self._begin()
        item = self.queue.pop()
        if self._by_id:
            return self._waiting.pop(item)[0]
        del self._waiting[item.request_id]
        return item

    def peek_request(self) -> Request:
        if not self._waiting:
            raise IndexError("peek from an empty EWSJF queue")
        if self._step_now is not None:
            self._begin()
        item = self.queue.peek()
        return self._waiting[item][0] if self._by_id else item

    def remove_request(self, request: Request) -> None:
        rid = request.request_id
        entry = self._waiting.get(rid)
        if entry is None or entry[0] is not request:
            raise ValueError(f"request {rid!r} is not in the EWSJF waiting queue")
        self._remove([rid])

    def remove_requests(self, requests: Iterable[Request]) -> None:
        mine = self._waiting
        ids = [r.request_id for r in requests if mine.get(r.request_id, (None,))[0] is r]
        if ids:
            self._remove(list(dict.fromkeys(ids)))

    def _remove(self, ids: list[str]) -> None:
        mine = self._waiting
        if self._by_id:
            self.queue.remove(ids)
        else:
            self.queue.remove_handles([mine[rid][1] for rid in ids])
        for rid in ids:
            del mine[rid]

    def has_request(self, request: Request | str) -> bool:
        rid = request if isinstance(request, str) else request.request_id
        return rid in self._waiting

    def __contains__(self, request: object) -> bool:
        rid = getattr(request, "request_id", request)
        try:
            return rid in self._waiting
        except TypeError:
            return False

    def __bool__(self) -> bool:
        return bool(self._waiting)

    def __len__(self) -> int:
        return len(self._waiting)

    def __iter__(self) -> Iterator[Request]:
        if self._step_now is not None and self._waiting:
            self._begin()   # the order pops would follow now: the step's own, as peek and pop see it
        if self._by_id:
            waiting = self._waiting
            return iter([waiting[rid][0] for rid in self.queue])
        return iter(list(self.queue))

    def __getitem__(self, index: int) -> Request:
        if not isinstance(index, int) or isinstance(index, bool):
            raise TypeError(f"EWSJF queue indices must be integers, not {type(index).__name__}")
        n = len(self._waiting)
        i = index + n if index < 0 else index
        if not 0 <= i < n:
            raise IndexError("EWSJF queue index out of range")
        for position, request in enumerate(self):
            if position == i:
                return request
        raise IndexError("EWSJF queue index out of range")  # unreachable while queue and map agree
