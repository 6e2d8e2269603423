"""The step kernel's bookkeeping of the progress at the last admission of a due request."""

import numpy as np

from ewsjf_core.commit import B_ADMITTED, B_ADMITTED_N, B_DUE_ADMITTED, B_DUE_ADMITTED_N, BOUND_SIZE
from ewsjf_core.selection import REASON_LANE, REASON_SCORED, REASON_STARVED
from ewsjf_core.step_kernel import mark_due_admission


def _bound(progress: float, progress_n: float) -> np.ndarray:
    bound = np.zeros(BOUND_SIZE)
    bound[B_ADMITTED], bound[B_ADMITTED_N] = progress, progress_n
    bound[B_DUE_ADMITTED], bound[B_DUE_ADMITTED_N] = -np.inf, 0.0
    return bound


def test_the_mark_is_the_progress_just_after_the_last_due_request_admitted():
    prefill = np.array([100.0, 1000.0, 10.0, 2000.0, 5.0])
    order = np.array([0, 1, 2, 3, 4], np.int32)
    reasons = np.array([REASON_LANE, REASON_STARVED, REASON_SCORED, REASON_STARVED, REASON_SCORED], np.int8)
    bound = _bound(5000.0, 3.0)
    mark_due_admission(order, reasons, 3, prefill, bound)   # the first three: the lane's, a due one, a scored one
    assert (bound[B_DUE_ADMITTED], bound[B_DUE_ADMITTED_N]) == (6100.0, 5.0)
    bound = _bound(5000.0, 3.0)
    mark_due_admission(order, reasons, 5, prefill, bound)   # the last due one sets it
    assert (bound[B_DUE_ADMITTED], bound[B_DUE_ADMITTED_N]) == (8110.0, 7.0)
    bound = _bound(5000.0, 3.0)
    mark_due_admission(order, np.full(5, REASON_SCORED, np.int8), 5, prefill, bound)   # none due: unchanged
    assert bound[B_DUE_ADMITTED] == -np.inf and bound[B_DUE_ADMITTED_N] == 0.0
    assert (bound[B_ADMITTED], bound[B_ADMITTED_N]) == (5000.0, 3.0)   # the progress is the caller's to advance
