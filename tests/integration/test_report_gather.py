"""Gathering a compliance report (issue 12 item 4) from a catalog built for real: generated
recordings with labelled times ingested through the real path, cases through the case
service, refusals in the real audit log. Exact counts per rule, officer, section, day and
fault; each count is also checked against the catalog's own views and the pure checks."""

from __future__ import annotations

import datetime as dt
import shutil
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.cases import service
from pipeline.cases.checks import check_catalog
from pipeline.catalog.core import Catalog
from pipeline.demo import synth
from pipeline.ingest.run import IngestSettings
from pipeline.people.permissions import open_authority
from pipeline.reports import build_report, parse_period
from pipeline.reports.gather import _check_views
from pipeline.reports.sources import CHECK_SOURCES, finding_rows
from pipeline.storage.local import LocalStore
from schemas.audit import ALLOWED, REFUSED, AuditRecord
from schemas.findings import CODES
from schemas.records import CaseEventRecord
from schemas.reports import UNATTRIBUTED, Breakdown, CoverageRow, FaultCount, TrendPoint
from schemas.views import DERIVED_VIEWS
from tests.ingesting import run_ingest
from tests.mediagen import START, Generated

pytestmark = pytest.mark.slow  # one ingest of four generated recordings, then many reports

CST = dt.timezone(dt.timedelta(hours=8))
INGESTED = dt.datetime(2026, 11, 28, 8, 0, tzinfo=CST)  # the night run
P, K = "遂大综执罚〔2026〕7号", "遂大综执检〔2026〕31号"
CHIEF_SECTION, LEGAL = "综合行政执法队", "法制科"

LABELS = (
    "file,officer_ids,case_number,inspected_entity,recorded_start\n"
    # stored 23 h after it ended: on time
    f"BC0007_0001.mp4,ZF0101,{P},大柘镇某某餐馆,2026-11-27T09:00:00+08:00\n"
    # a silent interruption, stored two days later
    f"BC0007_0002.mp4,ZF0101;ZF0102,{P},大柘镇某某餐馆,2026-11-26T09:00:00+08:00\n"
    # an interruption explained by voice
    f"BC0008_0001.mp4,ZF0103,{K},大柘镇某某超市,2026-11-27T15:00:00+08:00\n"
    # an edit (GOPs removed and retimed), recorded in October
    f"BC0009_0001.mp4,ZF0103,{K},大柘镇某某超市,2026-10-30T10:00:00+08:00\n"
)


@dataclass(frozen=True)
class World:
    catalog: Catalog
    refusals: tuple[AuditRecord, ...]


def _local(y: int, m: int, d: int, h: int = 12) -> dt.datetime:
    return dt.datetime(y, m, d, h, tzinfo=CST)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, clean_recording: Generated,
          interrupted_recording: Generated, retimed_recording: Generated) -> Iterator[World]:
    root = tmp_path_factory.mktemp("report")
    src = root / "in"
    src.mkdir()
    shutil.copy(clean_recording.path, src / "BC0007_0001.mp4")
    synth.write_with_interruption(src / "BC0007_0002.mp4", 8.0, START, gap_at_s=3.5,
                                  gap_s=5.0, silent_after_resume=True)
    shutil.copy(interrupted_recording.path, src / "BC0008_0001.mp4")
    shutil.copy(retimed_recording.path, src / "BC0009_0001.mp4")
    (root / "labels.csv").write_text(LABELS, encoding="utf-8")
    store, catalog = LocalStore(root / "store"), Catalog(root / "catalog")
    run_ingest([src], store=store, catalog=catalog, settings=IngestSettings(
        now=lambda: INGESTED.astimezone(dt.UTC), labels_path=str(root / "labels.csv")))
    with open_authority(catalog, store, lambda: _local(2026, 11, 28)) as auth:
        who = auth.acting("ZF0101", os_user="tester")
        service.open_case(catalog, auth=auth, actor=who, now=_local(2026, 11, 26, 8),
                          case_number=P, case_type="行政处罚", inspected_entity="大柘镇某某餐馆",
                          section=CHIEF_SECTION, officer_ids=["ZF0101", "ZF0102"])
        service.link_recordings(store, catalog, auth=auth, actor=who,
                                now=_local(2026, 11, 28, 9), case_number=P,
                                selectors=["BC0007_0001.mp4", "BC0007_0002.mp4"],
                                step="调查取证")
        service.add_exemption(catalog, auth=auth, actor=who, now=_local(2026, 11, 28, 10),
                              case_number=P, step="文书送达", reason="emergency",
                              basis="当事人拒收，现场情况紧急", author_id="ZF0101")
        service.open_case(catalog, auth=auth, actor=who, now=_local(2026, 11, 27, 8),
                          case_number=K, case_type="行政检查", inspected_entity="大柘镇某某超市",
                          section=LEGAL, officer_ids=["ZF0103"])
        service.link_recordings(store, catalog, auth=auth, actor=who,
                                now=_local(2026, 11, 28, 9), case_number=K,
                                selectors=["BC0008_0001.mp4", "BC0009_0001.mp4"],
                                step="调查取证")
        # An AV-13 event whose retention did not follow (a store that refused): the event only.
        batch = catalog.batch()
        batch.add(CaseEventRecord, [CaseEventRecord(
            case_number=K, event="trigger", at_utc=_local(2026, 11, 28, 11), actor_id=who,
            kind="obstruction")])
        batch.commit(dt.date(2026, 11, 28))
    # What the audit log refused (the permission table refuses these to everyone once the
    # registry holds anyone; here each refusal is appended as the refused command does).
    for actor, action, obj, at in (
        ("ZF0102", "delete", "objects/b3/aa", _local(2026, 11, 29)),
        ("ZF0102", "hold.lift", "objects/b3/bb", _local(2026, 11, 29)),
        ("ZF0103", "export.approve", "E1", _local(2026, 11, 30)),
        ("ZF0103", "delete", "objects/b3/cc", _local(2026, 12, 1)),  # December
        ("ZF0103", "query", "catalog", _local(2026, 11, 29)),  # refused, not a fault
    ):
        with open_authority(catalog, store, lambda at=at: at) as auth:
            auth.audit.append(actor, action, obj, REFUSED, "refused in the test")
    with open_authority(catalog, store, lambda: _local(2026, 11, 29)) as auth:
        auth.audit.append("ZF0103", "delete", "objects/b3/dd", ALLOWED, "not a refusal")
        refusals = tuple(auth.audit.records())
    yield World(catalog, refusals)


def _counts(world: World, **kw: str) -> dict[str, int]:
    r = build_report(world.catalog, period=kw.pop("period", "2026-11"), **kw)
    return {x.code: x.findings for x in r.by_rule}


# --- what the report counts ----------------------------------------------------------------
def test_by_rule_counts_every_finding_of_the_period_by_code(world: World) -> None:
    r = build_report(world.catalog, period="2026-11", refusals=world.refusals)
    got = {(x.rule, x.code): (x.findings, x.subjects) for x in r.by_rule}
    assert got == {
        ("AV-5", "STEP_NOT_RECORDED"): (2, 2),  # P's 文书送达, K's 程序启动
        ("AV-6", "EXEMPTION_UNACKNOWLEDGED"): (1, 1),
        ("AV-8", "CREATION_TIME_MISMATCH"): (3, 3),
        ("AV-9", "GAP_IN_STREAM"): (4, 2),  # video and audio of two recordings
        ("AV-9", "UNEXPLAINED_INTERRUPTION"): (1, 1),
        ("AV-12", "INGEST_LATE"): (1, 1),
        ("AV-13", "NOT_PERMANENT"): (1, 1),  # BC0008 (BC0009 was recorded in October)
    }
    assert r.total_findings == 13
    assert [x.rule for x in r.by_rule] == ["AV-5", "AV-6", "AV-8", "AV-9", "AV-9", "AV-12",
                                          "AV-13"]
    assert {x.code: x.title_zh for x in r.by_rule} == {x.code: CODES[x.code].title_zh
                                                      for x in r.by_rule}
    assert r.unread_checks == ()


def test_recording_findings_agree_with_the_findings_view(world: World) -> None:
    """The recordings' counts are the findings view's, counted by recorded start."""
    p = parse_period("2026-11")
    rows = world.catalog.query(
        "SELECT code, count(*) AS n FROM findings_detail WHERE recorded_start_utc >= ? "
        "AND recorded_start_utc < ? GROUP BY code", [p.start_utc, p.end_utc]).to_pylist()
    view = {x["code"]: x["n"] for x in rows}
    got = _counts(world)
    assert {c: n for c, n in got.items() if c in view} == view


def test_case_findings_agree_with_the_pure_checks(world: World) -> None:
    """October and November together hold every case finding the pure checks give."""
    pure = Counter(f.code for f in check_catalog(world.catalog,
                                                 now_utc=_local(2026, 11, 30)))
    got = Counter(_counts(world)) + Counter(_counts(world, period="2026-10"))
    assert {c: n for c, n in got.items() if c in pure} == dict(pure)
    assert set(pure) == {"STEP_NOT_RECORDED", "EXEMPTION_UNACKNOWLEDGED", "NOT_PERMANENT"}


def test_the_october_recording_counts_only_in_october(world: World) -> None:
    assert _counts(world, period="2026-10") == {
        "CREATION_TIME_MISMATCH": 1, "INGEST_LATE": 1, "SPLICE_IRREGULAR_DURATION": 1,
        "NOT_PERMANENT": 1}


def test_a_range_of_days_counts_its_days_in_local_time(world: World) -> None:
    # 2026-11-26 09:00 +08:00 is the only recording of the 26th; the case P opened that day.
    assert _counts(world, period="2026-11-26..2026-11-26") == {
        "CREATION_TIME_MISMATCH": 1, "GAP_IN_STREAM": 2, "UNEXPLAINED_INTERRUPTION": 1,
        "INGEST_LATE": 1, "STEP_NOT_RECORDED": 1}


def test_per_officer_and_section_breakdown(world: World) -> None:
    r = build_report(world.catalog, period="2026-11")
    assert set(r.breakdown) == {
        Breakdown("ZF0101", CHIEF_SECTION, "CREATION_TIME_MISMATCH", 2),
        Breakdown("ZF0101", CHIEF_SECTION, "GAP_IN_STREAM", 2),
        Breakdown("ZF0101", CHIEF_SECTION, "UNEXPLAINED_INTERRUPTION", 1),
        Breakdown("ZF0101", CHIEF_SECTION, "INGEST_LATE", 1),
        Breakdown("ZF0101", CHIEF_SECTION, "STEP_NOT_RECORDED", 1),
        Breakdown("ZF0101", CHIEF_SECTION, "EXEMPTION_UNACKNOWLEDGED", 1),
        Breakdown("ZF0102", CHIEF_SECTION, "CREATION_TIME_MISMATCH", 1),
        Breakdown("ZF0102", CHIEF_SECTION, "GAP_IN_STREAM", 2),
        Breakdown("ZF0102", CHIEF_SECTION, "UNEXPLAINED_INTERRUPTION", 1),
        Breakdown("ZF0102", CHIEF_SECTION, "INGEST_LATE", 1),
        Breakdown("ZF0102", CHIEF_SECTION, "STEP_NOT_RECORDED", 1),
        Breakdown("ZF0102", CHIEF_SECTION, "EXEMPTION_UNACKNOWLEDGED", 1),
        Breakdown("ZF0103", LEGAL, "CREATION_TIME_MISMATCH", 1),
        Breakdown("ZF0103", LEGAL, "GAP_IN_STREAM", 2),
        Breakdown("ZF0103", LEGAL, "NOT_PERMANENT", 1),
        Breakdown("ZF0103", LEGAL, "STEP_NOT_RECORDED", 1),
    }


def test_filters_narrow_to_a_section_an_officer_or_a_case(world: World) -> None:
    assert _counts(world, section=LEGAL) == {
        "CREATION_TIME_MISMATCH": 1, "GAP_IN_STREAM": 2, "NOT_PERMANENT": 1,
        "STEP_NOT_RECORDED": 1}
    assert _counts(world, case=K) == _counts(world, section=LEGAL)
    assert _counts(world, officer="ZF0102") == {
        "CREATION_TIME_MISMATCH": 1, "GAP_IN_STREAM": 2, "UNEXPLAINED_INTERRUPTION": 1,
        "INGEST_LATE": 1, "STEP_NOT_RECORDED": 1, "EXEMPTION_UNACKNOWLEDGED": 1}
    r = build_report(world.catalog, period="2026-11", officer="ZF0102")
    assert {b.officer for b in r.breakdown} == {"ZF0102"}
    assert _counts(world, section="没有的科室") == {}


def test_trend_counts_each_local_day_by_rule(world: World) -> None:
    r = build_report(world.catalog, period="2026-11")
    d = dt.date
    assert set(r.trend) == {
        TrendPoint(d(2026, 11, 26), "AV-5", 1),  # case P opened
        TrendPoint(d(2026, 11, 26), "AV-8", 1), TrendPoint(d(2026, 11, 26), "AV-9", 3),
        TrendPoint(d(2026, 11, 26), "AV-12", 1),
        TrendPoint(d(2026, 11, 27), "AV-8", 2), TrendPoint(d(2026, 11, 27), "AV-9", 2),
        TrendPoint(d(2026, 11, 27), "AV-5", 1),  # case K opened
        TrendPoint(d(2026, 11, 27), "AV-13", 1),  # BC0008's recorded start
        TrendPoint(d(2026, 11, 28), "AV-6", 1),  # the exemption
    }
    assert sum(t.findings for t in r.trend) == r.total_findings


def test_each_cases_checklist_coverage(world: World) -> None:
    r = build_report(world.catalog, period="2026-11")
    assert r.coverage == (
        CoverageRow(K, "行政检查", "大柘镇某某超市", LEGAL, "程序启动", "opening", None),
        CoverageRow(K, "行政检查", "大柘镇某某超市", LEGAL, "调查取证", "evidence collection",
                    "recording"),
        CoverageRow(P, "行政处罚", "大柘镇某某餐馆", CHIEF_SECTION, "调查取证",
                    "evidence collection", "recording"),
        CoverageRow(P, "行政处罚", "大柘镇某某餐馆", CHIEF_SECTION, "文书送达",
                    "service of documents", None),
    )


def test_av16_faults_per_officer(world: World) -> None:
    r = build_report(world.catalog, period="2026-11", refusals=world.refusals)
    assert r.faults == (
        FaultCount("ZF0101", "not_recording", 1),
        FaultCount("ZF0101", "unexplained_interruption", 1),
        FaultCount("ZF0101", "late_storage", 1),
        FaultCount("ZF0102", "not_recording", 1),
        FaultCount("ZF0102", "unexplained_interruption", 1),
        FaultCount("ZF0102", "late_storage", 1),
        FaultCount("ZF0102", "refused_deletion", 1),
        FaultCount("ZF0102", "refused_release", 1),
        FaultCount("ZF0103", "not_recording", 1),
        FaultCount("ZF0103", "refused_release", 1),
    )


def test_av16_edits_and_a_december_refusal_count_in_their_own_months(world: World) -> None:
    oct_ = build_report(world.catalog, period="2026-10", refusals=world.refusals)
    assert oct_.faults == (FaultCount("ZF0103", "late_storage", 1),
                           FaultCount("ZF0103", "edits_found", 1))
    dec = build_report(world.catalog, period="2026-12", refusals=world.refusals)
    assert dec.faults == (FaultCount("ZF0103", "refused_deletion", 1),)
    assert dec.total_findings == 0


def test_an_officer_filter_keeps_only_their_refusals(world: World) -> None:
    r = build_report(world.catalog, period="2026-11", officer="ZF0103",
                     refusals=world.refusals)
    assert r.faults == (FaultCount("ZF0103", "not_recording", 1),
                        FaultCount("ZF0103", "refused_release", 1))


def test_a_finding_whose_recording_names_no_officer_is_unattributed(
    tmp_path: Path, clean_recording: Generated,
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(clean_recording.path, src / "X.mp4")
    store, catalog = LocalStore(tmp_path / "store"), Catalog(tmp_path / "catalog")
    run_ingest([src], store=store, catalog=catalog, settings=IngestSettings(
        now=lambda: dt.datetime(2024, 5, 3, tzinfo=dt.UTC)))
    r = build_report(catalog, period="2024-05", zone="UTC")
    # stored in 2024 and never linked: AV-12's unlinked check counts it too (days to now)
    assert r.breakdown == (Breakdown(UNATTRIBUTED, UNATTRIBUTED, "INGEST_LATE", 1),
                           Breakdown(UNATTRIBUTED, UNATTRIBUTED, "LABEL_MISSING", 1),
                           Breakdown(UNATTRIBUTED, UNATTRIBUTED, "RECORDING_UNLINKED", 1))
    assert r.coverage == ()


# --- generic over the catalog's check views ------------------------------------------------
def test_every_check_view_of_the_catalog_is_counted(world: World) -> None:
    """Each check_* view has a CheckSource or a `code` column (else the report would name it
    as not counted): a new check view is counted without a change to the report."""
    sourced = {s.view for s in CHECK_SOURCES}
    with closing(world.catalog.connect()) as con:
        views = _check_views(con)
    assert set(views) == {v for v in DERIVED_VIEWS if v.startswith("check_")}
    assert [v for v, cols in views.items() if v not in sourced and "code" not in cols] == []
    assert {s.code for s in CHECK_SOURCES} <= set(CODES)
    assert sourced <= set(views)  # no source reads a view that is gone


def test_a_check_view_with_a_code_column_is_read_as_it_is(world: World) -> None:
    with closing(world.catalog.connect()) as con:
        con.execute("CREATE VIEW check_demo AS SELECT 'INGEST_LATE' AS code, "
                    f"'{P}' AS case_number, TIMESTAMPTZ '2026-11-05 00:00:00+00' AS at_utc")
        con.execute("CREATE VIEW check_shapeless AS SELECT 1 AS x")
        con.execute("CREATE VIEW check_about_a_file AS SELECT 'INGEST_LATE' AS code, "
                    "'f00d' AS recording_blake3")
        got = finding_rows(_check_views(con))
        rows = con.execute(f"SELECT code, case_number FROM ({got.rows}) WHERE code = "
                           "'INGEST_LATE' AND case_number IS NOT NULL").fetchall()
        # the case a row names no case of is looked up for the findings' recordings and
        # the generic views' (a CheckSource names its own)
        looked = con.execute(f"SELECT count(*), count(*) FILTER (WHERE recording_blake3 = "
                             f"'f00d') FROM ({got.lookups})").fetchall()
        findings = con.execute("SELECT count(*) FROM findings").fetchall()

    assert rows == [("INGEST_LATE", P)]
    assert (got.unread, got.generic) == (("check_shapeless",), (
        "check_about_a_file", "check_av9_sessions", "check_demo"))
    assert got.with_facts is not None and "check_av12_unlinked" in got.with_facts
    assert looked == [(findings[0][0] + 1, 1)]


# --- the period ----------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "first", "last"), [
    ("2026-11", dt.date(2026, 11, 1), dt.date(2026, 11, 30)),
    ("2026-12", dt.date(2026, 12, 1), dt.date(2026, 12, 31)),
    ("2028-02", dt.date(2028, 2, 1), dt.date(2028, 2, 29)),
    ("2026", dt.date(2026, 1, 1), dt.date(2026, 12, 31)),
    ("2026-11-03..2026-11-05", dt.date(2026, 11, 3), dt.date(2026, 11, 5)),
])
def test_a_period_is_its_local_days(text: str, first: dt.date, last: dt.date) -> None:
    p = parse_period(text)
    assert (p.first_day, p.last_day) == (first, last)
    assert p.start_utc == dt.datetime.combine(first, dt.time(), CST)
    assert p.end_utc == dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), CST)


@pytest.mark.parametrize(("text", "why"), [
    ("2026-13", "month must be in 1..12"),
    ("November", "expected YYYY-MM, YYYY or YYYY-MM-DD..YYYY-MM-DD"),
    ("2026-11-05..2026-11-03", "ends before it starts"),
])
def test_a_bad_period_says_what_is_wrong(text: str, why: str) -> None:
    from pipeline.errors import InputError

    with pytest.raises(InputError) as e:
        parse_period(text)
    assert str(e.value) == f"--period {text!r}: {why}"
