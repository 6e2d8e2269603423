"""Terminal output of `ewsjf bench` with rich: tables (rendered to text) and the replay progress bars."""

from __future__ import annotations

import io
import shutil
import sys
from contextlib import contextmanager
from typing import Callable, Iterator

from rich import box
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn,
                           TimeElapsedColumn)
from rich.table import Table
from rich.text import Text

_CELL_STYLES = {"NO": "bold red", "yes": "green", "OK": "green"}


def table(rows: list[list[str]], header: list[str], title: str | None = None, stream=None) -> str:
    """A table as text: first column left-aligned, the others right-aligned (numbers).

    On a terminal it fits the terminal's width (rich wraps the headers) and colours yes/NO verdicts; piped
    into a file it keeps every row on one line and plain text, so the output greps and diffs well."""
    stream = stream or sys.stdout
    tty = bool(getattr(stream, "isatty", lambda: False)())
    t = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False,
              show_edge=False)
    for i, h in enumerate(header):
        t.add_column(h, justify="left" if i == 0 else "right", no_wrap=not tty)
    for r in rows:
        t.add_row(*(Text(str(c), style=_CELL_STYLES.get(str(c), "")) for c in r))
    buf = io.StringIO()
    width = shutil.get_terminal_size().columns if tty else 100_000
    con = Console(file=buf, width=width, force_terminal=tty, color_system="auto" if tty else None,
                  highlight=False, soft_wrap=False)
    con.print(t)
    return "\n".join(line.rstrip() for line in buf.getvalue().rstrip("\n").split("\n"))


class _NoProgress:
    def task(self, label: str) -> None:
        return None


class _RichProgress:
    def __init__(self, progress: Progress) -> None:
        self._p = progress

    def task(self, label: str) -> Callable[[int, int], None]:
        """A callback progress(done, total) for one replay, shown as its own bar."""
        tid = self._p.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            self._p.update(tid, completed=done, total=total)
        return update


@contextmanager
def progress(enabled: bool, stream=None) -> Iterator[_NoProgress | _RichProgress]:
    """Progress bars on stderr for the replays run inside the block (nothing when not enabled)."""
    if not enabled:
        yield _NoProgress()
        return
    con = Console(file=stream or sys.stderr)
    cols = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), MofNCompleteColumn(),
            TextColumn("requests"), TimeElapsedColumn())
    with Progress(*cols, console=con) as p:
        yield _RichProgress(p)
