"""Ingest: from files and folders to stored objects, findings and committed catalog batches.

`ingest()` is the local driver. It lists the sources (`pipeline.ingest.listing`: only
regular files are ever opened), checks that the actor may ingest (an `Authority` is
required: no library caller ingests unchecked or unaudited), gates the store (an S3 store
must pass its self-test, `pipeline.storage.selftest.gate_store`), takes the catalog's
ingest lock, removes what killed runs left in staging, and then for each file, in order:
1. open it (O_NOFOLLOW | O_NONBLOCK, still a regular file) and sniff its first bytes: not
   media -> `skipped` with the reason; gone or unreadable since the listing -> `failed`;
2. start reading it ONCE (BLAKE3 of the whole and of each chunk, the same bytes streamed
   into a staged object of the WORM store), and keep the probe pool a few files ahead;
3. `pipeline.ingest.file.ingest_file`: probe, analysis and the file's rules while it is
   copied; then already archived (staged copy dropped) or committed under its content key
   with its first retain-until;
4. `pipeline.ingest.batch.Committer`: the cross-file rules and the file's rows into the
   current batch, committed atomically every `batch_files` files and at the end.
Any exception in one file's work is that file's `failed` (its type and message, naming the
file), and the batch goes on. Files are opened just in time (a few ahead, for the probe),
so one deleted after the listing is `failed` ("vanished"), never a crash.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import datetime as dt
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from pipeline.catalog.core import Catalog, exclusive
from pipeline.ingest.batch import Committer
from pipeline.ingest.entry import Opened, open_entry
from pipeline.ingest.file import (
    FileJob,
    FileRecords,
    FileTools,
    Reading,
    abandon,
    failed_record,
    ingest_file,
    start_reading,
)
from pipeline.ingest.labels import LabelBook
from pipeline.ingest.listing import Entry, list_entries
from pipeline.ingest.names import display_path
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
from pipeline.people.permissions import Authority
from pipeline.progress import Progress, Tick
from pipeline.storage.base import WormStore
from pipeline.storage.selftest import StoreSelftestFailed, gate_store
from schemas.audit import REFUSED
from schemas.people import INGEST

__all__ = [
    "ALREADY", "ARCHIVED", "FAILED", "SKIPPED", "FileOutcome", "IngestSettings", "Progress",
    "Remote", "RunResult", "Source", "finding_json", "ingest", "list_entries",
]


@dataclass(frozen=True, slots=True)
class Source:
    """A source with labels files of its own (the nightly job: one per configured source);
    a plain path takes `IngestSettings.labels_path`. Files below it that are one of its
    labels files are not ingested."""

    path: str
    labels_paths: tuple[str, ...] = ()


# Where the files go when the driver does not read them itself (a Dask cluster): the
# (entry, job) pairs in, each file's records out, in any order, one per pair. The driver
# commits them (`pipeline.jobs.cluster`).
Remote = Callable[[Sequence[tuple[Entry, FileJob]]], Iterator[FileRecords]]



def _load_labels(paths: Iterable[str | None], offset: dt.timezone) -> LabelBook:
    """One book of the rows of every labels file named (in order: the first row of a name
    wins, as within one file)."""
    book = LabelBook([])
    for path in paths:
        if path is None:
            continue
        one = LabelBook.load(path, default_offset=offset)
        for key, rows in one.by_key.items():
            book.by_key.setdefault(key, []).extend(rows)
        book.encoding = book.encoding or one.encoding
    return book


def _listed(
    sources: Sequence[str | os.PathLike[str] | Source], settings: IngestSettings
) -> tuple[list[Entry], list[LabelBook], list[str]]:
    """Every entry below the sources, the labels book of each entry (one book per source
    that has its own), and the sources as shown."""
    common = _load_labels([settings.labels_path], settings.default_offset)
    entries: list[Entry] = []
    books: list[LabelBook] = []
    shown: list[str] = []
    for src in sources:
        if isinstance(src, Source):
            book = _load_labels(src.labels_paths, settings.default_offset)
            own = {os.path.realpath(p) for p in src.labels_paths}
            found = [e for e in list_entries([src.path],
                                             follow_symlinks=settings.follow_symlinks)
                     if os.path.realpath(e.path) not in own]
            shown.append(display_path(src.path))
        else:
            book = common
            found = list(list_entries([src], follow_symlinks=settings.follow_symlinks))
            shown.append(display_path(src))
        entries += found
        books += [book] * len(found)
    return entries, books, shown


def ingest(
    sources: Sequence[str | os.PathLike[str] | Source],
    *,
    store: WormStore,
    catalog: Catalog,
    settings: IngestSettings,
    auth: Authority,
    actor: str,
    progress: Progress | None = None,
    remote: Remote | None = None,
    on_outcome: Callable[[FileOutcome], None] | None = None,
) -> RunResult:
    """Ingest every file below `sources` as `actor`. Per-file problems become outcomes,
    never raise. With `remote`, the files are read, stored and analysed where it sends
    them (a cluster's workers), and committed here. `on_outcome` is told each file's
    outcome as it is recorded (before its batch is committed).

    The actor must be allowed to ingest (PermissionDenied before anything is read), the
    store must pass its gate (StoreSelftestFailed, audited as refused, unless
    `settings.allow_unverified_store`), and every file's outcome is written to the audit
    log (one fsync per batch)."""
    entries, books, shown = _listed(sources, settings)
    what = "ingest:" + ",".join(shown)
    auth.authorize(actor, INGEST, what)
    try:
        gate = gate_store(store, allow_unverified=settings.allow_unverified_store)
    except StoreSelftestFailed as exc:
        auth.record(actor, INGEST, what, REFUSED, str(exc))
        raise
    with exclusive(catalog), auth.audit.group_commit():
        removed = clear_leftovers(store, catalog)
        run = _Run(store, catalog, settings, auth, actor, gate.state, on_outcome)
        result = (run.run_remote(entries, books, shown, progress, remote) if remote
                  else run.run(entries, books, shown, progress))
    distinct = list(dict.fromkeys(books))
    result.unused_labels = sorted({u for b in distinct for u in b.unused()})
    result.store_warning = gate.warning
    result.staging_removed = removed
    result.labels_encoding = next((b.encoding for b in distinct if b.encoding), None)
    return result


def clear_leftovers(store: WormStore, catalog: Catalog) -> int:
    """Remove what killed runs left in staging (catalog batches never committed, the local
    store's `*.part` copies); how many. Only under the ingest lock: no live run of this
    catalog is writing them (the store keeps the copy a live writer of its own holds)."""
    removed = 0
    staging = catalog.root / "staging"
    with contextlib.suppress(OSError):
        removed += sum(1 for _ in staging.iterdir())
    catalog.clear_staging()
    clear = getattr(store, "clear_staging", None)
    if callable(clear):
        removed += int(clear())
    return removed


class _Run:
    """One run's loop: opening ahead, the probe pool, the committer."""

    def __init__(
        self, store: WormStore, catalog: Catalog, settings: IngestSettings,
        auth: Authority, actor: str, selftest: str,
        on_outcome: Callable[[FileOutcome], None] | None = None,
    ) -> None:
        self.store, self.catalog, self.s = store, catalog, settings
        self.selftest = selftest
        self.started = settings.now()
        self.run_id = self.started.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
        self.committer = Committer(
            catalog, run_id=self.run_id, store_uri=store.uri, now=settings.now,
            batch_files=settings.batch_files, sessions=settings.sessions, auth=auth,
            actor=actor, store=store, on_outcome=on_outcome,
        )

    def job(self, entry: Entry, labels: LabelBook, read_path: str | None) -> FileJob:
        s = self.s
        return FileJob(
            path=str(entry.path), root=str(entry.root) if entry.root is not None else None,
            labels=labels.lookup(entry.path, entry.root), run_id=self.run_id,
            store_uri=self.store.uri,
            rules=self.committer.context(
                s.now(), late_after=s.late_after, clock_tolerance=s.clock_tolerance,
                labels_given=bool(labels.by_key),
            ),
            chunk_size=s.chunk_size, min_lock=s.min_lock, tolerances=s.tolerances,
            full_demux=s.full_demux, read_path=read_path,
            durable=False,  # the committer syncs the store before each batch
        )

    def run(
        self, entries: list[Entry], books: list[LabelBook], sources: list[str],
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
        opened: dict[int, Opened] = {}

        def opening(j: int) -> Opened:
            if j not in opened:
                e = entries[j]
                opened[j] = open_entry(e) if e.status is None else Opened(
                    status=e.status, reason=e.reason)
            return opened[j]

        try:
            total = sum(e.size_bytes for e in entries if e.status is None)
            done, probed, ahead = 0, 0, s.probe_workers + 1
            for i, entry in enumerate(entries):
                if progress:
                    progress(Tick(i, len(entries), done, total, display_path(entry.path)))
                done += entry.size_bytes
                here = opening(i)
                try:
                    # The read starts first: submitting a probe may wait for a worker.
                    started = (start_reading(Path(here.read_path), tools, s.chunk_size,
                                             shown=display_path(entry.path))
                               if here.read_path is not None else None)
                    while probed < len(entries) and probed <= i + ahead:
                        ahead_of = opening(probed)
                        if ahead_of.read_path is not None:
                            prober.submit(ahead_of.read_path)
                        probed += 1
                    self.one(entry, books[i], here, started, tools)
                finally:
                    if here.read_path is not None:
                        prober.forget(here.read_path)
                    if here.fd is not None:
                        os.close(here.fd)
                    # Closed: the outer `finally` must not close its number again (by
                    # then another thread may have reused it: an S3 socket, a part).
                    opened.pop(i, None)
            if progress:
                progress(Tick(len(entries), len(entries), done, total))
        finally:
            for rest in opened.values():
                if rest.fd is not None:
                    with contextlib.suppress(OSError):
                        os.close(rest.fd)
            closer.start()
            tools.reader.shutdown(wait=True)
            tools.committer.shutdown(wait=True)
        try:
            return self.finish(sources)
        finally:
            closer.join()

    def finish(self, sources: list[str]) -> RunResult:
        finished = self.s.now()
        self.committer.run_event("finished", sources, self.selftest)
        self.committer.commit(final=True)
        return RunResult(
            run_id=self.run_id, started_at_utc=self.started, finished_at_utc=finished,
            store_uri=self.store.uri, catalog_path=self.catalog.location,
            files=self.committer.outcomes, unused_labels=[], store_selftest=self.selftest,
        )

    def run_remote(
        self, entries: list[Entry], books: list[LabelBook], sources: list[str],
        progress: Progress | None, remote: Remote,
    ) -> RunResult:
        """The files are ingested where `remote` sends them; their records are committed
        here as they come back (in any order: the cross-file rules see every file committed
        before, whichever it was)."""
        committer = self.committer
        committer.run_event("started", sources, self.selftest)
        pairs: list[tuple[Entry, FileJob]] = []
        for i, entry in enumerate(entries):
            if entry.status is not None:
                committer.record(FileOutcome(str(entry.path), entry.status,
                                             reason=f"{display_path(entry.path)}: {entry.reason}"))
            else:
                pairs.append((entry, self.job(entry, books[i], None)))
        total = sum(e.size_bytes for e, _ in pairs)
        sizes = {str(e.path): e.size_bytes for e, _ in pairs}
        done = 0
        for n, rec in enumerate(remote(pairs)):
            done += sizes.get(rec.path, 0)
            committer.add(rec)
            if progress:
                progress(Tick(n + 1, len(pairs), done, total, display_path(rec.path)))
        return self.finish(sources)

    def one(
        self, entry: Entry, labels: LabelBook, here: Opened,
        started: Reading | FileRecords | None, tools: FileTools,
    ) -> None:
        """One entry's outcome into the committer; an exception is the file's `failed`."""
        path, shown = str(entry.path), display_path(entry.path)
        if here.status is not None:
            self.committer.record(FileOutcome(path, here.status, reason=f"{shown}: {here.reason}"))
            return
        if isinstance(started, FileRecords):  # the store could not stage it
            self.committer.add(replace(started, path=path))
            return
        assert started is not None
        try:
            rec = ingest_file(self.job(entry, labels, here.read_path), tools, started)
        except Exception as exc:  # not ingest_file's own: building the job
            abandon(started)
            rec = failed_record(path, exc)
        self.committer.add(rec)
