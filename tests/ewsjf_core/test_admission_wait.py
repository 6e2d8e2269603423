import numpy as np
import pytest

from ewsjf_core.admission_wait import (PENDING, S_HEAD, S_SEEN, S_TAIL, S_TAU, SIZE, count_wait_quantile, note_arrivals,
                                       observe_admissions)
from ewsjf_core.progress_bound import TAIL_WINDOW


def _arrive(counts, arrivals, admitted_n, waiting_n):
    arrival = np.asarray(arrivals, float)
    note_arrivals(np.arange(arrival.shape[0], dtype=np.int32), arrival, admitted_n, waiting_n, counts)


def test_a_wait_is_recorded_when_the_admissions_pass_the_arrivals_fcfs_point():
    # Three requests arrive at 1, 2 and 3 s behind 10 waiting (10 admitted so far): FCFS admits each once the
    # requests ahead of it are, at 20, 21 and 22 admissions. Admissions reaching 20 at 4 s pass the first point only.
    counts = np.zeros(SIZE)
    _arrive(counts, [1.0, 2.0, 3.0], admitted_n=10.0, waiting_n=10.0)
    observe_admissions(19.0, 3.5, counts)
    assert counts[S_SEEN] == 0 and count_wait_quantile(0.99, counts) == 0.0   # none yet
    observe_admissions(20.0, 4.0, counts)
    assert counts[S_SEEN] == 1 and count_wait_quantile(0.99, counts) == pytest.approx(3.0)
    observe_admissions(30.0, 9.0, counts)   # both others passed at once: waits 7 and 6 s
    assert counts[S_SEEN] == 3 and counts[S_HEAD] == counts[S_TAIL] == 3
    assert counts[S_TAU] == pytest.approx(3.0)   # kept until taken anew...
    assert count_wait_quantile(0.99, counts) == pytest.approx(7.0)   # ...the 0.99-quantile of three: their largest
    assert count_wait_quantile(0.5, counts) == pytest.approx(6.0) == counts[S_TAU]


def test_tau_n_is_the_quantile_of_the_last_window_of_waits():
    counts = np.zeros(SIZE)
    n = TAIL_WINDOW + 512
    for i in range(n):   # request i arrives at i s with nobody ahead and is admitted at i + w_i s
        _arrive(counts, [float(i)], admitted_n=float(i), waiting_n=0.0)
        observe_admissions(float(i), i + (100.0 if i < 512 else float(i % 10)), counts)
    assert counts[S_SEEN] == n
    assert count_wait_quantile(0.99, counts) == pytest.approx(9.0)   # the early 100 s waits left the window


def test_arrivals_past_the_pending_limit_go_unobserved_and_nothing_overflows():
    counts = np.zeros(SIZE)
    _arrive(counts, np.zeros(PENDING + 100), admitted_n=0.0, waiting_n=0.0)
    assert counts[S_TAIL] == PENDING
    observe_admissions(9.0, 5.0, counts)   # the first ten points (0-9) passed: room for ten more
    _arrive(counts, np.ones(20), admitted_n=10.0, waiting_n=PENDING - 10.0)
    assert counts[S_TAIL] - counts[S_HEAD] == PENDING and counts[S_TAIL] == PENDING + 10
    observe_admissions(1e9, 50.0, counts)
    assert counts[S_SEEN] == PENDING + 10 and counts[S_HEAD] == counts[S_TAIL]
    assert count_wait_quantile(0.99, counts) == pytest.approx(50.0)


def test_a_long_run_wraps_the_fifo_and_the_ring_and_keeps_measuring():
    # Three times the FIFO's length of arrivals, one a second, each behind 5 waiting and admitted 5 s later: the
    # indices wrap around both buffers and every wait is still 5 s.
    counts = np.zeros(SIZE)
    for i in range(3 * PENDING):
        _arrive(counts, [float(i)], admitted_n=float(i), waiting_n=5.0)
        observe_admissions(float(i), float(i), counts)   # passes the point of the arrival 5 s before
    assert counts[S_SEEN] == 3 * PENDING - 5 and counts[S_TAIL] - counts[S_HEAD] == 5
    assert count_wait_quantile(0.99, counts) == 5.0 and count_wait_quantile(0.0, counts) == 5.0
