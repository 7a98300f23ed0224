"""The one committer of a run: cross-file rules, then atomic catalog batches with their
audit records.

Per-file records (`pipeline.ingest.file.FileRecords`, from this process or a worker) come
here in order. For each: content the archive already holds becomes `already_archived`;
otherwise the rules that need other files run (session gaps between files of one device,
AV-9, through `analysis.sessions`; a file name reused for other content, AV-15), its
findings table is built, and its rows join the open batch. A batch commits atomically
every `batch_files` files and at the end, after the audit records of its files are
durable. A file labelled with the case number of an open case is linked to it in the same
batch, and its retention follows the case on the store first (issue 12: `case` with a
legal hold, `permanent` after an AV-13 event); a number that names no case opened in
Custody is `CASE_UNKNOWN` (once any case is opened: before that, case numbers are only
labels). Objects are always in the store before the batch that names them, so a crash
leaves at worst an object the catalog does not know yet, which the next run catalogs.
"""

from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import socket
from base64 import b64encode
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from pipeline import __version__
from pipeline.analysis.sessions import Interval, SessionTolerances, gaps_around
from pipeline.catalog.core import Batch, Catalog
from pipeline.ingest.file import FileRecords, failed_record
from pipeline.ingest.names import display_path, display_text, raw_bytes
from pipeline.ingest.outcome import ALREADY, ARCHIVED, FAILED, SKIPPED, FileOutcome
from pipeline.ingest.rows import findings_table
from pipeline.people.permissions import Authority
from pipeline.people.registry import Registry
from pipeline.retention.engine import CASE_LINKED, CASE_PERMANENT, apply_case_retention
from pipeline.rules import ARCHIVE, Context, run_rules
from pipeline.rules.cases import CaseFile, fold_cases
from pipeline.rules.devices import DeviceIndex
from pipeline.storage.base import WormStore
from schemas.media import Finding, Subject
from schemas.people import CASE_MANAGE, INGEST
from schemas.records import (
    CaseEventRecord,
    FindingRecord,
    IngestFileRecord,
    IngestRunRecord,
    RecordingRecord,
    RetentionEventRecord,
    from_table,
    to_table,
)


@dataclass(slots=True)
class ArchiveState:
    """What the catalog holds before the run, kept current with the run's own files:
    content, names, session intervals, and the registries' snapshot."""

    blake3s: set[str]
    names: dict[str, set[str]]
    intervals: list[Interval]
    devices: DeviceIndex
    staff_kinds: dict[str, str]  # staff number -> officer | auxiliary (empty: no registry)
    cases: dict[str, CaseFile]  # the cases opened in Custody, by number (issue 12)


def load_state(catalog: Catalog) -> ArchiveState:
    known = catalog.read_table(RecordingRecord, (
        "blake3", "file_name", "device_id", "case_number", "recorded_start_utc",
        "recorded_end_utc",
    )).to_pylist()
    registry = Registry(catalog)
    names: dict[str, set[str]] = {}
    for r in known:
        names.setdefault(r["file_name"], set()).add(r["blake3"])
    return ArchiveState(
        blake3s={r["blake3"] for r in known},
        names=names,
        intervals=[Interval(r["file_name"], r["device_id"], r["case_number"],
                            r["recorded_start_utc"], r["recorded_end_utc"]) for r in known],
        # AV-10: once devices are registered, every recording must come from one of them.
        devices=registry.device_index(),
        staff_kinds={p.staff_id: p.kind for p in registry.all_staff()},
        cases=fold_cases(sorted(from_table(CaseEventRecord, catalog.read_table(
            CaseEventRecord)), key=lambda e: e.at_utc)),
    )


def _background(catalog: Catalog) -> cf.Future[ArchiveState]:
    pool = cf.ThreadPoolExecutor(1, "catalog-state")
    fut = pool.submit(load_state, catalog)
    pool.shutdown(wait=False)
    return fut


class Committer:
    """The run's open batch, its outcomes, and the archive state the cross-file rules use.

    Every outcome is audited as the actor's ingest of that file (refused when it failed);
    the audit log is synced before each batch commits."""

    def __init__(
        self, catalog: Catalog, *, run_id: str, store_uri: str, now: Callable[[], dt.datetime],
        batch_files: int, sessions: SessionTolerances, auth: Authority, actor: str,
        store: WormStore | None = None, on_outcome: Callable[[FileOutcome], None] | None = None,
    ) -> None:
        self.catalog = catalog
        self.store = store  # without it, no case is linked (its retention could not follow)
        self.on_outcome = on_outcome  # told each outcome as it is recorded
        self.run_id = run_id
        self.store_uri = store_uri
        self.now = now
        self.batch_files = batch_files
        self.sessions = sessions
        self.auth = auth
        self.actor = actor
        # What the catalog already holds is read in the background while the first file
        # is hashed: it is needed only once that file's rules run.
        self._state = _background(catalog)
        self.batch: Batch = catalog.batch()
        self.in_batch = 0
        self.outcomes: list[FileOutcome] = []

    @property
    def state(self) -> ArchiveState:
        return self._state.result()

    def is_archived(self, blake3: str) -> bool:
        return blake3 in self.state.blake3s

    def context(
        self, now: dt.datetime, *, late_after: dt.timedelta, clock_tolerance: dt.timedelta,
        labels_given: bool,
    ) -> Context:
        """The FILE rules' context for a file ingested at `now` (the registries as they
        were when the run started)."""
        st = self.state
        return Context(now_utc=now, late_after=late_after, clock_tolerance=clock_tolerance,
                       staff_kinds=st.staff_kinds, devices=st.devices,
                       labels_given=labels_given)

    # --- files ---------------------------------------------------------------------------
    def add(self, rec: FileRecords) -> FileOutcome:
        """One file's records: deduplicated, checked against the others, batched. An
        exception in the cross-file rules or the rows is the file's `failed` (its object
        stays in the store, uncatalogued: the next run catalogs it)."""
        try:
            outcome = self._outcome(rec)
        except Exception as exc:
            failed = failed_record(rec.path, exc)
            outcome = FileOutcome(rec.path, FAILED, reason=failed.reason, blake3=rec.blake3,
                                  size_bytes=rec.size_bytes)
        return self.record(outcome)

    def _outcome(self, rec: FileRecords) -> FileOutcome:
        if rec.status != ARCHIVED:
            return FileOutcome(rec.path, rec.status, reason=rec.reason, blake3=rec.blake3,
                               size_bytes=rec.size_bytes)
        assert rec.blake3 is not None and rec.recording is not None
        st = self.state
        if rec.blake3 in st.blake3s:  # a worker stored it again; the archive has it
            return FileOutcome(rec.path, ALREADY, reason="already archived (same BLAKE3)",
                               blake3=rec.blake3, size_bytes=rec.size_bytes)
        findings = list(rec.findings)
        if rec.interval is not None:
            findings += gaps_around(rec.interval, st.intervals, self.sessions)
        if rec.facts is not None:
            ctx = Context(now_utc=rec.recording.ingested_at_utc, archived_names=st.names)
            findings += run_rules(replace(rec.facts, blake3=rec.blake3), ctx, scope=ARCHIVE)
        case = self._case_of(rec.recording, findings)
        # Every row is built before anything joins the state or the batch.
        recording = to_table(RecordingRecord, [rec.recording])
        found = findings_table(rec.blake3, rec.path, self.run_id, findings,
                               rec.recording.ingested_at_utc)
        st.blake3s.add(rec.blake3)
        if rec.interval is not None:
            st.intervals.append(rec.interval)
        st.names.setdefault(rec.recording.file_name, set()).add(rec.blake3)
        self.batch.add_table(RecordingRecord, recording)
        for cls, table in rec.tables:
            self.batch.add_table(cls, table)
        self.batch.add_table(FindingRecord, found)
        if case is not None:
            self._link(rec.recording, case)
        return FileOutcome(rec.path, ARCHIVED, blake3=rec.blake3, size_bytes=rec.size_bytes,
                           findings=findings)

    # --- cases (issue 12) -------------------------------------------------------------------
    def _case_of(self, r: RecordingRecord, findings: list[Finding]) -> CaseFile | None:
        """The open case the recording's label names (to link it to), or None; a number
        naming no case opened in Custody adds CASE_UNKNOWN to `findings` (quiet while no
        case is opened at all, as DEVICE_UNKNOWN is while no device is registered)."""
        n = (r.case_number or "").strip()
        if not n or not self.state.cases:
            return None
        case = self.state.cases.get(n)
        if case is None or case.opened_at_utc is None:
            findings.append(Finding(
                "CASE_UNKNOWN", f"labelled case number {n} names no case opened in Custody "
                "(custody case open); the recording is linked to no case",
                subject=Subject("case", n)))
            return None
        return case if case.is_open and self.store is not None else None

    def _link(self, r: RecordingRecord, case: CaseFile) -> None:
        """Link to the open case in this batch; its retention follows on the store first."""
        assert self.store is not None
        now = r.ingested_at_utc
        row = {"blake3": r.blake3, "file_name": r.file_name, "store_key": r.store_key,
               "tier": "one_year", "retain_until_utc": r.retain_until_utc or now,
               "legal_hold": False}
        _, events = apply_case_retention(
            self.store, self.auth, actor=self.actor, now=now, case_number=case.case_number,
            rows=[row], what=CASE_PERMANENT if case.permanent else CASE_LINKED,
            trigger=case.triggers[-1][0] if case.permanent else None,
            reason="linked at ingest by its case-number label")
        self.auth.record(self.actor, CASE_MANAGE, f"case:{case.case_number}", "allowed",
                         f"linked {r.file_name} (b3/{r.blake3}) at ingest: its label names "
                         "this open case")
        self.batch.add(CaseEventRecord, [CaseEventRecord(
            case_number=case.case_number, event="linked", at_utc=now, actor_id=self.actor,
            recording_blake3=r.blake3, text="ingest label")])
        self.batch.add(RetentionEventRecord, events)
        case.links[r.blake3] = None

    def record(self, outcome: FileOutcome) -> FileOutcome:
        """An outcome: audited, in the batch as an ingest_files row, committed in turn.
        Names are written in their display form (the log and the catalog are UTF-8); the
        row keeps the exact bytes too, and so does the audit record where the display form
        is not the name itself (base64)."""
        if outcome.reason is not None:
            outcome.reason = display_text(outcome.reason)
        self.outcomes.append(outcome)
        shown = display_path(outcome.path)
        raw = raw_bytes(outcome.path)
        exact = "" if shown.encode() == raw else f" [name bytes base64 {b64encode(raw).decode()}]"
        self.auth.record(
            self.actor, INGEST, f"b3/{outcome.blake3}" if outcome.blake3 else shown,
            "refused" if outcome.status == FAILED else "allowed",
            f"{outcome.status}: {shown}{exact}" + (f" ({outcome.reason})" if outcome.reason
                                                   else ""),
        )
        self.batch.add(IngestFileRecord, [IngestFileRecord(
            run_id=self.run_id, source_path=shown, source_path_bytes=raw,
            status=outcome.status, reason=outcome.reason, blake3=outcome.blake3,
            size_bytes=outcome.size_bytes, at_utc=self.now(),
        )])
        if self.on_outcome is not None:
            self.on_outcome(outcome)
        self.in_batch += 1
        if self.in_batch >= self.batch_files:
            self.commit()
        return outcome

    # --- batches -------------------------------------------------------------------------
    def commit(self, final: bool = False) -> None:
        if self.in_batch == 0 and not final:
            return
        if self.store is not None:  # these files' objects (FileJob.durable), then
            self.store.sync()
        self.auth.audit.sync()  # the audit records of these files are durable first
        self.batch.commit(self.now().date())
        self.batch = self.catalog.batch()
        self.in_batch = 0

    def run_event(self, event: str, sources: Sequence[str], store_selftest: str) -> None:
        """The run's started / finished row, into the open batch."""
        self.batch.add(IngestRunRecord, [IngestRunRecord(
            run_id=self.run_id, event=event, at_utc=self.now(), host=socket.gethostname(),
            tool_version=__version__, sources=list(sources), store_uri=self.store_uri,
            files_seen=len(self.outcomes),
            archived=sum(o.status == ARCHIVED for o in self.outcomes),
            already_archived=sum(o.status == ALREADY for o in self.outcomes),
            skipped=sum(o.status == SKIPPED for o in self.outcomes),
            failed=sum(o.status == FAILED for o in self.outcomes),
            store_selftest=store_selftest,
        )])
