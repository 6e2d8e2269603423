import numpy as np
import pytest

from ewsjf.bindings.step_feedback import MAX_PENDING_STEPS, StepFeedback
from ewsjf_core.config import EWSJFConfig
from ewsjf_core.cost_model import PrefillCostModel
from ewsjf_core.scoring import P_C0, P_C1, P_C2, P_LATE_BYPASS, P_OUT_WORK


def test_take_hands_over_the_plausible_steps_and_every_steps_decode_tokens():
    fb = StepFeedback(EWSJFConfig())
    assert not fb.pending and len(fb.take()[0]) == 0
    fb.record(0.02, 512, 30)
    fb.record(-1.0, 512, 7)       # implausible: not fitted, counted as skipped, its decode tokens still count
    fb.record(0.05, 2048, 0)
    assert fb.pending and fb.pending_steps == 3
    flat, decoded = fb.take()
    assert StepFeedback.rows(flat).tolist() == [[0.02, 512.0, 30.0], [0.05, 2048.0, 0.0]]
    assert decoded == [30, 7, 0]
    assert fb.model.skipped == 1
    assert not fb.pending and fb.take()[1] == []


def test_record_asks_for_a_fit_when_the_pending_steps_reach_the_cap():
    fb = StepFeedback(EWSJFConfig())
    due = [fb.record(0.02, 100, 10) for _ in range(MAX_PENDING_STEPS)]
    assert due == [False] * (MAX_PENDING_STEPS - 1) + [True]


def test_params_follow_the_fitted_model_and_the_config():
    cfg = EWSJFConfig()
    fb = StepFeedback(cfg)
    first = fb.params(cfg, 0.0)
    assert fb.params_current and fb.vector is first
    for _ in range(50):
        fb.record(0.01 + 4e-6 * 3000, 3000, 100)
    assert not fb.params_current
    assert fb.vector is first and fb.vector[P_C1] == first[P_C1]   # recording touches no vector
    rows = StepFeedback.rows(fb.take()[0])
    fb.model.fit_rows(rows)
    params = fb.params(cfg, 12.5)
    ref = PrefillCostModel(cfg)
    ref.fit_rows(rows)
    assert params is first   # rewritten in place
    assert params[[P_C0, P_C1, P_C2]].tolist() == list(ref.coefficients[:3])
    assert params[P_OUT_WORK] == 12.5
    # The late bypass share follows the running cap's share of the steps at every call, fit or not.
    assert params[P_LATE_BYPASS] == cfg.late_bypass_share
    assert fb.params(cfg, 12.5, cap_share=0.75)[P_LATE_BYPASS] == pytest.approx(0.25 * cfg.late_bypass_share)
    fb.config_changed()
    rebuilt = fb.params(EWSJFConfig(a_u=2.0), 12.5)
    assert rebuilt is not first and np.array_equal(rebuilt[[P_C0, P_C1, P_C2]], params[[P_C0, P_C1, P_C2]])


def test_cost_offset_is_bounded():
    fb = StepFeedback(EWSJFConfig())
    assert 1.0 <= fb.cost_offset() <= 4096.0
