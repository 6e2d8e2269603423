"""A KV watermark learned from preemptions: after the engine had to take blocks back, new admissions leave
that many blocks free for a while (engine side, per step; opt-in: EngineConfig.preemption_guard in the
simulator, VLLMOptions.preemption_guard in the vLLM integration).

vLLM v1 admits a request once its prompt's blocks fit; its output grows into the cache afterwards. Where
outputs are long (bwb, reasoning traces) the running batch outgrows memory, the newest requests are preempted
and recomputed, and an order that admits many short prompts can tip the engine into a preemption storm
(bench/SUITE_PASSES.md, eleventh and fourteenth passes). vLLM's own `--watermark` is a constant share of the
cache for every workload; this guard has no constant to set:
- each step's watermark is the most blocks any one step had to preempt, decayed as exp(-steps / L);
- L, the steps a request stays running, is measured: the mean output length of the finished requests (one
  token per decode step); before the first completion, DEFAULT_LIFETIME_STEPS;
- it never asks for more than half the cache, so a request the cache can hold alone is still admitted.
Where nothing is preempted the watermark stays 0: the engine runs as vLLM ships it.
"""

from __future__ import annotations

import math

DEFAULT_LIFETIME_STEPS = 256.0
"""The steps a request is taken to run before any has finished (vLLM's default max_tokens is 16; replayed
traces run hundreds): the guard's decay before the engine has measured one."""
LIFETIME_WINDOW = 4096
"""Completions the lifetime's mean weighs equally; past them, an exponential average of that span follows a
workload that changes (the state stays two numbers)."""


class PreemptionGuard:
    """The watermark in KV blocks that admissions leave free (`watermark`), from the blocks the engine
    preempted (`preempted`) and the output lengths of the requests that finished (`finished`)."""

    def __init__(self, total_blocks: int) -> None:
        if isinstance(total_blocks, bool) or not isinstance(total_blocks, int) or total_blocks < 1:
            raise ValueError(f"PreemptionGuard total_blocks must be an integer >= 1, got {total_blocks!r}")
        self.total_blocks = total_blocks
        self._level = 0.0          # the decayed maximum of the per-step preempted blocks
        self._this_step = 0        # blocks preempted since the last begin_step
        self._life = DEFAULT_LIFETIME_STEPS
        self._finished = 0
        self.preempted_blocks = 0
        """Blocks preempted over the guard's life (a counter for operators and tests)."""

    @property
    def lifetime_steps(self) -> float:
        """The measured steps a request runs (mean output tokens of the finished requests)."""
        return self._life

    @property
    def watermark(self) -> int:
        """The blocks an admission beside running requests leaves free this step."""
        return min(int(self._level), self.total_blocks // 2)

    def begin_step(self) -> int:
        """Start a step: fold the last step's preemptions in, decay by one step; returns the watermark."""
        self._level = max(self._level * math.exp(-1.0 / self._life), float(self._this_step))
        self._this_step = 0
        return self.watermark

    def preempted(self, blocks: int) -> None:
        """The engine preempted a request that held `blocks` KV blocks."""
        if isinstance(blocks, bool) or not isinstance(blocks, int) or blocks < 0:
            raise ValueError(f"preempted blocks must be an integer >= 0, got {blocks!r}")
        self._this_step += blocks
        self.preempted_blocks += blocks

    def finished(self, output_tokens: int) -> None:
        """A request finished after generating `output_tokens` (its decode steps: the lifetime measured)."""
        if isinstance(output_tokens, bool) or not isinstance(output_tokens, int) or output_tokens < 0:
            raise ValueError(f"finished output_tokens must be an integer >= 0, got {output_tokens!r}")
        self._finished = min(self._finished + 1, LIFETIME_WINDOW)
        life = output_tokens if self._finished == 1 else self._life + (output_tokens - self._life) / self._finished
        self._life = max(float(life), 1.0)
