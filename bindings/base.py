"""The host API every waiting-queue policy implements, keyed by the engine's request ids.

Modelled on vLLM's RequestQueue: one small interface, each policy a class behind it. Engines (the vLLM
adapter, the `sim` engine, your own) talk only to this interface, so policies plug in the same way.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from collections.abc import Iterable
from typing import Any, Callable, Hashable, Iterator

from ewsjf_core.field_checks import finite_float, is_integer, short

RequestId = Hashable
Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What a policy knows of one waiting request, validated."""

    request_id: RequestId
    prompt_tokens: int
    arrival_time: float
    priority: int = 0
    cached_tokens: int = 0
    predicted_output_tokens: int | None = None

    @property
    def effective_tokens(self) -> int:
        """Prompt tokens the engine still has to prefill (the uncached part), at least 1."""
        return max(1, self.prompt_tokens - self.cached_tokens)


def check_request(request_id: RequestId, prompt_tokens: int, arrival_time: float, priority: int,
                  cached_tokens: int, predicted_output_tokens: int | None, keyed: bool = True) -> None:
    """Validate one request's fields; raise ValueError/TypeError naming the field and the request. keyed: the
    request is known by request_id (it must be hashable); otherwise request_id is any object but None (an
    engine's own item, pushed by handle)."""
    # Fast path for the common, well-typed call (add() is on the hot path).
    if (type(prompt_tokens) is int and type(cached_tokens) is int and type(priority) is int
            and type(arrival_time) is float and predicted_output_tokens is None and request_id is not None
            and 0 <= cached_tokens <= prompt_tokens and 1 <= prompt_tokens <= MAX_TOKENS
            and _MIN_PRIORITY <= priority <= _MAX_PRIORITY and 0.0 <= arrival_time < math.inf):
        if keyed:
            _check_hashable(request_id)
        return
    if request_id is None:
        raise ValueError("request id must not be None")
    if keyed:
        _check_hashable(request_id)
    # An engine's own item (pushed by handle) is named by its request_id where it has one (vLLM's Request).
    where = f"request {getattr(request_id, 'request_id', request_id)!r}"
    if not _is_int_in(prompt_tokens, 1, MAX_TOKENS):
        raise ValueError(f"{where}: prompt_tokens must be an integer in [1, 2**53], got {short(prompt_tokens)}")
    if not _is_int_in(cached_tokens, 0, MAX_TOKENS):
        raise ValueError(f"{where}: cached_tokens must be an integer in [0, 2**53], got {short(cached_tokens)}")
    if cached_tokens > prompt_tokens:
        raise ValueError(f"{where}: cached_tokens ({cached_tokens}) exceeds prompt_tokens ({prompt_tokens})")
    t = finite_float(arrival_time)
    if t is None or t < 0:
        raise ValueError(f"{where}: arrival_time must be a finite number >= 0, got {short(arrival_time)}")
    if not _is_int_in(priority, -2 ** 63, 2 ** 63 - 1):
        raise ValueError(f"{where}: priority must be a 64-bit integer, got {short(priority)}")
    if predicted_output_tokens is not None and not _is_int_in(predicted_output_tokens, 0, MAX_TOKENS):
        raise ValueError(f"{where}: predicted_output_tokens must be an integer in [0, 2**53] or None, "
                         f"got {short(predicted_output_tokens)}")


def _check_hashable(request_id: object) -> None:
    try:
        hash(request_id)
    except TypeError:
        raise TypeError(f"request id {request_id!r} is not hashable") from None


def make_request_info(request_id: RequestId, prompt_tokens: int, arrival_time: float, priority: int = 0,
                      cached_tokens: int = 0, predicted_output_tokens: int | None = None) -> RequestInfo:
    """Validated RequestInfo (see check_request)."""
    check_request(request_id, prompt_tokens, arrival_time, priority, cached_tokens, predicted_output_tokens)
    return RequestInfo(request_id, int(prompt_tokens), float(arrival_time), int(priority), int(cached_tokens),
                       None if predicted_output_tokens is None else int(predicted_output_tokens))


def check_step_feedback(duration_s: float, prefill_tokens: int, decode_tokens: int,
                        at_running_cap: bool = False, waiting: bool | None = None) -> None:
    """Validate observe_step's arguments (shared by every policy). Values that are well-formed but
    implausible (1e160 tokens, a step of 1e300 s) pass here; the cost model skips them (cost_model.py)."""
    if (type(duration_s) is float and type(prefill_tokens) is int and type(decode_tokens) is int
            and 0.0 < duration_s < math.inf and prefill_tokens >= 0 and decode_tokens >= 0
            and type(at_running_cap) is bool and (waiting is None or type(waiting) is bool)):
        return
    if type(at_running_cap) is not bool:
        raise ValueError(f"observe_step: at_running_cap must be a bool, got {short(at_running_cap)}")
    if waiting is not None and type(waiting) is not bool:
        raise ValueError(f"observe_step: waiting must be a bool or None, got {short(waiting)}")
    d = finite_float(duration_s)
    if d is None or d <= 0:
        raise ValueError(f"observe_step: duration_s must be a finite number > 0, got {short(duration_s)}")
    for name, v in (("prefill_tokens", prefill_tokens), ("decode_tokens", decode_tokens)):
        if not is_integer(v) or v < 0:
            raise ValueError(f"observe_step: {name} must be an integer >= 0, got {short(v)}")


def check_finished(prompt_tokens: int, output_tokens: int) -> None:
    """Validate observe_finished's arguments (shared by every policy)."""
    if type(prompt_tokens) is int and type(output_tokens) is int and 1 <= prompt_tokens <= MAX_TOKENS \
            and 0 <= output_tokens <= MAX_TOKENS:
        return
    if not _is_int_in(prompt_tokens, 1, MAX_TOKENS):
        raise ValueError(f"observe_finished: prompt_tokens must be an integer in [1, 2**53], "
                         f"got {short(prompt_tokens)}")
    if not _is_int_in(output_tokens, 0, MAX_TOKENS):
        raise ValueError(f"observe_finished: output_tokens must be an integer in [0, 2**53], "
                         f"got {short(output_tokens)}")


def check_now(now: float) -> float:
    if type(now) is float and -math.inf < now < math.inf:   # the common call, on the hot path
        return now
    t = finite_float(now)
    if t is None:
        raise ValueError(f"begin_step: now must be a finite number, got {short(now)}")
    return t


def request_id_list(request_ids: Any) -> list[RequestId]:
    """remove()'s argument as a list of ids: a str or bytes (or any non-iterable) is one id, not its
    characters; duplicates are dropped, first occurrence kept."""
    if isinstance(request_ids, (str, bytes)) or not isinstance(request_ids, Iterable):
        return [request_ids]
    ids = list(request_ids)
    try:
        return list(dict.fromkeys(ids))
    except TypeError:
        bad = next(r for r in ids if not _hashable(r))
        raise TypeError(f"request id {bad!r} is not hashable") from None


MAX_TOKENS = 2 ** 53
"""Token counts are held as float64 in the kernels: exact up to 2**53."""
_MIN_PRIORITY, _MAX_PRIORITY = -2 ** 63, 2 ** 63 - 1


def _hashable(v: object) -> bool:
    try:
        hash(v)
    except TypeError:
        return False
    return True


def _is_int_in(v: object, low: int, high: int) -> bool:
    return is_integer(v) and low <= v <= high




class WaitingQueue(ABC):
    """Requests waiting for admission, served in the policy's order.

    Contract shared by all policies:
    - add/prepend of an id already waiting raises KeyError naming it; remove of an unknown id raises
      KeyError naming it. A call that raises leaves the queue unchanged (remove checks every id first).
    - peek/pop on an empty queue raise IndexError.
    - prepend puts a request (typically preempted) back ahead of everything else of its priority class.
    - begin_step(now) marks the start of an engine step; peek/pop order is computed against that time.
    - observe_step feeds back what a finished step cost; policies that model cost use it.
    """

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or time.time

    @abstractmethod
    def add(self, request_id: RequestId, prompt_tokens: int, arrival_time: float | None = None,
            priority: int = 0, cached_tokens: int = 0, predicted_output_tokens: int | None = None) -> None: ...

    @abstractmethod
    def prepend(self, request_id: RequestId, prompt_tokens: int, arrival_time: float | None = None,
                priority: int = 0, cached_tokens: int = 0,
                predicted_output_tokens: int | None = None) -> None: ...

    @abstractmethod
    def remove(self, request_ids: Iterable[RequestId]) -> None: ...

    @abstractmethod
    def peek(self) -> RequestId: ...

    @abstractmethod
    def pop(self) -> RequestId: ...

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def __iter__(self) -> Iterator[RequestId]:
        """Waiting ids in the order pop() would return them (as of the current step's begin_step)."""

    @abstractmethod
    def __contains__(self, request_id: object) -> bool: ...

    def __bool__(self) -> bool:
        return len(self) > 0

    def begin_step(self, now: float | None = None) -> None:
        """Start of an engine step at `now` (default: the clock)."""

    def end_pops(self) -> None:
        """Every engine step starts with it, whether or not the step calls begin_step (an engine may begin
        the queue's step lazily, at its first look at the queue): requests popped before it were admitted,
        even if they come back later with `prepend` (preempted)."""

    def observe_step(self, duration_s: float, prefill_tokens: int, decode_tokens: int,
                     at_running_cap: bool = False, waiting: bool | None = None) -> None:
        """A step finished: it took duration_s and processed these tokens. at_running_cap: requests were
        still waiting at its end with the running set at the engine's cap (vLLM's max_num_seqs), so the cap,
        not KV memory or the token budget, held admissions. waiting: whether requests waited for admission at
        its end, the engine admitting (False while it is paused for new requests, vLLM's PAUSED_NEW: the pause
        held them, not KV memory or the cap); None: whether any waits in this queue now (an engine that feeds
        each step as it ends)."""
        check_step_feedback(duration_s, prefill_tokens, decode_tokens, at_running_cap, waiting)

    def observe_finished(self, prompt_tokens: int, output_tokens: int) -> None:
        """A request admitted from this queue finished: its prompt had prompt_tokens tokens, and it generated
        output_tokens. Policies that learn output lengths use it."""
        check_finished(prompt_tokens, output_tokens)

    def stats(self) -> dict[str, Any]:
        return {"policy": type(self).__name__, "waiting": len(self)}
