"""`custody export request|approve|make|list`: release outside needs two people (AV-14,
AV-15); `make` builds the verified BagIt package of an approved export."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from pipeline.cli.commands.retention import selection
from pipeline.cli.context import open_context
from pipeline.cli.render import Output
from pipeline.cli.settings import Settings


def _export_rows(states: Sequence[Any]) -> list[dict[str, Any]]:
    from pipeline.export.requests import RECIPIENTS

    return [{"export_id": e.export_id, "status": e.status, "case": e.case_number,
             "recordings": len(e.recordings), "recipient": f"{e.recipient} "
             f"({RECIPIENTS[e.recipient]})", "purpose": e.purpose,
             "requested_by": e.requested_by, "approved_by": e.approved_by,
             "packages": [p["bag_sha512"] for p in e.packages]} for e in states]


def _show(states: Sequence[Any], s: Settings, ui: Output) -> None:
    rows = _export_rows(states)
    if s.json:
        ui.dump_json(rows)
    else:
        # a bag digest by its first 16 hex digits here; --json gives each in full
        rows = [{**r, "packages": " ".join(f"{d[:16]}…" for d in r["packages"])} for r in rows]
        ui.table(rows, list(rows[0]) if rows else ["export_id"])


def cmd_export_request(args: argparse.Namespace, s: Settings, ui: Output) -> int:
    from pipeline.export.requests import request_export

    with open_context(s, writes=True) as ctx:
        state = request_export(ctx.catalog, ctx.auth, ctx.actor, now=s.now(),
                               recipient=args.recipient, purpose=args.purpose,
                               selectors=args.recordings, case_number=args.case)
    _show([state], s, ui)
    return 0


def cmd_export_approve(args: argparse.Namespace, s: Settings, ui: Output) -> int:
    from pipeline.export.requests import approve_export

    with open_context(s, writes=True) as ctx:
        state = approve_export(ctx.catalog, ctx.auth, ctx.actor, args.export_id, now=s.now())
    _show([state], s, ui)
    return 0


def cmd_export_make(args: argparse.Namespace, s: Settings, ui: Output) -> int:
    from pipeline.export.make import make_package

    with open_context(s, writes=True) as ctx:
        made = make_package(ctx.store, ctx.catalog, ctx.auth, ctx.actor, args.export_id,
                            args.out, now=s.now(), algorithms=args.digest.split(","),
                            clip_specs=args.clip)
    row = {"export_id": made.export_id, "package": str(made.path), "items": made.items,
           "payload_bytes": made.payload_bytes, "bag_sha512": made.bag_digest,
           "kept_copy": made.kept_key, "audit_records": made.audit_records,
           "clips": made.clips}
    if s.json:
        ui.dump_json(row)
    else:
        ui.write(f"made {made.path}: {made.items} items, {made.payload_bytes} bytes, "
                 f"{len(made.clips)} derived clips, {made.audit_records} audit records\n"
                 f"bag SHA-512 (of tagmanifest-sha512.txt) {made.bag_digest}\n"
                 f"kept copy (AV-14) {made.kept_key}\n")
    return 0


def cmd_export_list(args: argparse.Namespace, s: Settings, ui: Output) -> int:
    from pipeline.export.requests import list_exports
    from schemas.people import VIEW

    with open_context(s, writes=False) as ctx:
        ctx.auth.authorize(ctx.actor, VIEW, "exports")
        states = list_exports(ctx.catalog)
    _show(states, s, ui)
    return 0


def register(sub: Any, shared: argparse.ArgumentParser) -> None:
    exp = sub.add_parser(
        "export", help="release footage outside: request and approval (AV-14, AV-15)",
        description="Footage leaves the archive only as an export requested by one person "
        "and approved by another (AV-15); auxiliary staff may do neither (AUX-10).",
    )
    exp_sub = exp.add_subparsers(dest="export_command", required=True, metavar="ACTION")
    p = exp_sub.add_parser(
        "request", parents=[shared], help="request the release of recordings or of a case",
        description="Record a request to release recordings to the procuratorate, a court "
        "or another approved recipient, with its purpose.",
    )
    selection(p)
    p.add_argument("--recipient", required=True,
                   choices=["procuratorate", "court", "review_body", "other"],
                   help="who receives it: 检察院, 法院, 复议机关, other")
    p.add_argument("--purpose", required=True, metavar="TEXT",
                   help="what the footage is evidence of")
    p.set_defaults(func=cmd_export_request)
    p = exp_sub.add_parser(
        "approve", parents=[shared], help="approve an export requested by someone else",
        description="Approve an export request. The approver must be allowed to approve "
        "and must not be the requester (AV-15).",
    )
    p.add_argument("export_id", metavar="EXPORT_ID", help="the export to approve")
    p.set_defaults(func=cmd_export_approve)
    p = exp_sub.add_parser(
        "make", parents=[shared], help="make the verified court package of an approved export",
        description="Copy each original of an approved export (approved by someone other "
        "than its requester) from the WORM store into a BagIt package at DIR, every chunk "
        "checked against its BLAKE3 while copied; manifests, inventory (电子数据清单), making "
        "record (复制说明), chunk and packet hash lists, the audit excerpt and a Chinese "
        "cover. The tag files are kept in the store at `permanent` (AV-14). A chunk that "
        "does not match stops the export and leaves no package.",
    )
    p.add_argument("export_id", metavar="EXPORT_ID", help="the approved export")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="the package directory to create (must not exist)")
    p.add_argument("--digest", default="sha512,sha256", metavar="ALGS",
                   help="manifest digests, comma-separated: sha512, sha256, sm3 "
                   "(default sha512,sha256; SM3 is written as the tag file sm3-manifest.txt)")
    p.add_argument("--clip", action="append", default=[], metavar="FILE@START-END",
                   help="also a derived clip (repeatable): FILE (a file name, data/ path or "
                   "BLAKE3 prefix of the export) from START to END ([[HH:]MM:]SS[.fff], from "
                   "the file's start), stream-copied from the keyframe at or before START, "
                   "no re-encode; in data/clips/ with its lineage in integrity/clips/, "
                   "a derivative, never an original")
    p.set_defaults(func=cmd_export_make)
    p = exp_sub.add_parser("list", parents=[shared], help="exports and their status",
                           description="List export requests, approvals and made packages "
                           "(each with its bag digest, the SHA-512 of tagmanifest-sha512.txt).")
    p.set_defaults(func=cmd_export_list)
