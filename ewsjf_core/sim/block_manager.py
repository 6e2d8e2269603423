"""The KV cache of one simulated engine, in block counts: allocation, the prefix cache, eviction.

A model of vLLM v1's KVCacheManager + BlockPool that keeps counts and positions instead of block objects,
so that a step costs O(requests touched), not O(blocks):

- `used` blocks are held by running requests (their private blocks and the prefix-cache blocks they
  reference); the other `total - used` are in the free queue. As in vLLM, freed blocks keep their content
  (and their place in the prefix cache) until allocation reuses them: allocation takes the oldest freed
  first, so cached blocks are evicted in the order they were freed, whether or not space is short.
  Positions in that queue are counted: `_alloc_head` = blocks allocated so far, `_free_tail` = end of the
  queue; a freed block at position p is intact while p >= _alloc_head. `_holes` are ranges taken out of
  the queue by a cache hit (allocation skips them).
- Prefix cache of prefix-block ids (workloads with `prefix_blocks`): id -> reference count; an id stands
  for `per_prefix` engine blocks. A request pins the leading ids it hits (they leave the free queue); an
  id nobody references goes back to the queue's tail. A request's blocks are freed tail first (vLLM frees
  in reverse), so a prompt's leading blocks, the most shared, are evicted last.
- Prefix-id blocks enter the cache when the chunk computing them is scheduled (chunk by chunk), as vLLM
  caches every full block it allocates: a request admitted later in the same step already hits them, and
  a request preempted mid-prefill finds them again.
- Own blocks (prefix caching on): a preempted request's private full blocks (those past its prefix ids)
  stay hittable while intact in the free queue; the request hits the leading ones when it comes back, if
  its prefix-id hit is unchanged (block hashes chain).

Per request: `held[rid]` private blocks (prefilling requests), `shared[rid]` blocks referenced through
the prefix cache. Only this class changes them.
"""

from __future__ import annotations

import heapq

from .workload import PREFIX_BLOCK_TOKENS

UNLIMITED = 1 << 60


class BlockManager:
    __slots__ = ("total", "block_size", "per_prefix", "used", "held", "shared", "self_cache", "_hashes", "_refs",
                 "_cache", "_pos", "_stash", "_holes", "_alloc_head", "_free_tail")

    def __init__(self, total_blocks: int, block_size: int, n_requests: int,
                 prefix_ids: list[list[int]] | None, self_cache: bool) -> None:
        self.total = total_blocks
        self.block_size = block_size
        self.per_prefix = PREFIX_BLOCK_TOKENS // block_size
        """Engine blocks per prefix-block id."""
        self.used = 0
        self.held = [0] * n_requests
        self.shared = [0] * n_requests
        self.self_cache = self_cache
        """Prefix caching is on: preempted requests' own blocks stay hittable."""
        self._hashes = prefix_ids
        self._refs: list[list[int]] = [[] for _ in range(n_requests)] if prefix_ids is not None else []
        self._cache: dict[int, int] = {}
        """Prefix id -> references; 0: in the free queue at _pos[id] (or already overwritten)."""
        self._pos: dict[int, int] = {}
        self._stash: dict[int, tuple[int, int, int]] = {}
        """rid -> (queue position after its freed blocks, its full private blocks, its prefix ids then)."""
        self._holes: list[tuple[int, int]] = []
        self._alloc_head = 0
        # An unlimited cache never reuses a freed block: put the queue's tail out of reach.
        self._free_tail = total_blocks if total_blocks < (UNLIMITED >> 1) else UNLIMITED

    # ------------------------------------------------------------------ queries
    @property
    def cached_blocks(self) -> int:
        """Engine blocks of the prefix-id cache still intact (referenced or in the free queue)."""
        head = self._alloc_head
        return sum(1 for h, r in self._cache.items() if r or self._pos[h] >= head) * self.per_prefix

    def _cached(self, h: int) -> bool:
        """Whether id h is in the cache; drops it if the free queue has reused its blocks."""
        r = self._cache.get(h)
        if r is None:
            return False
        if r or self._pos[h] >= self._alloc_head:
            return True
        del self._cache[h], self._pos[h]
        return False

    def prefix_hit(self, rid: int, total_tokens: int) -> int:
        """Leading prefix ids of `rid` cached now (count), capped so that one token is left to compute."""
        if self._hashes is None:
            return 0
        k = 0
        cached = self._cached
        for h in self._hashes[rid]:
            if not cached(h):
                break
            k += 1
        return min(k, (total_tokens - 1) // PREFIX_BLOCK_TOKENS)

    def evictable_in_hit(self, rid: int, n_ids: int) -> int:
        """Blocks of rid's first n_ids (hit) ids that sit in the free queue: a hit takes them out of it."""
        cache = self._cache
        return sum(1 for h in self._hashes[rid][:n_ids] if cache[h] == 0) * self.per_prefix

    def stash_hit(self, rid: int, total_tokens: int, prefix_ids_hit: int) -> int:
        """Own blocks of preempted `rid` still intact in the free queue (the leading ones not reused since),
        following its `prefix_ids_hit` prefix ids; 0 if that hit differs from the one it had (the chain of
        block hashes is broken)."""
        endpos, full, ids = self._stash[rid]
        if ids != prefix_ids_hit:
            return 0
        s = min(full, endpos - self._alloc_head,
                (total_tokens - 1) // self.block_size - prefix_ids_hit * self.per_prefix)
        return s if s > 0 else 0

    def has_stash(self, rid: int) -> bool:
        return rid in self._stash

    # ------------------------------------------------------------------ allocation
    def allocate(self, k: int) -> None:
        """Take k blocks from the free queue's head (the caller checked total - used >= k)."""
        self.used += k
        if self._holes:
            self._skip_holes(k)
        else:
            self._alloc_head += k

    def allocate_for(self, rid: int, k: int) -> None:
        """Take k blocks as rid's private blocks."""
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

    def _take_out(self, start: int, n: int) -> None:
        """Blocks at queue positions [start, start + n) are reused by a hit: they leave the free queue."""
        heapq.heappush(self._holes, (start, start + n))
        self.used += n

    # ------------------------------------------------------------------ prefix cache
    def pin(self, rid: int, n_ids: int) -> None:
        """Reference the first n_ids prefix ids of rid (a hit); those in the free queue leave it."""
        hs = self._hashes[rid][:n_ids]
        cache, hb = self._cache, self.per_prefix
        for h in hs:
            r = cache[h]
            if r == 0:
                self._take_out(self._pos.pop(h), hb)
            cache[h] = r + 1
        self._refs[rid] = hs
        self.shared[rid] = n_ids * hb

    def unpin(self, rid: int) -> None:
        """Drop rid's references; ids nobody references go to the free queue's tail, tail id first."""
        if self._hashes is None:
            return
        cache, pos, hb = self._cache, self._pos, self.per_prefix
        for h in reversed(self._refs[rid]):
            c = cache[h] - 1
            cache[h] = c
            if c == 0:
                pos[h] = self._free_tail
                self._free_tail += hb
                self.used -= hb
        self._refs[rid] = []
        self.shared[rid] = 0

    def cache_prompt(self, rid: int, computed_prompt_tokens: int) -> None:
        """The full prefix blocks of rid's computed prompt enter the cache (those not there yet)."""
        hashes = self._hashes[rid]
        full = min(len(hashes), computed_prompt_tokens // PREFIX_BLOCK_TOKENS)
        have = len(self._refs[rid])
        if full <= have:
            return
        cache, cached = self._cache, self._cached
        mine = self._refs[rid] = list(self._refs[rid])
        hb = self.per_prefix
        for h in hashes[have:full]:
            if cached(h):
                break
            cache[h] = 1
            mine.append(h)
            self.held[rid] -= hb
            self.shared[rid] += hb

    # ------------------------------------------------------------------ freeing
    def free(self, rid: int, private_blocks: int) -> None:
        """rid finished: its private blocks, then its prefix ids, return to the free queue."""
        self.used -= private_blocks
        self._free_tail += private_blocks
        self.held[rid] = 0
        if self._hashes is not None:
            self.unpin(rid)

    def free_preempted(self, rid: int, private_blocks: int, computed_tokens: int) -> None:
        """rid was preempted: as `free`, and its full private blocks stay hittable while intact."""
        if self.self_cache:
            full = computed_tokens // self.block_size - self.shared[rid]
            if full > 0:
                self._stash[rid] = (self._free_tail + private_blocks, full,
                                    len(self._refs[rid]) if self._hashes is not None else 0)
        self.free(rid, private_blocks)

    def readmit(self, rid: int, stash_blocks: int) -> None:
        """rid comes back with `stash_blocks` of its own blocks reused: they leave the free queue."""
        endpos = self._stash.pop(rid)[0]
        if stash_blocks:
            self._take_out(endpos - stash_blocks, stash_blocks)
            self.held[rid] += stash_blocks
