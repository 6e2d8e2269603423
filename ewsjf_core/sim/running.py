"""The running requests of one simulated engine: prefills in admission order, decoders in aggregate.

Decoders are not visited per step: each is known by its first decode step and its context then, so the
set keeps only counts (how many decode, the sum of their contexts, how many need a new KV block at each
step phase mod block_size) and a table of the step each one finishes. A step then costs
O(prefilling + admitted + finished), not O(running).
"""

from __future__ import annotations


class RunningSet:

    __slots__ = ('block_size', 'order', 'prefilling', 'computed', 'target', 'gen', 'n_decoding', 'kv_sum', '_decoding', '_dec_start', '_dec_base', '_phase_count', '_finish_at')
    def __init__(self, n_requests: int, block_size: int) -> None:
        self.block_size = block_size
        self.order: dict[int, None] = {}
        """All running request ids in admission order (the preemption victim is the last)."""
        self.prefilling: list[int] = []
        """Running requests still in prefill, admission order."""
        self.computed = [0] * n_requests
        """Prefilling: tokens computed so far."""
        self.target = [0] * n_requests
        """Prefilling: tokens to compute before the next output token."""
        self.gen = [0] * n_requests
        """Outputs generated (prefilling, finished, waiting); decoders: at their first decode step."""
        self.n_decoding = 0
        self.kv_sum = 0
        """Sum of the decoders' contexts (tokens in KV) at the current step."""
        self._decoding: set[int] = set()
        self._dec_start = [0] * n_requests
        self._dec_base = [0] * n_requests
        self._phase_count = [0] * block_size
        self._finish_at: dict[int, list[int]] = {}

    def __len__(self) -> int:
        return len(self.order)

    def last(self) -> int:
        return next(reversed(self.order))

    def decode_blocks_needed(self, step: int) -> int:
        """Decoders whose next token starts a new KV block at `step`."""
        return self._phase_count[step % self.block_size]

    def admit(self, rid: int, computed: int, target: int) -> None:
        self.order[rid] = None
        self.prefilling.append(rid)
        self.computed[rid] = computed
        self.target[rid] = target

    def start_decoding(self, rid: int, step: int, context: int, output_tokens: int) -> None:
        """rid emitted an output token at the end of step - 1 and decodes from `step` on."""
        self.prefilling.remove(rid)
        self._dec_start[rid] = step
        self._dec_base[rid] = context
        self._decoding.add(rid)
        self.n_decoding += 1
        self.kv_sum += context
        self._phase_count[(step - context) % self.block_size] += 1
        self._finish_at.setdefault(step + output_tokens - self.gen[rid] - 1, []).append(rid)

    def _drop_decoder(self, rid: int, ctx: int) -> None:
        self._decoding.discard(rid)
        self.n_decoding -= 1
        self.kv_sum -= ctx
        self._phase_count[(self._dec_start[rid] - self._dec_base[rid]) % self.block_size] -= 1

    def remove(self, rid: int, step: int, output_tokens: int) -> tuple[bool, int]:
        """Take rid out (preemption) at `step`: (was it decoding, tokens in its KV)."""
        del self.order[rid]
        if rid in self._decoding:
            s0 = self._dec_start[rid]
            ctx = self._dec_base[rid] + (step - s0)
            self._drop_decoder(rid, ctx)
            self._finish_at[s0 + output_tokens - self.gen[rid] - 1].remove(rid)
            self.gen[rid] += step - s0
            return True, ctx
        self.prefilling.remove(rid)
        kv = self.computed[rid]
        self.computed[rid] = 0
        return False, kv

    def finish_decoders(self, step: int) -> list[tuple[int, int]]:
        """Decoders whose last token is computed in `step`: [(rid, context after it)], removed."""
        fin = self._finish_at.pop(step, None)
        if not fin:
            return []
        out = []
        base, start, phase, order, decoding = (self._dec_base, self._dec_start, self._phase_count, self.order,
                                               self._decoding)
        bs = self.block_size
        for rid in fin:
            s0, b0 = start[rid], base[rid]
            ctx = b0 + (step - s0) + 1
            decoding.discard(rid)
            self.kv_sum -= ctx
            phase[(s0 - b0) % bs] -= 1
            del order[rid]
            out.append((rid, ctx))
        self.n_decoding -= len(fin)
        return out

    def finish_prefill(self, rid: int) -> None:
        """rid finished in its prefill step (output length reached)."""
        del self.order[rid]
        self.prefilling.remove(rid)
