"""Random operation sequences against EWSJFQueue, checked against a model of what must hold:
no request lost or duplicated, strict priority classes, resume lane first, the starvation bound (oldest
first among requests past their time deadline or their due point in admission progress), and FIFO within
each queue. Small chunk and repartition settings force every slow path often; the configs alternate between
the plain bound (deadline = arrival + max_wait) and both bounds together."""

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from ewsjf.bindings import EWSJFConfig, EWSJFQueue
from ewsjf_core.progress_bound import SLACK_CAP_BACKLOGS, past_due

CONFIGS = [
    EWSJFConfig(max_wait=3.0, order_chunk=3, repartition_every=7, min_partition_samples=5, min_size=4,
                max_queues=3, initial_edges=(1.0, 64.0), max_bubbles=2, bubble_empty_rounds=2,
                fcfs_wait_factor=0.0),
    EWSJFConfig(max_wait=8.0, order_chunk=2, repartition_every=5, min_partition_samples=5, min_size=3,
                max_queues=4, initial_edges=(1.0, 64.0), max_bubbles=1, bubble_empty_rounds=1, alpha=2.0,
                fcfs_wait_factor=1.5, prior_c1=2e-3),
    EWSJFConfig(order_chunk=4, repartition_every=6, min_partition_samples=5, min_size=3, max_queues=3,
                initial_edges=(1.0, 64.0), max_bubbles=1, fcfs_wait_factor=1.25, progress_output_weight=1.0),
]
SIZES = st.one_of(st.integers(1, 40), st.integers(200, 400), st.integers(3000, 9000), st.integers(1, 20000))


class QueueMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.t = 0.0
        self.q = EWSJFQueue(CONFIGS[0], clock=lambda: self.t)
        self.step_now = None
        self.waiting = {}   # id -> (priority, arrival, insertion seq, lane seq or None, prompt)
        self.popped = []
        self.next_id = 0
        self.seq = 0

    def _new_id(self):
        self.next_id += 1
        return f"r{self.next_id}"

    @rule(size=SIZES, priority=st.sampled_from([0, 0, 0, 1, -2]), late=st.sampled_from([0.0, 0.0, 0.5, 4.0]))
    def add(self, size, priority, late):
        rid = self._new_id()
        arrival = max(0.0, self.t - late)
        self.q.add(rid, size, arrival_time=arrival, priority=priority)
        self.seq += 1
        self.waiting[rid] = (priority, arrival, self.seq, None, size)

    @rule(data=st.data(), size=SIZES, priority=st.sampled_from([0, 1]))
    def prepend(self, data, size, priority):
        if self.popped and data.draw(st.booleans()):
            rid = self.popped.pop(data.draw(st.integers(0, len(self.popped) - 1)))
        else:
            rid = self._new_id()
        self.seq += 1
        self.q.prepend(rid, size, arrival_time=max(0.0, self.t - 1.0), priority=priority)
        self.waiting[rid] = (priority, max(0.0, self.t - 1.0), self.seq, self.seq, size)

    @rule(data=st.data(), bogus=st.booleans())
    def remove(self, data, bogus):
        ids = data.draw(st.lists(st.sampled_from(sorted(self.waiting)), max_size=4)) if self.waiting else []
        if bogus:
            with pytest.raises(KeyError, match="nope"):
                self.q.remove(ids + ["nope"])
            return
        self.q.remove(ids)
        for rid in ids:
            self.waiting.pop(rid, None)

    @rule(dt=st.sampled_from([0.0, 0.1, 1.0, 5.0]))
    def begin_step(self, dt):
        self.t += dt
        self.q.begin_step()
        self.step_now = self.t

    @rule()
    def repartition(self):
        self.q.repartition()

    @rule(decode=st.sampled_from([0, 3, 400]))
    def observe_step(self, decode):
        # step feedback: feeds the cost model and the output term of the progress bound
        self.q.observe_step(0.01, 0, decode)

    @rule(which=st.integers(0, 2))
    def swap_config(self, which):
        self.q.set_config(CONFIGS[which])

    @precondition(lambda self: not self.waiting)
    @rule()
    def pop_empty(self):
        with pytest.raises(IndexError):
            self.q.pop()

    @precondition(lambda self: self.waiting)
    @rule(n=st.integers(1, 6))
    def pop(self, n):
        for _ in range(min(n, len(self.waiting))):
            rid = self.q.peek()
            self._check_choice(rid)
            assert self.q.pop() == rid
            del self.waiting[rid]
            self.popped.append(rid)

    def _check_choice(self, rid):
        prio, arrival, seq, lane, _ = self.waiting[rid]
        assert prio == min(w[0] for w in self.waiting.values()), "a more urgent class was waiting"
        same = {k: w for k, w in self.waiting.items() if w[0] == prio}
        lane_ids = [k for k, w in same.items() if w[3] is not None]
        if lane_ids:
            assert rid == max(lane_ids, key=lambda k: same[k][3]), "resume lane is a stack, served first"
            return
        now = self.step_now if self.step_now is not None else self.t
        ws = self.q._set  # white box: each request's queue and deadline
        slot_of = self.q._slot_of
        deadline = {k: ws.deadline[slot_of[k]] for k in same}
        # progress as when this order was computed (pops are synced at the next one)
        progress, progress_n, ow = ws.admitted_work, ws.admitted_n, ws.out_work

        own = self.q.config.own_size_slack

        def is_due(k):
            # own_size_slack compares a request's due point as `own` times its own prefill later (selection.py).
            s = slot_of[k]
            return now > deadline[k] or past_due(progress, progress_n, ws.due_work[s] + own * ws.prefill[s],
                                                 ws.due_n[s], ow)

        def order_key(k):   # a queue is in (deadline, arrival, insertion) order
            return deadline[k], same[k][1], same[k][2]

        heads = {}
        for k in same:
            q = ws.qid[slot_of[k]]
            if q not in heads or order_key(k) < order_key(heads[q]):
                heads[q] = k
        # Selection looks for due requests at the queue heads. Without own_size_slack that sees every due request
        # (due points grow along each queue, also across config swaps: WaitingSet._rebase_bounds); with it, a
        # request behind a larger head (more own slack) counts once it reaches the head.
        starved = [k for k in heads.values() if is_due(k)]
        qid = ws.qid[slot_of[rid]]
        head = heads[qid] == rid
        if starved and rid not in starved:
            # A bypass (ewsjf_core.selection): the head of a shorter queue goes before the oldest due request,
            # its work within bypass_share of the due request's own, never past a max_wait deadline.
            due = min(starved, key=lambda k: (same[k][1], same[k][2]))
            share = max(self.q.config.fcfs_wait_factor - 1.0, 0.0)
            if ws.backlogs[slot_of[due]] <= SLACK_CAP_BACKLOGS:   # the late share, at most the config's
                share = max(share, self.q.config.late_bypass_share)
            assert now <= deadline[due], "a request past max_wait is never bypassed"
            assert ws.q_pos[qid] < ws.q_pos[ws.qid[slot_of[due]]], "only a shorter queue bypasses"
            assert ws.prefill[slot_of[rid]] + ow <= share * (ws.prefill[slot_of[due]] + ow), \
                "a bypass stays within its share"
            assert head, "a bypass takes its queue's head"
            return
        if starved:
            assert arrival == min(same[k][1] for k in starved), "oldest starved first"
            return
        assert head, "queue order: deadline, then arrival, then insertion"

    @invariant()
    def nothing_lost_or_duplicated(self):
        assert len(self.q) == len(self.waiting)
        listed = list(self.q)
        assert len(listed) == len(set(listed)) and set(listed) == set(self.waiting)
        assert not (set(self.popped) & set(self.waiting))


TestQueueMachine = QueueMachine.TestCase
