"""Short CI version of the soak through vLLM's real scheduler (the full run: python -m ewsjf.bench.soak_vllm)."""

import math

from ewsjf.bench.soak_vllm import SoakSettings, run_soak


def test_short_soak_loses_nothing_and_keeps_the_cost_model_sane():
    report = run_soak(SoakSettings(steps=1200, windows=3, tuner=False, check_timing=False, abort_prob=0.02,
                                   preempt_every=40, churn_steps=50, seed=3))
    assert not report.failures, report.failures
    assert report.added > 50 and report.aborted > 0 and report.preemptions > 0
    assert report.finished + report.aborted == report.added
    assert all(math.isfinite(w.cost_error) for w in report.windows)


def test_a_soak_too_short_to_fit_the_cost_model_says_so_instead_of_failing_it(capsys, monkeypatch):
    """5 steps cannot fit the prefill-cost model (its error is the prior's, 78%): the run says it is too short to
    judge it, naming --steps and the minimum, and passes; from MIN_COST_STEPS on the check applies again."""
    short = run_soak(SoakSettings(steps=5, tuner=False, check_timing=False))
    assert not short.failures, short.failures
    from ewsjf.bench.soak_vllm import MIN_COST_STEPS, main

    assert not any(w.cost_judged for w in short.windows)
    assert short.notes == [f"too short to judge the prefill-cost model: it is judged in windows ending at step "
                           f"{MIN_COST_STEPS} or later (--steps 5 with --windows 10: give --steps 1000 or more)"]
    monkeypatch.setenv("COLUMNS", "300")   # rich wraps at the terminal's width
    assert main(["--steps", "5", "--no-tuner"]) == 0
    out = capsys.readouterr().out
    assert "not checked: too short to judge the prefill-cost model" in out and "off by" not in out
    # 1-step windows: their wall time per step is one step's own cost (60-430 us seen), not a trend, so the run
    # says it is too short to judge it instead of failing at random ("per-step cost grew 2.16x").
    assert "not checked: too short to judge the per-step cost and memory" in out and "grew" not in out
    strict = run_soak(SoakSettings(steps=MIN_COST_STEPS, windows=2, tuner=False, check_timing=False,
                                   cost_tolerance=1e-4))
    assert [w.cost_judged for w in strict.windows] == [False, True] and not strict.notes
    assert len(strict.failures) == 1 and strict.failures[0].startswith("prefill-cost model off by")


def test_the_report_piped_into_a_file_keeps_every_figure_whole(capsys, monkeypatch):
    """Piped (not a terminal: a long soak's log), rich drew the table 80 columns wide and cut every figure
    ("0.04…") and wrapped the summary lines."""
    from ewsjf.bench.soak_vllm import main

    monkeypatch.delenv("COLUMNS", raising=False)
    assert main(["--steps", "20", "--windows", "2", "--no-tuner"]) == 0
    out = capsys.readouterr().out
    assert "…" not in out
    header = next(line for line in out.splitlines() if "virtual s" in line)
    assert "C(8192) s" in header and "cost err" in header
    assert any(line.startswith("requests: ") and "repartitions; tuner {" in line for line in out.splitlines())
