"""The prefix cache of one simulated engine at vLLM v1's granularity, the KV block, kept as counts per content id.

As in vLLM, a prompt's cacheable unit is its KV block (block_size tokens): only full blocks are cached and
hit (a prompt's last partial block never is), a block enters the cache when the chunk computing it is
scheduled, a hit is the longest run of cached blocks from the prompt's start, capped so that one token is
left to compute, and a block is named by its content and everything before it (vLLM chains block hashes).
Workloads name prompt content with prefix ids (Mooncake `hash_ids`), one per 512 tokens, the last maybe
covering fewer: block j of a prompt's i-th id is (ids[0..i], j), whatever the prompt's length. Chain ids
number the distinct ids[0..i].

Counts instead of blocks (a 12k-token prompt has ~750 blocks, looked up at every admission attempt); per
chain id, and O(ids) per request:
- Holders: a request references a leading run of its own blocks (those it hit, then those it computed
  first), so within an id it holds the leading `extent` blocks, and references fall with the block's
  offset: the blocks nobody references are the id's tail from `top` (the largest extent held) on.
- Chunks: that unreferenced tail as it was freed. [lo, hi) entered the free queue at once, last block
  first (vLLM frees a request's blocks in reverse), ending before queue position `end`; a lower chunk was
  freed later than a higher one, so allocation reuses an id's highest blocks first and what stays intact
  is a leading run. An id's cached extent is `top` plus that run.
A block already cached when a request computes it again stays private to that request (vLLM would cache
the copy too), and so do that request's later blocks.
"""

from __future__ import annotations

from .free_queue import FreeQueue
from .workload import PREFIX_BLOCK_TOKENS


class PrefixCache:
    __slots__ = ("block_size", "per_id", "_queue", "_chain", "_span", "_refs", "_ids")

    def __init__(self, queue: FreeQueue, block_size: int, prefix_ids: list[list[int]], prompts: list[int]) -> None:
        if PREFIX_BLOCK_TOKENS % block_size:
            raise ValueError(f"PrefixCache: block_size ({block_size}) must divide {PREFIX_BLOCK_TOKENS}")
        if len(prefix_ids) != len(prompts):
            raise ValueError(f"PrefixCache: {len(prefix_ids)} prefix-id lists for {len(prompts)} prompts")
        self.block_size = block_size
        self.per_id = PREFIX_BLOCK_TOKENS // block_size
        """Blocks per prefix id."""
        self._queue = queue
        chains: dict[tuple[int, int], int] = {}
        self._chain: list[list[int]] = []
        for ids in prefix_ids:
            c, row = -1, []
            for h in ids:
                c = chains.setdefault((c, h), len(chains))
                row.append(c)
            self._chain.append(row)
        self._span = [min(len(ids) * self.per_id, p // block_size) for ids, p in zip(prefix_ids, prompts)]
        """Full blocks of each prompt that its ids name (the cacheable ones)."""
        self._refs: list[list[int]] = [[] for _ in prompts]
        """Per request, the extent it holds in each of its leading ids."""
        self._ids: dict[int, list] = {}
        """Chain id -> [top, {extent: requests holding it}, freed chunks (lo, hi, end), lowest first]; made at
        the id's first caching (a few ints per id of the workload)."""

    # ------------------------------------------------------------------ queries
    def _extent(self, s: list) -> int:
        """Leading blocks of an id (its state s) cached now: referenced, or intact in the free queue."""
        ch = s[2]
        if not ch:
            return s[0]
        head = self._queue.head
        e = s[0]
        for i, (lo, hi, end) in enumerate(ch):
            intact = end - head
            if intact >= hi - lo:
                e = hi
                continue
            if intact > 0:   # allocation reached this chunk: its highest blocks, and every chunk above, are gone
                ch[i] = (lo, lo + intact, end)
                e = lo + intact
                del ch[i + 1:]
            else:
                del ch[i:]
            break
        return e

    def hit(self, rid: int, total_tokens: int) -> int:
        """Leading blocks of rid's prompt cached now, capped so that one of its `total_tokens` is left."""
        limit = (total_tokens - 1) // self.block_size
        if limit > self._span[rid]:
            limit = self._span[rid]
        pp, ids = self.per_id, self._ids
        n = 0
        for c in self._chain[rid]:
            if n >= limit:
                break
            want = limit - n if limit - n < pp else pp
            s = ids.get(c)
            if s is None:
                return n
            e = self._extent(s) if s[2] else s[0]
            if e < want:
                return n + e
            n += want
        return n

    def in_queue(self, rid: int, n_blocks: int) -> int:
        """Blocks among rid's first n_blocks (cached) that sit in the free queue (nobody references them)."""
        pp, ids = self.per_id, self._ids
        out = 0
        for c in self._chain[rid]:
            if n_blocks <= 0:
                break
            k = n_blocks if n_blocks < pp else pp
            n_blocks -= k
            t = ids[c][0]
            if k > t:
                out += k - t
        return out

    @property
    def cached_blocks(self) -> int:
        """Blocks cached now (referenced or intact in the free queue)."""
        return sum(self._extent(s) for s in self._ids.values())

    # ------------------------------------------------------------------ references
    def pin(self, rid: int, n_blocks: int) -> int:
        """rid references its first n_blocks (a hit, all cached); returns how many left the free queue."""
        pp, ids = self.per_id, self._ids
        refs: list[int] = []
        taken = 0
        for c in self._chain[rid]:
            if n_blocks <= 0:
                break
            k = n_blocks if n_blocks < pp else pp
            n_blocks -= k
            s = ids.get(c)
            if s is None or (k > s[0] and self._extent(s) < k):
                raise RuntimeError(f"PrefixCache: request {rid} pins blocks of chain id {c} that are not all cached")
            t = s[0]
            if k > t:
                taken += self._revive(s[2], k)
                s[0] = k
            h = s[1]
            h[k] = h.get(k, 0) + 1
            refs.append(k)
        self._refs[rid] = refs
        return taken

    def _revive(self, ch: list, k: int) -> int:
        """An id's blocks below k in its freed chunks `ch` (intact) leave the free queue, lowest chunk first."""
        taken = 0
        while ch and ch[0][0] < k:
            lo, hi, end = ch[0]
            m = (k if k < hi else hi) - lo
            self._queue.take_out(end - m, m)
            taken += m
            if lo + m == hi:
                del ch[0]
            else:
                ch[0] = (lo + m, hi, end - m)
        return taken

    def release(self, rid: int) -> int:
        """rid drops its references, last id first; returns the blocks nobody references any more (they
        enter the free queue's tail, each id's last block first)."""
        refs = self._refs[rid]
        if not refs:
            return 0
        chain, ids = self._chain[rid], self._ids
        tail = self._queue.tail
        freed = 0
        for i in range(len(refs) - 1, -1, -1):
            s, k = ids[chain[i]], refs[i]
            h = s[1]
            left = h[k] - 1
            if left:
                h[k] = left
                continue
            del h[k]
            t = s[0]
            if k < t:
                continue
            new = max(h) if h else 0
            freed += t - new
            s[2].insert(0, (new, t, tail + freed))
            s[0] = new
        self._queue.append(freed)
        self._refs[rid] = []
        return freed

    def extend(self, rid: int, computed_tokens: int, have: int) -> int:
        """rid has computed `computed_tokens` of its prompt and references its first `have` blocks: the next
        full blocks enter the cache as rid's, up to the first one already cached; returns how many."""
        full = computed_tokens // self.block_size
        if full > self._span[rid]:
            full = self._span[rid]
        if full <= have:
            return 0
        pp, ids, chain, refs = self.per_id, self._ids, self._chain[rid], self._refs[rid]
        n = have
        if refs and refs[-1] < pp:   # finish the id it holds partly, if its next block is not cached already
            i, k = len(refs) - 1, refs[-1]
            s = ids[chain[i]]
            if s[0] != k or (s[2] and self._extent(s) != k):
                return 0
            new_k = min(pp, full - i * pp)
            h = s[1]
            if h[k] == 1:
                del h[k]
            else:
                h[k] -= 1
            h[new_k] = h.get(new_k, 0) + 1
            s[0] = refs[-1] = new_k
            n += new_k - k
        head = self._queue.head
        while n < full:
            c = chain[len(refs)]
            s = ids.get(c)
            if s is None:
                s = ids[c] = [0, {}, []]
            elif s[0]:
                break
            elif s[2]:   # nobody references it: cached iff its lowest chunk (the newest) has a block left
                if s[2][0][2] > head:
                    break
                s[2].clear()
            k = full - n if full - n < pp else pp
            s[1][k] = 1
            s[0] = k
            refs.append(k)
            n += k
        return n - have
