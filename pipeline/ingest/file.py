"""One file -> its records: `ingest_file(job)`, the unit a worker runs.

`FileJob` (in) and `FileRecords` (out) are frozen and picklable: the path, its labels row,
the run, the store's location, the rule context (time, tolerances, a snapshot of the
registries). A worker that gets only a job opens the store from its location and probes
in its own process (`worker_tools`); nothing of the catalog is needed, and the records it
returns are committed by the one committer (`pipeline.ingest.batch`), which also runs the
rules that need other files.

The local run passes its own `FileTools` instead: the probe runs in a process pool a few
files ahead, and the read (BLAKE3 of the whole and of each chunk, the same bytes copied by
the kernel into a staged object) was started before the probe was waited for, so probe,
copy/hash and the object's commit overlap as before.

A file the probe cannot read is still archived, with a damage finding: it is evidence. Only
a file that cannot be read from disk, or that the store refuses, is `failed`.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import datetime as dt
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from urllib.parse import unquote, urlsplit

from pipeline.analysis.sessions import Interval
from pipeline.analysis.timing import Tolerances, analyse, resume_points
from pipeline.analysis.voice import judge_resume
from pipeline.errors import CustodyError
from pipeline.ingest.labels import Labels
from pipeline.ingest.outcome import ALREADY, ARCHIVED, FAILED
from pipeline.ingest.rows import Tables, duration_seconds, media_tables, recording_record
from pipeline.integrity.hashing import DEFAULT_CHUNK_SIZE, FileDigest, digest_file
from pipeline.media.probe import AudioLevels
from pipeline.rules import Context, RecordingFacts, recorded_span, run_rules
from pipeline.storage.base import StagedObject, WormStore
from schemas.media import Finding, ProbeResult
from schemas.records import RecordingRecord
from schemas.retention import DEFAULT_MIN_LOCK, one_year_retain_until

Levels = Callable[[str, Fraction, float], AudioLevels | None]


@dataclass(frozen=True, slots=True)
class FileJob:
    """Everything needed to ingest one file, besides the tools to do it with."""

    path: str
    root: str | None  # the folder it was found under (labels may name it relative to it)
    labels: Labels | None  # its AV-12 labels row; None: the labels file does not name it
    run_id: str
    store_uri: str  # where a worker opens the store (`file:///...` or `s3://bucket/prefix`)
    rules: Context  # the time of ingest, tolerances and the registries' snapshot
    chunk_size: int = DEFAULT_CHUNK_SIZE
    min_lock: dt.timedelta = DEFAULT_MIN_LOCK
    tolerances: Tolerances = field(default_factory=Tolerances)
    full_demux: bool = False

    @property
    def now(self) -> dt.datetime:
        return self.rules.now_utc


@dataclass(frozen=True, slots=True)
class FileRecords:
    """What became of one file. `status` is archived (its object is in the store and its
    rows are here), already_archived (the tools knew its BLAKE3), or failed (`reason`)."""

    path: str
    status: str
    reason: str | None = None
    blake3: str | None = None
    size_bytes: int | None = None
    findings: tuple[Finding, ...] = ()  # the file's own; cross-file ones come at commit
    facts: RecordingFacts | None = None  # for the rules that need other files
    interval: Interval | None = None  # its place in time, for sessions
    recording: RecordingRecord | None = None
    tables: Tables = ()  # streams, chunks, packets (findings are built at commit)


@dataclass(slots=True)
class FileTools:
    """What a process ingests files with: the open store, a probe, threads to read and to
    commit on. Not picklable: each process makes its own."""

    store: WormStore
    probe: Callable[[str], ProbeResult]
    levels: Levels
    reader: cf.ThreadPoolExecutor
    committer: cf.ThreadPoolExecutor
    # Whether the archive already holds this BLAKE3: then the staged copy is dropped. A
    # worker that cannot know stores it anyway (a repeated put is harmless) and the
    # committer reports it as already archived.
    is_archived: Callable[[str], bool] = lambda _b3: False


@dataclass(frozen=True, slots=True)
class Reading:
    """A file being read, hashed and copied (into `staged`, on a store that streams)."""

    staged: StagedObject | None
    digest: cf.Future[FileDigest]


def open_store_at(uri: str) -> WormStore:
    """The store a `store_uri` names; a worker's own environment holds any credentials."""
    from pipeline.storage import open_store

    parts = urlsplit(uri)
    if parts.scheme == "file":
        return open_store(unquote(parts.path))
    return open_store(uri)


def unreadable(path: str, why: str) -> ProbeResult:
    """The probe result of a file the demuxer could not read (archived with a finding)."""
    return ProbeResult(
        path=path, media_kind=None, container=None, duration=None, start_time=None,
        streams=(), tags={}, error=why,
    )


def _probe_here(path: str, *, full_demux: bool) -> ProbeResult:
    from pipeline.media.probe import probe

    try:
        return probe(path, full_demux=full_demux)
    except Exception as exc:
        return unreadable(path, f"probe failed: {type(exc).__name__}: {exc}")


def _levels_here(path: str, start: Fraction, seconds: float) -> AudioLevels | None:
    from pipeline.media.probe import audio_levels

    try:
        return audio_levels(path, start, seconds)
    except Exception:
        return None


@contextlib.contextmanager
def worker_tools(store_uri: str, *, full_demux: bool = False) -> Iterator[FileTools]:
    """Tools for a process that has only jobs: the store opened from its location, the
    probe in this process (a worker has no GIL-holding threads of its own to disturb)."""
    reader = cf.ThreadPoolExecutor(1, "read")
    committer = cf.ThreadPoolExecutor(1, "commit")
    try:
        yield FileTools(
            open_store_at(store_uri), functools.partial(_probe_here, full_demux=full_demux),
            _levels_here, reader, committer,
        )
    finally:
        reader.shutdown(wait=True)
        committer.shutdown(wait=True)


def start_reading(path: Path, tools: FileTools, chunk_size: int) -> Reading | FileRecords:
    """Start reading, hashing and copying `path` in the reader thread."""
    store = tools.store
    if store.streams_puts:
        try:
            staged = store.stage()
        except CustodyError as exc:
            return FileRecords(str(path), FAILED, reason=f"{path}: {exc}")
        return Reading(staged, tools.reader.submit(staged.fill, path, chunk_size=chunk_size))
    return Reading(None, tools.reader.submit(digest_file, path, chunk_size=chunk_size))


def ingest_file(
    job: FileJob, tools: FileTools | None = None, reading: Reading | None = None
) -> FileRecords:
    """Read, hash, store and analyse one file; its records. Per-file problems are
    `failed` records, never exceptions. Without `tools`, the store is opened from the
    job's location and the probe runs here (what a Dask worker does)."""
    if tools is None:
        with worker_tools(job.store_uri, full_demux=job.full_demux) as own:
            return ingest_file(job, own, reading)
    path = Path(job.path)
    if reading is None:
        started = start_reading(path, tools, job.chunk_size)
        if isinstance(started, FileRecords):
            return started
        reading = started
    staged = reading.staged
    try:
        # While the file is read, hashed and copied: its probe, and every check that needs
        # only its media, labels and metadata.
        result = tools.probe(job.path)
        findings, facts = assess(job, result, tools.levels)
    except BaseException:
        with contextlib.suppress(BaseException):
            reading.digest.result()  # the copy ends before its staged file goes
        if staged is not None:
            staged.abort()
        raise
    try:
        digest = reading.digest.result()
    except BaseException as exc:
        if staged is not None:
            staged.abort()
        if isinstance(exc, CustodyError):
            return FileRecords(job.path, FAILED, reason=str(exc))
        if isinstance(exc, OSError):
            return FileRecords(job.path, FAILED, reason=f"{job.path}: {exc.strerror or exc}")
        raise
    if tools.is_archived(digest.blake3):
        if staged is not None:
            staged.abort()
        return FileRecords(job.path, ALREADY, reason="already archived (same BLAKE3)",
                           blake3=digest.blake3, size_bytes=digest.size_bytes)
    try:
        return _archive(job, tools, digest, staged, result, findings, facts)
    except CustodyError as exc:  # the store refused or failed: nothing half-stored
        return FileRecords(job.path, FAILED, reason=f"{job.path}: {exc}",
                           blake3=digest.blake3, size_bytes=digest.size_bytes)
    finally:
        if staged is not None:
            staged.abort()  # no-op once committed


def assess(
    job: FileJob, result: ProbeResult, levels: Levels
) -> tuple[list[Finding], RecordingFacts]:
    """Findings from the media (timing, AV-9 voice) and the file-scope rules."""
    findings = list(analyse(result, job.tolerances))
    findings += voice_check(job.path, result, findings, job.tolerances, levels)
    facts = RecordingFacts(
        file_name=Path(job.path).name, labels=job.labels,
        creation_time_utc=result.creation_time_utc, duration_seconds=duration_seconds(result),
        serial=result.serial,
    )
    findings += run_rules(facts, job.rules)
    return findings, facts


def voice_check(
    path: str, result: ProbeResult, findings: list[Finding], tol: Tolerances, levels: Levels
) -> list[Finding]:
    """AV-9: after each interruption the officer must explain it by voice."""
    window = float(tol.voice_window)
    out = []
    for r in resume_points(result, findings, tol):
        found = judge_resume(r, levels(path, r.abs_seconds, window), tol)
        if found is not None:
            out.append(found)
    return out


def _archive(
    job: FileJob, tools: FileTools, digest: FileDigest, staged: StagedObject | None,
    result: ProbeResult, findings: list[Finding], facts: RecordingFacts,
) -> FileRecords:
    path = Path(job.path)
    span = recorded_span(facts)
    retain = one_year_retain_until(span.start_utc, job.now, min_lock=job.min_lock)
    if staged is not None:
        # The object is made durable (fsync, link, ledger) while its rows are built.
        committing = tools.committer.submit(staged.commit, digest.blake3,
                                            retain_until_utc=retain)
        try:
            tables = media_tables(digest, result)
        except BaseException:
            with contextlib.suppress(BaseException):
                committing.result()
            raise
        put = committing.result()
    else:
        put = tools.store.put_file(job.path, digest.blake3, retain_until_utc=retain)
        # An object stored before (a run that crashed before its catalog commit) keeps
        # its own date unless this one is later: retention only grows.
        info = tools.store.head(put.key)
        if info.retain_until_utc is None or info.retain_until_utc < retain:
            tools.store.extend_retention(put.key, retain)
        tables = media_tables(digest, result)
    recording = recording_record(
        path, digest, result, job.labels, span, now=job.now, run_id=job.run_id,
        store_uri=tools.store.uri, put=put, retain=retain,
    )
    interval = Interval(path.name, facts.device_id,
                        job.labels.case_number if job.labels else None,
                        span.start_utc, span.end_utc)
    return FileRecords(
        job.path, ARCHIVED, blake3=digest.blake3, size_bytes=digest.size_bytes,
        findings=tuple(findings), facts=replace(facts, blake3=digest.blake3),
        interval=interval, recording=recording, tables=tables,
    )
