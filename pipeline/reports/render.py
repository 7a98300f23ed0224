"""A gathered Report as JSON, CSV, HTML and PDF; the terminal summary is the CLI's.

HTML comes from one Jinja2 template (autoescaped: an entity named `<script>` is text) with
its CSS inline and the trend chart as inline SVG, drawn from a Vega-Lite spec by
`vl_convert` with every external URL refused: the page loads nothing, offline or not.
The PDF is the same HTML through WeasyPrint, whose text is set in Noto CJK (the fonts the
system has; fonts-noto-cjk on Debian), the approach of the court-export cover
(`pipeline.export.contents`). `jinja_environment` and `html_to_pdf` are the shared
pieces: any other document of the project can render the same way.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import json
import os
from dataclasses import fields, is_dataclass
from typing import Any

import jinja2
from markupsafe import Markup

from pipeline.reports.tables import (
    by_officer,
    by_section,
    coverage,
    coverage_by_section,
    faults,
    incomplete,
    rules,
    trend_buckets,
    trend_series,
)
from schemas.reports import COLUMNS, FAULT_KINDS, HEADINGS, Report

FONT = "Noto Sans CJK SC"
LABEL_FONT = "DejaVu Sans"
CHART_WIDTH = 760
CHART_HEIGHT = 220
MONTH_LABEL_PX = 48  # "2026-03" in 10 px DejaVu Sans (Vega-Lite's axis labels) is ~42 px
# Up to this many cases the HTML lists each case's steps; more (a town's year: 10,000) and
# it shows the coverage per section and lists only the cases with a step missing, one line
# each (what a section chief follows up); the full table is the JSON's `coverage`.
COVERAGE_LIST_MAX = 200


@functools.cache
def jinja_environment(package: str, folder: str = "templates") -> jinja2.Environment:
    """Templates of `package`/`folder`, autoescaped, failing on an undefined name; one
    environment per folder and process, so each template is compiled once (0.2 s for the
    report's, which was every render)."""
    return jinja2.Environment(loader=jinja2.PackageLoader(package, folder),
                              autoescape=True, undefined=jinja2.StrictUndefined)


def html_to_pdf(html: str) -> bytes:
    """A PDF of `html` by WeasyPrint (its fonts embedded, subset)."""
    import logging

    import weasyprint

    logging.getLogger("fontTools").setLevel(logging.WARNING)  # subsetting chatter
    pdf: bytes = weasyprint.HTML(string=html).write_pdf()
    return pdf


def chart_spec(report: Report) -> dict[str, Any]:
    """The trend chart as a Vega-Lite spec: findings per day (per week for a long
    period: tables.trend_buckets), stacked by rule; every bar is on the axis."""
    zh, en = HEADINGS["trend"]
    unit, buckets = trend_buckets(report)
    return {
        "title": f"{zh} {en}",
        "width": CHART_WIDTH, "height": CHART_HEIGHT,
        "data": {"values": trend_series(report)},
        "mark": {"type": "bar"},
        "encoding": {
            "x": {"field": "day", "type": "ordinal", "title": " ".join(COLUMNS[unit]),
                  "scale": {"domain": [d.isoformat() for d in buckets]},
                  "axis": _x_axis(unit, buckets)},
            "y": {"field": "findings", "type": "quantitative", "aggregate": "sum",
                  "title": " ".join(COLUMNS["findings"])},
            "color": {"field": "rule", "type": "nominal", "title": " ".join(COLUMNS["rule"]),
                      "scale": {"domain": list(rules(report)) or ["—"]}},  # AV-5 before AV-12
        },
        # Titles in Noto CJK; the labels (days, counts, rule IDs) are Latin, in DejaVu
        # Sans: measuring each label in the CJK font was half the chart's time.
        "config": {"font": LABEL_FONT, "title": {"font": FONT},
                   "axis": {"titleFont": FONT}, "legend": {"titleFont": FONT},
                   "background": "white"},
    }


def _x_axis(unit: str, buckets: tuple[dt.date, ...]) -> dict[str, Any]:
    """Days: each labelled, slanted. Weeks: a label only at the first bar and at the first
    week that starts in each month, as its month (2026-03), level: 12 labels a year say
    more than 53 slanted dates, and each label costs vl_convert 3-4 ms to measure (a year's
    chart 0.27 s with 53, 0.10 s with 12). The first bar's label is left out when the next
    is too close to fit beside it (a year from Monday 2025-12-29: 2026-01 a bar later)."""
    if unit == "day":
        return {"labelAngle": -60}
    at = [i for i, d in enumerate(buckets) if i == 0 or d.month != buckets[i - 1].month]
    if len(at) > 1 and (at[1] - at[0]) * CHART_WIDTH / len(buckets) < MONTH_LABEL_PX:
        at = at[1:]
    return {"labelAngle": 0, "values": [buckets[i].isoformat() for i in at],
            "labelExpr": "slice(datum.value, 0, 7)"}


def chart_svg(report: Report) -> str:
    """The trend chart as SVG text; vl_convert may fetch nothing (allowed_base_urls=[])."""
    import vl_convert

    svg: str = vl_convert.vegalite_to_svg(chart_spec(report), allowed_base_urls=[])
    return svg


def _context(report: Report, chart: Markup) -> dict[str, Any]:
    kinds = [{"key": k.key, "zh": k.title_zh, "en": k.title_en} for k in FAULT_KINDS]
    cases = coverage(report.coverage)
    return {
        "r": report, "h": HEADINGS, "col": COLUMNS, "kinds": kinds,
        "officers": by_officer(report), "sections": by_section(report),
        "faults": faults(report), "cases": cases,
        "per_section": coverage_by_section(cases), "incomplete": incomplete(cases),
        "list_all": len(cases) <= COVERAGE_LIST_MAX,
        "chart": chart,
        "generated": report.generated_at_utc.isoformat(timespec="seconds"),
        "rule_rows": [x for x in report.by_rule if x.severity != "info"],
        "info_rows": [x for x in report.by_rule if x.severity == "info"],
    }


def render_html(report: Report) -> str:
    """The report as one self-contained HTML page, the chart as vl_convert's own SVG
    (which escapes its text). Drawn before the tables, not beside them in a thread:
    `vegalite_to_svg` holds the GIL for the whole call (vl-convert 1.9: a Python loop on
    the main thread stalled for 0.27 of the 0.27 s of a year's chart of 53 labels, and
    for 0.73 of the first call's 0.78 s), so a thread saved nothing."""
    template = jinja_environment("pipeline.reports").get_template("report.html.j2")
    return template.render(**_context(report, Markup(chart_svg(report))))


def render_pdf(report: Report, path: str | os.PathLike[str]) -> None:
    """The report as PDF at `path` (the HTML page through WeasyPrint)."""
    pdf = html_to_pdf(render_html(report))
    with open(path, "wb") as fh:
        fh.write(pdf)


def _plain(value: Any) -> Any:
    """`dataclasses.asdict` for the report's records (frozen dataclasses of scalars, in
    tuples): the same dict, without its deep copy of every immutable leaf (a year's
    report has 30,000 records: 0.20 s against 0.05)."""
    kind = type(value)
    names = _FIELDS.get(kind, ())
    if names == ():
        names = _FIELDS[kind] = (tuple(f.name for f in fields(value))
                                 if is_dataclass(value) and not isinstance(value, type)
                                 else None)
    if names is not None:
        return {n: _plain(getattr(value, n)) for n in names}
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    return value


# Each type's field names (None: not a dataclass), found once.
_FIELDS: dict[type, tuple[str, ...] | None] = {}


def to_dict(report: Report) -> dict[str, Any]:
    """The report as plain data (JSON's shape): the records, and the derived tables."""
    doc: dict[str, Any] = _plain(report)
    doc["by_officer"] = [{"officer": k, "findings": total,
                          "by_rule": dict(zip(p.columns, vals, strict=True))}
                         for p in [by_officer(report)] for k, vals, total in p.rows]
    doc["by_section"] = [{"section": k, "findings": total,
                          "by_rule": dict(zip(p.columns, vals, strict=True))}
                         for p in [by_section(report)] for k, vals, total in p.rows]
    doc["actionable_findings"] = report.actionable_findings
    doc["info_findings"] = report.info_findings
    doc["fault_kinds"] = [{"key": k.key, "title_zh": k.title_zh, "title_en": k.title_en}
                          for k in FAULT_KINDS]
    return doc


def _default(v: Any) -> Any:
    if hasattr(v, "isoformat"):
        return v.isoformat()
    raise TypeError(f"not JSON: {type(v).__name__}")


def to_json(report: Report) -> str:
    return json.dumps(to_dict(report), ensure_ascii=False, indent=2, default=_default) + "\n"


CSV_COLUMNS = ("officer", "section", "rule", "code", "title_zh", "title_en", "findings")


def to_csv(report: Report) -> str:
    """One row per officer, section and code with its count (what a spreadsheet pivots)."""
    by_code = {r.code: r for r in report.by_rule}
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(CSV_COLUMNS)
    for b in report.breakdown:
        r = by_code.get(b.code)
        w.writerow([b.officer, b.section, r.rule if r else "", b.code,
                    r.title_zh if r else "", r.title_en if r else "", b.findings])
    return buf.getvalue()
