"""The rollback guard: after the tuner applies a winner, watch live latency and undo a swap that hurt.

The guard's figure is the live mean of TTFT / C_prefill (a request's wait relative to its own prefill
cost). With a replay objective it is traffic-normalised: how many times slower live was than the replay
on the same requests (calibration: a paired geometric mean), before the swap (the window, old parameters)
and after it (the guard period replayed with the new ones). It then moves when the replay's judgement stops
holding live, not when traffic changes. A normalised rollback also needs the live figure itself to have
worsened.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ewsjf_core.config import EWSJFConfig
from ewsjf_core.cost_model import prefill_cost
from ewsjf_core.tuner.context import CostCoefficients, TrialContext
from ewsjf_core.tuner.recorder import WindowRecorder
from ewsjf_core.tuner.state import TrialRecord


def live_slowdown(recorder: WindowRecorder, since: float, until: float | None,
                  coeffs: CostCoefficients, floor: float) -> tuple[float, int]:
    """(mean TTFT / C_prefill, count) over requests that arrived in [since, until] and got a first token."""
    snap = recorder.snapshot(since, until)
    ok = np.isfinite(snap.first_token_s)
    if not ok.any():
        return math.nan, 0
    cost = prefill_cost(snap.effective_tokens[ok], coeffs[0], coeffs[1], coeffs[2], floor)
    ttft = np.maximum(snap.ttft_s[ok], 0.0)
    return float(np.mean(ttft / cost)), int(ok.sum())


def calibration(live: Any, replay_ttft: Any, floor: float) -> tuple[float, int]:
    """(how many times slower live was than the replay on the same requests, n): the geometric mean of each
    request's live TTFT over its replayed TTFT (both floored at `floor`). `live` is a recorder snapshot,
    `replay_ttft` the replay's TTFTs of the same requests in arrival order (the last ones of each are
    aligned); requests without a live first token are left out.

    Paired and geometric, so a few outliers cannot swing it: over a replay window's 1,000 requests the
    ratio of the two mean slowdowns was set by the replay's top 5% (half its sum), read 0.63 where the
    median request was 2.3x slower live, and made an unchanged swap look 55% worse (tuner_convergence,
    Azure, seed 0). A request's prefill cost cancels in its own ratio, so none is needed here."""
    r = np.asarray(replay_ttft, dtype=float)
    m = min(len(live), r.size)
    if m == 0:
        return math.nan, 0
    r = r[r.size - m:]
    lt = live.ttft_s[len(live) - m:]
    ok = np.isfinite(lt) & np.isfinite(r)
    if not ok.any():
        return math.nan, 0
    log_ratio = np.log(np.maximum(lt[ok], floor)) - np.log(np.maximum(r[ok], floor))
    return float(np.exp(np.mean(log_ratio))), int(ok.sum())


@dataclass
class PendingSwap:
    record: TrialRecord
    previous: EWSJFConfig
    swapped_at: float
    baseline: float
    baseline_n: int
    normalized: bool = False         # baseline is a live/replay ratio (replay objectives), not a raw slowdown
    raw_baseline: float = math.nan   # live mean TTFT/C_prefill before the swap (guard_s seconds)


ReplayJudge = Callable[[float, float], "list[float] | None"]
"""(swapped_at, now) -> the replayed TTFTs of the guard period under the parameters in force, or None."""


class RollbackGuard:
    """One pending swap at a time: `arm` after applying a winner, `judge` until it returns a verdict."""

    def __init__(self, ctx: TrialContext) -> None:
        self._ctx = ctx
        self.pending: PendingSwap | None = None

    def arm(self, rec: TrialRecord, previous: EWSJFConfig, now: float,
            incumbent: tuple[Any, dict] | None) -> bool:
        """Measure the baseline before the swap. False (nothing armed) when too little recent traffic
        exists to judge the swap against: the caller then accepts it as the new last good."""
        s, coeffs, floor = self._ctx.settings, self._ctx.cost_coefficients(), previous.min_prefill_cost
        raw, raw_n = live_slowdown(self._ctx.recorder, now - s.guard_s, now, coeffs, floor)
        base, n, normalized = raw, raw_n, False
        if incumbent is not None:
            ttft, info = incumbent
            live = self._ctx.recorder.snapshot(info.get("window_start"), info.get("window_end"))
            base, n = calibration(live, ttft, floor)
            normalized = True
        if n >= s.rollback_min_samples and math.isfinite(base):
            self.pending = PendingSwap(rec, previous, now, base, n, normalized, raw)
            return True
        self.pending = None
        return False

    def figure(self, g: PendingSwap, now: float, replay: ReplayJudge | None) -> tuple[float, int, float]:
        """(figure, samples, raw live slowdown) of the guard period [swap, now]."""
        coeffs, floor = self._ctx.cost_coefficients(), self._ctx.config().min_prefill_cost
        raw, n = live_slowdown(self._ctx.recorder, g.swapped_at, None, coeffs, floor)
        if not g.normalized:
            return raw, n, raw
        ttft = replay(g.swapped_at, now) if replay is not None else None
        if ttft is None:
            return math.nan, 0, raw
        fig, n = calibration(self._ctx.recorder.snapshot(g.swapped_at, now), ttft, floor)
        return fig, n, raw

    def worse(self, g: PendingSwap, after: float, n: int, raw_after: float) -> bool:
        s = self._ctx.settings
        thr = 1.0 + s.rollback_threshold
        worse = (math.isfinite(g.baseline) and math.isfinite(after)
                 and n >= s.rollback_min_samples and after > g.baseline * thr)
        if worse and g.normalized:
            # A swap is rolled back for live latency that got worse, not one explained by the traffic.
            worse = not (math.isfinite(g.raw_baseline) and math.isfinite(raw_after)
                         and raw_after <= g.raw_baseline * thr)
        m = g.record.metrics
        m["guard_before"] = g.baseline
        m["guard_after"] = after if math.isfinite(after) else -1.0
        m["guard_normalized"] = float(g.normalized)
        if g.normalized:
            m["guard_live_before"] = g.raw_baseline if math.isfinite(g.raw_baseline) else -1.0
            m["guard_live_after"] = raw_after if math.isfinite(raw_after) else -1.0
        return worse
