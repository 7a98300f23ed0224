"""`custody store selftest`: prove the store refuses deletion."""

from __future__ import annotations

import argparse
from typing import Any

from pipeline.cli.context import open_context
from pipeline.cli.render import Output
from pipeline.cli.settings import Settings


def cmd_store_selftest(args: argparse.Namespace, s: Settings, ui: Output) -> int:
    from pipeline.storage.selftest import selftest
    from schemas.people import VERIFY

    with open_context(s, writes=True) as ctx:
        what = f"selftest:{ctx.store.uri}"
        ctx.auth.authorize(ctx.actor, VERIFY, what)
        report = selftest(ctx.store)
        result = report.verification
        ctx.auth.record(ctx.actor, VERIFY, what, "allowed", report.summary())
    if s.json:
        ui.dump_json({
            "store": report.store_uri, "passed": result.ok,
            "tamper_proof": report.tamper_proof, "note": report.note,
            "checks": [{"name": c.name, "passed": c.passed, "detail": c.detail}
                       for c in report.checks],
            "verification": result.as_json(),
        })
    else:
        for c in report.checks:
            ui.write(f"{'PASS' if c.passed else 'FAIL'} {c.name}: {c.detail}\n")
        ui.write(f"{report.summary()}\n{report.note}\n")
    return 0 if result.ok else 1


def register(sub: Any, shared: argparse.ArgumentParser) -> None:
    store = sub.add_parser("store", help="WORM store administration",
                           description="Administer the WORM store.")
    store_sub = store.add_subparsers(dest="store_command", required=True, metavar="ACTION")
    p = store_sub.add_parser(
        "selftest", parents=[shared], help="prove the store refuses deletion",
        description="Write a canary under a short COMPLIANCE retention, then try to "
        "delete it, overwrite it and shorten its retention; pass only if the store refuses "
        "all three. The local store is tamper-evident, not tamper-proof, and says so. "
        "Exit 1 if the store fails.",
    )
    p.set_defaults(func=cmd_store_selftest)
