"""The report's derived tables (pipeline.reports.tables) and the HTML's coverage section
for a town's year: the chart's bars per day or per week, the coverage per section, and the
cases with a step missing listed one line each once there are too many to list every step."""

from __future__ import annotations

import datetime as dt
import re

from pipeline.reports import parse_period, render_html
from pipeline.reports.render import COVERAGE_LIST_MAX, chart_spec, chart_svg
from pipeline.reports.tables import (
    coverage,
    coverage_by_section,
    incomplete,
    trend_buckets,
    trend_series,
)
from schemas.reports import UNATTRIBUTED, CoverageRow, Filters, Report, RuleCount, TrendPoint

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def _report(period: str, trend: tuple[TrendPoint, ...] = (),
            rows: tuple[CoverageRow, ...] = ()) -> Report:
    rules = sorted({t.rule for t in trend})
    by_rule = tuple(RuleCount(r, f"X_{r}", "中", "en", "c", "warning",
                              sum(t.findings for t in trend if t.rule == r), 1) for r in rules)
    return Report(parse_period(period), Filters(), NOW, sum(r.findings for r in by_rule),
                  by_rule, (), trend, rows, ())


def test_a_month_has_a_bar_per_day_and_only_days_with_findings_as_points() -> None:
    r = _report("2026-11", (TrendPoint(dt.date(2026, 11, 3), "AV-9", 2),
                            TrendPoint(dt.date(2026, 11, 3), "AV-12", 1),
                            TrendPoint(dt.date(2026, 11, 30), "AV-9", 4)))
    unit, bars = trend_buckets(r)
    assert (unit, len(bars), bars[0], bars[-1]) == ("day", 30, dt.date(2026, 11, 1),
                                                    dt.date(2026, 11, 30))
    assert trend_series(r) == [{"day": "2026-11-03", "rule": "AV-12", "findings": 1},
                               {"day": "2026-11-03", "rule": "AV-9", "findings": 2},
                               {"day": "2026-11-30", "rule": "AV-9", "findings": 4}]
    x = chart_spec(r)["encoding"]["x"]
    assert (x["title"], len(x["scale"]["domain"])) == ("日期 Day", 30)
    assert x["axis"] == {"labelAngle": -60}  # every day labelled


def test_a_year_has_a_bar_per_week_from_its_monday() -> None:
    r = _report("2026", (TrendPoint(dt.date(2026, 1, 1), "AV-9", 2),  # a Thursday
                         TrendPoint(dt.date(2026, 1, 4), "AV-9", 3),  # the Sunday after
                         TrendPoint(dt.date(2026, 1, 5), "AV-9", 1),
                         TrendPoint(dt.date(2026, 12, 31), "AV-5", 7)))
    unit, bars = trend_buckets(r)
    assert (unit, len(bars), bars[0], bars[-1]) == ("week", 53, dt.date(2025, 12, 29),
                                                    dt.date(2026, 12, 28))
    assert trend_series(r) == [{"day": "2025-12-29", "rule": "AV-9", "findings": 5},
                               {"day": "2026-01-05", "rule": "AV-9", "findings": 1},
                               {"day": "2026-12-28", "rule": "AV-5", "findings": 7}]
    x = chart_spec(r)["encoding"]["x"]
    assert x["title"] == "周（起始日） Week starting"
    # a label at the first week starting in each month, level (not at the first bar:
    # 2026-01 is a bar after it, too close to fit)
    assert x["axis"]["values"] == ["2026-01-05", "2026-02-02", "2026-03-02",
                                   "2026-04-06", "2026-05-04", "2026-06-01", "2026-07-06",
                                   "2026-08-03", "2026-09-07", "2026-10-05", "2026-11-02",
                                   "2026-12-07"]
    assert x["axis"]["labelAngle"] == 0
    # the same findings in the chart as in the report
    assert sum(int(str(p["findings"])) for p in trend_series(r)) == 13


def _date_labels(period: str, day: dt.date) -> list[str]:
    """The dates and months written on the drawn chart of `period` (one finding on `day`)."""
    svg = chart_svg(_report(period, (TrendPoint(day, "AV-9", 2),)))
    return re.findall(r">(\d{4}-\d{2}(?:-\d{2})?)</text>", svg)


def test_a_years_chart_labels_its_months_and_a_months_chart_each_day() -> None:
    assert _date_labels("2026", dt.date(2026, 3, 4)) == [f"2026-{m:02d}" for m in range(1, 13)]
    # a quarter's 14 bars are wide: the first bar (Monday 2026-03-30) keeps its label
    assert _date_labels("2026-04-01..2026-06-30", dt.date(2026, 4, 4)) == [
        "2026-03", "2026-04", "2026-05", "2026-06"]
    assert _date_labels("2026-11", dt.date(2026, 11, 4)) == [
        f"2026-11-{d:02d}" for d in range(1, 31)]


def _rows(n: int) -> tuple[CoverageRow, ...]:
    """n cases of two steps; every third misses its second step; every fifth no section."""
    out = []
    for i in range(n):
        sec = None if i % 5 == 4 else f"S{i % 2}"
        out.append(CoverageRow(f"C{i:05d}", "行政处罚", f"E{i}", sec, "调查取证", "investigation",
                               "recording"))
        out.append(CoverageRow(f"C{i:05d}", "行政处罚", f"E{i}", sec, "文书送达",
                               "service of documents", None if i % 3 == 0 else "exemption"))
    return tuple(out)


def test_coverage_per_section_and_the_cases_with_a_step_missing() -> None:
    cases = coverage(_rows(10))
    got = [(s.section, s.cases, s.complete, s.incomplete, s.steps_missing)
           for s in coverage_by_section(cases)]
    # S0: C0 C2 C6 C8, S1: C1 C3 C5 C7, none: C4 C9; missing a step: C0 C3 C6 C9
    assert got == [("S0", 4, 2, 2, 2), ("S1", 4, 3, 1, 1), (UNATTRIBUTED, 2, 1, 1, 1),
                   ("", 10, 6, 4, 4)]
    assert [c.case_number for c in incomplete(cases)] == ["C00000", "C00003", "C00006",
                                                          "C00009"]


def test_a_few_cases_list_every_step_and_a_years_cases_only_those_missing_one() -> None:
    few = render_html(_report("2026-11", rows=_rows(6)))
    assert few.count("<td>调查取证 <span class=\"en\">investigation</span></td>") == 6
    assert "有缺失环节的案件" not in few
    many = render_html(_report("2026", rows=_rows(COVERAGE_LIST_MAX + 1)))
    assert "调查取证 <span class=\"en\">investigation</span>" not in many
    assert "有缺失环节的案件<span class=\"en\">Cases with a step missing</span>" in many
    missing = [i for i in range(COVERAGE_LIST_MAX + 1) if i % 3 == 0]
    assert many.count('<td class="missing">文书送达 <span class="en">service of documents'
                      '</span></td>') == len(missing)
    assert f"全部覆盖的 {COVERAGE_LIST_MAX + 1 - len(missing)} 件案件只计数" in many
    assert "<td>C00003</td>" in many and "<td>C00001</td>" not in many
