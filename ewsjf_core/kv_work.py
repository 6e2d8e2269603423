"""KVWork: each request's work in the starvation bound, in the currency of what limits the engine's admissions.

The progress bound (ewsjf_core.progress_bound) counts work admitted; it holds in seconds while the engine
admits that work at a rate the order does not change. Counted in prefill tokens, that is true where prefill
compute limits admissions. Where KV memory does, the engine admits KV memory-time at a fixed rate (its cache
stays full: memory-time admitted per second is the cache's size), and prefill tokens at a rate that depends on
the order: short-first admits requests whose memory-time per prefill token is 2.5-4x the long class's, so a
bound counted in prefill comes due late (published setting @ 10 s: long p99 1.80x FCFS's). So a request's work is

    work = (1 - m) * prefill + m * c * kv_time,     kv_time = o * (prompt + o / 2),     m = phi * s

- kv_time: the token-steps of KV memory the request will hold (its prompt, plus an output growing to o tokens,
  over o decode steps), o the engine's own mean output length for the request's length class (prompt-length
  octave), learned from completions (observe_finished: no oracle, nothing read from pending requests);
  classes with few completions lean on the mean of all (a prior of PRIOR_COMPLETIONS completions).
- c = prompt tokens per token-step of the recent completions: one unit of work is then about one prefill token
  of a typical request, so the bound's slack (the backlog mean) and the share keep their meaning.
- phi: the recent fraction of engine steps that ended with requests waiting although the step's tokens were
  below the token budget (the most tokens any step carried): admissions held by KV memory (or the running
  cap), not by prefill compute. Where prefill compute binds, phi ~ 0 and work = prefill, as before.
- s: the outputs' share of the recent completions' memory-time (sum of o^2 / 2 over sum of kv_time). vLLM admits
  a request once its prompt's blocks fit; what admission does not see is the output growing after it. Where
  prompts hold most of the memory, memory-time per request follows the prompt, and prefill tokens already count
  it: s ~ 0.1 in the suite's sharegpt and azure workloads, 0.03 in mooncake. Where outputs hold it (0.30 in the
  published setting, 0.43 in bwb), short prompts with long outputs cost far more than their prefill, and the
  work moves toward memory-time. (bench/SUITE_PASSES.md, eighth pass: with phi alone, sharegpt's overloads lost
  their short-request gain, 18 -> 53 s, to a bound that was fair there already.)
A third limiter is vLLM's running cap (max_num_seqs): a request holds a running slot for its whole decode,
whatever its prompt, so where the cap holds admissions the engine admits slot-time at a fixed rate, and a
policy that admits short prompts first admits fewer prefill tokens per second (bench/SUITE_PASSES.md, twelfth
and thirteenth passes). The engine says which steps the cap held (observe_step's at_cap: requests still waiting
with the running set full); phi_cap is their share of the steps with requests waiting, and with
EWSJFConfig.slot_work_weight > 0 the work moves, by mc = slot_weight * phi_cap, toward the request's slot-time

    work -> (1 - mc) * work + mc * c_slot * (o + prompt / budget)

(o decode steps plus its prefill steps at the token budget as seen; c_slot: prompt tokens per slot-step of the
recent completions, so a unit stays about one prefill token).
The slot share is scaled by the regime, r = L / (L + W): L a request's slot-steps (the completions' mean), W
FCFS's wait in steps where the cap holds (the requests waiting as the request is queued, over the completions per
step: a cap-held engine admits as fast as it completes). Near the cap's edge (W within a lifetime or two) a few
overtakers, each holding a slot for a lifetime, are most of a request's wait, and the bound must count them so;
with a backlog many lifetimes deep they are a small part of it, and counting every request alike would serve the
backlog nearly in FCFS order and give up the short requests' gain (bench/SUITE_PASSES.md, fifteenth pass).

Each request's work is fixed when it is queued (the backlog ahead of it and the admission progress then sum
the same numbers, so FCFS's admission point stays exact however phi and o drift).

EWSJFConfig.kv_work_weight scales m (up to m = 1, the memory-time alone) and is 2 by default (twenty-first pass, since
preemptions no longer advance the bound's clock: ewsjf_core.progress_bound; 1 from the ninth pass). With phi alone (the
fifth pass's form) it was 0: on the suite's engine KV memory or the running cap holds admissions in 96-100% of the steps
with requests waiting, so phi is near 1 wherever queues build, and memory-time made the bound stricter everywhere,
giving up short-request gains where the prefill bound already kept the goals; s keeps it to where outputs hold the
memory (bench/SUITE_PASSES.md, fifth, eighth and ninth passes).
"""

from __future__ import annotations

from ewsjf_core.cost_model import MAX_STEP_TOKENS

COMPLETION_MEMORY = 512.0
"""Completions the output history remembers (exponential forgetting), overall and per length class."""
PRIOR_COMPLETIONS = 8.0
"""A class's mean output leans on the mean of all classes as if it were this many completions."""
STEP_MEMORY = 1024.0
"""Steps phi remembers: far longer than a burst's ramp, short against a workload's phases."""
N_CLASSES = 64
_KEEP_DONE = 1.0 - 1.0 / COMPLETION_MEMORY
_KEEP_STEP = 1.0 - 1.0 / STEP_MEMORY


def length_class(prompt_tokens: int) -> int:
    """Prompt-length octave: 0 for 1 token, 1 for 2-3, 2 for 4-7, ..."""
    return min(int(prompt_tokens).bit_length() - 1, N_CLASSES - 1)


class KVWork:
    """Output lengths per length class (from completions) and the shares of steps held below the token budget and
    at the running cap (from step feedback).
    Host-side state of one queue; the engine thread owns it."""

    def __init__(self) -> None:
        self._n = [0.0] * N_CLASSES       # forgotten count of completions per class...
        self._out = [0.0] * N_CLASSES     # ...and of their output tokens
        self._all_n = self._all_out = 0.0
        self._prompt = self._kv = 0.0     # forgotten sums over completions: prompt tokens, token-steps...
        self._kv_out = 0.0                # ...and the token-steps of their outputs
        self._held = self._steps = 0.0    # forgotten counts of KV-held steps and of steps with requests waiting
        self._capped = 0.0                # ...and of steps the running cap held
        self._slot = 0.0                  # forgotten sum of the completions' slot-steps (output + prefill steps)
        self._budget = 0                  # the most tokens a step carried: the engine's token budget, as seen
        self._finished = 0                # completions since the last step fed
        self._rate = 0.0                  # completions per step (exponential average over STEP_MEMORY steps)
        self.phi = 0.0
        self.phi_cap = 0.0
        # Derived at feedback, so that work() (once per add, on the hot path) reads them ready:
        self._pressure = 0.0     # phi * output_share
        self._prior_out = 0.0    # PRIOR_COMPLETIONS * the overall mean output
        self._scale = 0.0        # c: prompt tokens per token-step of the completions
        self._scale_slot = 0.0   # c_slot: prompt tokens per slot-step of the completions

    # ----- feedback -----
    def observe_finished(self, prompt_tokens: int, output_tokens: int) -> None:
        """A request finished with `output_tokens` (validated by the caller)."""
        c = length_class(prompt_tokens)
        self._finished += 1
        keep = _KEEP_DONE
        # A class forgets at its own completions (its last ~COMPLETION_MEMORY), the overall sums at every one.
        self._n[c] = keep * self._n[c] + 1.0
        self._out[c] = keep * self._out[c] + output_tokens
        self._all_n = keep * self._all_n + 1.0
        self._all_out = keep * self._all_out + output_tokens
        self._prompt = keep * self._prompt + prompt_tokens
        self._kv = keep * self._kv + kv_time(prompt_tokens, output_tokens)
        self._kv_out = keep * self._kv_out + kv_time(0, output_tokens)
        self._prior_out = PRIOR_COMPLETIONS * self._all_out / self._all_n
        self._scale = self._prompt / self._kv if self._kv > 0.0 else 0.0
        self._slot = keep * self._slot + output_tokens + prompt_tokens / max(self._budget, 1)
        self._scale_slot = self._prompt / self._slot if self._slot > 0.0 else 0.0
        self._pressure = self.phi * self.output_share

    def observe_step(self, prefill_tokens: int, decode_tokens: int, waiting: bool, at_cap: bool = False) -> None:
        """A finished step's tokens, whether requests were still waiting at its end, and whether the running
        set was then at the engine's cap."""
        tokens = prefill_tokens + decode_tokens
        self._rate = _KEEP_STEP * self._rate + (1.0 - _KEEP_STEP) * self._finished
        self._finished = 0
        if self._budget < tokens <= MAX_STEP_TOKENS:
            # The budget is the most any step carried and never forgets: one implausible report (the cost model
            # skips it too) would leave every later step "held" below it (phi -> 1) and zero slot-time's prefill.
            self._budget = tokens
        if not waiting:
            return
        keep = _KEEP_STEP
        self._steps = keep * self._steps + 1.0
        self._held = keep * self._held + (1.0 if tokens < self._budget else 0.0)
        self._capped = keep * self._capped + (1.0 if at_cap else 0.0)
        self.phi = self._held / self._steps
        self.phi_cap = self._capped / self._steps
        self._pressure = self.phi * self.output_share

    # ----- estimates -----
    def mean_output(self, prompt_tokens: int) -> float:
        """Expected output tokens of a request of this prompt length (0 before any completion)."""
        if self._all_n <= 0.0:
            return 0.0
        c = length_class(prompt_tokens)
        return (self._out[c] + self._prior_out) / (self._n[c] + PRIOR_COMPLETIONS)

    @property
    def token_budget(self) -> int:
        """The most tokens any step carried: the engine's token budget as seen (0 before a step)."""
        return self._budget

    @property
    def output_share(self) -> float:
        """s of the module docstring: the outputs' share of the recent completions' memory-time (0 before any)."""
        return self._kv_out / self._kv if self._kv > 0.0 else 0.0

    def memory_share(self, weight: float = 1.0) -> float:
        """m of the module docstring (scaled by `weight`): the share of memory-time in a request's work."""
        return min(weight * self._pressure, 1.0)

    def work(self, prompt_tokens: int, prefill: float, weight: float = 1.0, slot_weight: float = 0.0,
             waiting: int = 0) -> float:
        """The request's work in the starvation bound (module docstring, m scaled by `weight`, mc by
        `slot_weight` and by the regime, `waiting` the requests waiting as it is queued; 0: not scaled): `prefill`
        when nothing holds admissions but prefill compute, or before any completion.
        Once per add: it reads what feedback derived, and inlines mean_output and kv_time (a call each costs
        what the rest does)."""
        m = min(weight * self._pressure, 1.0)
        mc = slot_weight * self.phi_cap
        if mc > 0.0 and waiting and self._rate > 0.0 and self._all_n > 0.0:
            life = self._slot / self._all_n             # a request's slot-steps
            mc *= life / (life + waiting / self._rate)  # against FCFS's wait in steps: the backlog / completion rate
        if m <= 0.0 and mc <= 0.0:
            return prefill
        c = min(int(prompt_tokens).bit_length() - 1, N_CLASSES - 1)   # length_class
        o = (self._out[c] + self._prior_out) / (self._n[c] + PRIOR_COMPLETIONS)
        w = prefill + m * (self._scale * o * (prompt_tokens + 0.5 * o) - prefill)
        if mc > 0.0 and self._scale_slot > 0.0:   # a convex mix: the slot share comes out of both the others
            w += mc * (self._scale_slot * (o + prompt_tokens / max(self._budget, 1)) - w)
        return w


def kv_time(prompt_tokens: float, output_tokens: float) -> float:
    """Token-steps of KV memory a request holds over its decode: o steps of its prompt plus a growing output."""
    return output_tokens * (prompt_tokens + 0.5 * output_tokens)

