"""`custody ingest SOURCE...`: archive recordings (hash, store WORM, analyse, catalog)."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from pipeline.cli.context import open_context
from pipeline.cli.render import Output
from pipeline.cli.settings import Settings

_ENCODING_NAMES = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8 (with BOM)",
                   "gb18030": "GB18030 (GBK)"}


def cmd_ingest(args: argparse.Namespace, s: Settings, ui: Output) -> int:
    from pipeline.ingest.run import IngestSettings, ingest

    with open_context(s, writes=True) as ctx:
        settings = IngestSettings(
            now=s.now, labels_path=s.labels, chunk_size=s.chunk_size,
            min_lock=dt.timedelta(days=s.min_lock_days), default_offset=s.utc_offset,
            probe_workers=s.probe_workers, batch_files=s.batch_files,
            full_demux=args.full_demux, follow_symlinks=args.follow_symlinks,
            # ingest runs the store self-test gate itself (pipeline.storage.selftest).
            allow_unverified_store=args.allow_unverified_store,
        )
        with ui.progress("ingest") as bar:
            result = ingest(
                args.sources, store=ctx.store, catalog=ctx.catalog, settings=settings,
                progress=bar.accept if bar else None, auth=ctx.auth, actor=ctx.actor,
            )
        if result.store_warning:
            ui.warn(result.store_warning)
        if ctx.store.unavailable is not None and result.store_failed is None:
            result.store_failed = str(ctx.store.unavailable)
        if result.store_failed is not None:
            ui.err.write(f"custody ingest: error: the store failed during the run: "
                         f"{result.store_failed}; run again once it is back (what was "
                         "archived stays archived, the rest is archived then)\n")
        ctx.catalog.refresh_views()
        db_path = ctx.catalog.db_path
    if s.json:
        ui.dump_json(result.as_json())
        return result.exit_code()
    rows = [
        {"file": o.display_name, "status": o.status,
         "blake3": (o.blake3 or "")[:16], "findings": len(o.findings),
         "reason": o.reason or ""}
        for o in result.files
    ]
    ui.table(rows, ["file", "status", "blake3", "findings", "reason"])
    ui.write("\n")
    frows = [
        {"file": o.display_name, "code": f.code, "rule": f.rule, "severity": f.severity,
         "at_s": f.at_seconds, "title": f"{f.title_zh} / {f.title_en}", "detail": f.detail}
        for o, f in result.findings
    ]
    if frows:
        ui.write(f"Findings 发现的问题 ({len(frows)}):\n")
        ui.table(frows, ["file", "code", "rule", "severity", "at_s", "title", "detail"])
        ui.write("\n")
    ui.write(
        f"run {result.run_id}: {len(result.files)} files, "
        f"{result.count('archived')} archived, {result.count('already_archived')} already "
        f"archived, {result.count('skipped')} skipped, {result.count('failed')} failed, "
        f"{len(frows)} findings\n"
        f"store {result.store_uri}\ncatalog {result.catalog_path} (duckdb {db_path})\n"
    )
    if result.labels_encoding is not None:
        ui.write(f"labels {s.labels}: read as {_ENCODING_NAMES[result.labels_encoding]}\n")
    if result.staging_removed:
        ui.write(f"staging: removed {result.staging_removed} leftover(s) of an interrupted "
                 "run\n")
    for unused in result.unused_labels:
        ui.warn(f"labels row for {unused!r} matched no ingested file")
    return result.exit_code()


def register(sub: Any, shared: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "ingest", parents=[shared], help="archive recordings: hash, store WORM, analyse, catalog",
        description="Archive every file below SOURCE (files or folders, recursive): one "
        "read hashes it (BLAKE3) into the WORM store, the demuxer's timestamps are checked "
        "for interruptions and edits (AV-9), labels and the 24-hour rule (AV-12) are "
        "applied, and the results are committed to the catalog. Exit 1 if there are "
        "findings or a file could not be ingested (each is named with the reason), 2 on "
        "an error that stops the run or when the store itself failed during it (down, "
        "unreachable: each file it failed names the store and the error).",
    )
    p.add_argument("sources", nargs="+", metavar="SOURCE",
                   help="files or folders (recursive) to archive")
    p.add_argument("--labels", metavar="FILE",
                   help="labels file, CSV or JSON (see README: Labels)")
    p.add_argument("--utc-offset", dest="utc_offset", metavar="+HH:MM",
                   help="offset of label times without one (default +08:00)")
    p.add_argument("--min-lock-days", dest="min_lock_days", type=int, metavar="DAYS",
                   help="shortest retention after ingest, days (default 90)")
    p.add_argument("--chunk-size", dest="chunk_size", type=int, metavar="BYTES",
                   help="fixity chunk size in bytes (default 1048576)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="demux worker processes (default cores-1)")
    p.add_argument("--batch-files", dest="batch_files", type=int, metavar="N",
                   help="files per atomic catalog commit (default 16)")
    p.add_argument("--full-demux", dest="full_demux", action="store_true",
                   help="read every packet of plain MP4/MOV files too, instead of timing "
                   "them from their sample tables (same result, slower)")
    p.add_argument("--follow-symlinks", dest="follow_symlinks", action="store_true",
                   help="follow symbolic links inside the folders (each folder is walked "
                   "once, so a link loop ends); by default a link is skipped, with the "
                   "reason")
    p.add_argument("--allow-unverified-store", action="store_true",
                   help="ingest into an S3 store even though its self-test fails "
                   "(recorded with the run; never do this for real evidence)")
    p.set_defaults(func=cmd_ingest)
