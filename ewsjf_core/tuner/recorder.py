"""Records the recent traffic for the tuner, fed by the host (the engine adapter or the sim hook).

Per request: arrival time, prompt tokens, cached (prefix-hit) tokens, priority, then the first-token
time and the output length once known. The replay mode turns the last window into a sim Workload;
the live latency metric (rollback guard, live trials) reads TTFTs from it.

Cost on the hot path: one dict insert per arrival and one dict lookup per first token / finish, no lock.
Bounded: at most `max_requests` entries are kept (oldest evicted first, in batches).
"""

from __future__ import annotations

import struct
from array import array
from dataclasses import dataclass
from typing import Hashable, Mapping

import numpy as np

_NAN = float("nan")
_PACK_ROW = struct.Struct("8d").pack   # pack + frombytes: ~3x faster than array.extend(tuple)


@dataclass(frozen=True)
class WindowSnapshot:
    """Struct of arrays, sorted by arrival; NaN / -1 where not known yet."""
    arrival_s: np.ndarray        # float64, host clock
    prompt_tokens: np.ndarray    # int64
    cached_tokens: np.ndarray    # int64
    priority: np.ndarray         # int64
    first_token_s: np.ndarray    # float64, NaN until the first token
    output_tokens: np.ndarray    # int64, -1 until finished
    finish_s: np.ndarray         # float64, NaN until finished
    depth_at_arrival: np.ndarray  # float64, requests already waiting when it arrived (NaN: not reported)
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

    def to_workload(self, default_output_tokens: int = 128, name: str = "recorded-window",
                    start: float | None = None):
        """A sim Workload of this window, arrivals re-based so the window starts at 0.

        - The prompt replayed is the effective (uncached) part: recorded prefix hits cannot be mapped
          onto the sim's prefix blocks.
        - A request not finished yet gets the median observed output length of the window (or
          `default_output_tokens` when none finished).
        - Backlog (with `start`: requests that arrived before it): they re-arrive at `start`, so the
          replay meets them all at once as the live engine did (replaying them from their own arrival
          would let the replay serve them before the window, with none of the traffic that delayed them
          live). One that had its first token before `start` was running, not waiting: it is replayed as
          a 1-token prompt with the part of its output still to decode at `start` (interpolated between
          its first token and finish times; all of it if it has not finished).
        Returns the Workload; `replay_scored(start)` says which of its requests the reward counts."""
        from ewsjf_core.sim.workload import Workload  # lazy: only the replay mode needs the sim

        if len(self) == 0:
            raise ValueError("the recorded window is empty")
        done = self.output_tokens >= 1
        fill = int(np.median(self.output_tokens[done])) if done.any() else int(default_output_tokens)
        out = np.where(done, self.output_tokens, max(fill, 1)).astype(np.int64)
        arr = self.arrival_s.copy()
        prompt = self.effective_tokens.astype(np.int64)
        if start is not None:
            before = arr < start
            running = before & (self.first_token_s < start)
            arr[before] = start
            prompt[running] = 1
            # A running request's decode progress at `start`, interpolated between its first token and
            # its finish when it finished; else its whole output is left (pessimistic).
            ft, fin = self.first_token_s, self.finish_s
            with np.errstate(invalid="ignore", divide="ignore"):
                left = np.where(fin > ft, (fin - start) / (fin - ft), 1.0)
            left = np.clip(np.nan_to_num(left, nan=1.0), 0.0, 1.0)
            out = np.where(running, np.maximum(np.ceil(out * left), 1), out).astype(np.int64)
        t = arr - arr.min()
        return Workload(arrival_s=t.astype(np.float64), prompt_tokens=prompt, output_tokens=out,
                        priority=self.priority.astype(np.int64), name=name)

    def replay_scored(self, start: float | None = None) -> np.ndarray:
        """Requests whose replayed TTFT counts: all but the backlog that was already running at start."""
        if start is None:
            return np.ones(len(self), dtype=bool)
        return ~((self.arrival_s < start) & (self.first_token_s < start))


class WindowRecorder:
    """Row-major in one `array.array('d')` (8 floats a row: arrival, prompt, cached, priority, first
    token, output, finish, depth at arrival): an arrival is one struct pack and one `frombytes`, an
    update one item store. A dict maps request id to its latest row, and a list names each row's request (so
    that eviction drops only the ids whose latest row goes). No lock: each hot-path method is a few operations
    that are atomic under the GIL, and `snapshot` copies the array in one C call, so the tuner holds the GIL for
    microseconds, not for a Python loop over the rows."""

    _FIELDS = 8

    def __init__(self, max_requests: int = 20_000, clock=None) -> None:
        self.clock = clock          # used when a host reports an event without its time
        if max_requests < 1:
            raise ValueError("WindowRecorder.max_requests must be >= 1")
        self.max_requests = max_requests
        self._slack = max(1, max_requests // 4)
        self._data = array("d")
        self._pos: dict[Hashable, int] = {}     # id -> absolute row number of its latest row
        self._ids: list[Hashable] = []          # the request of each row of _data, in row order
        self._base = 0                          # absolute row number of row 0 of _data

    @property
    def arrivals(self) -> int:
        """Requests recorded since the start (evicted ones included)."""
        return self._base + len(self._ids)

    def __len__(self) -> int:
        return min(len(self._ids), self.max_requests)

    def on_arrival(self, request_id: Hashable, arrival_time: float, prompt_tokens: int,
                   cached_tokens: int = 0, priority: int = 0, depth: int | None = None) -> None:
        pos = self._pos
        n = len(self._ids)
        p = pos.get(request_id)
        if p is not None:
            finish = self._data[(p - self._base) * self._FIELDS + 6]
            if finish != finish:   # NaN: still in the system, re-added (preempted, re-queued): keep its first arrival
                return
            # else the id is reused by a new request: it gets a row of its own (the finished one stays)
        # Pack before indexing: a value that cannot be packed must not leave an id without its row
        # (every later row would be read one off).
        row = _PACK_ROW(arrival_time, prompt_tokens, cached_tokens, priority, _NAN, -1.0, _NAN,
                        _NAN if depth is None else depth)
        pos[request_id] = self._base + n
        self._ids.append(request_id)
        self._data.frombytes(row)
        if n >= self.max_requests + self._slack:
            self._evict(n + 1 - self.max_requests)

    def _evict(self, k: int) -> None:
        """Drop the oldest k rows in one batch (amortised O(1) per arrival), and the ids whose latest row they
        hold."""
        pos, end = self._pos, self._base + k
        for rid in self._ids[:k]:
            if pos.get(rid, end) < end:
                del pos[rid]
        del self._ids[:k]
        del self._data[:k * self._FIELDS]
        self._base = end

    def on_first_token(self, request_id: Hashable, t: float | None = None) -> None:
        p = self._pos.get(request_id)
        if p is not None:
            i = (p - self._base) * 8 + 4
            data = self._data
            if data[i] != data[i]:                 # NaN: first time only
                data[i] = t if t is not None else self._now()

    def _now(self) -> float:
        if self.clock is None:
            raise ValueError("WindowRecorder: an event without a time needs the recorder's clock")
        return float(self.clock())

    def on_finish(self, request_id: Hashable, output_tokens: int, t: float | None = None) -> None:
        """The request left at `t` with `output_tokens` (aborted ones too: 0 if before their first token), so
        it is no longer backlog. A 1-token output's first token is its finish, if none was reported."""
        p = self._pos.get(request_id)
        if p is not None:
            i = (p - self._base) * 8
            data = self._data
            data[i + 5] = output_tokens
            if t is None and self.clock is not None:
                t = self._now()
            if t is not None:
                data[i + 6] = t
                if data[i + 4] != data[i + 4] and output_tokens == 1:
                    data[i + 4] = t

    def on_resize(self, cached_tokens: Mapping[Hashable, int]) -> None:
        """The host sized its waiting requests anew (its prefix cache was reset): request id -> its cached tokens
        now. A request still waiting for its first token takes them: replayed, it must not hit a cache that is gone
        (nor be judged against the cost of one). One with a first token (preempted since) keeps the hit it had."""
        pos, base, data = self._pos, self._base, self._data
        for request_id, cached in cached_tokens.items():
            p = pos.get(request_id)
            if p is not None:
                i = (p - base) * self._FIELDS
                if data[i + 4] != data[i + 4]:   # NaN: no first token yet
                    data[i + 2] = cached

    def snapshot(self, since: float | None = None, until: float | None = None,
                 active_at_start: bool = False) -> WindowSnapshot:
        """Requests that arrived in [since, until] (None: unbounded), sorted by arrival. With
        active_at_start, also the earlier requests still in the system at `since` (not finished by then,
        as far as the host reported): the backlog the window's traffic met."""
        # data[:] is one C call (atomic under the GIL) copying into a private array, so no buffer of the
        # live array is ever exported (that would make the engine thread's next append fail). A row being
        # appended is whole or absent: frombytes is one call.
        a = np.frombuffer(self._data[:], dtype=np.float64)
        n = len(a) // self._FIELDS
        a = a[:n * self._FIELDS].reshape(n, self._FIELDS)[max(0, n - self.max_requests):]
        keep = np.ones(len(a), dtype=bool)
        if since is not None:
            inside = a[:, 0] >= since
            if active_at_start:
                fin = a[:, 6]
                inside |= (a[:, 0] < since) & ~(fin <= since)   # NaN finish: still active
            keep &= inside
        if until is not None:
            keep &= a[:, 0] <= until
        a = a[keep]
        a = a[np.argsort(a[:, 0], kind="stable")]
        return WindowSnapshot(
            arrival_s=a[:, 0].copy(), prompt_tokens=a[:, 1].astype(np.int64),
            cached_tokens=a[:, 2].astype(np.int64), priority=a[:, 3].astype(np.int64),
            first_token_s=a[:, 4].copy(), output_tokens=a[:, 5].astype(np.int64), finish_s=a[:, 6].copy(),
            depth_at_arrival=a[:, 7].copy(),
            start_s=float(since if since is not None else (a[0, 0] if len(a) else 0.0)),
            end_s=float(until if until is not None else (a[-1, 0] if len(a) else 0.0)))
