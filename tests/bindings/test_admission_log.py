import numpy as np

from ewsjf.bindings.admission_log import AdmissionLog
from ewsjf_core.selection import REASON_LANE, REASON_SCORED, REASON_STARVED


def test_counts_by_source_queue_and_starved_promotions_across_many_prefixes():
    log = AdmissionLog(n_queues=3)
    for _ in range(100):   # more prefixes than are kept unfolded; only the first n of each order counts
        log.record(np.array([REASON_STARVED, REASON_SCORED, REASON_LANE, REASON_STARVED], np.int8),
                   np.array([2, 0, 3, 1], np.int32), 3)
    log.fold()
    assert log.admitted.tolist() == [100, 0, 100, 100]
    assert log.starvation_promotions == 100


def test_a_new_partition_restarts_the_per_queue_counts_not_the_promotions():
    log = AdmissionLog(n_queues=2)
    log.record(np.array([REASON_STARVED], np.int8), np.array([1], np.int32), 1)
    log.resize(4)
    assert log.admitted.tolist() == [0] * 5 and log.starvation_promotions == 1
    log.resize(4)
    log.record(np.array([REASON_SCORED], np.int8), np.array([4], np.int32), 1)
    log.fold()
    assert log.admitted.tolist() == [0, 0, 0, 0, 1]


def test_a_held_count_is_withdrawn_if_its_request_leaves_and_stands_once_it_is_admitted():
    log = AdmissionLog(n_queues=2)
    log.record(np.array([REASON_SCORED, REASON_SCORED], np.int8), np.array([0, 1], np.int32), 2)
    log.hold("a", 0, False)   # both popped, both put back unadmitted
    log.hold("b", 1, False)
    log.hold("b", 2, False)   # "b" popped again from the resume lane and put back: its count stays held in queue 1
    log.admitted_for_real(["a"])
    log.withdraw(["a", "b", "zz"])
    log.fold()
    assert log.admitted.tolist() == [1, 0, 0] and not log.held
    log.hold("c", 1, False)
    log.resize(3)   # counts restart: nothing is left to withdraw
    log.withdraw(["c"])
    assert log.admitted.tolist() == [0] * 4


def test_a_held_promotion_is_withdrawn_if_its_request_leaves_even_across_a_new_partition():
    log = AdmissionLog(n_queues=2)
    log.record(np.array([REASON_STARVED, REASON_STARVED, REASON_STARVED], np.int8), np.array([0, 1, 1], np.int32), 3)
    for key, queue in (("a", 0), ("b", 1), ("c", 1)):
        log.hold(key, queue, True)
    log.hold("a", 2, False)   # popped again from the resume lane (never starved) and put back: still held
    log.admitted_for_real(["b"])
    log.resize(3)
    log.withdraw(["a", "b"])
    log.fold()
    assert log.starvation_promotions == 2 and log.admitted.tolist() == [0] * 4   # "b" and "c" (still waiting)
    log.withdraw(["c"])
    assert log.starvation_promotions == 1 and not log.held
