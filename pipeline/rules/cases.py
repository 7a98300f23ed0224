"""Case rules (AV-5/AV-ANNEX, AV-6, AV-9 across files, AV-12, AV-13): a case folded from
its events, and the checks over it. Pure: the caller passes the events, the recordings'
facts, the checklist, the time of the check and the limits.

Each check has a DuckDB view with the same answer (`schemas.views`: `check_av5_coverage`,
`check_av6_exemptions`, `check_av9_sessions`, `check_av12_unlinked`,
`check_av13_permanent`); a test holds them together.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from pipeline.analysis.sessions import Interval, SessionTolerances, gaps_around
from schemas.cases import (
    ACKNOWLEDGED,
    CLOSED,
    DOCUMENT,
    EXEMPTED,
    LINKED,
    OPENED,
    TRIGGER,
    UNLINKED,
    ChecklistStep,
)
from schemas.media import Finding, Subject
from schemas.records import CaseEventRecord

DEFAULT_ACK_WITHIN = dt.timedelta(days=3)  # AV-6: the chief acknowledges within N days
DEFAULT_LINK_WITHIN = dt.timedelta(days=7)  # AV-12: a recording is linked within N days
DEFAULT_SESSIONS = SessionTolerances()  # AV-9: a next file within 10 min, 2 s allowed


@dataclass(frozen=True, slots=True)
class Document:
    item_id: str
    kind: str
    step: str | None
    start_utc: dt.datetime | None
    end_utc: dt.datetime | None
    file_blake3: str | None


@dataclass(slots=True)
class Exemption:
    item_id: str
    step: str | None
    reason: str | None
    basis: str | None
    author_id: str | None
    at_utc: dt.datetime
    acked_at_utc: dt.datetime | None = None
    acked_by: str | None = None


@dataclass(slots=True)
class CaseFile:
    """A case's current state, folded from its events in order."""

    case_number: str
    case_type: str | None = None
    inspected_entity: str | None = None
    section: str | None = None
    officer_ids: list[str] = field(default_factory=list)
    opened_at_utc: dt.datetime | None = None
    closed_at_utc: dt.datetime | None = None
    retain_until_utc: dt.datetime | None = None
    links: dict[str, str | None] = field(default_factory=dict)  # blake3 -> step
    documents: list[Document] = field(default_factory=list)
    triggers: list[tuple[str, dt.datetime]] = field(default_factory=list)
    exemptions: dict[str, Exemption] = field(default_factory=dict)

    @property
    def is_open(self) -> bool:
        return self.opened_at_utc is not None and self.closed_at_utc is None

    @property
    def permanent(self) -> bool:
        """An AV-13 event was recorded: every linked recording is kept long-term."""
        return bool(self.triggers)


def fold_case(case_number: str, events: Iterable[CaseEventRecord]) -> CaseFile:
    """The state after `events` (those of this case, in the order they were appended)."""
    c = CaseFile(case_number)
    for e in events:
        if e.case_number != case_number:
            continue
        if e.event == OPENED:
            c.case_type, c.inspected_entity, c.section = e.case_type, e.inspected_entity, e.section
            c.officer_ids = list(e.officer_ids)
            c.opened_at_utc = e.at_utc
        elif e.event == LINKED and e.recording_blake3:
            c.links[e.recording_blake3] = e.step or c.links.get(e.recording_blake3)
        elif e.event == UNLINKED and e.recording_blake3:
            c.links.pop(e.recording_blake3, None)
        elif e.event == DOCUMENT:
            c.documents.append(Document(e.item_id or "", e.kind or "", e.step, e.start_utc,
                                        e.end_utc, e.file_blake3))
        elif e.event == TRIGGER:
            c.triggers.append((e.kind or "", e.at_utc))
        elif e.event == EXEMPTED:
            c.exemptions[e.item_id or ""] = Exemption(e.item_id or "", e.step, e.kind, e.text,
                                                      e.author_id, e.at_utc)
        elif e.event == ACKNOWLEDGED and e.item_id in c.exemptions:
            ex = c.exemptions[e.item_id]
            if ex.acked_at_utc is None:
                ex.acked_at_utc, ex.acked_by = e.at_utc, e.actor_id
        elif e.event == CLOSED:
            c.closed_at_utc, c.retain_until_utc = e.at_utc, e.retain_until_utc
    return c


def fold_cases(events: Iterable[CaseEventRecord]) -> dict[str, CaseFile]:
    """Every case of `events`, by number."""
    by_case: dict[str, list[CaseEventRecord]] = {}
    for e in events:
        by_case.setdefault(e.case_number, []).append(e)
    return {n: fold_case(n, evs) for n, evs in by_case.items()}


@dataclass(frozen=True, slots=True)
class LinkedRecording:
    """What the case rules need of a recording (from the catalog's recordings and
    retention_current)."""

    blake3: str
    file_name: str
    activity_type: str | None = None
    ingested_at_utc: dt.datetime | None = None
    tier: str = "one_year"
    legal_hold: bool = False
    start_utc: dt.datetime | None = None  # the recorded span (label or metadata), AV-8
    end_utc: dt.datetime | None = None
    device_id: str | None = None
    officer_ids: tuple[str, ...] = ()  # the labelled people (AUX-2/3)
    # AV-9 across files: what ingest heard at its start when no speech was (the detail of
    # its NO_SPEECH_AT_START); None: spoken to at its start, or not heard (no device).
    start_unspoken: str | None = None


def _case(c: CaseFile) -> Subject:
    return Subject("case", c.case_number)


def step_of(step: str | None, recording: LinkedRecording | None,
            steps: Sequence[ChecklistStep]) -> str | None:
    """The checklist step a link counts for: the one it names, else the first step of the
    case type whose AV-5 activities include the recording's activity label."""
    if step:
        return step
    if recording is None or recording.activity_type is None:
        return None
    for s in steps:
        if recording.activity_type in s.activities:
            return s.step
    return None


def required_steps(c: CaseFile, checklist: Sequence[ChecklistStep]) -> list[ChecklistStep]:
    return [s for s in checklist if s.case_type == c.case_type]


def av5_coverage(
    c: CaseFile, recordings: Mapping[str, LinkedRecording], checklist: Sequence[ChecklistStep],
) -> list[Finding]:
    """AV-5/AV-ANNEX: each step the checklist requires for the case's type has a linked
    recording, or an exemption the section chief acknowledged (AV-6). An optional step
    (a hearing) is required once the case has a link, document or exemption at it."""
    steps = required_steps(c, checklist)
    covered = {step_of(st, recordings.get(b3), steps) for b3, st in c.links.items()}
    acked = {e.step for e in c.exemptions.values() if e.acked_at_utc is not None}
    pending = {e.step for e in c.exemptions.values() if e.acked_at_utc is None}
    present = covered | {e.step for e in c.exemptions.values()} | {
        d.step for d in c.documents}
    out = []
    for s in steps:
        if s.step in covered or s.step in acked or (s.optional and s.step not in present):
            continue
        why = (" (an exemption is recorded but not acknowledged by the section chief)"
               if s.step in pending else "")
        out.append(Finding(
            "STEP_NOT_RECORDED",
            f"case {c.case_number} ({c.case_type}): step {s.step} ({s.step_en}) has no "
            f"linked recording and no acknowledged exemption{why}",
            subject=_case(c),
        ))
    return out


def av6_exemptions(
    c: CaseFile, *, now_utc: dt.datetime, ack_within: dt.timedelta = DEFAULT_ACK_WITHIN,
) -> list[Finding]:
    """AV-6: an exemption has its reason, basis and author, and the section chief's
    acknowledgement, given within `ack_within`."""
    out = []
    for e in c.exemptions.values():
        where = f"case {c.case_number}, exemption {e.item_id} (step {e.step})"
        missing = [n for n, v in (("reason", e.reason), ("basis", e.basis),
                                  ("author", e.author_id)) if not (v and v.strip())]
        if missing:
            out.append(Finding("EXEMPTION_INCOMPLETE", f"{where}: no {', '.join(missing)}",
                               subject=_case(c)))
        if e.acked_at_utc is None:
            days = (now_utc - e.at_utc).total_seconds() / 86400
            out.append(Finding("EXEMPTION_UNACKNOWLEDGED",
                               f"{where}: recorded {days:.1f} days ago, not acknowledged",
                               subject=_case(c)))
        elif e.acked_at_utc - e.at_utc > ack_within:
            days = (e.acked_at_utc - e.at_utc).total_seconds() / 86400
            out.append(Finding(
                "EXEMPTION_ACK_LATE",
                f"{where}: acknowledged by {e.acked_by} {days:.1f} days after it was "
                f"recorded (limit {ack_within.total_seconds() / 86400:g} days)",
                subject=_case(c)))
    return out


def av13_permanent(c: CaseFile, recordings: Mapping[str, LinkedRecording]) -> list[Finding]:
    """AV-13: once a trigger is recorded, every linked recording is permanent, held."""
    if not c.permanent:
        return []
    kinds = ", ".join(sorted({k for k, _ in c.triggers}))
    out = []
    for b3 in sorted(c.links):
        r = recordings.get(b3)
        if r is not None and r.tier == "permanent" and r.legal_hold:
            continue
        state = f"tier {r.tier}, legal hold {'on' if r.legal_hold else 'off'}" if r else \
            "not in the catalog"
        name = r.file_name if r else b3[:16]
        out.append(Finding(
            "NOT_PERMANENT",
            f"case {c.case_number} has AV-13 event(s) {kinds}, but {name} is {state}",
            subject=Subject("recording", b3),
        ))
    return out


def av12_unlinked(
    recordings: Iterable[LinkedRecording], cases: Iterable[CaseFile], *,
    now_utc: dt.datetime, link_within: dt.timedelta = DEFAULT_LINK_WITHIN,
) -> list[Finding]:
    """AV-12: a recording stored more than `link_within` ago and linked to no case."""
    linked = {b3 for c in cases for b3 in c.links}
    out = []
    for r in sorted(recordings, key=lambda r: (r.file_name, r.blake3)):
        if r.blake3 in linked or r.ingested_at_utc is None:
            continue
        age = now_utc - r.ingested_at_utc
        if age <= link_within:
            continue
        out.append(Finding(
            "RECORDING_UNLINKED",
            f"{r.file_name} was stored {age.total_seconds() / 86400:.1f} days ago and is "
            f"linked to no case (limit {link_within.total_seconds() / 86400:g} days)",
            subject=Subject("recording", r.blake3),
        ))
    return out


def aux3_steps(
    c: CaseFile, recordings: Mapping[str, LinkedRecording], checklist: Sequence[ChecklistStep],
    staff_kinds: Mapping[str, str],
) -> list[Finding]:
    """AUX-2/3: a step of the case whose recordings name only auxiliary staff (no
    certified officer). Quiet while the personnel registry is empty."""
    if not staff_kinds:
        return []
    steps = required_steps(c, checklist)
    people: dict[str, set[str]] = {}
    for b3, st in c.links.items():
        r = recordings.get(b3)
        step = step_of(st, r, steps)
        if r is not None and step is not None:
            people.setdefault(step, set()).update(r.officer_ids)
    out = []
    for step, who in sorted(people.items()):
        if who and all(staff_kinds.get(p) == "auxiliary" for p in who):
            out.append(Finding(
                "AUXILIARY_ONLY",
                f"case {c.case_number}, step {step}: its recordings name only auxiliary "
                f"staff ({', '.join(sorted(who))}); no certified officer",
                subject=_case(c)))
    return out


@dataclass(frozen=True, slots=True)
class SessionGap:
    """An interruption between two consecutive recordings of one device linked to a case."""

    case_number: str
    device_id: str
    before: LinkedRecording
    after: LinkedRecording
    gap: dt.timedelta

    @property
    def explained(self) -> bool:
        return self.after.start_unspoken is None


def case_session_gaps(
    c: CaseFile, recordings: Mapping[str, LinkedRecording],
    tolerances: SessionTolerances = DEFAULT_SESSIONS,
) -> list[SessionGap]:
    """The case's sessions, AV-9 across files: its linked recordings of one device in the
    order they started (then ended); two in a row whose second starts more than the
    tolerance and at most the session gap after the first ended are an interruption (the
    session rule of `analysis.sessions`). Recordings without a device or a time are not
    judged, as at ingest."""
    by_device: dict[str, list[LinkedRecording]] = {}
    for b3 in c.links:
        r = recordings.get(b3)
        if r is not None and r.device_id and r.start_utc and r.end_utc:
            by_device.setdefault(r.device_id, []).append(r)
    out = []
    for device, recs in sorted(by_device.items()):
        recs.sort(key=lambda r: (r.start_utc, r.end_utc, r.blake3))
        for a, b in itertools.pairwise(recs):
            if gaps_around(_interval(b), [_interval(a)], tolerances):
                assert a.end_utc is not None and b.start_utc is not None
                out.append(SessionGap(c.case_number, device, a, b, b.start_utc - a.end_utc))
    return out


def _interval(r: LinkedRecording) -> Interval:
    return Interval(r.file_name, r.device_id, None, r.start_utc, r.end_utc)


def seconds_text(d: dt.timedelta) -> str:
    """A length of time in seconds, exact: to the millisecond, or to the microsecond the
    catalog keeps when it has one."""
    us = d // dt.timedelta(microseconds=1)
    whole, frac = divmod(abs(us), 1_000_000)
    sign = "-" if us < 0 else ""
    return f"{sign}{whole}.{frac:06d}" if frac % 1000 else f"{sign}{whole}.{frac // 1000:03d}"


def av9_sessions(
    c: CaseFile, recordings: Mapping[str, LinkedRecording],
    tolerances: SessionTolerances = DEFAULT_SESSIONS,
) -> list[Finding]:
    """AV-9 across files, per case: each interruption between files of a case's session
    whose later file opens without speech (NO_SPEECH_AT_START at its ingest) is
    UNEXPLAINED_INTERRUPTION about the case, naming the recordings either side and the
    exact gap."""
    out = []
    for g in case_session_gaps(c, recordings, tolerances):
        if g.explained:
            continue
        a, b = g.before, g.after
        assert a.end_utc is not None and b.start_utc is not None
        out.append(Finding(
            "UNEXPLAINED_INTERRUPTION",
            f"case {c.case_number}, device {g.device_id}: {b.file_name} (b3/{b.blake3}) "
            f"starts {seconds_text(g.gap)} s after {a.file_name} (b3/{a.blake3}) ended "
            f"({a.end_utc.isoformat()} -> {b.start_utc.isoformat()}), and at its start: "
            f"{b.start_unspoken}",
            subject=_case(c)))
    return out


def case_findings(
    c: CaseFile, recordings: Mapping[str, LinkedRecording], checklist: Sequence[ChecklistStep],
    *, now_utc: dt.datetime, ack_within: dt.timedelta = DEFAULT_ACK_WITHIN,
    sessions: SessionTolerances = DEFAULT_SESSIONS,
) -> list[Finding]:
    """Every per-case check, in a fixed order (coverage, exemptions, sessions,
    preservation)."""
    return (av5_coverage(c, recordings, checklist)
            + av6_exemptions(c, now_utc=now_utc, ack_within=ack_within)
            + av9_sessions(c, recordings, sessions)
            + av13_permanent(c, recordings))
