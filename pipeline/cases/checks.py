"""The case checks over a catalog: read the records, run the pure rules
(`pipeline.rules.cases`). The DuckDB views `check_*` give the same answers in SQL."""

from __future__ import annotations

import datetime as dt

from pipeline.cases.service import read_events
from pipeline.catalog.core import Catalog
from pipeline.rules.cases import (
    DEFAULT_ACK_WITHIN,
    DEFAULT_LINK_WITHIN,
    LinkedRecording,
    av12_unlinked,
    case_findings,
    fold_cases,
)
from schemas.cases import load_checklist
from schemas.media import Finding


def recording_facts(catalog: Catalog) -> dict[str, LinkedRecording]:
    rows = catalog.query(
        "SELECT r.blake3, r.file_name, r.activity_type, r.ingested_at_utc, c.tier, "
        "c.legal_hold FROM recordings r JOIN retention_current c USING (blake3)").to_pylist()
    return {r["blake3"]: LinkedRecording(r["blake3"], r["file_name"], r["activity_type"],
                                         r["ingested_at_utc"], r["tier"], r["legal_hold"])
            for r in rows}


def check_catalog(
    catalog: Catalog, *, now_utc: dt.datetime, case_number: str | None = None,
    ack_within: dt.timedelta = DEFAULT_ACK_WITHIN,
    link_within: dt.timedelta = DEFAULT_LINK_WITHIN,
) -> list[Finding]:
    """Every case check (one case, or all cases and the AV-12 unlinked recordings)."""
    cases = fold_cases(read_events(catalog))
    recs = recording_facts(catalog)
    checklist = load_checklist()
    out: list[Finding] = []
    for n in sorted(cases):
        if case_number is None or n == case_number:
            out += case_findings(cases[n], recs, checklist, now_utc=now_utc,
                                 ack_within=ack_within)
    if case_number is None:
        out += av12_unlinked(recs.values(), cases.values(), now_utc=now_utc,
                             link_within=link_within)
    return out
