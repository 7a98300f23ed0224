"""Gather a compliance report from a catalog: DuckDB aggregates, never the recordings.

Every finding row of the period (`sources.finding_rows`) is attributed to its case's
section and to its officers (the recording's, else the case's), filtered, and counted in
one pass: one GROUP BY GROUPING SETS gives the counts per code, per officer list, section
and code, per day and rule, and per code and subject (for the distinct subjects), and the
same statement spreads each officer list's counts over its officers. Only those counts
reach Python, so a year of a town (a million recordings) costs what DuckDB's scans cost;
the rows themselves are never stored (a temporary table of 750,000 rows cost more than
computing them), nor spread in Python (a year's 20,000 officer lists: 0.13 s).

AV-16's refused deletions and releases come from the audit log's records, which the
caller passes (`refusals`), filtered here by period, officer and section.
"""

from __future__ import annotations

import bisect
import contextlib
import datetime as dt
import math
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb

from pipeline.catalog.core import Catalog
from pipeline.catalog.parts import sql_str
from pipeline.errors import CatalogError, InputError
from pipeline.reports.sources import FindingRows, finding_rows
from schemas.audit import REFUSED, AuditRecord
from schemas.findings import CODES
from schemas.reports import (
    FAULT_KINDS,
    UNATTRIBUTED,
    Breakdown,
    CoverageRow,
    FaultCount,
    Filters,
    Period,
    Report,
    RuleCount,
    TrendPoint,
)

DEFAULT_ZONE = "Asia/Shanghai"

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_YEAR = re.compile(r"^(\d{4})$")
_RANGE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})$")


def _zone(zone: ZoneInfo | str) -> ZoneInfo:
    if isinstance(zone, ZoneInfo):
        return zone
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(f"time zone {zone!r}: not an IANA zone name") from None


def _utc(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), zone).astimezone(dt.UTC)


def parse_period(text: str, zone: ZoneInfo | str = DEFAULT_ZONE) -> Period:
    """`YYYY-MM`, `YYYY` or `YYYY-MM-DD..YYYY-MM-DD` (both days included), in days of
    `zone`. InputError for anything else."""
    z = _zone(zone)
    text = text.strip()
    try:
        if m := _MONTH.match(text):
            first = dt.date(int(m[1]), int(m[2]), 1)
            nxt = dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)
            last = nxt - dt.timedelta(days=1)
        elif m := _YEAR.match(text):
            first, last = dt.date(int(m[1]), 1, 1), dt.date(int(m[1]), 12, 31)
        elif m := _RANGE.match(text):
            first, last = dt.date.fromisoformat(m[1]), dt.date.fromisoformat(m[2])
        else:
            raise ValueError("expected YYYY-MM, YYYY or YYYY-MM-DD..YYYY-MM-DD")
    except ValueError as exc:
        raise InputError(f"--period {text!r}: {exc}") from None
    if last < first:
        raise InputError(f"--period {text!r}: ends before it starts")
    return Period(text, first, last, z.key, _utc(first, z),
                  _utc(last + dt.timedelta(days=1), z))


def _fetch(con: duckdb.DuckDBPyConnection, sql: str,
           params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """Rows as tuples, through Arrow (DuckDB's own conversion of TIMESTAMPTZ needs pytz)."""
    table = con.execute(sql, params or []).to_arrow_table()
    cols = [c.to_pylist() for c in table.columns]
    return list(zip(*cols, strict=True)) if cols else []


def _check_views(con: duckdb.DuckDBPyConnection) -> dict[str, set[str]]:
    rows = _fetch(con,
        "SELECT table_name, column_name FROM duckdb_columns() "
        "WHERE table_name LIKE 'check\\_%' ESCAPE '\\' AND NOT internal")
    out: dict[str, set[str]] = {}
    for view, col in rows:
        out.setdefault(str(view), set()).add(str(col))
    return out


def _narrowed(f: Filters, where: list[str], params: list[Any], prefix: str = "") -> None:
    """Add the filters' conditions over `section`, `officer_ids` and `case_number`."""
    for value, cond in ((f.section, f"{prefix}section = ?"),
                        (f.officer, f"list_contains({prefix}officer_ids, ?)"),
                        (f.case, f"{prefix}case_number = ?")):
        if value is not None:
            where.append(cond)
            params.append(value)


# Views that several checks (and this report) read: made once per report, as temporary
# tables of the same name, which DuckDB resolves before the catalog's views (temp comes
# first in its search path), so each check reads them instead of recomputing them. In
# dependency order; a view the catalog does not have is skipped. Not `recording_facts`:
# storing its million rows took 3-4 times as long as reading their Parquet columns, which
# each of its few readers does instead (the columns it needs).
SHARED_VIEWS = ("cases_current", "case_links_current", "case_documents",
                "case_exemptions", "case_checklist", "case_checklist_activities", "case_recordings",
                "check_av5_coverage", "check_av6_exemptions", "check_av8_documents")


def _share(con: duckdb.DuckDBPyConnection) -> None:
    have = {v for (v,) in _fetch(con, "SELECT view_name FROM duckdb_views() "
                                      "WHERE NOT internal AND schema_name = 'main'")}
    for name in SHARED_VIEWS:
        if name in have:
            con.execute(f"CREATE TEMP TABLE {name} AS SELECT * FROM main.{name}")


# The grouping sets of `_counts_sql`, by their GROUPING() id over (code, officer_ids,
# section, bucket, rule, subject): 1 where a column is not in the set.
_BY_CODE, _BY_OFFICERS, _BY_BUCKET, _BY_SUBJECT = 0b011111, 0b000111, 0b111001, 0b011110


@dataclass(frozen=True, slots=True)
class _Buckets:
    """Time from the period's start in buckets of `us` microseconds: the longest that
    divides the distance of every local day's start from the period's (a day in a zone
    without DST, an hour or less across a change), so each bucket lies in one day."""

    start_us: int
    us: int
    day_starts_us: tuple[int, ...]
    days: tuple[dt.date, ...]

    @classmethod
    def of(cls, p: Period) -> _Buckets:
        zone, days, d = ZoneInfo(p.zone), [], p.first_day
        while d <= p.last_day:
            days.append(d)
            d += dt.timedelta(days=1)
        starts = [_epoch_us(_utc(day, zone)) for day in days]
        step = _epoch_us(p.end_utc) - starts[0]
        for s in starts[1:]:
            step = math.gcd(step, s - starts[0])
        return cls(starts[0], step, tuple(starts), tuple(days))

    def day(self, bucket: int) -> dt.date:
        at = self.start_us + bucket * self.us
        return self.days[bisect.bisect_right(self.day_starts_us, at) - 1]


def _epoch_us(t: dt.datetime) -> int:
    return (t - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)


def _counts_sql(rows: FindingRows, f: Filters, b: _Buckets) -> tuple[str, list[Any]]:
    """The statement that counts every finding row of the period (with its case, section,
    officers and time) per grouping set (`_BY_*`), and its parameters after the period's
    start and end. The case a recording is linked to (the first by number) is looked up
    only for the recordings of `rows.lookups`; rows of a source with the recording's facts
    are not joined to the recordings again, nor rows about no recording to any. A row keeps
    its subject's ID only when it is about no recording. A row's time is counted in its
    bucket of `b` (`_trend` gives each its day); for the subjects set, the second level
    counts a code's non-NULL subjects. The officer lists' rows come out one per officer
    (UNATTRIBUTED for a list of none; only the filter's officer when there is one), their
    counts summed per officer, section and code."""
    where, params = ["at_utc >= ?", "at_utc < ?"], list[Any]()
    _narrowed(f, where, params)
    with_facts = "" if rows.with_facts is None else f"""
            UNION ALL
            SELECT x.code, x.rule, x.subject_kind,
                   CASE WHEN x.recording_blake3 IS NULL THEN x.subject_id END,
                   x.recording_blake3, x.case_number, c.section,
                   CASE WHEN len(coalesce(x.officer_ids, [])) > 0 THEN x.officer_ids
                        ELSE coalesce(c.officer_ids, []::VARCHAR[]) END,
                   coalesce(x.at_utc, x.recorded_start_utc, x.ingested_at_utc,
                            c.opened_at_utc)
            FROM ({rows.with_facts}) x
            LEFT JOIN cases_current c ON c.case_number = x.case_number"""
    without = "" if rows.without_recording is None else f"""
            UNION ALL
            SELECT x.code, x.rule, x.subject_kind, x.subject_id, NULL, x.case_number,
                   c.section, coalesce(c.officer_ids, []::VARCHAR[]),
                   coalesce(x.at_utc, c.opened_at_utc)
            FROM ({rows.without_recording}) x
            LEFT JOIN cases_current c ON c.case_number = x.case_number"""
    sql = f"""
        WITH x AS ({rows.rows}),
        links AS (SELECT recording_blake3, min(case_number) AS case_number
                  FROM case_links_current
                  WHERE recording_blake3 IN ({rows.lookups})
                  GROUP BY recording_blake3),
        y AS (
            SELECT x.code, x.rule, x.subject_kind,
                   CASE WHEN x.recording_blake3 IS NULL THEN x.subject_id END AS subject_id,
                   x.recording_blake3,
                   coalesce(x.case_number, l.case_number, r.case_number) AS case_number,
                   c.section,
                   CASE WHEN len(coalesce(r.officer_ids, [])) > 0 THEN r.officer_ids
                        ELSE coalesce(c.officer_ids, []::VARCHAR[]) END AS officer_ids,
                   coalesce(x.at_utc, r.recorded_start_utc, r.ingested_at_utc,
                            c.opened_at_utc) AS at_utc
            FROM x
            LEFT JOIN recording_facts r ON r.blake3 = x.recording_blake3
            LEFT JOIN links l ON l.recording_blake3 = x.recording_blake3
            LEFT JOIN cases_current c
              ON c.case_number = coalesce(x.case_number, l.case_number, r.case_number)
            {with_facts}{without}),
        z AS (
            SELECT code, rule, officer_ids, section,
                   (epoch_us(at_utc) - {b.start_us}) // {b.us} AS bucket,
                   coalesce('recording:' || recording_blake3,
                            subject_kind || ':' || coalesce(subject_id, '')) AS subject
            FROM y WHERE {' AND '.join(where)}),
        g AS (
            SELECT grouping(code, officer_ids, section, bucket, rule, subject) AS gid,
                   code, officer_ids, section, bucket, rule, subject,
                   any_value(rule) AS any_rule, count(*) AS n
            FROM z
            GROUP BY GROUPING SETS ((code), (officer_ids, section, code), (bucket, rule),
                                    (code, subject))),
        counted AS (
            SELECT gid, code, officer_ids, section, bucket, rule, any_value(any_rule) AS ar,
                   sum(n) AS n, count(*) FILTER (WHERE subject IS NOT NULL) AS k
            FROM g GROUP BY gid, code, officer_ids, section, bucket, rule)
        SELECT gid, code, NULL::VARCHAR, section, bucket, rule, ar, n, k
        FROM counted WHERE gid <> {_BY_OFFICERS}
        UNION ALL
        SELECT gid, code, officer, section, NULL, NULL, NULL, sum(n), 0 FROM (
            SELECT gid, code, section, n,
                   unnest(CASE WHEN len(coalesce(officer_ids, [])) > 0 THEN officer_ids
                               ELSE [{sql_str(UNATTRIBUTED)}] END) AS officer
            FROM counted WHERE gid = {_BY_OFFICERS})
        {"" if f.officer is None else "WHERE officer = ?"}
        GROUP BY gid, code, officer, section
    """
    if f.officer is not None:
        params.append(f.officer)
    return sql, params


def _by_rule(groups: list[tuple[Any, ...]]) -> tuple[RuleCount, ...]:
    subjects = {code: int(k) for gid, code, *_, k in groups if gid == _BY_SUBJECT}
    out = []
    for gid, code, _o, _s, _d, _r, rule, n, _k in groups:
        if gid != _BY_CODE:
            continue
        c = CODES.get(code)
        out.append(RuleCount(
            rule=c.rule if c else str(rule), code=code, title_zh=c.title_zh if c else code,
            title_en=c.title_en if c else code, category=c.category.value if c else "",
            severity=c.severity.value if c else "", findings=int(n),
            subjects=subjects.get(code, 0)))
    return tuple(sorted(out, key=lambda r: (_rule_key(r.rule), r.code)))


def _rule_key(rule: str) -> tuple[str, int, str]:
    """AV-5 before AV-12: the rule family, then its number."""
    m = re.match(r"^([A-Z]+)-(\d+)(.*)$", rule)
    return (m[1], int(m[2]), m[3]) if m else (rule, 0, "")


def _breakdown(groups: list[tuple[Any, ...]]) -> tuple[Breakdown, ...]:
    """Per officer, section and code (as `_counts_sql` spread each officer list over its
    officers; a section of none is UNATTRIBUTED)."""
    counts: dict[tuple[str, str, str], int] = {}
    for gid, code, officer, section, _d, _r, _a, n, _k in groups:
        if gid == _BY_OFFICERS:
            key = (str(officer), str(section if section is not None else UNATTRIBUTED),
                   str(code))
            counts[key] = counts.get(key, 0) + int(n)
    return tuple(Breakdown(o, s, c, n) for (o, s, c), n in sorted(counts.items()))


def _trend(groups: list[tuple[Any, ...]], b: _Buckets) -> tuple[TrendPoint, ...]:
    counts: dict[tuple[dt.date, str], int] = {}
    for gid, _c, _o, _s, bucket, rule, _a, n, _k in groups:
        if gid == _BY_BUCKET:
            key = (b.day(int(bucket)), str(rule))
            counts[key] = counts.get(key, 0) + int(n)
    return tuple(TrendPoint(day, rule, n) for (day, rule), n in sorted(counts.items()))


def _coverage(con: duckdb.DuckDBPyConnection, p: Period, f: Filters) -> tuple[CoverageRow, ...]:
    where = ["c.opened_at_utc < ?", "(c.closed_at_utc IS NULL OR c.closed_at_utc >= ?)"]
    params: list[Any] = [p.end_utc, p.start_utc]
    _narrowed(f, where, params, "c.")
    rows = _fetch(con, f"""
        SELECT v.case_number, v.case_type, c.inspected_entity, c.section, v.step, v.step_en,
               v.covered_by
        FROM check_av5_coverage v JOIN cases_current c USING (case_number)
        LEFT JOIN case_checklist k ON k.case_type = v.case_type AND k.step = v.step
        WHERE {' AND '.join(where)} ORDER BY v.case_number, k.ord""", params)
    return tuple(CoverageRow(*r) for r in rows)


def _faults(breakdown: Iterable[Breakdown], refusals: Iterable[AuditRecord], p: Period,
            f: Filters, sections: dict[str, str]) -> tuple[FaultCount, ...]:
    counts: dict[tuple[str, str], int] = {}
    kinds_of: dict[str, list[str]] = {}  # each code's fault kinds, found once
    for b in breakdown:
        kinds = kinds_of.get(b.code)
        if kinds is None:
            c = CODES.get(b.code)
            kinds = kinds_of[b.code] = [
                k.key for k in FAULT_KINDS
                if b.code in k.codes or (c is not None and c.category.value in k.categories)]
        for key in kinds:
            counts[b.officer, key] = counts.get((b.officer, key), 0) + b.findings
    for r in refusals:
        if r.result != REFUSED or not p.start_utc <= r.at_utc < p.end_utc:
            continue
        if f.officer is not None and r.actor_id != f.officer:
            continue
        if f.section is not None and sections.get(r.actor_id) != f.section:
            continue
        if f.case is not None and f.case not in r.object_id:
            continue
        for k in FAULT_KINDS:
            if r.action in k.refused_actions:
                counts[r.actor_id, k.key] = counts.get((r.actor_id, k.key), 0) + 1
    order = {k.key: i for i, k in enumerate(FAULT_KINDS)}
    return tuple(FaultCount(o, k, n) for (o, k), n in
                 sorted(counts.items(), key=lambda kv: (kv[0][0], order[kv[0][1]])))


@contextlib.contextmanager
def _closed_aside(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """`con`, closed when the block ends: after an error at once, else in a thread of its
    own. Freeing a year's report connection takes 0.05-0.08 s, during which DuckDB
    releases the GIL, so it is freed beside what follows (the HTML) instead of before it.
    Not a daemon: the process waits for it before it exits."""
    try:
        yield con
    except BaseException:
        con.close()
        raise
    threading.Thread(target=con.close, name="report-connection-close").start()


def build_report(
    catalog: Catalog, *, period: str | Period, section: str | None = None,
    officer: str | None = None, case: str | None = None,
    zone: ZoneInfo | str = DEFAULT_ZONE, now_utc: dt.datetime | None = None,
    refusals: Iterable[AuditRecord] = (),
) -> Report:
    """The compliance report of `period` (`2026-11`, `2026`, `2026-11-01..2026-11-15`, or a
    Period), narrowed to a section, an officer or a case. `refusals`: audit records (any;
    the refused deletions and releases among them are counted). `now_utc` is the report's
    time; without it, DuckDB's (the clock the AV-12 view counts days with)."""
    p = period if isinstance(period, Period) else parse_period(period, zone)
    f = Filters(section, officer, case)
    try:
        with _closed_aside(catalog.connect(ordered=False)) as con:
            _share(con)
            rows = finding_rows(_check_views(con))
            for view in rows.generic:  # read twice (the rows, the lookups): made once
                con.execute(f"CREATE TEMP TABLE {view} AS SELECT * FROM main.{view}")
            buckets = _Buckets.of(p)
            sql, params = _counts_sql(rows, f, buckets)
            groups = _fetch(con, sql, [p.start_utc, p.end_utc, *params])
            coverage = _coverage(con, p, f)
            sections = dict(_fetch(
                con, "SELECT staff_id, arg_max(section, seq) FROM staff_events GROUP BY 1"
            )) if f.section is not None else {}
            if now_utc is None:
                ((now_utc,),) = _fetch(con, "SELECT now()")
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0]
        raise CatalogError(f"{catalog.location}: cannot gather the report: {first}") from exc
    assert now_utc is not None
    by_rule, breakdown = _by_rule(groups), _breakdown(groups)
    return Report(
        period=p, filters=f, generated_at_utc=now_utc.astimezone(dt.UTC),
        total_findings=sum(r.findings for r in by_rule), by_rule=by_rule,
        breakdown=breakdown, trend=_trend(groups, buckets),
        coverage=coverage, faults=_faults(breakdown, refusals, p, f, sections),
        unread_checks=rows.unread)
