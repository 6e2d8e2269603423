"""replay_overhead: both policies replayed and timed; --max-model-len lets long prompts be served."""

from __future__ import annotations

import os

from ewsjf.bench import replay_overhead
from ewsjf.bench.workloads import DATA_DIR, load_workload

MOONCAKE = os.path.join(DATA_DIR, "mooncake_synthetic", "synthetic_trace_1500.jsonl")


def test_times_both_policies_on_long_prompts(capsys, monkeypatch):
    served = []
    run_sim = replay_overhead.engines.run_sim

    def counting(w, policy, step_model, engine, *a, **k):
        res = run_sim(w, policy, step_model, engine, *a, **k)
        served.append(int((~res.rejected).sum()))
        return res

    monkeypatch.setattr(replay_overhead.engines, "run_sim", counting)
    assert replay_overhead.main(["--workload", MOONCAKE, "--window", "0:15", "--runs", "1",
                                 "--max-model-len", "65536"]) == 0
    out = capsys.readouterr().out
    assert "median: fcfs" in out and "EWSJF / FCFS" in out
    n = len(load_workload(MOONCAKE).slice(0, 15))
    assert served == [n, n]    # the ~12k-token prompts were served, not rejected (8,192 tokens by default)
