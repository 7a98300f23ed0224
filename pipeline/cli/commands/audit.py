"""`custody audit show|verify|seal`: the tamper-evident audit log (AV-16)."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from pipeline.cli.context import open_context
from pipeline.cli.render import Output
from pipeline.cli.settings import Settings
from pipeline.errors import InputError
from schemas.audit import RESULTS
from schemas.people import AUDIT_VERIFY, AUDIT_VIEW


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


def cmd_audit_show(args: argparse.Namespace, s: Settings, ui: Output) -> int:
    since = _time(args.since, "--since", s)
    until = _time(args.until, "--until", s)
    with open_context(s, writes=False, require_actor=True) as c:
        c.auth.authorize(c.actor, AUDIT_VIEW, "audit")
        recs = c.auth.audit.show(actor_id=args.who, object_id=args.object, action=args.action,
                                 result=args.result, since_utc=since, until_utc=until)
    if args.limit:
        recs = recs[-args.limit:]
    if s.json:
        ui.dump_json([{"seq": r.seq, "at_utc": r.at_utc, "who": r.actor_id,
                       "os_account": r.os_account,
                       "action": r.action, "object": r.object_id, "result": r.result,
                       "reason": r.reason} for r in recs])
    else:
        rows = [{"seq": r.seq, "at": r.at_utc, "who": r.actor_id, "action": r.action,
                 "object": r.object_id, "result": r.result, "reason": r.reason} for r in recs]
        ui.table(rows, ["seq", "at", "who", "action", "object", "result", "reason"])
        ui.write(f"({len(rows)} records)\n")
    return 0


def cmd_audit_verify(args: argparse.Namespace, s: Settings, ui: Output) -> int:
    with open_context(s, writes=False, require_actor=True) as c:
        c.auth.authorize(c.actor, AUDIT_VERIFY, "audit")
        report = c.auth.audit.verify()
    result = report.verification
    if s.json:
        ui.dump_json({**report.as_json(), "verification": result.as_json()})
    elif report.first_break is None:
        ui.write(f"OK audit chain whole: {report.records} records in {report.segments} "
                 f"segments ({report.sealed_segments} sealed), last {report.last_blake3}\n")
    else:
        ui.write(f"BROKEN audit chain: first break at {report.first_break}\n")
    return 0 if result.ok else 1


def cmd_audit_seal(args: argparse.Namespace, s: Settings, ui: Output) -> int:
    with open_context(s, writes=True, require_actor=True) as c:
        c.auth.authorize(c.actor, AUDIT_VERIFY, "audit")
        seal = c.auth.audit.seal()
    if s.json:
        ui.dump_json(None if seal is None else {
            "segment": seal.segment, "key": seal.key, "first_seq": seal.first_seq,
            "last_seq": seal.last_seq, "last_blake3": seal.last_blake3})
    elif seal is None:
        ui.write("nothing to seal\n")
    else:
        ui.write(f"sealed segment {seal.segment}: seq {seal.first_seq}..{seal.last_seq} "
                 f"as {seal.key}\n")
    return 0


def register(sub: Any, shared: argparse.ArgumentParser) -> None:
    aud = sub.add_parser("audit", help="the tamper-evident audit log",
                         description="Every action, allowed or refused, hash-chained and "
                         "sealed in batches into the WORM store.")
    au = aud.add_subparsers(dest="audit_command", required=True, metavar="SUBCOMMAND")
    p = au.add_parser("show", parents=[shared],
                      help="audit records filtered by person, object and period",
                      description="Print audit records matching every filter given; a table "
                      "shows times in the configured zone, --json the stored UTC times.")
    p.add_argument("--who", metavar="STAFF_ID", help="only this person's actions")
    p.add_argument("--object", metavar="OBJECT_ID", help="only this object (prefix match)")
    p.add_argument("--action", metavar="ACTION", help="only this action, e.g. export.approve")
    p.add_argument("--result", choices=RESULTS, help="allowed or refused")
    p.add_argument("--since", metavar="DATE[THH:MM]",
                   help="from this date/time (at --utc-offset/`utc_offset` if none given)")
    p.add_argument("--until", metavar="DATE[THH:MM]", help="before this date/time")
    p.add_argument("--limit", type=int, metavar="N", help="only the last N matches")
    p.set_defaults(func=cmd_audit_show)

    p = au.add_parser("verify", parents=[shared],
                      help="recompute the hash chain; name the first break",
                      description="Read every sealed segment back from the store and the "
                      "open segment from disk, recompute every link and name the first "
                      "break (segment, record, edited/deleted/reordered). Exit 1 if broken.")
    p.set_defaults(func=cmd_audit_verify)

    p = au.add_parser("seal", parents=[shared],
                      help="seal the open segment into the WORM store now",
                      description="Seal the open segment now (also done every 1000 records "
                      "and hourly on append); run from a timer to keep the unsealed tail "
                      "short.")
    p.set_defaults(func=cmd_audit_seal)
