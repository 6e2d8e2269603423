"""What a router knows: replica stats as published, the request being routed, and the per-replica view.

Replicas publish `ReplicaStats` (as a plain dict, `to_dict`/`from_dict`, so it crosses Ray's controller
unchanged); the router combines them with its own accounting into one `ReplicaView` per candidate replica,
which is all a routing policy reads. Nothing here imports Ray: the bench's multi-instance simulator uses
the same classes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from ewsjf_core.field_checks import as_float, is_integer, short

STATS_VERSION = 1
MAX_TOKENS = 2 ** 53
"""A request's token counts stay exact as floats (the policies add them to published float loads)."""


def _number(d: Mapping[str, Any], key: str, where: str, *, minimum: float = 0.0, default: Any = None,
            allow_inf: bool = False) -> float:
    value = d.get(key, default)
    if value is None:
        raise ValueError(f"{where}: missing field {key!r}")
    x = as_float(value)   # NaN for a str, a bool, an int beyond float's range (10**400)
    if not (x >= minimum and (math.isfinite(x) or (allow_inf and x == math.inf))):
        kind = "a number (or inf)" if allow_inf else "a finite number"
        raise ValueError(f"{where}: field {key!r} must be {kind} >= {minimum:g}, got {short(value)}")
    return x


def _count(d: Mapping[str, Any], key: str, where: str) -> int:
    x = _number(d, key, where)
    if x != int(x):
        raise ValueError(f"{where}: field {key!r} must be a whole number, got {x!r}")
    return int(x)


@dataclass(frozen=True)
class QueueLoad:
    """One EWSJF queue of a replica: its length band (effective tokens), waiting requests and mean length."""

    lo: float
    hi: float
    depth: int
    mean_tokens: float

    @property
    def tokens(self) -> float:
        return self.depth * self.mean_tokens


@dataclass(frozen=True)
class ReplicaStats:
    """A replica's load as it published it at `time` (seconds, the clock the router also reads)."""

    time: float
    running: int
    """Requests in the engine's running batch."""
    waiting: int
    """Requests waiting for admission (all queues, the resume lane included)."""
    queues: tuple[QueueLoad, ...] = ()
    """EWSJF queues, shortest band first; empty for a replica without EWSJF (then waiting is FCFS)."""
    waiting_tokens: float | None = None
    """Effective prefill tokens waiting; None: the sum of the queues' depth x mean."""
    prefill_rate_tps: float = 0.0
    """Measured prefill throughput (tokens/s); 0 when unknown."""
    prefilling_tokens: float = 0.0
    """Prompt tokens the running batch has still to compute (chunked prefills): ahead of every waiting one."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "queues", tuple(sorted(self.queues, key=lambda q: q.lo)))

    @property
    def queued_tokens(self) -> float:
        if self.waiting_tokens is not None:
            return self.waiting_tokens
        return sum(q.tokens for q in self.queues)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"v": STATS_VERSION, "time": self.time, "running": self.running,
                             "waiting": self.waiting, "prefill_rate_tps": self.prefill_rate_tps,
                             "prefilling_tokens": self.prefilling_tokens,
                             "queues": [[q.lo, q.hi, q.depth, q.mean_tokens] for q in self.queues]}
        if self.waiting_tokens is not None:
            d["waiting_tokens"] = self.waiting_tokens
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "routing stats") -> "ReplicaStats":
        """Parse a published dict; a bad field raises ValueError naming it."""
        if not isinstance(d, Mapping):
            raise ValueError(f"{where}: expected a dict, got {type(d).__name__}")
        queues = []
        raw = d.get("queues", [])
        if not isinstance(raw, (list, tuple)):
            raise ValueError(f"{where}: field 'queues' must be a list")
        for i, q in enumerate(raw):
            if not isinstance(q, (list, tuple)) or len(q) != 4:
                raise ValueError(f"{where}: queues[{i}] must be [lo, hi, depth, mean_tokens], got {q!r}")
            qd = dict(zip(("lo", "hi", "depth", "mean_tokens"), q))
            w = f"{where}: queues[{i}]"
            lo, hi = _number(qd, "lo", w), _number(qd, "hi", w, allow_inf=True)  # the last queue is open
            if hi < lo:
                raise ValueError(f"{w}: hi {hi:g} < lo {lo:g}")
            queues.append(QueueLoad(lo, hi, _count(qd, "depth", w), _number(qd, "mean_tokens", w)))
        wt = d.get("waiting_tokens")
        return cls(time=_number(d, "time", where), running=_count(d, "running", where),
                   waiting=_count(d, "waiting", where), queues=tuple(queues),
                   waiting_tokens=None if wt is None else _number(d, "waiting_tokens", where),
                   prefill_rate_tps=_number(d, "prefill_rate_tps", where, default=0.0),
                   prefilling_tokens=_number(d, "prefilling_tokens", where, default=0.0))


@dataclass(frozen=True)
class RequestInfo:
    """The request being routed: its prompt length and the hashes of its leading prompt blocks."""

    request_id: str
    prompt_tokens: int
    prefix_blocks: tuple[int, ...] = ()
    """Chained hashes of the prompt's full blocks, in order (equal hash = equal prefix up to that block)."""
    block_tokens: int = 16
    """Tokens per prefix block."""

    def __post_init__(self) -> None:
        for name in ("prompt_tokens", "block_tokens"):
            value = getattr(self, name)
            if not is_integer(value) or not 1 <= value <= MAX_TOKENS:
                raise ValueError(f"request {self.request_id!r}: {name} must be an integer in [1, 2**53], "
                                 f"got {short(value)}")


@dataclass(frozen=True)
class InFlight:
    """A request this router sent that the replica's last stats do not show yet."""

    request_id: str
    tokens: int
    """Effective prefill tokens (prompt minus the prefix hit expected when it was routed)."""


@dataclass(frozen=True)
class ReplicaView:
    """One candidate replica as a policy sees it when routing one request."""

    replica_id: str
    ongoing: int
    """Requests this router sent there and has not seen complete (what Ray's queue-length probe reports)."""
    running: int
    """Estimated running batch size (stats, less completions seen since)."""
    stats: ReplicaStats | None
    """Last published stats; None before the first."""
    unseen: tuple[InFlight, ...] = field(default=())
    """Requests routed there after the stats were taken."""
    cached_tokens: int = 0
    """Estimated prefix-cache hit there for the request being routed."""

    @property
    def batch(self) -> int:
        """Estimated batch size: the running batch plus the requests routed there since the stats (a
        replica admits an arrival at its next step unless it has a backlog)."""
        return self.running + len(self.unseen)

    def new_tokens(self, request: RequestInfo) -> int:
        """Prefill tokens the request would compute there (vLLM always computes at least one)."""
        return max(1, request.prompt_tokens - self.cached_tokens)

    def waiting_tokens(self) -> float:
        """All prefill tokens to compute there before a new request's: the running batch's unfinished
        prefills, the waiting requests' effective tokens, and the unseen requests'."""
        s = self.stats
        queued = s.queued_tokens + s.prefilling_tokens if s is not None else 0.0
        return queued + sum(f.tokens for f in self.unseen)

    def tokens_ahead(self, tokens: int) -> float:
        """Prefill tokens computed there before a request of `tokens` effective tokens under EWSJF: the
        running batch's unfinished prefills, its own queue (FIFO) and the queues of shorter bands, when the
        engine has a backlog (EWSJF's order decides only among requests that wait)."""
        queues = self.stats.queues if self.stats is not None else ()
        if not queues or self.stats.waiting == 0:
            # No queue stats (FCFS), or an engine that admitted everything at its last report: it is keeping
            # up, so the requests routed since are admitted on arrival, in arrival order, and their prefills
            # (running requests are scheduled before waiting ones) are all ahead of a new request.
            return self.waiting_tokens()
        own = queue_index(queues, tokens)
        ahead = self.stats.prefilling_tokens + sum(q.tokens for q in queues[:own + 1])
        return ahead + sum(f.tokens for f in self.unseen if queue_index(queues, f.tokens) <= own)

    def requests_behind(self, tokens: int) -> int:
        """Waiting requests EWSJF would admit after a request of `tokens` effective tokens (those in longer
        queues), when the replica has a backlog; 0 otherwise."""
        queues = self.stats.queues if self.stats is not None else ()
        if not queues or self.stats.waiting == 0:
            return 0
        own = queue_index(queues, tokens)
        return sum(q.depth for q in queues[own + 1:]) + \
            sum(1 for f in self.unseen if queue_index(queues, f.tokens) > own)


def queue_index(queues: Sequence[QueueLoad], tokens: float) -> int:
    """Index of the queue a request of `tokens` effective tokens joins: the first whose upper edge is at
    or above it (the shortest queue takes everything below it, as in EWSJF's routing), else the last."""
    for i, q in enumerate(queues):
        if tokens <= q.hi:
            return i
    return len(queues) - 1
