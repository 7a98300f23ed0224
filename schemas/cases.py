"""Cases (案件): their types, events, AV-6 exemption reasons, and the AV-ANNEX checklist.

A case is a list of events, appended and never edited (`schemas.records.CaseEventRecord`);
its current state is folded from them (`pipeline.rules.cases.fold_case`, and the DuckDB
view `cases_current`). The checklist of steps that must be recorded is data the town can
edit (`schemas/checklist.toml`); `load_checklist` reads it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from schemas.activities import ACTIVITY_TYPES

# Case types (案件类型), Chinese as the town writes them, English beside.
CASE_TYPES: MappingProxyType[str, str] = MappingProxyType({
    "行政检查": "administrative inspection",
    "行政处罚": "administrative penalty",
})
_TYPE_ALIASES = {"inspection": "行政检查", "penalty": "行政处罚"}

# Case events.
OPENED = "opened"
LINKED = "linked"
UNLINKED = "unlinked"
DOCUMENT = "document"
TRIGGER = "trigger"  # an AV-13 event: kind is a schemas.retention.Trigger
EXEMPTED = "exempted"  # AV-6
ACKNOWLEDGED = "acknowledged"  # AV-6: the section chief (科室负责人)
CLOSED = "closed"
EVENTS: tuple[str, ...] = (OPENED, LINKED, UNLINKED, DOCUMENT, TRIGGER, EXEMPTED,
                           ACKNOWLEDGED, CLOSED)

# AV-6: the reasons recording may be skipped.
EXEMPTION_REASONS: MappingProxyType[str, tuple[str, str]] = MappingProxyType({
    "explosion_hazard": ("Explosion-hazard area without an explosion-proof device",
                         "在易燃易爆等危险场所且无防爆记录设备"),
    "secret_or_privacy": ("State or commercial secrets, or privacy",
                          "涉及国家秘密、商业秘密或个人隐私"),
    "emergency": ("Emergency", "情况紧急"),
    "objective": ("Objective reasons", "其他客观原因"),
})


@dataclass(frozen=True, slots=True)
class ChecklistStep:
    """One row of the AV-ANNEX checklist: a step of a case type that must be recorded."""

    case_type: str
    step: str
    step_en: str
    what: str
    unit: str
    activities: tuple[str, ...]
    optional: bool = False  # required only once the case has anything at this step


CHECKLIST_PATH = Path(__file__).with_name("checklist.toml")


def load_checklist(path: Path = CHECKLIST_PATH) -> tuple[ChecklistStep, ...]:
    """The checklist file's steps; ValueError naming the file for a bad row."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    steps = []
    for i, row in enumerate(data.get("step", []), 1):
        try:
            step = ChecklistStep(
                case_type=normalise_case_type(row["type"]), step=str(row["step"]),
                step_en=str(row.get("step_en", "")), what=str(row.get("what", "")),
                unit=str(row.get("unit", "")),
                activities=tuple(str(a) for a in row.get("activities", ())),
                optional=bool(row.get("optional", False)),
            )
        except (KeyError, ValueError) as exc:
            raise ValueError(f"{path}: step {i}: {exc}") from None
        unknown = [a for a in step.activities if a not in ACTIVITY_TYPES]
        if unknown:
            raise ValueError(f"{path}: step {i}: unknown AV-5 activity {', '.join(unknown)}")
        steps.append(step)
    return tuple(steps)


def normalise_case_type(value: str) -> str:
    """The Chinese case type for Chinese or English input; ValueError if unknown."""
    v = value.strip()
    if v in CASE_TYPES:
        return v
    if v.lower() in _TYPE_ALIASES:
        return _TYPE_ALIASES[v.lower()]
    raise ValueError(f"unknown case type {value!r}; expected one of "
                     + ", ".join(f"{zh} ({en})" for zh, en in CASE_TYPES.items()))


def normalise_step(value: str, checklist: tuple[ChecklistStep, ...]) -> str:
    """A step name given in Chinese or in the checklist's English; unknown names are kept
    as given (a step the checklist does not require may still be recorded)."""
    v = value.strip()
    for s in checklist:
        if v == s.step or v.lower() == s.step_en.lower():
            return s.step
    return v
