"""`custody case open|link|unlink|document|event|exempt|ack|close|show|list` (issue 12)."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any

from pipeline.cli.context import open_context
from pipeline.cli.render import Output
from pipeline.cli.settings import Settings
from pipeline.errors import InputError

TRIGGERS = ["objection", "obstruction", "review_litigation", "other_important"]
REASONS = ["explosion_hazard", "secret_or_privacy", "emergency", "objective"]


def _time(text: str | None, s: Settings, flag: str) -> dt.datetime | None:
    if text is None:
        return None
    from pipeline.ingest.labels import parse_time

    try:
        return parse_time(text, s.utc_offset)
    except ValueError:
        raise InputError(f"{flag} {text!r}: expected a time like 2026-11-27T09:30") from None


def _done(res: Any, s: Settings, ui: Output, what: str) -> int:
    rows = [{"case": e.case_number, "event": e.event, "id": e.item_id,
             "recording": e.recording_blake3[:16] if e.recording_blake3 else None,
             "step": e.step, "kind": e.kind} for e in res.events]
    ret = [{"file": c.file_name, "tier": f"{c.before.tier} -> {c.after.tier}",
            "retain_until": str(c.after.retain_until_utc.date()),
            "legal_hold": c.after.legal_hold} for c in res.retention]
    if s.json:
        ui.dump_json({"events": rows, "retention": ret})
        return 0
    ui.write(f"{what}\n")
    if rows:
        ui.table(rows, list(rows[0]))
    if ret:
        ui.table(ret, list(ret[0]))
    return 0


def cmd_open(args: argparse.Namespace, s: Settings, ui: Output) -> int:
    from pipeline.cases.service import open_case

    with open_context(s, writes=True) as ctx:
        res = open_case(ctx.catalog, auth=ctx.auth, actor=ctx.actor, now=s.now(),
                        case_number=args.case, case_type=args.type,
                        inspected_entity=args.entity, section=args.section,
                        officer_ids=args.officer or [])
    return _done(res, s, ui, f"case {args.case} opened 已立案")


def cmd_link(args: argparse.Namespace, s: Settings, ui: Output) -> int:
    from pipeline.cases.service import link_recordings

    with open_context(s, writes=True) as ctx:
        res = link_recordings(ctx.store, ctx.catalog, auth=ctx.auth, actor=ctx.actor,
                              now=s.now(), case_number=args.case, selectors=args.recordings,
                              step=args.step)
    return _done(res, s, ui, f"linked to case {args.case} 已关联")


def cmd_unlink(args: argparse.Namespace, s: Settings, ui: Output) -> int:
    from pipeline.cases.service import unlink_recording

    with open_context(s, writes=True) as ctx:
        res = unlink_recording(ctx.catalog, auth=ctx.auth, actor=ctx.actor, now=s.now(),
                               case_number=args.case, selector=args.recording,
                               reason=args.reason)
    return _done(res, s, ui, f"unlinked from case {args.case} (retention unchanged)")


def cmd_document(args: argparse.Namespace, s: Settings, ui: Output) -> int:
    from pipeline.cases.service import add_document

    with open_context(s, writes=True) as ctx:
        res = add_document(ctx.store, ctx.catalog, auth=ctx.auth, actor=ctx.actor,
                           now=s.now(), case_number=args.case, kind=args.kind, step=args.step,
                           start_utc=_time(args.start, s, "--start"),
                           end_utc=_time(args.end, s, "--end"),
                           scan=Path(args.file) if args.file else None)
    return _done(res, s, ui, f"document recorded for case {args.case} 文书已登记")


def cmd_event(args: argparse.Namespace, s: Settings, ui: Output) -> int:
    from pipeline.cases.service import add_event

    with open_context(s, writes=True) as ctx:
        res = add_event(ctx.store, ctx.catalog, auth=ctx.auth, actor=ctx.actor, now=s.now(),
                        case_number=args.case, trigger=args.kind, note=args.note)
    return _done(res, s, ui, f"AV-13 event for case {args.case}: long-term preservation 长期保存")


def cmd_exempt(args: argparse.Namespace, s: Settings, ui: Output) -> int:
    from pipeline.cases.service import add_exemption

    with open_context(s, writes=True) as ctx:
        res = add_exemption(ctx.catalog, auth=ctx.auth, actor=ctx.actor, now=s.now(),
                            case_number=args.case, step=args.step, reason=args.reason,
                            basis=args.basis, author_id=args.author)
    return _done(res, s, ui, f"AV-6 exemption for case {args.case} 不录制说明已登记")


def cmd_ack(args: argparse.Namespace, s: Settings, ui: Output) -> int:
    from pipeline.cases.service import acknowledge

    with open_context(s, writes=True) as ctx:
        res = acknowledge(ctx.catalog, auth=ctx.auth, actor=ctx.actor, now=s.now(),
                          case_number=args.case, exemption_id=args.exemption)
    return _done(res, s, ui, f"exemption {args.exemption} acknowledged 科室负责人已确认")


def cmd_close(args: argparse.Namespace, s: Settings, ui: Output) -> int:
    from pipeline.cases.service import close_case

    until = _time(args.retain_until, s, "--retain-until")
    assert until is not None
    with open_context(s, writes=True) as ctx:
        res = close_case(ctx.store, ctx.catalog, auth=ctx.auth, actor=ctx.actor, now=s.now(),
                         case_number=args.case, retain_until_utc=until, second=args.second)
    if res.waiting_for:
        if s.json:
            ui.dump_json({"closed": False, "waiting_for": res.waiting_for})
        else:
            ui.write(f"case {args.case} not closed yet 待第二人确认: {res.waiting_for}\n")
        return 0
    return _done(res, s, ui, f"case {args.case} closed 已结案")


def cmd_show(args: argparse.Namespace, s: Settings, ui: Output) -> int:
    from pipeline.cases.checks import check_catalog, recording_facts
    from pipeline.cases.service import load_case
    from schemas.people import VIEW

    with open_context(s, writes=False) as ctx:
        ctx.auth.authorize(ctx.actor, VIEW, f"case:{args.case}")
        case = load_case(ctx.catalog, args.case)
        if case.opened_at_utc is None:
            raise InputError(f"no case {args.case}")
        recs = recording_facts(ctx.catalog)
        coverage = ctx.catalog.query("SELECT step, step_en, covered_by FROM check_av5_coverage "
                                     "WHERE case_number = ?", [args.case]).to_pylist()
        findings = check_catalog(ctx.catalog, now_utc=s.now(), case_number=args.case)
    shown = {
        "case_number": case.case_number, "type": case.case_type,
        "entity": case.inspected_entity, "section": case.section, "officers": case.officer_ids,
        "status": "open" if case.is_open else "closed", "opened_at": case.opened_at_utc,
        "closed_at": case.closed_at_utc, "retain_until": case.retain_until_utc,
        "permanent": case.permanent, "triggers": [k for k, _ in case.triggers],
        "recordings": [{"file": recs[b].file_name if b in recs else None, "blake3": b,
                        "step": st, "tier": recs[b].tier if b in recs else None,
                        "legal_hold": recs[b].legal_hold if b in recs else None}
                       for b, st in case.links.items()],
        "documents": [{"id": d.item_id, "kind": d.kind, "step": d.step, "start": d.start_utc,
                       "end": d.end_utc, "file_blake3": d.file_blake3}
                      for d in case.documents],
        "exemptions": [{"id": e.item_id, "step": e.step, "reason": e.reason, "basis": e.basis,
                        "author": e.author_id, "acknowledged_by": e.acked_by,
                        "acknowledged_at": e.acked_at_utc} for e in case.exemptions.values()],
        "coverage": coverage,
        "findings": [{"code": f.code, "rule": f.rule, "title_zh": f.title_zh,
                      "detail": f.detail} for f in findings],
    }
    if s.json:
        ui.dump_json(shown)
        return 1 if findings else 0
    ui.write(f"{case.case_number}  {case.case_type}  {case.inspected_entity}  "
             f"{case.section}  {shown['status']}\n")
    for part in ("recordings", "documents", "exemptions", "coverage", "findings"):
        rows = shown[part]
        if rows:
            ui.write(f"{part}:\n")
            ui.table(rows, list(rows[0]))
    return 1 if findings else 0


def cmd_list(args: argparse.Namespace, s: Settings, ui: Output) -> int:
    from pipeline.cases.service import list_cases
    from schemas.people import VIEW

    with open_context(s, writes=False) as ctx:
        ctx.auth.authorize(ctx.actor, VIEW, "cases")
        rows = list_cases(ctx.catalog, open_only=args.open, section=args.section)
    if s.json:
        ui.dump_json(rows)
        return 0
    cols = ["case_number", "case_type", "inspected_entity", "section", "status", "permanent"]
    ui.table([{c: r[c] for c in cols} for r in rows], cols)
    ui.write(f"({len(rows)} cases)\n")
    return 0


def register(sub: Any, shared: argparse.ArgumentParser) -> None:
    case = sub.add_parser(
        "case", help="cases 案件: open, link recordings, documents, events, exemptions, close",
        description="A case's events are appended, never edited; its state is the view "
        "cases_current. Retention follows the case: linked -> case (legal hold), an AV-13 "
        "event -> permanent, closed -> the term's end and the case hold lifted.",
    )
    cs = case.add_subparsers(dest="case_command", required=True, metavar="ACTION")

    def parser(name: str, help_: str, desc: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = cs.add_parser(name, parents=[shared], help=help_,
                                                   description=desc)
        return p

    p = parser("open", "open a case 立案", "Open a case with its type (行政检查, 行政处罚), "
               "inspected entity, section and officers.")
    p.add_argument("case", metavar="CASE", help="case number 案号")
    p.add_argument("--type", required=True, metavar="TYPE", help="case type: 行政检查 or 行政处罚")
    p.add_argument("--entity", required=True, metavar="ENTITY", help="inspected entity 被检查单位")
    p.add_argument("--section", required=True, metavar="SECTION", help="responsible section 科室")
    p.add_argument("--officer", action="append", metavar="STAFF_ID",
                   help="an officer of the case (repeat for each)")
    p.set_defaults(func=cmd_open)

    p = parser("link", "link recordings to an open case", "Link recordings (file name or "
               "BLAKE3 prefix) to an open case, optionally at a checklist step; each is "
               "raised to tier case with a legal hold (permanent after an AV-13 event).")
    p.add_argument("case", metavar="CASE", help="case number 案号")
    p.add_argument("recordings", nargs="+", metavar="RECORDING",
                   help="file name, BLAKE3 prefix or source path")
    p.add_argument("--step", metavar="STEP", help="the checklist step, e.g. 调查取证")
    p.set_defaults(func=cmd_link)

    p = parser("unlink", "take a recording out of a case", "Unlink a recording, with a "
               "reason. Its retention stays: nothing ever goes down.")
    p.add_argument("case", metavar="CASE", help="case number 案号")
    p.add_argument("recording", metavar="RECORDING",
                   help="file name, BLAKE3 prefix or source path")
    p.add_argument("--reason", required=True, metavar="TEXT", help="why (kept)")
    p.set_defaults(func=cmd_unlink)

    p = parser("document", "record an enforcement document 文书", "Record a document with "
               "the start and end times it states (AV-8); --file stores its scan in WORM.")
    p.add_argument("case", metavar="CASE", help="case number 案号")
    p.add_argument("--kind", required=True, metavar="KIND",
                   help="document kind, e.g. 现场检查笔录")
    p.add_argument("--step", metavar="STEP", help="the checklist step it belongs to")
    p.add_argument("--start", metavar="TIME", help="start time the document states")
    p.add_argument("--end", metavar="TIME", help="end time the document states")
    p.add_argument("--file", metavar="SCAN", help="the document's scan, stored in WORM")
    p.set_defaults(func=cmd_document)

    p = parser("event", "record an AV-13 event (long-term preservation)", "An objection, "
               "obstruction, review/litigation or other important event: every linked "
               "recording, and every one linked later, becomes permanent.")
    p.add_argument("case", metavar="CASE", help="case number 案号")
    p.add_argument("--kind", required=True, choices=TRIGGERS, help="AV-13 trigger")
    p.add_argument("--note", metavar="TEXT", help="what happened")
    p.set_defaults(func=cmd_event)

    p = parser("exempt", "record an AV-6 exemption (step not recorded)", "A step that was "
               "not recorded, with the reason code, written basis and author; the section "
               "chief acknowledges it with `case ack`.")
    p.add_argument("case", metavar="CASE", help="case number 案号")
    p.add_argument("--step", required=True, metavar="STEP",
                   help="the step not recorded, e.g. 文书送达")
    p.add_argument("--reason", required=True, choices=REASONS, help="AV-6 reason")
    p.add_argument("--basis", required=True, metavar="TEXT", help="the written basis")
    p.add_argument("--author", required=True, metavar="STAFF_ID", help="who wrote it")
    p.set_defaults(func=cmd_exempt)

    p = parser("ack", "acknowledge an exemption (section chief 科室负责人)",
               "AV-6: the section chief acknowledges an exemption, once.")
    p.add_argument("case", metavar="CASE", help="case number 案号")
    p.add_argument("exemption", metavar="EXEMPTION_ID", help="e.g. X1 (case show lists them)")
    p.set_defaults(func=cmd_ack)

    p = parser("close", "close a case 结案", "Close with the case file's retention term: "
               "linked recordings are kept at least to it and the case hold is lifted, "
               "except on permanent recordings. Lifting needs two people allowed to lift "
               "holds: the first person's close waits for a second person's own close "
               "(within 7 days), or --second names the second person in one command.")
    p.add_argument("case", metavar="CASE", help="case number 案号")
    p.add_argument("--retain-until", required=True, metavar="YYYY-MM-DD",
                   help="the case file's retention term")
    p.add_argument("--second", metavar="STAFF_ID",
                   help="name the second person in this command (recorded as named, "
                   "not proven; without it a second person's own close confirms)")
    p.set_defaults(func=cmd_close)

    p = parser("show", "a case, its recordings, documents, coverage and findings",
               "Show a case's state, its checklist coverage (AV-5/AV-ANNEX) and its "
               "findings (AV-5, AV-6, AV-13); exit 1 with findings.")
    p.add_argument("case", metavar="CASE", help="case number 案号")
    p.set_defaults(func=cmd_show)

    p = parser("list", "list cases", "Cases from the view cases_current.")
    p.add_argument("--open", action="store_true", help="only open cases")
    p.add_argument("--section", metavar="S", help="only this section's cases")
    p.set_defaults(func=cmd_list)
