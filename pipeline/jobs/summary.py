"""What one nightly run did, for the terminal, for JSON and for the catalog (`nightly_runs`).

Built from the ingest's `RunResult`, what was verified and moved (`settle.Settled`) and
the store's state after the run; pure (no I/O), so a test can state every field.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pipeline.ingest.outcome import ALREADY, ARCHIVED, FAILED, SKIPPED, FileOutcome, RunResult
from pipeline.jobs import compaction as compacting
from pipeline.jobs.compaction import Compaction
from pipeline.jobs.settle import Settled
from schemas.nightly import NightlyRunRecord

LATE_CODE = "INGEST_LATE"  # AV-12: uploaded more than 24 hours after recording ended
REACHABLE = "reachable"
NOT_RECORDED = "not recorded"


@dataclass(slots=True)
class NightlySummary:
    run_id: str
    started_at_utc: dt.datetime
    finished_at_utc: dt.datetime
    executor: str
    sources: list[str]
    store_uri: str
    store_selftest: str | None = None
    store_state: str = REACHABLE
    files: list[FileOutcome] = field(default_factory=list)
    settled: Settled = field(default_factory=Settled)
    staging_removed: int = 0
    stale_uploads_aborted: int = 0
    unused_labels: list[str] = field(default_factory=list)
    # What the executor is started with that costs the run (a cluster's workers' settings).
    executor_warnings: list[str] = field(default_factory=list)
    error: str | None = None  # the run itself failed (lock, store, self-test, catalog)
    recorded: str | None = None  # where the nightly_runs row went, or why it did not
    compaction: Compaction | None = None  # the catalog's, at the end of the run

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def bytes_read(self) -> int:
        return sum(f.size_bytes or 0 for f in self.files if f.status in (ARCHIVED, ALREADY))

    @property
    def seconds(self) -> float:
        return max((self.finished_at_utc - self.started_at_utc).total_seconds(), 1e-6)

    @property
    def files_per_second(self) -> float:
        return (self.count(ARCHIVED) + self.count(ALREADY)) / self.seconds

    @property
    def megabytes_per_second(self) -> float:
        return self.bytes_read / 1e6 / self.seconds

    @property
    def findings_by_rule(self) -> dict[str, int]:
        return dict(sorted(Counter(f.rule for o in self.files for f in o.findings).items()))

    @property
    def findings_by_code(self) -> dict[str, int]:
        return dict(sorted(Counter(f.code for o in self.files for f in o.findings).items()))

    @property
    def late_uploads(self) -> list[FileOutcome]:
        return [o for o in self.files if any(f.code == LATE_CODE for f in o.findings)]

    @property
    def rejects(self) -> list[FileOutcome]:
        return [o for o in self.files if o.status in (SKIPPED, FAILED)]

    def exit_code(self) -> int:
        """2 the run itself failed (it could not run, or the store was gone at its end),
        or the catalog's compaction failed (the files stay archived; the catalog needs a
        person); 1 findings, a file not archived, or a stored copy that did not verify;
        else 0."""
        if self.error is not None or self.store_state != REACHABLE:
            return 2
        if self.compaction is not None and self.compaction.state == compacting.FAILED:
            return 2
        if self.recorded is not None and self.recorded.startswith(NOT_RECORDED):
            return 2  # the catalog could not take the summary
        if self.count(FAILED) or self.settled.unverified:
            return 1
        if any(f.severity != "info" for o in self.files for f in o.findings):
            return 1
        return 0

    def record(self, host: str, tool_version: str) -> NightlyRunRecord:
        return NightlyRunRecord(
            run_id=self.run_id, started_at_utc=self.started_at_utc,
            finished_at_utc=self.finished_at_utc, host=host, tool_version=tool_version,
            executor=self.executor, sources=list(self.sources),
            files_seen=len(self.files), archived=self.count(ARCHIVED),
            already_archived=self.count(ALREADY), skipped=self.count(SKIPPED),
            failed=self.count(FAILED), bytes_read=self.bytes_read, seconds=self.seconds,
            files_per_second=self.files_per_second,
            megabytes_per_second=self.megabytes_per_second,
            findings=sum(len(o.findings) for o in self.files),
            findings_by_rule=json.dumps(self.findings_by_rule, sort_keys=True),
            late_uploads=len(self.late_uploads),
            rejects=[o.reason or o.display_path for o in self.rejects],
            verified=self.settled.verified, moved=self.settled.moved,
            left_in_place=list(self.settled.left_in_place), store_uri=self.store_uri,
            store_selftest=self.store_selftest, store_state=self.store_state,
            staging_removed=self.staging_removed,
            stale_uploads_aborted=self.stale_uploads_aborted, exit_code=self.exit_code(),
            error=self.error,
            compaction=self.compaction.state if self.compaction else None,
            compaction_detail=self.compaction.detail if self.compaction else None,
            catalog_parts_before=self.compaction.parts_before if self.compaction else None,
            catalog_parts_after=self.compaction.parts_after if self.compaction else None,
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "run": {
                "run_id": self.run_id,
                "started_at_utc": self.started_at_utc.isoformat(),
                "finished_at_utc": self.finished_at_utc.isoformat(),
                "executor": self.executor,
                "sources": self.sources,
                "files_seen": len(self.files),
                "archived": self.count(ARCHIVED),
                "already_archived": self.count(ALREADY),
                "skipped": self.count(SKIPPED),
                "failed": self.count(FAILED),
                "bytes_read": self.bytes_read,
                "seconds": round(self.seconds, 3),
                "files_per_second": round(self.files_per_second, 2),
                "megabytes_per_second": round(self.megabytes_per_second, 2),
                "findings": sum(len(o.findings) for o in self.files),
                "findings_by_rule": self.findings_by_rule,
                "findings_by_code": self.findings_by_code,
                "late_uploads": [o.display_path for o in self.late_uploads],
                "rejects": [{"path": o.display_path, "status": o.status, "reason": o.reason}
                            for o in self.rejects],
                "verified": self.settled.verified,
                "moved": self.settled.moved,
                "left_in_place": self.settled.left_in_place,
                "store": self.store_uri,
                "store_selftest": self.store_selftest,
                "store_state": self.store_state,
                "staging_removed": self.staging_removed,
                "stale_uploads_aborted": self.stale_uploads_aborted,
                "unused_labels": self.unused_labels,
                "executor_warnings": self.executor_warnings,
                "error": self.error,
                "compaction": self.compaction.as_json() if self.compaction else None,
                "recorded": self.recorded,
                "exit_code": self.exit_code(),
            },
            "files": [o.as_json() for o in self.files],
        }


def from_result(summary: NightlySummary, result: RunResult) -> NightlySummary:
    """The ingest's part of the summary."""
    summary.run_id = result.run_id
    summary.files = list(result.files)
    summary.store_selftest = result.store_selftest
    summary.staging_removed = result.staging_removed
    summary.unused_labels = list(result.unused_labels)
    return summary
