"""`ewsjf bench`'s engine options together: a combination that parses runs, or is refused naming an option it
was given; a value no combination accepts is refused at parse time; a rejected request is always said.

test_replay_cli.py fuzzes each option with hostile text (a result or a one-line error); here the values are
plausible and drawn together, where options constrain each other, on single and multi-instance replays.
"""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ewsjf.bench import cli, engines

# Prompt + output: 105, 302, 59, 2,000 and 8,001 tokens.
TRACE = "arrival_s,prompt_tokens,output_tokens\n0,100,5\n0.1,300,2\n0.5,50,9\n0.6,1990,10\n0.7,8000,1\n"


@pytest.fixture(scope="module")
def trace(tmp_path_factory):
    path = tmp_path_factory.mktemp("trace") / "t.csv"
    path.write_text(TRACE)
    return str(path)


def bench(capsys, *args) -> tuple[int, str]:
    rc = cli.main(["bench", "--no-progress", "--no-plots", *args])
    return rc, capsys.readouterr().err


def options_named(err: str) -> set[str]:
    """The options the error line names."""
    return set(re.findall(r"--[a-z][a-z-]+", err.strip().splitlines()[-1]))


@pytest.mark.parametrize("option, value", [("--max-model-len", "1"), ("--block-size", "3"),
                                           ("--block-size", "48"), ("--block-size", "511")])
def test_a_value_no_engine_takes_is_refused_at_parse_time(capsys, trace, option, value):
    rc, err = bench(capsys, "--workload", trace, "--policies", "fcfs", option, value)
    assert rc == 2 and f"argument {option}: " in err


@pytest.mark.parametrize("args, option", [
    (["--token-budget", "100"], "--max-running"),              # below the default --max-running (256)
    (["--gpu-memory-utilization", "0.1"], "--gpu-memory-utilization"),   # no KV memory beside the weights
    (["--max-model-len", "50"], "--max-model-len"),           # every prompt is 50 tokens or longer
    (["--max-model-len", "50", "--instances", "2"], "--max-model-len"),
    pytest.param(["--engine", "vllm", "--no-chunked-prefill", "--token-budget", "100", "--max-running", "1"],
                 "--token-budget", marks=pytest.mark.skipif(not engines.vllm_available(), reason="no vLLM")),
])
def test_an_engine_refused_for_its_options_names_them(capsys, trace, args, option):
    rc, err = bench(capsys, "--workload", trace, "--policies", "fcfs", *args)
    assert rc == 2 and option in options_named(err), err


def test_a_model_no_utilization_fits_names_the_model_and_gpu(capsys, trace):
    """Llama-3-70B's weights fill an A100-80GB: no --gpu-memory-utilization leaves KV memory, so the error names
    --model and --gpu (it led with --gpu-memory-utilization, a remedy that cannot work)."""
    rc, err = bench(capsys, "--workload", trace, "--policies", "fcfs", "--model", "llama-3-70b", "--gpu", "a100-80gb")
    assert rc == 2 and options_named(err) == {"--model", "--gpu"}, err
    assert "a smaller model or a GPU with more memory" in err


@pytest.mark.parametrize("args, option", [(["--engine", "vllm"], "--engine"), (["--engine", "sim,vllm"], "--engine"),
                                          (["--markdown", "r.md"], "--markdown"), (["--plots", "plots"], "--plots")])
def test_an_option_the_multi_instance_mode_would_ignore_is_refused(capsys, trace, tmp_path, monkeypatch, args,
                                                                    option):
    """--instances replays sim engines and writes results.json (--json, --out): another engine, a report or
    plots were silently not produced, at exit 0."""
    monkeypatch.chdir(tmp_path)
    rc, err = bench(capsys, "--workload", trace, "--policies", "fcfs", "--instances", "2", "--routers",
                    "round-robin", *args)
    assert rc == 2 and option in options_named(err), err
    assert not any(tmp_path.iterdir())   # refused before anything was written


@pytest.mark.parametrize("args", [["--routers", "lmetric"], ["--stats-period", "2"], ["--suite-gpu", "h200"],
                                  ["--suite-requests", "100"], ["--no-pareto"], ["--suite-model", "qwen2.5-7b"],
                                  ["--stats-period", "0.5"], ["--suite-requests", "4000"]])
def test_an_option_of_a_mode_not_asked_for_is_refused(capsys, trace, args):
    """--routers without --instances, --suite-gpu without --suite, ...: the plain replay ran without them. An
    option typed out at its default value counts as given too (`--stats-period 0.5` ran a single replay)."""
    rc, err = bench(capsys, "--workload", trace, "--policies", "fcfs", *args)
    assert rc == 2 and args[0] in options_named(err), err


@pytest.mark.parametrize("args", [["--suite", "--window", "0:60"], ["--suite", "--model", "llama-2-7b"],
                                  ["--suite", "--policies", "fcfs"], ["--suite", "--max-model-len", "4096"],
                                  ["--fidelity", "--ewsjf-set", "max_wait=5"], ["--fidelity", "--no-prefix-caching"],
                                  ["--fidelity", "--seed", "3"], ["--fidelity", "--sweep", "0.5,1"],
                                  ["--suite", "--model", "llama-3-8b"], ["--suite", "--arrival-rate", "3"],
                                  ["--suite", "--num-requests", "90"],
                                  ["--fidelity", "--seed", "0"]])
def test_an_option_the_mode_does_not_read_is_refused(capsys, monkeypatch, args):
    """--suite's workloads bring their own traces, loads and models, --fidelity's cases theirs: a replay option
    given to either was silently ignored. So was one typed out at its default value: `--suite --model llama-3-8b`
    still replayed the published setting on Llama-2-13B. (--workload, --format and --cv the suite reads: a user's
    trace, tests/bench/test_suite_trace.py.)"""
    from ewsjf.bench import fidelity, suite

    def ran(*_, **__):
        raise AssertionError(f"{args[0]} ran")
    monkeypatch.setattr(suite, "run_workload", ran)
    monkeypatch.setattr(fidelity, "run_matrix", ran)
    monkeypatch.setattr(engines, "vllm_available", lambda: True)
    rc, err = bench(capsys, *args)
    assert rc == 2 and args[1] in options_named(err), err


def test_plots_asked_for_and_refused_at_once_is_refused(capsys, trace, tmp_path):
    """--plots DIR with --no-plots made the folder and drew nothing, at exit 0."""
    rc, err = bench(capsys, "--workload", trace, "--policies", "fcfs", "--plots", str(tmp_path / "p"))
    assert rc == 2 and {"--plots", "--no-plots"} <= options_named(err), err
    assert not (tmp_path / "p").exists()


def engine_options():
    budget = st.sampled_from([16, 100, 2048, 8192])
    return st.fixed_dictionaries({}, optional={
        "--token-budget": budget.map(str), "--max-running": st.sampled_from(["1", "16", "256"]),
        "--kv-blocks": st.sampled_from(["1", "4", "8", "40", "600"]),
        "--block-size": st.sampled_from(["1", "16", "512"]),
        "--gpu-memory-utilization": st.sampled_from(["0.1", "0.3", "1"]),
        "--watermark": st.sampled_from(["0", "0.5", "0.99"]),
        "--ewsjf-head-share": st.sampled_from(["0", "1"]),
        "--max-model-len": st.sampled_from(["2", "60", "400", "100000"]),
        "--no-chunked-prefill": st.just(None), "--no-prefix-caching": st.just(None),
        "--instances": st.sampled_from(["1", "2"])})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(options=engine_options())
def test_engine_options_that_parse_run_or_are_refused_by_name(capsys, trace, tmp_path, options):
    argv = [x for k, v in options.items() for x in ((k,) if v is None else (k, v))]
    if "--instances" in options:
        argv += ["--routers", "round-robin"]
    out = tmp_path / "r.json"
    rc, err = bench(capsys, "--workload", trace, "--policies", "fcfs,ewsjf", "--json", str(out), *argv)
    if rc != 0:
        assert rc == 2 and "Traceback" not in err
        assert options_named(err) & set(options), err
        return
    doc = json.loads(out.read_text())
    runs = doc.get("multi_instance") or doc["runs"]
    rejected = max(r["metrics"]["rejected"] for r in runs)
    assert all(r["metrics"]["completed"] + r["metrics"]["rejected"] == 5 for r in runs)
    assert rejected < 5                                   # all rejected is an error
    assert ("rejected" in err) == (rejected > 0), err     # a rejection is always said
