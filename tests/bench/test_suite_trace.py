"""`ewsjf bench --suite --workload FILE`: the suite's goals on a user's own trace (bench/suite_trace.py)."""

import json

import numpy as np
import pytest

from ewsjf.bench import cli, suite, suite_trace
from ewsjf.bench.suite_workloads import BY_NAME
from ewsjf.bench.trace_input import TraceError


def _csv(path, n=80, scale=1):
    rng = np.random.default_rng(3)
    rows = [f"{0.05 * i * scale:.3f},{int(p)},{int(o)}"
            for i, (p, o) in enumerate(zip(rng.integers(20, 3000, n), rng.integers(5, 300, n)))]
    path.write_text("arrival_s,prompt_tokens,output_tokens\n" + "\n".join(rows) + "\n")
    return path


def test_a_suite_name_is_the_suite_workload(tmp_path):
    assert suite_trace.from_trace("azure-conv") is BY_NAME["azure-conv"]
    assert suite_trace.from_trace("sharegpt") is BY_NAME["sharegpt"]


def test_a_trace_file_becomes_a_workload_keyed_by_its_content(tmp_path):
    a = suite_trace.from_trace(str(_csv(tmp_path / "mine.csv")))
    assert a.name == "mine" and "csv trace" in a.what
    w = a.build(50, 0)
    assert len(w) == 50 and w.arrival_s[0] == 0
    same = suite_trace.from_trace(str(tmp_path / "mine.csv"))
    edited = suite_trace.from_trace(str(_csv(tmp_path / "mine.csv", scale=2)))
    assert same.digest == a.digest != edited.digest


def test_a_length_file_draws_arrivals_per_seed_with_the_cv(tmp_path):
    f = tmp_path / "lens.csv"
    f.write_text("num_prefill_tokens,num_decode_tokens\n" + "\n".join(f"{10 + i},{5 + i}" for i in range(40)) + "\n")
    poisson, bursty = suite_trace.from_trace(str(f)), suite_trace.from_trace(str(f), cv=4.0)
    assert poisson.digest != bursty.digest
    a, b, c = poisson.build(60, 0), poisson.build(60, 0), poisson.build(60, 1)
    assert len(a) == 60 and (a.arrival_s == b.arrival_s).all() and not (a.arrival_s == c.arrival_s).all()
    gaps = np.diff(bursty.build(2000, 0).arrival_s)
    assert gaps.std() / gaps.mean() > 2   # CV 4 asked for


@pytest.mark.parametrize("content, message", [
    ("arrival_s,prompt_tokens,output_tokens\n0,10,5\n1,ten,5\n", "bad.csv:3: prompt_tokens"),
    ("", "bad.csv"),
])
def test_a_malformed_trace_is_refused_before_any_replay(tmp_path, content, message):
    f = tmp_path / "bad.csv"
    f.write_text(content)
    with pytest.raises(TraceError, match=message):
        suite_trace.from_trace(str(f))


def test_the_cv_of_a_trace_with_its_own_arrivals_is_refused(tmp_path):
    with pytest.raises(ValueError, match="--cv applies only to a length-only trace"):
        suite_trace.from_trace(str(_csv(tmp_path / "t.csv")), cv=2.0)
    with pytest.raises(TraceError, match="no such"):
        suite_trace.from_trace(str(tmp_path / "missing.csv"))


def test_suite_on_a_users_trace_end_to_end(tmp_path, capsys):
    trace, cache = _csv(tmp_path / "mine.csv", n=120), tmp_path / "c.json"
    out = tmp_path / "s"
    rc = cli.main(["bench", "--suite", "--workload", str(trace), "--suite-requests", "100", "--no-pareto",
                   "--no-plots", "--suite-cache", str(cache), "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    assert "mine @ " in capsys.readouterr().out
    doc = json.loads((out / "suite.json").read_text())
    assert [w["workload"] for w in doc["workloads"]] == ["mine"]   # the trace alone
    assert len(doc["workloads"][0]["cells"]) >= 2
    keys = json.loads(cache.read_text())
    assert [v["parts"]["trace"] for v in keys.values()] == [suite_trace.from_trace(str(trace)).digest]
    # With --suite-workloads as well: those, then the trace.
    picked = [sw.name for sw in suite.selected_workloads("azure-code", str(trace))]
    assert picked == ["azure-code", "mine"]


@pytest.mark.parametrize("argv, message", [
    (["--suite", "--cv", "2"], "--cv: with --suite it describes a trace given by --workload FILE"),
    (["--suite", "--format", "csv"], "--format: with --suite"),
    (["--suite", "--workload", "nope.csv"], "no such trace file"),
    (["--suite", "--suite-workloads", "nope"], "unknown suite workload 'nope'"),
])
def test_suite_trace_options_are_refused_alone_or_bad(capsys, monkeypatch, argv, message):
    def ran(*_, **__):
        raise AssertionError("the suite ran")
    monkeypatch.setattr(suite, "run_workload", ran)
    assert cli.main(["bench", *argv]) == 2
    assert message in capsys.readouterr().err


def test_a_trace_the_engine_rejects_is_refused_by_name_or_said_in_part(tmp_path, capsys):
    huge = tmp_path / "huge.csv"
    huge.write_text("arrival_s,prompt_tokens,output_tokens\n" + "".join(f"{i},5000000,10\n" for i in range(60)))
    assert cli.main(["bench", "--suite", "--workload", str(huge), "--suite-requests", "60", "--no-pareto",
                     "--suite-cache", ""]) == 2
    err = capsys.readouterr().err
    assert "--kv-blocks: the engine would reject every request of suite workload huge" in err
    mixed = tmp_path / "mixed.csv"
    mixed.write_text("arrival_s,prompt_tokens,output_tokens\n" + "".join(
        f"{0.2 * i},{5000000 if i % 10 == 0 else 200 + 30 * i},{20}\n" for i in range(100)))
    out = tmp_path / "m"
    assert cli.main(["bench", "--suite", "--workload", str(mixed), "--suite-requests", "100", "--no-pareto",
                     "--no-plots", "--suite-cache", "", "--out", str(out)]) == 0
    assert "suite workload mixed: 10 of 100 requests rejected by the engine (kv: 10)" in capsys.readouterr().err
