"""The router's accounting: stale stats plus requests routed since, completions, prefix guesses, bad input."""

import math

import pytest

from ewsjf.integrations.ray.requests import check_reading, find_payload, request_info, token_block_hashes
from ewsjf.integrations.ray.state import QueueLoad, ReplicaStats, RequestInfo
from ewsjf.integrations.ray.tracker import ReplicaTracker


def stats(t, running=0, waiting=0, queues=()):
    return ReplicaStats(time=t, running=running, waiting=waiting, queues=queues)


def test_requests_routed_after_the_stats_are_unseen_until_the_next_report():
    tr = ReplicaTracker()
    tr.set_replicas(["a", "b"])
    tr.update_stats("a", stats(1.0, running=2))
    tr.routed("a", RequestInfo("r1", 100), now=0.5)   # before the report: already counted in it
    tr.routed("a", RequestInfo("r2", 300), now=1.5)   # after: unseen
    v = tr.view("a")
    assert [f.request_id for f in v.unseen] == ["r2"] and v.ongoing == 2 and v.waiting_tokens() == 300
    tr.update_stats("a", stats(2.0, running=3))
    assert tr.view("a").unseen == () and tr.view("a").running == 3
    tr.update_stats("a", stats(1.8, running=9))       # an older report arriving late is ignored
    assert tr.view("a").running == 3
    assert tr.completed("r1") == "a" and tr.view("a").running == 2   # completion seen since the report
    assert tr.completed("r1") is None                 # twice: unknown, nothing changes
    assert tr.view("a").ongoing == 1


def test_duplicate_and_unknown_are_rejected_without_change():
    tr = ReplicaTracker()
    tr.set_replicas(["a"])
    tr.routed("a", RequestInfo("r1", 10), now=0.0)
    with pytest.raises(ValueError, match="'r1' is already routed"):
        tr.routed("a", RequestInfo("r1", 10), now=1.0)
    with pytest.raises(KeyError, match="unknown replica 'zz'"):
        tr.routed("zz", RequestInfo("r2", 10), now=1.0)
    assert tr.ongoing("a") == 1 and tr.routed_total == 1


def test_vanished_replicas_drop_their_records():
    tr = ReplicaTracker()
    tr.set_replicas(["a", "b"])
    tr.routed("b", RequestInfo("r1", 10, (1, 2), 16), now=0.0)
    tr.set_replicas(["a"])
    assert tr.replica_ids() == ["a"] and tr.completed("r1") is None


def test_prefix_guess_follows_routed_prompts_with_lru_capacity():
    tr = ReplicaTracker(prefix_capacity_blocks=3)
    tr.set_replicas(["a", "b"])
    tr.routed("a", RequestInfo("r1", 64, (1, 2, 3, 4), 16), now=0.0)
    req = RequestInfo("r2", 80, (1, 2, 3, 4, 5), 16)
    # capacity 3: block 1 was evicted, so the leading run is empty on a; b never saw it
    assert tr.view("a", req).cached_tokens == 0
    tr.routed("a", RequestInfo("r3", 48, (1, 2, 3), 16), now=0.1)
    assert tr.view("a", req).cached_tokens == 48 and tr.view("b", req).cached_tokens == 0
    # routed tokens are the uncached part
    tr.routed("a", req, now=0.2)
    assert tr.view("a").unseen[-1].tokens == 80 - 48


def test_stats_parse_round_trip_and_bad_fields():
    s = ReplicaStats(time=3.0, running=2, waiting=5, queues=(QueueLoad(256, math.inf, 2, 900.0),
                                                              QueueLoad(1, 256, 3, 40.0)), prefill_rate_tps=1e4)
    back = ReplicaStats.from_dict(s.to_dict())
    assert back == s and back.queues[0].lo == 1 and back.queued_tokens == 3 * 40 + 2 * 900
    for bad, field in (({"time": 1, "running": -1, "waiting": 0}, "'running'"),
                       ({"running": 1, "waiting": 0}, "missing field 'time'"),
                       ({"time": float("nan"), "running": 1, "waiting": 0}, "'time'"),
                       ({"time": 1, "running": 1, "waiting": 0, "queues": [[5, 1, 0, 1]]}, r"queues\[0\]: hi"),
                       ({"time": 1, "running": 1, "waiting": 0, "queues": [[1, 2, 3]]}, r"queues\[0\] must be"),
                       ({"time": 10 ** 400, "running": 1, "waiting": 0}, "'time'"),   # beyond float: no OverflowError
                       ({"time": 1, "running": 2.5, "waiting": 0}, "'running' must be a whole number"),
                       ({"time": 1, "running": 1, "waiting": 0, "queues": [[1, 2, 0.5, 3]]}, "'depth'"),
                       ({"time": 1, "running": True, "waiting": 0}, "'running'")):
        with pytest.raises(ValueError, match=field):
            ReplicaStats.from_dict(bad)


def test_request_parsing_tokens_text_and_errors():
    ids = list(range(40))
    info = request_info("x", {"prompt_token_ids": ids}, block_tokens=16)
    assert info.prompt_tokens == 40 and len(info.prefix_blocks) == 2
    # chained: same first block, different second block -> first hash equal, second differs
    other = token_block_hashes(ids[:16] + [999] * 16, 16)
    assert other[0] == info.prefix_blocks[0] and other[1] != info.prefix_blocks[1]
    text = request_info("t", {"prompt": "a" * 400}, block_tokens=16, chars_per_token=4.0)
    assert text.prompt_tokens == 100 and len(text.prefix_blocks) == 6
    assert find_payload(({"prompt": "hi"},), {}) == {"prompt": "hi"}
    assert find_payload((), {"request": {"prompt_token_ids": [1]}}) == {"prompt_token_ids": [1]}
    assert find_payload(("plain string",), {}) is None
    for bad in ({"prompt_token_ids": []}, {"prompt_token_ids": ["a"]}, {"prompt": ""}, {},
                {"prompt_token_ids": [2 ** 63] * 16}, {"prompt_token_ids": [-1] * 16}):   # not int64: no struct.error
        with pytest.raises(ValueError, match="request 'b'"):
            request_info("b", bad)


@pytest.mark.parametrize("block_tokens, chars_per_token, option", [
    (0, 4.0, "block_tokens"), (16.0, 4.0, "block_tokens"), (True, 4.0, "block_tokens"),
    (16, 0, "chars_per_token"), (16, float("nan"), "chars_per_token"), (16, "4", "chars_per_token"),
])
def test_prompt_reading_options_are_checked_naming_them(block_tokens, chars_per_token, option):
    with pytest.raises(ValueError, match=option):   # at 0 reading a prompt divided by zero, per request
        check_reading(block_tokens, chars_per_token)
    check_reading(16, 4)


def test_prefix_capacity_must_be_a_whole_number_of_blocks():
    for bad in (0, 2.5, "10"):
        with pytest.raises(ValueError, match="prefix_capacity_blocks"):
            ReplicaTracker(bad)


@pytest.mark.parametrize("fields, named", [
    ({"prompt_tokens": float("nan")}, "prompt_tokens"),   # a bare ValueError from int(nan)
    ({"prompt_tokens": float("inf")}, "prompt_tokens"),   # OverflowError
    ({"prompt_tokens": None}, "prompt_tokens"),           # TypeError
    ({"prompt_tokens": 10 ** 400}, "prompt_tokens"),      # accepted; every policy then raised OverflowError
    ({"block_tokens": float("nan")}, "block_tokens"),     # accepted; the request was tracked as 1 token
    ({"block_tokens": 1.5}, "block_tokens"),
    ({"block_tokens": True}, "block_tokens"),
    ({"block_tokens": "16"}, "block_tokens"),             # TypeError
])
def test_request_info_refuses_a_bad_count_naming_the_request_and_field(fields, named):
    with pytest.raises(ValueError, match=f"request 'r': {named} must be an integer in"):
        RequestInfo(**{"request_id": "r", "prompt_tokens": 100, "prefix_blocks": (1, 2), **fields})


def test_a_prompt_of_2_53_tokens_is_routed_and_tracked_exactly_by_every_policy():
    from ewsjf.integrations.ray.policies import POLICIES, make_policy

    for name in POLICIES:
        tr = ReplicaTracker()
        tr.set_replicas(["a", "b"])
        tr.update_stats("a", stats(0.0, running=1, waiting=1, queues=(QueueLoad(1, math.inf, 1, 1e9),)))
        req = RequestInfo("huge", 2 ** 53, (1,), 16)
        best = make_policy(name).rank(req, tr.views(req))[0]
        tr.routed(best.replica_id, req, now=1.0)
        assert tr.view(best.replica_id).unseen[-1].tokens == 2 ** 53 and tr.completed("huge") == best.replica_id


def test_a_str_is_not_a_set_of_replicas():
    tr = ReplicaTracker()
    tr.set_replicas(["ab"])
    with pytest.raises(ValueError, match="replica_ids must be an iterable of ids"):
        tr.set_replicas("ab")   # was replicas 'a' and 'b', dropping 'ab' and its records
    assert tr.replica_ids() == ["ab"]


def test_a_bad_time_is_refused_naming_it_and_leaves_the_accounting_unchanged():
    """routed(now='x') raised TypeError after keeping the record as ongoing but not as routed (completed() could
    never clear it: the replica looked busier for good); a stats time of NaN dropped every unseen request and let
    any older report in after it."""
    tr = ReplicaTracker()
    tr.set_replicas(["a"])
    tr.update_stats("a", stats(1.0, running=2))
    tr.routed("a", RequestInfo("r1", 100), now=2.0)
    for bad in ("x", float("nan"), float("inf"), None, 10 ** 400):   # (an int beyond float: OverflowError)
        with pytest.raises(ValueError, match="request 'r2': now must be a finite number"):
            tr.routed("a", RequestInfo("r2", 100), now=bad)
        with pytest.raises(ValueError, match="replica 'a': stats must be ReplicaStats with a finite time"):
            tr.update_stats("a", stats(bad, running=0))
    v = tr.view("a")
    assert v.ongoing == 1 and [f.request_id for f in v.unseen] == ["r1"] and v.running == 2
    assert tr.completed("r2") is None and tr.completed("r1") == "a" and tr.ongoing("a") == 0
