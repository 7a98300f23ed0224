"""The report's tables as every format shows them, derived from one Report. Pure.

Per officer and per section, the columns are the rules that have findings in the report
(not a fixed list): a rule with no finding has no column, a new rule gets one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from schemas.reports import COVERAGE, FAULT_KINDS, UNATTRIBUTED, CoverageRow, Report


@dataclass(frozen=True, slots=True)
class Pivot:
    """Rows (an officer or a section) by columns (the rules), with each row's total."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, tuple[int, ...], int], ...]
    totals: tuple[int, ...]


def rules(report: Report) -> tuple[str, ...]:
    """The rules with findings, in the report's order (AV-5 before AV-12)."""
    seen: dict[str, None] = {}
    for r in report.by_rule:
        seen.setdefault(r.rule, None)
    return tuple(seen)


def _rule_of(report: Report) -> dict[str, str]:
    return {r.code: r.rule for r in report.by_rule}


def _pivot(report: Report, key: str) -> Pivot:
    cols = rules(report)
    rule_of = _rule_of(report)
    cells: dict[str, dict[str, int]] = {}
    for b in report.breakdown:
        k = b.officer if key == "officer" else b.section
        row = cells.setdefault(k, {})
        rule = rule_of.get(b.code, "?")
        row[rule] = row.get(rule, 0) + b.findings
    rows = tuple((k, tuple(v.get(c, 0) for c in cols), sum(v.values()))
                 for k, v in sorted(cells.items()))
    totals = tuple(sum(r[1][i] for r in rows) for i in range(len(cols)))
    return Pivot(cols, rows, totals)


def by_officer(report: Report) -> Pivot:
    """Findings per officer and rule (a finding naming two officers counts for each)."""
    return _pivot(report, "officer")


def by_section(report: Report) -> Pivot:
    """Findings per section and rule (a finding naming two officers counts for each)."""
    return _pivot(report, "section")


def faults(report: Report) -> tuple[tuple[str, tuple[int, ...], int], ...]:
    """AV-16: each officer's count of each fault kind (FAULT_KINDS order), and the total."""
    kinds = [k.key for k in FAULT_KINDS]
    per: dict[str, dict[str, int]] = {}
    for f in report.faults:
        per.setdefault(f.officer, {})[f.kind] = f.count
    return tuple((o, tuple(v.get(k, 0) for k in kinds), sum(v.values()))
                 for o, v in sorted(per.items()))


@dataclass(frozen=True, slots=True)
class CaseCoverage:
    case_number: str
    case_type: str | None
    inspected_entity: str | None
    section: str | None
    steps: tuple[tuple[str, str, str, str, str], ...]  # step, step_en, key, zh, en
    covered: int

    @property
    def required(self) -> int:
        return len(self.steps)


def coverage(rows: Sequence[CoverageRow]) -> tuple[CaseCoverage, ...]:
    """The coverage rows grouped per case, in order, each step with its state in words."""
    out: list[CaseCoverage] = []
    group: list[CoverageRow] = []

    def flush() -> None:
        if not group:
            return
        g = group[0]
        steps = tuple((r.step, r.step_en, r.covered_by or "missing", *COVERAGE[r.covered_by])
                      for r in group)
        out.append(CaseCoverage(g.case_number, g.case_type, g.inspected_entity, g.section,
                                steps, sum(1 for r in group if r.covered_by is not None)))
        group.clear()

    for r in rows:
        if group and group[0].case_number != r.case_number:
            flush()
        group.append(r)
    flush()
    return tuple(out)


# Up to this many days a bar per day; a longer period (a quarter, a year) a bar per week,
# from its Monday: 365 bars of two pixels with a label each say less than 53.
CHART_DAILY_DAYS = 62


def trend_buckets(report: Report) -> tuple[str, tuple[dt.date, ...]]:
    """The chart's bars: ("day", every day of the period) or ("week", the Monday of each
    week the period touches)."""
    p = report.period
    if (p.last_day - p.first_day).days < CHART_DAILY_DAYS:
        return "day", tuple(p.first_day + dt.timedelta(days=i)
                            for i in range((p.last_day - p.first_day).days + 1))
    first = p.first_day - dt.timedelta(days=p.first_day.weekday())
    return "week", tuple(first + dt.timedelta(weeks=i)
                         for i in range((p.last_day - first).days // 7 + 1))


def trend_series(report: Report) -> list[dict[str, object]]:
    """The findings of each bar and rule (trend_buckets), only where there are some (the
    chart's axis lists every bar)."""
    unit, _ = trend_buckets(report)
    sums: dict[tuple[dt.date, str], int] = {}
    for t in report.trend:
        start = t.day if unit == "day" else t.day - dt.timedelta(days=t.day.weekday())
        sums[start, t.rule] = sums.get((start, t.rule), 0) + t.findings
    return [{"day": d.isoformat(), "rule": r, "findings": n}
            for (d, r), n in sorted(sums.items()) if n]


@dataclass(frozen=True, slots=True)
class SectionCoverage:
    """Checklist coverage of one section's cases: how many, how many fully covered, how
    many with a missing step, and the steps missing."""

    section: str
    cases: int
    complete: int
    incomplete: int
    steps_missing: int


def coverage_by_section(cases: Sequence[CaseCoverage]) -> tuple[SectionCoverage, ...]:
    """Per section (its name, else （未标注）), in order, then the total as section "" ."""
    per: dict[str, list[int]] = {}
    for c in cases:
        missing = c.required - c.covered
        for key in (c.section or UNATTRIBUTED, ""):
            v = per.setdefault(key, [0, 0, 0, 0])
            v[0] += 1
            v[1 if missing == 0 else 2] += 1
            v[3] += missing
    rows = [SectionCoverage(k, *v) for k, v in sorted(per.items()) if k]
    if "" in per:
        rows.append(SectionCoverage("", *per[""]))
    return tuple(rows)


def incomplete(cases: Sequence[CaseCoverage]) -> tuple[CaseCoverage, ...]:
    """The cases with at least one step missing: what a section chief follows up."""
    return tuple(c for c in cases if c.covered < c.required)
