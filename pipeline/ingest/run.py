"""Ingest: from files and folders to stored objects, findings and committed catalog batches.

`ingest()` is the local driver. It checks that the actor may ingest (an `Authority` is
required: no library caller ingests unchecked or unaudited), gates the store (an S3 store
must pass its self-test, `pipeline.storage.selftest.gate_store`), takes the catalog's
ingest lock, and then for each file, in order:
1. sniff its first bytes: not media -> `skipped` with the reason;
2. start reading it ONCE (BLAKE3 of the whole and of each chunk, the same bytes streamed
   into a staged object of the WORM store), and keep the probe pool a few files ahead;
3. `pipeline.ingest.file.ingest_file`: probe, analysis and the file's rules while it is
   copied; then already archived (staged copy dropped) or committed under its content key
   with its first retain-until;
4. `pipeline.ingest.batch.Committer`: the cross-file rules and the file's rows into the
   current batch, committed atomically every `batch_files` files and at the end.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import fcntl
import os
import threading
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

from pipeline.catalog.core import Catalog
from pipeline.errors import CatalogError
from pipeline.ingest.batch import Committer
from pipeline.ingest.file import FileJob, FileRecords, FileTools, ingest_file, start_reading
from pipeline.ingest.labels import LabelBook
from pipeline.ingest.outcome import (
    ALREADY,
    ARCHIVED,
    FAILED,
    SKIPPED,
    FileOutcome,
    IngestSettings,
    RunResult,
    finding_json,
)
from pipeline.ingest.prober import Prober
from pipeline.media.sniff import sniff
from pipeline.people.permissions import Authority
from pipeline.progress import Progress, Tick
from pipeline.storage.base import WormStore
from pipeline.storage.selftest import StoreSelftestFailed, gate_store
from schemas.audit import REFUSED
from schemas.people import INGEST

__all__ = [
    "ALREADY", "ARCHIVED", "FAILED", "SKIPPED", "FileOutcome", "IngestSettings", "Progress",
    "RunResult", "finding_json", "ingest", "iter_files",
]



def iter_files(sources: Sequence[str | os.PathLike[str]]) -> Iterator[tuple[Path, Path | None]]:
    """(file, the folder it was found under) for every file below the sources, sorted."""
    for src in sources:
        p = Path(src)
        if p.is_dir():
            for dirpath, dirnames, filenames in os.walk(p):
                dirnames.sort()
                for name in sorted(filenames):
                    yield Path(dirpath) / name, p
        else:
            yield p, p.parent


@contextlib.contextmanager
def _ingest_lock(catalog: Catalog) -> Iterator[None]:
    path = catalog.root / "ingest.lock"
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CatalogError(
                f"{catalog.root}: another ingest is running on this catalog; try again later"
            ) from None
        yield


def ingest(
    sources: Sequence[str | os.PathLike[str]],
    *,
    store: WormStore,
    catalog: Catalog,
    settings: IngestSettings,
    auth: Authority,
    actor: str,
    progress: Progress | None = None,
) -> RunResult:
    """Ingest every file below `sources` as `actor`. Per-file problems become outcomes,
    never raise.

    The actor must be allowed to ingest (PermissionDenied before anything is read), the
    store must pass its gate (StoreSelftestFailed, audited as refused, unless
    `settings.allow_unverified_store`), and every file's outcome is written to the audit
    log (one fsync per batch)."""
    labels = LabelBook.load(settings.labels_path, default_offset=settings.default_offset)
    files = list(iter_files(sources))
    what = "ingest:" + ",".join(str(s) for s in sources)
    auth.authorize(actor, INGEST, what)
    try:
        gate = gate_store(store, allow_unverified=settings.allow_unverified_store)
    except StoreSelftestFailed as exc:
        auth.record(actor, INGEST, what, REFUSED, str(exc))
        raise
    with _ingest_lock(catalog), auth.audit.group_commit():
        catalog.clear_staging()
        result = _Run(store, catalog, settings, labels, auth, actor, gate.state).run(
            files, [str(s) for s in sources], progress)
    result.store_warning = gate.warning
    return result


class _Run:
    """One run's loop: reading ahead, the probe pool, the committer."""

    def __init__(
        self, store: WormStore, catalog: Catalog, settings: IngestSettings, labels: LabelBook,
        auth: Authority, actor: str, selftest: str,
    ) -> None:
        self.store, self.catalog, self.s, self.labels = store, catalog, settings, labels
        self.selftest = selftest
        self.started = settings.now()
        self.run_id = self.started.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
        self.committer = Committer(
            catalog, run_id=self.run_id, store_uri=store.uri, now=settings.now,
            batch_files=settings.batch_files, sessions=settings.sessions, auth=auth,
            actor=actor,
        )

    def job(self, path: Path, root: Path | None) -> FileJob:
        s = self.s
        return FileJob(
            path=str(path), root=str(root) if root is not None else None,
            labels=self.labels.lookup(path, root), run_id=self.run_id,
            store_uri=self.store.uri,
            rules=self.committer.context(
                s.now(), late_after=s.late_after, clock_tolerance=s.clock_tolerance,
                labels_given=bool(self.labels.by_key),
            ),
            chunk_size=s.chunk_size, min_lock=s.min_lock, tolerances=s.tolerances,
            full_demux=s.full_demux,
        )

    def run(
        self, files: list[tuple[Path, Path | None]], sources: list[str],
        progress: Progress | None,
    ) -> RunResult:
        s, committer = self.s, self.committer
        committer.run_event("started", sources, self.selftest)
        prober = Prober(s.probe_workers, s.full_demux)
        tools = FileTools(
            self.store, prober.result, prober.levels, cf.ThreadPoolExecutor(1, "read"),
            cf.ThreadPoolExecutor(1, "commit"), committer.is_archived,
        )
        # The workers exit while the last batch is written.
        closer = threading.Thread(target=prober.close, name="probe-close")
        try:
            sniffs: list[tuple[str | None, str]] = []
            sizes: list[int] = []
            for path, _ in files:
                try:
                    sn = sniff(path)
                    sniffs.append((sn.kind, sn.reason))
                    sizes.append(os.stat(path).st_size)
                except OSError as exc:
                    sniffs.append((None, f"cannot read: {exc.strerror or exc}"))
                    sizes.append(0)
            total, done = sum(sizes), 0
            queue = [i for i, (kind, _) in enumerate(sniffs) if kind is not None]
            ahead = s.probe_workers + 1
            for i, (path, root) in enumerate(files):
                if progress:
                    progress(Tick(i, len(files), done, total, str(path)))
                done += sizes[i]
                kind, reason = sniffs[i]
                # The read starts first: submitting a probe may wait for a worker to start.
                started = start_reading(path, tools, s.chunk_size) if kind is not None else None
                while queue and queue[0] <= i + ahead:
                    prober.submit(str(files[queue.pop(0)][0]))
                if kind is None:
                    unreadable = reason.startswith("cannot read")
                    committer.record(FileOutcome(
                        str(path), FAILED if unreadable else SKIPPED, reason=f"{path}: {reason}"
                    ))
                elif isinstance(started, FileRecords):
                    committer.add(started)
                elif started is not None:
                    committer.add(ingest_file(self.job(path, root), tools, started))
            if progress:
                progress(Tick(len(files), len(files), done, total))
        finally:
            closer.start()
            tools.reader.shutdown(wait=True)
            tools.committer.shutdown(wait=True)
        try:
            finished = s.now()
            committer.run_event("finished", sources, self.selftest)
            committer.commit(final=True)
        finally:
            closer.join()
        return RunResult(
            run_id=self.run_id, started_at_utc=self.started, finished_at_utc=finished,
            store_uri=self.store.uri, catalog_path=self.catalog.location,
            files=committer.outcomes, unused_labels=self.labels.unused(),
            store_selftest=self.selftest,
        )
