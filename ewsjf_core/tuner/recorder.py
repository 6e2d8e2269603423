"""Records the recent traffic for the tuner, fed by the host (the engine adapter or the sim hook).

Per request: arrival time, prompt tokens, cached (prefix-hit) tokens, priority, then the first-token
time and the output length once known. The replay mode turns the last window into a sim Workload;
the live latency metric (rollback guard, live trials) reads TTFTs from it.

Cost on the hot path: one dict insert per arrival and one dict lookup per first token / finish, under a
lock that only `snapshot` (the tuner, a few times per trial) contends for. Bounded: at most
`max_requests` entries, oldest evicted first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Hashable

import numpy as np


@dataclass(frozen=True)
class WindowSnapshot:
    """Struct of arrays, sorted by arrival; NaN / -1 where not known yet."""
    arrival_s: np.ndarray        # float64, host clock
    prompt_tokens: np.ndarray    # int64
    cached_tokens: np.ndarray    # int64
    priority: np.ndarray         # int64
    first_token_s: np.ndarray    # float64, NaN until the first token
    output_tokens: np.ndarray    # int64, -1 until finished
    start_s: float
    end_s: float

    def __len__(self) -> int:
        return int(self.arrival_s.size)

    @property
    def effective_tokens(self) -> np.ndarray:
        return np.maximum(self.prompt_tokens - self.cached_tokens, 1)

    @property
    def ttft_s(self) -> np.ndarray:
        return self.first_token_s - self.arrival_s

    def to_workload(self, default_output_tokens: int = 128, name: str = "recorded-window"):
        """A sim Workload of this window: arrivals re-based to 0; the prompt replayed is the effective
        (uncached) part, since the recorded prefix hits cannot be mapped onto the sim's prefix blocks;
        a request not finished yet gets the median observed output length of the window (or
        `default_output_tokens` when none finished)."""
        from ewsjf_core.sim.workload import Workload  # lazy: only the replay mode needs the sim

        if len(self) == 0:
            raise ValueError("the recorded window is empty")
        done = self.output_tokens >= 1
        fill = int(np.median(self.output_tokens[done])) if done.any() else int(default_output_tokens)
        out = np.where(done, self.output_tokens, max(fill, 1)).astype(np.int64)
        t = self.arrival_s - self.arrival_s[0]
        return Workload(arrival_s=t.astype(np.float64), prompt_tokens=self.effective_tokens.astype(np.int64),
                        output_tokens=out, priority=self.priority.astype(np.int64), name=name)


class WindowRecorder:
    def __init__(self, max_requests: int = 20_000) -> None:
        if max_requests < 1:
            raise ValueError("WindowRecorder.max_requests must be >= 1")
        self.max_requests = max_requests
        # id -> [arrival, prompt, cached, priority, first_token, output]
        self._rows: OrderedDict[Hashable, list] = OrderedDict()
        self._lock = threading.Lock()
        self.arrivals = 0

    def __len__(self) -> int:
        return len(self._rows)

    def on_arrival(self, request_id: Hashable, arrival_time: float, prompt_tokens: int,
                   cached_tokens: int = 0, priority: int = 0) -> None:
        with self._lock:
            rows = self._rows
            if request_id in rows:     # re-added (e.g. preempted and re-queued): keep the first arrival
                return
            rows[request_id] = [float(arrival_time), int(prompt_tokens), int(cached_tokens), int(priority),
                                float("nan"), -1]
            self.arrivals += 1
            if len(rows) > self.max_requests:
                rows.popitem(last=False)

    def on_first_token(self, request_id: Hashable, t: float) -> None:
        with self._lock:
            row = self._rows.get(request_id)
            if row is not None and row[4] != row[4]:   # NaN: first time only
                row[4] = float(t)

    def on_finish(self, request_id: Hashable, output_tokens: int, t: float | None = None) -> None:
        with self._lock:
            row = self._rows.get(request_id)
            if row is not None:
                row[5] = int(output_tokens)
                if t is not None and row[4] != row[4] and output_tokens <= 1:
                    row[4] = float(t)

    def snapshot(self, since: float | None = None, until: float | None = None) -> WindowSnapshot:
        """Requests that arrived in [since, until] (None: unbounded), sorted by arrival."""
        with self._lock:
            rows = list(self._rows.values())
        if rows:
            a = np.array(rows, dtype=np.float64)
        else:
            a = np.empty((0, 6))
        keep = np.ones(len(a), dtype=bool)
        if since is not None:
            keep &= a[:, 0] >= since
        if until is not None:
            keep &= a[:, 0] <= until
        a = a[keep]
        a = a[np.argsort(a[:, 0], kind="stable")]
        return WindowSnapshot(
            arrival_s=a[:, 0].copy(), prompt_tokens=a[:, 1].astype(np.int64),
            cached_tokens=a[:, 2].astype(np.int64), priority=a[:, 3].astype(np.int64),
            first_token_s=a[:, 4].copy(), output_tokens=a[:, 5].astype(np.int64),
            start_s=float(since if since is not None else (a[0, 0] if len(a) else 0.0)),
            end_s=float(until if until is not None else (a[-1, 0] if len(a) else 0.0)))
