"""`custody verify [RECORDING...]`: re-hash stored objects against the catalog (fixity), and
the catalog's parts against the commits its audit log records (`catalog`); or, given one
directory holding bag-info.txt, the receiver's check of a court-export package (no catalog,
no store: `pipeline.export.receive`)."""

from __future__ import annotations

import argparse
from typing import Any

from pipeline.cli.context import open_context
from pipeline.cli.render import Output
from pipeline.cli.settings import Settings
from pipeline.errors import InputError


def cmd_verify_package(path: str, s: Settings, ui: Output) -> int:
    from pipeline.export.receive import verify_package

    v = verify_package(path)
    if s.json:
        ui.dump_json({"package": path, "verification": v.as_json()})
    else:
        for f in v.findings:
            ui.write(f"FAIL {f.detail}\n")
        ui.write(f"{'OK  ' if v.ok else 'FAIL'} package {path}: {v.checked} checked, "
                 f"{len(v.findings)} differ\n")
    return 0 if v.ok else 1


def cmd_verify(args: argparse.Namespace, s: Settings, ui: Output) -> int:
    from pipeline.catalog.tamper import verify_catalog
    from pipeline.integrity.fixity import summarize, verify
    from schemas.people import VERIFY

    if len(args.recordings) == 1:
        from pipeline.export.receive import is_package

        if is_package(args.recordings[0]):
            return cmd_verify_package(args.recordings[0], s, ui)
    with open_context(s, writes=False) as ctx:
        ctx.auth.authorize(ctx.actor, VERIFY, ctx.store.uri)
        with ui.progress("verify") as bar:
            results = verify(ctx.store, ctx.catalog, args.recordings,
                             progress=bar.accept if bar else None)
        summary = summarize(ctx.store.uri, results)
        catalog = verify_catalog(ctx.catalog.parts, ctx.auth.audit.records())
        bad_keys = [r.store_key for r in results if not r.ok]
        bad_parts = sorted({f.subject.id or "" for f in catalog.findings})
        ctx.auth.record(ctx.actor, VERIFY, ctx.store.uri, "allowed",
                        summary.summary()
                        + (f": {', '.join(bad_keys[:20])}" if bad_keys else "")
                        + f"; {catalog.summary()}"
                        + (f": {', '.join(bad_parts[:20])}" if bad_parts else ""))
    bad = [r for r in results if not r.ok]
    if s.json:
        ui.dump_json({
            "checked": len(results), "failed": len(bad),
            "verification": summary.as_json(),
            "catalog": catalog.as_json(),
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
        ui.write(f"{'OK  ' if catalog.ok else 'FAIL'} catalog {ctx.catalog.location}: "
                 f"{catalog.checked} parts checked, {len(catalog.findings)} findings\n")
        for f in catalog.findings:
            ui.write(f"     {f.code} {f.title_zh} / {f.title_en}: {f.detail}\n")
        ui.write(f"{len(results)} objects checked, {len(bad)} failed\n")
    if args.recordings and not results:
        raise InputError(f"no recording in the catalog matches {' '.join(args.recordings)}")
    return 0 if summary.ok and catalog.ok else 1


def register(sub: Any, shared: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "verify", parents=[shared],
        help="re-hash stored objects (fixity) and catalog parts against their records",
        description="Read each stored object and compare every chunk's BLAKE3 with the one "
        "recorded at ingest; names each mismatching chunk by offset and length. Then read "
        "every catalog part and compare it with the size and SHA-256 its commit recorded in "
        "the audit log; names each edited, missing or unrecorded part. "
        "Exit 1 if any object or part is damaged, missing or unrecorded. "
        "`custody verify PACKAGE` (a directory with bag-info.txt) checks a court-export "
        "package instead, anywhere, with no catalog or store: every manifest and tag "
        "manifest, chunk and packet hash, and the chain-of-custody excerpt; exit 1 names "
        "each file, chunk and packet that differs.",
    )
    p.add_argument("recordings", nargs="*", metavar="RECORDING",
                   help="BLAKE3 prefix, file name or source path (default: all); or one "
                   "package directory")
    p.set_defaults(func=cmd_verify)
