"""`custody report` (issue 12 item 4) through the CLI, with registered people: JSON, CSV and
the terminal summary give the same counts; the HTML and PDF files are written; who may run
it, what is audited, exit codes, and that a read creates nothing."""

from __future__ import annotations

import csv
import datetime as dt
import io
import shutil
from pathlib import Path

import pytest

from tests.acting import Acting, auxiliary
from tests.cli.conftest import Custody as Runner
from tests.mediagen import Generated

pytestmark = pytest.mark.slow  # an ingest of two generated recordings, then reports

CASE = "遂大综执罚〔2026〕7号"
SECTION = "综合行政执法队"
CST = dt.timezone(dt.timedelta(hours=8))
AUX = auxiliary(SECTION)


Custody = Acting


def _period() -> str:
    """The days around now (the CLI's clock): the recordings' labelled day and today."""
    today = dt.datetime.now(CST).date()
    return f"{today - dt.timedelta(days=3)}..{today + dt.timedelta(days=1)}"


@pytest.fixture(scope="module")
def custody(tmp_path_factory: pytest.TempPathFactory, clean_recording: Generated,
            interrupted_recording: Generated) -> Custody:
    root = tmp_path_factory.mktemp("report_cli")
    c = Custody(root)
    steps = [("A-1", "administrator", "ZJ-0001"), ("Z-1", "officer", "ZJ-0011"),
             ("C-1", "section_chief", "ZJ-0031")]
    for sid, role, cert in steps:
        assert c("staff", "add", sid, "--name", f"员工{sid}", "--kind", "officer", "--section",
                 SECTION, "--certificate", cert, "--role", role, who="A-1") == 0, c.err
    assert c("staff", "add", "X-1", "--name", "王五", *AUX, who="A-1") == 0, c.err
    assert c("case", "open", CASE, "--type", "行政处罚", "--entity", "大柘镇某某餐馆",
             "--section", SECTION, "--officer", "Z-1", who="Z-1") == 0, c.err
    inbox = root / "inbox"
    inbox.mkdir()
    shutil.copy(clean_recording.path, inbox / "BC0007_0001.mp4")
    shutil.copy(interrupted_recording.path, inbox / "BC0007_0002.mp4")
    # recorded 30 hours ago: stored late (AV-12)
    start = (dt.datetime.now(CST) - dt.timedelta(hours=30)).isoformat(timespec="seconds")
    labels = root / "labels.csv"
    labels.write_text(
        "file,case_number,inspected_entity,officer_ids,activity_type,recorded_start\n"
        f"BC0007_0001.mp4,{CASE},大柘镇某某餐馆,Z-1,调查取证,{start}\n"
        f"BC0007_0002.mp4,{CASE},大柘镇某某餐馆,Z-1,调查取证,{start}\n", encoding="utf-8")
    assert c("ingest", str(inbox), "--labels", str(labels), "--quiet", "--workers", "1",
             who="X-1") in (0, 1), c.err
    # an officer tries to lift the legal hold: refused (AV-16: an unapproved release)
    assert c("retention", "release", "BC0007_0001.mp4", "--second", "C-1", who="Z-1") == 2
    return c


EXPECTED = {  # code: findings
    "STEP_NOT_RECORDED": 1,  # 文书送达 (调查取证 is covered by the activity label)
    "CREATION_TIME_MISMATCH": 2,  # the generated files say 2024
    "GAP_IN_STREAM": 2,  # the interruption, in video and audio
    "INGEST_LATE": 2,
}


def test_json_counts_per_rule_officer_section_and_faults(custody: Custody) -> None:
    doc = custody.json("report", "--period", _period(), who="C-1", ok=(1,))
    assert {r["code"]: r["findings"] for r in doc["by_rule"]} == EXPECTED
    assert doc["total_findings"] == 7
    assert doc["by_officer"] == [{"officer": "Z-1", "findings": 7, "by_rule": {
        "AV-5": 1, "AV-8": 2, "AV-9": 2, "AV-12": 2}}]
    assert doc["by_section"] == [{"section": SECTION, "findings": 7, "by_rule": {
        "AV-5": 1, "AV-8": 2, "AV-9": 2, "AV-12": 2}}]
    assert doc["faults"] == [
        {"officer": "Z-1", "kind": "not_recording", "count": 1},
        {"officer": "Z-1", "kind": "late_storage", "count": 2},
        {"officer": "Z-1", "kind": "refused_release", "count": 1},
    ]
    assert [(r["step"], r["covered_by"]) for r in doc["coverage"]] == [
        ("调查取证", "recording"), ("文书送达", None)]
    assert doc["unread_checks"] == []


def test_csv_has_one_row_per_officer_section_and_code(custody: Custody) -> None:
    assert custody("report", "--period", _period(), "--csv", who="C-1") == 1, custody.err
    rows = list(csv.reader(io.StringIO(custody.out)))
    assert rows[0] == ["officer", "section", "rule", "code", "title_zh", "title_en",
                       "findings"]
    assert sorted((r[0], r[1], r[3], int(r[6])) for r in rows[1:]) == sorted(
        ("Z-1", SECTION, code, n) for code, n in EXPECTED.items())
    assert ["Z-1", SECTION, "AV-12", "INGEST_LATE", "超过24小时未存储",
            "Stored more than 24 hours after recording", "2"] in rows


def test_the_terminal_summary_and_the_files(custody: Custody, tmp_path: Path) -> None:
    html, pdf = tmp_path / "r.html", tmp_path / "r.pdf"
    assert custody("report", "--period", _period(), "--out", str(html), "--pdf", str(pdf),
                   who="C-1") == 1, custody.err
    lines = custody.out.splitlines()
    assert lines[0] == "行政执法音像记录合规报告 Compliance report on enforcement recordings"
    for heading in ("按规则统计 Findings per rule", "按执法人员统计 Findings per officer",
                    "按科室统计 Findings per section",
                    "执法过错（第十六条） Faults per officer (AV-16)",
                    "事项清单覆盖情况 Checklist coverage per case (AV-ANNEX)"):
        assert heading in lines
    (late,) = [x for x in lines if "INGEST_LATE" in x]
    assert late.split() == ["AV-12", "INGEST_LATE", "超过24小时未存储", "2", "2"]
    (officer,) = [x for x in lines if x.startswith("Z-1 ") and "AV" not in x
                  and len(x.split()) == 6]
    assert officer.split() == ["Z-1", "1", "2", "2", "2", "7"]
    assert f"HTML: {html}" in lines and f"PDF: {pdf}" in lines
    assert "大柘镇某某餐馆" in html.read_text(encoding="utf-8")
    assert pdf.read_bytes()[:5] == b"%PDF-"


def test_a_period_with_nothing_is_exit_0(custody: Custody) -> None:
    doc = custody.json("report", "--period", "2020-01", who="C-1")
    assert (doc["total_findings"], doc["by_rule"], doc["faults"]) == (0, [], [])


def test_filters_reach_the_report(custody: Custody) -> None:
    assert custody.json("report", "--period", _period(), "--officer", "C-1",
                        who="C-1")["total_findings"] == 0
    doc = custody.json("report", "--period", _period(), "--case", CASE, who="C-1", ok=(1,))
    assert doc["total_findings"] == 7 and doc["filters"]["case"] == CASE


def test_the_report_is_audited_and_an_auxiliary_is_refused(custody: Custody) -> None:
    assert custody("report", "--period", "2020-01", who="X-1") == 2
    assert "X-1" in custody.err and "may not report catalog" in custody.err
    records = custody.json("audit", "show", "--action", "report", who="A-1")
    got = [(r["who"], r["result"], r["reason"]) for r in records
           if r["reason"].startswith("period 2020-01")]
    assert ("C-1", "allowed", "period 2020-01: 0 findings, 0 faults") in got
    assert [r for r in records if r["who"] == "X-1" and r["result"] == "refused"]


def test_a_bad_period_is_exit_2_and_says_why(custody: Custody) -> None:
    assert custody("report", "--period", "2026/11", who="C-1") == 2
    assert custody.err == ("custody report: error: --period '2026/11': expected YYYY-MM, "
                           "YYYY or YYYY-MM-DD..YYYY-MM-DD\n")


def test_a_report_without_a_catalog_is_exit_2_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    r = Runner(tmp_path / "data")("report", "--period", "2026-11", "--out", "r.html",
                                  "--as", "A-1", loc=False)
    assert r.code == 2
    assert r.err == (
        f"custody report: error: no catalog at {tmp_path}/custody-data/catalog (the "
        "default; set --catalog, CUSTODY_CATALOG or `catalog` in custody.toml); run `custody "
        "ingest` first or point --catalog at one\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# --- exit 1 means warning or worse; info findings are shown apart ------------------------
def _commit_recording(catalog_dir: Path, name: str, codes: list[str], *,
                      officer: str = "Z-1", stored_days_ago: int = 0) -> None:
    """One recording of an hour ago, stored now (or days ago), with a finding of each
    code, through the commit path."""
    from pipeline.catalog.core import Catalog
    from schemas.findings import CODES
    from schemas.records import FindingRecord, RecordingRecord

    now = dt.datetime.now(dt.UTC)
    b3 = name.encode().hex().ljust(64, "0")[:64]
    batch = Catalog(catalog_dir).batch()
    batch.add(RecordingRecord, [RecordingRecord(
        blake3=b3, size_bytes=1, source_path=f"/in/{name}", file_name=name,
        media_kind="video", container="mp4", duration_seconds=60.0, creation_time_utc=now,
        make=None, model=None, serial=None, gps_iso6709=None, case_number=None,
        inspected_entity=None, officer_ids=[officer], device_id="BC0007",
        activity_type=None, recorded_start_utc=now - dt.timedelta(hours=1),
        recorded_end_utc=now - dt.timedelta(minutes=59), recorded_time_source="label",
        ingested_at_utc=now - dt.timedelta(days=stored_days_ago), run_id="r",
        store_uri="file:///s", store_key=f"b3/{b3}",
        store_version=None, retain_until_utc=now, chunk_size_bytes=1, chunk_count=1,
        tags_json="{}")])
    batch.add(FindingRecord, [FindingRecord(
        b3, f"/in/{name}", "r", c, CODES[c].rule, CODES[c].category.value,
        CODES[c].severity.value, None, None, 0.0, CODES[c].title_en, CODES[c].title_zh,
        "generated", now) for c in codes])
    batch.commit(now.date())


def test_info_findings_alone_are_exit_0_and_shown_apart(tmp_path: Path) -> None:
    from schemas.findings import CODES

    assert CODES["NO_SPEECH_AT_START"].severity.value == "info"
    assert CODES["INGEST_LATE"].severity.value != "info"
    c = Custody(tmp_path)
    for sid, role, cert in (("A-1", "administrator", "ZJ-0001"),
                            ("C-1", "section_chief", "ZJ-0031")):
        assert c("staff", "add", sid, "--name", f"员工{sid}", "--kind", "officer",
                 "--section", SECTION, "--certificate", cert, "--role", role,
                 who="A-1") == 0, c.err
    _commit_recording(tmp_path / "catalog", "BC0007_0009.mp4", ["NO_SPEECH_AT_START"])

    doc = c.json("report", "--period", _period(), who="C-1", ok=(0,))
    assert (doc["total_findings"], doc["info_findings"], doc["actionable_findings"]) == (
        1, 1, 0)
    assert [(r["code"], r["severity"], r["findings"]) for r in doc["by_rule"]] == [
        ("NO_SPEECH_AT_START", "info", 1)]
    assert c("report", "--period", _period(), who="C-1") == 0, c.err
    lines = c.out.splitlines()
    info = lines.index("提示信息（不计为问题） For information (facts the checks read, not "
                       "faults)")
    assert info > lines.index("按规则统计 Findings per rule")
    (row,) = [x for x in lines if "NO_SPEECH_AT_START" in x]
    assert lines.index(row) > info
    html = tmp_path / "r.html"
    assert c("report", "--period", _period(), "--out", str(html), who="C-1") == 0, c.err
    page = html.read_text(encoding="utf-8")
    assert "本期无发现 No findings in this period." in page  # no warning or worse
    apart = page.index("提示信息（不计为问题）<span class=\"en\">For information")
    assert page.index("<td>NO_SPEECH_AT_START</td>") > apart

    _commit_recording(tmp_path / "catalog", "BC0007_0010.mp4", ["INGEST_LATE"])
    doc = c.json("report", "--period", _period(), who="C-1", ok=(1,))
    assert (doc["total_findings"], doc["info_findings"], doc["actionable_findings"]) == (
        2, 1, 1)
    assert c("report", "--period", _period(), who="C-1") == 1

    # AV-12: stored 10 days ago and linked to no case, counted for its own officer
    _commit_recording(tmp_path / "catalog", "BC0009_0001.mp4", [], officer="Z-9",
                      stored_days_ago=10)
    doc = c.json("report", "--period", _period(), who="C-1", ok=(1,))
    assert {r["code"]: r["findings"] for r in doc["by_rule"]} == {
        "NO_SPEECH_AT_START": 1, "INGEST_LATE": 1, "RECORDING_UNLINKED": 1}
    assert [(o["officer"], o["by_rule"]) for o in doc["by_officer"]] == [
        ("Z-1", {"AV-9": 1, "AV-12": 1}), ("Z-9", {"AV-9": 0, "AV-12": 1})]
