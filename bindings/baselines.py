"""Baseline waiting-queue policies behind the WaitingQueue interface: FCFS, SJF, oracle-SJF, HRRN.

All ignore `priority` (as vLLM's `fcfs` policy does), so "ahead of everything of its priority class"
means: a prepended (preempted) request goes ahead of every request that was not prepended; prepended
requests among themselves are served last-prepended first (as a deque's appendleft, like vLLM).

- FCFSQueue: arrival order (vLLM's default `fcfs`).
- SJFQueue: shortest effective prompt (uncached prompt tokens) first; ties in arrival order.
- OracleSJFQueue: shortest effective prompt + output tokens first, using `predicted_output_tokens`
  (the replay passes the true output length: an upper bound no real scheduler can reach).
- HRRNQueue: highest response ratio next, (wait + S) / S with S the request's estimated service time
  (prefill cost c0 + c1 * effective tokens; c1 tracks observed steps), as SGLang's HRRN policy ages
  long waits. Ratios are recomputed at each begin_step (vectorised), so the order within a step is fixed.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from typing import Iterable, Iterator

import numpy as np

from .base import (RequestId, RequestInfo, WaitingQueue, check_now, check_step_feedback, make_request_info,
                   request_id_list)


class _Validated(WaitingQueue):
    """Shared add/prepend validation and bookkeeping."""

    def _info(self, request_id, prompt_tokens, arrival_time, priority, cached_tokens,
              predicted_output_tokens) -> RequestInfo:
        if arrival_time is None:
            arrival_time = self.clock()
        info = make_request_info(request_id, prompt_tokens, arrival_time, priority, cached_tokens,
                                 predicted_output_tokens)
        try:
            hash(request_id)
        except TypeError:
            raise TypeError(f"request id {request_id!r} is not hashable") from None
        if request_id in self:
            raise KeyError(f"request {request_id!r} is already waiting")
        return info


class FCFSQueue(_Validated):
    """First come, first served (a deque; prepend puts a request at the front)."""

    def __init__(self, clock=None) -> None:
        super().__init__(clock)
        self._q: deque[RequestId] = deque()
        self._ids: set[RequestId] = set()

    def add(self, request_id, prompt_tokens, arrival_time=None, priority=0, cached_tokens=0,
            predicted_output_tokens=None) -> None:
        self._info(request_id, prompt_tokens, arrival_time, priority, cached_tokens, predicted_output_tokens)
        self._q.append(request_id)
        self._ids.add(request_id)

    def prepend(self, request_id, prompt_tokens, arrival_time=None, priority=0, cached_tokens=0,
                predicted_output_tokens=None) -> None:
        self._info(request_id, prompt_tokens, arrival_time, priority, cached_tokens, predicted_output_tokens)
        self._q.appendleft(request_id)
        self._ids.add(request_id)

    def remove(self, request_ids: Iterable[RequestId]) -> None:
        ids = request_id_list(request_ids)
        for r in ids:
            if r not in self._ids:
                raise KeyError(f"request {r!r} is not waiting")
        drop = set(ids)
        self._q = deque(r for r in self._q if r not in drop)
        self._ids -= drop

    def peek(self) -> RequestId:
        if not self._q:
            raise IndexError("peek from an empty queue")
        return self._q[0]

    def pop(self) -> RequestId:
        if not self._q:
            raise IndexError("pop from an empty queue")
        r = self._q.popleft()
        self._ids.discard(r)
        return r

    def __len__(self) -> int:
        return len(self._q)

    def __iter__(self) -> Iterator[RequestId]:
        return iter(list(self._q))

    def __contains__(self, request_id: object) -> bool:
        try:
            return request_id in self._ids
        except TypeError:
            return False


class _HeapQueue(_Validated):
    """A heap keyed by (tier, size, sequence); lazy deletion. Subclasses define _size(info)."""

    def __init__(self, clock=None) -> None:
        super().__init__(clock)
        self._heap: list[tuple] = []
        self._live: dict[RequestId, tuple] = {}
        self._seq = itertools.count()
        self._front = itertools.count(-1, -1)

    def _size(self, info: RequestInfo) -> float:
        raise NotImplementedError

    def _push(self, info: RequestInfo, tier: int) -> None:
        seq = next(self._front) if tier == 0 else next(self._seq)
        entry = (tier, self._size(info) if tier else 0, seq, info.request_id)
        self._live[info.request_id] = entry
        heapq.heappush(self._heap, entry)

    def add(self, request_id, prompt_tokens, arrival_time=None, priority=0, cached_tokens=0,
            predicted_output_tokens=None) -> None:
        self._push(self._info(request_id, prompt_tokens, arrival_time, priority, cached_tokens,
                              predicted_output_tokens), 1)

    def prepend(self, request_id, prompt_tokens, arrival_time=None, priority=0, cached_tokens=0,
                predicted_output_tokens=None) -> None:
        self._push(self._info(request_id, prompt_tokens, arrival_time, priority, cached_tokens,
                              predicted_output_tokens), 0)

    def remove(self, request_ids: Iterable[RequestId]) -> None:
        ids = request_id_list(request_ids)
        for r in ids:
            if r not in self._live:
                raise KeyError(f"request {r!r} is not waiting")
        for r in ids:
            self._live.pop(r, None)
        if len(self._heap) > 2 * len(self._live) + 64:
            self._heap = [e for e in self._heap if self._live.get(e[3]) is e]
            heapq.heapify(self._heap)

    def _top(self) -> tuple:
        h = self._heap
        live = self._live
        while h:
            e = h[0]
            if live.get(e[3]) is e:
                return e
            heapq.heappop(h)
        raise IndexError("peek from an empty queue")

    def peek(self) -> RequestId:
        return self._top()[3]

    def pop(self) -> RequestId:
        e = self._top()
        heapq.heappop(self._heap)
        del self._live[e[3]]
        return e[3]

    def __len__(self) -> int:
        return len(self._live)

    def __iter__(self) -> Iterator[RequestId]:
        return iter([e[3] for e in sorted(self._live.values())])

    def __contains__(self, request_id: object) -> bool:
        try:
            return request_id in self._live
        except TypeError:
            return False


class SJFQueue(_HeapQueue):
    """Shortest job first by effective (uncached) prompt tokens."""

    def _size(self, info: RequestInfo) -> float:
        return info.effective_tokens


class OracleSJFQueue(_HeapQueue):
    """Shortest job first by effective prompt + (predicted or, in replays, true) output tokens."""

    def __init__(self, clock=None, output_weight: float = 1.0) -> None:
        super().__init__(clock)
        self.output_weight = float(output_weight)

    def _size(self, info: RequestInfo) -> float:
        out = info.predicted_output_tokens or 0
        return info.effective_tokens + self.output_weight * out


class HRRNQueue(_Validated):
    """Highest response ratio next: ratio = (wait + S) / S, S = c0 + c1 * effective tokens (seconds).

    c1 (seconds per prefill token) starts at `sec_per_token` and follows the observed steps (an exponential
    average of duration / tokens over steps that carried prefill). Prepended requests come first.
    """

    def __init__(self, clock=None, c0: float = 0.02, sec_per_token: float = 1.0e-4, ema: float = 0.05) -> None:
        super().__init__(clock)
        self.c0 = float(c0)
        self.c1 = float(sec_per_token)
        self.ema = float(ema)
        cap = 1024
        self._arr = np.zeros(cap)
        self._tok = np.ones(cap)
        self._valid = np.zeros(cap, dtype=bool)
        self._rid: list[RequestId | None] = [None] * cap
        self._slot: dict[RequestId, int] = {}
        self._free: list[int] = list(range(cap - 1, -1, -1))
        self._front: list[RequestId] = []   # prepended, served first (last prepended first)
        self._now = 0.0
        self._step_ratios: np.ndarray | None = None  # this step's ratios, kept between pops (None: stale)

    def _grow(self) -> None:
        cap = len(self._arr)
        self._arr = np.concatenate([self._arr, np.zeros(cap)])
        self._tok = np.concatenate([self._tok, np.ones(cap)])
        self._valid = np.concatenate([self._valid, np.zeros(cap, dtype=bool)])
        self._rid.extend([None] * cap)
        self._free.extend(range(2 * cap - 1, cap - 1, -1))

    def add(self, request_id, prompt_tokens, arrival_time=None, priority=0, cached_tokens=0,
            predicted_output_tokens=None) -> None:
        info = self._info(request_id, prompt_tokens, arrival_time, priority, cached_tokens, predicted_output_tokens)
        if not self._free:
            self._grow()
        s = self._free.pop()
        self._arr[s] = info.arrival_time
        self._tok[s] = info.effective_tokens
        self._valid[s] = True
        self._rid[s] = request_id
        self._slot[request_id] = s
        self._step_ratios = None

    def prepend(self, request_id, prompt_tokens, arrival_time=None, priority=0, cached_tokens=0,
                predicted_output_tokens=None) -> None:
        self._info(request_id, prompt_tokens, arrival_time, priority, cached_tokens, predicted_output_tokens)
        self._front.append(request_id)

    def __contains__(self, request_id: object) -> bool:
        try:
            return request_id in self._slot or request_id in self._front
        except TypeError:
            return False

    def remove(self, request_ids: Iterable[RequestId]) -> None:
        ids = request_id_list(request_ids)
        for r in ids:
            if r not in self:
                raise KeyError(f"request {r!r} is not waiting")
        for r in ids:
            if r in self._slot:
                self._drop(self._slot[r])
                self._step_ratios = None
            else:
                self._front.remove(r)

    def _drop(self, s: int) -> None:
        del self._slot[self._rid[s]]
        self._valid[s] = False
        self._rid[s] = None
        self._free.append(s)

    def begin_step(self, now: float | None = None) -> None:
        self._now = self.clock() if now is None else check_now(now)
        self._step_ratios = None

    def observe_step(self, duration_s: float, prefill_tokens: int, decode_tokens: int,
                     at_running_cap: bool = False, waiting: bool | None = None) -> None:
        check_step_feedback(duration_s, prefill_tokens, decode_tokens, at_running_cap, waiting)
        if prefill_tokens >= 256:
            self.c1 += self.ema * (duration_s / prefill_tokens - self.c1)

    def _ratios(self) -> np.ndarray:
        service = self.c0 + self.c1 * self._tok
        return np.where(self._valid, self.rank(self._now - self._arr, service), -np.inf)

    def rank(self, wait: np.ndarray, service: np.ndarray) -> np.ndarray:
        """Highest first: the response ratio (wait + S) / S. Subclasses change only this formula."""
        return (wait + service) / service

    def _best(self) -> int:
        # Usually few pops per step: argmax each time; the step's ratios are cached between pops.
        if self._step_ratios is None:
            self._step_ratios = self._ratios()
        s = int(np.argmax(self._step_ratios))
        if not self._valid[s]:
            raise IndexError("peek from an empty queue")
        return s

    def peek(self) -> RequestId:
        if self._front:
            return self._front[-1]
        if not self._slot:
            raise IndexError("peek from an empty queue")
        return self._rid[self._best()]

    def pop(self) -> RequestId:
        if self._front:
            return self._front.pop()
        if not self._slot:
            raise IndexError("pop from an empty queue")
        s = self._best()
        r = self._rid[s]
        self._step_ratios[s] = -np.inf   # the other ratios stay valid for the rest of the step
        self._drop(s)
        return r

    def __len__(self) -> int:
        return len(self._slot) + len(self._front)

    def __iter__(self) -> Iterator[RequestId]:
        front = list(reversed(self._front))
        if not self._slot:
            return iter(front)
        r = self._ratios()
        idx = [int(i) for i in np.argsort(-r, kind="stable") if self._valid[i]]
        return iter(front + [self._rid[i] for i in idx])


POLICIES = {"fcfs": FCFSQueue, "sjf": SJFQueue, "oracle-sjf": OracleSJFQueue, "hrrn": HRRNQueue}
