"""Reading a folder of GPU measurements (`ewsjf calibrate DIR`): a file it cannot read is named, with the line
and the column, and nothing is fitted on it (a NaN or a zero time used to reach the fit, a malformed
meta.json ended in a traceback)."""

import json
import shutil
from pathlib import Path

import pytest

from ewsjf_core.sim.calibrate import main

DATA = Path(__file__).parent / "data" / "gpu_profiles"


def _copy(tmp_path: Path, gpu: str = "h200") -> Path:
    folder = tmp_path / gpu
    shutil.copytree(DATA / gpu, folder)
    return folder


def _set_cell(path: Path, line: int, column: str, value: str) -> None:
    rows = path.read_text().splitlines()
    header = rows[0].split(",")
    cells = rows[line - 1].split(",")
    cells[header.index(column)] = value
    rows[line - 1] = ",".join(cells)
    path.write_text("\n".join(rows) + "\n")


@pytest.mark.parametrize("value", ["nan", "0", "-1", "inf", "fast"])
def test_a_bad_attention_time_is_named_with_its_line(tmp_path, value):
    folder = _copy(tmp_path)
    _set_cell(folder / "attention.csv", 3, "time_ms_median", value)
    with pytest.raises(SystemExit, match=r"attention\.csv:3: bad attention row \(time_ms_median \(ms\) must be"):
        main([str(tmp_path), "--check"])


def test_a_missing_column_and_a_bad_count_are_named(tmp_path):
    folder = _copy(tmp_path)
    text = (folder / "attention.csv").read_text()
    (folder / "attention.csv").write_text(text.replace("kv_len", "kvlen", 1))
    with pytest.raises(SystemExit, match=r"attention\.csv:2: bad attention row \(no column 'kv_len'\)"):
        main([str(tmp_path), "--check"])
    shutil.copy(DATA / "h200" / "attention.csv", folder / "attention.csv")
    _set_cell(folder / "h200_Qwen2.5-7B_mlp.csv", 2, "num_tokens", "0")
    with pytest.raises(SystemExit, match=r"Qwen2\.5-7B_mlp\.csv:2: bad layer row \(num_tokens must be an integer >= 1"):
        main([str(tmp_path), "--check"])


def test_a_bad_steps_row_is_named(tmp_path):
    folder = _copy(tmp_path)
    (folder / "meta.json").unlink()   # steps*.csv is read where meta.json holds no steps
    _set_cell(folder / "steps_dev.csv", 2, "decode_seqs", "-3")
    with pytest.raises(SystemExit, match=r"steps_dev\.csv:2: bad steps row \(decode_seqs must be an integer >= 0"):
        main([str(tmp_path), "--check"])


@pytest.mark.parametrize("content, message", [
    ("{\"parts\":", "meta.json: not valid JSON"),
    ("[1, 2]", "meta.json: must hold a JSON object, got list"),
    ("{\"part4\": {\"scenarios\": {\"a\": 1}}}", "part4.scenarios must be a list"),
    ("{\"part4\": {\"scenarios\": [7]}}", r"part4.scenarios\[0\] must be an object"),
])
def test_a_bad_meta_json_is_named(tmp_path, content, message):
    folder = _copy(tmp_path)
    (folder / "meta.json").write_text(content)
    with pytest.raises(SystemExit, match=message):
        main([str(tmp_path), "--check"])


def test_a_bad_sustained_matmul_rate_is_named_before_it_reaches_the_fit(tmp_path):
    folder = _copy(tmp_path, "h100")
    meta = json.loads((folder / "meta.json").read_text())
    meta["matmul_bf16"]["tflops_median"] = "NaN"
    (folder / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(SystemExit, match=r"matmul_bf16\.tflops_median must be a finite number > 0"):
        main([str(tmp_path)])


def test_the_report_piped_into_a_file_keeps_every_cell_whole(capsys, monkeypatch):
    """Piped (not a terminal), rich drew the tables 80 columns wide: `--check --rows` cut the scenario names
    ("prefill_m…") and split the prefill lists over several lines."""
    monkeypatch.delenv("COLUMNS", raising=False)
    assert main([str(DATA), "--check", "--rows"]) == 0
    out = capsys.readouterr().out
    assert "…" not in out
    assert "prefill_multi" in out
    assert any("[(256, 0), (256, 0)," in line and "graph" in line for line in out.splitlines())
