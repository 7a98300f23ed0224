"""AUX-13 public roster: only public columns in CSV and HTML; the HTML renders in Chromium."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pipeline.cli.main import main
from pipeline.people.roster import PUBLIC_COLUMNS, RosterRow, roster_csv, roster_html

CHROMIUM = "/usr/bin/chromium"
PUBLIC_HEADINGS = [zh for _, zh in PUBLIC_COLUMNS]
assert PUBLIC_HEADINGS == ["姓名", "人员编号", "科室", "工作岗位", "状态"]

# Private values given at registration; none may appear in a roster.
PRIVATE = {
    "330827199505010011", "330827199802020022", "1995-05-01", "1998-02-02",
    "遂昌县人力资源公司", "丽水人事代理中心", "大柘镇全域", "2025-06-01", "2027-05-31",
    "passed", "ZJ-0001",
}


def custody(root: Path, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main([*argv, "--store", str(root / "store"), "--catalog", str(root / "catalog"),
                 "--as", "A-1"], env={}, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def roster(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A registry with two auxiliaries and an officer; the roster written by the CLI."""
    root = tmp_path_factory.mktemp("roster")
    old = Path.cwd()
    os.chdir(root)
    try:
        steps = [
            ("A-1", "张三", "officer", ["--certificate", "ZJ-0001", "--role", "administrator"]),
            ("X-1", "王五", "auxiliary", ["--birth-date", "1995-05-01", "--id-number",
                                          "330827199505010011", "--agency", "遂昌县人力资源公司"]),
            ("X-2", "欧阳晓<燕>", "auxiliary", [
                "--birth-date", "1998-02-02", "--id-number", "330827199802020022",
                "--agency", "丽水人事代理中心"]),
        ]
        for sid, name, kind, extra in steps:
            aux = [] if kind == "officer" else [
                "--post", "协管员", "--work-area", "大柘镇全域", "--contract-start", "2025-06-01",
                "--contract-end", "2027-05-31", "--first-hired", "2025-06-01",
                "--screening", "passed"]
            code, _, err = custody(root, "staff", "add", sid, "--name", name, "--kind", kind,
                                   "--section", "综合执法队", *aux, *extra)
            assert code == 0, err
        code, _, err = custody(root, "staff", "status", "X-2", "--set", "suspended")
        assert code == 0, err
        code, _, err = custody(root, "staff", "roster", "--csv", "roster.csv", "--html",
                               "roster.html")
        assert code == 0, err
    finally:
        os.chdir(old)
    return root / "roster.csv", root / "roster.html"


class _Table(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.headings: list[str] = []
        self.rows: list[list[str]] = []
        self._cell: str | None = None
        self._in_th = False

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag == "tr":
            self.rows.append([])
        if tag in ("th", "td"):
            self._in_th = tag == "th"
            self._cell = ""

    def handle_endtag(self, tag: str) -> None:
        if tag in ("th", "td") and self._cell is not None:
            (self.headings if self._in_th else self.rows[-1]).append(self._cell)
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell += data


def test_aux13_every_csv_column_is_public(roster):
    csv_path, _ = roster
    rows = list(csv.reader(io.StringIO(csv_path.read_text(encoding="utf-8-sig"))))
    assert rows[0] == PUBLIC_HEADINGS
    assert rows[1:] == [["王五", "X-1", "综合执法队", "协管员", "在岗"],
                        ["欧阳晓<燕>", "X-2", "综合执法队", "协管员", "停岗"]]
    text = csv_path.read_text(encoding="utf-8-sig")
    assert not [p for p in PRIVATE if p in text]


def test_aux13_every_html_column_is_public(roster):
    _, html_path = roster
    text = html_path.read_text(encoding="utf-8")
    table = _Table()
    table.feed(text)
    assert table.headings == PUBLIC_HEADINGS
    body = [r for r in table.rows if r]
    assert body == [["王五", "X-1", "综合执法队", "协管员", "在岗"],
                    ["欧阳晓<燕>", "X-2", "综合执法队", "协管员", "停岗"]]
    assert all(len(r) == len(PUBLIC_HEADINGS) for r in body)
    assert not [p for p in PRIVATE if p in text]
    assert "行政执法辅助人员公示" in text and "<燕>" not in text  # names are escaped


def test_the_roster_row_type_has_only_public_fields():
    assert RosterRow.__slots__ == tuple(f for f, _ in PUBLIC_COLUMNS)


def test_an_empty_roster_still_has_its_headings():
    assert roster_csv([]).strip().lstrip("\ufeff") == ",".join(PUBLIC_HEADINGS)
    assert "（暂无）" in roster_html([], as_of=dt.date(2025, 6, 1))


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def test_aux13_the_html_roster_renders_in_headless_chromium(roster, tmp_path):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} not found: install the Debian package `chromium` "
                    "(and fonts-noto-cjk for the Chinese glyphs)")
    fc_list = shutil.which("fc-list")
    if fc_list and not subprocess.run([fc_list, ":lang=zh"], capture_output=True,
                                      check=False).stdout.strip():
        pytest.skip("no Chinese font: the screenshot would show boxes; install the Debian "
                    "package fonts-noto-cjk")
    _, html_path = roster
    png = tmp_path / "roster.png"
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars",
         "--window-size=1000,700", f"--screenshot={png}", html_path.as_uri()],
        capture_output=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    data = png.read_bytes()
    width, height = _png_size(data)
    assert (width, height) == (1000, 700)
    assert len(data) > 10_000, "screenshot is nearly empty"
    keep = os.environ.get("CUSTODY_KEEP_SCREENSHOT")
    if keep:
        shutil.copy(png, keep)
