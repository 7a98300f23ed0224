"""The compliance report rendered (issue 12 item 4): the HTML loads nothing from outside and
escapes what the catalog holds; headless Chromium draws it and `pdftoppm` draws its PDF
to PNGs in the test run, with the Chinese text in Noto CJK."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from pipeline.cases import service
from pipeline.catalog.core import Catalog
from pipeline.ingest.run import IngestSettings
from pipeline.people.permissions import open_authority
from pipeline.reports import build_report, render_html, render_pdf
from pipeline.storage.local import LocalStore
from schemas.reports import HEADINGS, Report
from tests.chromium import CHROMIUM, run_chromium
from tests.ingesting import run_ingest
from tests.mediagen import Generated

pytestmark = pytest.mark.slow  # an ingest, Chromium and WeasyPrint

CST = dt.timezone(dt.timedelta(hours=8))
P = "遂大综执罚〔2026〕7号"
EVIL = "<script>alert('x')</script>某某餐馆"
WINDOW = (1280, 2400)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, clean_recording: Generated,
           interrupted_recording: Generated) -> Report:
    root = tmp_path_factory.mktemp("render")
    src = root / "in"
    src.mkdir()
    shutil.copy(clean_recording.path, src / "BC0007_0001.mp4")
    shutil.copy(interrupted_recording.path, src / "BC0007_0002.mp4")
    (root / "labels.csv").write_text(
        "file,officer_ids,case_number,inspected_entity,recorded_start\n"
        f"BC0007_0001.mp4,ZF0101,{P},x,2026-11-03T09:00:00+08:00\n"
        f"BC0007_0002.mp4,ZF0101;ZF0102,{P},x,2026-11-20T09:00:00+08:00\n", encoding="utf-8")
    store, catalog = LocalStore(root / "store"), Catalog(root / "catalog")
    run_ingest([src], store=store, catalog=catalog, settings=IngestSettings(
        now=lambda: dt.datetime(2026, 11, 21, tzinfo=CST), labels_path=str(root / "labels.csv")))
    with open_authority(catalog, store, lambda: dt.datetime(2026, 11, 21, tzinfo=CST)) as a:
        who = a.acting("ZF0101", os_user="tester")
        service.open_case(catalog, auth=a, actor=who, now=dt.datetime(2026, 11, 2, tzinfo=CST),
                          case_number=P, case_type="行政处罚", inspected_entity=EVIL,
                          section="综合行政执法队", officer_ids=["ZF0101", "ZF0102"])
        service.link_recordings(store, catalog, auth=a, actor=who,
                                now=dt.datetime(2026, 11, 21, tzinfo=CST), case_number=P,
                                selectors=["BC0007_0001.mp4", "BC0007_0002.mp4"],
                                step="调查取证")
    return build_report(catalog, period="2026-11",
                        now_utc=dt.datetime(2026, 12, 1, tzinfo=dt.UTC))


@pytest.fixture(scope="module")
def html(report: Report) -> str:
    return render_html(report)


# --- offline and escaped -----------------------------------------------------------------
def test_the_html_loads_nothing_from_outside(html: str) -> None:
    assert "<script" not in html.lower().replace("&lt;script", "")
    assert not re.search(r"""(?:src|href|action|data)\s*=\s*["']?\s*(?:https?:)?//""", html,
                         re.IGNORECASE)
    assert not re.search(r"url\(|@import", html, re.IGNORECASE)
    # the only URLs are the SVG namespaces (names, never fetched)
    assert set(re.findall(r"https?://[^\s\"'<>]+", html)) == {
        "http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}
    assert re.findall(r"""\b\w+\s*=\s*["']https?://""", html) == [
        'xmlns="http://', 'xlink="http://']


def test_an_entity_named_with_script_is_text(html: str) -> None:
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;某某餐馆" in html
    assert EVIL not in html


def test_every_heading_is_in_chinese_with_english_beside_it(html: str) -> None:
    for key in ("title", "by_rule", "by_officer", "by_section", "trend", "faults", "coverage"):
        zh, en = HEADINGS[key]
        assert f"{zh}<span class=\"en\">{en}</span>" in html, key


def test_the_chart_is_inline_svg_with_each_rule(html: str, report: Report) -> None:
    (svg,) = re.findall(r"<svg\b.*?</svg>", html, re.DOTALL)
    assert {r.rule for r in report.by_rule} == {"AV-5", "AV-8", "AV-9", "AV-12"}
    for rule in ("AV-5", "AV-8", "AV-9", "AV-12"):
        assert f">{rule}</text>" in svg
    assert "期间趋势 Trend over the period" in svg


# --- Chromium draws the HTML --------------------------------------------------------------
def _chromium(tmp: Path, url: str, *extra: str) -> str:
    return run_chromium(tmp, url, *extra, window=WINDOW)


def _ink(png: Path, box: tuple[int, int, int, int] | None = None) -> int:
    """Pixels that are not (near) white, in `box` or the whole picture."""
    with Image.open(png) as im:
        img = im.convert("L")
    if box is not None:
        img = img.crop(box)
    return sum(n for v, n in enumerate(img.histogram()) if v < 200)


def _size(png: Path) -> tuple[int, int]:
    with Image.open(png) as im:
        return im.size


class _Cells(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.cells: list[str] = []
        self._cell: str | None = None

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.cells.append(self._cell)
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell += data


@pytest.fixture(scope="module")
def drawn(html: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not found: install the Debian package `chromium`")
    tmp = tmp_path_factory.mktemp("chromium")
    page = tmp / "report.html"
    page.write_text(html, encoding="utf-8")
    png = tmp / "report.png"
    dom = _chromium(tmp, page.as_uri(), f"--screenshot={png}", "--dump-dom")
    return png, dom


def test_chromium_draws_the_report(drawn: tuple[Path, str]) -> None:
    png, _ = drawn
    assert _size(png) == WINDOW
    assert _ink(png) > 20_000
    assert _ink(png, (0, 0, WINDOW[0], 60)) > 1_500  # the title line


def test_chromium_draws_the_chinese_glyphs(drawn: tuple[Path, str], html: str,
                                          tmp_path: Path) -> None:
    """The same page with every Chinese character replaced by 口 draws a different title
    line: the glyphs are drawn, not one box for every missing one."""
    png, _ = drawn
    one = tmp_path / "one_glyph.html"
    one.write_text(re.sub(r">([^<]*)<", lambda m: ">" + re.sub(
        r"[\u4e00-\u9fff]", "口", m.group(1)) + "<", html), encoding="utf-8")
    other = tmp_path / "one_glyph.png"
    _chromium(tmp_path, one.as_uri(), f"--screenshot={other}")
    title = (0, 0, WINDOW[0], 60)
    with Image.open(png) as a, Image.open(other) as b:
        diff = ImageChops.difference(a.convert("L").crop(title), b.convert("L").crop(title))
    assert sum(n for v, n in enumerate(diff.histogram()) if v > 64) > 500


def test_chromium_shows_the_script_named_entity_as_text(drawn: tuple[Path, str]) -> None:
    _, dom = drawn
    cells = _Cells()
    cells.feed(dom)
    assert EVIL in cells.cells
    assert "alert(" not in dom.split("<body", 1)[1].replace("&lt;script&gt;alert(", "")


# --- WeasyPrint's PDF, drawn by pdftoppm --------------------------------------------------
@pytest.fixture(scope="module")
def pdf(report: Report, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pdf") / "report.pdf"
    render_pdf(report, path)
    return path


def test_the_pdf_embeds_noto_cjk(pdf: Path) -> None:
    tool = shutil.which("pdffonts")
    if tool is None:
        pytest.skip("pdffonts not found: install the Debian package poppler-utils")
    out = subprocess.run([tool, str(pdf)], capture_output=True, text=True, check=True).stdout
    cjk = [line.split() for line in out.splitlines() if "Noto-Sans-CJK-SC" in line]
    assert len(cjk) == 2  # regular and bold
    assert all(cols[-5:-2] == ["yes", "yes", "yes"] for cols in cjk)  # embedded, subset


def test_pdftoppm_draws_each_page(pdf: Path, tmp_path: Path) -> None:
    tool = shutil.which("pdftoppm")
    if tool is None:
        pytest.skip("pdftoppm not found: install the Debian package poppler-utils")
    subprocess.run([tool, "-r", "60", "-png", str(pdf), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 2
    for p in pages:
        assert _size(p) == (702, 497)  # A4 landscape (297 x 210 mm) at 60 dpi
        assert _ink(p) > 2_000
    assert _ink(pages[0], (0, 0, 702, 60)) > 500  # the title line
