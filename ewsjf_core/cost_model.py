"""Online prefill-cost model C_prefill(p) = c0 + c1 p + c2 p^2, fitted from the engine's step feedback.

A step that prefilled p tokens and decoded d tokens took
    duration ~= c0 + c1 p + c2 p^2 + cd d
We fit theta = (c0, c1, c2, cd) by least squares with exponential forgetting, in information form with
regularised forgetting, so it cannot wind up:
    A <- f A + (1 - f) r I + x x^T,    b <- f b + (1 - f) r theta + x y,    theta <- A^-1 b
Plain forgetting divides the covariance by f every step, and in a direction no step excites (the prefill
terms during decode-only steps; c1 against c2 when every prompt has one size) it grows as f^-n until it
overflows: that was the windup. Here A >= r I once the prior has decayed, so the covariance A^-1 stays
below 1 / r; and because the regulariser pulls towards the current estimate, an unexcited direction
keeps its last fitted value (not drifting anywhere) until steps excite it again, when its small
information lets the fit follow at once. The fit starts at the prior with the weight of
`cost_prior_strength` = k steps (A = k I), which decays like data; r = (1 - f) k, about one forgotten
step's worth, is negligible against the ~1 / (1 - f) steps of data in force. Features are scaled to
thousands of tokens; the 4x4 system is solved by a hand-written, diagonally equilibrated Cholesky (no
BLAS, so no kernel needs SciPy).

Guards: a step with a non-finite, non-positive or implausible duration or token count (beyond
MAX_STEP_SECONDS / MAX_STEP_TOKENS) is skipped and counted; a residual beyond HUBER_K times the running
residual scale is clipped to it (a GC pause or a 100x timing glitch nudges the fit, never throws it);
if the solve ever fails or turns non-finite, the model falls back to the prior. Coefficients are made
non-negative when read (see `coefficients`): a cost never falls with size.

The same feedback gives the engine's prefill throughput (prefill tokens per second of step time, with the
same forgetting), which turns a backlog of waiting prefill tokens into an FCFS-equivalent wait.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ewsjf_core.config import EWSJFConfig

_SCALE = np.array([1.0, 1.0e3, 1.0e6, 1.0e3])  # feature scale: 1, p/1e3, (p/1e3)^2, d/1e3
MAX_STEP_TOKENS = 1 << 24
"""Steps claiming more prefill or decode tokens than this (16.7M, far above any engine's per-step token
budget) are skipped as corrupt feedback."""
MAX_STEP_SECONDS = 3600.0
"""Steps longer than an hour are stalls (or corrupt), not costs: skipped."""
HUBER_K = 4.0
"""Residuals are clipped at HUBER_K times the running mean absolute residual (relative to the prediction)."""


def prefill_cost(tokens, c0, c1, c2, floor=0.0):
    """C_prefill(tokens) = c0 + c1 tokens + c2 tokens^2 seconds, at least `floor`: the one place the formula
    is written. Scalars or numpy arrays; jitted kernels call its twin `prefill_cost_kernel`. A NaN cost
    gives `floor` (fmax), as a comparison would."""
    return np.fmax(c0 + c1 * tokens + c2 * tokens * tokens, floor)


prefill_cost_kernel = njit(cache=True, nogil=True)(prefill_cost)
SCALE_MEMORY = 0.9
"""The residual scale's own forgetting: it can grow ~30% per step, so a real change of the engine's speed
is followed within tens of steps while a lone outlier moves the fit little."""
REL_SCALE_FLOOR = 1.0e-3
"""The clipping scale never falls below 0.1% of the prediction (noise-free feedback still learns)."""

# aux layout: running residual scale (s; 0 before the first step), steps observed since a reset.
_AUX_SCALE, _AUX_RESETS = 0, 1


@njit(cache=True, nogil=True)
def _solve_spd4(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> bool:
    """out <- a^-1 b for a small symmetric positive-definite a (Cholesky on the equilibrated matrix).

    Returns False (out untouched) when a is not numerically positive definite."""
    n = b.shape[0]
    d = np.empty(n)
    for i in range(n):
        if not a[i, i] > 0.0:
            return False
        d[i] = 1.0 / math.sqrt(a[i, i])
    low = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1):
            s = a[i, j] * d[i] * d[j]
            for k in range(j):
                s -= low[i, k] * low[j, k]
            if i == j:
                if not s > 1e-14:
                    return False
                low[i, i] = math.sqrt(s)
            else:
                low[i, j] = s / low[j, j]
    z = np.empty(n)
    for i in range(n):  # forward: low z = d b
        s = b[i] * d[i]
        for k in range(i):
            s -= low[i, k] * z[k]
        z[i] = s / low[i, i]
    w = np.empty(n)
    for i in range(n - 1, -1, -1):  # back: low^T w = z
        s = z[i]
        for k in range(i + 1, n):
            s -= low[k, i] * w[k]
        w[i] = s / low[i, i]
    for i in range(n):
        if not math.isfinite(w[i] * d[i]):
            return False
    for i in range(n):
        out[i] = w[i] * d[i]
    return True


@njit(cache=True, nogil=True)
def regularised_update(info: np.ndarray, rhs: np.ndarray, theta: np.ndarray, prior: np.ndarray,
                       strength: float, floor: float, aux: np.ndarray, x: np.ndarray, y: float,
                       forgetting: float) -> float:
    """One step of the regularised-forgetting fit in place (module docstring); returns the duration used
    (y with its residual clipped). On a failed solve the fit falls back to the prior (`strength` steps)."""
    n = theta.shape[0]
    pred = 0.0
    for i in range(n):
        pred += x[i] * theta[i]
    err = y - pred
    # Timing noise scales with the step, so the scale tracks residuals relative to the prediction.
    denom = max(abs(pred), 1e-6)
    rel = abs(err) / denom
    scale = aux[_AUX_SCALE]
    if scale > 0.0:
        rel = min(rel, HUBER_K * max(scale, REL_SCALE_FLOOR))
        aux[_AUX_SCALE] = SCALE_MEMORY * scale + (1.0 - SCALE_MEMORY) * rel
    else:
        aux[_AUX_SCALE] = max(rel, REL_SCALE_FLOOR)
    clipped = rel * denom if err >= 0.0 else -rel * denom
    y_used = pred + clipped
    keep = 1.0 - forgetting
    for i in range(n):
        for j in range(n):
            info[i, j] = forgetting * info[i, j] + x[i] * x[j]
        info[i, i] += keep * floor
        rhs[i] = forgetting * rhs[i] + keep * floor * theta[i] + x[i] * y_used
    if not _solve_spd4(info, rhs, theta):
        for i in range(n):
            for j in range(n):
                info[i, j] = 0.0
            info[i, i] = strength
            rhs[i] = strength * prior[i]
            theta[i] = prior[i]
        aux[_AUX_RESETS] += 1.0
    return y_used


def prior_prefill_rate(config: EWSJFConfig) -> float:
    """Prefill tokens per second before any feedback: 1 / prior_c1."""
    return 1.0 / max(config.prior_c1, 1e-12)


# The fit's whole state, one array (so a kernel that fits in the same call as other work takes one argument):
# information matrix A (4x4), b, theta, the prior, aux (above), the decayed sums behind the prefill rate
# (prefill tokens, steps with prefill, step seconds), then strength, floor r and forgetting f.
_INFO, _RHS, _THETA, _PRIOR, _AUX, _SUMS, _STRENGTH, _FLOOR, _FORGET, STATE_SIZE = 0, 16, 20, 24, 28, 30, 33, 34, 35, 36


@njit(cache=True, nogil=True)
def fit_steps(state: np.ndarray, steps: np.ndarray) -> None:
    """regularised_update for each row (duration_s, prefill_tokens, decode_tokens) of `steps`, oldest first,
    and the decayed sums behind the prefill rate; `state` laid out as above, updated in place."""
    info = state[_INFO:_RHS].reshape((4, 4))
    rhs, theta, prior = state[_RHS:_THETA], state[_THETA:_PRIOR], state[_PRIOR:_AUX]
    aux, sums = state[_AUX:_SUMS], state[_SUMS:_STRENGTH]
    strength, floor, forgetting = state[_STRENGTH], state[_FLOOR], state[_FORGET]
    x = np.empty(4)
    for k in range(steps.shape[0]):
        prefill_tokens = steps[k, 1]
        p = prefill_tokens / 1.0e3
        x[0] = 1.0
        x[1] = p
        x[2] = p * p
        x[3] = steps[k, 2] / 1.0e3
        y_used = regularised_update(info, rhs, theta, prior, strength, floor, aux, x, steps[k, 0], forgetting)
        sums[0] = forgetting * sums[0] + prefill_tokens
        sums[1] = forgetting * sums[1] + (1.0 if prefill_tokens > 0.0 else 0.0)
        sums[2] = forgetting * sums[2] + max(y_used, 1e-9)


@njit(cache=True, nogil=True)
def read_coefficients(state: np.ndarray):
    """(c0, c1, c2, cd) in seconds, seconds/token, seconds/token^2, seconds/decode token, from the fit.

    Each is made >= 0 (a cost never falls with size). A negative c1 or c2 is folded into the other
    so the cost at the recent mean prefill size is kept: when one prompt size dominates, only the
    sum c1 p + c2 p^2 at that size is known, and zeroing a term would bias exactly that sum."""
    c0 = state[_THETA] / _SCALE[0]
    c1 = state[_THETA + 1] / _SCALE[1]
    c2 = state[_THETA + 2] / _SCALE[2]
    cd = state[_THETA + 3] / _SCALE[3]
    if c1 < 0.0 or c2 < 0.0:
        prefill_tokens, prefill_steps = state[_SUMS], state[_SUMS + 1]
        ref = prefill_tokens / prefill_steps if prefill_steps > 1e-9 else 1.0e3
        if c2 < 0.0:
            c1, c2 = c1 + c2 * ref, 0.0
        if c1 < 0.0:
            c1, c2 = 0.0, max(c2 + c1 / ref, 0.0)
    return max(c0, 0.0), max(c1, 0.0), c2, max(cd, 0.0)


def plausible_step(duration_s: float, prefill_tokens: int, decode_tokens: int) -> bool:
    """Whether a step's feedback can be fitted (False also for NaN); implausible steps are skipped."""
    return (0.0 < duration_s <= MAX_STEP_SECONDS and 0 <= prefill_tokens <= MAX_STEP_TOKENS
            and 0 <= decode_tokens <= MAX_STEP_TOKENS)


class PrefillCostModel:
    """C_prefill estimate, updated once per engine step. Not thread-safe: the engine thread owns it."""

    def __init__(self, config: EWSJFConfig) -> None:
        self.state = np.zeros(STATE_SIZE)
        """The fit's state (layout above). fit_steps(state, rows) may run inside another kernel: call
        fitted(rows) right after. Nothing else writes it."""
        self._info = self.state[_INFO:_RHS].reshape(4, 4)
        self._theta = self.state[_THETA:_PRIOR]
        self._aux = self.state[_AUX:_SUMS]
        self._sums = self.state[_SUMS:_STRENGTH]
        prior = np.array([config.prior_c0, config.prior_c1, config.prior_c2, config.prior_decode]) * _SCALE
        strength = max(config.cost_prior_strength, 1e-6)
        forgetting = config.cost_forgetting
        self.state[_PRIOR:_AUX] = prior
        self.state[_STRENGTH:] = strength, (1.0 - forgetting) * strength, forgetting  # r: least information
        self._info[:] = np.eye(4) * strength
        self.state[_RHS:_THETA] = prior * strength
        self._theta[:] = prior
        self.steps = 0
        self.skipped = 0
        self._prior_rate = prior_prefill_rate(config)
        self._coefficients: tuple[float, float, float, float] | None = None   # cached reading of theta

    def observe(self, duration_s: float, prefill_tokens: int, decode_tokens: int) -> bool:
        """Fit one step; False (and counted in `skipped`) when its figures are implausible."""
        return self.observe_many(((duration_s, prefill_tokens, decode_tokens),)) == 1

    def observe_many(self, steps) -> int:
        """Fit a sequence of (duration_s, prefill_tokens, decode_tokens) steps in order, in one kernel call;
        implausible ones are skipped and counted. Returns how many were fitted."""
        good = [s for s in steps if plausible_step(*s)]
        self.skipped += len(steps) - len(good)
        if good:
            self.fit_rows(np.array(good, np.float64))
        return len(good)

    def fit_rows(self, rows: np.ndarray) -> None:
        """Fit plausible steps, a row (duration_s, prefill_tokens, decode_tokens) each, in order."""
        if rows.shape[0]:
            fit_steps(self.state, rows)
            self.fitted(rows.shape[0])

    def skip(self) -> None:
        """Count a step left out of the fit (its figures are implausible: plausible_step)."""
        self.skipped += 1

    def fitted(self, n_steps: int) -> None:
        """fit_steps(state, rows) ran for n_steps rows (here or inside another kernel)."""
        self.steps += n_steps
        self._coefficients = None

    @property
    def resets(self) -> int:
        """Times the fit fell back to the prior (a failed solve)."""
        return int(self._aux[_AUX_RESETS])

    @property
    def prefill_rate(self) -> float:
        """Prefill tokens the engine processes per second of step time (1 / prior_c1 before feedback).

        Less than one (decayed) token of prefill evidence, as after a long decode-only stretch: the prior."""
        prefill_tokens, _, step_seconds = self._sums.tolist()
        if prefill_tokens < 1.0:
            return self._prior_rate
        return prefill_tokens / step_seconds

    @property
    def coefficients(self) -> tuple[float, float, float, float]:
        """(c0, c1, c2, cd): see read_coefficients."""
        if self._coefficients is None:
            self._coefficients = tuple(float(c) for c in read_coefficients(self.state))
        return self._coefficients

    def coefficients_now(self) -> tuple[float, float, float, float]:
        """coefficients, read from another thread: nothing is fitted or cached (the engine thread's cache is
        left to it), so a read during a fit may mix the two fits' values, which a reader that only steers
        (the tuner) tolerates."""
        cached = self._coefficients
        if cached is not None:
            return cached
        return tuple(float(c) for c in read_coefficients(self.state.copy()))  # type: ignore[return-value]

    @property
    def covariance_bound(self) -> float:
        """Largest diagonal entry of the covariance bound 1 / min eigenvalue of A (for tests and stats)."""
        return float(1.0 / np.linalg.eigvalsh(self._info)[0])

    def cost(self, tokens: float) -> float:
        c0, c1, c2, _ = self.coefficients
        return float(prefill_cost(tokens, c0, c1, c2))

    def marginal_cost(self, tokens: float) -> float:
        """What `tokens` of prefill add to a step: cost without the per-step c0. Every step pays c0, decodes
        included, and while the decode batch keeps one size (an engine at its running cap for hundreds of steps)
        the fit cannot tell the decodes' cost from c0 and moves it there."""
        _, c1, c2, _ = self.coefficients
        return float(prefill_cost(tokens, 0.0, c1, c2))
