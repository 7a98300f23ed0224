"""Every finding code serves a rule that RULES.md defines, and the rule each code names is
the one written here from the rule texts, not read from `schemas.findings`.

RULES.md lives in `../shared/spec/` beside the repository (not in a user's clone): the
tests that parse it skip without it, and the code -> rule table below is checked either
way, together with the rule IDs as RULES.md gave them when this table was written.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from schemas.findings import CODES

RULES_MD = Path(__file__).resolve().parents[3] / "shared" / "spec" / "RULES.md"

# The IDs of RULES.md's two tables (AV, AUX), in its order, as it stood for this table.
RULE_IDS = (
    "AV-2", "AV-3", "AV-4", "AV-5", "AV-6", "AV-7", "AV-8", "AV-9", "AV-10", "AV-11",
    "AV-12", "AV-13", "AV-14", "AV-15", "AV-16", "AV-17",
    "AUX-2/3", "AUX-4", "AUX-6", "AUX-7", "AUX-8", "AUX-9", "AUX-10", "AUX-11/12", "AUX-13",
    "AUX-14/15",
)

# code -> (rule, why, in the rule's words).
EXPECTED: dict[str, tuple[str, str]] = {
    # AV-9: "No stopping or interrupted recording ... find interruptions (timestamp gaps
    # inside a file, and gaps between consecutive files of one device in one session) ...
    # if not, a finding 'unexplained interruption'."
    "GAP_IN_STREAM": ("AV-9", "timestamp gaps inside a file"),
    "GAP_BETWEEN_FILES": ("AV-9", "gaps between consecutive files of one device"),
    "UNEXPLAINED_INTERRUPTION": ("AV-9", "audio with speech follows the resume; if not"),
    "NO_SPEECH_AT_START": ("AV-9", "audio with speech follows the resume (of a next file)"),
    # AV-9: "... edits (timestamps running backwards or repeating, spliced segments,
    # changed stream parameters, editing-tool signatures in metadata, inserted foreign
    # footage)". "No selective recording ... no deleting or editing."
    "TS_BACKWARDS": ("AV-9", "timestamps running backwards"),
    "TS_REPEATED": ("AV-9", "timestamps ... repeating"),
    "DTS_AFTER_PTS": ("AV-9", "timestamps rewritten: an edit"),
    "SPLICE_IRREGULAR_DURATION": ("AV-9", "spliced segments"),
    "TS_REWRITTEN": ("AV-9", "spliced segments (a stream-copy join)"),
    "KEYFRAME_INTERVAL_BREAK": ("AV-9", "spliced segments"),
    "CODEC_PARAMS_CHANGED": ("AV-9", "changed stream parameters, inserted foreign footage"),
    "EDIT_LIST": ("AV-9", "no deleting or editing"),
    "EDIT_LIST_OFFSET": ("AV-9", "no deleting or editing (an offset, recorded)"),
    "HIDDEN_MEDIA": ("AV-9", "no deleting or editing"),
    "DURATION_MISMATCH": ("AV-9", "no deleting or editing"),
    "EDITING_TOOL": ("AV-9", "editing-tool signatures in metadata"),
    "AV_DRIFT": ("AV-9", "one stream cut or shifted: editing"),
    # AV-3: "Records must be objective, true and complete" -> "Integrity analysis of
    # every file".
    "MEDIA_UNREADABLE": ("AV-3", "complete"),
    "MEDIA_TRUNCATED": ("AV-3", "complete"),
    "MEDIA_CORRUPT": ("AV-3", "complete"),
    # AV-8: "Reconcile each recording's time span with the linked document's times; a
    # mismatch beyond a tolerance is a finding."
    "CREATION_TIME_MISMATCH": ("AV-8", "a mismatch beyond a tolerance is a finding"),
    # AV-10: "Each section names a custodian for its devices" -> "Device registry with
    # custodian".
    "DEVICE_UNKNOWN": ("AV-10", "device registry with custodian"),
    # AUX-2/3: "A recording or action whose only participants are auxiliary staff is a
    # finding."
    "AUXILIARY_ONLY": ("AUX-2/3", "only participants are auxiliary staff"),
    # AV-12: "within 24 hours it goes into ... labelled with the case number ... a finding
    # for every file ingested more than 24 h after its recording ended".
    "LABEL_MISSING": ("AV-12", "labelled with the case number, entity, officer"),
    "LABEL_INCOMPLETE": ("AV-12", "labelled with the case number, entity, officer"),
    "LABEL_INVALID": ("AV-12", "labelled with the case number, entity, officer"),
    "INGEST_LATE": ("AV-12", "ingested more than 24 h after its recording ended"),
    "RECORDING_TIME_UNKNOWN": ("AV-12", "the 24 hours cannot be checked"),
    # AV-15: "Nobody may cut or alter the original footage." -> "WORM storage; originals
    # are never rewritten".
    "NAME_REUSED": ("AV-15", "an altered copy of an original"),
    "FIXITY_MISMATCH": ("AV-15", "originals are never rewritten"),
    "LEDGER_CHAIN_BROKEN": ("AV-15", "WORM storage (its retention ledger)"),
    "STORE_SELFTEST_FAILED": ("AV-15", "WORM storage"),
    # AV-16: punished "deleting or falsifying records; storing them so they are lost or
    # damaged" -> "attempted deletions and unapproved releases are recorded in the audit
    # log".
    "OBJECT_MISSING": ("AV-16", "storing them so they are lost"),
    "AUDIT_CHAIN_BROKEN": ("AV-16", "recorded in the audit log"),
    "CATALOG_PART_EDITED": ("AV-16", "falsifying records"),
    "CATALOG_PART_MISSING": ("AV-16", "deleting records"),
    "CATALOG_PART_UNRECORDED": ("AV-16", "falsifying records"),
    "CATALOG_COMMIT_UNRECORDED": ("AV-16", "falsifying records"),
    "CATALOG_COMMITS_BROKEN": ("AV-16", "deleting or falsifying records"),
    # AV-12: "labelled with the case number" (a number naming no case; a recording linked
    # to no case).
    "CASE_UNKNOWN": ("AV-12", "labelled with the case number"),
    "RECORDING_UNLINKED": ("AV-12", "labelled with the case number"),
    # AV-5/AV-ANNEX: "a coverage report per case"; AV-6: "An activity with neither a
    # recording nor an acknowledged exemption is a finding."
    "STEP_NOT_RECORDED": ("AV-5", "a coverage report per case"),
    "EXEMPTION_INCOMPLETE": ("AV-6", "reason code from this list, basis text, author"),
    "EXEMPTION_UNACKNOWLEDGED": ("AV-6", "section chief's acknowledgement"),
    "EXEMPTION_ACK_LATE": ("AV-6", "report it to the section chief"),
    # AV-13: "Retention tier permanent, set by these case events".
    "NOT_PERMANENT": ("AV-13", "retention tier permanent, set by these case events"),
    # AV-8: "Reconcile each recording's time span with the linked document's times ...
    # Estimate device clock drift."
    "DOCUMENT_TIME_MISMATCH": ("AV-8", "a mismatch beyond a tolerance is a finding"),
    "DEVICE_CLOCK_OFFSET": ("AV-8", "estimate device clock drift"),
}


def rules_md_ids() -> list[str]:
    """The IDs of RULES.md's rule tables: the first cell of each row of a table whose
    header is `| ID | ...`."""
    if not RULES_MD.exists():
        pytest.skip(f"RULES.md not found at {RULES_MD} (../shared is beside the repository "
                    "only on the development machine); the table here is still checked")
    ids: list[str] = []
    in_rules = False
    for line in RULES_MD.read_text(encoding="utf-8").splitlines():
        if line.startswith("| ID |"):
            in_rules = True
            continue
        if not line.startswith("|"):
            in_rules = False
            continue
        cell = line.split("|")[1].strip()
        if in_rules and not set(cell) <= {"-"}:
            ids.append(cell)
    return ids


def test_every_code_names_the_rule_written_here() -> None:
    assert {c.code: c.rule for c in CODES.values()} == {
        code: rule for code, (rule, _) in EXPECTED.items()}


def test_every_rule_named_here_is_a_rule_id() -> None:
    assert {rule for rule, _ in EXPECTED.values()} <= set(RULE_IDS)


def test_rules_md_defines_the_rule_ids_this_table_was_written_from() -> None:
    assert tuple(rules_md_ids()) == RULE_IDS


def test_every_finding_codes_rule_is_defined_in_rules_md() -> None:
    defined = set(rules_md_ids())
    assert {c.code: c.rule for c in CODES.values() if c.rule not in defined} == {}


def test_rule_ids_have_the_rules_md_form() -> None:
    """AV-n or AUX-n, or AUX-n/m for articles RULES.md restates together."""
    assert [r for r in RULE_IDS if not re.fullmatch(r"(AV|AUX)-\d+(/\d+)?", r)] == []
