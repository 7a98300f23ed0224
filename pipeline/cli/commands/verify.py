"""`custody verify [RECORDING...]`: re-hash stored objects against the catalog (fixity)."""

from __future__ import annotations

import argparse
from typing import Any

from pipeline.cli.context import open_context
from pipeline.cli.render import Output
from pipeline.cli.settings import Settings
from pipeline.errors import InputError


def cmd_verify(args: argparse.Namespace, s: Settings, ui: Output) -> int:
    from pipeline.integrity.fixity import summarize, verify
    from schemas.people import VERIFY

    with open_context(s, writes=False) as ctx:
        ctx.auth.authorize(ctx.actor, VERIFY, ctx.store.uri)
        with ui.progress("verify") as bar:
            results = verify(ctx.store, ctx.catalog, args.recordings,
                             progress=bar.accept if bar else None)
        summary = summarize(ctx.store.uri, results)
        bad_keys = [r.store_key for r in results if not r.ok]
        ctx.auth.record(ctx.actor, VERIFY, ctx.store.uri, "allowed",
                        summary.summary()
                        + (f": {', '.join(bad_keys[:20])}" if bad_keys else ""))
    bad = [r for r in results if not r.ok]
    if s.json:
        ui.dump_json({
            "checked": len(results), "failed": len(bad),
            "verification": summary.as_json(),
            "objects": [{
                "blake3": r.blake3, "file_name": r.file_name, "key": r.store_key,
                "ok": r.ok,
                "bad_chunks": [{"index": i, "offset": o, "length": n}
                               for i, o, n in r.bad_chunks],
                "findings": [{"code": f.code, "title_en": f.title_en, "title_zh": f.title_zh,
                              "detail": f.detail} for f in r.findings],
            } for r in results],
        })
    else:
        for r in results:
            ui.write(f"{'OK  ' if r.ok else 'FAIL'} {r.file_name} {r.blake3[:16]}\n")
            for f in r.findings:
                ui.write(f"     {f.code} {f.title_zh} / {f.title_en}: {f.detail}\n")
        ui.write(f"{len(results)} objects checked, {len(bad)} failed\n")
    if args.recordings and not results:
        raise InputError(f"no recording in the catalog matches {' '.join(args.recordings)}")
    return 0 if summary.ok else 1


def register(sub: Any, shared: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "verify", parents=[shared], help="re-hash stored objects against the catalog (fixity)",
        description="Read each stored object and compare every chunk's BLAKE3 with the one "
        "recorded at ingest; names each mismatching chunk by offset and length. "
        "Exit 1 if any object is damaged or missing.",
    )
    p.add_argument("recordings", nargs="*", metavar="RECORDING",
                   help="BLAKE3 prefix, file name or source path (default: all)")
    p.set_defaults(func=cmd_verify)
