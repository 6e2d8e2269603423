"""The watermark learned from preemptions (ewsjf_core.preemption_guard): zero until a preemption, the most blocks
one step preempted, decayed over the measured lifetime, never over half the cache; bad input refused with the
state unchanged; bounded over long runs."""

import math

import pytest

from ewsjf_core.preemption_guard import DEFAULT_LIFETIME_STEPS, LIFETIME_WINDOW, PreemptionGuard


def test_zero_until_a_step_preempts():
    g = PreemptionGuard(1000)
    assert [g.begin_step() for _ in range(5)] == [0] * 5
    assert g.watermark == 0 and g.preempted_blocks == 0


def test_the_steps_preemptions_set_the_next_steps_watermark():
    g = PreemptionGuard(1000)
    g.begin_step()
    g.preempted(30)
    g.preempted(20)      # one step, two victims: their blocks add up
    assert g.watermark == 0          # the step that preempted admits nothing anyway; the next one sees it
    assert g.begin_step() == 50
    g.preempted(10)      # a smaller step later does not lower it: the most any one step needed
    assert g.begin_step() == int(50 * math.exp(-1 / DEFAULT_LIFETIME_STEPS))
    assert g.preempted_blocks == 60


def test_decays_over_the_measured_lifetime():
    g = PreemptionGuard(10_000)
    for out in (90, 110):
        g.finished(out)
    assert g.lifetime_steps == pytest.approx(100.0)
    g.preempted(1000)
    g.begin_step()
    for _ in range(100):          # one lifetime later: 1/e of it
        w = g.begin_step()
    assert w == pytest.approx(1000 * math.exp(-100 / 100), abs=1)
    for _ in range(1000):
        w = g.begin_step()
    assert w == 0                 # preemptions over: the engine runs as vLLM ships it again


def test_never_more_than_half_the_cache():
    g = PreemptionGuard(101)
    g.preempted(500)
    assert g.begin_step() == 50


@pytest.mark.parametrize("call, bad", [("preempted", -1), ("preempted", 1.5), ("preempted", True),
                                        ("preempted", None), ("finished", -3), ("finished", "7"),
                                        ("finished", False)])
def test_bad_input_is_refused_by_name_and_changes_nothing(call, bad):
    g = PreemptionGuard(1000)
    g.finished(40)
    g.preempted(8)
    before = (g.begin_step(), g.lifetime_steps, g.preempted_blocks)
    with pytest.raises(ValueError, match="preempted blocks|finished output_tokens"):
        getattr(g, call)(bad)
    assert (g.watermark, g.lifetime_steps, g.preempted_blocks) == before


@pytest.mark.parametrize("bad", [0, -5, 2.0, True, None])
def test_total_blocks_is_checked(bad):
    with pytest.raises(ValueError, match="total_blocks"):
        PreemptionGuard(bad)


def test_soak_state_stays_bounded_and_follows_a_new_workload():
    """200,000 steps in two regimes: the lifetime follows the second one once its completions outnumber the
    window, the watermark stays within [0, half the cache], and the state is a few numbers throughout."""
    g = PreemptionGuard(4000)
    for step in range(200_000):
        w = g.begin_step()
        assert 0 <= w <= 2000
        long_outputs = step < 100_000
        if step % 5 == 0:
            g.finished(2000 if long_outputs else 50)
        if long_outputs and step % 997 == 0:
            g.preempted(300)
    # Past the window the mean is an exponential average over LIFETIME_WINDOW completions: 20,000 of 50 after
    # the first regime's 2,000 leave (2000 - 50) x (1 - 1 / window) ** 20,000 of the old lifetime.
    assert g.lifetime_steps == pytest.approx(50 + 1950 * (1 - 1 / LIFETIME_WINDOW) ** 20_000, rel=1e-6)
    assert g.lifetime_steps < 70
    assert g.watermark == 0
    assert len(vars(g)) == 6
