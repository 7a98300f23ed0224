"""Ingest: from files and folders to stored objects, findings and a committed catalog batch.

For each file, in order:
1. sniff its first bytes: not media -> `skipped` with the reason;
2. start the probe (PyAV demux of every stream) in a worker process, so its per-packet
   Python work never competes with this process's GIL;
3. meanwhile read the file ONCE: BLAKE3 of the whole and of each chunk, the same bytes
   streamed into a staged object of the WORM store;
4. if the catalog already has that BLAKE3: drop the staged copy -> `already_archived`;
5. otherwise wait for the probe, analyse the timelines (pure), apply labels and the
   24-hour rule, commit the object under its content key with its first retain-until,
   and add every record to the current catalog batch -> `archived`.
Batches commit atomically every `batch_files` files and at the end. The object is always
committed to the store before the catalog batch that names it, so a crash at any point
leaves at worst an object the catalog does not know yet; the next run finds it already
stored (a harmless repeated put) and catalogs it. Nothing half-stored is ever visible.

A file the probe cannot read is still archived, with a damage finding: it is evidence.
Only a file that cannot be read from disk at all is `failed`.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import datetime as dt
import fcntl
import functools
import json
import multiprocessing
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from pipeline import __version__
from pipeline.analysis.sessions import Interval, SessionTolerances, gaps_around
from pipeline.analysis.timing import Tolerances, analyse, resume_points, speech_like
from pipeline.catalog.core import Batch, Catalog
from pipeline.errors import CatalogError, CustodyError
from pipeline.ingest.labels import LabelBook, Labels
from pipeline.integrity.hashing import DEFAULT_CHUNK_SIZE, FileDigest, digest_file
from pipeline.media.probe import AudioLevels, audio_levels, probe
from pipeline.media.sniff import sniff
from pipeline.people.permissions import Authority
from pipeline.people.registry import DEVICE_REGISTERED, DeviceIndex, Registry
from pipeline.storage.base import PutResult, StagedObject, WormStore
from schemas.media import NOPTS, Finding, ProbeResult, StreamTimeline, Subject
from schemas.people import INGEST
from schemas.records import (
    ChunkRecord,
    FindingRecord,
    IngestFileRecord,
    IngestRunRecord,
    PacketRecord,
    RecordingRecord,
    StreamRecord,
    arrow_schema,
    to_table,
)
from schemas.retention import DEFAULT_MIN_LOCK, one_year_retain_until

ARCHIVED = "archived"
ALREADY = "already_archived"
SKIPPED = "skipped"
FAILED = "failed"


@dataclass(frozen=True, slots=True)
class IngestSettings:
    """Everything ingest needs besides the store and the catalog; built once by the CLI."""

    now: Callable[[], dt.datetime]
    labels_path: str | None = None
    chunk_size: int = DEFAULT_CHUNK_SIZE
    late_after: dt.timedelta = dt.timedelta(hours=24)
    min_lock: dt.timedelta = DEFAULT_MIN_LOCK
    default_offset: dt.timezone = dt.timezone(dt.timedelta(hours=8))
    clock_tolerance: dt.timedelta = dt.timedelta(minutes=10)
    probe_workers: int = 1
    batch_files: int = 16
    tolerances: Tolerances = field(default_factory=Tolerances)
    sessions: SessionTolerances = field(default_factory=SessionTolerances)
    # Read every packet, even where the MP4 sample tables give the same timing faster.
    full_demux: bool = False
    # What the store self-test said before this run (recorded with the run).
    store_selftest: str | None = None


@dataclass(slots=True)
class FileOutcome:
    path: str
    status: str
    reason: str | None = None
    blake3: str | None = None
    size_bytes: int | None = None
    findings: list[Finding] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "status": self.status,
            "reason": self.reason,
            "blake3": self.blake3,
            "size_bytes": self.size_bytes,
            "findings": [finding_json(f) for f in self.findings],
        }


def finding_json(f: Finding) -> dict[str, Any]:
    return {
        "code": f.code,
        "rule": f.rule,
        "category": f.category,
        "severity": f.severity,
        "stream": f.stream_index,
        "pts": f.pts,
        "at_seconds": f.at_seconds,
        "title_en": f.title_en,
        "title_zh": f.title_zh,
        "detail": f.detail,
    }


@dataclass(slots=True)
class RunResult:
    run_id: str
    started_at_utc: dt.datetime
    finished_at_utc: dt.datetime | None
    store_uri: str
    catalog_path: str
    files: list[FileOutcome]
    unused_labels: list[str]

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def findings(self) -> list[tuple[FileOutcome, Finding]]:
        return [(o, f) for o in self.files for f in o.findings]

    def exit_code(self) -> int:
        """0 clean, 1 findings (warning or worse), 2 a file could not be ingested."""
        if self.count(FAILED):
            return 2
        if any(f.severity != "info" for _, f in self.findings):
            return 1
        return 0

    def as_json(self) -> dict[str, Any]:
        return {
            "run": {
                "run_id": self.run_id,
                "started_at_utc": self.started_at_utc.isoformat(),
                "finished_at_utc": self.finished_at_utc.isoformat()
                if self.finished_at_utc else None,
                "store": self.store_uri,
                "catalog": self.catalog_path,
                "files_seen": len(self.files),
                "archived": self.count(ARCHIVED),
                "already_archived": self.count(ALREADY),
                "skipped": self.count(SKIPPED),
                "failed": self.count(FAILED),
                "findings": len(self.findings),
                "unused_labels": self.unused_labels,
                "exit_code": self.exit_code(),
            },
            "files": [o.as_json() for o in self.files],
        }


Progress = Callable[[int, int, str], None]


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


class _Prober:
    """Probes files in worker processes, a few files ahead of the reader.

    A worker that dies (FFmpeg crashing on a hostile file) breaks the pool: the file it was
    probing is retried once in a fresh pool, the pool is rebuilt for the files after it,
    and a second crash makes that file unreadable media, never a lost file.
    """

    def __init__(self, workers: int, full_demux: bool = False) -> None:
        self.workers = workers
        self.probe = functools.partial(probe, full_demux=full_demux)
        self.pool = self._new_pool()
        self.futures: dict[str, cf.Future[ProbeResult]] = {}

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        # forkserver: this process runs hashing threads; forking it could copy held locks.
        ctx = multiprocessing.get_context("forkserver")
        # Workers fork from a server that has PyAV and numpy loaded already (0.01 s per
        # worker instead of 0.15 s of imports).
        # Each worker also re-runs the main module before its first task (Python 3.11's
        # forkserver never preloads `__main__`: it looks for a key its caller does not
        # set). The `custody` script's main imports `pipeline.cli.main`, and with it pyarrow:
        # 0.07 s of CPU per worker unless the server has imported it (then 0.01 s).
        ctx.set_forkserver_preload(["pipeline.media.probe", "pipeline.cli.main"])
        return cf.ProcessPoolExecutor(self.workers, mp_context=ctx)

    def submit(self, path: str) -> None:
        try:
            self.futures[path] = self.pool.submit(self.probe, path)
        except BrokenProcessPool:
            self._rebuild()
            self.futures[path] = self.pool.submit(self.probe, path)

    def _rebuild(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.pool = self._new_pool()
        for path, fut in list(self.futures.items()):
            if fut.done() and not isinstance(fut.exception(), BrokenProcessPool):
                continue
            self.futures[path] = self.pool.submit(self.probe, path)

    def result(self, path: str) -> ProbeResult:
        fut = self.futures.pop(path, None) or self.pool.submit(self.probe, path)
        try:
            return fut.result()
        except BrokenProcessPool:
            self._rebuild()
            try:
                return self.pool.submit(self.probe, path).result()
            except BrokenProcessPool:
                self._rebuild()
                return _unreadable(path, "the demuxer crashed on this file (twice)")
        except Exception as exc:
            return _unreadable(path, f"probe failed: {type(exc).__name__}: {exc}")

    def levels(self, path: str, start: Fraction, seconds: float) -> AudioLevels | None:
        """Audio levels after a resume, decoded in a worker; None if that failed."""
        try:
            return self.pool.submit(audio_levels, path, start, seconds).result()
        except BrokenProcessPool:
            self._rebuild()
            return None
        except Exception:
            return None

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def _unreadable(path: str, why: str) -> ProbeResult:
    return ProbeResult(
        path=path, media_kind=None, container=None, duration=None, start_time=None,
        streams=(), tags={}, error=why,
    )


def _as_utc(ts: dt.datetime | None) -> dt.datetime | None:
    if ts is None:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=dt.UTC)


@dataclass(slots=True)
class _Known:
    """What the catalog holds before the run: content, names, session intervals, devices."""

    blake3s: set[str]
    names: dict[str, set[str]]
    intervals: list[Interval]
    devices: DeviceIndex
    staff_kinds: dict[str, str]  # staff number -> officer | auxiliary (empty: no registry)


def _load_known(catalog: Catalog) -> _Known:
    known = catalog.read_table(RecordingRecord, (
        "blake3", "file_name", "device_id", "case_number", "recorded_start_utc",
        "recorded_end_utc",
    )).to_pylist()
    registry = Registry(catalog)
    names: dict[str, set[str]] = {}
    for r in known:
        names.setdefault(r["file_name"], set()).add(r["blake3"])
    return _Known(
        blake3s={r["blake3"] for r in known},
        names=names,
        intervals=[Interval(r["file_name"], r["device_id"], r["case_number"],
                            r["recorded_start_utc"], r["recorded_end_utc"]) for r in known],
        # AV-10: once devices are registered, every recording must come from one of them.
        devices=registry.device_index(),
        staff_kinds={p.staff_id: p.kind for p in registry.all_staff()},
    )


@dataclass(frozen=True, slots=True)
class _Reading:
    """A file being read, hashed and copied (into `staged`, on a store that streams)."""

    staged: StagedObject | None
    digest: cf.Future[FileDigest]


@dataclass(slots=True)
class _Assessment:
    """What a file's media, labels and metadata say, before its BLAKE3 is known."""

    now: dt.datetime
    findings: list[Finding]
    labels: Labels | None
    start: dt.datetime | None
    end: dt.datetime | None
    source: str | None
    interval: Interval


def _background(fn: Callable[[Catalog], _Known], catalog: Catalog) -> cf.Future[_Known]:
    pool = cf.ThreadPoolExecutor(1, "catalog-state")
    fut = pool.submit(fn, catalog)
    pool.shutdown(wait=False)
    return fut


class _Run:
    """State of one ingest run: known content, the open batch, outcomes."""

    def __init__(
        self,
        store: WormStore,
        catalog: Catalog,
        settings: IngestSettings,
        labels: LabelBook,
        progress: Progress | None,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.s = settings
        self.labels = labels
        self.progress = progress
        self.started = settings.now()
        self.run_id = self.started.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
        # What the catalog already holds is read in the background while the first file
        # is hashed: it is needed only once that file's BLAKE3 is known.
        self._state: cf.Future[_Known] = _background(_load_known, catalog)
        self.batch: Batch = catalog.batch()
        self.in_batch = 0
        self.outcomes: list[FileOutcome] = []
        self.on_outcome: Callable[[FileOutcome], object] | None = None
        self.before_commit: Callable[[], None] | None = None
        self.uploader = cf.ThreadPoolExecutor(1, "upload")
        self.reader = cf.ThreadPoolExecutor(1, "read")
        self.committer = cf.ThreadPoolExecutor(1, "commit")

    @property
    def known(self) -> set[str]:
        return self._state.result().blake3s

    @property
    def names(self) -> dict[str, set[str]]:
        return self._state.result().names

    @property
    def intervals(self) -> list[Interval]:
        return self._state.result().intervals

    @property
    def devices(self) -> DeviceIndex:
        return self._state.result().devices

    @property
    def staff_kinds(self) -> dict[str, str]:
        return self._state.result().staff_kinds

    # --- batches -------------------------------------------------------------------------
    def commit_batch(self, final: bool = False) -> None:
        if self.in_batch == 0 and not final:
            return
        if self.before_commit is not None:
            self.before_commit()  # the audit records of these files are durable first
        self.batch.commit(self.s.now().date())
        self.batch = self.catalog.batch()
        self.in_batch = 0

    def record_file(self, outcome: FileOutcome) -> None:
        self.outcomes.append(outcome)
        if self.on_outcome is not None:
            self.on_outcome(outcome)
        self.batch.add(
            IngestFileRecord,
            [IngestFileRecord(
                run_id=self.run_id, source_path=outcome.path, status=outcome.status,
                reason=outcome.reason, blake3=outcome.blake3, size_bytes=outcome.size_bytes,
                at_utc=self.s.now(),
            )],
        )
        self.in_batch += 1
        if self.in_batch >= self.s.batch_files:
            self.commit_batch()

    def run_record(self, event: str, sources: Sequence[str]) -> IngestRunRecord:
        return IngestRunRecord(
            run_id=self.run_id, event=event, at_utc=self.s.now(), host=socket.gethostname(),
            tool_version=__version__, sources=list(sources), store_uri=self.store.uri,
            files_seen=len(self.outcomes),
            archived=sum(o.status == ARCHIVED for o in self.outcomes),
            already_archived=sum(o.status == ALREADY for o in self.outcomes),
            skipped=sum(o.status == SKIPPED for o in self.outcomes),
            failed=sum(o.status == FAILED for o in self.outcomes),
            store_selftest=self.s.store_selftest,
        )

    # --- one file --------------------------------------------------------------------------
    def start_reading(self, path: Path) -> _Reading | FileOutcome:
        """Start reading, hashing and copying `path` in the reader thread."""
        staged: StagedObject | None = None
        if self.store.streams_puts:
            try:
                staged = self.store.stage()
            except CustodyError as exc:
                return FileOutcome(str(path), FAILED, reason=f"{path}: {exc}")
            return _Reading(staged, self.reader.submit(
                staged.fill, path, chunk_size=self.s.chunk_size))
        return _Reading(None, self.reader.submit(
            digest_file, path, chunk_size=self.s.chunk_size))

    def ingest_one(
        self, path: Path, root: Path | None, prober: _Prober, started: _Reading
    ) -> FileOutcome:
        spath = str(path)
        staged, reading = started.staged, started.digest
        try:
            # While the file is read, hashed and copied: its probe, and every check that
            # needs only its media, labels and metadata.
            result = prober.result(spath)
            assessment = self._assess(path, root, result, prober)
        except BaseException:
            with contextlib.suppress(BaseException):
                reading.result()  # the copy ends before its staged file goes
            if staged is not None:
                staged.abort()
            raise
        try:
            digest = reading.result()
        except BaseException as exc:
            if staged is not None:
                staged.abort()
            if isinstance(exc, CustodyError):
                return FileOutcome(spath, FAILED, reason=str(exc))
            if isinstance(exc, OSError):
                return FileOutcome(spath, FAILED, reason=f"{spath}: {exc.strerror or exc}")
            raise
        if digest.blake3 in self.known:
            if staged is not None:
                staged.abort()
            return FileOutcome(
                spath, ALREADY, reason="already archived (same BLAKE3)",
                blake3=digest.blake3, size_bytes=digest.size_bytes,
            )
        upload: cf.Future[PutResult] | None = None
        if staged is None:
            # Upload locked for the minimum first; `_archive` extends it to the rule's date
            # (retention may always grow).
            upload = self.uploader.submit(
                self.store.put_file, spath, digest.blake3,
                retain_until_utc=self.s.now() + self.s.min_lock,
            )
        try:
            return self._archive(path, digest, staged, result, assessment, upload)
        except CustodyError as exc:  # the store refused or failed: nothing half-stored
            return FileOutcome(spath, FAILED, reason=f"{spath}: {exc}", blake3=digest.blake3,
                               size_bytes=digest.size_bytes)
        finally:
            if staged is not None:
                staged.abort()  # no-op once committed

    def _assess(
        self, path: Path, root: Path | None, result: ProbeResult, prober: _Prober
    ) -> _Assessment:
        """Findings from the media, the labels and the metadata; the file's place in time."""
        now = self.s.now()
        findings = list(analyse(result, self.s.tolerances))
        findings += self._voice_check(str(path), result, findings, prober)
        labels = self.labels.lookup(path, root)
        findings += self._label_findings(labels)
        start, source = self._recording_start(labels, result, findings)
        duration = _duration_seconds(result)
        end = start + dt.timedelta(seconds=duration) if start and duration is not None else start
        if end is None:
            findings.append(Finding(
                "RECORDING_TIME_UNKNOWN",
                "no recorded_start label and no creation time in the file's metadata",
            ))
        elif now - end > self.s.late_after:
            hours = (now - end).total_seconds() / 3600
            findings.append(Finding(
                "INGEST_LATE",
                f"recording ended {end.isoformat()} and was stored {now.isoformat()}, "
                f"{hours:.1f} h later (limit {self.s.late_after.total_seconds() / 3600:g} h)",
            ))
        device = labels.device_id if labels and labels.device_id else result.serial
        if len(self.devices):
            state = self.devices.classify(device)
            if state != DEVICE_REGISTERED:
                findings.append(Finding(
                    "DEVICE_UNKNOWN",
                    f"device {device!r} is {state.replace('_', ' ')} in the device registry"
                    if device else "neither labels nor metadata name the recording device",
                ))
        here = Interval(path.name, device, labels.case_number if labels else None, start, end)
        findings += gaps_around(here, self.intervals, self.s.sessions)
        return _Assessment(now, findings, labels, start, end, source, here)

    def _archive(
        self,
        path: Path,
        digest: FileDigest,
        staged: StagedObject | None,
        result: ProbeResult,
        a: _Assessment,
        upload: cf.Future[PutResult] | None = None,
    ) -> FileOutcome:
        findings = list(a.findings)
        earlier = self.names.get(path.name, set()) - {digest.blake3}
        if earlier:
            findings.append(Finding(
                "NAME_REUSED",
                f"{path.name} was archived before with other content "
                f"(BLAKE3 {', '.join(sorted(e[:16] for e in earlier))}…); both are kept",
            ))
        retain = one_year_retain_until(a.start, a.now, min_lock=self.s.min_lock)
        if staged is not None:
            # The object is made durable (fsync, link, ledger) while its rows are built.
            committing = self.committer.submit(staged.commit, digest.blake3,
                                               retain_until_utc=retain)
            try:
                tables = self._media_tables(path, digest, result, findings, a.now)
            except BaseException:
                with contextlib.suppress(BaseException):
                    committing.result()
                raise
            put = committing.result()
        else:
            if upload is not None:
                put = upload.result()
                info = self.store.head(put.key)
                if info.retain_until_utc is None or info.retain_until_utc < retain:
                    self.store.extend_retention(put.key, retain)
            else:
                put = self.store.put_file(str(path), digest.blake3, retain_until_utc=retain)
            tables = self._media_tables(path, digest, result, findings, a.now)
        self.known.add(digest.blake3)
        self.intervals.append(a.interval)
        self.names.setdefault(path.name, set()).add(digest.blake3)
        self.batch.add(RecordingRecord, [self._recording_record(path, digest, result, a, put,
                                                                retain)])
        for cls, table in tables:
            self.batch.add_table(cls, table)
        return FileOutcome(
            str(path), ARCHIVED, blake3=digest.blake3, size_bytes=digest.size_bytes,
            findings=findings,
        )

    def _voice_check(
        self, path: str, result: ProbeResult, findings: list[Finding], prober: _Prober
    ) -> list[Finding]:
        """AV-9: after each interruption the officer must explain it by voice."""
        tol = self.s.tolerances
        out = []
        for r in resume_points(result, findings, tol):
            window = float(tol.voice_window)
            levels = prober.levels(path, r.abs_seconds, window)
            if levels is None:
                why = "the audio after it could not be decoded"
            elif not levels.has_audio:
                why = "the file has no audio track, so nothing can have been said"
            else:
                ok, why = speech_like(levels.dbfs, tol)
                if ok:
                    continue
                why = f"in the next {window:g} s {why}"
            out.append(Finding(
                "UNEXPLAINED_INTERRUPTION",
                f"Recording resumed at {r.at_seconds:.3f} s after an interruption, but {why}.",
                at_seconds=r.at_seconds,
            ))
        return out

    def _label_findings(self, labels: Labels | None) -> list[Finding]:
        if labels is None:
            return [Finding("LABEL_MISSING", "no row of the labels file names this file"
                            if self.labels.by_key else "ingested without a labels file")]
        out = [Finding("LABEL_INVALID", p) for p in labels.problems]
        if self.staff_kinds and labels.officer_ids:
            unknown = [o for o in labels.officer_ids if o not in self.staff_kinds]
            if unknown:
                out.append(Finding(
                    "LABEL_INVALID",
                    f"{labels.source}: {', '.join(unknown)} not in the personnel registry",
                ))
            kinds = [self.staff_kinds.get(o) for o in labels.officer_ids]
            if all(k == "auxiliary" for k in kinds):
                out.append(Finding(
                    "AUXILIARY_ONLY",
                    f"{labels.source}: {', '.join(labels.officer_ids)} are all auxiliary "
                    "staff; no certified officer is labelled on this recording",
                ))
        missing = labels.missing()
        if missing:
            out.append(Finding(
                "LABEL_INCOMPLETE", f"{labels.source}: empty {', '.join(missing)}"
            ))
        return out

    def _recording_start(
        self, labels: Labels | None, result: ProbeResult, findings: list[Finding]
    ) -> tuple[dt.datetime | None, str | None]:
        meta = _as_utc(result.creation_time_utc)
        label = labels.recorded_start_utc if labels else None
        if label is not None and meta is not None:
            duration = _duration_seconds(result) or 0.0
            # Cameras stamp either the start or the end of a recording as creation time.
            allowed = self.s.clock_tolerance + dt.timedelta(seconds=duration)
            if abs(meta - label) > allowed:
                findings.append(Finding(
                    "CREATION_TIME_MISMATCH",
                    f"labelled start {label.isoformat()}, file creation time "
                    f"{meta.isoformat()}: {abs(meta - label).total_seconds():.0f} s apart",
                ))
        if label is not None:
            return label, "label"
        if meta is not None:
            return meta, "metadata"
        return None, None

    def _media_tables(
        self, path: Path, digest: FileDigest, result: ProbeResult, findings: list[Finding],
        now: dt.datetime,
    ) -> list[tuple[type[Any], pa.Table]]:
        """The file's rows that do not depend on where the store put it: streams, chunks,
        packets, findings."""
        b3 = digest.blake3
        out: list[tuple[type[Any], pa.Table]] = [
            (StreamRecord,
             to_table(StreamRecord, [_stream_record(b3, s) for s in result.streams])),
            (ChunkRecord, to_table(ChunkRecord, [
                ChunkRecord(b3, i, *digest.chunk_span(i), h) for i, h in enumerate(digest.chunks)
            ])),
        ]
        out += [(PacketRecord, _packet_table(b3, s)) for s in result.streams]
        out.append((FindingRecord, to_table(FindingRecord, [
            FindingRecord(
                recording_blake3=b3, source_path=str(path), run_id=self.run_id, code=f.code,
                rule=f.rule, category=f.category, severity=f.severity,
                stream_index=f.stream_index, pts=f.pts, at_seconds=f.at_seconds,
                title_en=f.title_en, title_zh=f.title_zh, detail=f.detail, found_at_utc=now,
                subject_kind=f.subject.kind, subject_id=f.subject.id,
            )
            for f in (f.about(Subject("recording", b3)) for f in findings)
        ])))
        return out

    def _recording_record(
        self, path: Path, digest: FileDigest, result: ProbeResult, a: _Assessment, put: PutResult,
        retain: dt.datetime,
    ) -> RecordingRecord:
        labels = a.labels
        return RecordingRecord(
            blake3=digest.blake3, size_bytes=digest.size_bytes, source_path=str(path.resolve()),
            file_name=path.name, media_kind=result.media_kind or "unknown",
            container=result.container, duration_seconds=_duration_seconds(result),
            creation_time_utc=_as_utc(result.creation_time_utc), make=result.make,
            model=result.model, serial=result.serial, gps_iso6709=result.gps_iso6709,
            case_number=labels.case_number if labels else None,
            inspected_entity=labels.inspected_entity if labels else None,
            officer_ids=list(labels.officer_ids) if labels else [],
            device_id=labels.device_id if labels and labels.device_id else result.serial,
            activity_type=labels.activity_type if labels else None,
            recorded_start_utc=a.start, recorded_end_utc=a.end, recorded_time_source=a.source,
            ingested_at_utc=a.now, run_id=self.run_id, store_uri=self.store.uri,
            store_key=put.key, store_version=put.version, retain_until_utc=retain,
            chunk_size_bytes=digest.chunk_size_bytes, chunk_count=len(digest.chunks),
            tags_json=json.dumps(result.tags, ensure_ascii=False, sort_keys=True),
        )


def _duration_seconds(result: ProbeResult) -> float | None:
    """What the packets cover (the longest stream); the container's claim only as fallback."""
    best: Fraction | None = None
    for s in result.streams:
        ok = s.pts != NOPTS
        if not ok.any():
            continue
        pts = s.pts[ok]
        dur = s.duration[ok]
        span = Fraction(int((pts + dur).max() - pts.min())) * s.time_base
        best = span if best is None or span > best else best
    if best is None and result.duration is not None and result.error is None:
        best = result.duration
    return float(best) if best is not None else None


def _stream_record(b3: str, s: StreamTimeline) -> StreamRecord:
    return StreamRecord(
        recording_blake3=b3, stream_index=s.index, kind=s.kind, codec=s.codec,
        profile=s.profile, width=s.width, height=s.height,
        frame_rate_num=s.frame_rate.numerator if s.frame_rate else None,
        frame_rate_den=s.frame_rate.denominator if s.frame_rate else None,
        sample_rate=s.sample_rate, channels=s.channels,
        time_base_num=s.time_base.numerator, time_base_den=s.time_base.denominator,
        start_pts=s.start_pts, duration_pts=s.duration_pts, packet_count=s.packet_count,
        keyframe_count=int(s.keyframe.sum()), bit_rate=s.bit_rate,
        tags_json=json.dumps(s.tags, ensure_ascii=False, sort_keys=True),
    )


def _nullable(values: np.ndarray[Any, Any]) -> pa.Array:
    return pa.array(values, type=pa.int64(), mask=values == NOPTS)


def _packet_table(b3: str, s: StreamTimeline) -> pa.Table:
    n = s.packet_count
    return pa.Table.from_arrays(
        [
            pa.array([b3] * n, type=pa.string()),
            pa.array(np.full(n, s.index, dtype=np.int64)),
            pa.array(np.arange(n, dtype=np.int64)),
            _nullable(s.pts),
            _nullable(s.dts),
            pa.array(s.duration.astype(np.int64)),
            pa.array(s.keyframe.astype(bool)),
            pa.array(s.discard.astype(bool)),
            pa.array(s.size.astype(np.int64)),
            _nullable(s.pos),
        ],
        schema=arrow_schema(PacketRecord),
    )


def ingest(
    sources: Sequence[str | os.PathLike[str]],
    *,
    store: WormStore,
    catalog: Catalog,
    settings: IngestSettings,
    progress: Progress | None = None,
    auth: Authority | None = None,
    actor: str | None = None,
) -> RunResult:
    """Ingest every file below `sources`. Per-file problems become outcomes, never raise.

    With an `auth`, the actor must be allowed to ingest (PermissionDenied before anything
    is read) and every file's outcome is written to the audit log (one fsync per batch)."""
    labels = LabelBook.load(settings.labels_path, default_offset=settings.default_offset)
    files = list(iter_files(sources))
    who = actor or "library"
    if auth is not None:
        auth.authorize(who, INGEST, "ingest:" + ",".join(str(s) for s in sources))
    with _ingest_lock(catalog), (auth.audit.group_commit() if auth else contextlib.nullcontext()):
        catalog.clear_staging()
        run = _Run(store, catalog, settings, labels, progress)
        if auth is not None:
            run.before_commit = auth.audit.sync
            run.on_outcome = lambda o: auth.record(
                who, INGEST, f"b3/{o.blake3}" if o.blake3 else o.path,
                "refused" if o.status == FAILED else "allowed",
                f"{o.status}: {o.path}" + (f" ({o.reason})" if o.reason else ""),
            )
        src_names = [str(s) for s in sources]
        run.batch.add(IngestRunRecord, [run.run_record("started", src_names)])
        prober = _Prober(settings.probe_workers, settings.full_demux)
        # The workers exit while the last batch is written.
        closer = threading.Thread(target=prober.close, name="probe-close")
        try:
            sniffs: list[tuple[str | None, str]] = []
            for path, _ in files:
                try:
                    sn = sniff(path)
                    sniffs.append((sn.kind, sn.reason))
                except OSError as exc:
                    sniffs.append((None, f"cannot read: {exc.strerror or exc}"))
            queue = [i for i, (kind, _) in enumerate(sniffs) if kind is not None]
            ahead = settings.probe_workers + 1
            for i, (path, root) in enumerate(files):
                if progress:
                    progress(i, len(files), str(path))
                kind, reason = sniffs[i]
                # The read starts first: submitting a probe may wait for a worker to start.
                started = run.start_reading(path) if kind is not None else None
                while queue and queue[0] <= i + ahead:
                    prober.submit(str(files[queue.pop(0)][0]))
                if kind is None:
                    unreadable = reason.startswith("cannot read")
                    run.record_file(FileOutcome(
                        str(path), FAILED if unreadable else SKIPPED, reason=f"{path}: {reason}"
                    ))
                elif isinstance(started, FileOutcome):
                    run.record_file(started)
                elif started is not None:
                    run.record_file(run.ingest_one(path, root, prober, started))
            if progress:
                progress(len(files), len(files), "")
        finally:
            closer.start()
            run.uploader.shutdown(wait=True)
            run.reader.shutdown(wait=True)
            run.committer.shutdown(wait=True)
        try:
            finished = settings.now()
            run.batch.add(IngestRunRecord, [run.run_record("finished", src_names)])
            run.commit_batch(final=True)
        finally:
            closer.join()
    return RunResult(
        run_id=run.run_id, started_at_utc=run.started, finished_at_utc=finished,
        store_uri=store.uri, catalog_path=catalog.location, files=run.outcomes,
        unused_labels=labels.unused(),
    )

