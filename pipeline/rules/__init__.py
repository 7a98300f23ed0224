"""Compliance rules over records: pure functions, each with its rule ID (spec/RULES.md).

`RULES` is the one registry; ingest runs the FILE rules while a file is copied and the
ARCHIVE rules when it commits, and compliance reports can run the same functions over
catalog records. No I/O library is imported here (the architecture test checks that).
"""

from __future__ import annotations

from pipeline.rules.archive import av15_name_reused
from pipeline.rules.base import ARCHIVE, FILE, Context, LabelRow, RecordingFacts, Rule
from pipeline.rules.recording import (
    Span,
    as_utc,
    aux23_staff,
    av8_creation_time,
    av10_device,
    av12_complete,
    av12_deadline,
    av12_labels,
    recorded_span,
)
from schemas.media import Finding

# The order is the order of the findings (and always was, in ingest).
RULES: tuple[Rule, ...] = (
    Rule("AV-12", ("LABEL_MISSING", "LABEL_INVALID"), av12_labels),
    Rule("AUX-2/3", ("LABEL_INVALID", "AUXILIARY_ONLY"), aux23_staff),
    Rule("AV-12", ("LABEL_INCOMPLETE",), av12_complete),
    Rule("AV-8", ("CREATION_TIME_MISMATCH",), av8_creation_time),
    Rule("AV-12", ("RECORDING_TIME_UNKNOWN", "INGEST_LATE"), av12_deadline),
    Rule("AV-10", ("DEVICE_UNKNOWN",), av10_device),
    Rule("AV-15", ("NAME_REUSED",), av15_name_reused, ARCHIVE),
)


def run_rules(facts: RecordingFacts, ctx: Context, *, scope: str = FILE) -> list[Finding]:
    """The findings of every rule of `scope`, in registry order."""
    return [f for rule in RULES if rule.scope == scope for f in rule.check(facts, ctx)]


__all__ = [
    "ARCHIVE", "FILE", "RULES", "Context", "LabelRow", "RecordingFacts", "Rule", "Span",
    "as_utc", "recorded_span", "run_rules",
]
