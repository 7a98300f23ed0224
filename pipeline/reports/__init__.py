"""Compliance reports (`custody report`, AV-16): gather counts from a catalog's DuckDB
views into a frozen `Report` (`build_report`), then render it as JSON, CSV, HTML or PDF.

    report = build_report(catalog, period="2026-11", section=None, officer=None, case=None)
    html = render_html(report); render_pdf(report, "report.pdf")
    to_json(report); to_csv(report)
"""

from pipeline.reports.gather import build_report, parse_period
from pipeline.reports.render import render_html, render_pdf, to_csv, to_json

__all__ = ["build_report", "parse_period", "render_html", "render_pdf", "to_csv", "to_json"]
