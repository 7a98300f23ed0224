"""The case checks over a catalog: read the records, run the pure rules
(`pipeline.rules.cases`, `pipeline.rules.documents`). The DuckDB views `check_*` give
the same answers in SQL; the findings ingest stored about a case's recordings (AV-9 inside
a file, AV-12 late storage, ...) are the view `case_findings`, per case and officer."""

from __future__ import annotations

import datetime as dt

from pipeline.analysis.sessions import SessionTolerances
from pipeline.cases.service import read_events
from pipeline.catalog.core import Catalog
from pipeline.people.registry import Registry
from pipeline.rules.cases import (
    DEFAULT_ACK_WITHIN,
    DEFAULT_LINK_WITHIN,
    DEFAULT_SESSIONS,
    LinkedRecording,
    aux3_steps,
    av12_unlinked,
    case_findings,
    fold_cases,
)
from pipeline.rules.documents import DEFAULT_TOLERANCE, av8_documents
from schemas.cases import load_checklist
from schemas.media import Finding


def recording_facts(catalog: Catalog) -> dict[str, LinkedRecording]:
    """What the case rules need of each recording: its labels and span, its current
    retention, and what ingest heard at its start when nobody spoke (AV-9 across files)."""
    rows = catalog.query(
        "SELECT r.blake3, r.file_name, r.activity_type, r.ingested_at_utc, c.tier, "
        "c.legal_hold, r.recorded_start_utc, r.recorded_end_utc, r.device_id, r.officer_ids, "
        "s.detail AS start_unspoken "
        "FROM recordings r JOIN retention_current c USING (blake3) "
        "LEFT JOIN (SELECT recording_blake3 AS blake3, min(detail) AS detail FROM findings "
        "           WHERE code = 'NO_SPEECH_AT_START' GROUP BY 1) s USING (blake3)"
    ).to_pylist()
    return {r["blake3"]: LinkedRecording(
        r["blake3"], r["file_name"], r["activity_type"], r["ingested_at_utc"], r["tier"],
        r["legal_hold"], r["recorded_start_utc"], r["recorded_end_utc"], r["device_id"],
        tuple(r["officer_ids"] or ()), r["start_unspoken"])
        for r in rows}


def check_catalog(
    catalog: Catalog, *, now_utc: dt.datetime, case_number: str | None = None,
    ack_within: dt.timedelta = DEFAULT_ACK_WITHIN,
    link_within: dt.timedelta = DEFAULT_LINK_WITHIN,
    document_tolerance: dt.timedelta = DEFAULT_TOLERANCE,
    sessions: SessionTolerances = DEFAULT_SESSIONS,
) -> list[Finding]:
    """Every case check (one case, or all cases and the AV-12 unlinked recordings, those
    stored more than `link_within` ago and linked to no case)."""
    cases = fold_cases(read_events(catalog))
    recs = recording_facts(catalog)
    checklist = load_checklist()
    kinds = {p.staff_id: p.kind for p in Registry(catalog).all_staff()}
    out: list[Finding] = []
    for n in sorted(cases):
        if case_number is None or n == case_number:
            out += case_findings(cases[n], recs, checklist, now_utc=now_utc,
                                 ack_within=ack_within, sessions=sessions)
            out += aux3_steps(cases[n], recs, checklist, kinds)
    # AV-8 needs every case of a device to estimate its clock: run over all, then keep one
    # case's findings (and the clock findings of the devices it uses).
    av8 = av8_documents(cases.values(), recs, checklist, tolerance=document_tolerance)
    if case_number is not None:
        devices = {recs[b].device_id for b in cases[case_number].links if b in recs} \
            if case_number in cases else set()
        av8 = [f for f in av8 if f.subject.id == case_number
               or (f.subject.kind == "device" and f.subject.id in devices)]
    out += av8
    if case_number is None:
        out += av12_unlinked(recs.values(), cases.values(), now_utc=now_utc,
                             link_within=link_within)
    return out
