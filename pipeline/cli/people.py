"""`custody staff|device|audit ...`: thin commands over the registry, permissions and audit.

Every command acts as a named person (`--as STAFF_ID`, or `as = "..."` in custody.toml),
and every command's permission is decided by `pipeline.people.permissions.Authority`, which also
writes the audit record: the CLI only parses, calls one library function and renders.
`cli.build_parser()` calls `register(sub)`.
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from pipeline.audit.log import AuditLog
from pipeline.catalog.core import Catalog
from pipeline.cli.main import Settings, _common, _dump_json, open_catalog, render_table
from pipeline.errors import InputError
from pipeline.people.permissions import Authority
from pipeline.people.registry import NewStaff, Registry
from pipeline.people.roster import roster_csv, roster_html, roster_rows
from pipeline.storage import open_store
from schemas.audit import RESULTS
from schemas.people import (
    AUDIT_VERIFY,
    AUDIT_VIEW,
    DEVICE_TYPES,
    DEVICE_VIEW,
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


@dataclass(frozen=True, slots=True)
class _Ctx:
    actor: str
    catalog: Catalog
    registry: Registry
    audit: AuditLog
    auth: Authority


@contextmanager
def _context(s: Settings) -> Iterator[_Ctx]:
    actor = getattr(s, "actor", None)
    if not actor:
        raise InputError("no acting person: pass --as STAFF_ID or set `as = \"STAFF_ID\"` "
                         "in custody.toml")
    catalog = open_catalog(s)
    audit = AuditLog.for_catalog(catalog.root, store=open_store(s.store, env=s.store_env),
                                 clock=s.now)
    try:
        registry = Registry(catalog)
        yield _Ctx(actor, catalog, registry, audit, Authority(registry, audit))
    finally:
        audit.close()


def _date(text: str | None, what: str) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{what} {text!r}: expected a date YYYY-MM-DD") from None


def _time(text: str | None, what: str, s: Settings) -> dt.datetime | None:
    """A date or date-time; without an offset it is local time at the configured offset."""
    if text is None:
        return None
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"{what} {text!r}: expected YYYY-MM-DD or an ISO date-time") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=s.utc_offset)
    return t.astimezone(dt.UTC)


def _staff_row(p: StaffEventRecord) -> dict[str, Any]:
    """What staff commands print: never the ID number, birth date or contract."""
    return {"staff_id": p.staff_id, "name": p.name, "kind": p.kind, "section": p.section,
            "post": p.post, "roles": p.roles, "status": p.status,
            "status_zh": STATUSES.get(p.status, ""), "screening": p.screening,
            "certificate_number": p.certificate_number}


# --- staff -----------------------------------------------------------------------------------
def cmd_staff_add(args: argparse.Namespace, s: Settings, out: TextIO, err: TextIO) -> int:
    new = NewStaff(
        staff_id=args.staff_id, kind=args.kind, name=args.name, section=args.section,
        post=args.post or "", roles=tuple(args.role or ()), status=args.status,
        screening=args.screening, certificate_number=args.certificate,
        id_number=args.id_number, birth_date=_date(args.birth_date, "--birth-date"),
        first_hired=_date(args.first_hired, "--first-hired"), agency=args.agency,
        work_area=args.work_area, contract_start=_date(args.contract_start, "--contract-start"),
        contract_end=_date(args.contract_end, "--contract-end"),
    )
    with _context(s) as c:
        rec = c.registry.add_staff(c.auth, c.actor, new, at_utc=s.now(), reason=args.reason)
    if s.json:
        _dump_json(_staff_row(rec), out)
    else:
        out.write(f"registered {rec.staff_id} {rec.name} ({rec.kind}, {rec.section}, "
                  f"{', '.join(rec.roles)}): {rec.status}\n")
    return 0


def cmd_staff_status(args: argparse.Namespace, s: Settings, out: TextIO, err: TextIO) -> int:
    with _context(s) as c:
        if args.set:
            c.registry.set_status(c.auth, c.actor, args.staff_id, args.set, at_utc=s.now(),
                                  reason=args.reason or "")
        elif args.screening:
            c.registry.set_screening(c.auth, c.actor, args.staff_id, args.screening,
                                     at_utc=s.now(), reason=args.reason or "")
        else:
            c.auth.authorize(c.actor, STAFF_VIEW, args.staff_id)
        hist = c.registry.history(args.staff_id)
    if not hist:
        raise InputError(f"{args.staff_id}: not in the personnel registry")
    rows = [{"seq": h.seq, "at_utc": h.at_utc, "event": h.event, "status": h.status,
             "status_zh": STATUSES.get(h.status, ""), "screening": h.screening,
             "by": h.actor_id, "reason": h.reason} for h in hist]
    if s.json:
        _dump_json({**_staff_row(hist[-1]), "history": rows}, out)
    else:
        cur = hist[-1]
        out.write(f"{cur.staff_id} {cur.name}: {cur.status} ({STATUSES.get(cur.status, '')})\n")
        render_table(rows, ["seq", "at_utc", "event", "status", "screening", "by", "reason"],
                     out)
    return 0


def cmd_staff_list(args: argparse.Namespace, s: Settings, out: TextIO, err: TextIO) -> int:
    with _context(s) as c:
        c.auth.authorize(c.actor, STAFF_VIEW, "staff")
        people = [p for p in c.registry.all_staff()
                  if args.section is None or p.section == args.section]
    rows = [_staff_row(p) for p in people]
    if s.json:
        _dump_json(rows, out)
    else:
        render_table(rows, ["staff_id", "name", "kind", "section", "post", "roles", "status",
                            "screening"], out)
        out.write(f"({len(rows)} people)\n")
    return 0


def cmd_staff_roster(args: argparse.Namespace, s: Settings, out: TextIO, err: TextIO) -> int:
    kinds = (KIND_AUXILIARY, KIND_OFFICER) if args.include_officers else (KIND_AUXILIARY,)
    with _context(s) as c:
        c.auth.authorize(c.actor, STAFF_ROSTER, "roster")
        rows = roster_rows(c.registry.all_staff(), kinds=kinds)
    as_of = s.now().astimezone(s.utc_offset).date()
    if args.csv:
        Path(args.csv).write_text(roster_csv(rows), encoding="utf-8-sig")
    if args.html:
        Path(args.html).write_text(roster_html(rows, as_of=as_of), encoding="utf-8")
    if not args.csv and not args.html:
        out.write(roster_csv(rows))
    else:
        for path in (args.csv, args.html):
            if path:
                err.write(f"wrote {path} ({len(rows)} people)\n")
    return 0


# --- devices ---------------------------------------------------------------------------------
def cmd_device_add(args: argparse.Namespace, s: Settings, out: TextIO, err: TextIO) -> int:
    with _context(s) as c:
        rec = c.registry.add_device(
            c.auth, c.actor, args.serial, args.type, args.section, args.custodian,
            at_utc=s.now(), make=args.make, model=args.model, reason=args.reason,
        )
    if s.json:
        _dump_json(_device_row(rec), out)
    else:
        out.write(f"registered device {rec.serial} ({DEVICE_TYPES[rec.device_type]} "
                  f"{rec.device_type}), section {rec.section}, custodian {rec.custodian_id}\n")
    return 0


def _device_row(d: Any) -> dict[str, Any]:
    return {"serial": d.serial, "type": d.device_type, "type_zh": DEVICE_TYPES[d.device_type],
            "section": d.section, "custodian": d.custodian_id, "make": d.make,
            "model": d.model, "status": d.status, "since_utc": d.at_utc}


def cmd_device_list(args: argparse.Namespace, s: Settings, out: TextIO, err: TextIO) -> int:
    with _context(s) as c:
        c.auth.authorize(c.actor, DEVICE_VIEW, "devices")
        rows = [_device_row(d) for d in c.registry.devices()
                if args.section is None or d.section == args.section]
    if s.json:
        _dump_json(rows, out)
    else:
        render_table(rows, ["serial", "type", "type_zh", "section", "custodian", "make",
                            "model", "status"], out)
        out.write(f"({len(rows)} devices)\n")
    return 0


# --- audit -----------------------------------------------------------------------------------
def cmd_audit_show(args: argparse.Namespace, s: Settings, out: TextIO, err: TextIO) -> int:
    since = _time(args.since, "--since", s)
    until = _time(args.until, "--until", s)
    with _context(s) as c:
        c.auth.authorize(c.actor, AUDIT_VIEW, "audit")
        recs = c.audit.show(actor_id=args.who, object_id=args.object, action=args.action,
                            result=args.result, since_utc=since, until_utc=until)
    if args.limit:
        recs = recs[-args.limit:]
    rows = [{"seq": r.seq, "at_utc": r.at_utc, "who": r.actor_id, "action": r.action,
             "object": r.object_id, "result": r.result, "reason": r.reason} for r in recs]
    if s.json:
        _dump_json(rows, out)
    else:
        render_table(rows, ["seq", "at_utc", "who", "action", "object", "result", "reason"],
                     out)
        out.write(f"({len(rows)} records)\n")
    return 0


def cmd_audit_verify(args: argparse.Namespace, s: Settings, out: TextIO, err: TextIO) -> int:
    with _context(s) as c:
        c.auth.authorize(c.actor, AUDIT_VERIFY, "audit")
        report = c.audit.verify()
    if s.json:
        _dump_json(report.as_json(), out)
    elif report.first_break is None:
        out.write(f"OK audit chain whole: {report.records} records in {report.segments} "
                  f"segments ({report.sealed_segments} sealed), last {report.last_blake3}\n")
    else:
        out.write(f"BROKEN audit chain: first break at {report.first_break}\n")
    return 0 if report.ok else 1


def cmd_audit_seal(args: argparse.Namespace, s: Settings, out: TextIO, err: TextIO) -> int:
    with _context(s) as c:
        c.auth.authorize(c.actor, AUDIT_VERIFY, "audit")
        seal = c.audit.seal()
    if s.json:
        _dump_json(None if seal is None else {
            "segment": seal.segment, "key": seal.key, "first_seq": seal.first_seq,
            "last_seq": seal.last_seq, "last_blake3": seal.last_blake3}, out)
    elif seal is None:
        out.write("nothing to seal\n")
    else:
        out.write(f"sealed segment {seal.segment}: seq {seal.first_seq}..{seal.last_seq} "
                  f"as {seal.key}\n")
    return 0


# --- parser ------------------------------------------------------------------------------------
def _opts(p: argparse.ArgumentParser) -> None:
    _common(p)


def register(sub: Any) -> None:
    """Add `staff`, `device` and `audit` with their subcommands to the custody parser."""
    staff = sub.add_parser("staff", help="personnel registry: officers and auxiliary staff",
                           description="The personnel registry (AUX-6/7/8/13). Changes are "
                           "appended events; nothing is rewritten.")
    ss = staff.add_subparsers(dest="staff_command", required=True, metavar="SUBCOMMAND")

    p = ss.add_parser("add", help="register an officer or auxiliary staff member",
                      description="Register a person. Auxiliary staff: 18 to 35 at first "
                      "hire (AUX-6), a passed screening to be active (AUX-7), agency, post, "
                      "work area and contract term (AUX-8). Officers: certificate number. "
                      "The first person of an empty registry registers themselves as "
                      "administrator (--as their own staff number).")
    p.add_argument("staff_id", metavar="STAFF_ID", help="staff number (人员编号)")
    p.add_argument("--name", required=True, help="full name (姓名)")
    p.add_argument("--kind", required=True, choices=KINDS, help="officer or auxiliary")
    p.add_argument("--section", required=True, help="section (科室)")
    p.add_argument("--post", help="post (工作岗位)")
    p.add_argument("--role", action="append", choices=ROLES,
                   help="a role (repeatable; default: the kind)")
    p.add_argument("--status", default="active", choices=("active", "pending"),
                   help="initial status (default active)")
    p.add_argument("--screening", choices=SCREENINGS,
                   help="AUX-7 background screening result (auxiliary staff)")
    p.add_argument("--certificate", help="enforcement certificate number (officers)")
    p.add_argument("--id-number", dest="id_number", help="ID card number (private)")
    p.add_argument("--birth-date", dest="birth_date", help="YYYY-MM-DD (private)")
    p.add_argument("--first-hired", dest="first_hired", help="date of FIRST hire, YYYY-MM-DD")
    p.add_argument("--agency", help="labour-dispatch or HR agency (AUX-8)")
    p.add_argument("--work-area", dest="work_area", help="work area (AUX-8)")
    p.add_argument("--contract-start", dest="contract_start", help="YYYY-MM-DD (AUX-8)")
    p.add_argument("--contract-end", dest="contract_end", help="YYYY-MM-DD (AUX-8)")
    p.add_argument("--reason", default="", help="note for the event")
    _opts(p)
    p.set_defaults(func=cmd_staff_add)

    p = ss.add_parser("status", help="show a person's status history, or change it",
                      description="Without --set/--screening: the person's current status "
                      "and full history. With --set STATUS: append a status change "
                      "(activation needs a passed screening, AUX-7). With --screening: record "
                      "a screening result.")
    p.add_argument("staff_id", metavar="STAFF_ID", help="staff number (人员编号)")
    p.add_argument("--set", choices=tuple(STATUSES), help="new status")
    p.add_argument("--screening", choices=SCREENINGS, help="record a screening result")
    p.add_argument("--reason", help="why (kept in the history)")
    _opts(p)
    p.set_defaults(func=cmd_staff_status)

    p = ss.add_parser("list", help="list registered people (no private fields)",
                      description="Current state of every registered person.")
    p.add_argument("--section", help="only this section")
    _opts(p)
    p.set_defaults(func=cmd_staff_list)

    p = ss.add_parser("roster", help="public roster of auxiliary staff (AUX-13, 公示)",
                      description="Export the public roster: name, staff number, section, "
                      "post and status only, with Chinese headings. CSV to stdout unless "
                      "--csv/--html give files.")
    p.add_argument("--csv", metavar="FILE", help="write CSV (UTF-8 with BOM) here")
    p.add_argument("--html", metavar="FILE", help="write a printable HTML page here")
    p.add_argument("--include-officers", dest="include_officers", action="store_true",
                   help="list certified officers too")
    _opts(p)
    p.set_defaults(func=cmd_staff_roster)

    dev = sub.add_parser("device", help="recording device registry (AV-2, AV-10)",
                         description="Recording devices with their section and custodian.")
    ds = dev.add_subparsers(dest="device_command", required=True, metavar="SUBCOMMAND")
    types = ", ".join(f"{k} ({v})" for k, v in DEVICE_TYPES.items())
    p = ds.add_parser("add", help="register a device with its custodian",
                      description=f"Register a device. Types (AV-2): {types}. The custodian "
                      "(AV-10) is an active person of the device's section.")
    p.add_argument("serial", metavar="SERIAL", help="device serial number (设备编号)")
    p.add_argument("--type", required=True, help="device type: code or Chinese name")
    p.add_argument("--section", required=True, help="owning section (科室)")
    p.add_argument("--custodian", required=True, metavar="STAFF_ID", help="custodian")
    p.add_argument("--make", help="manufacturer")
    p.add_argument("--model", help="model")
    p.add_argument("--reason", default="", help="note for the event")
    _opts(p)
    p.set_defaults(func=cmd_device_add)

    p = ds.add_parser("list", help="list registered devices", description="Every device.")
    p.add_argument("--section", help="only this section")
    _opts(p)
    p.set_defaults(func=cmd_device_list)

    aud = sub.add_parser("audit", help="the tamper-evident audit log",
                         description="Every action, allowed or refused, hash-chained and "
                         "sealed in batches into the WORM store.")
    au = aud.add_subparsers(dest="audit_command", required=True, metavar="SUBCOMMAND")
    p = au.add_parser("show", help="audit records filtered by person, object and period",
                      description="Print audit records matching every filter given.")
    p.add_argument("--who", metavar="STAFF_ID", help="only this person's actions")
    p.add_argument("--object", metavar="ID", help="only this object (prefix match)")
    p.add_argument("--action", help="only this action, e.g. export.approve")
    p.add_argument("--result", choices=RESULTS, help="allowed or refused")
    p.add_argument("--since", help="from this date/time (local offset if none given)")
    p.add_argument("--until", help="before this date/time")
    p.add_argument("--limit", type=int, help="only the last N matches")
    _opts(p)
    p.set_defaults(func=cmd_audit_show)

    p = au.add_parser("verify", help="recompute the hash chain; name the first break",
                      description="Read every sealed segment back from the store and the "
                      "open segment from disk, recompute every link and name the first "
                      "break (segment, record, edited/deleted/reordered). Exit 1 if broken.")
    _opts(p)
    p.set_defaults(func=cmd_audit_verify)

    p = au.add_parser("seal", help="seal the open segment into the WORM store now",
                      description="Seal the open segment now (also done every 1000 records "
                      "and hourly on append); run from a timer to keep the unsealed tail "
                      "short.")
    _opts(p)
    p.set_defaults(func=cmd_audit_seal)
