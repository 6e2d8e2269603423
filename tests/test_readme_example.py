"""The README's host-API example runs as printed (it is the first thing a new user copies)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _host_api_example() -> str:
    text = README.read_text()
    section = text.split("## The host API in a dozen lines", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "README: no python example under 'The host API in a dozen lines'"
    return match.group(1)


def test_host_api_example_runs_and_leaves_the_prepended_request_waiting():
    scope: dict = {}
    exec(compile(_host_api_example(), "README.md", "exec"), scope)   # noqa: S102 - the project's own README
    q = scope["q"]
    assert scope["rid"] == "req-1"           # the short request first
    assert list(q) == ["req-1"] and len(q) == 1   # put back after the pop; req-2 aborted
