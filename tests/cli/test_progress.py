"""Progress: a rich bar on a terminal, plain under NO_COLOR/TERM=dumb, nothing in a pipe."""

from __future__ import annotations

import io
import os
import pty
import re
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pipeline.cli.render import Output
from pipeline.progress import Tick
from tests.cli.conftest import Custody

ROOT = Path(__file__).resolve().parents[2]


def _verify_on_a_terminal(archive: Custody, **env: str) -> tuple[int, bytes, bytes]:
    """`custody verify` with stderr on a pseudo-terminal; (exit code, stdout, terminal)."""
    full = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TERM", "COLUMNS")}
    full.update(PYTHONPATH=str(ROOT), **env)
    master, slave = pty.openpty()
    with subprocess.Popen([sys.executable, "-m", "pipeline.cli", "verify", "--as", "A-1",
                           *archive.loc], stdout=subprocess.PIPE, stderr=slave, env=full,
                          cwd=archive.root.parent) as proc:
        os.close(slave)
        seen = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        os.close(master)
        out, _ = proc.communicate(timeout=60)
    return proc.returncode, out, seen


def test_a_terminal_gets_a_redrawn_coloured_bar(archive: Custody) -> None:
    """The control case: on an ordinary terminal the bar does use escape codes."""
    code, _, term = _verify_on_a_terminal(archive, TERM="xterm-256color")
    assert code == 0
    assert b"\x1b[" in term and b"verify" in term


@pytest.mark.parametrize("env", [{"NO_COLOR": "1", "TERM": "xterm-256color"},
                                 {"TERM": "dumb"}], ids=["NO_COLOR", "TERM=dumb"])
def test_no_color_and_a_dumb_terminal_get_one_plain_line(
    archive: Custody, env: dict[str, str]
) -> None:
    code, _, term = _verify_on_a_terminal(archive, COLUMNS="100", **env)
    assert code == 0
    assert b"\x1b" not in term
    (line,) = term.decode().splitlines()
    # Weighted by bytes: both objects' sizes done of their total, a rate, no time left.
    assert re.fullmatch(r"verify ━+ 100% 2/2 files ([0-9.]+)/\1 kB [0-9.]+ [kM]?B/s 0:00:00",
                        line.rstrip()), line
    assert len(line) <= 100


def test_a_pipe_gets_no_progress_at_all(archive: Custody) -> None:
    proc = subprocess.run([sys.executable, "-m", "pipeline.cli", "verify", "--as", "A-1",
                           *archive.loc], capture_output=True, cwd=archive.root.parent,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "TERM": "xterm"},
                          timeout=60)
    assert (proc.returncode, proc.stderr) == (0, b"")


def test_quiet_turns_the_bar_off_on_a_terminal(archive: Custody) -> None:
    full = {**os.environ, "PYTHONPATH": str(ROOT), "TERM": "xterm"}
    master, slave = pty.openpty()
    proc = subprocess.run([sys.executable, "-m", "pipeline.cli", "verify", "--quiet",
                           "--as", "A-1", *archive.loc], stdout=subprocess.PIPE, stderr=slave,
                          env=full, cwd=archive.root.parent, timeout=60)
    os.close(slave)
    os.set_blocking(master, False)
    try:
        seen = os.read(master, 65536)
    except (BlockingIOError, OSError):
        seen = b""
    os.close(master)
    assert (proc.returncode, seen) == (0, b"")


class _Terminal(io.StringIO):
    """A text stream that says it is a terminal, as a real one would."""

    def isatty(self) -> bool:
        return True


def test_a_tick_is_shown_by_bytes_with_files_rate_and_time_left() -> None:
    err = _Terminal()
    ui = Output(out=io.StringIO(), err=err, zone=ZoneInfo("Asia/Shanghai"), plain=True,
                terminal_env={"COLUMNS": "120"})
    with ui.progress("ingest") as bar:
        assert bar is not None
        bar(Tick(1, 4, 512 * 1024, 2 * 1024 * 1024, "/dock/REC0001.mp4"))
    (line,) = err.getvalue().splitlines()
    assert " 25% 1/4 files 0.5/2.1 MB " in line and line.rstrip().endswith("REC0001.mp4")
    assert len(line) <= 120
