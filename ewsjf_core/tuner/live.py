"""Live mode (the published design): each candidate serves the real traffic for `live_trial_s`, then is
scored on what that traffic experienced.

Score of a trial over [t0, t1] (host clock): the latency term over requests that arrived in [t0, t1] and
got their first token by the time of scoring; the partition terms over the stats()["queues"] samples the
engine thread took in [t0, t1] (TunedEWSJFQueue samples them in begin_step). Weakness, by construction:
two candidates meet different traffic, so under bursty arrivals a candidate that happened to meet a
burst looks worse than one that met a lull. The replay mode exists to remove exactly that.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ewsjf_core.config import EWSJFConfig
from ewsjf_core.tuner.context import TrialContext
from ewsjf_core.cost_model import prefill_cost
from ewsjf_core.tuner.reward import RewardWeights, terms_from


class LiveObjective:
    stateless = False
    in_process = True
    applies_candidate = True

    def __init__(self, weights: RewardWeights = RewardWeights(), samples: Any = None) -> None:
        self.weights = weights
        self.samples = samples if samples is not None else ()   # iterable of (t, queues) pairs

    def prepare(self, ctx: TrialContext) -> TrialContext:
        return ctx

    def evaluate(self, ctx: TrialContext, config: EWSJFConfig) -> dict[str, Any]:
        """Blocking form (background thread): the candidate is in force; wait, then score."""
        t0 = ctx.clock()
        ctx.wait(ctx.settings.live_trial_s)
        return self.score(ctx, t0, ctx.clock())

    def score(self, ctx: TrialContext, t0: float, t1: float) -> dict[str, Any]:
        snap = ctx.recorder.snapshot(t0, t1)
        # Requests that arrived after the swap (at t0 itself the old parameters may still have served).
        ok = np.isfinite(snap.first_token_s) & (snap.arrival_s > t0)
        c0, c1, c2, _ = ctx.cost_coefficients()
        cost = prefill_cost(snap.effective_tokens[ok], c0, c1, c2, ctx.config().min_prefill_cost)
        ttft = snap.ttft_s[ok]
        snaps = [q for (t, q) in list(self.samples) if t0 <= t <= t1]
        terms = terms_from(snaps, ctx.queue_cap, ttft, cost)
        metrics = {"requests": float(np.count_nonzero(snap.arrival_s > t0)), "completed": float(ok.sum()),
                   "ttft_mean_s": float(np.mean(ttft)) if ok.any() else math.nan}
        if not ok.any():
            raise ValueError(f"live trial saw no request with a first token in [{t0:.3f}, {t1:.3f}]")
        return {"reward": terms.reward(self.weights), "terms": terms.to_dict(), "metrics": metrics}
