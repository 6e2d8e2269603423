"""StepBuilder: token budget, chunked prefill, full-sequence admission, preemption (vLLM v1's schedule())."""

from __future__ import annotations

from collections import deque

import numpy as np

from ewsjf_core.sim import Workload
from ewsjf_core.sim.block_manager import BlockManager
from ewsjf_core.sim.request_table import RequestTable
from ewsjf_core.sim.running import RunningSet
from ewsjf_core.sim.step_builder import StepBuilder


class FifoQueue:
    def __init__(self):
        self.q = deque()
        self.prepended = []
        self.begun = []
        self.ended = 0

    def begin_step(self, now):
        self.begun.append(now)

    def end_pops(self):
        self.ended += 1

    def add(self, rid, *a):
        self.q.append(rid)

    def prepend(self, rid, prompt, arrival, priority, cached, predicted):
        self.prepended.append((rid, prompt, cached))
        self.q.appendleft(rid)

    def peek(self):
        return self.q[0]

    def pop(self):
        return self.q.popleft()


def builder(prompts, outputs, *, kv=1000, budget=512, reserve=True, max_running=8, threshold=0, share=0.0,
            watermark=0):
    n = len(prompts)
    w = Workload(np.zeros(n), np.array(prompts), np.array(outputs))
    req = RequestTable(w, False)
    run = RunningSet(n, 16)
    bm = BlockManager(kv, 16, n, None, self_cache=True)
    q = FifoQueue()
    b = StepBuilder(q, run, bm, req, token_budget=budget, max_running=max_running, chunked_prefill=True,
                    oracle_output=False, reserve_full_sequence=reserve, long_prefill_token_threshold=threshold,
                    waiting_head_share=share, watermark_blocks=watermark)
    for i in range(n):
        q.add(i)
        b.waiting += 1
    return b, q


def test_admission_fills_the_budget_with_chunks_in_queue_order():
    b, _ = builder([300, 400, 50], [5, 5, 5], budget=512)
    chunks, pf, _, dec, _, preempted = b.build(0, 0.0)
    assert chunks == [(0, 300), (1, 212)] and pf == 512 and dec == 0 and not preempted
    assert b.waiting == 1 and b.running.prefilling == [0, 1]
    assert b.blocks.held == [19, 14, 0]          # blocks for the first chunk only


def test_the_queue_step_begins_only_when_the_queue_is_consulted():
    # As vLLM's adapter (lazy_begin_step): begin_step(now) before the step's first peek, never in a step
    # whose budget the running prefill takes whole.
    b, q = builder([1000, 100], [5, 5], budget=512, max_running=8)
    b.build(0, 0.0)
    assert q.begun == [0.0]
    b.running.computed[0] += 512
    b.token_budget = 488                         # request 0's remaining prompt takes the whole budget
    b.build(1, 0.1)
    assert q.begun == [0.0]
    b.token_budget = 600
    b.running.computed[0] = 512
    b.build(2, 0.2)
    assert q.begun == [0.0, 0.2]
    assert q.ended == 3                          # every step ends the previous steps' pops, begun or not


def test_running_prefill_continues_before_admissions():
    b, _ = builder([1000, 100], [5, 5], budget=512)
    b.build(0, 0.0)
    b.running.computed[0] += 512                 # what the engine does when the step ran
    chunks, *_ = b.build(1, 0.1)
    assert chunks == [(0, 488), (1, 24)]


def test_long_prefill_threshold_caps_every_chunk_unless_one_request_is_eligible():
    # vLLM's long_prefill_token_threshold: running and newly admitted prefills get at most 200 tokens a step.
    b, _ = builder([1000, 300], [5, 5], budget=512, threshold=200)
    chunks, *_ = b.build(0, 0.0)
    assert chunks == [(0, 200), (1, 200)]
    alone, _ = builder([1000], [5], budget=512, threshold=200)
    chunks, *_ = alone.build(0, 0.0)
    assert chunks == [(0, 512)]                  # nobody to starve: the whole budget


def test_head_share_leaves_the_next_request_room_beside_a_running_prefill():
    for share, expect in ((0.0, [(0, 512)]), (0.5, [(0, 412), (1, 100)])):
        b, q = builder([2000, 100, 100], [5, 5, 5], budget=512, share=share)
        b.build(0, 0.0)                          # request 0 admitted: its first chunk
        b.running.computed[0] += 512
        chunks, *_ = b.build(1, 0.1)
        assert chunks == expect                  # only the head gets room: request 2 waits
        assert q.begun == [0.0, 0.1] if share else q.begun == [0.0]


def test_head_share_keeps_the_budget_when_the_head_is_long_or_has_no_slot():
    # The head needs more than the share (300 > 0.5 * 512): the prefill keeps the budget.
    b, _ = builder([2000, 300], [5, 5], budget=512, share=0.5)
    b.build(0, 0.0)
    b.running.computed[0] += 512
    chunks, *_ = b.build(1, 0.1)
    assert chunks == [(0, 512)]
    # The head cannot be admitted (no running slot free): no room is left for it (the batch stays full).
    b, _ = builder([2000, 100], [5, 5], budget=512, share=0.5, max_running=1)
    b.build(0, 0.0)
    b.running.computed[0] += 512
    chunks, *_ = b.build(1, 0.1)
    assert chunks == [(0, 512)]


def test_full_sequence_must_fit_to_be_admitted():
    # 50 free blocks: request 0's first chunk (32 blocks) fits, its whole prompt (63 blocks) does not.
    b, _ = builder([1000], [5], kv=80, budget=512)
    b.blocks.allocate(30)
    chunks, *_ = b.build(0, 0.0)
    assert chunks == [] and b.waiting == 1
    b2, _ = builder([1000], [5], kv=80, budget=512, reserve=False)
    b2.blocks.allocate(30)
    chunks, *_ = b2.build(0, 0.0)
    assert chunks == [(0, 512)]


def test_a_watermark_keeps_blocks_free_when_admitting_beside_running_requests():
    # 100 blocks. Request 0 (40 blocks) is admitted first: nothing runs yet, so the watermark does not apply.
    # Request 1 (40 blocks) would leave 20 free: admitted without a watermark, held with a watermark of 30.
    for watermark, admitted in ((0, [0, 1]), (30, [0])):
        b, _ = builder([640, 640], [5, 5], kv=100, budget=2048, watermark=watermark)
        chunks, *_ = b.build(0, 0.0)
        assert [rid for rid, _ in chunks] == admitted, watermark
        assert b.waiting == 2 - len(admitted)


def test_the_head_share_keeps_no_room_for_a_head_the_watermark_keeps_out():
    # Request 0 (2000 tokens) prefills and holds 32 of 140 blocks; the short request 1 (4 blocks) fits the free
    # ones, but not beside a watermark of 110: request 0 keeps the whole budget, as in the vLLM adapter.
    for watermark, second in ((0, [(0, 462), (1, 50)]), (110, [(0, 512)])):
        b, _ = builder([2000, 50], [5, 5], kv=140, budget=512, share=0.25, watermark=watermark)
        assert b.build(0, 0.0)[0] == [(0, 512)]
        b.running.computed[0] = 512
        assert b.build(1, 0.1)[0] == second, watermark


def test_the_head_share_keeps_no_room_for_a_head_the_capped_prefill_leaves_no_blocks_for():
    # 31 blocks; request 0 (480 tokens, 30 blocks) holds 16 after its first chunk, so the short request 1 (4 blocks)
    # fits the 15 free ones, but not beside the 12 that request 0's capped chunk (192 tokens) takes in the same
    # step: request 0 keeps the whole budget (224, all it has left), as with the share off (tests/integrations/
    # vllm/test_head_share.py builds the same case in vLLM's scheduler).
    for share in (0.0, 0.25):
        b, _ = builder([480, 64], [2, 2], kv=31, budget=256, share=share)
        assert b.build(0, 0.0)[0] == [(0, 256)]
        b.running.computed[0] = 256
        assert b.build(1, 0.1)[0] == [(0, 224)], share


def test_with_two_running_prefills_every_capped_chunk_leaves_the_head_its_tokens():
    # The threshold (400) admits request 1 beside request 0; the short request 2 arrives after that step. The
    # cap was the budget less its 100 tokens, 412: request 0 took 400, request 1 the other 112, request 2 nothing.
    # Shared out, each prefill gets 206 and the head its 100 (vllm/test_head_share.py: the same case in vLLM).
    for share, second in ((0.0, [(0, 400), (1, 112)]), (0.25, [(0, 206), (1, 206), (2, 100)])):
        b, q = builder([1000, 2000, 100], [2, 2, 2], budget=512, threshold=400, share=share)
        q.q.remove(2)
        b.waiting -= 1
        assert b.build(0, 0.0)[0] == [(0, 400), (1, 112)]
        b.running.computed[0], b.running.computed[1] = 400, 112
        q.add(2)
        b.waiting += 1
        assert b.build(1, 0.1)[0] == second, share


def test_the_head_share_leaves_no_cap_that_would_cut_the_head_itself():
    # Three prefills leave the head (200 tokens, within a share of 0.5) its room only with chunks of 104 tokens; a
    # cap of 104 would cut the head's chunk as well, leaving 96 tokens of the budget unused, so no cap is set and
    # the prefills keep the budget (as without the share).
    b, q = builder([1000, 1000, 1000, 200], [2, 2, 2, 2], budget=512, threshold=200, share=0.5)
    q.q.remove(3)
    b.waiting -= 1
    assert b.build(0, 0.0)[0] == [(0, 200), (1, 200), (2, 112)]
    b.running.computed[0], b.running.computed[1], b.running.computed[2] = 200, 200, 112
    q.add(3)
    b.waiting += 1
    assert b.build(1, 0.1)[0] == [(0, 200), (1, 200), (2, 112)]


def test_preemption_takes_the_last_admitted_and_stops_admissions():
    b, q = builder([200, 200, 100], [50, 50, 5], kv=26, budget=512, reserve=False)
    chunks, *_ = b.build(0, 0.0)                 # 0 and 1 admitted whole (13 blocks each), 2 waits
    assert [c[0] for c in chunks] == [0, 1] and b.blocks.used == 26
    run = b.running
    for rid in (0, 1):                           # both prefills complete: they decode from step 1
        run.computed[rid] = 200
        run.gen[rid] = 1
        run.start_decoding(rid, 1, 200, 50)
    # Step 9: both decoders need a new block (context 208 tokens), none is free.
    assert run.decode_blocks_needed(9) == 2
    chunks, pf, _, dec, _, preempted = b.build(9, 1.0)
    assert preempted and dec == 1 and chunks == []
    assert list(run.order) == [0] and q.prepended[0][0] == 1
    assert q.peek() == 1 and b.waiting == 2      # the victim is first in line; 2 was not admitted
    assert b.blocks.used == 14                   # request 0's 13 blocks plus its new one


def test_held_by_names_what_stopped_admissions():
    b, _ = builder([300, 400, 50], [5, 5, 5], budget=512)
    b.build(0, 0.0)
    assert b.held_by == "budget"                 # the first two took the whole budget
    b, _ = builder([10, 10, 10], [5, 5, 5], max_running=2)
    b.build(0, 0.0)
    assert b.held_by == "cap"
    b, _ = builder([1000, 10], [5, 5], kv=80)
    b.blocks.allocate(30)
    b.build(0, 0.0)
    assert b.held_by == "kv"                     # the head's whole prompt does not fit the free blocks
    b, _ = builder([10, 10], [5, 5])
    b.build(0, 0.0)
    assert b.held_by == ""                       # everything admitted: nothing waits


def test_held_by_a_preemption():
    b, _ = builder([200, 200, 100], [50, 50, 5], kv=26, budget=512, reserve=False)
    b.build(0, 0.0)
    run = b.running
    for rid in (0, 1):
        run.computed[rid] = 200
        run.gen[rid] = 1
        run.start_decoding(rid, 1, 200, 50)
    b.build(9, 1.0)
    assert b.held_by == "preempt"
