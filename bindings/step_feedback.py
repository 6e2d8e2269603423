"""StepFeedback: what the engine reports of its finished steps, the prefill-cost model fitted to it, and the
parameter vector the kernels read.

Recording a step is a list append and a buffer extend; the model (ewsjf_core.cost_model) is fitted to the
steps recorded since the last fit in one kernel call, normally inside the next admission round's step
kernel, or before anything else reads the model. The parameter vector (the config's scoring parameters
and the model's coefficients, ewsjf_core.scoring) is rewritten in place when the model moves, and rebuilt
when the config changes.
"""

from __future__ import annotations

from array import array

import numpy as np

from ewsjf_core.config import EWSJFConfig
from ewsjf_core.cost_model import PrefillCostModel, plausible_step
from ewsjf_core.scoring import P_C0, P_C1, P_C2, P_LATE_BYPASS, P_OUT_WORK, late_bypass, pack_params

_NO_STEPS = array("d")
MAX_PENDING_STEPS = 4096
"""Steps recorded before a fit is due whatever else happens (a full running batch for hours consults no
queue, and the recorded steps must stay bounded)."""


class StepFeedback:
    """Recorded steps not yet fitted, the cost model, and the kernels' parameter vector. The engine thread
    owns it."""

    def __init__(self, config: EWSJFConfig) -> None:
        self.model = PrefillCostModel(config)
        # Every step's decode tokens (the progress bound's output estimate counts them all), and the plausible
        # steps' (duration_s, prefill_tokens, decode_tokens) for the fit, flat in a buffer numpy reads without
        # a conversion (parsing tuples costs ~20 us amid an engine step); implausible ones count as skipped.
        self._decoded: list[int] = []
        self._rows = array("d")
        self._params: np.ndarray | None = None   # None: rebuild before use
        self._stale = False   # the model moved since _params was filled: refresh its coefficients

    def record(self, duration_s: float, prefill_tokens: int, decode_tokens: int) -> bool:
        """Record a finished step (validated by the caller); True when MAX_PENDING_STEPS wait: fit them."""
        self._decoded.append(decode_tokens)
        if plausible_step(duration_s, prefill_tokens, decode_tokens):
            self._rows.extend((duration_s, prefill_tokens, decode_tokens))
        else:
            self.model.skip()
        return len(self._decoded) >= MAX_PENDING_STEPS

    @property
    def pending(self) -> bool:
        """Whether steps were recorded since the last take()."""
        return bool(self._decoded)

    @property
    def pending_steps(self) -> int:
        return len(self._decoded)

    def take(self) -> tuple[array, list[int]]:
        """The steps recorded since the last take: the plausible ones for the fit, flat (rows(): as rows; the
        caller fits them: model.fit_rows, or fit_steps inside its kernel, then model.fitted), and every
        step's decode tokens (none: nothing was recorded)."""
        if not self._decoded:
            return _NO_STEPS, []
        decoded, self._decoded = self._decoded, []
        flat, self._rows = self._rows, array("d")
        self._stale = True
        return flat, decoded

    @staticmethod
    def rows(flat: array) -> np.ndarray:
        """take()'s steps as rows (duration_s, prefill_tokens, decode_tokens)."""
        return np.frombuffer(flat).reshape(-1, 3)

    def params(self, config: EWSJFConfig, out_work: float, fitting: bool = False,
               cap_share: float = 0.0) -> np.ndarray:
        """The parameter vector for `config` (call with nothing pending: take() and fit first). fitting: the
        caller's kernel (the step kernel) fits the model to the rows just taken and writes the coefficients
        and out_work itself. cap_share: the share of recent steps the running cap held admissions (the late
        bypass share follows it at every call)."""
        params = self._params
        if params is None:
            params = self._params = pack_params(config, *self.model.coefficients[:3], out_work, cap_share)
        elif self._stale and not fitting:
            c0, c1, c2, _ = self.model.coefficients
            params[P_C0] = c0
            params[P_C1] = c1
            params[P_C2] = c2
            params[P_OUT_WORK] = out_work
        params[P_LATE_BYPASS] = late_bypass(config, cap_share)
        self._stale = False
        return params

    @property
    def vector(self) -> np.ndarray | None:
        """The parameter vector as params() last handed it out (None before the first call or after a config
        change), untouched by anything recorded since: an order computed with it is extended with it."""
        return self._params

    @property
    def params_current(self) -> bool:
        """Whether params() would hand back the vector as it is (no fit pending, nothing moved)."""
        return self._params is not None and not self._stale and not self._decoded

    def config_changed(self) -> None:
        """The config changed: the next params() builds the vector anew."""
        self._params = None

    def cost_offset(self) -> float:
        """b0 = c0 / c1 of the model, bounded (ewsjf_core.partition)."""
        c0, c1, _, _ = self.model.coefficients
        return min(max(c0 / max(c1, 1e-12), 1.0), 4096.0)
