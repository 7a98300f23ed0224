"""`custody staff add|status|list|roster`: the personnel registry (AUX-6/7/8/13).

Every command acts as a named person (`--as STAFF_ID`, or `as = "..."` in custody.toml),
and every permission is decided by `pipeline.people.permissions.Authority`, which also
writes the audit record: the CLI only parses, calls one library function and renders.
"""

from __future__ import annotations

import argparse
import datetime as dt
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pipeline.cli.context import open_context
from pipeline.cli.render import Output
from pipeline.cli.settings import Settings
from pipeline.errors import InputError
from schemas.people import (
    KIND_AUXILIARY,
    KIND_OFFICER,
    KINDS,
    ROLES,
    SCREENINGS,
    STAFF_ROSTER,
    STAFF_VIEW,
    STATUSES,
    StaffEventRecord,
)


def _date(text: str | None, what: str) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{what} {text!r}: expected a date YYYY-MM-DD") from None


def staff_row(p: StaffEventRecord) -> dict[str, Any]:
    """What staff commands print: never the ID number, birth date or contract."""
    return {"staff_id": p.staff_id, "name": p.name, "kind": p.kind, "section": p.section,
            "post": p.post, "roles": p.roles, "status": p.status,
            "status_zh": STATUSES.get(p.status, ""), "screening": p.screening,
            "certificate_number": p.certificate_number}


def cmd_staff_add(args: argparse.Namespace, s: Settings, ui: Output) -> int:
    from pipeline.people.registry import NewStaff

    new = NewStaff(
        staff_id=args.staff_id, kind=args.kind, name=args.name, section=args.section,
        post=args.post or "", roles=tuple(args.role or ()), status=args.status,
        screening=args.screening, certificate_number=args.certificate,
        id_number=args.id_number, birth_date=_date(args.birth_date, "--birth-date"),
        first_hired=_date(args.first_hired, "--first-hired"), agency=args.agency,
        work_area=args.work_area, contract_start=_date(args.contract_start, "--contract-start"),
        contract_end=_date(args.contract_end, "--contract-end"),
    )
    with open_context(s, writes=True, require_actor=True) as c:
        rec = c.auth.registry.add_staff(c.auth, c.actor, new, at_utc=s.now(),
                                        reason=args.reason)
    if s.json:
        ui.dump_json(staff_row(rec))
    else:
        ui.write(f"registered {rec.staff_id} {rec.name} ({rec.kind}, {rec.section}, "
                 f"{', '.join(rec.roles)}): {rec.status}\n")
    return 0


def cmd_staff_status(args: argparse.Namespace, s: Settings, ui: Output) -> int:
    writes = bool(args.set or args.screening)
    with open_context(s, writes=writes, require_actor=True) as c:
        registry = c.auth.registry
        if args.set:
            registry.set_status(c.auth, c.actor, args.staff_id, args.set, at_utc=s.now(),
                                reason=args.reason or "")
        elif args.screening:
            registry.set_screening(c.auth, c.actor, args.staff_id, args.screening,
                                   at_utc=s.now(), reason=args.reason or "")
        else:
            c.auth.authorize(c.actor, STAFF_VIEW, args.staff_id)
        hist = registry.history(args.staff_id)
    if not hist:
        raise InputError(f"{args.staff_id}: not in the personnel registry")
    rows = [{"seq": h.seq, "at_utc": h.at_utc, "event": h.event, "status": h.status,
             "status_zh": STATUSES.get(h.status, ""), "screening": h.screening,
             "by": h.actor_id, "reason": h.reason} for h in hist]
    if s.json:
        ui.dump_json({**staff_row(hist[-1]), "history": rows})
    else:
        cur = hist[-1]
        ui.write(f"{cur.staff_id} {cur.name}: {cur.status} ({STATUSES.get(cur.status, '')})\n")
        shown = [{**{k: v for k, v in r.items() if k != "at_utc"}, "at": r["at_utc"]}
                 for r in rows]
        ui.table(shown, ["seq", "at", "event", "status", "screening", "by", "reason"])
    return 0


def cmd_staff_list(args: argparse.Namespace, s: Settings, ui: Output) -> int:
    with open_context(s, writes=False, require_actor=True) as c:
        c.auth.authorize(c.actor, STAFF_VIEW, "staff")
        people = [p for p in c.auth.registry.all_staff()
                  if args.section is None or p.section == args.section]
    rows = [staff_row(p) for p in people]
    if s.json:
        ui.dump_json(rows)
    else:
        ui.table(rows, ["staff_id", "name", "kind", "section", "post", "roles", "status",
                        "screening"])
        ui.write(f"({len(rows)} people)\n")
    return 0


def cmd_staff_roster(args: argparse.Namespace, s: Settings, ui: Output) -> int:
    from pipeline.people.roster import roster_csv, roster_html, roster_rows

    kinds = (KIND_AUXILIARY, KIND_OFFICER) if args.include_officers else (KIND_AUXILIARY,)
    with open_context(s, writes=False, require_actor=True) as c:
        c.auth.authorize(c.actor, STAFF_ROSTER, "roster")
        rows = roster_rows(c.auth.registry.all_staff(), kinds=kinds)
    as_of = s.now().astimezone(s.timezone).date()
    if args.csv:
        Path(args.csv).write_text(roster_csv(rows), encoding="utf-8-sig")
    if args.html:
        Path(args.html).write_text(roster_html(rows, as_of=as_of), encoding="utf-8")
    if s.json:
        ui.dump_json([asdict(r) for r in rows])
    elif not args.csv and not args.html:
        ui.write(roster_csv(rows))
    for path in (args.csv, args.html):
        if path:
            ui.err.write(f"wrote {path} ({len(rows)} people)\n")
    return 0


def register(sub: Any, shared: argparse.ArgumentParser) -> None:
    staff = sub.add_parser("staff", help="personnel registry: officers and auxiliary staff",
                           description="The personnel registry (AUX-6/7/8/13). Changes are "
                           "appended events; nothing is rewritten.")
    ss = staff.add_subparsers(dest="staff_command", required=True, metavar="SUBCOMMAND")

    p = ss.add_parser("add", parents=[shared],
                      help="register an officer or auxiliary staff member",
                      description="Register a person. Auxiliary staff: 18 to 35 at first "
                      "hire (AUX-6), a passed screening to be active (AUX-7), agency, post, "
                      "work area and contract term (AUX-8). Officers: certificate number. "
                      "The first person of an empty registry registers themselves as "
                      "administrator (--as their own staff number).")
    p.add_argument("staff_id", metavar="STAFF_ID", help="staff number (人员编号)")
    p.add_argument("--name", required=True, metavar="NAME", help="full name (姓名)")
    p.add_argument("--kind", required=True, choices=KINDS, help="officer or auxiliary")
    p.add_argument("--section", required=True, metavar="SECTION", help="section (科室)")
    p.add_argument("--post", metavar="POST", help="post (工作岗位)")
    p.add_argument("--role", action="append", choices=ROLES,
                   help="a role (repeatable; default: the kind)")
    p.add_argument("--status", default="active", choices=("active", "pending"),
                   help="initial status (default active)")
    p.add_argument("--screening", choices=SCREENINGS,
                   help="AUX-7 background screening result (auxiliary staff)")
    p.add_argument("--certificate", metavar="CERTIFICATE_NUMBER",
                   help="enforcement certificate number (officers)")
    p.add_argument("--id-number", dest="id_number", metavar="ID_NUMBER",
                   help="ID card number (private)")
    p.add_argument("--birth-date", dest="birth_date", metavar="YYYY-MM-DD",
                   help="date of birth (private)")
    p.add_argument("--first-hired", dest="first_hired", metavar="YYYY-MM-DD",
                   help="date of FIRST hire")
    p.add_argument("--agency", metavar="AGENCY",
                   help="labour-dispatch or HR agency (AUX-8)")
    p.add_argument("--work-area", dest="work_area", metavar="AREA", help="work area (AUX-8)")
    p.add_argument("--contract-start", dest="contract_start", metavar="YYYY-MM-DD",
                   help="contract start (AUX-8)")
    p.add_argument("--contract-end", dest="contract_end", metavar="YYYY-MM-DD",
                   help="contract end (AUX-8)")
    p.add_argument("--reason", default="", metavar="TEXT", help="note for the event")
    p.set_defaults(func=cmd_staff_add)

    p = ss.add_parser("status", parents=[shared],
                      help="show a person's status history, or change it",
                      description="Without --set/--screening: the person's current status "
                      "and full history. With --set STATUS: append a status change "
                      "(activation needs a passed screening, AUX-7). With --screening: record "
                      "a screening result.")
    p.add_argument("staff_id", metavar="STAFF_ID", help="staff number (人员编号)")
    p.add_argument("--set", choices=tuple(STATUSES), help="new status")
    p.add_argument("--screening", choices=SCREENINGS, help="record a screening result")
    p.add_argument("--reason", metavar="TEXT", help="why (kept in the history)")
    p.set_defaults(func=cmd_staff_status)

    p = ss.add_parser("list", parents=[shared], help="list registered people (no private fields)",
                      description="Current state of every registered person.")
    p.add_argument("--section", metavar="SECTION", help="only this section")
    p.set_defaults(func=cmd_staff_list)

    p = ss.add_parser("roster", parents=[shared],
                      help="public roster of auxiliary staff (AUX-13, 公示)",
                      description="Export the public roster: name, staff number, section, "
                      "post and status only, with Chinese headings. CSV to stdout (or JSON "
                      "with --json) unless --csv/--html name files to write.")
    p.add_argument("--csv", metavar="FILE", help="write CSV (UTF-8 with BOM) to FILE")
    p.add_argument("--html", metavar="FILE", help="write a printable HTML page to FILE")
    p.add_argument("--include-officers", dest="include_officers", action="store_true",
                   help="list certified officers too")
    p.set_defaults(func=cmd_staff_roster)
