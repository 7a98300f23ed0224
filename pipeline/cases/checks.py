"""The case checks over a catalog: read the records, run the pure rules
(`pipeline.rules.cases`, `pipeline.rules.documents`). The DuckDB views `check_*` give
the same answers in SQL."""

from __future__ import annotations

import datetime as dt

from pipeline.cases.service import read_events
from pipeline.catalog.core import Catalog
from pipeline.people.registry import Registry
from pipeline.rules.cases import (
    DEFAULT_ACK_WITHIN,
    DEFAULT_LINK_WITHIN,
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
    rows = catalog.query(
        "SELECT r.blake3, r.file_name, r.activity_type, r.ingested_at_utc, c.tier, "
        "c.legal_hold, r.recorded_start_utc, r.recorded_end_utc, r.device_id, r.officer_ids "
        "FROM recordings r JOIN retention_current c USING (blake3)").to_pylist()
    return {r["blake3"]: LinkedRecording(
        r["blake3"], r["file_name"], r["activity_type"], r["ingested_at_utc"], r["tier"],
        r["legal_hold"], r["recorded_start_utc"], r["recorded_end_utc"], r["device_id"],
        tuple(r["officer_ids"] or ()))
        for r in rows}


def check_catalog(
    catalog: Catalog, *, now_utc: dt.datetime, case_number: str | None = None,
    ack_within: dt.timedelta = DEFAULT_ACK_WITHIN,
    link_within: dt.timedelta = DEFAULT_LINK_WITHIN,
    document_tolerance: dt.timedelta = DEFAULT_TOLERANCE,
) -> list[Finding]:
    """Every case check (one case, or all cases and the AV-12 unlinked recordings)."""
    cases = fold_cases(read_events(catalog))
    recs = recording_facts(catalog)
    checklist = load_checklist()
    kinds = {p.staff_id: p.kind for p in Registry(catalog).all_staff()}
    out: list[Finding] = []
    for n in sorted(cases):
        if case_number is None or n == case_number:
            out += case_findings(cases[n], recs, checklist, now_utc=now_utc,
                                 ack_within=ack_within)
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
