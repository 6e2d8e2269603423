"""`ewsjf bench --suite`: the operating-point bisection and its cache, the goal checks, the SJF-with-aging
baseline, and a small end-to-end run (one workload, few requests; the full suite is a documented command)."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

from ewsjf.bench import cli, suite, suite_goals, suite_loads
from ewsjf.bench.suite_policies import AgingSJFQueue, parse
from ewsjf.bench.suite_workloads import SUITE


def test_find_scale_brackets_and_bisects_a_monotone_curve():
    calls = []

    def curve(s):  # mean TTFT that grows steeply near saturation at s = 4
        calls.append(s)
        return 0.2 + 1.0 / max(4.0 - s, 1e-3) - 0.25
    for target in (1.0, 3.0, 10.0):
        s, v = suite_loads.find_scale(curve, target, tolerance=0.05)
        assert abs(v / target - 1) <= 0.05 and curve(s) == pytest.approx(v)
    assert len(calls) < 80


def test_find_scale_reports_an_unreachable_target():
    s, v = suite_loads.find_scale(lambda s: 5.0 + s, 1.0)  # the idle engine already waits 5 s
    assert v > 1.0 and s <= 1.0 / 32


def test_operating_points_are_cached_by_key(tmp_path):
    path = str(tmp_path / "cache.json")
    calls = []

    def curve(s):
        calls.append(s)
        return 2.0 * s
    key = {"workload": "w", "requests": 10}
    first = suite_loads.operating_points(key, curve, (1.0, 3.0), path)
    n = len(calls)
    again = suite_loads.operating_points(key, curve, (1.0, 3.0), path)
    assert again == first and len(calls) == n  # served from the cache
    suite_loads.operating_points({**key, "requests": 11}, curve, (1.0, 3.0), path)
    assert len(calls) > n  # a different key recomputes
    (tmp_path / "cache.json").write_text("{not json")
    assert suite_loads.operating_points(key, curve, (1.0, 3.0), path) == first  # corrupt cache: recomputed


def _m(short, long_p99, wait, tps, mean=5.0):
    return {"ttft_s": {"mean": mean}, "ttft_by_class_s": {"short": {"mean": short}, "long": {"p99": long_p99}},
            "longest_wait_s": wait, "output_tps": tps, "output_tps_window": tps}


def test_goal_checks_pass_and_fail_on_each_bound():
    base = {"fcfs": _m(4.0, 20.0, 30.0, 100.0), "oracle-sjf": _m(0.5, 40.0, 60.0, 100.0),
            "hrrn": _m(1.0, 24.0, 34.0, 100.0)}
    good = suite_goals.check_cell({**base, "ewsjf": _m(0.6, 23.0, 33.0, 100.0)})
    assert all(g["ok"] for g in good.values())
    bad = suite_goals.check_cell({**base, "ewsjf": _m(1.2, 26.0, 46.0, 98.0)})
    assert not any(g["ok"] for g in bad.values())
    light = suite_goals.check_cell({**{k: {**v, "ttft_s": {"mean": 1.0}} for k, v in base.items()},
                                    "ewsjf": _m(0.6, 23.0, 33.0, 100.0, mean=0.8)})
    assert light["near"]["ok"] is None  # only judged where FCFS's mean TTFT >= 3 s


def test_a_dominance_miss_says_by_how_much_each_failing_figure_is_over_hrrns():
    base = {"fcfs": _m(4.0, 20.0, 30.0, 100.0), "hrrn": _m(1.0, 24.0, 34.0, 100.0)}
    hair = suite_goals.check_cell({**base, "ewsjf": _m(0.6, 24.03, 33.0, 100.0)})["hrrn"]
    assert hair["ok"] is False and hair["why"].endswith("(over HRRN's: long p99 +0.1%)")
    both = suite_goals.check_cell({**base, "ewsjf": _m(1.1, 26.4, 33.0, 100.0)})["hrrn"]
    assert both["why"].endswith("(over HRRN's: short +10.0%, long p99 +10.0%)")
    assert "over" not in suite_goals.check_cell({**base, "ewsjf": _m(1.0, 24.0, 33.0, 100.0)})["hrrn"]["why"]


def test_dominance_unreachable_only_when_hrrn_breaks_the_bounds_and_nothing_within_them_matches_it():
    base = {"fcfs": _m(4.0, 20.0, 30.0, 100.0), "oracle-sjf": _m(0.5, 40.0, 60.0, 100.0),
            "hrrn": _m(1.0, 30.0, 50.0, 100.0)}            # HRRN: long p99 1.5x, longest wait 1.67x FCFS's
    ewsjf = _m(1.5, 24.0, 40.0, 100.0)                      # fair, slower on short than HRRN
    worse = {"ewsjf:fcfs_wait_factor=2": _m(1.2, 26.0, 44.0, 100.0)}    # faster but out of the bounds
    g = suite_goals.check_cell({**base, "ewsjf": ewsjf}, front=worse)["hrrn"]
    assert g["ok"] is None and g["unreachable"] and "HRRN's long p99 1.50x" in g["why"]
    within = {"sjf-aging:0.1": _m(0.9, 24.0, 40.0, 100.0)}   # a swept scheduler within the bounds matches HRRN
    assert suite_goals.check_cell({**base, "ewsjf": ewsjf}, front=within)["hrrn"]["ok"] is False
    fair_hrrn = {**base, "hrrn": _m(1.0, 24.0, 34.0, 100.0)}  # HRRN within the bounds: it is its own witness
    assert suite_goals.check_cell({**fair_hrrn, "ewsjf": ewsjf}, front=worse)["hrrn"]["ok"] is False
    assert suite_goals.check_cell({**base, "ewsjf": ewsjf})["hrrn"]["ok"] is False   # no sweep: a failure


def test_the_sweep_runs_where_it_may_decide_a_goal():
    light = {"fcfs": _m(0.8, 20.0, 30.0, 100.0, mean=1.0), "oracle-sjf": _m(0.5, 40.0, 60.0, 100.0, mean=0.7)}
    unfair_hrrn = _m(0.5, 30.0, 50.0, 100.0, mean=0.9)      # HRRN: longest wait 1.67x FCFS's
    fair_hrrn = _m(0.5, 21.0, 32.0, 100.0, mean=0.9)
    loses = _m(0.6, 22.0, 33.0, 100.0, mean=0.9)
    wins = _m(0.4, 19.0, 33.0, 100.0, mean=0.9)
    assert suite_goals.sweep_decides({**light, "hrrn": unfair_hrrn, "ewsjf": loses})
    assert not suite_goals.sweep_decides({**light, "hrrn": unfair_hrrn, "ewsjf": wins})    # nothing to decide
    assert not suite_goals.sweep_decides({**light, "hrrn": fair_hrrn, "ewsjf": loses})    # HRRN is its witness
    loaded = {k: {**v, "ttft_s": {"mean": 5.0}} for k, v in light.items()}
    assert suite_goals.sweep_decides({**loaded, "hrrn": fair_hrrn, "ewsjf": wins})         # the near-limit goal


def test_aging_sjf_spans_sjf_to_fcfs():
    def order(aging):
        q = AgingSJFQueue(clock=lambda: 100.0, aging=aging)
        q.add("old-long", 8000, arrival_time=0.0)
        q.add("new-short", 10, arrival_time=99.0)
        q.begin_step(100.0)
        return [q.pop(), q.pop()]
    assert order(0.0) == ["new-short", "old-long"]
    assert order(1000.0) == ["old-long", "new-short"]
    assert parse("sjf-aging:0.3") == ("sjf-aging", {"aging": 0.3})
    assert parse("ewsjf:fcfs_wait_factor=2.5") == ("ewsjf", {"fcfs_wait_factor": 2.5})
    assert parse("ewsjf:max_queues=16") == ("ewsjf", {"max_queues": 16})   # an int field stays an int
    with pytest.raises(ValueError, match="unknown suite policy"):
        parse("lifo")


def test_suite_workloads_build_deterministically():
    for sw in SUITE:
        a, b = sw.build(60, 0), sw.build(60, 0)
        assert len(a) == 60 and (a.arrival_s == b.arrival_s).all() and (a.prompt_tokens == b.prompt_tokens).all()


def test_suite_end_to_end_small(tmp_path, capsys):
    out = tmp_path / "suite"
    rc = cli.main(["bench", "--suite", "--suite-workloads", "azure-code", "--suite-requests", "80",
                   "--suite-cache", str(tmp_path / "c.json"), "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "azure-code @ 1 s" in text and "overload" in text and "goal checks pass" in text
    doc = json.loads((out / "suite.json").read_text())
    cells = doc["workloads"][0]["cells"]
    assert len(cells) == 4 and set(cells[0]["metrics"]) == {"fcfs", "oracle-sjf", "hrrn", "ewsjf"}
    assert set(cells[0]["goals"]) == set(suite_goals.GOALS)
    assert (out / "pareto_azure-code.png").stat().st_size > 1000
    assert "| azure-code @ 1 s |" in (out / "suite.md").read_text()
    assert "over 1.5x own FCFS TTFT: all / long" in (out / "suite.md").read_text()
    assert set(cells[0]["later_than_fcfs"]) == {"oracle-sjf", "hrrn", "ewsjf"}
    assert cli.main(["bench", "--suite", "--suite-workloads", "nope"]) == 2
    assert math.isfinite(cells[1]["point"]["scale"])
    # The first quarter of the arrivals warms the engine up: not measured, by any policy.
    assert doc["workloads"][0]["measured_from"] == 20
    assert all(m["measured_from"] == 20 for c in cells for m in c["metrics"].values())
    assert all(isinstance(c["point"]["steady"], bool) for c in cells)


def test_suite_tuner_runs_ewsjf_with_its_tuner_in_ewsjfs_column(tmp_path, capsys, monkeypatch):
    """--suite-tuner: the EWSJF column is the ewsjf-tuned policy (the baselines and the sweep are unchanged), and
    the report says so."""
    ran = []
    real = suite.run_policy

    def recording(wl, spec, *a, **k):
        ran.append(spec)
        return real(wl, spec, *a, **k)

    monkeypatch.setattr(suite, "run_policy", recording)
    out = tmp_path / "tuned"
    rc = cli.main(["bench", "--suite", "--suite-workloads", "azure-code", "--suite-requests", "80", "--no-pareto",
                   "--no-plots", "--suite-tuner", "--suite-cache", str(tmp_path / "c.json"), "--out", str(out)])
    assert rc == 0
    doc = json.loads((out / "suite.json").read_text())
    cells = doc["workloads"][0]["cells"]
    assert doc["ewsjf_tuner"] is True and set(cells[0]["metrics"]) == {"fcfs", "oracle-sjf", "hrrn", "ewsjf"}
    assert ran.count("ewsjf-tuned") == len(cells) and "ewsjf" not in ran
    assert "Bayesian tuner on" in (out / "suite.md").read_text()
    capsys.readouterr()
    assert cli.main(["bench", "--workload", "x.csv", "--suite-tuner"]) == 2   # a suite option without --suite
    assert "--suite-tuner" in capsys.readouterr().err


def test_a_load_is_steady_unless_fcfs_waits_grow_over_the_measured_arrivals():
    level = np.r_[np.full(25, 50.0), np.full(100, 1.0) + np.sin(np.arange(100))]   # a warm-up, then level
    growing = np.r_[np.zeros(25), np.linspace(1.0, 30.0, 100)]
    assert suite._steady(level, 25) and not suite._steady(growing, 25)
    assert suite.cell_scale([{"scale": 1.0}, {"scale": 2.0}, {"scale": 3.0}, {"scale": 4.5}], "ovl") == 4.5
    assert suite.cell_scale([{"scale": 1.0}, {"scale": 2.0}, {"scale": 3.0}, {"scale": 4.5}], "3") == 2.0


def test_suite_gpu_replays_every_workload_on_another_gpu(tmp_path, capsys):
    """--suite-gpu: the same workload on a faster GPU reaches FCFS's 1 s point at a higher arrival rate."""
    scales = {}
    for gpu in ("a100-80gb", "h100"):
        out = tmp_path / gpu
        rc = cli.main(["bench", "--suite", "--suite-workloads", "azure-code", "--suite-requests", "80", "--no-pareto",
                       "--no-plots", "--suite-gpu", gpu, "--suite-cache", str(tmp_path / "c.json"), "--out", str(out)])
        assert rc == 0
        assert f"hardware: llama-3-8b on {'h100-80gb' if gpu == 'h100' else gpu}" in capsys.readouterr().out
        w = json.loads((out / "suite.json").read_text())["workloads"][0]
        assert w["gpu"] == ("h100-80gb" if gpu == "h100" else gpu)
        scales[w["gpu"]] = w["cells"][0]["point"]["scale"]
    assert scales["h100-80gb"] > scales["a100-80gb"]
    capsys.readouterr()
    assert cli.main(["bench", "--suite", "--suite-workloads", "azure-code", "--suite-gpu", "h300"]) == 2
    assert "unknown GPU 'h300'" in capsys.readouterr().err


def test_suite_model_replays_every_workload_with_another_model(tmp_path, capsys):
    out = tmp_path / "q"
    rc = cli.main(["bench", "--suite", "--suite-workloads", "published", "--suite-requests", "60", "--no-pareto",
                   "--no-plots", "--suite-model", "Qwen2.5-7B", "--suite-cache", str(tmp_path / "c.json"),
                   "--out", str(out)])
    assert rc == 0
    assert json.loads((out / "suite.json").read_text())["workloads"][0]["model"] == "qwen2.5-7b"
    capsys.readouterr()
    assert cli.main(["bench", "--suite", "--suite-workloads", "azure-code", "--suite-model", "gpt-5"]) == 2
    assert "unknown model 'gpt-5'" in capsys.readouterr().err
    # A model that leaves no memory for the KV cache is refused by name, before any replay.
    assert cli.main(["bench", "--suite", "--suite-workloads", "azure-code", "--suite-model", "llama-3-70b",
                     "--suite-cache", ""]) == 2
    assert "does not fit on A100-80GB" in capsys.readouterr().err


def test_suite_model_from_an_hf_config(tmp_path, capsys):
    """--suite-model also takes an HF config.json; its cached loads key on the file's content, not its path alone."""
    config = tmp_path / "my-8b" / "config.json"
    config.parent.mkdir()
    shape = {"num_attention_heads": 32, "num_key_value_heads": 8, "hidden_size": 4096, "num_hidden_layers": 32,
             "intermediate_size": 14336, "vocab_size": 128256}
    config.write_text(json.dumps(shape))
    args = ["bench", "--suite", "--suite-workloads", "published", "--suite-requests", "60", "--no-pareto",
            "--no-plots", "--suite-model", str(config.parent), "--suite-cache", str(tmp_path / "c.json")]
    assert cli.main([*args, "--out", str(tmp_path / "a")]) == 0
    assert json.loads((tmp_path / "a" / "suite.json").read_text())["workloads"][0]["model"] == os.path.realpath(
        config.parent)
    keys = set(json.loads((tmp_path / "c.json").read_text()))
    config.write_text(json.dumps({**shape, "num_hidden_layers": 40}))   # another model at the same path
    assert cli.main([*args, "--out", str(tmp_path / "b")]) == 0
    assert len(set(json.loads((tmp_path / "c.json").read_text())) - keys) == 1   # its loads bisected anew
    capsys.readouterr()


def test_later_than_fcfs_counts_requests_over_one_and_a_half_times_their_own_fcfs_ttft():
    fcfs = np.array([1.0, 2.0, 4.0, 10.0, np.nan])
    ttft = np.array([1.4, 3.1, 4.0, 16.0, 5.0])   # the second and the fourth are over 1.5x; the last was not served
    is_long = np.array([False, False, True, True, True])
    assert suite_goals.later_than_fcfs(ttft, fcfs, is_long) == [0.5, 0.5]
    assert suite_goals.later_than_fcfs(fcfs, fcfs, is_long) == [0.0, 0.0]
