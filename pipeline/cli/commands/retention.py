"""`custody retention set|release|show`: raise and show retention (AV-11, AV-13)."""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Sequence
from typing import Any

from pipeline.cli.context import open_context
from pipeline.cli.render import Output
from pipeline.cli.settings import Settings
from pipeline.errors import InputError


def selection(p: argparse.ArgumentParser) -> None:
    """Which recordings a command acts on: named ones, or every one of a case."""
    p.add_argument("recordings", nargs="*", metavar="RECORDING",
                   help="BLAKE3 prefix, file name or source path")
    p.add_argument("--case", metavar="CASE_NUMBER",
                   help="every recording labelled with this case number 案号 or linked to it")


def _utc_date(text: str | None, offset: dt.timezone) -> dt.datetime | None:
    if text is None:
        return None
    from pipeline.ingest.labels import parse_time

    try:
        return parse_time(text, offset)
    except ValueError:
        raise InputError(f"--until {text!r}: expected a date like 2036-12-31") from None


def cmd_retention_set(args: argparse.Namespace, s: Settings, ui: Output) -> int:
    from pipeline.retention.engine import set_retention
    from schemas.retention import Tier, Trigger

    with open_context(s, writes=True) as ctx:
        changes = set_retention(
            ctx.store, ctx.catalog, auth=ctx.auth, actor=ctx.actor, tier=Tier(args.tier),
            now=s.now(), selectors=args.recordings, case_number=args.case,
            until_utc=_utc_date(args.until, s.utc_offset),
            trigger=Trigger(args.trigger) if args.trigger else None, reason=args.reason,
        )
    return _render_changes(changes, s, ui)


def cmd_retention_release(args: argparse.Namespace, s: Settings, ui: Output) -> int:
    from pipeline.retention.engine import release_hold

    with open_context(s, writes=True) as ctx:
        changes = release_hold(
            ctx.store, ctx.catalog, auth=ctx.auth, first=ctx.actor, second=args.second,
            now=s.now(), selectors=args.recordings, case_number=args.case, reason=args.reason,
        )
    return _render_changes(changes, s, ui)


def _render_changes(changes: Sequence[Any], s: Settings, ui: Output) -> int:
    from schemas.retention import TIERS

    def day(t: dt.datetime) -> str:
        return str(t.astimezone(s.timezone).date()) if not s.json else str(t.date())

    rows = [{"file": c.file_name, "blake3": c.blake3[:16],
             "tier": f"{c.before.tier} -> {c.after.tier} ({TIERS[c.after.tier].title_zh})",
             "retain_until": f"{day(c.before.retain_until_utc)} -> "
                             f"{day(c.after.retain_until_utc)}",
             "legal_hold": c.after.legal_hold} for c in changes]
    if s.json:
        ui.dump_json(rows)
    else:
        ui.table(rows, ["file", "blake3", "tier", "retain_until", "legal_hold"])
    return 0


def cmd_retention_show(args: argparse.Namespace, s: Settings, ui: Output) -> int:
    from pipeline.retention.engine import current_states
    from schemas.people import VIEW
    from schemas.retention import TIERS, Tier

    with open_context(s, writes=False) as ctx:
        ctx.auth.authorize(ctx.actor, VIEW, "retention")
        rows = current_states(ctx.catalog, args.recordings, args.case)
        shown = []
        for r in rows:
            key = r["store_key"]
            head = ctx.store.head(key) if ctx.store.exists(key) else None
            shown.append({
                "file": r["file_name"], "blake3": r["blake3"][:16], "case": r["case_number"],
                "tier": r["tier"], "tier_zh": TIERS[Tier(r["tier"])].title_zh,
                "retain_until": r["retain_until_utc"], "legal_hold": r["legal_hold"],
                "store_retain_until": head.retain_until_utc if head else None,
                "store_legal_hold": head.legal_hold if head else None,
            })
    if s.json:
        ui.dump_json(shown)
    else:
        ui.table(shown, list(shown[0]) if shown else ["file"])
        ui.write(f"({len(shown)} recordings)\n")
    return 0


def register(sub: Any, shared: argparse.ArgumentParser) -> None:
    ret = sub.add_parser(
        "retention", help="raise and show retention (AV-11, AV-13)",
        description="Retention tiers: one_year 保存不少于一年 (default), case 随案卷时限保存, "
        "permanent 长期保存. A tier only goes up; retain-until only grows.",
    )
    ret_sub = ret.add_subparsers(dest="retention_command", required=True, metavar="ACTION")
    p = ret_sub.add_parser(
        "set", parents=[shared], help="raise the retention tier of recordings or of a case",
        description="Raise recordings (or every recording of --case) to a tier and apply "
        "it to the store: case = legal hold while the case is open and retain-until the "
        "case file's retention end (--until); permanent = legal hold and the longest "
        "retention the store allows, with an AV-13 --trigger. Lowering is refused.",
    )
    selection(p)
    p.add_argument("--tier", required=True, choices=["one_year", "case", "permanent"],
                   help="the new tier")
    p.add_argument("--until", metavar="YYYY-MM-DD",
                   help="retain-until date (the case file's retention end)")
    p.add_argument("--trigger",
                   choices=["objection", "obstruction", "review_litigation", "other_important"],
                   help="AV-13 reason for permanent retention")
    p.add_argument("--reason", metavar="TEXT", help="free text kept with the change")
    p.set_defaults(func=cmd_retention_set)
    p = ret_sub.add_parser(
        "release", parents=[shared], help="lift a legal hold (two different authorised people)",
        description="Lift the legal hold of recordings (or of a whole --case, e.g. when the "
        "case is closed). Needs two different people allowed to lift holds: the acting "
        "person (--as) and --second. The retain-until date stays; the lock runs to it.",
    )
    selection(p)
    p.add_argument("--second", required=True, metavar="STAFF_ID",
                   help="the second authorised person who confirms the release")
    p.add_argument("--reason", metavar="TEXT",
                   help="why, kept with the change (e.g. case closed)")
    p.set_defaults(func=cmd_retention_release)
    p = ret_sub.add_parser(
        "show", parents=[shared],
        help="current retention of recordings, from the catalog and the store",
        description="Show each recording's tier, retain-until and legal hold as the catalog "
        "records them, beside what the store itself reports.",
    )
    selection(p)
    p.set_defaults(func=cmd_retention_show)
