"""Online prefill-cost model C_prefill(p) = c0 + c1 p + c2 p^2, fitted from the engine's step feedback.

A step that prefilled p tokens and decoded d tokens took
    duration ~= c0 + c1 p + c2 p^2 + cd d
We fit (c0, c1, c2, cd) by recursive least squares with exponential forgetting, so the model follows the
engine as its load or hardware changes. Features are scaled to thousands of tokens to keep the problem
well conditioned. Before any feedback, the prior (from the config) is the answer; the prior's weight is
`cost_prior_strength` steps. Coefficients are clipped at zero when read: a cost never falls with size.

The same feedback gives the engine's prefill throughput (prefill tokens per second of step time, with the
same forgetting), which turns a backlog of waiting prefill tokens into an FCFS-equivalent wait.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ewsjf_core.config import EWSJFConfig

_SCALE = np.array([1.0, 1.0e3, 1.0e6, 1.0e3])  # feature scale: 1, p/1e3, (p/1e3)^2, d/1e3


@njit(cache=True, nogil=True)
def rls_update(theta: np.ndarray, cov: np.ndarray, x: np.ndarray, y: float, forgetting: float) -> None:
    """One recursive-least-squares step in place: theta, cov <- fit after observing (x, y)."""
    n = theta.shape[0]
    px = cov @ x
    denom = forgetting + x @ px
    gain = px / denom
    err = y - x @ theta
    for i in range(n):
        theta[i] += gain[i] * err
    for i in range(n):
        for j in range(n):
            cov[i, j] = (cov[i, j] - gain[i] * px[j]) / forgetting
    # Keep the covariance symmetric against rounding drift.
    for i in range(n):
        for j in range(i + 1, n):
            v = 0.5 * (cov[i, j] + cov[j, i])
            cov[i, j] = v
            cov[j, i] = v


def prior_prefill_rate(config: EWSJFConfig) -> float:
    """Prefill tokens per second before any feedback: 1 / prior_c1."""
    return 1.0 / max(config.prior_c1, 1e-12)


class PrefillCostModel:
    """C_prefill estimate, updated once per engine step. Not thread-safe: the engine thread owns it."""

    def __init__(self, config: EWSJFConfig) -> None:
        prior = np.array([config.prior_c0, config.prior_c1, config.prior_c2, config.prior_decode])
        self._theta = prior * _SCALE
        # RLS from covariance I / k is ridge regression pulling towards the prior with the weight of k
        # unit-feature observations: the prior counts as `cost_prior_strength` steps.
        self._cov = np.eye(4) / max(config.cost_prior_strength, 1e-6)
        self._forgetting = config.cost_forgetting
        self._x = np.empty(4)
        self.steps = 0
        self._prior_rate = prior_prefill_rate(config)
        self._prefill_tokens = 0.0  # decayed sums behind prefill_rate
        self._step_seconds = 0.0

    def observe(self, duration_s: float, prefill_tokens: int, decode_tokens: int) -> None:
        p = prefill_tokens / 1.0e3
        x = self._x
        x[0] = 1.0
        x[1] = p
        x[2] = p * p
        x[3] = decode_tokens / 1.0e3
        rls_update(self._theta, self._cov, x, float(duration_s), self._forgetting)
        self.steps += 1
        f = self._forgetting
        self._prefill_tokens = f * self._prefill_tokens + prefill_tokens
        self._step_seconds = f * self._step_seconds + duration_s

    @property
    def prefill_rate(self) -> float:
        """Prefill tokens the engine processes per second of step time (1 / prior_c1 before feedback)."""
        if self._prefill_tokens <= 0.0:
            return self._prior_rate
        return self._prefill_tokens / self._step_seconds

    @property
    def coefficients(self) -> tuple[float, float, float, float]:
        """(c0, c1, c2, cd) in seconds, seconds/token, seconds/token^2, seconds/decode token."""
        c = np.maximum(self._theta, 0.0) / _SCALE
        return float(c[0]), float(c[1]), float(c[2]), float(c[3])

    def cost(self, tokens: float) -> float:
        c0, c1, c2, _ = self.coefficients
        return c0 + c1 * tokens + c2 * tokens * tokens
