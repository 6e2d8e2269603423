"""BlockManager: counts, the FIFO free queue (eviction in free order), prefix ids, preempted requests' blocks.
The block-granular prefix-cache rules themselves: test_prefix_cache.py."""

from __future__ import annotations

from ewsjf_core.sim.block_manager import UNLIMITED, BlockManager

HB = 512 // 16  # engine blocks per prefix id


def manager(total=10 * HB, ids=None, n=4, self_cache=True, prompts=None):
    if ids is not None and prompts is None:
        prompts = [512 * len(x) for x in ids]
    return BlockManager(total, 16, n if ids is None else len(ids), ids, self_cache, prompts)


def test_allocate_and_free_count_blocks():
    bm = manager(total=100)
    bm.allocate_for(0, 30)
    bm.allocate(5)
    assert bm.used == 35 and bm.held[0] == 30
    bm.free(0, 30, 30 * 16)
    assert bm.used == 5 and bm.held[0] == 0


def test_prefix_ids_cached_as_computed_and_hit_with_one_token_left():
    ids = [[1, 2, 3], [1, 2, 3], [1, 2, 9]]
    bm = manager(ids=ids)
    bm.allocate_for(0, 2 * HB)
    bm.cache_prompt(0, 1024)             # two full ids computed so far (mid-prefill)
    assert bm.shared[0] == 2 * HB and bm.held[0] == 0
    assert bm.prefix_hit(1, 1536) == 2 * HB        # the third is not computed yet
    assert bm.prefix_hit(2, 1024) == 2 * HB - 1    # capped: one token must be computed
    assert bm.prefix_hit(2, 2000) == 2 * HB


def test_unreferenced_ids_stay_cached_until_the_free_queue_reuses_them():
    ids = [[1, 2], [3], [1, 2]]
    bm = manager(total=4 * HB, ids=ids)
    bm.allocate_for(0, 2 * HB)
    bm.cache_prompt(0, 1024)
    bm.free(0, 0, 1024)
    assert bm.used == 0 and bm.cached_blocks == 2 * HB
    # The free queue still has 2 * HB blocks never used ahead of them: allocating those evicts nothing.
    bm.allocate_for(1, 2 * HB)
    assert bm.prefix_hit(2, 2000) == 2 * HB
    # One more block reuses the oldest freed block: id 2's last (freed first, tail first); then id 1's.
    bm.free(1, 2 * HB, 2 * HB * 16)
    bm.allocate(1)
    assert bm.prefix_hit(2, 2000) == 2 * HB - 1
    bm.allocate(HB)
    assert bm.prefix_hit(2, 2000) == HB - 1
    bm.allocate(HB - 1)
    assert bm.prefix_hit(2, 2000) == 0


def test_pin_takes_a_hit_out_of_the_free_queue():
    ids = [[1], [1], [2]]
    bm = manager(total=2 * HB, ids=ids)
    bm.allocate_for(0, HB)
    bm.cache_prompt(0, 512)
    bm.free(0, 0, 512)
    assert bm.evictable_in_hit(1, HB) == HB
    bm.pin(1, HB)
    assert bm.used == HB and bm.shared[1] == HB and bm.evictable_in_hit(1, HB) == 0
    bm.allocate_for(2, HB)               # the only free block range left; id 1 is safe
    assert bm.prefix_hit(1, 600) == HB
    bm.unpin(1)
    assert bm.used == HB


def test_preempted_request_hits_its_own_blocks_until_reused():
    bm = manager(total=100, ids=None)
    bm.allocate_for(0, 10)
    bm.free_preempted(0, 10, computed_tokens=150)   # 9 full blocks computed
    assert bm.stash_hit(0, 160, 0) == 9
    assert bm.stash_hit(0, 100, 0) == 6              # one token left to compute
    # Its partial block went to the queue's front, its 9 full ones to the tail (last first): allocation takes
    # the partial one, the 90 fresh blocks, then 2 of the full ones.
    bm.allocate(1 + 90 + 2)
    assert bm.stash_hit(0, 160, 0) == 7
    bm.readmit(0, 7)
    assert bm.used == 93 + 7 and bm.held[0] == 7 and 0 not in bm.stash


def test_preempted_request_loses_own_blocks_when_its_prefix_hit_changed():
    ids = [[1, 2], [5]]
    bm = manager(total=200, ids=ids)
    bm.allocate_for(0, 2 * HB + 20)
    bm.cache_prompt(0, 1024)
    bm.free_preempted(0, 20, computed_tokens=1024 + 320)
    assert bm.stash_hit(0, 2000, 2 * HB) == 20
    assert bm.stash_hit(0, 2000, HB) == 0            # the block-hash chain is broken


def test_blocks_without_content_are_reused_before_cached_ones():
    bm = manager(total=2 * HB, ids=[[1], [1]], prompts=[500, 512])
    bm.allocate_for(0, HB)
    bm.cache_prompt(0, 500)              # 31 full blocks cached, the 32nd (4 tokens) private
    bm.free(0, 1, 500)                   # its partial block goes to the queue's front
    bm.allocate(HB + 1)                  # the HB never-used blocks and that one: nothing cached is lost
    assert bm.prefix_hit(1, 512) == 31


def test_without_prefix_caching_freed_blocks_keep_nothing():
    bm = manager(total=20, self_cache=False)
    bm.allocate_for(0, 10)
    bm.free_preempted(0, 10, computed_tokens=160)
    assert 0 not in bm.stash and bm.used == 0


def test_unlimited_cache_never_evicts():
    bm = manager(total=UNLIMITED, ids=[[1], [1]])
    bm.allocate_for(0, HB)
    bm.cache_prompt(0, 512)
    bm.free(0, 0, 512)
    bm.allocate(10 ** 6)
    assert bm.prefix_hit(1, 600) == HB
