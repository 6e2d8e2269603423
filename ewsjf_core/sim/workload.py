"""A replayable workload: per-request arrival time, prompt and output lengths (struct of arrays).

Arrays are aligned and sorted by arrival time; the request id used by the engine is the index into
these arrays. `prefix_blocks` (optional) holds, per request, the ids of its 512-token prompt blocks
(Mooncake `hash_ids`): equal ids mean equal prompt content, so the engine's prefix cache sees reuse.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

PREFIX_BLOCK_TOKENS = 512
"""Tokens per prefix block id (the Mooncake trace's hash block size)."""


@dataclass(frozen=True)
class Workload:
    arrival_s: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    priority: np.ndarray = field(default=None)  # type: ignore[assignment]
    prefix_blocks: list[np.ndarray] | None = None
    name: str = ""

    def __post_init__(self) -> None:
        arr = np.asarray(self.arrival_s, dtype=np.float64)
        p = np.asarray(self.prompt_tokens, dtype=np.int64)
        o = np.asarray(self.output_tokens, dtype=np.int64)
        n = len(arr)
        pr = (np.zeros(n, dtype=np.int64) if self.priority is None
              else np.asarray(self.priority, dtype=np.int64))
        where = f"workload {self.name!r}" if self.name else "workload"
        if arr.ndim != 1 or p.shape != arr.shape or o.shape != arr.shape or pr.shape != arr.shape:
            raise ValueError(f"{where}: arrival_s, prompt_tokens, output_tokens and priority must be 1-D "
                             f"arrays of one length, got {arr.shape}, {p.shape}, {o.shape}, {pr.shape}")
        if n:
            if not np.all(np.isfinite(arr)) or arr.min() < 0:
                raise ValueError(f"{where}: arrival times must be finite and >= 0")
            if np.any(np.diff(arr) < 0):
                raise ValueError(f"{where}: arrival times must be sorted (use Workload.from_unsorted)")
            if p.min() < 1 or o.min() < 1:
                raise ValueError(f"{where}: prompt_tokens and output_tokens must be >= 1 "
                                 f"(request {int(np.argmin(np.minimum(p, o)))})")
        if self.prefix_blocks is not None and len(self.prefix_blocks) != n:
            raise ValueError(f"{where}: prefix_blocks has {len(self.prefix_blocks)} entries for {n} requests")
        for name, v in (("arrival_s", arr), ("prompt_tokens", p), ("output_tokens", o), ("priority", pr)):
            v.setflags(write=False)
            object.__setattr__(self, name, v)

    @classmethod
    def from_unsorted(cls, arrival_s, prompt_tokens, output_tokens, priority=None, prefix_blocks=None,
                      name: str = "") -> "Workload":
        """Sort by arrival (stable, so equal times keep file order) and build."""
        arr = np.asarray(arrival_s, dtype=np.float64)
        order = np.argsort(arr, kind="stable")
        pr = None if priority is None else np.asarray(priority, dtype=np.int64)[order]
        pb = None if prefix_blocks is None else [prefix_blocks[i] for i in order]
        return cls(arr[order], np.asarray(prompt_tokens, dtype=np.int64)[order],
                   np.asarray(output_tokens, dtype=np.int64)[order], pr, pb, name)

    def __len__(self) -> int:
        return len(self.arrival_s)

    @property
    def duration_s(self) -> float:
        """Time from the first to the last arrival (0 for fewer than two requests)."""
        return float(self.arrival_s[-1] - self.arrival_s[0]) if len(self) > 1 else 0.0

    @property
    def rate(self) -> float:
        """Mean arrival rate in requests per second over [first, last] arrival."""
        d = self.duration_s
        return (len(self) - 1) / d if d > 0 else float("inf")

    def _take(self, idx, arrival: np.ndarray | None = None, name: str | None = None) -> "Workload":
        pb = None if self.prefix_blocks is None else [self.prefix_blocks[i] for i in np.arange(len(self))[idx]]
        return Workload(self.arrival_s[idx] if arrival is None else arrival, self.prompt_tokens[idx],
                        self.output_tokens[idx], self.priority[idx], pb, self.name if name is None else name)

    def slice(self, start_s: float, end_s: float) -> "Workload":
        """Requests arriving in [start_s, end_s), re-based so that start_s becomes time 0."""
        if not end_s > start_s:
            raise ValueError(f"Workload.slice: end_s ({end_s}) must be greater than start_s ({start_s})")
        lo, hi = np.searchsorted(self.arrival_s, [start_s, end_s], side="left")
        sel = slice(int(lo), int(hi))
        return self._take(sel, self.arrival_s[sel] - start_s, f"{self.name}[{start_s:g}s:{end_s:g}s]")

    def head(self, n: int) -> "Workload":
        """The first n requests (all if n >= len)."""
        if n < 0:
            raise ValueError(f"Workload.head: n must be >= 0, got {n}")
        return self._take(slice(0, int(n)))

    def scale_rate(self, factor: float) -> "Workload":
        """Same requests, arrival times divided by `factor` (factor 2 = twice the load)."""
        if not (factor > 0 and np.isfinite(factor)):
            raise ValueError(f"Workload.scale_rate: factor must be a finite number > 0, got {factor!r}")
        return self._take(slice(None), self.arrival_s / float(factor), self.name)

    def rebase(self) -> "Workload":
        """Shift arrivals so the first request arrives at time 0."""
        if not len(self):
            return self
        return self._take(slice(None), self.arrival_s - self.arrival_s[0], self.name)

    def describe(self) -> dict:
        """Summary numbers of the workload (for reports)."""
        n = len(self)
        if not n:
            return {"name": self.name, "requests": 0}
        p, o = self.prompt_tokens, self.output_tokens
        return {
            "name": self.name, "requests": n, "duration_s": round(self.duration_s, 3),
            "rate_rps": round(self.rate, 4) if self.duration_s > 0 else None,
            "prompt_mean": round(float(p.mean()), 1), "prompt_p50": int(np.median(p)),
            "prompt_p99": int(np.percentile(p, 99)), "output_mean": round(float(o.mean()), 1),
            "output_p50": int(np.median(o)), "prefix_blocks": self.prefix_blocks is not None,
        }


def concat(workloads: list[Workload], name: str = "") -> Workload:
    """Merge several workloads on one time axis (times kept as they are, then sorted)."""
    if not workloads:
        raise ValueError("concat: no workloads")
    has_pb = [w.prefix_blocks is not None for w in workloads]
    pb = None
    if any(has_pb):
        pb = []
        for w in workloads:
            pb.extend(w.prefix_blocks if w.prefix_blocks is not None
                      else [np.zeros(0, dtype=np.int64)] * len(w))
    return Workload.from_unsorted(
        np.concatenate([w.arrival_s for w in workloads]), np.concatenate([w.prompt_tokens for w in workloads]),
        np.concatenate([w.output_tokens for w in workloads]), np.concatenate([w.priority for w in workloads]),
        pb, name)
