"""The progress-based starvation bound: due points, the output term and its estimate."""

import numpy as np
import pytest

from ewsjf_core.progress_bound import (OUTPUT_MEMORY_STEPS, SLACK_CAP_BACKLOGS, TAIL_WINDOW, OutputEstimate,
                                      commit_due_work, commit_time_floor, overdue, past_due)


def _commit(prefills, waiting_p, waiting_n, admitted, admitted_n, factor, out_work, backlog_mean=0.0, n_committed=0,
            last=(-np.inf, 0.0), backlogs=None):
    n = len(prefills)
    backlogs = np.zeros(n) if backlogs is None else backlogs
    due_work, due_n = np.zeros(n), np.zeros(n)
    last_due = np.array(last, dtype=np.float64)
    mean = commit_due_work(np.arange(n, dtype=np.int32), np.array(prefills, dtype=np.float64), waiting_p,
                           waiting_n, admitted, admitted_n, factor, backlog_mean, n_committed, last_due, out_work,
                           due_work, due_n, backlogs)
    return due_work, due_n, last_due, mean


def test_due_point_is_factor_times_the_work_ahead_in_two_parts():
    # 1000 prefill tokens in 4 requests ahead, 50 output tokens per request: factor 1.25 of (1000, 4).
    due_work, due_n, last, _ = _commit([300.0, 10.0], 1000.0, 4.0, 5000.0, 20.0, 1.25, 50.0, backlog_mean=1200.0,
                                       n_committed=100)
    assert due_work[0] == pytest.approx(5000.0 + 1.25 * 1000.0) and due_n[0] == pytest.approx(20.0 + 1.25 * 4)
    # The second is behind the first: its work ahead includes the first's 300 tokens and one request.
    assert due_work[1] == pytest.approx(5000.0 + 1.25 * 1300.0) and due_n[1] == pytest.approx(20.0 + 1.25 * 5)
    assert tuple(last) == (due_work[1], due_n[1])


def test_slack_beyond_the_work_ahead_is_capped_at_that_of_a_few_mean_backlogs():
    # 10,000 tokens in 10 requests ahead, mean backlog ~1,000: the due point is the FCFS point (the 10,000) plus the
    # slack of a request arriving to SLACK_CAP_BACKLOGS mean backlogs, not 0.25 x 10,000, in both parts.
    due_work, due_n, _, mean = _commit([10.0], 10_000.0, 10.0, 0.0, 0.0, 1.25, 0.0, backlog_mean=1000.0,
                                       n_committed=10_000)
    slack = 0.25 * SLACK_CAP_BACKLOGS * mean
    assert 1000.0 < mean < 1100.0 and slack < 0.25 * 10_000.0
    assert due_work[0] == pytest.approx(10_000.0 + slack) and due_n[0] == pytest.approx(10.0 * (1.0 + slack / 10_000.0))
    # Below the cap (2,000 ahead) it is factor x the work ahead, as before.
    due_work, _, _, mean = _commit([10.0], 2_000.0, 0.0, 0.0, 0.0, 1.25, 0.0, backlog_mean=1000.0, n_committed=10_000)
    assert 2_000.0 <= SLACK_CAP_BACKLOGS * mean and due_work[0] == pytest.approx(1.25 * 2_000.0)


def test_each_commit_records_its_work_ahead_in_mean_backlogs():
    # The late bypass share (ewsjf_core.selection) reads it: W0 over W_mean as the mean stands with W0 counted.
    backlogs = np.zeros(2)
    _, _, _, mean = _commit([500.0, 10.0], 3_000.0, 3.0, 0.0, 0.0, 1.2, 0.0, backlog_mean=1000.0,
                            n_committed=10_000, backlogs=backlogs)
    first_mean = 1000.0 + (3_000.0 - 1000.0) / 512.0
    assert backlogs[0] == pytest.approx(3_000.0 / first_mean)
    assert backlogs[1] == pytest.approx(3_500.0 / mean) and backlogs[1] > SLACK_CAP_BACKLOGS
    # Before any backlog was seen (the mean is 0) nothing counts as shallow.
    backlogs = np.zeros(1)
    _commit([10.0], 0.0, 0.0, 0.0, 0.0, 1.2, 0.0, backlogs=backlogs)
    assert backlogs[0] == np.inf


def test_due_points_never_decrease_in_commit_order_and_factor_zero_disables():
    due_work, due_n, _, _ = _commit([10.0], 0.0, 0.0, 100.0, 1.0, 1.25, 0.0, last=(900.0, 3.0))
    assert (due_work[0], due_n[0]) == (900.0, 3.0)
    due_work, _, _, _ = _commit([10.0], 500.0, 2.0, 100.0, 1.0, 0.0, 0.0)
    assert due_work[0] == np.inf


def test_output_estimate_drift_moves_progress_and_due_points_together():
    """Progress and a due point both weigh requests at today's estimate: raising it changes how far past the
    due point the progress is only by the request-count difference, never by the whole history."""
    due_work, due_n, _, _ = _commit([100.0], 1000.0, 10.0, 1e6, 10_000.0, 1.0, 0.0, backlog_mean=1000.0,
                                    n_committed=1000)
    # Exactly the FCFS progress (the 10 requests ahead, 1000 tokens) is admitted afterwards.
    progress, progress_n = 1e6 + 1000.0, 10_000.0 + 10.0
    for out_work in (0.0, 500.0, 5000.0):
        assert overdue(progress, progress_n, due_work[0], due_n[0], out_work) == pytest.approx(0.0)
        assert not past_due(progress, progress_n, due_work[0], due_n[0], out_work)
    assert past_due(progress + 1.0, progress_n, due_work[0], due_n[0], 5000.0)


def test_output_estimate_follows_the_decode_rate_per_admission():
    est = OutputEstimate()
    assert est.per_request == 0.0
    # Steady state: 2 admissions and 600 decode tokens per step -> 300 output tokens per request (Little's law).
    for _ in range(int(4 * OUTPUT_MEMORY_STEPS)):
        est.observe_admitted(2)
        est.observe_steps([600])
    assert est.per_request == pytest.approx(300.0, rel=1e-3)


def test_output_estimate_takes_steps_in_batches_as_one_by_one():
    one, batched = OutputEstimate(), OutputEstimate()
    steps = [0, 600, 0, 0, 1200, 5]
    one.observe_admitted(3)
    batched.observe_admitted(3)
    for tokens in steps:
        one.observe_steps([tokens])
    batched.observe_steps(steps)
    assert (batched.decoded, batched.admitted, batched.per_request) == (one.decoded, one.admitted, one.per_request)
    assert batched.per_request > 0.0


def _floors(prefills, arrivals, waiting_work, quantile, rate, state=None, ring=None, count_hold=0.0):
    n = len(prefills)
    state = np.array([0.0, -np.inf, 0.0]) if state is None else state
    ring = np.zeros(TAIL_WINDOW) if ring is None else ring
    not_before = np.zeros(n)
    commit_time_floor(np.arange(n, dtype=np.int32), np.array(prefills, dtype=np.float64),
                      np.array(arrivals, dtype=np.float64), waiting_work, quantile, rate, count_hold, state, ring,
                      not_before)
    return not_before, state, ring


def test_time_floor_is_the_backlogs_quantile_over_the_fastest_prefill_rate():
    # 96 arrivals 1 s apart, each 10 tokens, behind 0 tokens at first: the i-th has 10 i tokens ahead. The floor of
    # the last is its arrival + the 0.9-quantile of the backlogs seen (its own included) over 1000 tokens/s (the
    # quantile is refreshed every 16 commits: 96 is one).
    n = 96
    not_before, state, _ = _floors([10.0] * n, np.arange(n, dtype=float), 0.0, 0.9, 1000.0)
    backlogs = 10.0 * np.arange(n)
    assert state[0] == np.sort(backlogs)[int(0.9 * n)]
    assert not_before[-1] == pytest.approx(95.0 + state[0] / 1000.0)
    assert np.all(np.diff(not_before) >= 0.0)                # never decreasing in commit order
    assert state[2] == n


def test_time_floor_forgets_backlogs_older_than_the_window():
    # A burst's deep backlogs, then TAIL_WINDOW calm arrivals: the quantile comes back down to the calm level.
    _, state, ring = _floors([1.0] * 50, np.zeros(50), 1e6, 0.99, 1000.0)
    assert state[0] > 1e6
    not_before, state, _ = _floors([0.0] * TAIL_WINDOW, np.arange(TAIL_WINDOW, dtype=float) + 100.0, 5.0, 0.99,
                                   1000.0, state, ring)
    assert state[0] == 5.0
    assert not_before[-1] >= TAIL_WINDOW - 1 + 100.0 + 5.0 / 1000.0


def test_time_floor_off_without_a_quantile_or_a_rate():
    for quantile, rate in ((0.0, 1000.0), (0.99, 0.0)):
        not_before, _, _ = _floors([10.0, 10.0], [0.0, 1.0], 500.0, quantile, rate, count_hold=30.0)
        assert np.all(not_before == -np.inf)


def test_time_floor_holds_for_the_larger_of_the_backlogs_bound_and_the_count_hold():
    # Backlogs of 2,000 tokens at 1,000 tokens/s: 2 s. A count hold of 5 s (ewsjf_core.admission_wait) raises the
    # floors to arrival + 5 s; one of 1 s leaves them at the backlogs' bound.
    for count_hold, hold in ((5.0, 5.0), (1.0, 2.0)):
        not_before, _, _ = _floors([0.0, 0.0], [10.0, 11.0], 2000.0, 0.99, 1000.0, count_hold=count_hold)
        assert not_before.tolist() == [10.0 + hold, 11.0 + hold]
