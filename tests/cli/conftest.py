"""Fixtures of the CLI tests: a runner of `custody` in-process, and a small archive."""

from __future__ import annotations

import io
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.cli.main import main
from tests.mediagen import Generated


@dataclass
class Ran:
    code: int
    out: str
    err: str


class Custody:
    """`custody ...` in-process with a given environment, in a data directory of its own."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.loc = ["--store", str(root / "store"), "--catalog", str(root / "catalog")]

    def __call__(self, *argv: str, env: dict[str, str] | None = None, loc: bool = True) -> Ran:
        out, err = io.StringIO(), io.StringIO()
        code = main([*argv, *(self.loc if loc else [])], env=env or {}, out=out, err=err)
        return Ran(code, out.getvalue(), err.getvalue())


@pytest.fixture
def custody(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Custody:
    monkeypatch.chdir(tmp_path)  # no stray ./custody.toml; a default path lands in tmp_path
    return Custody(tmp_path / "data")


@pytest.fixture
def archive(custody: Custody, clean_recording: Generated, tmp_path: Path) -> Custody:
    """One administrator (A-1), one auxiliary (X-1) and one archived recording."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(clean_recording.path, inbox / "REC0001.mp4")
    shutil.copy(clean_recording.path, inbox / "REC0002.mp4")
    (inbox / "REC0002.mp4").write_bytes((inbox / "REC0002.mp4").read_bytes() + b"\0")
    r = custody("staff", "add", "A-1", "--name", "张三", "--kind", "officer", "--section",
                "综合执法队", "--certificate", "ZJ-0001", "--role", "administrator",
                "--role", "officer", "--as", "A-1")
    assert r.code == 0, r.err
    r = custody("staff", "add", "X-1", "--name", "王五", "--kind", "auxiliary", "--section",
                "综合执法队", "--post", "协管员", "--agency", "遂昌县人力资源公司",
                "--work-area", "大柘镇", "--contract-start", "2025-06-01", "--contract-end",
                "2027-05-31", "--first-hired", "2025-06-01", "--birth-date", "1995-05-01",
                "--screening", "passed", "--as", "A-1")
    assert r.code == 0, r.err
    r = custody("ingest", str(inbox), "--as", "A-1", "--quiet", "--workers", "1")
    assert r.code in (0, 1), r.err
    return custody
