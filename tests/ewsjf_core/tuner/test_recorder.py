import numpy as np
import pytest

from ewsjf_core.tuner import WindowRecorder


def test_snapshot_window_and_fields():
    r = WindowRecorder()
    for i in range(10):
        r.on_arrival(i, float(i), 100 + i, cached_tokens=10, priority=i % 2)
    r.on_arrival(3, 99.0, 5)                # re-added (preempted): first arrival kept
    r.on_first_token(2, 2.5)
    r.on_first_token(2, 9.0)                # only the first one counts
    r.on_finish(2, 7, 3.0)
    r.on_first_token("unknown", 1.0)        # ignored
    s = r.snapshot(2.0, 5.0)
    assert s.arrival_s.tolist() == [2, 3, 4, 5]
    assert s.prompt_tokens.tolist() == [102, 103, 104, 105]
    assert s.effective_tokens.tolist() == [92, 93, 94, 95]
    assert s.ttft_s[0] == pytest.approx(0.5) and np.isnan(s.ttft_s[1])
    assert s.output_tokens.tolist() == [7, -1, -1, -1]
    assert len(r.snapshot()) == 10 and len(r.snapshot(100.0)) == 0


def test_bounded_oldest_evicted():
    r = WindowRecorder(max_requests=5)
    for i in range(8):
        r.on_arrival(i, float(i), 10)
    assert len(r) == 5 and r.snapshot().arrival_s.tolist() == [3, 4, 5, 6, 7]
    with pytest.raises(ValueError):
        WindowRecorder(0)


def test_to_workload_rebases_and_fills_unfinished_outputs():
    r = WindowRecorder()
    for i, (p, c) in enumerate([(100, 0), (200, 150), (300, 0)]):
        r.on_arrival(i, 10.0 + i, p, cached_tokens=c)
    r.on_finish(0, 20)
    r.on_finish(2, 40)
    w = r.snapshot().to_workload()
    assert w.arrival_s.tolist() == [0.0, 1.0, 2.0]
    assert w.prompt_tokens.tolist() == [100, 50, 300]          # uncached part replayed
    assert w.output_tokens.tolist() == [20, 30, 40]            # median of finished fills the gap
    with pytest.raises(ValueError):
        WindowRecorder().snapshot().to_workload()


def test_backlog_reenters_at_window_start_running_ones_as_decode_only():
    r = WindowRecorder()
    r.on_arrival("waiting", 1.0, 500)               # still waiting at the window start (10.0)
    r.on_arrival("running", 2.0, 400)               # got its first token at 5.0, finishes at 30.0
    r.on_first_token("running", 5.0)
    r.on_finish("running", 50, 30.0)
    r.on_arrival("done", 3.0, 300)                  # finished before the window: not backlog
    r.on_first_token("done", 4.0)
    r.on_finish("done", 5, 6.0)
    r.on_arrival("fresh", 12.0, 200, depth=3)
    s = r.snapshot(10.0, 20.0, active_at_start=True)
    assert s.arrival_s.tolist() == [1.0, 2.0, 12.0]
    assert s.depth_at_arrival[-1] == 3 and np.isnan(s.depth_at_arrival[0])
    w = s.to_workload(start=10.0)
    assert w.arrival_s.tolist() == [0.0, 0.0, 2.0]
    assert w.prompt_tokens.tolist() == [500, 1, 200]
    # the running one had decoded (10 - 5) / (30 - 5) of its 50 tokens by the window start
    assert w.output_tokens[1] == 40
    assert s.replay_scored(10.0).tolist() == [True, False, True]
    assert len(r.snapshot(10.0, 20.0)) == 1


def test_snapshot_while_another_thread_records():
    import threading
    r = WindowRecorder(max_requests=500)
    stop = threading.Event()
    errors = []

    def engine():
        i = 0
        try:
            while not stop.is_set():
                r.on_arrival(i, float(i), 10 + i % 7)
                r.on_first_token(i, float(i) + 0.5)
                r.on_finish(i - 3, 4, float(i))
                i += 1
        except Exception as e:  # pragma: no cover - the failure this test looks for
            errors.append(e)

    t = threading.Thread(target=engine)
    t.start()
    try:
        for _ in range(300):
            s = r.snapshot()
            assert len(s) <= 500
            ok = np.isfinite(s.first_token_s)
            assert np.allclose(s.first_token_s[ok] - s.arrival_s[ok], 0.5)     # rows never torn
            assert np.all(s.prompt_tokens == 10 + s.arrival_s.astype(np.int64) % 7)
    finally:
        stop.set()
        t.join()
    assert not errors and r.arrivals > 500


def test_a_request_that_left_without_output_has_no_first_token_and_is_no_backlog():
    r = WindowRecorder()
    r.on_arrival("aborted", 1.0, 500)
    r.on_finish("aborted", 0, 4.0)          # aborted while waiting: it left, and never got a token
    r.on_arrival("one", 2.0, 50)
    r.on_finish("one", 1, 5.0)              # a 1-token output: its first token is its finish
    s = r.snapshot()
    assert np.isnan(s.first_token_s[0]) and s.finish_s[0] == 4.0 and s.first_token_s[1] == 5.0
    assert len(r.snapshot(10.0, 20.0, active_at_start=True)) == 0


def test_a_reused_id_is_a_new_request_once_the_first_has_finished():
    """A host may reuse an id after its request finished: the second request gets its own row (its arrival, first
    token and finish), and the first keeps its own. A re-add while the first is still in the system (a preempted
    request re-queued) keeps the first arrival."""
    r = WindowRecorder()
    r.on_arrival("x", 0.0, 100)
    r.on_arrival("x", 1.0, 100)      # re-queued, still in the system: ignored
    r.on_first_token("x", 2.0)
    r.on_finish("x", 5, 5.0)
    r.on_arrival("x", 10.0, 300)     # the id again, a new request
    r.on_first_token("x", 11.0)
    r.on_finish("x", 7, 12.0)
    s = r.snapshot()
    assert s.arrival_s.tolist() == [0.0, 10.0] and s.prompt_tokens.tolist() == [100, 300]
    assert s.first_token_s.tolist() == [2.0, 11.0] and s.finish_s.tolist() == [5.0, 12.0]
    assert s.output_tokens.tolist() == [5, 7] and r.arrivals == 2


def test_eviction_with_reused_ids_keeps_every_id_on_its_latest_row():
    """Ids reused across evictions: each id's events land on its latest row, and eviction drops an id only with
    the row it points to."""
    r = WindowRecorder(max_requests=8)
    for i in range(500):
        rid = f"r{i % 5}"             # five ids, reused every fifth request
        r.on_arrival(rid, float(i), 10 + i)
        r.on_first_token(rid, i + 0.5)
        r.on_finish(rid, 1, i + 0.75)
        assert r.arrivals == i + 1 and len(r) == min(i + 1, 8)
    s = r.snapshot()
    assert len(s) == 8 and s.arrival_s.tolist() == [float(i) for i in range(492, 500)]
    assert np.array_equal(s.first_token_s, s.arrival_s + 0.5) and np.array_equal(s.finish_s, s.arrival_s + 0.75)
    assert s.prompt_tokens.tolist() == [10 + i for i in range(492, 500)]


def test_a_resize_gives_the_requests_without_a_first_token_their_new_cached_tokens():
    """After the host's prefix-cache reset, the rows of requests still waiting take their new cached tokens; one that
    had its first token keeps the hit it was served with; ids evicted or never recorded are ignored (no row added)."""
    r = WindowRecorder(max_requests=4)
    for i in range(7):   # "r0".."r1" evicted (in a batch, past max_requests + slack)
        r.on_arrival(f"r{i}", float(i), 1000, cached_tokens=992)
    r.on_first_token("r5", 5.5)
    r.on_resize({"r0": 0, "r4": 0, "r5": 0, "r6": 16, "zz": 0})
    s = r.snapshot()
    assert s.arrival_s.tolist() == [3, 4, 5, 6] and s.cached_tokens.tolist() == [992, 0, 992, 16]
    assert len(r) == 4 and r.arrivals == 7
