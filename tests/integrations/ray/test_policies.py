"""Routing policies over hand-made replica views: each ranks by what its docstring says."""

import pytest

from ewsjf.integrations.ray.policies import POLICIES, EWSJFAware, LMetric, PowerOfTwo, PrefixAffinity, RoundRobin, \
    make_policy
from ewsjf.integrations.ray.state import InFlight, QueueLoad, ReplicaStats, ReplicaView, RequestInfo

SHORT = RequestInfo("s", 50)
LONG = RequestInfo("l", 6000)
QUEUES = (QueueLoad(1, 256, 0, 100), QueueLoad(256, 2048, 0, 900), QueueLoad(2048, float("inf"), 0, 5000))


def view(rid, running=0, depths=(0, 0, 0), ongoing=0, unseen=(), cached=0, queues=QUEUES):
    qs = tuple(QueueLoad(q.lo, q.hi, d, q.mean_tokens) for q, d in zip(queues, depths))
    stats = ReplicaStats(time=0.0, running=running, waiting=sum(depths), queues=qs)
    return ReplicaView(rid, ongoing, running, stats, tuple(InFlight(f"u{i}", t) for i, t in enumerate(unseen)),
                       cached)


def test_lmetric_minimises_prefill_work_times_batch():
    a = view("a", running=4, depths=(0, 0, 1))         # (5000 + 50) * 5
    b = view("b", running=8, depths=(10, 0, 0))        # (1000 + 50) * 9
    assert [v.replica_id for v in LMetric().rank(SHORT, [a, b])] == ["b", "a"]


def test_ewsjf_sends_short_requests_past_long_backlogs_and_long_ones_to_the_least_work():
    long_backlog = view("a", running=4, depths=(0, 0, 3))   # 15000 long tokens waiting, none short
    short_backlog = view("b", running=4, depths=(20, 0, 0))  # 2000 short tokens waiting
    assert EWSJFAware().rank(SHORT, [long_backlog, short_backlog])[0].replica_id == "a"
    assert LMetric().rank(SHORT, [long_backlog, short_backlog])[0].replica_id == "b"
    assert EWSJFAware().rank(LONG, [long_backlog, short_backlog])[0].replica_id == "b"


def test_unseen_requests_count_in_their_queue_when_the_replica_has_a_backlog():
    a = view("a", running=2, depths=(1, 0, 0), unseen=(60, 60, 60))   # three short ones routed since the stats
    b = view("b", running=2, depths=(1, 0, 0), unseen=(9000,))         # one long one
    assert a.tokens_ahead(50) == 280 and b.tokens_ahead(50) == 100
    assert b.tokens_ahead(6000) == 9100
    assert EWSJFAware().rank(SHORT, [a, b])[0].replica_id == "b"


def test_without_a_backlog_everything_routed_since_is_ahead():
    """An engine that admitted all it had at its last report admits new arrivals on arrival: their prefills
    run before a later request's, whatever their length (running requests are scheduled first)."""
    idle = view("b", running=2, unseen=(9000,))
    assert idle.tokens_ahead(50) == idle.waiting_tokens() == 9000


def test_prefix_hit_lowers_the_new_prefill_work():
    req = RequestInfo("p", 4000)
    cold = view("cold", running=3)
    warm = view("warm", running=3, cached=3900)
    for pol in (LMetric(), EWSJFAware(), PrefixAffinity()):
        assert pol.rank(req, [cold, warm])[0].replica_id == "warm"
    assert warm.new_tokens(req) == 100 and view("x", cached=5000).new_tokens(req) == 1


def test_prefix_affinity_falls_back_to_least_loaded_when_imbalanced():
    hot = view("hot", cached=3900, ongoing=30)
    idle = view("idle", ongoing=0)
    assert PrefixAffinity(imbalanced_threshold=10).rank(RequestInfo("p", 4000), [hot, idle])[0].replica_id == "idle"


def test_round_robin_cycles_and_power_of_two_prefers_fewer_ongoing():
    vs = [view(x) for x in "abc"]
    rr = RoundRobin()
    assert [rr.rank(SHORT, vs)[0].replica_id for _ in range(4)] == ["a", "b", "c", "a"]
    busy, free = view("busy", ongoing=9), view("free", ongoing=1)
    p2 = PowerOfTwo(seed=1)
    assert all(p2.rank(SHORT, [busy, free])[0].replica_id == "free" for _ in range(20))
    picked = {p2.rank(SHORT, [view(x) for x in "abcd"])[0].replica_id for _ in range(200)}
    assert picked == set("abcd")


def test_replica_without_queue_stats_is_fcfs():
    stats = ReplicaStats(time=0.0, running=1, waiting=3, waiting_tokens=7000.0)
    v = ReplicaView("f", 3, 1, stats)
    assert v.tokens_ahead(10) == v.waiting_tokens() == 7000.0
    assert ReplicaView("new", 0, 0, None).waiting_tokens() == 0.0


def test_make_policy_names():
    assert set(POLICIES) == {"round-robin", "power-of-two", "prefix-affinity", "lmetric", "ewsjf"}
    assert isinstance(make_policy("lmetric"), LMetric)
    with pytest.raises(ValueError, match="unknown routing policy 'nope'"):
        make_policy("nope")


def test_ewsjf_charges_the_delay_imposed_on_overtaken_requests():
    # same short work ahead on both; on "a" the short request would overtake 8 waiting long ones
    a = view("a", running=2, depths=(2, 0, 8))
    b = view("b", running=2, depths=(2, 1, 0))
    assert a.requests_behind(50) == 8 and b.requests_behind(50) == 1
    assert EWSJFAware().rank(SHORT, [a, b])[0].replica_id == "b"
    assert view("idle", running=1).requests_behind(50) == 0
