"""`custody nightly`: the unattended run a timer starts, and what it leaves for the morning.

One run, in order:
1. the nightly lock of the catalog (`lock.py`): a second start exits at once (exit 2);
2. incomplete multipart uploads that killed runs left are aborted (where the store can);
3. `pipeline.ingest.run.ingest` over every configured source, each with its own labels
   files: it gates the store (self-test), takes the catalog's ingest lock, clears what
   killed runs left in staging, and ingests each file once, on the local pool or, with a
   `remote`, on a cluster's workers, committing batches here;
4. `settle.py`: every archived copy is read back and checked against its BLAKE3, and only
   then is its source moved to the done folder;
5. the store is asked once more whether it answers;
6. `compaction.py`: the catalog is compacted when enough small parts piled up (the
   ingest's lock on the catalog is released by then, and `compact` takes it in turn);
7. the summary is committed to the catalog (`nightly_runs`) with an audit record.

With a cluster, an S3 inbox's spool must be a folder every worker sees at the same path
(the workers read the files the driver fetched there): before anything else, each worker
connected is asked to read a file the driver wrote there, and a worker that cannot makes
the run refuse to start (exit 2, naming `spool`).

Resuming after a crash or a reboot needs nothing of its own: what was committed is in the
catalog (its files are `already_archived` and are verified and moved now), objects stored
but not catalogued are catalogued (a repeated put is harmless: keys are content
addresses), leftovers in staging are removed, and the rest is done as on any night.

A run that cannot do its job (the lock is held, the store fails its self-test or is gone,
the catalog cannot be written) ends with `error` set and exit 2; its summary is still
recorded where the catalog allows.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
import socket
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pipeline import __version__
from pipeline.catalog.core import Catalog
from pipeline.errors import CustodyError, InputError
from pipeline.ingest.outcome import FileOutcome, IngestSettings, RunResult
from pipeline.ingest.run import Remote, Source, ingest
from pipeline.jobs.compaction import SKIPPED, Compaction, compact_if_due
from pipeline.jobs.config import COMPACT_AFTER_PARTS, NightlySource
from pipeline.jobs.inbox import fetch
from pipeline.jobs.lock import nightly_lock
from pipeline.jobs.settle import Mark, ReadBacks, Verifier, settle
from pipeline.jobs.summary import NOT_RECORDED, REACHABLE, NightlySummary, from_result
from pipeline.people.permissions import Authority
from pipeline.progress import Progress
from pipeline.storage.base import WormStore, key_for
from schemas.nightly import NightlyRunRecord
from schemas.people import INGEST

LOCK_NAME = "nightly.lock"  # in the catalog's root (an s3:// catalog's local cache)


class SpoolNotShared(InputError):
    """With a cluster, a worker does not see the S3 inbox spool the driver fetches into."""


@dataclass(frozen=True, slots=True)
class NightlyJob:
    """What the CLI asks of one run."""

    sources: tuple[NightlySource, ...]
    ingest: IngestSettings
    executor: str = "local:1"  # as recorded: local:<workers> | cluster:<address>
    remote: Remote | None = None
    verify_threads: int = 2
    env: Mapping[str, str] = field(default_factory=dict)  # S3 inboxes' endpoint, credentials
    spool: str | None = None  # where S3 inbox objects are copied to be ingested
    compact: bool = True  # compact the catalog at the end when due (`compaction.py`)
    compact_after_parts: int = COMPACT_AFTER_PARTS


def store_state(store: WormStore) -> str:
    """`reachable` when the store answers a lookup now and did not fail during the run
    (`WormStore.unavailable`: it went away, even if it came back), else what went wrong."""
    try:
        store.exists(key_for("0" * 64))
    except Exception as exc:
        return f"unreachable: {exc}"
    failed = getattr(store, "unavailable", None)
    if failed is not None:
        return f"failed during the run: {failed}"
    return REACHABLE


def abort_stale(store: WormStore, now: dt.datetime) -> int:
    """Abort the incomplete uploads killed runs left, where the store can, older than the
    store's own threshold (`S3Config.stale_upload_after_s`, the one setting and default:
    `[custody.s3] stale_upload_after_s` or CUSTODY_S3_STALE_UPLOAD_AFTER_S); how many. A
    store without one (the local store) has no uploads to abort."""
    abort = getattr(store, "abort_stale_uploads", None)
    seconds = getattr(getattr(store, "config", None), "stale_upload_after_s", None)
    if not callable(abort) or not isinstance(seconds, int):
        return 0
    return int(abort(older_than=dt.timedelta(seconds=seconds)))


def check_spool(job: NightlyJob) -> None:
    """With an executor whose workers may be other machines (a cluster: `remote.unseen`)
    and an S3 inbox, SpoolNotShared unless every worker connected sees the spool folder
    the driver fetches into, at the same path (module doc)."""
    unseen = getattr(job.remote, "unseen", None)
    if not callable(unseen) or job.spool is None or not any(s.is_inbox for s in job.sources):
        return
    spool = Path(job.spool)
    token = secrets.token_hex(16)
    probe = spool / f".custody-spool-check-{token}"
    try:
        spool.mkdir(parents=True, exist_ok=True)
        probe.write_text(token, encoding="utf-8")
    except OSError as exc:
        raise SpoolNotShared(f"{probe}: cannot write in the spool (`spool` in "
                             f"[custody.nightly]): {exc.strerror or exc}") from exc
    try:
        blind = unseen(str(probe), token)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(probe)
    if blind:
        inboxes = ", ".join(s.path for s in job.sources if s.is_inbox)
        workers = "; ".join(f"{w}: {why}" for w, why in blind.items())
        raise SpoolNotShared(
            f"the S3 inbox {inboxes} is fetched into the spool {spool}, which "
            f"{len(blind)} cluster worker(s) cannot see ({workers}); set `spool` in "
            "[custody.nightly] to a folder every worker mounts at the same path (NFS, "
            "CephFS), or ingest the inbox without --cluster")


def executor_warnings(job: NightlyJob) -> list[str]:
    """What the executor's workers are started with that slows the night
    (`ClusterRemote.worker_warnings`); none for the local pool."""
    ask = getattr(job.remote, "worker_warnings", None)
    return list(ask()) if callable(ask) else []


def check_sources(job: NightlyJob) -> None:
    if not job.sources:
        raise InputError("custody nightly: no sources; set `sources = [...]` in "
                         "[custody.nightly] of the config file")


def run_nightly(
    job: NightlyJob, *, store: WormStore, catalog: Catalog, auth: Authority, actor: str,
    progress: Progress | None = None, event: Callable[..., None] | None = None,
    locked: bool = False,
) -> NightlySummary:
    """One nightly run (see the module docstring). NightlyLocked if another holds the lock
    (`locked`: the caller holds it already, taken before the catalog was opened, as the
    CLI does); every other failure of the run is the summary's `error` (exit 2)."""
    check_sources(job)
    now = job.ingest.now
    started = now()
    emit = event or (lambda *_a, **_k: None)
    hold = (contextlib.nullcontext() if locked
            else nightly_lock(catalog.root / LOCK_NAME, started))
    with hold:
        summary = NightlySummary(
            run_id=started.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8],
            started_at_utc=started, finished_at_utc=started, executor=job.executor,
            sources=[s.path for s in job.sources], store_uri=store.uri)
        emit("nightly.started", executor=job.executor, sources=summary.sources,
             store=store.uri)
        errors: list[str] = []
        result: RunResult | None = None
        try:
            check_spool(job)
            summary.executor_warnings = executor_warnings(job)
            for warning in summary.executor_warnings:
                emit("nightly.warning", level="warning", warning=warning)
            summary.stale_uploads_aborted = abort_stale(store, started)
            sources, marks, unread = _sources(job, errors)
            verifier = _verifier(job.remote, store.uri)
            with ReadBacks(store, job.verify_threads) as readbacks:
                # Here, each copy is read back as soon as it is archived (beside the
                # files after it); on a cluster, by the workers as each task comes back.
                result = ingest(sources, store=store, catalog=catalog, settings=job.ingest,
                                auth=auth, actor=actor, progress=progress, remote=job.remote,
                                on_outcome=None if verifier else readbacks.start)
                from_result(summary, result)
                summary.files += unread
                summary.settled = settle(result.files, job.sources, started,
                                         readbacks=readbacks, marks=marks, verifier=verifier)
        except CustodyError as exc:
            errors.append(str(exc))
        summary.error = "; ".join(errors) or None
        summary.store_state = store_state(store)
        # The ingest's own word that the store failed during it (`RunResult.store_failed`),
        # where it says so.
        failed = getattr(result, "store_failed", None)
        if failed and summary.store_state == REACHABLE:
            summary.store_state = f"failed during the run: {failed}"
        summary.finished_at_utc = now()  # the files' part; the compaction has its seconds
        summary.compaction = (
            compact_if_due(catalog, enabled=job.compact, after_parts=job.compact_after_parts,
                           auth=auth, actor=actor) if summary.error is None
            else Compaction(SKIPPED, "not tried: the run itself failed"))
        emit("nightly.compaction", **summary.compaction.as_json())
        summary.recorded = _record(summary, catalog, auth, actor, now)
        emit("nightly.finished", **_brief(summary))
    return summary


def _verifier(remote: Remote | None, store_uri: str) -> Verifier | None:
    """The executor's own read-back (a cluster's workers read the store beside it, where
    the driver alone would read every byte of the night again), if it has one."""
    verify = getattr(remote, "verify", None)
    if not callable(verify):
        return None
    return lambda items: list(verify(store_uri, items))


def _sources(
    job: NightlyJob, errors: list[str]
) -> tuple[list[Source], dict[str, Mark], list[FileOutcome]]:
    """The ingest's sources: folders as they are, each S3 inbox fetched into its spool
    folder; how to mark each inbox file archived; the inbox objects that could not be
    read. An inbox that cannot be listed is an error of the run (the others still go)."""
    sources: list[Source] = []
    marks: dict[str, Mark] = {}
    unread: list[FileOutcome] = []
    for src in job.sources:
        if not src.is_inbox:
            sources.append(Source(src.path, src.labels_paths()))
            continue
        if job.spool is None:
            errors.append(f"{src.path}: an S3 inbox needs a spool folder (`spool`)")
            continue
        try:
            got = fetch(src, Path(job.spool), job.env)
        except CustodyError as exc:
            errors.append(f"{src.path}: {exc}")
            continue
        sources.append(Source(str(got.spool), tuple(got.labels)))
        marks.update(dict.fromkeys(got.objects, got.settle_one))
        unread += got.failed
    return sources, marks, unread


def _brief(s: NightlySummary) -> dict[str, object]:
    doc = s.as_json()["run"]
    return {k: doc[k] for k in (
        "run_id", "files_seen", "archived", "already_archived", "skipped", "failed",
        "bytes_read", "files_per_second", "megabytes_per_second", "findings_by_rule",
        "verified", "moved", "store_state", "error", "compaction", "exit_code")}


def _record(
    s: NightlySummary, catalog: Catalog, auth: Authority, actor: str,
    now: Callable[[], dt.datetime],
) -> str:
    """The summary into the catalog (its own batch) and the audit log; where, or why not."""
    try:
        auth.record(actor, INGEST, f"nightly:{s.run_id}",
                    "refused" if s.exit_code() == 2 else "allowed",
                    f"nightly run: {len(s.files)} files, {s.count('archived')} archived, "
                    f"{s.count('failed')} failed, {s.settled.moved} moved, exit "
                    f"{s.exit_code()}" + (f" ({s.error})" if s.error else ""))
        auth.audit.sync()
        batch = catalog.batch()
        batch.add(NightlyRunRecord, [s.record(socket.gethostname(), __version__)])
        return batch.commit(now().date())
    except Exception as exc:
        return f"{NOT_RECORDED}: {type(exc).__name__}: {exc}"
