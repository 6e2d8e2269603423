"""The KV cache of one simulated engine, in block counts: allocation, the prefix cache, eviction.

A model of vLLM v1's KVCacheManager + BlockPool that keeps counts and positions instead of block objects,
so that a step costs O(requests touched), not O(blocks):

- `used` blocks are held by running requests (their private blocks and the prefix-cache blocks they
  reference); the other `total - used` are in the free queue (`FreeQueue`). As in vLLM, freed blocks keep
  their content (and their place in the prefix cache) until allocation reuses them: allocation takes the
  oldest freed first, so cached blocks are evicted in the order they were freed, whether or not space is
  short. A request's blocks are freed tail first (vLLM frees in reverse), so a prompt's leading blocks,
  the most shared, are evicted last. Freed blocks with nothing cacheable in them (not full, or not computed)
  are reused before any of those, as vLLM puts blocks without a hash at the queue's front.
- Prefix cache (workloads with `prefix_blocks`, `PrefixCache`): full KV blocks named by the prompt's
  prefix ids, hit and cached block by block as vLLM does. A request pins the leading blocks it hits (those
  in the free queue leave it); blocks nobody references go back to the queue's tail.
- Prompt blocks enter the cache when the chunk computing them is scheduled (chunk by chunk), as vLLM
  caches every full block it allocates: a request admitted later in the same step already hits them, and
  a request preempted mid-prefill finds them again.
- Own blocks (prefix caching on): a preempted request's private full blocks (those past its cached
  prefix) stay hittable while intact in the free queue; the request hits the leading ones when it comes
  back, if its prefix hit is unchanged (block hashes chain).

Per request: `held[rid]` private blocks (prefilling requests), `shared[rid]` blocks referenced through
the prefix cache. Only this class changes them.
"""

from __future__ import annotations

from .free_queue import FreeQueue
from .prefix_cache import PrefixCache

UNLIMITED = 1 << 60


class BlockManager:
    __slots__ = ("total", "block_size", "used", "held", "shared", "self_cache", "stash", "_queue", "_prefix")

    def __init__(self, total_blocks: int, block_size: int, n_requests: int,
                 prefix_ids: list[list[int]] | None, self_cache: bool,
                 prompt_tokens: list[int] | None = None) -> None:
        """`prompt_tokens` (per request) is needed with `prefix_ids`: only a prompt's full blocks are cached."""
        self.total = total_blocks
        self.block_size = block_size
        self.used = 0
        self.held = [0] * n_requests
        self.shared = [0] * n_requests
        self.self_cache = self_cache
        """Prefix caching is on: preempted requests' own blocks stay hittable."""
        self._queue = FreeQueue(total_blocks, UNLIMITED)
        self._prefix: PrefixCache | None = None
        if prefix_ids is not None:
            if prompt_tokens is None:
                raise ValueError("BlockManager: prompt_tokens are needed with prefix_ids")
            self._prefix = PrefixCache(self._queue, block_size, prefix_ids, prompt_tokens)
        self.stash: dict[int, tuple[int, int, int]] = {}
        """Preempted requests whose own blocks may still be hit (read-only outside this class): rid ->
        (queue position after its freed blocks, its full private blocks, its prefix-cache blocks then)."""

    # ------------------------------------------------------------------ queries
    @property
    def cached_blocks(self) -> int:
        """Blocks of the prefix cache still intact (referenced or in the free queue)."""
        return self._prefix.cached_blocks if self._prefix is not None else 0

    def prefix_hit(self, rid: int, total_tokens: int) -> int:
        """Leading blocks of `rid`'s prompt in the prefix cache now, capped so that one token is left to
        compute (0 without prefix ids)."""
        return self._prefix.hit(rid, total_tokens) if self._prefix is not None else 0

    def evictable_in_hit(self, rid: int, hit_blocks: int) -> int:
        """Blocks of rid's hit (its first hit_blocks) that sit in the free queue: a hit takes them out of it."""
        return self._prefix.in_queue(rid, hit_blocks) if self._prefix is not None else 0

    def stash_hit(self, rid: int, total_tokens: int, prefix_blocks_hit: int) -> int:
        """Own blocks of preempted `rid` still intact in the free queue (the leading ones not reused since),
        following its `prefix_blocks_hit` prefix-cache blocks; 0 if that hit differs from the one it had (the
        chain of block hashes is broken)."""
        endpos, full, prefix_blocks = self.stash[rid]
        if prefix_blocks != prefix_blocks_hit:
            return 0
        s = min(full, endpos - self._queue.head, (total_tokens - 1) // self.block_size - prefix_blocks_hit)
        return s if s > 0 else 0

    # ------------------------------------------------------------------ allocation
    def allocate(self, k: int) -> None:
        """Take k blocks from the free queue's head (the caller checked total - used >= k)."""
        self.used += k
        self._queue.take(k)

    def allocate_for(self, rid: int, k: int) -> None:
        """Take k blocks as rid's private blocks."""
        self.used += k
        self.held[rid] += k
        self._queue.take(k)

    # ------------------------------------------------------------------ prefix cache
    def pin(self, rid: int, hit_blocks: int) -> None:
        """Reference the first hit_blocks blocks of rid (a hit); those in the free queue leave it."""
        self.used += self._prefix.pin(rid, hit_blocks)
        self.shared[rid] = hit_blocks

    def unpin(self, rid: int) -> None:
        """Drop rid's references; blocks nobody references go to the free queue's tail, tail first."""
        if self._prefix is not None:
            self.used -= self._prefix.release(rid)
            self.shared[rid] = 0

    def cache_prompt(self, rid: int, computed_prompt_tokens: int) -> None:
        """The full blocks of rid's computed prompt enter the cache (those not there yet)."""
        n = self._prefix.extend(rid, computed_prompt_tokens, self.shared[rid])
        if n:
            self.held[rid] -= n
            self.shared[rid] += n

    # ------------------------------------------------------------------ freeing
    def free(self, rid: int, private_blocks: int, computed_tokens: int) -> None:
        """rid finished with `computed_tokens` in its KV: its private blocks, then its prefix-cache blocks,
        return to the free queue (the full ones at its tail, tail first; the others at its front)."""
        full = computed_tokens // self.block_size - self.shared[rid] if self.self_cache else 0
        if full > private_blocks:
            full = private_blocks
        self.used -= private_blocks
        self._queue.prepend(private_blocks - full)
        self._queue.append(full)
        self.held[rid] = 0
        self.unpin(rid)

    def free_preempted(self, rid: int, private_blocks: int, computed_tokens: int) -> None:
        """rid was preempted: as `free`, and its full private blocks stay hittable while intact."""
        if self.self_cache:
            full = min(computed_tokens // self.block_size - self.shared[rid], private_blocks)
            if full > 0:
                self.stash[rid] = (self._queue.tail + full, full, self.shared[rid])
        self.free(rid, private_blocks, computed_tokens)

    def readmit(self, rid: int, stash_blocks: int) -> None:
        """rid comes back with `stash_blocks` of its own blocks reused: they leave the free queue."""
        endpos = self.stash.pop(rid)[0]
        if stash_blocks:
            self._queue.take_out(endpos - stash_blocks, stash_blocks)
            self.used += stash_blocks
            self.held[rid] += stash_blocks
