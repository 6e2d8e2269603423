"""A KV watermark learned from preemptions: after the engine had to take blocks back, admissions beside
running requests leave room for the running batch to grow (engine side, per step; EngineConfig.preemption_guard
in the simulator, VLLMOptions.preemption_guard in the vLLM integration).

vLLM v1 admits a request once its prompt's blocks fit; its output grows into the cache afterwards. Where
outputs are long (bwb, reasoning traces) the running batch outgrows memory, the newest requests are preempted
and recomputed, and an order that admits many short prompts can tip the engine into a preemption storm
(bench/SUITE_PASSES.md, eleventh and fourteenth passes). vLLM's own `--watermark` is a constant share of the
cache; the guard's watermark is derived from what the engine measures:
- a running batch of n requests that each run L decode steps grows by n / block_size blocks a step, and
  n / L of them finish a step: between two completions it grows by L / block_size blocks, whatever n is.
  That is what an admission leaves free after a step that preempted;
- it decays as exp(-steps / L): one request lifetime after the last preemption it is down to 1/e, and where
  nothing is preempted it is 0 (the engine runs as vLLM ships it);
- L is measured: the mean output length of the finished requests (one token per decode step), an
  exponential average over the last LIFETIME_WINDOW completions; DEFAULT_LIFETIME_STEPS before the first;
- it never asks for more than half the cache, so a request the cache can hold alone is still admitted.
"""

from __future__ import annotations

import math

DEFAULT_LIFETIME_STEPS = 256.0
"""The steps a request is taken to run before any has finished: the guard's measure until the first one."""
LIFETIME_WINDOW = 4096
"""Completions the lifetime's mean weighs equally; past them, an exponential average of that span follows a
workload that changes (the state stays a few numbers)."""


class PreemptionGuard:
    """The watermark in KV blocks that admissions leave free (`begin_step`, `watermark`), from the steps that
    preempted (`preempted`) and the output lengths of the requests that finished (`finished`)."""

    def __init__(self, total_blocks: int, block_size: int) -> None:
        for name, v in (("total_blocks", total_blocks), ("block_size", block_size)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"PreemptionGuard {name} must be an integer >= 1, got {v!r}")
        self.total_blocks = total_blocks
        self.block_size = block_size
        self._level = 0.0          # the watermark, decaying between preemptions
        self._hit = False          # a preemption since the last begin_step
        self._life = DEFAULT_LIFETIME_STEPS
        self._finished = 0
        self.preemptions = 0
        """Preemptions seen over the guard's life."""

    @property
    def lifetime_steps(self) -> float:
        """The measured steps a request runs (mean output tokens of the finished requests)."""
        return self._life

    @property
    def watermark(self) -> int:
        """The blocks an admission beside running requests leaves free this step."""
        return min(int(self._level), self.total_blocks // 2)

    def begin_step(self) -> int:
        """Start a step: decay by one step; after a preemption, at least the growth between two completions.
        Returns the watermark."""
        life = self._life
        self._level *= math.exp(-1.0 / life)
        if self._hit:
            self._level = max(self._level, life / self.block_size)
        self._hit = False
        return self.watermark

    def preempted(self) -> None:
        """The engine preempted a running request."""
        self._hit = True
        self.preemptions += 1

    def finished(self, output_tokens: int) -> None:
        """A request finished after generating `output_tokens` (its decode steps: the lifetime measured)."""
        if isinstance(output_tokens, bool) or not isinstance(output_tokens, int) or output_tokens < 0:
            raise ValueError(f"finished output_tokens must be an integer >= 0, got {output_tokens!r}")
        self._finished = min(self._finished + 1, LIFETIME_WINDOW)
        life = output_tokens if self._finished == 1 else self._life + (output_tokens - self._life) / self._finished
        self._life = max(float(life), 1.0)
