"""AUX-13 public roster: only public columns in CSV and HTML; Chromium builds the HTML with
its Chinese headings and names and draws their glyphs."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pipeline.cli.main import main
from pipeline.people.roster import PUBLIC_COLUMNS, RosterRow, roster_csv, roster_html
from tests.chromium import CHROMIUM, run_chromium

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


# --- Chromium: the roster as a browser draws it -------------------------------------------
#
# Chromium parses the page (--dump-dom gives the DOM it built) and draws it (--screenshot).
# To prove the text is drawn, the same page is drawn twice more: with every text made
# transparent (only the text's pixels may change) and with every Chinese character
# replaced by one character (boxes for missing glyphs would all look alike). Chromium
# itself compares the screenshots: a page holding them as data: URIs draws each on a
# canvas and counts the pixels that differ inside the table.

WINDOW = (1000, 700)
TRANSPARENT = "<style>* { color: transparent !important; }</style>"
# Writes the table's box (CSS px; the screenshots are at scale 1) into the dumped DOM.
MEASURE = ("<script>addEventListener('load', () => { const r = document.querySelector("
           "'table').getBoundingClientRect(); document.body.dataset.table = [r.left, r.top, "
           "r.right, r.bottom].map(Math.round).join(','); });</script>")
COMPARE = """<!DOCTYPE html><html><body>%s<script>
addEventListener('load', () => {
  const pixels = (im) => {
    const c = document.createElement('canvas');
    c.width = im.naturalWidth; c.height = im.naturalHeight;
    const g = c.getContext('2d'); g.drawImage(im, 0, 0);
    return g.getImageData(0, 0, c.width, c.height);
  };
  const [x0, y0, x1, y1] = %s;
  const imgs = [...document.images].map(pixels), base = imgs[0], out = {};
  out.size = [base.width, base.height];
  out.differ = imgs.slice(1).map((o) => {
    let n = 0;
    for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) {
      const i = 4 * (y * base.width + x);
      if (base.data[i] !== o.data[i] || base.data[i + 1] !== o.data[i + 1]
          || base.data[i + 2] !== o.data[i + 2]) n++;
    }
    return n;
  });
  const pre = document.createElement('pre'); pre.id = 'result';
  pre.textContent = JSON.stringify(out); document.body.append(pre);
});
</script></body></html>"""


def _chromium(tmp: Path, url: str, *extra: str) -> str:
    return run_chromium(tmp, url, *extra, window=WINDOW)


def _one_glyph(text: str) -> str:
    """Every CJK character of the page's text (not its markup) replaced by 口."""
    return re.sub(r">([^<]*)<", lambda m: ">" + re.sub(r"[\u4e00-\u9fff]", "口", m.group(1))
                  + "<", text)


@dataclass(frozen=True)
class Rendered:
    dom: str  # the DOM Chromium built from the roster file
    table: tuple[int, int, int, int]  # the table's box in the screenshots
    size: tuple[int, int]  # the screenshots' size
    differ_transparent: int  # table pixels that change when the text is transparent
    differ_one_glyph: int  # ... when every Chinese character is 口


@pytest.fixture(scope="module")
def rendered(roster: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} not found: install the Debian package `chromium` "
                    "(and fonts-noto-cjk for the Chinese glyphs)")
    fc_list = shutil.which("fc-list")
    if fc_list and not subprocess.run([fc_list, ":lang=zh"], capture_output=True,
                                      check=False).stdout.strip():
        pytest.skip("no Chinese font: the screenshot would show boxes; install the Debian "
                    "package fonts-noto-cjk")
    tmp = tmp_path_factory.mktemp("chromium")
    _, html_path = roster
    page = html_path.read_text(encoding="utf-8")
    assert page.count("</body>") == 1 and page.count("</head>") == 1
    shots = [tmp / "roster.png", tmp / "transparent.png", tmp / "one_glyph.png"]
    dom = _chromium(tmp, html_path.as_uri(), f"--screenshot={shots[0]}", "--dump-dom")
    clear = tmp / "transparent.html"
    clear.write_text(page.replace("</head>", TRANSPARENT + "</head>").replace(
        "</body>", MEASURE + "</body>"), encoding="utf-8")
    measured = _chromium(tmp, clear.as_uri(), f"--screenshot={shots[1]}", "--dump-dom")
    m = re.search(r'data-table="(\d+),(\d+),(\d+),(\d+)"', measured)
    assert m, measured[:500]
    box = (int(m[1]), int(m[2]), int(m[3]), int(m[4]))
    glyph = tmp / "one_glyph.html"
    glyph.write_text(_one_glyph(page), encoding="utf-8")
    _chromium(tmp, glyph.as_uri(), f"--screenshot={shots[2]}")
    keep = os.environ.get("CUSTODY_KEEP_SCREENSHOT")
    if keep:
        shutil.copy(shots[0], keep)

    imgs = "".join(f'<img src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}">'
                   for p in shots)
    compare = tmp / "compare.html"
    compare.write_text(COMPARE % (imgs, json.dumps(list(box))), encoding="utf-8")
    out = _chromium(tmp, compare.as_uri(), "--dump-dom")
    m = re.search(r'<pre id="result">([^<]*)</pre>', out)
    assert m, out[-500:]
    result = json.loads(m[1])
    return Rendered(dom, box, tuple(result["size"]), *result["differ"])


def test_aux13_chromium_builds_the_roster_with_its_chinese_headings_and_names(
    rendered: Rendered,
) -> None:
    table = _Table()
    table.feed(rendered.dom)
    assert table.headings == PUBLIC_HEADINGS
    assert [r for r in table.rows if r] == [["王五", "X-1", "综合执法队", "协管员", "在岗"],
                                            ["欧阳晓<燕>", "X-2", "综合执法队", "协管员", "停岗"]]
    assert "<h1>行政执法辅助人员公示</h1>" in rendered.dom
    assert not [p for p in PRIVATE if p in rendered.dom]


def test_aux13_the_roster_text_is_drawn_in_the_table(rendered: Rendered) -> None:
    """The same page with transparent text differs in thousands of the table's pixels: 40
    Chinese characters and two staff numbers, each some tens of pixels at 11 pt (about
    5,000 here)."""
    x0, y0, x1, y1 = rendered.table
    assert rendered.size == WINDOW
    assert 0 <= x0 < x1 <= WINDOW[0] and 0 <= y0 < y1 <= WINDOW[1]
    assert x1 - x0 >= 500 and y1 - y0 >= 60, rendered.table  # three rows across the page
    assert rendered.differ_transparent >= 2000, rendered


def test_aux13_the_chinese_glyphs_are_drawn_not_boxes(rendered: Rendered) -> None:
    """Each Chinese character replaced by 口 changes the table: missing glyphs would be
    the same box for every character, and the two pages would look alike."""
    assert rendered.differ_one_glyph >= 1000, rendered
