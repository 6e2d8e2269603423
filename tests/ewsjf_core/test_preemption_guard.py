"""The watermark learned from preemptions (ewsjf_core.preemption_guard): zero until a step preempts, then the
blocks the running batch grows by between two completions (lifetime / block size), decaying over the measured
lifetime, never over half the cache; bad input refused with the state unchanged; bounded over long runs."""

import math

import pytest

from ewsjf_core.preemption_guard import DEFAULT_LIFETIME_STEPS, LIFETIME_WINDOW, PreemptionGuard


def test_zero_until_a_step_preempts():
    g = PreemptionGuard(1000, 16)
    assert [g.begin_step() for _ in range(5)] == [0] * 5
    assert g.watermark == 0 and g.preemptions == 0


def test_a_preemption_sets_the_next_steps_watermark_to_the_growth_between_completions():
    g = PreemptionGuard(10_000, 16)
    for out in (300, 340):    # lifetime 320 steps: 20 blocks of growth between two completions
        g.finished(out)
    g.begin_step()
    g.preempted()
    g.preempted()
    assert g.watermark == 0          # the step that preempted admits nothing anyway; the next one sees it
    assert g.begin_step() == 20 and g.preemptions == 2
    assert g.begin_step() == int(20 * math.exp(-1 / 320))
    g.preempted()                    # again: back to the full growth
    assert g.begin_step() == 20


def test_decays_over_the_measured_lifetime():
    g = PreemptionGuard(100_000, 1)
    for out in (90, 110):
        g.finished(out)
    assert g.lifetime_steps == pytest.approx(100.0)
    g.preempted()
    assert g.begin_step() == 100
    for _ in range(100):          # one lifetime later: 1/e of it
        w = g.begin_step()
    assert w == pytest.approx(100 * math.exp(-1), abs=1)
    for _ in range(1000):
        w = g.begin_step()
    assert w == 0                 # preemptions over: the engine runs as vLLM ships it again


def test_before_any_completion_the_default_lifetime_holds():
    g = PreemptionGuard(10_000, 16)
    g.preempted()
    assert g.begin_step() == int(DEFAULT_LIFETIME_STEPS / 16)


def test_never_more_than_half_the_cache():
    g = PreemptionGuard(101, 1)
    g.finished(5000)
    g.preempted()
    assert g.begin_step() == 50


@pytest.mark.parametrize("bad", [-3, "7", False, 2.5, None])
def test_a_bad_output_length_is_refused_by_name_and_changes_nothing(bad):
    g = PreemptionGuard(1000, 16)
    g.finished(40)
    g.preempted()
    before = (g.begin_step(), g.lifetime_steps, g.preemptions)
    with pytest.raises(ValueError, match="finished output_tokens"):
        g.finished(bad)
    assert (g.watermark, g.lifetime_steps, g.preemptions) == before


@pytest.mark.parametrize("field, args", [("total_blocks", (0, 16)), ("total_blocks", (True, 16)),
                                         ("total_blocks", (2.0, 16)), ("block_size", (100, 0)),
                                         ("block_size", (100, None))])
def test_sizes_are_checked(field, args):
    with pytest.raises(ValueError, match=field):
        PreemptionGuard(*args)


def test_soak_state_stays_bounded_and_follows_a_new_workload():
    """200,000 steps in two regimes: the lifetime follows the second one once its completions outnumber the
    window, the watermark stays within [0, half the cache], and the state is a few numbers throughout."""
    g = PreemptionGuard(4000, 16)
    for step in range(200_000):
        w = g.begin_step()
        assert 0 <= w <= 2000
        long_outputs = step < 100_000
        if step % 5 == 0:
            g.finished(2000 if long_outputs else 50)
        if long_outputs and step % 997 == 0:
            g.preempted()
    # Past the window the mean is an exponential average over LIFETIME_WINDOW completions: 20,000 of 50 after
    # the first regime's 2,000 leave (2000 - 50) x (1 - 1 / window) ** 20,000 of the old lifetime.
    assert g.lifetime_steps == pytest.approx(50 + 1950 * (1 - 1 / LIFETIME_WINDOW) ** 20_000, rel=1e-6)
    assert g.watermark == 0
    assert len(vars(g)) == 7
