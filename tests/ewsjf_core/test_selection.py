import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ewsjf_core.config import EWSJFConfig
from ewsjf_core.links import link_in_order, push_front
from ewsjf_core.scoring import pack_params, queue_scores
from ewsjf_core.selection import policy_order
from tests.ewsjf_core import reference as ref

NQ = 4  # queue columns; column NQ is the lane
NO_DUE_ADMITTED = -np.inf   # the progress at the last admission of a due request: none yet


@st.composite
def states(draw):
    n = draw(st.integers(1, 40))
    n_classes = draw(st.integers(1, 3))
    reqs = []
    for s in range(n):
        reqs.append({
            "slot": s, "size": float(draw(st.integers(1, 9000))), "prefill": float(draw(st.integers(1, 9000))),
            "arrival": float(draw(st.integers(0, 100))), "deadline": float(draw(st.integers(0, 200))),
            "due_work": float(draw(st.integers(0, 5000))), "due_n": float(draw(st.integers(0, 8))),
            "not_before": draw(st.sampled_from([-np.inf, 0.0, 50.0, 100.0, 150.0])),
            "backlogs": draw(st.sampled_from([0.5, 2.0, 2.5, np.inf])),
            "cls": draw(st.integers(0, n_classes - 1)),
            "qid": draw(st.integers(0, NQ)),  # NQ: in the lane
        })
    active = draw(st.lists(st.booleans(), min_size=NQ, max_size=NQ))
    pos = draw(st.lists(st.floats(1, 9000), min_size=NQ, max_size=NQ))
    mean = draw(st.lists(st.floats(1, 9000), min_size=NQ, max_size=NQ))
    cfg = EWSJFConfig(fcfs_wait_factor=draw(st.floats(0, 3)), a_u=draw(st.floats(0, 1e-2)),
                      b_u=draw(st.floats(0, 3)), a_f=draw(st.floats(0, 1e-3)), b_f=draw(st.floats(0, 1)),
                      own_size_slack=draw(st.sampled_from([0.0, 0.5, 1.0])),
                      late_bypass_share=draw(st.sampled_from([0.0, 0.5, 2.0])))
    for r in reqs:  # a request only sits in an active queue (or the lane)
        if r["qid"] < NQ and not active[r["qid"]]:
            r["qid"] = NQ
    order = draw(st.permutations(range(n_classes)))
    return reqs, n_classes, np.array(active), np.array(pos), np.array(mean), cfg, list(order)


def _arrays(reqs, n_classes):
    n = len(reqs)
    size, prefill, arrival, deadline, due_work = (np.array([r[k] for r in reqs])
                                                  for k in ("size", "prefill", "arrival", "deadline", "due_work"))
    cls = np.array([r["cls"] for r in reqs], np.int32)
    qid = np.array([r["qid"] for r in reqs], np.int32)
    nxt = np.full(n, -1, np.int32)
    prv = np.full(n, -1, np.int32)
    head = np.full((n_classes, NQ + 1), -1, np.int32)
    tail = head.copy()
    depth = np.zeros((n_classes, NQ + 1), np.int64)
    work = np.zeros((n_classes, NQ + 1))
    queued = np.array([r["slot"] for r in reqs if r["qid"] < NQ], np.int32)
    lane = np.array([r["slot"] for r in reqs if r["qid"] == NQ], np.int32)
    link_in_order(queued, deadline, arrival, cls, qid, prefill, nxt, prv, head, tail, depth, work)
    push_front(lane, cls, qid, prefill, nxt, prv, head, tail, depth, work)
    for c in range(n_classes):
        for q in range(NQ + 1):
            members = [r for r in reqs if r["cls"] == c and r["qid"] == q]
            assert depth[c, q] == len(members) and work[c, q] == sum(r["prefill"] for r in members)
    return size, prefill, arrival, deadline, due_work, cls, qid, nxt, head


@given(states(), st.floats(0, 200), st.floats(0, 6000), st.integers(0, 8), st.sampled_from([0.0, 150.0, 2000.0]),
       st.one_of(st.just((NO_DUE_ADMITTED, 0)), st.tuples(st.floats(0, 6000), st.integers(0, 8))))
def test_policy_order_matches_reference(state, now, progress, progress_n, out_work, due_admitted):
    reqs, n_classes, active, pos, mean, cfg, class_order = state
    size, prefill, arrival, deadline, due_work, cls, qid, nxt, head = _arrays(reqs, n_classes)
    params = pack_params(cfg, 2e-3, 1e-4, 1e-9, out_work)
    due_n = np.array([r["due_n"] for r in reqs])
    not_before = np.array([r["not_before"] for r in reqs])
    backlogs = np.array([r["backlogs"] for r in reqs])
    slots, reasons, sources, _ = policy_order(now, progress, float(progress_n), due_admitted[0],
                                              float(due_admitted[1]), len(reqs),
                                              np.array(class_order, np.int32), head, nxt, size, prefill, arrival,
                                              deadline, due_work, due_n, not_before, backlogs, active, pos, mean,
                                              params)
    n_active = int(active.sum())
    ranks = {q: sum(1 for o in range(NQ) if active[o] and (pos[o] < pos[q] or (pos[o] == pos[q] and o < q)))
             for q in range(NQ)}

    def score_of(q, r):
        return ref.score(now, r["size"], r["prefill"], r["arrival"], ranks[q], n_active, mean[q], cfg.w_base,
                         cfg.a_u, cfg.b_u, cfg.a_f, cfg.b_f, 2e-3, 1e-4, 1e-9, cfg.min_prefill_cost)

    classes = []
    for c in class_order:
        lane = [r for r in reversed(reqs) if r["cls"] == c and r["qid"] == NQ]  # last prepended first
        queues = {q: sorted((r for r in reqs if r["cls"] == c and r["qid"] == q),
                            key=lambda r: (r["deadline"], r["arrival"], r["slot"])) for q in range(NQ)}
        classes.append((lane, queues))
    want = ref.policy_order(now, classes, score_of, progress, pos, max(cfg.fcfs_wait_factor - 1.0, 0.0), out_work,
                            progress_n, cfg.own_size_slack, due_admitted, cfg.late_bypass_share)
    assert slots.tolist() == [r["slot"] for r, _, _ in want]
    assert reasons.tolist() == [reason for _, reason, _ in want]
    assert len(set(slots.tolist())) == len(reqs)


def test_scores_match_reference_and_prefer_short_queues():
    cfg = EWSJFConfig()
    params = pack_params(cfg, 5e-3, 1e-4, 1e-9)
    size = np.array([100.0, 4000.0])
    heads = np.array([0, 1, -1], np.int32)
    active = np.array([True, True, True])
    pos = np.array([10.0, 1000.0, 5000.0])
    mean = np.array([120.0, 3000.0, 6000.0])
    arrival = np.array([9.0, 0.0])
    s = queue_scores(10.0, heads, size, size, arrival, active, pos, mean, params)
    assert s[2] == -np.inf and s[0] > s[1] > 0
    for q, slot in ((0, 0), (1, 1)):
        assert s[q] == pytest.approx(ref.score(10.0, size[slot], size[slot], arrival[slot], q, 3, mean[q], cfg.w_base,
                                               cfg.a_u, cfg.b_u, cfg.a_f, cfg.b_f, 5e-3, 1e-4, 1e-9,
                                               cfg.min_prefill_cost))
    # Aging: the long request's score overtakes the short one's once it has waited long enough.
    s_late = queue_scores(2000.0, heads, size, size, np.array([1999.0, 0.0]), active, pos, mean, params)
    assert s_late[1] > s_late[0]


def test_the_larger_half_of_the_queues_age_alike_and_the_smaller_half_keep_a_rank_preference():
    # Urgency alone (w_base and the fairness weight 0): eight active queues, the same head (size, wait) in each.
    # Ranks 4-7 (the larger half) score alike; below the median each rank scores more, up to N / 2 = 4x at rank 0.
    # The published form, N - i on the urgency too, set rank 6 at twice rank 7 whatever the heads' sizes.
    cfg = EWSJFConfig(w_base=0.0, a_f=0.0, b_f=0.0, a_u=0.0, b_u=1.0)
    params = pack_params(cfg, 5e-3, 1e-4, 1e-9)
    n = 8
    size = np.full(n, 20_000.0)
    heads = np.arange(n, dtype=np.int32)
    s = queue_scores(10.0, heads, size, size, np.zeros(n), np.ones(n, bool), np.arange(n, dtype=float),
                     np.full(n, 20_000.0), params)
    assert s[4:] == pytest.approx(np.full(4, s[7]))
    assert s[:4] / s[7] == pytest.approx([4.0, 3.0, 2.0, 1.0])
    # So between two large heads at the default urgency weights (w_urg ~ a_u b cancels the density) the larger
    # response ratio wins, whichever queue ranks lower (the published form took the 23k-token head here).
    params = pack_params(EWSJFConfig(w_base=0.0, a_f=0.0, b_f=0.0), 5e-3, 1e-4, 1e-9)
    size2 = np.array([23_000.0, 37_000.0])
    ratio = lambda w, p: w / (5e-3 + 1e-4 * p + 1e-9 * p * p)   # noqa: E731
    arrival = np.array([10.0 - 2.4, 10.0 - 8.5])
    assert ratio(8.5, 37_000) > ratio(2.4, 23_000)
    s2 = queue_scores(10.0, np.array([-1] * 6 + [0, 1], np.int32), size2, size2, arrival, np.ones(n, bool),
                      np.arange(n, dtype=float), np.array([0.0] * 6 + [23_000.0, 37_000.0]), params)
    assert s2[7] > s2[6]


def _ten_short_and_one_due():
    """Queue 0 (short): ten 10-token requests; queue 1 (long): a 1000-token request due at progress 0.
    Returns (prefill, arrival, deadline, due_work, head, nxt)."""
    n = 11
    prefill = np.array([10.0] * 10 + [1000.0])
    arrival = np.array([5.0] * 10 + [0.0])
    deadline = np.full(n, np.inf)
    due_work = np.array([1e9] * 10 + [0.0])
    nxt = np.full(n, -1, np.int32)
    head = np.full((1, 3), -1, np.int32)
    link_in_order(np.arange(n, dtype=np.int32), deadline, arrival, np.zeros(n, np.int32),
                  np.array([0] * 10 + [1], np.int32), prefill, nxt, nxt.copy(), head, head.copy(),
                  np.zeros((1, 3), np.int64), np.zeros((1, 3)))
    return prefill, arrival, deadline, due_work, head, nxt


def test_shorter_queue_bypasses_a_due_request_within_its_share():
    # fcfs_wait_factor 1.05 -> bypass share 0.05 -> 50 tokens, less the 0.5 admitted since it became due: four
    # short ones go first, then the due one (own_size_slack=0: the due point as it is).
    cfg = EWSJFConfig(fcfs_wait_factor=1.05, own_size_slack=0.0)
    params = pack_params(cfg, 2e-3, 1e-4, 1e-9)
    n = 11
    prefill, arrival, deadline, due_work, head, nxt = _ten_short_and_one_due()
    due_n = np.zeros(n)
    no_floor = np.full(n, -np.inf)
    no_late = np.full(n, np.inf)   # behind too deep a backlog for the late share: the bypass share alone
    slots, reasons, _, _ = policy_order(6.0, 0.5, 0.0, NO_DUE_ADMITTED, 0.0, n, np.array([0], np.int32), head, nxt,
                                        prefill, prefill, arrival, deadline, due_work, due_n, no_floor, no_late,
                                        np.array([True, True]),
                                        np.array([1.0, 1000.0]), np.array([10.0, 1000.0]), params)
    assert slots.tolist()[:5] == [0, 1, 2, 3, 10] and reasons.tolist()[4] == 1
    # The share is spent once, not per call: 30.5 tokens admitted since it became due leave room for one.
    slots, reasons, _, _ = policy_order(6.0, 30.5, 0.0, NO_DUE_ADMITTED, 0.0, n, np.array([0], np.int32), head,
                                        nxt, prefill, prefill, arrival, deadline, due_work, due_n,
                                        no_floor, no_late, np.array([True, True]), np.array([1.0, 1000.0]),
                                        np.array([10.0, 1000.0]),
                                        params)
    assert slots.tolist()[:2] == [0, 10] and reasons.tolist()[1] == 1
    # ...but counted from the last admission of a due request when that came later (at progress 30: 0.5 spent), so
    # each due request of a run grants it afresh and short ones are not held for the whole run.
    slots, reasons, _, _ = policy_order(6.0, 30.5, 0.0, 30.0, 0.0, n, np.array([0], np.int32), head, nxt, prefill,
                                        prefill, arrival, deadline, due_work, due_n, no_floor, no_late,
                                        np.array([True, True]),
                                        np.array([1.0, 1000.0]), np.array([10.0, 1000.0]), params)
    assert slots.tolist()[:5] == [0, 1, 2, 3, 10] and reasons.tolist()[4] == 1
    # With the output term (ewsjf_core.progress_bound), each request's work counts it: 0.05 * (1000 + 190)
    # = 59.5 tokens of share, each bypass costing 10 + 190: none fits.
    slots, _, _, _ = policy_order(6.0, 0.5, 0.0, NO_DUE_ADMITTED, 0.0, n, np.array([0], np.int32), head, nxt, prefill,
                                  prefill, arrival, deadline, due_work, due_n, no_floor, no_late,
                                  np.array([True, True]),
                                  np.array([1.0, 1000.0]), np.array([10.0, 1000.0]),
                                  pack_params(cfg, 2e-3, 1e-4, 1e-9, 190.0))
    assert slots.tolist()[0] == 10
    # Past a max_wait deadline there is no bypass.
    deadline[10] = 1.0
    slots, _, _, _ = policy_order(6.0, 0.5, 0.0, NO_DUE_ADMITTED, 0.0, n, np.array([0], np.int32), head, nxt, prefill,
                                  prefill, arrival, deadline, due_work, due_n, no_floor, no_late,
                                  np.array([True, True]),
                                  np.array([1.0, 1000.0]), np.array([10.0, 1000.0]), params)
    assert slots.tolist()[0] == 10


def _late_share_order(progress, mark, backlogs, cap_share=0.0):
    """_ten_short_and_one_due's requests in admission order."""
    cfg = EWSJFConfig(fcfs_wait_factor=1.05, own_size_slack=0.0, late_bypass_share=0.2)
    n = 11
    prefill, arrival, deadline, due_work, head, nxt = _ten_short_and_one_due()
    slots, reasons, _, _ = policy_order(6.0, progress, 0.0, mark, 0.0, n, np.array([0], np.int32), head, nxt, prefill,
                                        prefill, arrival, deadline, due_work, np.zeros(n), np.full(n, -np.inf),
                                        np.full(n, backlogs), np.array([True, True]), np.array([1.0, 1000.0]),
                                        np.array([10.0, 1000.0]), pack_params(cfg, 2e-3, 1e-4, 1e-9, 0.0, cap_share))
    assert reasons.tolist()[slots.tolist().index(10)] == 1
    return slots.tolist()


def test_late_share_lets_shorter_heads_pass_until_the_due_requests_own_lateness_reaches_it():
    # Bypass share 0.05 (50 tokens), late share 0.2 (200 tokens) of the due request's 1000. Just due (0.5 admitted
    # past its due point): all ten short ones (100 tokens) pass, where the bypass share alone lets four.
    assert _late_share_order(0.5, NO_DUE_ADMITTED, 1.0)[:11] == list(range(10)) + [10]
    # 150.5 admitted past its due point, a due admission at 150: the bypass share counts afresh (49.5 left) and the
    # late share has 49.5 left too: four pass. At 190.5 the late share has 9.5 left, the bypass share 49.5: four.
    assert _late_share_order(150.5, 150.0, 1.0)[:5] == [0, 1, 2, 3, 10]
    assert _late_share_order(190.5, 190.0, 1.0)[:5] == [0, 1, 2, 3, 10]
    # Not for a request that arrived behind more than SLACK_CAP_BACKLOGS mean backlogs, nor where the running cap
    # held every recent step (the share scales by the steps it did not hold: at half of them 100 tokens, nine pass).
    assert _late_share_order(0.5, NO_DUE_ADMITTED, 2.5)[:5] == [0, 1, 2, 3, 10]
    assert _late_share_order(0.5, NO_DUE_ADMITTED, 1.0, cap_share=1.0)[:5] == [0, 1, 2, 3, 10]
    assert _late_share_order(0.5, NO_DUE_ADMITTED, 1.0, cap_share=0.5)[:10] == list(range(9)) + [10]


def test_own_size_slack_moves_the_due_point_by_the_requests_own_prefill():
    # A 1000-token request whose due point (0) the progress has passed: with own_size_slack 1 it falls due only
    # once the progress passes 0 + 1 x 1000; before that the shorter queue (scored first) goes ahead of it.
    prefill = np.array([10.0, 1000.0])
    arrival = np.array([5.0, 0.0])
    deadline = np.full(2, np.inf)
    due_work = np.array([1e9, 0.0])
    cls = np.zeros(2, np.int32)
    qid = np.array([0, 1], np.int32)
    nxt = np.full(2, -1, np.int32)
    prv = nxt.copy()
    head = np.full((1, 3), -1, np.int32)
    tail = head.copy()
    link_in_order(np.arange(2, dtype=np.int32), deadline, arrival, cls, qid, prefill, nxt, prv, head, tail,
                  np.zeros((1, 3), np.int64), np.zeros((1, 3)))

    def order(progress, slack, floor=np.full(2, -np.inf)):
        params = pack_params(EWSJFConfig(fcfs_wait_factor=1.0, own_size_slack=slack), 2e-3, 1e-4, 1e-9)
        slots, reasons, _, _ = policy_order(6.0, progress, 0.0, NO_DUE_ADMITTED, 0.0, 2, np.array([0], np.int32),
                                            head, nxt, prefill, prefill, arrival, deadline, due_work, np.zeros(2),
                                            floor, np.full(2, np.inf),
                                            np.array([True, True]), np.array([1.0, 1000.0]),
                                            np.array([10.0, 1000.0]), params)
        return slots.tolist(), reasons.tolist()

    assert order(500.0, 0.0) == ([1, 0], [1, 2])     # due: first
    assert order(500.0, 1.0) == ([0, 1], [2, 2])     # within its own-size slack: scored order
    assert order(1000.5, 1.0) == ([1, 0], [1, 2])    # past it: due again
    with pytest.raises(ValueError, match="own_size_slack"):
        EWSJFConfig(own_size_slack=-1.0)
    # The time floor (ewsjf_core.progress_bound): past its due point in work, the long request is still not due
    # before its floor (now = 6.0); from the floor on it is.
    assert order(500.0, 0.0, np.array([-np.inf, 7.0])) == ([0, 1], [2, 2])
    assert order(500.0, 0.0, np.array([-np.inf, 6.0])) == ([1, 0], [1, 2])
    # A max_wait deadline overrides the floor.
    deadline[1] = 1.0
    assert order(0.0, 0.0, np.array([-np.inf, 7.0])) == ([1, 0], [1, 2])
    deadline[1] = np.inf
