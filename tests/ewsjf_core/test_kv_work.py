"""KVWork: output lengths per prompt-length class from completions, the share of KV-held steps, and the work a
request counts in the starvation bound (ewsjf_core.kv_work)."""

import math
import random

import pytest

from ewsjf_core.kv_work import PRIOR_COMPLETIONS, KVWork, kv_time, length_class


def test_length_class_is_the_prompt_octave():
    assert [length_class(n) for n in (1, 2, 3, 4, 7, 8, 1000, 1024)] == [0, 1, 1, 2, 2, 3, 9, 10]
    assert length_class(2 ** 53) == 53


def test_no_completion_or_no_pressure_counts_the_prefill():
    kv = KVWork()
    assert kv.work(500, 480.0) == 480.0          # nothing finished yet
    kv.observe_finished(500, 100)
    assert kv.phi == 0.0 and kv.work(500, 480.0) == 480.0   # no step held by KV memory


def test_phi_is_the_share_of_steps_held_below_the_budget_while_requests_wait():
    kv = KVWork()
    kv.observe_step(8000, 192, waiting=True)     # a full step: the budget as seen
    assert kv.phi == 0.0
    kv.observe_step(0, 100, waiting=False)       # nobody waits: not counted
    assert kv.phi == 0.0
    kv.observe_step(0, 100, waiting=True)        # requests wait, the budget is unused: held
    assert kv.phi == pytest.approx(0.5, abs=1e-3)


def test_class_means_lean_on_the_overall_mean_until_the_class_has_history():
    kv = KVWork()
    for _ in range(4):
        kv.observe_finished(100, 1000)    # class 6
        kv.observe_finished(4000, 100)    # class 11
    overall = 550.0
    assert kv.mean_output(4000) == pytest.approx((4 * 100 + PRIOR_COMPLETIONS * overall) / (4 + PRIOR_COMPLETIONS),
                                                 rel=1e-2)
    assert kv.mean_output(100) > overall > kv.mean_output(4000)
    assert kv.mean_output(20) == pytest.approx(overall, rel=1e-2)   # a class never seen: the overall mean


def _full_pressure(kv: KVWork) -> None:
    kv.observe_step(8192, 0, waiting=True)
    for _ in range(20000):
        kv.observe_step(0, 50, waiting=True)
    assert kv.phi > 0.99


def test_work_under_full_pressure_moves_to_kv_time_by_the_outputs_share():
    kv = KVWork()
    for _ in range(2000):
        kv.observe_finished(100, 1000)
        kv.observe_finished(4000, 100)
    _full_pressure(kv)
    mem = kv_time(100, 1000) + kv_time(4000, 100)
    assert kv.output_share == pytest.approx((kv_time(0, 1000) + kv_time(0, 100)) / mem, rel=1e-3)
    m = kv.phi * kv.output_share
    # Units: the completions' prompt tokens per token-step (a unit is about a prefill token). Forgetting weighs
    # the later completion of each pair a hair more, hence the tolerance.
    c = 4100 / mem
    for prompt in (100, 4000):
        expected = (1 - m) * prompt + m * c * kv_time(prompt, kv.mean_output(prompt))
        assert kv.work(prompt, float(prompt)) == pytest.approx(expected, rel=5e-3)
    # A short prompt with long outputs holds more memory-time than its prefill says: its work grows, the
    # long prompt's shrinks.
    assert kv.work(100, 100.0) > 10 * 100 and kv.work(4000, 4000.0) < 4000
    # The weight scales the mix: 0 is the prefill.
    assert kv.work(100, 100.0, 0.0) == 100.0
    assert kv.work(100, 100.0, 0.5) == pytest.approx(100 + 0.5 * (kv.work(100, 100.0) - 100), rel=1e-9)
    # Above 1 it scales the mix further, until the work is the memory-time alone (m at most 1).
    assert kv.work(100, 100.0, 2.0) == pytest.approx(100 + 2 * m * (c * kv_time(100, kv.mean_output(100)) - 100),
                                                      rel=5e-3)
    assert kv.work(100, 100.0, 1 / m) == kv.work(100, 100.0, 10 / m) == pytest.approx(
        c * kv_time(100, kv.mean_output(100)), rel=5e-3)


def test_memory_held_by_prompts_keeps_the_prefill():
    """Where prompts hold the memory (outputs short), vLLM's admission already sees what a request holds:
    the work stays about the prefill, however full the cache."""
    kv = KVWork()
    for _ in range(2000):
        kv.observe_finished(100, 10)
        kv.observe_finished(4000, 10)
    _full_pressure(kv)
    assert kv.output_share < 0.01
    assert kv.work(100, 100.0) == pytest.approx(100.0, rel=0.02)
    assert kv.work(4000, 4000.0) == pytest.approx(4000.0, rel=0.02)


def test_hours_of_feedback_keep_the_estimates_finite_and_following_the_engine():
    """Soak: 200,000 completions and steps (hours of a busy engine) in two regimes. The state stays
    finite and forgets: after the switch the estimates follow the new regime, not the long past."""
    kv = KVWork()
    rng = random.Random(0)
    for regime, (out_scale, held_share, cap_share) in enumerate(((50, 0.1, 0.05), (2000, 0.9, 0.6))):
        for _ in range(100_000):
            prompt = int(2 ** rng.uniform(0, 20))   # every length class sees thousands
            kv.observe_finished(prompt, rng.randint(0, 2 * out_scale))
            held = rng.random() < held_share
            at_cap = held and rng.random() < cap_share / held_share
            kv.observe_step(rng.randint(1, 8191) if held else 8192, 0, True, at_cap)
        assert 0.0 <= kv.phi <= 1.0 and abs(kv.phi - held_share) < 0.1
        assert 0.0 <= kv.phi_cap <= kv.phi and abs(kv.phi_cap - cap_share) < 0.1
        assert 0.0 <= kv.output_share <= 1.0
        for prompt in (10, 1000, 100_000):
            o = kv.mean_output(prompt)
            assert math.isfinite(o) and abs(o - out_scale) < 0.2 * out_scale, (regime, prompt, o)
            assert math.isfinite(kv.work(prompt, float(prompt)))
            assert 0.0 < kv.work(prompt, float(prompt), 1.0, 1.0) < math.inf


def test_phi_cap_is_the_share_of_waiting_steps_the_running_cap_held():
    kv = KVWork()
    kv.observe_step(8000, 192, waiting=True)                 # a full step
    kv.observe_step(0, 100, waiting=True, at_cap=True)       # the running cap held admissions
    kv.observe_step(0, 100, waiting=False, at_cap=True)      # nobody waits: not counted
    assert kv.phi_cap == pytest.approx(0.5, abs=1e-3)
    assert kv.phi == pytest.approx(0.5, abs=1e-3)            # a cap-held step is also below the budget


def test_work_under_the_running_cap_moves_to_slot_time():
    """Where the cap holds every step, a request's work is its slot-time (its class's mean output plus its
    prefill steps) in units of the completions' prompt tokens per slot-step, by the slot weight."""
    kv = KVWork()
    kv.observe_step(1000, 0, waiting=True)                  # the budget as seen: 1000 tokens
    for _ in range(2000):
        kv.observe_finished(100, 300)
        kv.observe_finished(3000, 300)
    for _ in range(20000):
        kv.observe_step(0, 50, waiting=True, at_cap=True)
    assert kv.phi_cap > 0.99
    assert kv.work(100, 100.0, 0.0, 0.0) == 100.0          # both weights 0: the prefill
    assert kv.work(100, 100.0, 0.0) == 100.0                # the slot weight defaults to 0
    c_slot = 3100 / (300 + 0.1 + 300 + 3.0)
    for prompt in (100, 3000):
        slot = kv.mean_output(prompt) + prompt / 1000
        expected = prompt + kv.phi_cap * (c_slot * slot - prompt)
        assert kv.work(prompt, float(prompt), 0.0, 1.0) == pytest.approx(expected, rel=5e-3)
    # With memory-time pressure too, the slot share is taken out of the mix of the two others.
    kv.observe_finished(3000, 300)
    for prompt in (100, 3000):
        kv_mix = kv.work(prompt, float(prompt), 1.0, 0.0)
        slot = kv.work(prompt, float(prompt), 0.0, 1.0)
        mixed = kv_mix + kv.phi_cap * (slot - kv_mix)
        assert kv.work(prompt, float(prompt), 1.0, 1.0) == pytest.approx(mixed, rel=1e-9)
    # Slot-time hardly depends on the prompt: at full weight every request counts about the mean prompt.
    assert kv.work(100, 100.0, 0.0, 1.0) == pytest.approx(kv.work(3000, 3000.0, 0.0, 1.0), rel=0.01)
    half = kv.work(100, 100.0, 0.0, 0.5)
    assert half == pytest.approx(100 + 0.5 * (kv.work(100, 100.0, 0.0, 1.0) - 100), rel=1e-9)


def test_an_implausible_step_does_not_become_the_token_budget():
    """The budget is the most tokens any step carried and is never forgotten: one report of 10**12 tokens (which
    observe_step accepts and the cost model skips as implausible) made every later full step count as held below
    it, phi -> 1 for the rest of the run, and a report of 10**400 made a request's slot-time work 0."""
    kv = KVWork()
    kv.observe_step(8192, 0, waiting=True)
    kv.observe_step(10 ** 12, 0, waiting=True)
    for _ in range(5000):
        kv.observe_step(8000, 192, waiting=True)   # full steps: prefill compute holds admissions, not KV memory
    assert kv.phi < 0.01
    kv = KVWork()
    kv.observe_finished(1, 0)
    kv.observe_step(0, 0, waiting=True, at_cap=True)
    kv.observe_step(10 ** 400, 0, waiting=False)
    assert kv.phi_cap == 1.0 and 0.0 < kv.work(1, 1.0, 0.0, 1.0) < math.inf


@pytest.mark.parametrize("seed", range(40))
def test_work_is_finite_and_positive_for_every_weight_and_any_feedback(seed):
    """Property: whatever feedback came (none, completions only, steps only, budget never seen, outputs of 0,
    prompts and steps up to 2**53 tokens and beyond), every weight pair (the memory weight up to 1e6, the slot
    weight in [0, 1]) gives a finite work > 0."""
    rng = random.Random(seed)
    kv = KVWork()
    big = (0, 1, 2 ** 53, 10 ** 400)
    for _ in range(rng.choice((0, 1, 5, 200))):
        if rng.random() < 0.5:
            kv.observe_finished(rng.choice((1, rng.randint(1, 2 ** 53), 2 ** 53)),
                                rng.choice((0, rng.randint(0, 2 ** 53))))
        else:
            kv.observe_step(rng.choice((*big, rng.randint(0, 8192))), rng.choice((0, rng.randint(0, 512))),
                            rng.random() < 0.8, rng.random() < 0.5)
    for weight in (0.0, 5e-324, 0.5, 1.0, 2.0, 1e6, rng.random()):
        for slot_weight in (0.0, 5e-324, 0.5, 1.0, rng.random()):
            for prompt in (1, 2, 100, 2 ** 53):
                work = kv.work(prompt, float(prompt), weight, slot_weight)
                assert 0.0 < work < math.inf, (weight, slot_weight, prompt, work)


def test_the_slot_share_shrinks_as_the_backlog_grows_against_a_requests_lifetime():
    """The slot share mc is scaled by L / (L + W): L a request's slot-steps, W FCFS's wait in steps where the cap
    holds (the requests waiting over the completions per step). A backlog many lifetimes deep counts prefill."""
    kv = KVWork()
    kv.observe_step(1000, 0, waiting=True)                  # the budget as seen: 1000 tokens
    for _ in range(2000):                                   # one completion every 5 cap-held steps
        kv.observe_finished(100, 300)
        kv.observe_finished(3000, 300)
        for _ in range(10):
            kv.observe_step(0, 50, waiting=True, at_cap=True)
    assert kv.phi_cap > 0.99
    life = (300 + 0.1 + 300 + 3.0) / 2                      # mean slot-steps of the completions
    full = kv.work(100, 100.0, 0.0, 1.0)                    # no backlog: the whole slot share
    assert full > 1000                                      # slot-time counts a short prompt as about the mean
    assert kv.work(100, 100.0, 0.0, 1.0, waiting=0) == full
    for waiting in (1, 30, 300, 3000):
        r = life / (life + waiting / 0.2)
        expected = 100 + r * (full - 100)
        assert kv.work(100, 100.0, 0.0, 1.0, waiting=waiting) == pytest.approx(expected, rel=2e-2)
    assert kv.work(100, 100.0, 0.0, 1.0, waiting=30000) < 110     # 50 lifetimes deep: about its prefill
