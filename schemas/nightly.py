"""The nightly job's record: one `nightly_runs` row per run of `custody nightly` (issue 14).

What the operator reads in the morning, kept in the catalog beside the run's own
`ingest_runs` and `ingest_files` rows (same `run_id`): how much was done and how fast,
the findings by rule, every file not archived with its reason, the late uploads (AV-12),
what was verified and moved out of the inbox, the state of the store before and after,
and what the compaction of the catalog at the end did.

This module imports nothing from `schemas.records` (records imports it to extend
`TABLES`), so the record type here only carries its `TABLE` name.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class NightlyRunRecord:
    """One nightly run, as it ended (or failed: `error` says why, `exit_code` is 2)."""

    TABLE: ClassVar[str] = "nightly_runs"
    run_id: str
    started_at_utc: dt.datetime
    finished_at_utc: dt.datetime
    host: str
    tool_version: str
    executor: str  # "local:<workers>" or "cluster:<scheduler address>"
    sources: list[str]
    files_seen: int
    archived: int
    already_archived: int
    skipped: int
    failed: int
    bytes_read: int  # of the files archived or found already archived
    seconds: float
    files_per_second: float
    megabytes_per_second: float  # 10^6 bytes
    findings: int
    findings_by_rule: str  # JSON object: rule ID -> number of findings
    late_uploads: int  # files with INGEST_LATE (AV-12)
    rejects: list[str]  # the reason of each file skipped or failed (each names its file)
    verified: int  # stored copies re-read and found to hash to their BLAKE3
    moved: int  # source files moved to the done folder after their copy was verified
    left_in_place: list[str]  # files archived but not moved, each with why
    store_uri: str
    store_selftest: str | None  # the gate before the run (ingest_runs.store_selftest)
    store_state: str  # after the run: "reachable", or what went wrong
    staging_removed: int  # leftovers of killed runs cleared first
    stale_uploads_aborted: int  # incomplete multipart uploads of killed runs aborted
    exit_code: int  # 0 clean, 1 findings, 2 the run itself failed
    error: str | None = None  # why the run itself failed
    # The catalog compaction at the end of the run (`pipeline.jobs.compaction`); null in
    # rows written before it existed (a view reads a column a part lacks as null).
    compaction: str | None = None  # compacted | not due | off | skipped | failed
    compaction_detail: str | None = None  # what was merged, why not, or what went wrong
    catalog_parts_before: int | None = None  # parts the views read before it
    catalog_parts_after: int | None = None  # ... and after it


NIGHTLY_TABLES: tuple[type[NightlyRunRecord], ...] = (NightlyRunRecord,)
