"""What people and scripts see: tables, CSV, JSON, times in the configured zone, progress.

Tables stay plain text (a pipe or a file gets no escape codes), measured by display width
with `rich.cells` (a CJK character takes two columns, so a 60-column limit is 60 columns on
screen, not 118). JSON keeps stored values (UTC times) because a script reads it; a table
shows times in the configured zone because a person reads it.

Progress is `rich.progress` on stderr, weighted by bytes, with rate and time left, as wide
as the terminal. It is off in a pipe, with --quiet and with --json; under NO_COLOR or
TERM=dumb the bar is not redrawn and carries no colour: one plain line when the work ends.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from rich.cells import cell_len, set_cell_size
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from pipeline.progress import Tick

MAX_CELL = 60  # display columns of one table cell


def cell(v: Any, zone: ZoneInfo | None = None) -> str:
    """One value as text: times in `zone` (when given), lists joined with ';'."""
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.3f}"
    if isinstance(v, dt.datetime):
        if zone is not None and v.tzinfo is not None:
            v = v.astimezone(zone)
        return str(v.isoformat(timespec="seconds"))
    if isinstance(v, list | tuple):
        return ";".join(cell(x, zone) for x in v)
    return str(v)


def fit(text: str, width: int) -> str:
    """`text` in exactly `width` display columns: padded, or cut with an ellipsis."""
    if cell_len(text) <= width:
        return text + " " * (width - cell_len(text))
    # set_cell_size pads with a space where a wide character would straddle the edge.
    return set_cell_size(text, width - 1) + "…"


def table_lines(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *,
    zone: ZoneInfo | None = None, max_cell: int = MAX_CELL,
) -> list[str]:
    cells = [[cell(r.get(c), zone) for c in columns] for r in rows]
    widths = [min(max_cell, max([cell_len(c)] + [cell_len(row[i]) for row in cells]))
              for i, c in enumerate(columns)]

    def line(vals: Sequence[str]) -> str:
        return "  ".join(fit(v, w) for v, w in zip(vals, widths, strict=True)).rstrip()

    return [line(columns), line(["-" * w for w in widths]), *(line(row) for row in cells)]


def _json_default(v: Any) -> Any:
    if isinstance(v, dt.datetime | dt.date):
        return v.isoformat()
    if isinstance(v, bytes):
        return v.hex()
    return str(v)


def json_text(doc: Any) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=2, default=_json_default) + "\n"


def csv_text(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(columns)
    for r in rows:
        writer.writerow([cell(r.get(c)) for c in columns])
    return buf.getvalue()


@dataclass(frozen=True, slots=True)
class Output:
    """Where one command writes: stdout for results, stderr for warnings and progress."""

    out: TextIO
    err: TextIO
    zone: ZoneInfo
    json: bool = False
    quiet: bool = False
    plain: bool = False
    terminal_env: Mapping[str, str] | None = None

    def write(self, text: str) -> None:
        self.out.write(text)

    def warn(self, text: str) -> None:
        self.err.write(f"warning: {text}\n")

    def table(self, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
        self.out.write("\n".join(table_lines(rows, columns, zone=self.zone)) + "\n")

    def dump_json(self, doc: Any) -> None:
        self.out.write(json_text(doc))

    def time(self, v: dt.datetime) -> str:
        return cell(v, self.zone)

    def _stderr_is_terminal(self) -> bool:
        isatty = getattr(self.err, "isatty", None)
        return bool(isatty and isatty())

    def progress_on(self) -> bool:
        return not (self.quiet or self.json) and self._stderr_is_terminal()

    @contextlib.contextmanager
    def progress(self, what: str) -> Iterator[TickRenderer | None]:
        """A renderer of Ticks for the duration of a long job, or None when it is off."""
        if not self.progress_on():
            yield None
            return
        console = Console(
            file=self.err, stderr=True, force_terminal=not self.plain,
            no_color=self.plain, color_system=None if self.plain else "auto",
            highlight=False,
            # rich reads only what the Settings passed on (the only reader of the environment).
            _environ=dict(self.terminal_env or {}),
        )
        bar = Progress(*byte_columns(), console=console, transient=False)
        renderer = TickRenderer(bar, bar.add_task(what, total=None, items="", current=""))
        with bar:
            yield renderer


def byte_columns() -> tuple[Any, ...]:
    """Description, bar, percent, files, bytes, rate, time left, current file."""
    return (
        TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
        TextColumn("{task.fields[items]}"), DownloadColumn(), TransferSpeedColumn(),
        TimeRemainingColumn(), TextColumn("{task.fields[current]}"),
    )


class TickRenderer:
    """Shows each `Tick` on a rich progress bar: bytes are the weight, files the count."""

    def __init__(self, bar: Progress, task: Any) -> None:
        self._bar = bar
        self._task = task

    def __call__(self, tick: Tick) -> None:
        self._bar.update(
            self._task,
            completed=tick.done_bytes, total=tick.total_bytes or None,
            items=f"{tick.done_items}/{tick.total_items} files",
            current=_tail(tick.current, 30),
        )

    def accept(self, tick: Tick) -> None:
        """The callback handed to services (`progress=bar.accept`)."""
        self(tick)


def _tail(path: str, width: int) -> str:
    name = path.rsplit("/", 1)[-1]
    return name if cell_len(name) <= width else "…" + name[-(width - 1):]
