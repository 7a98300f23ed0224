"""`custody export request|approve|list`: release outside needs two people (AV-14, AV-15)."""

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
             "requested_by": e.requested_by, "approved_by": e.approved_by} for e in states]


def _show(states: Sequence[Any], s: Settings, ui: Output) -> None:
    rows = _export_rows(states)
    if s.json:
        ui.dump_json(rows)
    else:
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
    p = exp_sub.add_parser("list", parents=[shared], help="exports and their status",
                           description="List export requests and approvals.")
    p.set_defaults(func=cmd_export_list)
