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
the copy too), and so do that request's later blocks. State lives in flat lists indexed by chain id (made
once): per-id containers made as ids get cached cost the replay more in garbage collection than in work.
"""

from __future__ import annotations

from .free_queue import FreeQueue
from .workload import PREFIX_BLOCK_TOKENS


class PrefixCache:
    __slots__ = ("block_size", "per_id", "_queue", "_chain", "_span", "_refs", "_top", "_full", "_part", "_lo",
                 "_hi", "_end", "_more")

    def __init__(self, queue: FreeQueue, block_size: int, prefix_ids: list[list[int]], prompts: list[int]) -> None:
        if PREFIX_BLOCK_TOKENS % block_size:
            raise ValueError(f"PrefixCache: block_size ({block_size}) must divide {PREFIX_BLOCK_TOKENS}")
        if len(prefix_ids) != len(prompts):
            raise ValueError(f"PrefixCache: {len(prefix_ids)} prefix-id lists for {len(prompts)} prompts")
        self.block_size = block_size
        self.per_id = PREFIX_BLOCK_TOKENS // block_size
        """Blocks per prefix id."""
        self._queue = queue
        # Chain id of ids[0..i]: interned by (chain id of ids[0..i-1], ids[i]), packed in one int (ints, unlike
        # tuples, are no work for the garbage collector).
        chains: dict[int, int] = {}
        self._chain: list[list[int]] = []
        mask = (1 << 64) - 1
        for ids in prefix_ids:
            c, row = -1, []
            for h in ids:
                key = ((c + 1) << 64) | (h & mask)
                c = chains.get(key)
                if c is None:
                    c = chains[key] = len(chains)
                row.append(c)
            self._chain.append(row)
        self._span = [min(len(ids) * self.per_id, p // block_size) for ids, p in zip(prefix_ids, prompts)]
        """Full blocks of each prompt that its ids name (the cacheable ones)."""
        self._refs: list[list[int]] = [[] for _ in prompts]
        """Per request, the extent it holds in each of its leading ids."""
        n = len(chains)
        self._top = [0] * n
        """Per chain id, the largest extent held (0: none)."""
        self._full = [0] * n
        """Per chain id, requests holding all its blocks."""
        self._part: list[dict[int, int] | None] = [None] * n
        """Per chain id, {extent: requests holding it} for extents below a whole id (None: none yet)."""
        # Per chain id, the freed chunks, lowest first: the lowest (it starts at top) in _lo/_hi/_end (none: hi
        # 0), any above it in _more (lo, hi, end of each in a row, lowest first), which most ids never need.
        self._lo, self._hi, self._end = [0] * n, [0] * n, [0] * n
        self._more: list[list[int] | None] = [None] * n

    # ------------------------------------------------------------------ queries
    def _extent(self, c: int) -> int:
        """Leading blocks of chain id c cached now: referenced, or intact in the free queue."""
        hi = self._hi[c]
        if not hi:
            return self._top[c]
        head = self._queue.head
        lo = self._lo[c]
        intact = self._end[c] - head
        if intact < hi - lo:   # allocation reached the lowest chunk: its highest blocks, and all chunks above, gone
            self._more[c] = None
            if intact > 0:
                self._hi[c] = lo + intact
                return lo + intact
            self._hi[c] = 0
            return self._top[c]
        ch = self._more[c]
        if not ch:
            return hi
        e = hi
        for i in range(0, len(ch), 3):
            lo, hi, end = ch[i], ch[i + 1], ch[i + 2]
            intact = end - head
            if intact >= hi - lo:
                e = hi
                continue
            if intact > 0:   # allocation reached this chunk: its highest blocks, and every chunk above, are gone
                e = ch[i + 1] = lo + intact
                del ch[i + 3:]
            else:
                del ch[i:]
            break
        return e

    def hit(self, rid: int, total_tokens: int) -> int:
        """Leading blocks of rid's prompt cached now, capped so that one of its `total_tokens` is left."""
        limit = (total_tokens - 1) // self.block_size
        if limit > self._span[rid]:
            limit = self._span[rid]
        pp, top, chunk_hi = self.per_id, self._top, self._hi
        n = 0
        for c in self._chain[rid]:
            if n >= limit:
                break
            want = limit - n if limit - n < pp else pp
            e = self._extent(c) if chunk_hi[c] else top[c]
            if e < want:
                return n + e
            n += want
        return n

    def _leading(self, rid: int, n_blocks: int) -> list[tuple[int, int]]:
        """(chain id, blocks of it) covering rid's first n_blocks, id by id."""
        pp = self.per_id
        out = []
        for c in self._chain[rid]:
            if n_blocks <= 0:
                break
            k = n_blocks if n_blocks < pp else pp
            n_blocks -= k
            out.append((c, k))
        return out

    def in_queue(self, rid: int, n_blocks: int) -> int:
        """Blocks among rid's first n_blocks (cached) that sit in the free queue (nobody references them)."""
        top = self._top
        return sum(k - top[c] for c, k in self._leading(rid, n_blocks) if k > top[c])

    @property
    def cached_blocks(self) -> int:
        """Blocks cached now (referenced or intact in the free queue)."""
        return sum(self._extent(c) if hi else t for c, (t, hi) in enumerate(zip(self._top, self._hi)))

    # ------------------------------------------------------------------ references
    def _hold(self, c: int, k: int, add: int) -> None:
        """One more (add=1) or one less (add=-1) request holds the first k blocks of chain id c."""
        if k == self.per_id:
            self._full[c] += add
            return
        d = self._part[c]
        if d is None:
            d = self._part[c] = {}
        left = d.get(k, 0) + add
        if left:
            d[k] = left
        else:
            del d[k]

    def pin(self, rid: int, n_blocks: int) -> int:
        """rid references its first n_blocks (a hit, all cached); returns how many left the free queue."""
        top = self._top
        refs: list[int] = []
        taken = 0
        for c, k in self._leading(rid, n_blocks):
            if k > top[c]:
                if self._extent(c) < k:
                    raise RuntimeError(f"PrefixCache: request {rid} pins blocks of chain id {c}, not all cached")
                taken += self._revive(c, k)
                top[c] = k
            self._hold(c, k, 1)
            refs.append(k)
        self._refs[rid] = refs
        return taken

    def _revive(self, c: int, k: int) -> int:
        """Chain id c's blocks below k in its freed chunks (intact) leave the free queue, lowest chunk first."""
        taken = 0
        while self._hi[c] and self._lo[c] < k:
            lo, hi, end = self._lo[c], self._hi[c], self._end[c]
            m = (k if k < hi else hi) - lo
            self._queue.take_out(end - m, m)
            taken += m
            if lo + m < hi:
                self._lo[c], self._end[c] = lo + m, end - m
                break
            more = self._more[c]
            if more:   # the next chunk up becomes the lowest
                self._lo[c], self._hi[c], self._end[c] = more[0], more[1], more[2]
                del more[:3]
            else:
                self._hi[c] = 0
        return taken

    def release(self, rid: int) -> int:
        """rid drops its references, last id first; returns the blocks nobody references any more (they
        enter the free queue's tail, each id's last block first)."""
        refs = self._refs[rid]
        if not refs:
            return 0
        chain, top, full, pp = self._chain[rid], self._top, self._full, self.per_id
        chunk_lo, chunk_hi, chunk_end = self._lo, self._hi, self._end
        head, tail = self._queue.head, self._queue.tail
        freed = 0
        for i in range(len(refs) - 1, -1, -1):
            c, k = chain[i], refs[i]
            if k == pp:
                full[c] -= 1
                if full[c]:
                    continue
            else:
                self._hold(c, k, -1)
            t = top[c]
            if k < t:
                continue
            d = self._part[c]   # nobody holds the whole id now (else t == pp > k, or full[c] > 0)
            new = max(d) if d else 0
            if new == t:
                continue
            freed += t - new
            if chunk_hi[c]:   # the lowest chunk so far goes above the new one (if any of it is left)
                if chunk_end[c] > head:
                    more = self._more[c]
                    if more is None:
                        self._more[c] = [chunk_lo[c], chunk_hi[c], chunk_end[c]]
                    else:
                        more[:0] = (chunk_lo[c], chunk_hi[c], chunk_end[c])
                else:
                    self._more[c] = None
            chunk_lo[c], chunk_hi[c], chunk_end[c] = new, t, tail + freed
            top[c] = new
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
        pp, top, chunk_hi, chain, refs = self.per_id, self._top, self._hi, self._chain[rid], self._refs[rid]
        n = have
        if refs and refs[-1] < pp:   # finish the id it holds partly, if its next block is not cached already
            i, k = len(refs) - 1, refs[-1]
            c = chain[i]
            if top[c] != k or (chunk_hi[c] and self._extent(c) != k):
                return 0
            new_k = min(pp, full - i * pp)
            self._hold(c, k, -1)
            self._hold(c, new_k, 1)
            top[c] = refs[-1] = new_k
            n += new_k - k
        head = self._queue.head
        while n < full:
            c = chain[len(refs)]
            if top[c]:
                break
            if chunk_hi[c]:   # nobody references it: cached iff its lowest chunk (the newest) has a block left
                if self._end[c] > head:
                    break
                chunk_hi[c] = 0
                self._more[c] = None
            k = full - n if full - n < pp else pp
            if k == pp:
                self._full[c] += 1
            else:
                self._hold(c, k, 1)
            top[c] = k
            refs.append(k)
            n += k
        return n - have
