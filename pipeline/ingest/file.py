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

A file the probe cannot read is still archived, with a damage finding: it is evidence. A
file that cannot be read from disk, or that the store refuses, is `failed`; so is a file
whose work raised anything else (its reason names the file, the exception's type and
message): the batch goes on, and its staged copy is aborted, never half-stored. The rows
are built before the object is committed, so a file whose rows fail stores nothing.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import datetime as dt
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from pipeline.analysis.sessions import Interval
from pipeline.analysis.timeline import Clock
from pipeline.analysis.timing import Tolerances, analyse, resume_points
from pipeline.analysis.voice import VoiceTolerances, hear, judge_resume
from pipeline.errors import CustodyError
from pipeline.ingest.labels import Labels
from pipeline.ingest.names import display_path, display_text
from pipeline.ingest.outcome import ALREADY, ARCHIVED, FAILED
from pipeline.ingest.rows import Tables, duration_seconds, media_tables, recording_record
from pipeline.integrity.hashing import DEFAULT_CHUNK_SIZE, FileDigest, digest_file
from pipeline.media.probe import AudioLevels
from pipeline.rules import Context, RecordingFacts, recorded_span, run_rules
from pipeline.storage.base import PutResult, StagedObject, WormStore, key_for
from schemas.media import Finding, ProbeResult
from schemas.records import RecordingRecord, from_ipc_bytes, ipc_bytes
from schemas.retention import DEFAULT_MIN_LOCK, one_year_retain_until

Enough = tuple[float, float]  # (speech probability, seconds): all a yes/no question needs


class Levels(Protocol):
    """Audio levels and speech from `start` for `seconds` of a file; None if that failed.
    `enough_speech`: the detector may stop once that much speech was heard."""

    def __call__(self, path: str, start: Fraction, seconds: float, *,
                 enough_speech: Enough | None = None) -> AudioLevels | None: ...


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
    # Where this process and its probe read the file: the descriptor the listing checked
    # (`/proc/<pid>/fd/<n>`), so a file swapped after the check is not what is read. None:
    # `path` (a worker elsewhere opens it itself).
    read_path: str | None = None
    # False: the object's name and retention record become durable at the store's next
    # `sync()`, which whoever reports this file archived must call first (the committer
    # before each catalog batch; a cluster worker before it returns a task). True: at once.
    durable: bool = True

    @property
    def now(self) -> dt.datetime:
        return self.rules.now_utc

    @property
    def source(self) -> str:
        return self.read_path or self.path


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

    # From a worker to the committer the tables travel as Arrow IPC streams: a clip's four
    # small tables pickle in 0.05 ms that way and in 0.34 ms as pickled Arrow objects (and
    # load in 0.06 ms instead of 0.25), which the committer's one core pays for each file.
    def __getstate__(self) -> tuple[Any, ...]:
        return tuple(
            tuple((cls, ipc_bytes(t)) for cls, t in self.tables) if f.name == "tables"
            else getattr(self, f.name) for f in fields(self))

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        for f, value in zip(fields(self), state, strict=True):
            if f.name == "tables":
                value = tuple((cls, from_ipc_bytes(data)) for cls, data in value)
            object.__setattr__(self, f.name, value)


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


def _levels_here(path: str, start: Fraction, seconds: float, *,
                 enough_speech: Enough | None = None) -> AudioLevels | None:
    from pipeline.media.probe import audio_levels

    try:
        return audio_levels(path, start, seconds, enough_speech=enough_speech)
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


def start_reading(
    path: Path, tools: FileTools, chunk_size: int, *, shown: str | None = None
) -> Reading | FileRecords:
    """Start reading, hashing and copying `path` in the reader thread (`shown`: the name
    of the file in a failure's reason, when `path` is its descriptor's)."""
    store = tools.store
    if store.streams_puts:
        try:
            staged = store.stage()
        except Exception as exc:
            return failed_record(str(path), exc, shown=shown)
        return Reading(staged, tools.reader.submit(staged.fill, path, chunk_size=chunk_size))
    return Reading(None, tools.reader.submit(digest_file, path, chunk_size=chunk_size))


def abandon(reading: Reading) -> None:
    """Drop a reading: its copy ends, then its staged object goes. Never raises."""
    with contextlib.suppress(BaseException):
        reading.digest.result()
    if reading.staged is not None:
        with contextlib.suppress(BaseException):
            reading.staged.abort()


def failed_record(
    path: str, exc: BaseException, *, read_path: str | None = None, shown: str | None = None,
    blake3: str | None = None, size_bytes: int | None = None,
) -> FileRecords:
    """A file's `failed` record for an exception: its reason names the file and the
    problem (a project error's or OSError's own words, else the exception's type and
    message)."""
    shown = shown or display_path(path)
    if isinstance(exc, CustodyError):
        msg = str(exc)
        if read_path:
            msg = msg.replace(read_path, shown)
        msg = display_text(msg)
        reason = msg if shown in msg else f"{shown}: {msg}"
    elif isinstance(exc, OSError):
        reason = f"{shown}: {exc.strerror or display_text(str(exc))}"
    else:
        reason = f"{shown}: {type(exc).__name__}: {display_text(str(exc))}"
    return FileRecords(path, FAILED, reason=reason, blake3=blake3, size_bytes=size_bytes)


def ingest_file(
    job: FileJob, tools: FileTools | None = None, reading: Reading | None = None
) -> FileRecords:
    """Read, hash, store and analyse one file; its records. Per-file problems are
    `failed` records, never exceptions. Without `tools`, the store is opened from the
    job's location and the probe runs here (what a Dask worker does)."""
    if tools is None:
        with worker_tools(job.store_uri, full_demux=job.full_demux) as own:
            return ingest_file(job, own, reading)
    if reading is None:
        started = start_reading(Path(job.source), tools, job.chunk_size,
                                shown=display_path(job.path))
        if isinstance(started, FileRecords):
            return replace(started, path=job.path)
        reading = started
    try:
        # While the file is read, hashed and copied: its probe, and every check that needs
        # only its media, labels and metadata.
        result = tools.probe(job.source)
        findings, facts = assess(job, result, tools.levels)
    except Exception as exc:
        abandon(reading)
        return failed_record(job.path, exc, read_path=job.read_path)
    except BaseException:
        abandon(reading)
        raise
    staged = reading.staged
    try:
        digest = reading.digest.result()
    except BaseException as exc:
        if staged is not None:
            staged.abort()
        if isinstance(exc, Exception):
            return failed_record(job.path, exc, read_path=job.read_path)
        raise
    if tools.is_archived(digest.blake3):
        if staged is not None:
            staged.abort()
        return FileRecords(job.path, ALREADY, reason="already archived (same BLAKE3)",
                           blake3=digest.blake3, size_bytes=digest.size_bytes)
    try:
        return _archive(job, tools, digest, staged, result, findings, facts)
    except Exception as exc:  # the rows, or the store refused or failed: nothing half-stored
        return failed_record(job.path, exc, read_path=job.read_path, blake3=digest.blake3,
                             size_bytes=digest.size_bytes)
    finally:
        if staged is not None:
            staged.abort()  # no-op once committed


def assess(
    job: FileJob, result: ProbeResult, levels: Levels
) -> tuple[list[Finding], RecordingFacts]:
    """Findings from the media (timing, AV-9 voice) and the file-scope rules."""
    findings = list(analyse(result, job.tolerances))
    findings += voice_check(job.source, result, findings, job.tolerances, levels)
    facts = RecordingFacts(
        file_name=display_path(Path(job.path).name), labels=job.labels,
        creation_time_utc=result.creation_time_utc, duration_seconds=duration_seconds(result),
        serial=result.serial,
    )
    findings += opening_check(job.source, result, facts, job.tolerances, levels)
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


def opening_check(
    path: str, result: ProbeResult, facts: RecordingFacts, tol: Tolerances, levels: Levels
) -> list[Finding]:
    """AV-9 between files: a file that resumes a session after an interruption must open
    with the spoken explanation. Whether it resumes one is known only against other files
    (a case's sessions, `pipeline.rules.cases.av9_sessions`), so each recording of a known
    device is heard at its start (one more decode of the voice window), and a start
    without speech is recorded as NO_SPEECH_AT_START (info)."""
    if facts.device_id is None or result.media_kind not in ("video", "audio"):
        return []
    window = float(tol.voice_window)
    # Only "is there enough speech?" is asked here, so the detector stops once there is:
    # an officer who speaks at the start costs a second of detection, not the window.
    voice = VoiceTolerances()
    audio = levels(path, Clock(result.streams).origin, window,
                   enough_speech=(voice.speech_p, float(voice.min_speech)))
    if audio is None:
        why = "its audio could not be decoded"
    elif not audio.has_audio:
        why = "it has no audio track, so nothing can have been said"
    else:
        heard = hear(audio)
        if heard.explained:
            return []
        why = f"in its first {window:g} s {heard.detail}"
    return [Finding("NO_SPEECH_AT_START", f"No spoken explanation at the start: {why}.",
                    at_seconds=0.0)]


def _archive(
    job: FileJob, tools: FileTools, digest: FileDigest, staged: StagedObject | None,
    result: ProbeResult, findings: list[Finding], facts: RecordingFacts,
) -> FileRecords:
    path = Path(job.path)
    span = recorded_span(facts)
    retain = one_year_retain_until(span.start_utc, job.now, min_lock=job.min_lock)
    # Every row first (a few ms, even for 46k packets): a file whose rows cannot be built
    # fails before anything of it is stored. The store's key and version come after.
    tables = media_tables(digest, result)
    key = key_for(digest.blake3)
    recording = recording_record(
        path, digest, result, job.labels, span, now=job.now, run_id=job.run_id,
        store_uri=tools.store.uri,
        put=PutResult(key=key, size_bytes=digest.size_bytes, version=None, created=False),
        retain=retain,
    )
    if staged is not None:
        put = staged.commit(digest.blake3, retain_until_utc=retain, durable=job.durable)
    else:
        put = tools.store.put_file(job.source, digest.blake3, retain_until_utc=retain)
        # An object stored before (a run that crashed before its catalog commit) keeps
        # its own date unless this one is later: retention only grows.
        info = tools.store.head(put.key)
        if info.retain_until_utc is None or info.retain_until_utc < retain:
            tools.store.extend_retention(put.key, retain)
    if (put.key, put.version) != (key, None):
        recording = replace(recording, store_key=put.key, store_version=put.version)
    interval = Interval(display_path(path.name), facts.device_id,
                        job.labels.case_number if job.labels else None,
                        span.start_utc, span.end_utc)
    return FileRecords(
        job.path, ARCHIVED, blake3=digest.blake3, size_bytes=digest.size_bytes,
        findings=tuple(findings), facts=replace(facts, blake3=digest.blake3),
        interval=interval, recording=recording, tables=tables,
    )
