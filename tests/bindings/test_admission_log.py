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
    assert log.starvation_promotions == 100 and log.last_source_queue == 3


def test_a_new_partition_restarts_the_per_queue_counts_not_the_promotions():
    log = AdmissionLog(n_queues=2)
    log.record(np.array([REASON_STARVED], np.int8), np.array([1], np.int32), 1)
    log.resize(4)
    assert log.admitted.tolist() == [0] * 5 and log.starvation_promotions == 1
    log.resize(4)
    log.record(np.array([REASON_SCORED], np.int8), np.array([4], np.int32), 1)
    log.fold()
    assert log.admitted.tolist() == [0, 0, 0, 0, 1]
