"""Terminal output with rich: tables as plain text off a terminal, progress bars on a stream."""

from __future__ import annotations

import io

from ewsjf.bench import console, report


def test_table_off_a_terminal_is_plain_one_line_per_row():
    rows = [["fcfs [vllm]", "1.00", "NO"], ["ewsjf", "22.50", "yes"]]
    text = console.table(rows, ["policy", "TTFT mean", "ok"], title="== load 0.045 ==", stream=io.StringIO())
    lines = text.splitlines()
    assert "\x1b[" not in text                                # no colour codes in a file or a pipe
    assert lines[0] == "== load 0.045 =="
    assert lines[1].split() == ["policy", "TTFT", "mean", "ok"]
    assert lines[3].startswith("fcfs [vllm]")                 # brackets are text, not rich markup
    assert lines[4].startswith("ewsjf") and lines[4].endswith("yes")
    # numbers are right-aligned: the value columns end where their headers end
    assert lines[3].index("1.00") + 4 == lines[4].index("22.50") + 5 == lines[1].index("mean") + 4


def test_wide_tables_are_not_wrapped_off_a_terminal():
    header = [f"column {i}" for i in range(30)]
    text = console.table([[str(i) for i in range(30)]], header, stream=io.StringIO())
    assert len(text.splitlines()) == 3 and len(text.splitlines()[0]) > 300


def test_report_table_keeps_the_old_signature():
    assert "fcfs" in report.table([["fcfs", "1"]], ["policy", "x"])


def test_progress_bars_report_each_replay():
    out = io.StringIO()
    with console.progress(True, stream=out) as bars:
        tick = bars.task("sim/fcfs @ 0.045")
        tick(5, 10)
        tick(10, 10)
    text = out.getvalue()
    assert "sim/fcfs @ 0.045" in text and "10/10" in text and "requests" in text
    with console.progress(False) as bars:
        assert bars.task("x") is None
