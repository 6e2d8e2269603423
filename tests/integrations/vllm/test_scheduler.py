"""EWSJF schedulers inside vLLM's real v1 Scheduler (virtual harness: no GPU, fake model outputs)."""

import random

import pytest
from vllm.v1.core.sched.async_scheduler import AsyncScheduler
from vllm.v1.core.sched.scheduler import Scheduler

from ewsjf.bindings import EWSJFConfig, EWSJFQueue
from ewsjf.integrations.vllm import AsyncEWSJFScheduler, EWSJFRequestQueue, EWSJFScheduler
from ewsjf.integrations.vllm.compat import held_waiting
from ewsjf.bench.virtual_vllm import VirtualVLLM

# Every behaviour is checked for both variants: vLLM's Scheduler and its AsyncScheduler (two steps in flight).
both = pytest.mark.parametrize("asy", [False, True], ids=["sync", "async"])


def test_waiting_is_replaced_and_other_queues_left_alone():
    v = VirtualVLLM("ewsjf")
    s = v.scheduler
    assert type(s) is EWSJFScheduler and isinstance(s, Scheduler)
    assert isinstance(s.waiting, EWSJFRequestQueue) and s.waiting.queue is s.ewsjf_queue
    assert not isinstance(held_waiting(s), EWSJFRequestQueue)


def test_auto_async_builds_the_async_variant():
    v = VirtualVLLM(EWSJFScheduler, async_scheduling=True)
    assert type(v.scheduler) is AsyncEWSJFScheduler and isinstance(v.scheduler, AsyncScheduler)
    v = VirtualVLLM(EWSJFScheduler, async_scheduling=False)
    assert type(v.scheduler) is EWSJFScheduler


@both
def test_admission_order_follows_ewsjf(asy):
    """All requests fit in one step: vLLM admits them in exactly the standalone EWSJFQueue's pop order."""
    rng = random.Random(7)
    lengths = [rng.choice([rng.randint(3, 60), rng.randint(300, 900), rng.randint(2500, 5000)]) for _ in range(40)]
    t0 = 100.0
    arrivals = sorted(rng.uniform(0, t0) for _ in lengths)
    v = VirtualVLLM("ewsjf", num_blocks=20_000, max_num_seqs=64, max_num_batched_tokens=200_000,
                    max_model_len=8192, start_time=t0, async_scheduling=asy)
    ref = EWSJFQueue(EWSJFConfig(), clock=lambda: t0)
    for i, (n, a) in enumerate(zip(lengths, arrivals)):
        v.add_request(f"r{i}", prompt_tokens=n, output_tokens=2, arrival_time=a)
        ref.add(f"r{i}", prompt_tokens=n, arrival_time=a)
    expected_iter = [r.request_id for r in v.scheduler.waiting]
    ref.begin_step(t0)
    expected = [ref.pop() for _ in range(len(lengths))]
    step = v.step()
    assert step.new == expected
    assert expected_iter == expected
    # and it is not FCFS: short requests went first
    assert expected != [f"r{i}" for i in range(len(lengths))]
    first_long = min(i for i, rid in enumerate(expected) if lengths[int(rid[1:])] >= 2500)
    assert all(lengths[int(rid[1:])] < 2500 for rid in expected[:first_long])


@pytest.mark.parametrize("policy, first", [("fcfs", "early"), ("priority", "claims-priority")])
def test_priorities_are_classes_only_under_vllms_priority_policy(policy, first):
    """vLLM's fcfs policy (its default) ignores request priorities: a client claiming priority -1 does not step
    past the others (nor past the starvation bound); under the priority policy it is served first, its class."""
    v = VirtualVLLM("ewsjf", max_num_seqs=1, policy=policy)
    v.add_request("early", prompt_tokens=100, output_tokens=2, arrival_time=0.0)
    v.add_request("claims-priority", prompt_tokens=100, output_tokens=2, arrival_time=0.5, priority=-1)
    v.advance_to(1.0)
    assert v.step().new == [first]
    assert v.scheduler.waiting.priority_classes is (policy == "priority")


@both
def test_budget_limited_admission_takes_the_short_queue_first(asy):
    v = VirtualVLLM("ewsjf", max_num_seqs=4, max_num_batched_tokens=4096, async_scheduling=asy)
    for i in range(6):
        v.add_request(f"long{i}", prompt_tokens=3000, output_tokens=3)
    for i in range(6):
        v.add_request(f"short{i}", prompt_tokens=20, output_tokens=3)
    first = v.step()
    assert first.new == ["short0", "short1", "short2", "short3"]
    while v.has_unfinished():
        v.step()
    assert all(v.first_token_time[f"short{i}"] <= v.first_token_time[f"long{j}"] for i in range(6) for j in range(6))

    f = VirtualVLLM("fcfs", max_num_seqs=4, max_num_batched_tokens=4096, async_scheduling=asy)
    for i in range(6):
        f.add_request(f"long{i}", prompt_tokens=3000, output_tokens=3)
    assert f.step().new[0] == "long0"


@both
def test_prefix_cached_prompt_counts_as_short(asy):
    """A long prompt whose prefix is cached is sized by its uncached part (vLLM's prefix-cache lookup)."""

    def run(lookup: bool) -> list[str]:
        v = VirtualVLLM("ewsjf", max_num_seqs=1, max_num_batched_tokens=8192, async_scheduling=asy,
                        scheduler_kwargs={"ewsjf_options": {"prefix_cache_lookup": lookup}})
        v.add_request("warm", prompt_tokens=3000, output_tokens=1, prefix_group=1, prefix_tokens=3000)
        while v.has_unfinished():
            v.step()
        v.add_request("unique", prompt_tokens=600, output_tokens=2)
        v.add_request("cached", prompt_tokens=3040, output_tokens=2, prefix_group=1, prefix_tokens=3000)
        while v.has_unfinished():
            v.step()
        return v.admission_order[1:]

    assert run(lookup=True) == ["cached", "unique"]
    assert run(lookup=False) == ["unique", "cached"]


@both
def test_prefill_cost_model_is_fed_by_steps(asy):
    v = VirtualVLLM("ewsjf", async_scheduling=asy,
                    step_time=lambda i: 0.004 + 1e-4 * i.prefill_tokens + 3e-4 * i.decode_tokens)
    rng = random.Random(3)
    for i in range(60):
        v.add_request(f"r{i}", prompt_tokens=rng.randint(10, 3000), output_tokens=rng.randint(1, 20))
    steps_with_tokens = 0
    while v.has_unfinished():
        steps_with_tokens += bool(v.step().scheduled)
    cm = v.scheduler.ewsjf_stats()["cost_model"]
    assert cm["steps"] == steps_with_tokens > 0
    # durations and prefill/decode token counts reach the model correctly: it recovers the virtual GPU's slope
    assert 0.6e-4 < cm["c1"] < 1.5e-4, cm
    assert v.scheduler.ewsjf_steps >= steps_with_tokens


def _drive_same_ops(v: VirtualVLLM, seed: int, n_ops: int, log: list) -> None:
    rng = random.Random(seed)
    k = 0
    for _ in range(n_ops):
        x = rng.random()
        if x < 0.3:
            k += 1
            n = rng.choice([rng.randint(1, 40), rng.randint(100, 700), rng.randint(1500, 3000)])
            v.add_request(f"q{k}", prompt_tokens=n, output_tokens=rng.randint(1, 60))
        elif x < 0.34:
            live = sorted(v.requests)
            if live:
                log.append(("abort", v.abort(rng.choice(live))))
        elif x < 0.38:
            log.append(("preempt", v.preempt()))
        else:
            r = v.step()
            log.append((r.scheduled, r.new, r.resumed, r.preempted, r.finished))


@both
def test_one_queue_without_aging_is_vllm_fcfs(fcfs_like_config, asy):
    """Same operations (arrivals, aborts, forced and KV-pressure preemptions) give the same steps."""
    kw = dict(num_blocks=300, block_size=16, max_num_seqs=12, max_num_batched_tokens=2048, max_model_len=4096,
              async_scheduling=asy)
    fcfs = VirtualVLLM("fcfs", **kw)
    # (the preemption guard, an engine-side option of EWSJF's scheduler, would keep blocks free that vLLM does not)
    ewsjf = VirtualVLLM("ewsjf", scheduler_kwargs={"ewsjf_config": fcfs_like_config,
                                                   "ewsjf_options": {"preemption_guard": False}}, **kw)
    log_f, log_e = [], []
    _drive_same_ops(fcfs, 11, 1500, log_f)
    _drive_same_ops(ewsjf, 11, 1500, log_e)
    assert fcfs.preemptions > 5  # the scenario does exercise preemption (forced ones only in sync mode)
    for i, (a, b) in enumerate(zip(log_f, log_e)):
        assert a == b, f"diverged at operation {i}: fcfs={a} ewsjf={b}"
    assert len(log_f) == len(log_e)
    assert fcfs.admission_order == ewsjf.admission_order


@both
def test_preempted_requests_resume_and_complete(asy):
    v = VirtualVLLM("ewsjf", num_blocks=120, block_size=16, max_num_seqs=16, max_num_batched_tokens=1024,
                    max_model_len=1900, async_scheduling=asy)
    want = {}
    for i in range(24):
        want[f"p{i}"] = 150
        v.add_request(f"p{i}", prompt_tokens=200 + 10 * i, output_tokens=150)
    resumed, preempted = set(), set()
    for _ in range(20_000):
        if not v.has_unfinished():
            break
        r = v.step()
        preempted.update(r.preempted)
        resumed.update(r.resumed)
    assert not v.has_unfinished()
    assert preempted, "the small KV cache should force preemptions"
    assert preempted <= resumed
    assert v.output_tokens == want and set(v.finish_time) == set(want)


@both
def test_unfinished_prefills_count_the_recompute_of_a_resumed_request(asy):
    """ewsjf_stats()["prefilling_tokens"] (the Ray router's work ahead of every waiting request): a preempted
    request recomputes its prompt and its output so far when it resumes. Counted by its prompt alone, the 100
    output tokens were left out, and once the recompute passed the prompt it counted nothing."""
    v = VirtualVLLM("ewsjf", max_num_seqs=8, max_num_batched_tokens=64, enable_prefix_caching=False,
                    async_scheduling=asy)
    v.add_request("a", prompt_tokens=16, output_tokens=200)
    while v.output_tokens.get("a", 0) < 100:
        v.step()
    assert v.preempt("a") == "a"
    request = v.requests["a"]
    for _ in range(3):   # the first 64-token chunk of its recompute (async: a step later, once its output is in)
        if request.num_computed_tokens:
            break
        v.step()
    assert request.num_computed_tokens == 64 and request.num_tokens > 100
    assert v.scheduler.ewsjf_stats()["prefilling_tokens"] == request.num_tokens - 64

@both
def test_aborted_requests_vanish(asy):
    v = VirtualVLLM("ewsjf", max_num_seqs=2, max_num_batched_tokens=512, async_scheduling=asy)
    for i in range(8):
        v.add_request(f"a{i}", prompt_tokens=100 + i, output_tokens=30)
    v.step()
    running = v.running_ids()
    waiting = v.waiting_ids()
    assert running and waiting
    gone = v.abort([running[0], waiting[0], waiting[-1], "no-such-request"])
    assert sorted(gone) == sorted([running[0], waiting[0], waiting[-1]])
    s = v.scheduler
    assert len(s.waiting) == len(s.ewsjf_queue) == len(waiting) - 2
    assert not set(gone) & (set(v.waiting_ids()) | set(v.running_ids()) | set(s.requests))
    seen = set()
    while v.has_unfinished():
        r = v.step()
        seen.update(r.scheduled)
    assert not seen & set(gone)
    assert set(v.finish_time) == {f"a{i}" for i in range(8)} - set(gone)


def _check_consistent(v: VirtualVLLM) -> None:
    s = v.scheduler
    waiting = [r.request_id for r in s.waiting]
    assert len(waiting) == len(set(waiting)) == len(s.waiting) == len(s.ewsjf_queue)
    holding = [r.request_id for r in held_waiting(s)]
    running = [r.request_id for r in s.running]
    groups = [set(waiting), set(holding), set(running)]
    assert sum(map(len, groups)) == len(set().union(*groups)), "a request is in two queues"
    assert set().union(*groups) == set(s.requests), "a live request is in no queue"


@pytest.mark.parametrize("scheduler,async_scheduling", [("ewsjf", False), ("ewsjf", True)],
                         ids=["sync", "async"])
def test_long_random_run_loses_and_duplicates_nothing(scheduler, async_scheduling):
    """10k operations: arrivals, aborts, forced preemptions and steps under a small KV cache."""
    rng = random.Random(20260101 + async_scheduling)
    v = VirtualVLLM(scheduler, num_blocks=400, block_size=16, max_num_seqs=24, max_num_batched_tokens=2048,
                    max_model_len=4096, async_scheduling=async_scheduling,
                    scheduler_kwargs={"ewsjf_config": EWSJFConfig(repartition_every=200, min_partition_samples=32,
                                                                  max_wait=2.0)})
    want: dict[str, int] = {}
    k = 0
    for op in range(10_000):
        x = rng.random()
        if x < 0.35:
            k += 1
            rid = f"x{k}"
            n = rng.choice([rng.randint(1, 50), rng.randint(200, 900), rng.randint(1800, 3500)])
            want[rid] = rng.randint(1, 80)
            v.add_request(rid, prompt_tokens=n, output_tokens=want[rid],
                          prefix_group=rng.choice([None, None, 1, 2]), prefix_tokens=rng.choice([64, 512]))
        elif x < 0.40:
            live = sorted(v.requests)
            if live:
                v.abort(rng.sample(live, min(len(live), rng.randint(1, 3))))
        elif x < 0.45:
            v.preempt()
        else:
            v.step(duration=rng.uniform(0.001, 0.05))
        if op % 97 == 0:
            _check_consistent(v)
    for _ in range(100_000):
        if not v.has_unfinished():
            break
        v.step()
    _check_consistent(v)
    assert not v.has_unfinished() and len(v.scheduler.waiting) == 0
    assert v.preemptions > 20
    assert len(v.admission_order) == len(set(v.admission_order)), "a request was admitted as new twice"
    finished, aborted = set(v.finish_time), v.aborted
    assert not finished & aborted
    assert finished | aborted == set(want), "a request was lost"
    assert all(v.output_tokens[rid] == want[rid] for rid in finished)
    stats = v.scheduler.ewsjf_stats()
    assert stats["waiting"] == 0 and stats["repartitions"] >= 1


@both
def test_every_step_admits_in_the_queues_order(asy):
    """Over a long run with arrivals, aging, repartitions and preemptions, each step's admissions from the
    waiting queue are exactly the head of EWSJF's order at that step (vLLM never reorders them)."""
    rng = random.Random(5)
    v = VirtualVLLM("ewsjf", num_blocks=600, max_num_seqs=16, max_num_batched_tokens=2048, max_model_len=4096,
                    async_scheduling=asy,
                    scheduler_kwargs={"ewsjf_config": EWSJFConfig(repartition_every=150, min_partition_samples=32,
                                                                  max_wait=1.0)})
    s = v.scheduler
    checked = 0
    for i in range(1500):
        for _ in range(rng.choice([0, 0, 1, 2])):
            n = rng.choice([rng.randint(1, 60), rng.randint(200, 800), rng.randint(1500, 3500)])
            v.add_request(f"o{i}_{rng.random():.6f}", prompt_tokens=n, output_tokens=rng.randint(1, 40))
        s.ewsjf_stats()  # feeds the last step's feedback to the cost model, as schedule() does first
        s.ewsjf_queue.begin_step(v.now)  # the order as of now (schedule() repeats this begin_step)
        expected = [r.request_id for r in s.waiting]
        r = v.step(duration=rng.uniform(0.005, 0.05))
        admitted = r.new + [rid for rid in r.resumed if rid in expected]
        if admitted and not r.preempted:
            head = expected[:len(admitted)]
            assert set(admitted) == set(head), (i, admitted, head)
            assert r.new == [rid for rid in head if rid in r.new]
            checked += 1
    assert checked > 100 and s.ewsjf_stats()["repartitions"] >= 1


def test_trace_replay_through_vllm_cuts_short_request_ttft():
    """VirtualVLLM.run replays a trace; under load EWSJF gives short requests a much lower TTFT than FCFS."""
    from ewsjf.bench.virtual_vllm import Arrival

    rng = random.Random(9)
    t, arrivals = 0.0, []
    for i in range(300):
        t += rng.expovariate(12.0)
        long = rng.random() < 0.3
        arrivals.append(Arrival(f"t{i}", t, rng.randint(2000, 4000) if long else rng.randint(10, 100),
                                rng.randint(20, 200)))
    short = [a.request_id for a in arrivals if a.prompt_tokens <= 100]
    ttft = {}
    for policy in ("fcfs", "ewsjf"):
        v = VirtualVLLM(policy, num_blocks=3000, max_num_seqs=32, max_num_batched_tokens=4096, max_model_len=8192)
        v.run(arrivals)
        assert set(v.finish_time) == {a.request_id for a in arrivals}
        assert all(v.first_token_time[a.request_id] >= a.arrival_time for a in arrivals)
        ttft[policy] = sum(v.first_token_time[r] - v.arrival_time[r] for r in short) / len(short)
    assert ttft["ewsjf"] < 0.5 * ttft["fcfs"], ttft


@both
def test_lazy_begin_step_changes_no_admission(asy):
    """begin_step deferred to the step's first peek/pop (default) admits exactly as begin_step at the start of
    every schedule() when its housekeeping (bubbles, periodic re-partition) is off and deadlines do not depend on
    when a request is committed (fcfs_wait_factor=0: deadline = arrival + max_wait); and it skips steps."""
    cfg = EWSJFConfig(max_bubbles=0, repartition_every=0, max_wait=0.5, fcfs_wait_factor=0.0)
    kw = dict(num_blocks=300, max_num_seqs=12, max_num_batched_tokens=2048, max_model_len=4096, async_scheduling=asy)
    runs = {}
    for lazy in (True, False):
        v = VirtualVLLM("ewsjf", scheduler_kwargs={"ewsjf_config": cfg, "ewsjf_options": {"lazy_begin_step": lazy}},
                        **kw)
        calls = []
        orig = v.scheduler.ewsjf_queue.begin_step
        v.scheduler.ewsjf_queue.begin_step = lambda now=None, _o=orig: (calls.append(now), _o(now))[1]
        log = []
        _drive_same_ops(v, 4, 1200, log)
        runs[lazy] = (log, v.admission_order, len(calls), v.steps)
    assert runs[True][0] == runs[False][0] and runs[True][1] == runs[False][1]
    assert runs[False][2] == runs[False][3]            # eager: once per step
    assert 0 < runs[True][2] < runs[False][2]          # lazy: only in steps that consult the waiting queue


def test_iterating_the_waiting_queue_shows_the_steps_order_before_its_first_peek():
    """With begin_step deferred to the step's first peek/pop, iterating (or indexing) the queue first must still
    show the order pops will follow at this step's time, not the previous step's."""
    t = [0.0]
    v = VirtualVLLM("ewsjf")
    waiting = EWSJFRequestQueue(EWSJFQueue(EWSJFConfig(max_wait=1.0), clock=lambda: t[0]))
    old_long = v.make_request("old-long", 5000, 4, arrival_time=0.0)
    short = v.make_request("short", 10, 4, arrival_time=0.5)
    waiting.add_request(old_long)
    waiting.add_request(short)
    waiting.start_step(0.6)
    assert waiting.peek_request() is short        # nobody past max_wait yet: the short one first
    t[0] = 1.2
    waiting.start_step(1.2)                         # old-long is past max_wait (arrival 0 + 1 s) now
    assert [r.request_id for r in waiting] == ["old-long", "short"]
    assert waiting[0] is waiting.peek_request() is old_long


@pytest.mark.parametrize("seed", range(12))
def test_random_traffic_through_the_adapter_against_a_record_of_what_waits(seed):
    """vLLM's calls on the waiting queue in random order (adds, peeks, pops, prepends of this step's pops, removals
    of waiting and unknown requests, steps, iteration and indexing): it holds exactly what was added and not taken,
    and indexing, iterating and peeking agree."""
    rng, t, v = random.Random(seed), [0.0], VirtualVLLM("ewsjf")
    cfg = EWSJFConfig(order_chunk=2, repartition_every=5, min_partition_samples=4, min_size=3,
                      initial_edges=(1.0, 64.0)) if seed % 2 else None
    queue = EWSJFRequestQueue(EWSJFQueue(cfg, clock=lambda: t[0]))
    waiting, popped = {}, []
    for op in range(200):
        r = rng.random()
        if r < 0.3:
            req = v.make_request(f"r{op}", rng.choice([3, 40, 900, 5000]), 4, arrival_time=t[0],
                                 priority=rng.choice([0, 0, 1]))
            queue.add_request(req)
            waiting[req.request_id] = req
        elif r < 0.45 and queue:
            req = queue.pop_request() if r < 0.4 else queue.peek_request()
            assert waiting[req.request_id] is req
            if r < 0.4:
                popped.append(waiting.pop(req.request_id))
        elif r < 0.55 and popped:
            batch = [popped.pop() for _ in range(min(len(popped), rng.randint(1, 3)))]
            queue.prepend_requests(batch)
            waiting.update((req.request_id, req) for req in batch)
        elif r < 0.65 and waiting:
            gone = [waiting.pop(i) for i in rng.sample(sorted(waiting), min(len(waiting), rng.randint(1, 3)))]
            queue.remove_requests(gone + [v.make_request("never-added", 5, 1)])
        elif r < 0.85:
            t[0] += rng.choice([0.0, 0.1, 1.0])
            queue.start_step(t[0])
            popped = []
        elif queue:
            order = list(queue)
            assert sorted(req.request_id for req in order) == sorted(waiting)
            assert queue[0] is order[0] is queue.peek_request()
        assert len(queue) == len(waiting) and all(queue.has_request(req) for req in waiting.values())
    rest = [queue.pop_request() for _ in range(len(queue))]
    assert sorted(req.request_id for req in rest) == sorted(waiting)


def test_a_prepend_that_raises_changes_nothing_and_errors_name_the_request():
    """prepend_requests checks every request before any goes back: a duplicate (already waiting, or given twice)
    or a bad size raises and leaves the queue as it was; a size error names the request by its id."""
    v = VirtualVLLM("ewsjf")
    waiting = v.scheduler.waiting
    waiting.add_request(v.make_request("a", 10, 2))
    fresh, again = v.make_request("fresh", 20, 2), v.make_request("again", 30, 2)
    with pytest.raises(KeyError, match="'a' is already waiting"):
        waiting.prepend_requests([fresh, v.make_request("a", 10, 2)])
    with pytest.raises(KeyError, match="'again' is already waiting"):
        waiting.prepend_requests([again, again])
    empty = v.make_request("empty", prompt_token_ids=[], output_tokens=1)   # (vLLM refuses these earlier)
    with pytest.raises(ValueError, match="request 'empty': prompt_tokens"):
        waiting.prepend_requests([fresh, empty])
    with pytest.raises(ValueError, match="request 'empty': prompt_tokens"):
        waiting.add_request(empty)
    assert [r.request_id for r in waiting] == ["a"] and len(waiting) == len(v.scheduler.ewsjf_queue) == 1
    assert not waiting.has_request(fresh) and v.scheduler.ewsjf_queue.stats()["waiting"] == 1


@both
def test_looking_at_the_waiting_queue_between_steps_changes_nothing_vllm_admits(asy):
    """Iterating or peeking the waiting queue between steps (a debug dump, a monitor, the harness' waiting_ids)
    must not run the admission round that a step which never consulted the queue skipped (lazy begin_step):
    the same traffic is admitted in the same order whether anyone looks or not."""
    def admitted(look):
        rng = random.Random(0)
        v = VirtualVLLM("ewsjf", num_blocks=512, max_num_seqs=4, max_num_batched_tokens=256, async_scheduling=asy,
                        scheduler_kwargs={"ewsjf_config": {"max_wait": 2.0, "repartition_every": 20,
                                                           "min_partition_samples": 8}})
        for step in range(300):
            for _ in range(rng.choice([0, 1, 2, 3])):
                v.add_request(f"r{v.steps}-{_}", prompt_tokens=rng.choice([5, 50, 200, 700]),
                              output_tokens=rng.choice([1, 3, 8]))
            if v.has_unfinished():
                v.step()
            if look and v.scheduler.waiting:
                assert set(v.waiting_ids()) >= {v.scheduler.waiting.peek_request().request_id}
        return v.admission_order

    assert admitted(look=True) == admitted(look=False)


def test_calls_in_unusual_orders_raise_clearly_and_change_nothing():
    """vLLM's calls on the waiting queue out of their usual order: peek/pop on an empty queue (IndexError), removal
    of a request that is not waiting (ValueError naming it; remove_requests ignores it, as vLLM calls it on both of
    its waiting queues), an id added twice (KeyError naming it); each leaves the queue, and stats(), as they were.
    A request prepended without having been popped (a preempted one is popped steps earlier) goes first."""
    v = VirtualVLLM("ewsjf")
    waiting, queue = v.scheduler.waiting, v.scheduler.ewsjf_queue
    with pytest.raises(IndexError, match="empty"):
        waiting.peek_request()
    with pytest.raises(IndexError, match="empty"):
        waiting.pop_request()
    a, b = v.make_request("a", 10, 2), v.make_request("b", 20, 2)
    waiting.add_request(a)
    waiting.add_request(b)
    popped = waiting.pop_request()
    stranger, twin = v.make_request("stranger", 5, 1), v.make_request(popped.request_id, 10, 2)

    def state():
        return [r.request_id for r in waiting], len(waiting), len(queue), queue.stats()["waiting"]

    before = state()
    for not_waiting in (stranger, popped):
        with pytest.raises(ValueError, match=f"'{not_waiting.request_id}' is not in the EWSJF waiting queue"):
            waiting.remove_request(not_waiting)
    waiting.remove_requests([stranger, popped])
    rest = waiting.peek_request()
    with pytest.raises(KeyError, match=f"'{rest.request_id}' is already waiting"):
        waiting.add_request(v.make_request(rest.request_id, 30, 2))
    assert state() == before and not waiting.has_request(stranger)
    waiting.prepend_request(stranger)
    waiting.add_request(twin)
    assert [r.request_id for r in waiting][0] == "stranger" and len(waiting) == len(queue) == 3



@both
def test_a_prefix_cache_reset_sizes_the_waiting_requests_again(asy):
    """"x" shares 992 of its 1000 prompt tokens with a finished request: queued as 8 tokens, it goes before "y" (100).
    vLLM's reset_prefix_cache drops those blocks: "x" now costs its 1000 tokens and must go after "y". It kept its
    stale size and went first."""
    v = VirtualVLLM("ewsjf", max_num_seqs=8, max_num_batched_tokens=2048, async_scheduling=asy)
    v.add_request("seed", prompt_tokens=1000, output_tokens=2, prefix_group=1, prefix_tokens=992)
    while v.has_unfinished():
        v.step()
    v.add_request("x", prompt_tokens=1000, output_tokens=2, prefix_group=1, prefix_tokens=992)
    v.add_request("y", prompt_tokens=100, output_tokens=2)
    assert [r.request_id for r in v.scheduler.waiting] == ["x", "y"]
    assert v.scheduler.reset_prefix_cache()
    assert [r.request_id for r in v.scheduler.waiting] == ["y", "x"]
    while v.has_unfinished():
        v.step()
    assert v.admission_order[1:] == ["y", "x"] and set(v.finish_time) == {"seed", "x", "y"}


@both
def test_requests_a_prefix_cache_reset_preempts_are_sized_without_the_dropped_cache(asy):
    """reset_prefix_cache(reset_running_requests=True) preempts "a" (its blocks go to the prefix cache) and then
    empties the cache: "a" recomputes all its tokens, and is counted so (it was queued as a 5-token job: the hit it
    had then)."""
    v = VirtualVLLM("ewsjf", max_num_seqs=8, max_num_batched_tokens=2048, async_scheduling=asy)
    v.add_request("a", prompt_tokens=100, output_tokens=40)
    v.step()
    assert v.scheduler.reset_prefix_cache(reset_running_requests=True)
    recompute = v.requests["a"].num_tokens
    while v.has_unfinished():
        v.step()
    assert v.scheduler.ewsjf_queue.stats()["admitted_work"] == 100 + recompute
