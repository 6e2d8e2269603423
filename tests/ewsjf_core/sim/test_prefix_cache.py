"""The prefix cache at vLLM's block granularity (ewsjf_core/sim/prefix_cache.py, through BlockManager): full
16-token blocks named by (ids[0..i], offset), hit from the prompt's start, evicted in free-queue order; and a
randomized comparison with a literal per-block model of the same rules."""

from __future__ import annotations

import random
from collections import deque

import pytest

from ewsjf_core.sim.block_manager import BlockManager
from ewsjf_core.sim.free_queue import FreeQueue
from ewsjf_core.sim.prefix_cache import PrefixCache

BS = 16
HB = 512 // BS   # blocks per prefix id


def manager(ids, prompts, total=40 * HB):
    return BlockManager(total, BS, len(ids), ids, True, prompts)


def compute(bm, rid, tokens):
    """rid computes its prompt up to `tokens` (its blocks allocated, full blocks cached)."""
    bm.allocate_for(rid, -(-tokens // BS) - bm.shared[rid] - bm.held[rid])
    bm.cache_prompt(rid, tokens)


def test_prompt_ending_mid_id_hits_the_full_blocks_another_request_computed_of_that_id():
    bm = manager([[1, 2, 3], [1, 2]], [1024 + 300, 512 + 410])
    compute(bm, 0, 1024 + 300)
    assert bm.shared[0] == 2 * HB + 300 // BS   # the full blocks of its last id are cached too
    assert bm.prefix_hit(1, 512 + 410) == HB + 410 // BS   # 25 blocks of id 2; its last 10 tokens not


def test_a_prompt_that_ends_mid_id_caches_that_ids_full_blocks_for_a_longer_prompt():
    bm = manager([[1, 2], [1, 2, 3]], [512 + 200, 1536])
    compute(bm, 0, 512 + 200)
    bm.free(0, bm.held[0], 512 + 200)
    assert bm.prefix_hit(1, 1536) == HB + 200 // BS   # 12 full blocks of id 2; the 8 tokens after them not


def test_the_partial_last_block_is_never_cached_nor_hit():
    bm = manager([[7], [7]], [100, 512])
    compute(bm, 0, 100)
    assert bm.shared[0] == 6 and bm.held[0] == 1   # 6 full blocks, the 7th (4 tokens) stays private
    bm.free(0, bm.held[0], 100)
    assert bm.prefix_hit(1, 512) == 6


def test_the_hit_leaves_one_token_to_compute():
    bm = manager([[1, 2], [1, 2]], [1024, 1024])
    compute(bm, 0, 1024)
    assert bm.prefix_hit(1, 1024) == 2 * HB - 1 and bm.prefix_hit(1, 1025) == 2 * HB


def test_the_same_id_after_different_ids_is_different_content():
    bm = manager([[1, 2], [9, 2], [1, 2]], [1024, 1024, 1024])
    compute(bm, 0, 1024)
    assert bm.prefix_hit(1, 1024) == 0 and bm.prefix_hit(2, 1024) == 2 * HB - 1


def test_eviction_takes_an_ids_last_blocks_first_and_its_leading_blocks_stay_hittable():
    bm = manager([[1, 2], [1, 2], [3]], [1024, 1024, 512], total=3 * HB)
    compute(bm, 0, 1024)
    bm.free(0, 0, 1024)                  # freed tail first: id 2's blocks 31..0, then id 1's 31..0
    bm.allocate_for(2, HB + 10)          # the HB never-used blocks, then id 2's last 10 blocks
    assert bm.prefix_hit(1, 1024) == HB + HB - 10
    assert bm.evictable_in_hit(1, HB + 5) == HB + 5
    bm.pin(1, HB + 5)                    # the hit leaves the free queue; the 17 blocks after it stay there
    assert bm.used == HB + 10 + HB + 5
    bm.allocate(HB - 10 - 5)             # reuses exactly those
    assert bm.prefix_hit(1, 1024) == HB + 5 and bm.cached_blocks == HB + 5


def test_a_block_another_request_computed_first_stays_private():
    bm = manager([[1], [1]], [512, 512])
    compute(bm, 0, 256)
    compute(bm, 1, 512)   # admitted before request 0's blocks were cached: computes its own copy
    assert bm.shared[1] == 0 and bm.held[1] == HB
    compute(bm, 0, 512)
    assert bm.shared[0] == HB


def test_pin_of_blocks_not_cached_is_an_error():
    pc = PrefixCache(FreeQueue(100, 1 << 60), BS, [[1], [1]], [512, 512])
    with pytest.raises(RuntimeError, match="not all cached"):
        pc.pin(1, 3)


def test_block_size_must_divide_the_id_size():
    with pytest.raises(ValueError, match="block_size"):
        PrefixCache(FreeQueue(100, 1 << 60), 48, [[1]], [512])


class BlockModel:
    """The same rules kept block by block (a KV block object per block, vLLM's way): the reference."""

    def __init__(self, total, bs, ids, prompts):
        self.bs, self.pp = bs, 512 // bs
        self.queue = deque([None, 0] for _ in range(total))   # [key, refs]
        self.cache: dict = {}
        self.ids, self.span = ids, [min(len(i) * self.pp, p // bs) for i, p in zip(ids, prompts)]
        self.shared = [[] for _ in ids]
        self.private = [[] for _ in ids]

    def key(self, rid, b):
        return tuple(self.ids[rid][:b // self.pp + 1]), b % self.pp

    def hit(self, rid, total):
        n, limit = 0, min((total - 1) // self.bs, self.span[rid])
        while n < limit and self.key(rid, n) in self.cache:
            n += 1
        return n

    def pin(self, rid, n):
        for b in range(n):
            blk = self.cache[self.key(rid, b)]
            if blk[1] == 0:
                self.queue.remove(blk)
            blk[1] += 1
            self.shared[rid].append(blk)

    def allocate(self, k):
        out = []
        for _ in range(k):
            blk = self.queue.popleft()
            if blk[0] is not None:
                del self.cache[blk[0]]
            blk[0], blk[1] = None, 1
            out.append(blk)
        return out

    def cache_prompt(self, rid, tokens):
        for b in range(len(self.shared[rid]), min(tokens // self.bs, self.span[rid])):
            k = self.key(rid, b)
            if k in self.cache:
                break
            blk = self.private[rid].pop(0)
            blk[0] = k
            self.cache[k] = blk
            self.shared[rid].append(blk)

    def free(self, rid, computed):
        """Full (computed) blocks to the queue's tail, last first; the others to its front."""
        blocks = self.shared[rid] + self.private[rid]
        for i in range(len(blocks) - 1, -1, -1):
            blk = blocks[i]
            blk[1] -= 1
            if blk[1] == 0:
                if i < computed // self.bs:
                    self.queue.append(blk)
                else:
                    self.queue.appendleft(blk)
        self.shared[rid], self.private[rid] = [], []


@pytest.mark.parametrize("seed", range(40))
def test_counts_agree_with_a_block_by_block_model(seed):
    rng = random.Random(seed)
    bs, total, n = 128, 60, 40    # 4 blocks per id: evictions cut ids often
    docs = [[100 * d + j for j in range(6)] for d in range(3)]
    ids, prompts = [], []
    for r in range(n):
        own = [10_000 + 10 * r + j for j in range(rng.randint(0, 2))]
        ids.append(rng.choice(docs)[:rng.randint(1, 6)] + own)
        prompts.append(512 * len(ids[-1]) - rng.randint(0, 511))
    bm, ref = BlockManager(total, bs, n, ids, True, prompts), BlockModel(total, bs, ids, prompts)
    done = [0] * n      # prompt tokens computed; -1: finished
    running: list[int] = []
    for _ in range(400):
        free = total - bm.used
        assert free == len(ref.queue)
        waiting = [r for r in range(n) if done[r] == 0 and r not in running]
        op = rng.random()
        if waiting and op < 0.35:
            r = rng.choice(waiting)
            h = bm.prefix_hit(r, prompts[r])
            assert h == ref.hit(r, prompts[r])
            if -(-prompts[r] // bs) - h + bm.evictable_in_hit(r, h) > free:
                continue
            bm.pin(r, h)
            ref.pin(r, h)
            running.append(r)
            done[r] = h * bs
        elif running and op < 0.8:
            r = rng.choice(running)
            upto = min(prompts[r], done[r] + rng.randint(1, 700))
            k = -(-upto // bs) - bm.shared[r] - bm.held[r]
            if k > free:
                continue
            bm.allocate_for(r, k)
            ref.private[r] += ref.allocate(k)
            bm.cache_prompt(r, upto)
            ref.cache_prompt(r, upto)
            assert bm.shared[r] == len(ref.shared[r]) and bm.held[r] == len(ref.private[r])
            done[r] = upto
        elif running:
            r = running.pop(rng.randrange(len(running)))
            bm.free(r, bm.held[r], done[r])
            ref.free(r, done[r])
            done[r] = -1
        for r in range(n):
            if done[r] == 0 and r not in running:
                assert bm.prefix_hit(r, prompts[r]) == ref.hit(r, prompts[r]), (seed, r)
        assert bm.cached_blocks == len(ref.cache)
