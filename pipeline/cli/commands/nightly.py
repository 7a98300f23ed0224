"""`custody nightly [--cluster ADDRESS]`: the unattended run of a systemd timer or cron.

On a terminal it shows a progress bar and ends with the summary; anywhere else (journald,
a pipe) it writes one JSON log line per event to stderr (started, progress every few
seconds, each file not archived, finished with the summary's counts), and the summary to
stdout (`--json`: one document). Exit 0 clean, 1 findings, 2 the run itself failed
(or the catalog's compaction at its end failed: the files stay archived).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from pipeline.cli.context import open_context
from pipeline.cli.render import Output
from pipeline.cli.settings import Settings
from pipeline.progress import Tick

LOG_EVERY_S = 5.0
# A catalog commit costs about 0.1 s (a Parquet part per table, each fsynced, and the
# audit record): 16 files per commit is most of a photo's cost in the driver. A killed run
# redoes at most one uncommitted batch (its objects' puts find them already stored).
NIGHTLY_BATCH_FILES = 64


def _log_lines(err: TextIO) -> Callable[..., None]:
    """One JSON object per line on `err` (structlog, `pipeline.jobs.logs`): what journald
    and log shippers read."""
    from pipeline.jobs.logs import configure_logging, get_logger

    configure_logging(json=True, stream=err)
    log = get_logger()

    def emit(event: str, level: str = "info", **fields: Any) -> None:
        (log.warning if level == "warning" else log.info)(event, **fields)

    return emit


class _LogProgress:
    """Ticks as a `nightly.progress` log line at most every LOG_EVERY_S seconds."""

    def __init__(self, emit: Callable[..., None]) -> None:
        self.emit, self.last = emit, 0.0

    def __call__(self, tick: Tick) -> None:
        now = time.monotonic()
        if now - self.last < LOG_EVERY_S and tick.done_items < tick.total_items:
            return
        self.last = now
        self.emit("nightly.progress", files_done=tick.done_items, files=tick.total_items,
                  bytes_done=tick.done_bytes, bytes=tick.total_bytes)


def _address(args: argparse.Namespace, s: Settings) -> str | None:
    """The cluster --cluster or `nightly.cluster` names; None for the local pool."""
    address = args.cluster or s.nightly.cluster
    return None if not address or address == "local" else str(address)


def _remote(args: argparse.Namespace, s: Settings) -> tuple[str, Any]:
    """(executor name, the cluster's map or the local pool)."""
    address = _address(args, s)
    if address is None:
        from pipeline.jobs.pool import PoolRemote

        # The driver only commits here: by default one worker per core, not cores-1.
        workers = s.probe_workers + (s.origins.get("workers") == "default")
        return f"local:{workers}", PoolRemote(workers, s.store_env)
    from pipeline.jobs.cluster import ClusterRemote, TlsFiles

    tls = TlsFiles(ca=args.tls_ca or s.nightly.tls_ca, cert=args.tls_cert or s.nightly.tls_cert,
                   key=args.tls_key or s.nightly.tls_key)
    return f"cluster:{address}", ClusterRemote(address, tls)


def _lock_path(s: Settings) -> Path:
    """The nightly lock in the catalog's root: the directory, or an s3:// catalog's local
    cache (where `open_catalog` keeps its state)."""
    from pipeline.jobs.nightly import LOCK_NAME

    if s.catalog.startswith("s3://"):
        return Path(s.catalog_cache) / s.catalog.removeprefix("s3://").strip("/") / LOCK_NAME
    return Path(s.catalog).resolve() / LOCK_NAME


def cmd_nightly(args: argparse.Namespace, s: Settings, ui: Output) -> int:
    if _address(args, s) is None:
        from pipeline.jobs.forkserver import warm

        # Before the imports below: the pool's server imports the same on the other core.
        warm()
    from pipeline.ingest.outcome import IngestSettings
    from pipeline.jobs.lock import nightly_lock
    from pipeline.jobs.nightly import NightlyJob, check_sources, run_nightly

    executor, remote = _remote(args, s)
    job = NightlyJob(
        sources=s.nightly.sources,
        ingest=IngestSettings(
            now=s.now, chunk_size=s.chunk_size, min_lock=dt.timedelta(days=s.min_lock_days),
            default_offset=s.utc_offset, probe_workers=s.probe_workers,
            batch_files=(s.batch_files if s.origins.get("batch_files") != "default"
                         else NIGHTLY_BATCH_FILES),
            allow_unverified_store=args.allow_unverified_store),
        executor=executor, remote=remote, env=s.store_env,
        spool=s.nightly.spool or str(Path(s.catalog_cache).parent / "inbox-spool"),
        compact=s.nightly.compact, compact_after_parts=s.nightly.compact_after_parts,
    )
    logs = not ui.progress_on() and not s.quiet
    emit = _log_lines(ui.err) if logs else None
    check_sources(job)
    try:
        # The lock first: a second start must not even open the catalog (its DuckDB file
        # admits one process), and must say who holds the lock.
        with nightly_lock(_lock_path(s), s.now()), open_context(s, writes=True) as ctx, \
                ui.progress("nightly") as bar:
            progress = bar.accept if bar else (_LogProgress(emit) if emit else None)
            summary = run_nightly(job, store=ctx.store, catalog=ctx.catalog, auth=ctx.auth,
                                  actor=ctx.actor, progress=progress, event=emit, locked=True)
            ctx.catalog.refresh_views()
    finally:
        if remote is not None:
            remote.close()
    if emit:
        for o in summary.rejects:
            emit("nightly.reject", level="warning", path=o.display_path, status=o.status,
                 reason=o.reason)
    if s.json:
        ui.dump_json(summary.as_json())
    else:
        _show(summary, ui)
    return summary.exit_code()


def _show(summary: Any, ui: Output) -> None:
    from pipeline.jobs.summary import NOT_RECORDED

    doc = summary.as_json()["run"]
    ui.write(
        f"nightly run {doc['run_id']} ({doc['executor']}): {doc['files_seen']} files, "
        f"{doc['archived']} archived, {doc['already_archived']} already archived, "
        f"{doc['skipped']} skipped, {doc['failed']} failed\n"
        f"{doc['bytes_read'] / 1e6:.1f} MB in {doc['seconds']:.1f} s: "
        f"{doc['files_per_second']:.1f} files/s, {doc['megabytes_per_second']:.1f} MB/s\n"
        f"verified {doc['verified']} stored copies; moved {doc['moved']} to the done folder\n"
        f"store {doc['store']}: self-test {doc['store_selftest']}, now {doc['store_state']}\n")
    if doc["findings_by_rule"]:
        ui.write("Findings by rule 按规则统计的问题:\n")
        ui.table([{"rule": r, "findings": n} for r, n in doc["findings_by_rule"].items()],
                 ["rule", "findings"])
    if doc["late_uploads"]:
        ui.write(f"Late uploads 超时上传 (AV-12): {len(doc['late_uploads'])}\n")
        for path in doc["late_uploads"]:
            ui.write(f"  {path}\n")
    if doc["rejects"]:
        ui.write(f"Not archived 未归档 ({len(doc['rejects'])}):\n")
        ui.table(doc["rejects"], ["path", "status", "reason"])
    for why in doc["left_in_place"]:
        ui.warn(why)
    for why in doc["executor_warnings"]:
        ui.warn(why)
    if doc["staging_removed"] or doc["stale_uploads_aborted"]:
        ui.write(f"resumed: removed {doc['staging_removed']} leftover(s) of an interrupted "
                 f"run, aborted {doc['stale_uploads_aborted']} stale upload(s)\n")
    if doc["compaction"]:
        c = doc["compaction"]
        parts = (f" ({c['parts_before']} parts -> {c['parts_after']})"
                 if c["state"] == "compacted" else "")
        ui.write(f"catalog compaction: {c['detail']}{parts}\n")
    if doc["error"]:
        ui.write(f"the run failed: {doc['error']}\n")
    if doc["recorded"] and doc["recorded"].startswith(NOT_RECORDED):
        ui.warn(f"summary {doc['recorded']}")
    sys.stdout.flush()


def register(sub: Any, shared: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "nightly", parents=[shared],
        help="the nightly job: ingest every configured source, verify, move, summarise",
        description="Ingest every source of [custody.nightly] in the config file (each "
        "with its labels files), on the local process pool or a Dask cluster; re-read "
        "each archived copy and check its BLAKE3, then move its source to the source's "
        "done folder; record a summary in the catalog (nightly_runs). One run at a time "
        "per catalog: a second start exits at once. A killed run is resumed by the next. "
        "Exit 0 clean, 1 findings or files not archived, 2 the run itself failed (lock "
        "held, store gone, self-test failed) or the catalog's compaction at its end failed "
        "(the night's files stay archived and recorded).",
    )
    p.add_argument("--cluster", metavar="ADDRESS",
                   help="run the files on a Dask scheduler (tls://HOST:8786; tcp:// only "
                   "on a trusted network); default `cluster` in [custody.nightly], else "
                   "the local pool")
    p.add_argument("--tls-ca", dest="tls_ca", metavar="PEM",
                   help="CA certificate of the cluster (default `tls_ca`)")
    p.add_argument("--tls-cert", dest="tls_cert", metavar="PEM",
                   help="this client's certificate (default `tls_cert`)")
    p.add_argument("--tls-key", dest="tls_key", metavar="PEM",
                   help="this client's private key (default `tls_key`)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="local pool: worker processes (default one per core, or `workers` "
                   "in the config)")
    p.add_argument("--batch-files", dest="batch_files", type=int, metavar="N",
                   help="files per atomic catalog commit (default 64 here, or "
                   "`batch_files` in the config)")
    p.add_argument("--allow-unverified-store", action="store_true",
                   help="run even though the S3 store's self-test fails (recorded with "
                   "the run; never for real evidence)")
    p.set_defaults(func=cmd_nightly)
