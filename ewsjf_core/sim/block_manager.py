"""The KV cache of one simulated engine, in block counts: allocation, the prefix cache, eviction.

A model of vLLM v1's KVCacheManager + BlockPool that keeps counts instead of block objects, so that a step
costs O(requests touched), not O(blocks):

- `used` blocks are taken (private blocks of running requests, decode blocks, and prefix-cache blocks,
  referenced or not); `total - used` are free.
- Prefix cache of prefix-block ids (workloads with `prefix_blocks`): id -> reference count; an id stands
  for `per_prefix` engine blocks. A request pins the leading ids it hits; unreferenced ids wait in an LRU
  and are evicted (oldest first) only when an allocation needs their space, as vLLM's free queue does.
- Self cache (prefix caching on, no prefix ids): a preempted request's full blocks are freed but keep their
  content in the free queue (FIFO: allocation takes the oldest freed first) until overwritten; the request
  hits the leading ones still there when it comes back. Positions in that queue are counted:
  `_alloc_head` = blocks allocated so far, `_free_tail` = end of the queue, `_holes` = ranges taken out of
  the queue by a hit (allocation skips them).

Per request: `held[rid]` private blocks (prefilling requests), `shared[rid]` blocks referenced through
the prefix cache. Only this class changes them.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict

from .workload import PREFIX_BLOCK_TOKENS

UNLIMITED = 1 << 60


class BlockManager:

    __slots__ = ('total', 'block_size', 'per_prefix', 'used', 'held', 'shared', '_hashes', '_refs', '_cache', '_lru', 'self_cache', '_stash', '_holes', '_alloc_head', '_free_tail')
    def __init__(self, total_blocks: int, block_size: int, n_requests: int,
                 prefix_ids: list[list[int]] | None, self_cache: bool) -> None:
        self.total = total_blocks
        self.block_size = block_size
        self.per_prefix = PREFIX_BLOCK_TOKENS // block_size
        """Engine blocks per prefix-block id."""
        self.used = 0
        self.held = [0] * n_requests
        self.shared = [0] * n_requests
        self._hashes = prefix_ids
        self._refs: list[list[int]] = [[] for _ in range(n_requests)] if prefix_ids is not None else []
        self._cache: dict[int, int] = {}
        self._lru: OrderedDict[int, None] = OrderedDict()
        self.self_cache = self_cache
        self._stash: dict[int, tuple[int, int]] = {}   # rid -> (queue position after its blocks, full blocks)
        self._holes: list[tuple[int, int]] = []
        self._alloc_head = 0
        self._free_tail = total_blocks if total_blocks < (UNLIMITED >> 1) else 0

    # ------------------------------------------------------------------ queries
    @property
    def cached_blocks(self) -> int:
        """Engine blocks held by the prefix-id cache (referenced or evictable)."""
        return len(self._cache) * self.per_prefix

    def prefix_hit(self, rid: int, total_tokens: int) -> int:
        """Leading prefix ids of `rid` cached now (count), capped so that one token is left to compute."""
        if self._hashes is None:
            return 0
        cache = self._cache
        k = 0
        for h in self._hashes[rid]:
            if h in cache:
                k += 1
            else:
                break
        return min(k, (total_tokens - 1) // PREFIX_BLOCK_TOKENS)

    def stash_hit(self, rid: int, total_tokens: int) -> int:
        """Blocks of preempted `rid` still intact in the free queue (the leading ones not reused since)."""
        endpos, full = self._stash[rid]
        s = min(full, endpos - self._alloc_head, (total_tokens - 1) // self.block_size)
        return s if s > 0 else 0

    # ------------------------------------------------------------------ allocation
    def make_room(self, need: int) -> bool:
        """Evict unreferenced prefix ids until `need` blocks are free; whether they are."""
        if self.total - self.used >= need:
            return True
        lru, cache = self._lru, self._cache
        while lru and self.total - self.used < need:
            h, _ = lru.popitem(last=False)
            del cache[h]
            self.used -= self.per_prefix
        return self.total - self.used >= need

    def allocate(self, k: int) -> None:
        """Take k free blocks (the caller checked they are free)."""
        self.used += k
        if self._holes:
            self._skip_holes(k)
        else:
            self._alloc_head += k

    def allocate_for(self, rid: int, k: int) -> None:
        """Take k free blocks as rid's private blocks."""
        self.used += k
        self.held[rid] += k
        if self._holes:
            self._skip_holes(k)
        else:
            self._alloc_head += k

    def _skip_holes(self, k: int) -> None:
        """Advance the free-queue head by k blocks, skipping positions that left the queue."""
        h = self._alloc_head
        holes = self._holes
        while holes and holes[0][0] <= h + k:
            s0, e0 = heapq.heappop(holes)
            if e0 <= h:
                continue
            if s0 > h:
                k -= s0 - h
            h = e0
        self._alloc_head = h + k

    # ------------------------------------------------------------------ prefix cache
    def pin(self, rid: int, n_ids: int) -> None:
        """Reference the first n_ids prefix ids of rid (a hit), so eviction cannot take them."""
        hs = self._hashes[rid][:n_ids]
        cache, lru = self._cache, self._lru
        for h in hs:
            r = cache[h]
            if r == 0:
                del lru[h]
            cache[h] = r + 1
        self._refs[rid] = hs
        self.shared[rid] = n_ids * self.per_prefix

    def unpin(self, rid: int) -> None:
        """Drop rid's references; ids nobody references become evictable (LRU)."""
        if self._hashes is None:
            return
        cache, lru = self._cache, self._lru
        for h in self._refs[rid]:
            c = cache[h] - 1
            cache[h] = c
            if c == 0:
                lru[h] = None
        self._refs[rid] = []
        self.shared[rid] = 0

    def cache_prompt(self, rid: int, prompt_tokens: int) -> None:
        """The full prefix blocks of rid's computed prompt enter the cache (those not there yet)."""
        hashes = self._hashes[rid]
        full = min(len(hashes), prompt_tokens // PREFIX_BLOCK_TOKENS)
        have = len(self._refs[rid])
        if full <= have:
            return
        cache = self._cache
        mine = self._refs[rid] = list(self._refs[rid])
        hb = self.per_prefix
        for h in hashes[have:full]:
            if h in cache:
                break
            cache[h] = 1
            mine.append(h)
            self.held[rid] -= hb
            self.shared[rid] += hb

    # ------------------------------------------------------------------ freeing
    def free(self, rid: int, private_blocks: int) -> None:
        """rid finished: its private blocks return to the free queue, its prefix ids are unpinned."""
        self.used -= private_blocks
        self._free_tail += private_blocks
        self.held[rid] = 0
        if self._hashes is not None:
            self.unpin(rid)

    def free_preempted(self, rid: int, private_blocks: int, computed_tokens: int) -> None:
        """rid was preempted: as `free`, and with the self cache its full blocks stay hittable (freed
        tail-first, as vLLM does, so its leading blocks are overwritten last)."""
        if self.self_cache:
            full = computed_tokens // self.block_size
            if full:
                self._stash[rid] = (self._free_tail + private_blocks, full)
        self.free(rid, private_blocks)

    def readmit(self, rid: int, stash_blocks: int) -> None:
        """rid comes back with `stash_blocks` of its own blocks reused: they leave the free queue."""
        endpos, _ = self._stash.pop(rid)
        if stash_blocks:
            heapq.heappush(self._holes, (endpos - stash_blocks, endpos))
            self.used += stash_blocks
            self.held[rid] += stash_blocks

    def has_stash(self, rid: int) -> bool:
        return rid in self._stash
