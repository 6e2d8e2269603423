import json
import os

import pytest

from ewsjf.bench.cli import main


def test_micro_writes_every_policy_and_size(tmp_path):
    out = tmp_path / "micro.json"
    assert main(["micro", "--sizes", "100,300", "--repeats", "2", "--no-compile", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    rows = {(r["waiting"], r["policy"]): r for r in report["results"]}
    policies = ("ewsjf", "ewsjf-handle", "fcfs-deque", "sjf-heapq", "raw-deque")
    assert set(rows) == {(n, p) for n in (100, 300) for p in policies}
    for r in rows.values():
        assert r["add_us"] > 0 and r["remove_us"] > 0 and r["step_us"] > 0
    assert rows[(100, "fcfs-deque")]["step_vs_fcfs"] == 1.0
    for n in (100, 300):
        assert rows[(n, "ewsjf")]["swap_step_ms"] > 0 and rows[(n, "ewsjf-handle")]["swap_step_ms"] > 0


def test_a_bad_json_path_fails_before_measuring(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(["micro", "--sizes", "100", "--repeats", "1", "--no-compile", "--json",
                 str(blocker / "micro.json")]) == 2
    captured = capsys.readouterr()
    assert "--json" in captured.err and "waiting" not in captured.out   # no table: nothing was measured


def test_an_interrupted_run_leaves_no_json_folder_behind(tmp_path, monkeypatch):
    """The --json folder is made before measuring (a bad path fails at once); an interrupted run takes it back."""
    from ewsjf.bench import micro

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(micro, "measure", interrupted)
    with pytest.raises(KeyboardInterrupt):
        main(["micro", "--sizes", "100", "--repeats", "1", "--no-compile", "--json", str(tmp_path / "new" / "m.json")])
    assert os.listdir(tmp_path) == []
