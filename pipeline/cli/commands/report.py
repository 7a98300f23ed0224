"""`custody report --period P [--section S] [--officer O] [--case C] [--out HTML] [--pdf PDF]
[--json | --csv]`: the compliance report (AV-16) of a period.

Who may: the `report` permission (section chiefs, the legal unit, analysts). Like `custody
query`, the permission check is audited, and so is what was reported (period, filters and
the number of findings). The report reads the catalog and the audit log and writes only
the files named by --out and --pdf: a missing catalog is exit 2 and nothing is created.
Exit 1 when the report counts a finding of severity warning or worse, or an AV-16 fault;
0 otherwise: info findings (NO_SPEECH_AT_START, a fact the AV-9 case check reads) are shown
apart and are not a reason to exit 1, as with `custody ingest`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pipeline.cli.context import open_context
from pipeline.cli.render import Output
from pipeline.cli.settings import Settings


def _describe(args: argparse.Namespace) -> str:
    parts = [f"period {args.period}"]
    for name in ("section", "officer", "case"):
        if getattr(args, name):
            parts.append(f"{name} {getattr(args, name)}")
    return ", ".join(parts)


def _write(path: str, data: bytes) -> None:
    from pipeline.errors import InputError

    try:
        Path(path).write_bytes(data)
    except OSError as exc:
        raise InputError(f"{path}: cannot write the report: {exc.strerror}") from None


def _summary(report: Any, ui: Output) -> None:
    from pipeline.reports import tables
    from schemas.reports import FAULT_KINDS, HEADINGS

    def heading(key: str) -> None:
        zh, en = HEADINGS[key]
        ui.write(f"\n{zh} {en}\n")

    p = report.period
    ui.write(f"{' '.join(HEADINGS['title'])}\n{' '.join(HEADINGS['period'])}: {p.label} "
             f"({p.first_day}..{p.last_day}, {p.zone}); findings 发现数: "
             f"{report.total_findings}\n")
    def rule_rows(info: bool) -> list[dict[str, Any]]:
        return [{"rule": r.rule, "code": r.code, "title": r.title_zh, "findings": r.findings,
                 "subjects": r.subjects} for r in report.by_rule
                if (r.severity == "info") == info]

    heading("by_rule")
    ui.table(rule_rows(False), ["rule", "code", "title", "findings", "subjects"])
    if info := rule_rows(True):
        heading("by_rule_info")
        ui.table(info, ["rule", "code", "title", "findings", "subjects"])
    for key, pivot in (("by_officer", tables.by_officer(report)),
                       ("by_section", tables.by_section(report))):
        heading(key)
        name = key.removeprefix("by_")
        ui.table([{name: k, **dict(zip(pivot.columns, vals, strict=True)), "total": total}
                  for k, vals, total in pivot.rows], [name, *pivot.columns, "total"])
    heading("faults")
    kinds = [k.key for k in FAULT_KINDS]
    ui.table([{"officer": o, **dict(zip(kinds, vals, strict=True)), "total": total}
              for o, vals, total in tables.faults(report)], ["officer", *kinds, "total"])
    cases = tables.coverage(report.coverage)
    heading("coverage")
    ui.table([{"case": c.case_number, "type": c.case_type, "covered": f"{c.covered}/"
               f"{c.required}", "missing": "、".join(s[0] for s in c.steps if s[2] == "missing")}
              for c in cases], ["case", "type", "covered", "missing"])
    if report.unread_checks:
        ui.warn(f"check views not counted (no source, no code column): "
                f"{', '.join(report.unread_checks)}")


def cmd_report(args: argparse.Namespace, s: Settings, ui: Output) -> int:
    from pipeline.errors import CustodyError
    from pipeline.reports import build_report, parse_period, render_html, to_csv, to_json
    from pipeline.reports.render import html_to_pdf
    from schemas.audit import ALLOWED, REFUSED
    from schemas.people import REPORT

    period = parse_period(args.period, s.timezone)  # bad input before anything is opened
    with open_context(s, writes=False) as ctx:
        ctx.auth.authorize(ctx.actor, REPORT, "catalog")
        try:
            report = build_report(ctx.catalog, period=period, section=args.section,
                                  officer=args.officer, case=args.case, zone=s.timezone,
                                  now_utc=s.now(), refusals=ctx.auth.audit.records())
        except CustodyError as exc:
            ctx.auth.record(ctx.actor, REPORT, "catalog", REFUSED,
                            f"{exc}; {_describe(args)}")
            raise
        faults = sum(f.count for f in report.faults)
        ctx.auth.record(ctx.actor, REPORT, "catalog", ALLOWED,
                        f"{_describe(args)}: {report.total_findings} findings, {faults} "
                        "faults")
    if args.out:
        html = render_html(report)
        _write(args.out, html.encode())
        if args.pdf:
            _write(args.pdf, html_to_pdf(html))
    elif args.pdf:
        _write(args.pdf, html_to_pdf(render_html(report)))
    if s.json:
        ui.write(to_json(report))
    elif args.format == "csv":
        ui.write(to_csv(report))
    else:
        _summary(report, ui)
        for what, path in (("HTML", args.out), ("PDF", args.pdf)):
            if path:
                ui.write(f"\n{what}: {path}\n")
    return 1 if report.actionable_findings or faults else 0


def register(sub: Any, shared: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "report", parents=[shared], help="compliance report of a period (AV-16) 合规报告",
        description="Count the findings of a period per rule, officer and section, the "
        "trend per day, each case's checklist coverage (AV-ANNEX) and AV-16's faults per "
        "officer (not recording, unexplained interruptions, late storage, edits, and the "
        "deletions and releases the audit log refused). Prints a summary (--json: the "
        "whole report; --csv: one row per officer, section and code); --out writes the "
        "HTML report (offline: CSS and chart inline), --pdf the same as PDF. Needs the "
        "report permission; audited. Exit 1 when a finding of severity warning or worse or a "
        "fault is counted (info findings are shown apart).",
    )
    p.add_argument("--period", required=True, metavar="PERIOD",
                   help="YYYY-MM, YYYY, or YYYY-MM-DD..YYYY-MM-DD (days of the configured "
                   "timezone, both ends included)")
    p.add_argument("--section", metavar="S", help="only findings of this section's cases")
    p.add_argument("--officer", metavar="O", help="only findings naming this officer")
    p.add_argument("--case", metavar="C", help="only findings of this case")
    p.add_argument("--out", metavar="HTML", help="write the HTML report here")
    p.add_argument("--pdf", metavar="PDF", help="write the PDF report here")
    p.add_argument("--csv", dest="format", action="store_const", const="csv",
                   help="print CSV (one row per officer, section and code)")
    p.set_defaults(func=cmd_report, format=None)
