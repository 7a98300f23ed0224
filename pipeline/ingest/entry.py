"""One listed file, where it is read: opened, sniffed and ingested (`ingest_entry`), or a
group of them one after another (`ingest_entries`, a pool's or a cluster's task).

Apart from `pipeline.ingest.run`, the driver, so that a worker process (and the local
pool's forkserver, which preloads what its workers run) imports the per-file work only:
not the catalog, DuckDB or the committer (about 0.2 s of CPU at every start).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from pipeline.ingest.file import FileJob, FileRecords, FileTools, failed_record, ingest_file
from pipeline.ingest.listing import Entry, NotRegular, descriptor_path, open_regular
from pipeline.ingest.names import display_path, display_text
from pipeline.ingest.outcome import FAILED, SKIPPED
from pipeline.media import sniff as sniffing


@dataclass(slots=True)
class Opened:
    """A listed file, opened and sniffed (`fd` set), or why not (`status`, `reason`)."""

    fd: int | None = None
    read_path: str | None = None  # the path that reads `fd` (this process and its workers)
    status: str | None = None
    reason: str | None = None


def open_entry(entry: Entry) -> Opened:
    """Open a listed file and sniff its first bytes; never raises."""
    try:
        fd = open_regular(entry)
    except NotRegular as exc:
        return Opened(status=SKIPPED, reason=str(exc))
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return Opened(status=FAILED,
                          reason=f"vanished after it was listed ({exc.strerror})")
        return Opened(status=FAILED, reason=f"cannot read: {exc.strerror or exc}")
    try:
        sniffed = sniffing.sniff_fd(fd)
    except Exception as exc:
        os.close(fd)
        why = exc.strerror if isinstance(exc, OSError) else None
        return Opened(status=FAILED, reason=f"cannot read: {why}" if why else
                      f"{type(exc).__name__}: {display_text(str(exc))}")
    if sniffed.kind is None:
        os.close(fd)
        return Opened(status=SKIPPED, reason=sniffed.reason)
    return Opened(fd, descriptor_path(fd) or str(entry.path))


def ingest_entry(entry: Entry, job: FileJob, tools: FileTools | None = None) -> FileRecords:
    """One listed file, where it is read (a cluster's worker): opened and sniffed as the
    local run does (not media -> skipped; gone -> failed), then `ingest_file` through the
    descriptor that was checked. Never raises for the file's own problems."""
    here = open_entry(entry)
    shown = display_path(entry.path)
    if here.status is not None:
        return FileRecords(job.path, here.status, reason=f"{shown}: {here.reason}")
    assert here.fd is not None
    try:
        return ingest_file(replace(job, read_path=here.read_path), tools)
    finally:
        os.close(here.fd)


def ingest_entries(
    pairs: Sequence[tuple[Entry, FileJob]], tools: Callable[[FileJob], FileTools]
) -> list[FileRecords]:
    """Files one after another in this process (a worker's task of several small files),
    each with the tools `tools` gives for its job; an exception in one file's work is that
    file's `failed`, never the others'."""
    out = []
    for entry, job in pairs:
        try:
            out.append(ingest_entry(entry, job, tools(job)))
        except Exception as exc:
            out.append(failed_record(job.path, exc))
    return out
