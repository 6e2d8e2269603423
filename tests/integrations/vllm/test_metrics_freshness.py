"""The /metrics snapshot agrees with vLLM's own waiting count after each step, and does not go stale idle."""

import json

from ewsjf.integrations.vllm.compat import num_waiting
from ewsjf.bench.virtual_vllm import VirtualVLLM


def _snapshot(directory):
    (path,) = directory.glob("engine-*.json")
    return json.loads(path.read_text())["stats"]


def test_snapshot_matches_vllm_after_each_step(tmp_path, monkeypatch):
    """Written after the step admitted (not before): the EWSJF waiting count is vLLM's, step by step."""
    monkeypatch.setenv("EWSJF_METRICS_DIR", str(tmp_path))
    v = VirtualVLLM("ewsjf", max_num_seqs=4, scheduler_kwargs={"ewsjf_options": {"metrics_interval_s": 1e-6}})
    for i in range(12):
        v.add_request(f"m{i}", prompt_tokens=[10, 400, 3000][i % 3], output_tokens=3)
    checked = 0
    while v.has_unfinished():
        written = v.scheduler.ewsjf_metrics.snapshots_written
        v.step(duration=0.01)
        s = v.scheduler
        if s.get_num_unfinished_requests() and s.ewsjf_metrics.snapshots_written > written:
            snap = _snapshot(tmp_path)
            assert snap["waiting"] == len(s.waiting), (snap["waiting"], len(s.waiting))
            assert snap["waiting"] + snap["kv_holding_waiting"] == num_waiting(s) == s.get_request_counts()[1]
            checked += 1
    assert checked >= 5


def test_idle_engine_leaves_an_empty_snapshot(tmp_path, monkeypatch):
    """After the last request finishes vLLM calls schedule() no more: the snapshot must already say 0
    waiting and 0 running (it used to show the last busy state for as long as the engine idled)."""
    monkeypatch.setenv("EWSJF_METRICS_DIR", str(tmp_path))
    v = VirtualVLLM("ewsjf", max_num_seqs=2, scheduler_kwargs={"ewsjf_options": {"metrics_interval_s": 5.0}})
    for i in range(6):
        v.add_request(f"r{i}", prompt_tokens=50, output_tokens=4)
    v.step(duration=6.0)
    v.step(duration=0.01)  # a snapshot is due (and written) with work still waiting
    assert _snapshot(tmp_path)["waiting"] > 0
    while v.has_unfinished():
        v.step(duration=0.01)  # well inside the 5 s interval: no periodic snapshot is due
    snap = _snapshot(tmp_path)
    assert snap["waiting"] == 0 and snap["running"] == 0 and snap["kv_holding_waiting"] == 0


def test_abort_of_the_last_waiting_request_refreshes_the_snapshot(tmp_path, monkeypatch):
    monkeypatch.setenv("EWSJF_METRICS_DIR", str(tmp_path))
    v = VirtualVLLM("ewsjf", max_num_seqs=1, scheduler_kwargs={"ewsjf_options": {"metrics_interval_s": 5.0}})
    v.add_request("a", prompt_tokens=50, output_tokens=1000)
    v.add_request("b", prompt_tokens=50, output_tokens=5)
    v.step(duration=6.0)
    v.step(duration=0.01)
    assert _snapshot(tmp_path)["waiting"] == 1
    v.abort(["a", "b"])
    assert _snapshot(tmp_path)["waiting"] == 0


def test_a_clock_set_back_re_times_the_snapshots_instead_of_stalling_them(tmp_path, monkeypatch):
    """The scheduler's clock is the wall clock: set back an hour (NTP, by hand), the next snapshot is due one
    interval later, not when the clock is back where it was (an hour of a frozen /metrics)."""
    monkeypatch.setenv("EWSJF_METRICS_DIR", str(tmp_path))
    wall = [1000.0]
    v = VirtualVLLM("ewsjf", max_num_seqs=1, scheduler_kwargs={
        "clock": lambda: wall[0], "ewsjf_options": {"metrics_interval_s": 5.0, "log_interval_s": 0.0}})
    for i in range(3):
        v.add_request(f"r{i}", prompt_tokens=50, output_tokens=200)
    metrics = v.scheduler.ewsjf_metrics
    for _ in range(6):                 # 1000 .. 1005: one snapshot, the next due at 1010
        v.step(duration=0.01)
        wall[0] += 1.0
    assert metrics.snapshots_written == 1
    wall[0] -= 3600.0
    written_at = []
    for _ in range(12):                # 12 s of the clock after the jump: due twice (one interval each)
        v.step(duration=0.01)
        if metrics.snapshots_written > 1 + len(written_at):
            written_at.append(wall[0])
        wall[0] += 1.0
    assert written_at == [wall[0] - 12.0 + 5.0, wall[0] - 12.0 + 10.0]
    assert json.loads(next(tmp_path.glob("engine-*.json")).read_text())["time"] == written_at[-1]
    v.scheduler.shutdown()
