"""EWSJFQueue driven by handles (push / pop / pop_many / remove_handles) against the same queue driven by ids:
the same trace must give the same admission order, pop for pop; and handles are checked like ids are."""

import gc
import random
import weakref

import pytest

from ewsjf.bindings import EWSJFConfig, EWSJFQueue
from ewsjf.bindings import step_pops

CONFIGS = [
    EWSJFConfig(),
    EWSJFConfig(repartition_every=120, min_partition_samples=20, order_chunk=7, max_wait=1.5, max_bubbles=2,
                bubble_empty_rounds=2, min_size=4),
    EWSJFConfig(fcfs_wait_factor=0.0, max_queues=3, initial_edges=(1.0, 64.0), repartition_every=50,
                min_partition_samples=10, order_chunk=3),
]


class _IdDriver:
    def __init__(self, q):
        self.q = q

    def add(self, rid, *fields, front=False):
        (self.q.prepend if front else self.q.add)(rid, *fields)

    def remove(self, rids):
        self.q.remove(rids)

    def pop_many(self, n):
        return [self.q.pop() for _ in range(n)]


class _HandleDriver:
    def __init__(self, q):
        self.q = q
        self.handles = {}

    def add(self, rid, *fields, front=False):
        self.handles[rid] = self.q.push(rid, *fields, front=front)

    def remove(self, rids):
        self.q.remove_handles([self.handles.pop(r) for r in rids])

    def pop_many(self, n):
        out = self.q.pop_many(n) if n != 1 else [self.q.pop()]
        for rid in out:
            assert not self.q.holds(self.handles.pop(rid))  # a popped request's handle is stale at once
        return out


def _replay(driver_cls, cfg: EWSJFConfig, seed: int) -> list:
    rng = random.Random(seed)
    t = [0.0]
    q = EWSJFQueue(cfg, clock=lambda: t[0])
    d = driver_cls(q)
    log, live, k = [], set(), 0
    for step in range(400):
        t[0] += rng.random() * 0.05
        for _ in range(rng.choice([0, 1, 2, 6])):
            k += 1
            n = rng.choice([rng.randint(5, 300), rng.randint(500, 2500), rng.randint(4000, 16000)])
            d.add(f"r{k}", n, max(0.0, t[0] - rng.choice([0.0, 0.0, 0.4])), rng.choice([0, 0, 0, 1, -1]),
                  rng.choice([0, 0, n // 2]), rng.choice([None, None, 40]))
            live.add(f"r{k}")
        q.begin_step(t[0])
        if rng.random() < 0.1 and live:
            victims = rng.sample(sorted(live), min(len(live), 3))
            d.remove(victims)
            live.difference_update(victims)
        if rng.random() < 0.2 and len(q):
            log.append(("peek", q.peek()))
        popped = d.pop_many(min(len(q), rng.choice([0, 1, 2, 9, 30])))
        log.extend(popped)
        live.difference_update(popped)
        if popped and rng.random() < 0.1:  # a preemption puts the last one back in front
            d.add(popped[-1], 100, t[0], front=True)
            live.add(popped[-1])
        q.observe_step(0.01 + rng.random() * 0.04, rng.randint(0, 8000), rng.randint(0, 256))
        if step % 150 == 75:
            q.set_config(q.config.replace(a_u=q.config.a_u * 2.0, max_queues=rng.choice([3, 4, 6])))
        if step % 97 == 0:
            s = q.stats()
            log.append((s["repartitions"], [x["depth"] for x in s["queues"]], s["fcfs_wait_estimate_s"]))
    log.append(list(q))
    return log


@pytest.mark.parametrize("cfg", CONFIGS)
@pytest.mark.parametrize("seed", [0, 1])
def test_handle_path_admits_in_the_id_path_order(cfg, seed):
    by_id = _replay(_IdDriver, cfg, seed)
    by_handle = _replay(_HandleDriver, cfg, seed)
    assert len(by_id) > 300
    assert by_handle == by_id


def test_handles_are_checked_and_never_reused():
    t = [0.0]
    q = EWSJFQueue(clock=lambda: t[0])
    a = q.push("a", 100, 0.0)
    b = q.push("b", 5000, 0.0)
    assert q.holds(a) and q.holds(b) and a in q and len(q) == 2
    with pytest.raises(KeyError, match="not waiting"):
        q.remove_handles([b, 12345])       # one unknown handle: nothing removed
    assert len(q) == 2 and q.holds(b)
    q.remove_handles([b])
    assert not q.holds(b) and len(q) == 1
    with pytest.raises(KeyError):
        q.remove_handles([b])              # removed twice
    q.begin_step(1.0)
    assert q.pop_many(5) == ["a"] and not q.holds(a)
    c = q.push("c", 100, 1.0)              # reuses a freed slot, with a new generation
    assert c != a and c != b and q.holds(c) and not q.holds(a)
    with pytest.raises(KeyError):
        q.remove_handles([a])
    assert q.pop() == "c" and len(q) == 0
    with pytest.raises(IndexError):
        q.pop()
    assert q.pop_many(3) == []
    with pytest.raises(ValueError, match="pop_many"):
        q.pop_many(-1)


def test_ids_and_handles_do_not_mix():
    q = EWSJFQueue()
    q.add("x", 10, 0.0)
    with pytest.raises(TypeError, match="driven by ids"):
        q.push("y", 10, 0.0)
    h = EWSJFQueue()
    h.push(object(), 10, 0.0)
    with pytest.raises(TypeError, match="driven by handles"):
        h.add("y", 10, 0.0)


def test_push_validates_like_add():
    q = EWSJFQueue()
    with pytest.raises(ValueError, match="prompt_tokens"):
        q.push("bad", 0, 0.0)
    with pytest.raises(ValueError, match="must not be None"):
        q.push(None, 10, 0.0)
    assert len(q) == 0


def test_an_unhashable_item_put_back_in_the_step_it_was_popped_is_not_counted_as_admitted():
    q = EWSJFQueue(clock=lambda: 10.0)
    short, other = {"rid": "short"}, {"rid": "other"}
    q.push(short, 100, arrival_time=1.0)
    q.push(other, 300, arrival_time=2.0)
    q.begin_step()
    assert q.pop() is short
    q.push(short, 100, arrival_time=1.0, front=True)   # the step's budget did not fit it after all
    assert q.pop() is short and q.pop() is other
    q.begin_step()
    q.settle()
    assert len(q) == 0 and q.admitted_work == 400.0   # each counted once


def test_push_takes_unhashable_items_whatever_its_other_fields():
    q = EWSJFQueue(clock=lambda: 10.0)
    a, b = ["a"], {"rid": "b"}
    q.push(a, 100, arrival_time=1.0)                                  # well-typed fields
    q.push(b, 100, arrival_time=2, predicted_output_tokens=5)         # fields validated the long way
    with pytest.raises(ValueError, match="None"):
        q.push(None, 10, arrival_time=0.0)                            # None stands for a free slot
    assert len(q) == 2
    q.begin_step()
    assert q.pop_many(3) == [a, b]


_FUZZ_CONFIGS = [
    EWSJFConfig(order_chunk=3, repartition_every=7, min_partition_samples=5, min_size=4, max_queues=3,
                initial_edges=(1.0, 64.0), max_bubbles=2),
    EWSJFConfig(),
    EWSJFConfig(kv_work_weight=0.0, fcfs_wait_factor=2.0),
]


class _HandleFuzz:
    """Random engine traffic by handle, items unhashable half the time, with the engine's own record of what
    waits (by object identity) to compare the queue with."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.t = 0.0
        self.q = EWSJFQueue(_FUZZ_CONFIGS[seed % 3], clock=lambda: self.t)
        self.waiting: dict[int, tuple[object, int]] = {}   # id(item) -> (item, handle)
        self.popped_this_step: list = []

    def push(self, op: int) -> None:
        rng = self.rng
        item = {"n": op} if rng.random() < 0.5 else [op]
        h = self.q.push(item, rng.choice([5, 50, 500, 5000, 20000]), arrival_time=self.t,
                        priority=rng.choice([0, 0, 1]), cached_tokens=rng.choice([0, 0, 3]),
                        predicted_output_tokens=rng.choice([None, 10]))
        self.waiting[id(item)] = (item, h)

    def pop(self) -> None:
        n = self.rng.randint(1, 5)
        got = self.q.pop_many(n) if self.rng.random() < 0.5 else [self.q.pop() for _ in range(min(n, len(self.q)))]
        for item in got:
            del self.waiting[id(item)]   # KeyError: popped twice, or never pushed
            self.popped_this_step.append(item)

    def put_back(self) -> None:
        item = self.popped_this_step.pop(self.rng.randrange(len(self.popped_this_step)))
        self.waiting[id(item)] = (item, self.q.push(item, 50, arrival_time=max(0.0, self.t - 1), front=True))

    def remove(self) -> None:
        _, h = self.waiting.pop(self.rng.choice(list(self.waiting)))
        self.q.remove_handles([h])

    def step(self) -> None:
        self.t += self.rng.choice([0.0, 0.05, 1.0])
        self.q.begin_step(self.t)
        self.popped_this_step = []

    def run(self, ops: int) -> None:
        q, rng = self.q, self.rng
        for op in range(ops):
            r = rng.random()
            if r < 0.35:
                self.push(op)
            elif r < 0.55 and len(q):
                self.pop()
            elif r < 0.62 and self.popped_this_step:
                self.put_back()
            elif r < 0.68 and self.waiting:
                self.remove()
            elif r < 0.85:
                self.step()
            elif r < 0.9:
                q.observe_step(0.02, rng.choice([0, 100]), rng.choice([0, 20]))
            elif r < 0.93:
                q.observe_finished(rng.choice([10, 500]), rng.choice([0, 30]))
            elif r < 0.96:
                q.set_config(_FUZZ_CONFIGS[rng.randrange(3)])
            else:
                assert len(list(q)) == len(self.waiting) and all(q.holds(h) for _, h in self.waiting.values())
            assert len(q) == len(self.waiting)


@pytest.mark.parametrize("seed", range(40))
def test_random_handle_traffic_loses_and_duplicates_nothing(seed):
    fuzz = _HandleFuzz(seed)
    fuzz.run(400)
    rest = fuzz.q.pop_many(len(fuzz.q) + 3)
    assert sorted(map(id, rest)) == sorted(fuzz.waiting)


def test_popped_requests_are_not_kept_alive_when_the_engine_never_begins_a_step(monkeypatch):
    class Request:
        pass

    monkeypatch.setattr(step_pops, "MAX_POPS", 64)   # the bound's size does not matter here; its existence does
    q = EWSJFQueue(clock=lambda: 1.0)
    first = Request()
    q.push(first, 10, arrival_time=0.0)
    assert q.pop() is first
    alive = weakref.ref(first)
    del first
    for i in range(step_pops.MAX_POPS + 1):   # an engine that pops without begin_step (or end_pops)
        q.push(Request(), 10, arrival_time=0.0)
        q.pop()
    gc.collect()
    assert alive() is None
