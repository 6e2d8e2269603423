import numpy as np

from ewsjf_core.links import link_in_order, members_in_order


def _lists(rng, n, rows, cols):
    """n slots linked into rows x cols lists, each list in (deadline, arrival) order, ties by insertion."""
    deadline = rng.choice([np.inf, 5.0, 6.0, 7.0], n)
    arrival = rng.integers(0, 20, n).astype(float)
    seq = np.arange(n, dtype=np.int64)
    cls = rng.integers(0, rows, n).astype(np.int32)
    qid = rng.integers(0, cols, n).astype(np.int32)
    nxt = np.full(n, -1, np.int32)
    prv = np.full(n, -1, np.int32)
    head = np.full((rows, cols), -1, np.int32)
    tail = np.full((rows, cols), -1, np.int32)
    depth = np.zeros((rows, cols), np.int64)
    work = np.zeros((rows, cols))
    link_in_order(np.arange(n, dtype=np.int32), deadline, arrival, cls, qid, np.ones(n), nxt, prv, head, tail,
                  depth, work)
    return deadline, arrival, seq, cls, nxt, head


def test_the_merge_of_ordered_lists_is_the_sort_by_class_deadline_arrival_and_insertion():
    rng = np.random.default_rng(3)
    deadline, arrival, seq, cls, nxt, head = _lists(rng, 500, 3, 5)
    slots, in_order = members_in_order(head, nxt, deadline, arrival, seq, 5, 500)
    want = np.lexsort((seq, arrival, deadline, cls))
    assert in_order and slots.tolist() == want.tolist()


def test_a_list_out_of_order_is_reported_not_merged():
    rng = np.random.default_rng(4)
    deadline, arrival, seq, cls, nxt, head = _lists(rng, 200, 1, 3)
    second = nxt[head[0, 1]]
    arrival[second] = -1.0   # now before its list's head
    deadline[second] = deadline[head[0, 1]]
    _, in_order = members_in_order(head, nxt, deadline, arrival, seq, 3, 200)
    assert not in_order
