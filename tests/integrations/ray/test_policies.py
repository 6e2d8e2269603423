"""Routing policies over hand-made replica views: each ranks by what its docstring says."""

import pytest

from ewsjf.integrations.ray.policies import POLICIES, EWSJFAware, EWSJFBalanced, LMetric, PowerOfTwo, PrefixAffinity, \
    RoundRobin, make_policy, pool_size
from ewsjf.integrations.ray.length_split import waiting_work, work_median
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


def test_ewsjf_balanced_sends_short_requests_past_long_backlogs_and_long_ones_to_the_least_work():
    long_backlog = view("a", running=4, depths=(0, 0, 3))   # 15000 long tokens waiting, none short
    short_backlog = view("b", running=4, depths=(20, 0, 0))  # 2000 short tokens waiting
    assert EWSJFBalanced().rank(SHORT, [long_backlog, short_backlog])[0].replica_id == "a"
    assert LMetric().rank(SHORT, [long_backlog, short_backlog])[0].replica_id == "b"
    assert EWSJFBalanced().rank(LONG, [long_backlog, short_backlog])[0].replica_id == "b"


def test_unseen_requests_count_in_their_queue_when_the_replica_has_a_backlog():
    a = view("a", running=2, depths=(1, 0, 0), unseen=(60, 60, 60))   # three short ones routed since the stats
    b = view("b", running=2, depths=(1, 0, 0), unseen=(9000,))         # one long one
    assert a.tokens_ahead(50) == 280 and b.tokens_ahead(50) == 100
    assert b.tokens_ahead(6000) == 9100
    assert EWSJFBalanced().rank(SHORT, [a, b])[0].replica_id == "b"


def test_without_a_backlog_everything_routed_since_is_ahead():
    """An engine that admitted all it had at its last report admits new arrivals on arrival: their prefills
    run before a later request's, whatever their length (running requests are scheduled first)."""
    idle = view("b", running=2, unseen=(9000,))
    assert idle.tokens_ahead(50) == idle.waiting_tokens() == 9000


def test_prefix_hit_lowers_the_new_prefill_work():
    req = RequestInfo("p", 4000)
    cold = view("cold", running=3)
    warm = view("warm", running=3, cached=3900)
    for pol in (LMetric(), EWSJFAware(), EWSJFBalanced(), PrefixAffinity()):
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
    assert set(POLICIES) == {"round-robin", "power-of-two", "prefix-affinity", "lmetric", "ewsjf", "ewsjf-balanced"}
    assert isinstance(make_policy("lmetric"), LMetric)
    with pytest.raises(ValueError, match="unknown routing policy 'nope'"):
        make_policy("nope")


def test_ewsjf_balanced_charges_the_delay_imposed_on_overtaken_requests():
    # same short work ahead on both; on "a" the short request would overtake 8 waiting long ones
    a = view("a", running=2, depths=(2, 0, 8))
    b = view("b", running=2, depths=(2, 1, 0))
    assert a.requests_behind(50) == 8 and b.requests_behind(50) == 1
    assert EWSJFBalanced().rank(SHORT, [a, b])[0].replica_id == "b"
    assert view("idle", running=1).requests_behind(50) == 0


def test_work_median_splits_the_waiting_prefill_work_in_halves():
    a = view("a", depths=(10, 0, 0))                  # 10 x 100 short tokens
    b = view("b", depths=(0, 0, 1), unseen=(900,))     # one 5000-token request, one 900 routed since
    assert waiting_work(b) == [(5000, 1), (900.0, 1)]
    assert work_median([a, b], 50) == 5000             # 6950 tokens in all: the 5000 one holds the middle
    assert work_median([a], 50) == 100
    assert work_median([view("idle")], 3000) == 3000   # nothing waiting: the request alone, not long


def test_ewsjf_short_requests_follow_lmetric_over_the_in_flight_batch():
    # "a" reported a smaller batch but was sent 6 requests since, all admitted at its next step:
    # LMetric (60 + 50) x 3 < (100 + 50) x 6; ours (60 + 50) x 9 > (100 + 50) x 6
    a = view("a", running=2, unseen=(10,) * 6)
    b = view("b", running=5, depths=(1, 0, 0))
    assert a.batch == 8 and b.batch == 5
    assert LMetric().rank(SHORT, [a, b])[0].replica_id == "a"
    assert EWSJFAware().rank(SHORT, [a, b])[0].replica_id == "b"


def test_ewsjf_keeps_long_requests_on_the_small_batch_half_and_balances_their_work_there():
    shorts = [view(f"s{i}", running=60) for i in range(2)]       # big batches, nothing waiting
    longs = [view("l0", running=1, depths=(0, 0, 2)),             # 10000 long tokens waiting
             view("l1", running=5, depths=(0, 0, 1))]             # 5000
    ranked = [v.replica_id for v in EWSJFAware().rank(LONG, shorts + longs)]
    assert ranked[:2] == ["l1", "l0"]                             # least work within the small-batch half
    assert LMetric().rank(LONG, shorts + longs)[0].replica_id == "l0"   # 16000 x 2 < 11000 x 6
    # a short request avoids the replicas holding long work
    assert EWSJFAware().rank(SHORT, shorts + longs)[0].replica_id in {"s0", "s1"}
    # a request that is long only where nothing is cached is judged by its best (cached) length
    req = RequestInfo("c", 6000)
    warm = view("warm", running=60, cached=5990)
    assert EWSJFAware().rank(req, shorts + longs + [warm])[0].replica_id == "warm"


def test_ewsjf_long_pool_sets_how_many_replicas_long_requests_may_use():
    # batches 1 < 5 < 40 < 60; the long request goes to the least work among the k smallest batches
    reps = [view("b1", running=1, depths=(0, 0, 3)), view("b5", running=5, depths=(0, 0, 2)),
            view("b40", running=40, depths=(0, 0, 1)), view("b60", running=60)]
    first = {share: EWSJFAware(long_pool=share).rank(LONG, reps)[0].replica_id for share in (0.25, 0.5, 0.75, 1.0)}
    assert first == {0.25: "b1", 0.5: "b5", 0.75: "b40", 1.0: "b60"}
    assert EWSJFAware().long_pool == 0.5
    assert [pool_size(0.5, n) for n in (1, 2, 3, 4, 5, 16)] == [1, 1, 2, 2, 3, 8]   # the lower median, as before
    assert pool_size(0.3, 10) == 3 and pool_size(0.01, 4) == 1 and pool_size(1.0, 7) == 7
    for bad in (0, -0.5, 1.5, True, "half", float("nan")):
        with pytest.raises(ValueError, match="long_pool"):
            EWSJFAware(long_pool=bad)


def test_policy_options_are_checked_naming_them():
    with pytest.raises(ValueError, match="no option\\(s\\) long_pol; it takes long_pool"):
        make_policy("ewsjf", long_pol=0.5)          # a typo in request_router_kwargs
    with pytest.raises(ValueError, match="lmetric.*takes none"):
        make_policy("lmetric", seed=1)
    with pytest.raises(ValueError, match="imbalanced_threshold"):
        make_policy("prefix-affinity", imbalanced_threshold=-1)
    assert make_policy("power-of-two", seed=3) is not None


@pytest.mark.parametrize("name", list(POLICIES))
def test_every_policy_ranks_an_empty_set_of_replicas_as_empty(name):
    """round-robin raised ZeroDivisionError and prefix-affinity ValueError from max() (the others returned [])."""
    policy = make_policy(name)
    assert policy.rank(SHORT, []) == []
    a, b = view("a"), view("b")
    assert {v.replica_id for v in policy.rank(SHORT, [a, b])} <= {"a", "b"}
    if name == "round-robin":   # the empty call did not move the cursor
        assert [v.replica_id for v in policy.rank(SHORT, [a, b])] == ["b", "a"]
