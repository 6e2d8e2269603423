import math
import sys
import threading

import pytest

from ewsjf.bindings import EWSJFConfig, EWSJFQueue
from ewsjf.bindings.step_feedback import MAX_PENDING_STEPS
from .helpers import Clock, drain


def test_short_requests_first_then_fifo_within_a_queue():
    q = EWSJFQueue(clock=Clock(10.0))
    q.add("long", 5000, arrival_time=1.0)
    q.add("s1", 50, arrival_time=2.0)
    q.add("mid", 800, arrival_time=2.5)
    q.add("s2", 60, arrival_time=3.0)
    q.begin_step()
    assert drain(q) == ["s1", "s2", "mid", "long"]


def test_priority_classes_are_strict_and_resume_lane_first():
    q = EWSJFQueue(clock=Clock(10.0))
    q.add("low-short", 10, arrival_time=0.0, priority=5)
    q.add("high-long", 6000, arrival_time=9.0, priority=-1)
    q.add("mid-short", 10, arrival_time=9.0)
    q.prepend("preempted-long", 6000, arrival_time=8.0)
    q.prepend("preempted-later", 3000, arrival_time=8.5)
    q.begin_step()
    assert drain(q) == ["high-long", "preempted-later", "preempted-long", "mid-short", "low-short"]


def test_starvation_bound_serves_oldest_first():
    clock = Clock(0.0)
    q = EWSJFQueue(EWSJFConfig(max_wait=5.0), clock=clock)
    q.add("long-old", 7000, arrival_time=0.0)
    q.add("mid-old", 900, arrival_time=1.0)
    for i in range(5):
        q.add(f"short{i}", 20, arrival_time=8.0 + i)
    clock.t = 6.5  # long-old has waited 6.5 s > 5 s; mid-old 5.5 s > 5 s
    q.begin_step()
    assert [q.pop(), q.pop()] == ["long-old", "mid-old"]
    assert q.pop() == "short0"
    assert q.stats()["starvation_promotions"] == 2


def test_a_swapped_bound_keeps_an_older_starved_request_first():
    # r1 is committed under a factor-1.5 bound (due at once: nothing ahead of it), r2 after a swap to a
    # shorter max_wait and no progress bound: without re-basing, r2's earlier deadline put it ahead of r1 in
    # their queue and the starved r1 waited behind it.
    q = EWSJFQueue(EWSJFConfig(max_wait=8.0, fcfs_wait_factor=1.5), clock=Clock(0.0))
    q.add("r1", 1, arrival_time=0.0)
    q.begin_step()
    q.set_config(EWSJFConfig(max_wait=3.0, fcfs_wait_factor=0.0))
    q.begin_step()
    q.add("r2", 1, arrival_time=0.0)
    q.prepend("r3", 1, arrival_time=0.0)
    q.begin_step()
    assert drain(q) == ["r3", "r1", "r2"]


def test_one_queue_without_aging_is_fcfs():
    cfg = EWSJFConfig(max_queues=1, initial_edges=(1.0,), max_bubbles=0, a_u=0, b_u=0, a_f=0, b_f=0,
                      max_wait=math.inf)
    q = EWSJFQueue(cfg, clock=Clock(100.0))
    lengths = [5000, 3, 700, 12000, 1, 64, 64, 9000]
    for i, n in enumerate(lengths):
        q.add(i, n, arrival_time=float(i))
    q.begin_step()
    assert drain(q) == list(range(len(lengths)))


def test_pops_beyond_one_order_chunk_and_interleaved_changes():
    q = EWSJFQueue(EWSJFConfig(order_chunk=4), clock=Clock(1.0))
    for i in range(20):
        q.add(i, 1000, arrival_time=0.01 * i)
    q.begin_step()
    first = [q.pop() for _ in range(6)]
    q.remove([10, 11])
    q.add("new-short", 5, arrival_time=0.5)
    assert first == list(range(6))
    assert q.peek() == "new-short" and q.pop() == "new-short"
    assert drain(q) == [i for i in range(6, 20) if i not in (10, 11)]


@pytest.mark.parametrize("fcfs_wait_factor", [0.0, 1.2])
def test_a_step_pops_the_order_computed_at_its_start_however_many_it_pops(fcfs_wait_factor):
    """The queue computes a step's order a prefix at a time, as long as the last step popped; a step that
    pops more extends it. Whatever each step pops (up to order_chunk), the pops are the prefix of the whole
    order listed at the step's start: queue `listed` is listed before popping, `plain` only pops (in two
    batches, with a stats() call between them)."""
    import random
    rng = random.Random(7)
    t = [0.0]
    cfg = EWSJFConfig(repartition_every=300, min_partition_samples=50, fcfs_wait_factor=fcfs_wait_factor)
    listed, plain = (EWSJFQueue(cfg, clock=lambda: t[0]) for _ in range(2))
    next_id = 0
    for step in range(120):
        t[0] += 0.05
        for _ in range(rng.choice([0, 2, 30, 200])):
            next_id += 1
            n = rng.choice([rng.randint(5, 200), rng.randint(500, 3000), rng.randint(4000, 20000)])
            arrival = t[0] - rng.random() * 0.05
            for q in (listed, plain):
                q.add(next_id, n, arrival_time=arrival)
        for q in (listed, plain):
            q.begin_step(t[0])
        whole = list(listed)
        k = min(rng.choice([0, 1, 3, 17, 40, 100, 255, 256]), len(whole))
        first = rng.randint(0, k)   # stats() between two batches changes nothing
        popped = plain.pop_many(first)
        plain.stats()
        popped += plain.pop_many(k - first)
        assert popped == whole[:k] == listed.pop_many(k), f"step {step}"
        if step % 5 == 0:
            for q in (listed, plain):
                q.observe_step(0.02 + 1e-5 * k, 100 * k, 64)


def test_iter_is_pop_order_and_does_not_consume():
    q = EWSJFQueue(clock=Clock(5.0))
    for i, n in enumerate([3000, 20, 400, 20]):
        q.add(i, n, arrival_time=float(i))
    q.begin_step()
    listed = list(q)
    assert len(q) == 4 and listed == drain(q) and listed[:2] == [1, 3]


@pytest.mark.parametrize("kwargs,field", [
    ({"prompt_tokens": 0}, "prompt_tokens"), ({"prompt_tokens": -3}, "prompt_tokens"),
    ({"prompt_tokens": 2.5}, "prompt_tokens"), ({"arrival_time": float("nan")}, "arrival_time"),
    ({"arrival_time": math.inf}, "arrival_time"), ({"cached_tokens": -1}, "cached_tokens"),
    ({"cached_tokens": 11}, "cached_tokens"), ({"priority": 1.5}, "priority"),
    ({"predicted_output_tokens": -1}, "predicted_output_tokens"),
])
def test_bad_input_names_the_field_and_changes_nothing(kwargs, field):
    q = EWSJFQueue(clock=Clock(1.0))
    q.add("a", 10, arrival_time=0.0)
    q.add("b", 5000, arrival_time=0.0)
    before = list(q)
    args = {"request_id": "bad", "prompt_tokens": 10, "arrival_time": 0.5, **kwargs}
    with pytest.raises(ValueError, match=field):
        q.add(**args)
    with pytest.raises(ValueError, match=field):
        q.prepend(**args)
    assert "bad" not in q and list(q) == before and len(q) == 2


def test_duplicate_and_unknown_ids_raise_and_change_nothing():
    q = EWSJFQueue(clock=Clock(1.0))
    q.add("a", 10, arrival_time=0.0)
    q.add("b", 20, arrival_time=0.0)
    with pytest.raises(KeyError, match="'a' is already waiting"):
        q.add("a", 99, arrival_time=0.0)
    with pytest.raises(KeyError, match="'a' is already waiting"):
        q.prepend("a", 99, arrival_time=0.0)
    with pytest.raises(KeyError, match="'zzz'"):
        q.remove(["b", "zzz"])
    assert list(q) == ["a", "b"]
    with pytest.raises(TypeError, match="not hashable"):
        q.add(["x"], 10, arrival_time=0.0)
    with pytest.raises(ValueError, match="None"):
        q.add(None, 10, arrival_time=0.0)
    assert drain(q) == ["a", "b"]
    with pytest.raises(IndexError):
        q.pop()
    with pytest.raises(IndexError):
        q.peek()


def test_step_feedback_validated_and_fitted():
    q = EWSJFQueue()
    with pytest.raises(ValueError, match="duration_s"):
        q.observe_step(-1.0, 10, 10)
    with pytest.raises(ValueError, match="prefill_tokens"):
        q.observe_step(0.1, -5, 10)
    with pytest.raises(ValueError, match="now"):
        q.begin_step(float("nan"))
    for p in range(0, 8000, 50):
        q.observe_step(0.01 + 2e-4 * p, p, 32)
    assert q.prefill_cost(4000) == pytest.approx(0.01 + 0.8, rel=0.05)
    assert q.stats()["cost_model"]["steps"] == 160


def test_repartition_moves_every_request_keeping_fifo():
    clock = Clock(0.0)
    q = EWSJFQueue(EWSJFConfig(min_partition_samples=10, repartition_every=0), clock=clock)
    sizes = [30, 4000, 35, 4100, 32, 90, 4050, 95, 33, 93] * 5
    for i, n in enumerate(sizes):
        q.add(i, n, arrival_time=float(i))
    clock.t = 60.0
    assert q.repartition() is True
    stats = q.stats()
    assert stats["repartitions"] == 1 and sum(s["depth"] for s in stats["queues"]) == len(sizes)
    assert [(s["lo"], s["hi"]) for s in stats["queues"]] == [(30.0, 35.0), (90.0, 95.0), (4000.0, 4100.0)]
    order = drain(q)
    assert sorted(order) == list(range(len(sizes)))
    for lo, hi in ((30, 35), (90, 95), (4000, 4100)):  # FIFO inside each new queue
        members = [i for i in order if lo <= sizes[i] <= hi]
        assert members == sorted(members)


def test_set_config_from_another_thread_applies_at_next_step():
    q = EWSJFQueue(clock=Clock(1.0))
    q.add("a", 10, arrival_time=0.0)
    new = q.config.replace(w_base=2.0, max_wait=5.0)
    t = threading.Thread(target=q.set_config, args=(new,))
    t.start()
    t.join()
    assert q.config is new and q.stats()["params"]["w_base"] == 1.0
    q.begin_step()
    assert q.stats()["params"]["w_base"] == 2.0 and q.pop() == "a"
    with pytest.raises(TypeError, match="EWSJFConfig"):
        q.set_config({"w_base": 3})


def test_a_config_set_while_another_is_being_installed_is_not_lost():
    """set_config from another thread may run between any two lines of the engine thread's install: replay
    that interleaving at every line of it, once, with a tracer standing in for the other thread."""
    first = EWSJFConfig(w_base=2.0)
    second = EWSJFConfig(w_base=3.0)
    interleaved = []

    def tracer(frame, event, arg):
        if frame.f_code.co_name != "_install_pending_config":
            return None
        def on_line(frame, event, arg):
            if event == "line" and frame.f_lineno not in seen and not interleaved:
                seen.add(frame.f_lineno)
                interleaved.append(frame.f_lineno)
                q.set_config(second)   # the tuner's thread, at this point of the install
            return on_line
        return on_line

    seen: set[int] = set()
    while True:
        q = EWSJFQueue(clock=Clock(1.0))
        q.add("a", 10, arrival_time=0.0)
        q.set_config(first)
        interleaved.clear()
        sys.settrace(tracer)
        try:
            q.begin_step()
        finally:
            sys.settrace(None)
        if not interleaved:
            break   # every line of the install has had its turn
        q.begin_step()
        assert q.config is second and q.stats()["params"]["w_base"] == 3.0, f"lost at line {interleaved[0]}"


def test_configs_set_between_two_steps_are_not_kept_but_the_last():
    q = EWSJFQueue(clock=Clock(1.0))
    q.add("a", 10, arrival_time=0.0)
    configs = [EWSJFConfig(w_base=1.0 + i / 1000) for i in range(2000)]   # a caller that never lets a step pass
    for c in configs:
        q.set_config(c)
    assert q.config is configs[-1] and len(q._pending_configs) == 1   # white box: the hand-over stays one deep
    q.begin_step()
    assert q.stats()["params"]["w_base"] == configs[-1].w_base


def test_bubble_queue_opens_for_an_outlier_and_retires_when_idle():
    cfg = EWSJFConfig(initial_edges=(1.0, 100.0), bubble_empty_rounds=3)
    q = EWSJFQueue(cfg, clock=Clock(0.0))
    q.add("x", 10, arrival_time=0.0)
    assert [s["bubble"] for s in q.stats()["queues"]] == [False, False]
    # Force holes: a data-driven partition of two tight clusters, then an outlier between them.
    q2 = EWSJFQueue(EWSJFConfig(min_partition_samples=10, repartition_every=0, bubble_empty_rounds=3),
                    clock=Clock(0.0))
    for i in range(40):
        q2.add(i, 100 if i % 2 else 5000, arrival_time=0.0)
    q2.repartition()
    q2.add("outlier", 1000, arrival_time=0.0)
    bubbles = [s for s in q2.stats()["queues"] if s["bubble"]]
    assert len(bubbles) == 1 and bubbles[0]["lo"] == 1000.0 and bubbles[0]["depth"] == 1
    q2.remove(["outlier"])
    for _ in range(3):
        q2.begin_step(1.0)
    assert not [s for s in q2.stats()["queues"] if s["bubble"]]
    assert len(q2) == 40


@pytest.mark.parametrize("factor", [0.0, 1.0])
def test_progress_bound_serves_what_fcfs_would_have_admitted(factor):
    # 20 requests of 1000 tokens wait, then a 6000-token one (20000 tokens ahead of it), then 30 short ones.
    # The bound counts admitted work, whatever the engine's speed: once the work admitted since a request
    # arrived exceeds factor x the work ahead of it, the request is due (oldest first).
    # own_size_slack=0 and late_bypass_share=0: the bound itself (with the defaults each request falls due half its
    # own prefill later, and short heads may pass a just-due one for up to half its work).
    clock = Clock(0.0)
    q = EWSJFQueue(EWSJFConfig(fcfs_wait_factor=factor, own_size_slack=0.0, late_bypass_share=0.0), clock=clock)
    for i in range(20):
        q.add(f"backlog{i}", 1000, arrival_time=0.0)
    q.begin_step(0.0)
    q.add("long", 6000, arrival_time=0.0)
    for i in range(30):
        q.add(f"short{i}", 10, arrival_time=1.0)
    order = []
    while q:
        q.begin_step(2.0)  # one admission per step, so the progress advances between them
        order.append(q.pop())
    if factor == 0.0:  # no bound: EWSJF's own order, short requests first
        assert order[:30] == [f"short{i}" for i in range(30)]
    else:  # each backlog request is due once FCFS would have admitted it; the long one after all 20
        assert order[0] == "short0"
        assert order[1:22] == [f"backlog{i}" for i in range(20)] + ["long"]
        assert q.stats()["starvation_promotions"] == 21


def test_prefill_rate_follows_feedback():
    q = EWSJFQueue(EWSJFConfig(prior_c1=1e-4))
    assert q.stats()["cost_model"]["prefill_rate_tps"] == pytest.approx(1e4)
    for _ in range(50):
        q.observe_step(0.5, prefill_tokens=2000, decode_tokens=100)
    assert q.stats()["cost_model"]["prefill_rate_tps"] == pytest.approx(4000.0)


def test_cold_start_partitions_from_data_early_then_at_doubling_counts():
    cfg = EWSJFConfig()  # min_partition_samples 64, repartition_every 2000
    q = EWSJFQueue(cfg, clock=Clock(0.0))
    seen = []
    for i in range(300):
        q.add(i, 10 + (i * 37) % 5000, arrival_time=0.0)
        q.begin_step(0.0)
        seen.append(q.stats()["repartitions"] if i in (63, 64, 65, 127, 128, 255, 256, 299) else None)
    counts = [c for c in seen if c is not None]
    # Due at the 64th, 128th and 256th arrival; computed in the background during that step and installed
    # at the next admission round.
    assert counts == [0, 1, 1, 1, 2, 2, 3, 3]


def test_step_feedback_fitted_in_batches_is_fitted_as_if_at_once():
    """observe_step records; the fit runs in the next step's kernel call (or before anything reads the model).
    Reading the model after every step (one fit per step) gives the same model and the same pops."""
    import random
    rng = random.Random(11)
    t = [0.0]
    eager, lazy = (EWSJFQueue(EWSJFConfig(progress_output_weight=1.0), clock=lambda: t[0]) for _ in range(2))
    for step in range(200):
        t[0] += 0.03
        n = rng.randint(10, 5000)
        for q in (eager, lazy):
            q.add(step, n, arrival_time=t[0])
            q.begin_step(t[0])
        k = rng.choice([0, 0, 1, 2])
        assert eager.pop_many(k) == lazy.pop_many(k)
        feedback = (0.01 + 1e-5 * n * rng.random(), rng.choice([0, 512, 2048]), rng.randint(0, 256))
        if step % 17 == 5:   # an implausible step: skipped by the fit, its decode tokens still counted
            feedback = (1e6, feedback[1], feedback[2])
        for q in (eager, lazy):
            q.observe_step(*feedback)
        eager.settle()  # fits now
    lazy.settle()
    assert eager.cost_coefficients == lazy.cost_coefficients
    assert eager.stats()["cost_model"] == lazy.stats()["cost_model"]
    assert lazy.stats()["cost_model"]["skipped_steps"] == 12
    assert list(eager) == list(lazy)


def test_step_feedback_waiting_for_a_step_that_consults_the_queue_stays_bounded():
    """Hours of steps with a full running batch (observe_step, never a pop): the recorded feedback is fitted
    in bounded batches, and the model is the one fitted step by step."""
    q, ref = EWSJFQueue(clock=Clock(0.0)), EWSJFQueue(clock=Clock(0.0))
    q.add("waiting", 100, arrival_time=0.0)
    for i in range(20_000):
        q.observe_step(0.02 + 1e-6 * (i % 7), 0, 256)
        ref.observe_step(0.02 + 1e-6 * (i % 7), 0, 256)
        ref.settle()   # fits now
        assert q._feedback.pending_steps < MAX_PENDING_STEPS   # white box: the steps waiting for a fit
    q.settle()
    assert q.cost_coefficients == ref.cost_coefficients


def test_admitted_work_counts_a_steps_pops_at_the_next_round():
    q = EWSJFQueue(clock=Clock(10.0))
    q.add("a", 100, arrival_time=1.0, cached_tokens=40)
    q.add("b", 200, arrival_time=2.0)
    q.add("c", 5000, arrival_time=3.0)
    q.begin_step()
    assert [q.pop(), q.pop()] == ["a", "b"]
    assert q.admitted_work == 0.0   # not yet counted: the next round does
    q.begin_step()
    q.settle()
    assert q.admitted_work == 60.0 + 200.0 == q.stats()["admitted_work"]


def test_cost_coefficients_is_a_pure_read_the_tuners_thread_may_make():
    q = EWSJFQueue(clock=Clock(0.0))
    q.add("a", 100, arrival_time=0.0)
    prior = q.cost_coefficients
    for i in range(50):
        q.observe_step(0.05 + 1e-3 * (i % 5), 2048 * (i % 3), 64)
    assert q.cost_coefficients == prior   # nothing fitted by reading (it raced the engine thread's own fit)
    q.settle()
    fitted = q.cost_coefficients
    model = q.stats()["cost_model"]
    assert fitted != prior and fitted == (model["c0"], model["c1"], model["c2"], model["decode"])


@pytest.mark.parametrize("by_handle", [False, True])
def test_resize_all_routes_queued_requests_anew_keeps_lanes_and_checks_first(by_handle):
    """A request queued with a prefix-cache hit (10 of 1000 tokens to compute) goes first among short ones; sized
    anew without the hit it moves to its long queue, behind them. The preempted one keeps its lane, nothing is lost
    or duplicated, and a bad size raises naming the request before anything changes."""
    q = EWSJFQueue(clock=Clock(0.0))
    add = (lambda rid, *a, **k: q.push(rid, *a, **k)) if by_handle else q.add
    add("p", 20, 0.0)
    q.begin_step(0.5)
    assert q.pop() == "p"
    add("a", 1000, 1.0, cached_tokens=990)
    add("b", 100, 2.0)
    add("c", 50, 3.0)
    q.begin_step(4.0)
    if by_handle:
        q.push("p", 20, 0.0, front=True)   # preempted: back on its lane
    else:
        q.prepend("p", 20, 0.0)
    assert list(q) == ["p", "a", "b", "c"]
    sizes = {"a": (1000, 0, None), "b": (100, 0, None), "c": (50, 0, None), "p": (20, 0, None)}
    with pytest.raises(ValueError, match="request 'b'.*cached_tokens"):
        q.resize_all(lambda rid: (100, 200, None) if rid == "b" else sizes[rid])
    assert list(q) == ["p", "a", "b", "c"]
    q.resize_all(lambda rid: sizes[rid])
    assert list(q) == ["p", "b", "c", "a"] and len(q) == 4
    stats = q.stats()
    assert stats["resume_lane_depth"] == 1 and [d["depth"] for d in stats["queues"]][:2] == [2, 1]
    q.begin_step(5.0)
    assert drain(q) == ["p", "b", "c", "a"]


def test_stats_show_the_time_floor_from_the_cost_model_and_the_backlogs():
    t = [0.0]
    q = EWSJFQueue(clock=lambda: t[0])
    assert q.stats()["time_floor"] == {"tail_s": 0.0, "backlog_s": 0.0, "fastest_prefill_tps": 0.0,
                                       "count_wait_s": 0.0, "count_share": 1.0}   # no step seen yet
    for _ in range(70):
        q.observe_step(0.1, 2048, 0)
    for i in range(40):
        q.add(i, 1000, arrival_time=0.0)
    q.begin_step(0.0)
    floor = q.stats()["time_floor"]
    _, c1, c2, _ = q.cost_coefficients
    assert floor["fastest_prefill_tps"] == pytest.approx(1 / (c1 + c2 * 2048))   # the budget's marginal cost
    # 40 requests of 1,000 tokens: backlogs 0 to 39,000, whose 0.99-quantile over the rate is the floor's tail.
    assert floor["tail_s"] == floor["backlog_s"] == pytest.approx(39_000 / floor["fastest_prefill_tps"])
    assert floor["count_wait_s"] == 0.0   # nothing admitted yet


def test_the_time_floor_counts_the_admission_count_wait_and_less_of_it_where_outputs_hold_kv_memory():
    # A cap-held engine: 100 requests of 100 tokens arrive at 0 s and one is admitted per 1 s step, the i-th behind
    # i others: FCFS admits it at the engine's i-th admission, popped at i s and counted at the next round, i + 1 s
    # (ewsjf_core.admission_wait: a wait ends when the round folds the pops in). Prefill is fast (2,048 tokens in 10
    # ms), so the backlogs' lower bound is a fraction of a second: the floor is the admission-count wait's quantile.
    t = [0.0]
    q = EWSJFQueue(clock=lambda: t[0])
    for _ in range(70):
        q.observe_step(0.01, 2048, 0)
    for i in range(100):
        q.add(i, 100, arrival_time=0.0)
    for k in range(100):
        t[0] = float(k)
        q.begin_step()
        assert q.pop() == k
        q.observe_step(0.01, 100, 0, at_running_cap=True)
    for _ in range(64):   # the floor is re-read every 64 steps: then the quantile of the waits, 1..100 s
        q.observe_step(0.01, 100, 0, at_running_cap=True)
    q.begin_step()
    floor = q.stats()["time_floor"]
    assert floor["count_share"] == 1.0 and floor["count_wait_s"] == 99.0
    assert floor["tail_s"] == floor["count_wait_s"]
    # Completions whose outputs hold most of their memory-time (100-token prompts, 2,000-token outputs), and steps
    # held below the token budget with requests waiting: KV memory holds admissions and the outputs hold it, where a
    # short-first order need not admit as many requests as FCFS. The floor leans back on the backlogs' bound.
    for i in range(100, 300):
        q.add(i, 100, arrival_time=t[0])
    for _ in range(50):
        q.observe_finished(100, 2000)
    for _ in range(70):
        q.observe_step(0.01, 100, 0)
    q.begin_step()
    floor = q.stats()["time_floor"]
    assert floor["count_share"] == 0.0 and floor["count_wait_s"] > 90.0
    assert floor["tail_s"] == floor["backlog_s"]
    assert 0.0 < floor["backlog_s"] * floor["fastest_prefill_tps"] <= 19_900   # a backlog: at most 199 x 100 tokens


def test_the_fastest_prefill_rate_leaves_out_the_per_step_cost_the_decodes_share():
    # At the running cap every step decodes 256 tokens: the fit cannot tell their 0.4 s from c0. The prefill
    # rate is what prefill adds to a step (25 us a token here), not the budget over a whole step's cost.
    q = EWSJFQueue(clock=lambda: 0.0)
    for i in range(2000):   # the fit starts at the prior and clips large residuals: it takes a while to converge
        p = (512, 1024, 2048, 4096, 8192)[i % 5]
        q.observe_step(0.4 + 25e-6 * p, p, 256, at_running_cap=True)
    q.add("a", 1000, arrival_time=0.0)
    q.begin_step(0.0)
    assert q.prefill_cost(8192) > 0.5   # c0 holds the decodes' cost
    assert q.stats()["time_floor"]["fastest_prefill_tps"] == pytest.approx(1 / 25e-6, rel=0.05)


def test_a_preempted_request_moves_the_due_points_of_later_arrivals_and_a_skipped_pop_does_not():
    # A preemption puts back a request FCFS would serve again before every later arrival: their due points move by
    # its work and one request, so its re-admission does not bring them nearer being due. A pop the engine puts back
    # in the same step (it skipped it) was never admitted and moves nothing.
    def due_of_later(preempted: bool) -> tuple[float, float]:
        q = EWSJFQueue(EWSJFConfig(kv_work_weight=0.0, slot_work_weight=0.0), clock=Clock(1.0))
        q.add("p", 300, arrival_time=0.0)
        q.add("later", 5000, arrival_time=1.0)
        q.begin_step()
        assert q.pop() == "p"   # the step's first pop runs the (lazy) begin: both are committed
        s = q._slot_of["later"]   # white box: its due point
        before = float(q._set.due_work[s]), float(q._set.due_n[s])
        if preempted:
            q.begin_step()   # p admitted
        q.prepend("p", 300, arrival_time=0.0)
        q.begin_step()
        return float(q._set.due_work[s]) - before[0], float(q._set.due_n[s]) - before[1]
    assert due_of_later(preempted=False) == (0.0, 0.0)
    assert due_of_later(preempted=True) == pytest.approx((300.0, 1.0))
