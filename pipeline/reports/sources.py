"""Where a report's findings come from: every catalog view that holds findings, read as
rows of one shape, (code, rule, subject_kind, subject_id, case_number, recording_blake3,
at_utc).

- `findings`: every finding ingest (and any later stage) committed, whatever its code.
- The case checks' views (`schemas.views`, `check_*`): each is read by a `CheckSource`
  that says which of its rows are a finding of which code. A check view that has a `code`
  column is read as it is, with no source here (the convention for new check views); a
  check view with neither is named in the report as not counted (`Report.unread_checks`)
  rather than silently left out.

The rule and the titles of a code come from `schemas.findings.CODES`, never from here.
A row's time (what the period and the trend count by) is the time of what it concerns:
the recording's start (else its ingest), the exemption's, the document's, or else the
case's opening.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.rules.cases import DEFAULT_LINK_WITHIN
from schemas.findings import CODES


@dataclass(frozen=True, slots=True)
class CheckSource:
    """The rows of one check view that are findings of `code`, as SQL over alias `v`."""

    view: str
    code: str
    where: str
    subject_kind: str
    subject_id: str
    case_number: str = "NULL"
    recording_blake3: str = "NULL"
    at_utc: str = "NULL"  # NULL: the recording's or the case's time
    # The view carries its recording's `officer_ids`, `recorded_start_utc` and
    # `ingested_at_utc`, and the recording is linked to no case: the report takes them
    # from the row instead of looking the recording up (AV-12's 400,000 rows in a year).
    facts: bool = False


_DAYS = DEFAULT_LINK_WITHIN.total_seconds() / 86400

CHECK_SOURCES: tuple[CheckSource, ...] = (
    CheckSource("check_av5_coverage", "STEP_NOT_RECORDED", "v.covered_by IS NULL",
                "case", "v.case_number", "v.case_number"),
    CheckSource("check_av6_exemptions", "EXEMPTION_INCOMPLETE", "v.incomplete",
                "case", "v.case_number", "v.case_number", at_utc="v.exempted_at_utc"),
    CheckSource("check_av6_exemptions", "EXEMPTION_UNACKNOWLEDGED", "v.unacknowledged",
                "case", "v.case_number", "v.case_number", at_utc="v.exempted_at_utc"),
    CheckSource("check_av6_exemptions", "EXEMPTION_ACK_LATE", "v.ack_late",
                "case", "v.case_number", "v.case_number", at_utc="v.exempted_at_utc"),
    CheckSource("check_av13_permanent", "NOT_PERMANENT", "true", "recording",
                "v.recording_blake3", "v.case_number", "v.recording_blake3"),
    CheckSource("check_av12_unlinked", "RECORDING_UNLINKED", f"v.days_since_ingest > {_DAYS:g}",
                "recording", "v.blake3", "v.labelled_case", "v.blake3", facts=True),
    CheckSource("check_av8_documents", "DOCUMENT_TIME_MISMATCH", "v.mismatch", "case",
                "v.case_number", "v.case_number", at_utc="coalesce(v.start_utc, v.end_utc)"),
    CheckSource("check_av8_clock_offsets", "DEVICE_CLOCK_OFFSET", "true", "device",
                "v.device", at_utc="(SELECT max(coalesce(d.start_utc, d.end_utc)) FROM "
                "check_av8_documents d WHERE d.device = v.device AND d.device_offset_s <> 0)"),
    CheckSource("check_aux3_steps", "AUXILIARY_ONLY", "true", "case", "v.case_number",
                "v.case_number"),
)

# Columns a generic check view may carry besides `code`.
_GENERIC = ("rule", "subject_kind", "subject_id", "case_number", "recording_blake3", "at_utc")
_TYPES = {"rule": "VARCHAR", "subject_kind": "VARCHAR", "subject_id": "VARCHAR",
          "case_number": "VARCHAR", "recording_blake3": "VARCHAR", "at_utc": "TIMESTAMPTZ"}


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _rule_of(code: str) -> str:
    c = CODES.get(code)
    return c.rule if c else "?"


def _check_select(s: CheckSource) -> str:
    facts = (", v.officer_ids, v.recorded_start_utc, v.ingested_at_utc" if s.facts else "")
    return (f"SELECT {_lit(s.code)} AS code, {_lit(_rule_of(s.code))} AS rule, "
            f"{_lit(s.subject_kind)} AS subject_kind, CAST({s.subject_id} AS VARCHAR) "
            f"AS subject_id, CAST({s.case_number} AS VARCHAR) AS case_number, "
            f"CAST({s.recording_blake3} AS VARCHAR) AS recording_blake3, "
            f"CAST({s.at_utc} AS TIMESTAMPTZ) AS at_utc{facts} FROM {s.view} v "
            f"WHERE {s.where}")


def _generic_select(view: str, columns: set[str]) -> str:
    parts = ["CAST(v.code AS VARCHAR) AS code"]
    for col in _GENERIC:
        parts.append(f"CAST({'v.' + col if col in columns else 'NULL'} AS {_TYPES[col]}) "
                     f"AS {col}")
    return f"SELECT {', '.join(parts)} FROM {view} v"


FINDINGS_SELECT = (
    "SELECT f.code, f.rule, coalesce(f.subject_kind, 'recording') AS subject_kind, "
    "CAST(coalesce(f.subject_id, f.recording_blake3) AS VARCHAR) AS subject_id, "
    "CAST(NULL AS VARCHAR) AS case_number, f.recording_blake3, "
    "CASE WHEN f.recording_blake3 IS NULL THEN f.found_at_utc END AS at_utc FROM findings f")


@dataclass(frozen=True, slots=True)
class FindingRows:
    """What `finding_rows` gives: SQL over the sources that exist, and what it left out."""

    rows: str  # every finding row but those of `with_facts`, in the shape of the module doc
    with_facts: str | None  # the rows of sources with `facts`, with the recording's facts
    lookups: str  # the recordings whose linked case a row may need (see finding_rows)
    generic: tuple[str, ...]  # check views read as they are (with a `code` column)
    unread: tuple[str, ...]  # check views it cannot count
    # the rows of sources about no recording (a case, a device: AV-5, AV-6, AV-8, AUX-3),
    # which need no recording's facts or links (AV-8's 140,000 document rows in a year)
    without_recording: str | None = None


def finding_rows(check_views: dict[str, set[str]]) -> FindingRows:
    """The SQL of every finding row (UNION ALLs over the sources that exist, in three
    parts: `rows`, `with_facts`, `without_recording`); of the
    recordings whose linked case a row may need (`recording_blake3` of the rows that can
    name no case: the findings table's and the generic views'; a CheckSource names its
    case, or, AV-12's, is about a recording linked to none); and the check views it
    reads as they are and cannot count. `check_views`: each `check_*` view's columns."""
    selects = [FINDINGS_SELECT]
    lookups = ["SELECT recording_blake3 FROM findings"]
    known = {s.view for s in CHECK_SOURCES}
    present = [s for s in CHECK_SOURCES if s.view in check_views]
    selects += [_check_select(s) for s in present
                if not s.facts and s.recording_blake3 != "NULL"]
    facts = [_check_select(s) for s in present if s.facts]
    alone = [_check_select(s) for s in present if not s.facts and s.recording_blake3 == "NULL"]
    unread, generic = [], []
    for view, cols in sorted(check_views.items()):
        if view in known:
            continue
        if "code" in cols:
            selects.append(_generic_select(view, cols))
            generic.append(view)
            if "recording_blake3" in cols:
                lookups.append(f"SELECT CAST(recording_blake3 AS VARCHAR) FROM {view}")
        else:
            unread.append(view)
    return FindingRows("\nUNION ALL\n".join(selects),
                       "\nUNION ALL\n".join(facts) if facts else None,
                       "\nUNION ALL\n".join(lookups), tuple(generic), tuple(unread),
                       "\nUNION ALL\n".join(alone) if alone else None)
