"""What an ingest is asked to do (`IngestSettings`) and what it did (`RunResult`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pipeline.analysis.sessions import SessionTolerances
from pipeline.analysis.timing import Tolerances
from pipeline.ingest.names import b64, display_path, raw_bytes
from pipeline.integrity.hashing import DEFAULT_CHUNK_SIZE
from schemas.media import Finding
from schemas.retention import DEFAULT_MIN_LOCK

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
    # Ingest into an S3 store whose self-test fails (a test bucket, knowingly); the
    # override is recorded with the run (`ingest_runs.store_selftest`).
    allow_unverified_store: bool = False
    # Follow symbolic links inside the folders (each folder walked once, so a link loop
    # ends); by default a link is `skipped`, "not followed".
    follow_symlinks: bool = False


@dataclass(slots=True)
class FileOutcome:
    path: str  # as the OS gave it (`os.fsencode(path)` is the exact name)
    status: str
    reason: str | None = None
    blake3: str | None = None
    size_bytes: int | None = None
    findings: list[Finding] = field(default_factory=list)

    @property
    def display_path(self) -> str:
        """The path as a person reads it (UTF-8, else GB18030, else \\xNN escapes)."""
        return display_path(self.path)

    @property
    def display_name(self) -> str:
        return display_path(self.path.rsplit("/", 1)[-1])

    @property
    def path_bytes(self) -> bytes:
        return raw_bytes(self.path)

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.display_path,
            "path_b64": b64(self.path_bytes),  # the exact name's bytes
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
    # The store gate before the run: passed | not_tamper_proof | failed_overridden.
    store_selftest: str = "not_tamper_proof"
    store_warning: str | None = None  # for the operator, when the gate was overridden
    # What killed runs had left in staging, removed before this run (catalog batches never
    # committed, the local store's partial copies).
    staging_removed: int = 0
    labels_encoding: str | None = None  # utf-8 | utf-8-sig | gb18030; None: no labels file
    # The store itself failed during the run (down, unreachable, credentials refused): its
    # first such error in words. Files it failed are `failed` with the same words; exit 2.
    store_failed: str | None = None

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def findings(self) -> list[tuple[FileOutcome, Finding]]:
        return [(o, f) for o in self.files for f in o.findings]

    def exit_code(self) -> int:
        """0 clean, 1 findings (warning or worse) or a file that could not be ingested
        (the run did its job and names each such file); 2 when the store itself failed
        (the run could not do its job: run it again once the store is back)."""
        if self.store_failed is not None:
            return 2
        if self.count(FAILED):
            return 1
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
                "store_selftest": self.store_selftest,
                "store_warning": self.store_warning,
                "files_seen": len(self.files),
                "archived": self.count(ARCHIVED),
                "already_archived": self.count(ALREADY),
                "skipped": self.count(SKIPPED),
                "failed": self.count(FAILED),
                "findings": len(self.findings),
                "unused_labels": self.unused_labels,
                "labels_encoding": self.labels_encoding,
                "staging_removed": self.staging_removed,
                "store_failed": self.store_failed,
                "exit_code": self.exit_code(),
            },
            "files": [o.as_json() for o in self.files],
        }
