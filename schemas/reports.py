"""The compliance report (`custody report`, AV-16): its records, headings and fault kinds.

A report is gathered once (`pipeline.reports.build_report`) into these frozen records and
then rendered many ways (terminal, JSON, CSV, HTML, PDF) from the same values, so every
format says the same thing. Counts only: the findings themselves stay in the catalog.

Words a town official reads are given in Chinese and English. The Chinese comes from the
regulation (regulations.zh.txt, 第十六条 for the faults) and from RULES.md.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

# Section headings of the report: key -> (Chinese, English).
HEADINGS: dict[str, tuple[str, str]] = {
    "title": ("行政执法音像记录合规报告", "Compliance report on enforcement recordings"),
    "scope": ("报告范围", "Scope"),
    "period": ("统计期间", "Period"),
    "by_rule": ("按规则统计", "Findings per rule"),
    "by_rule_info": ("提示信息（不计为问题）",
                     "For information (facts the checks read, not faults)"),
    "by_officer": ("按执法人员统计", "Findings per officer"),
    "by_section": ("按科室统计", "Findings per section"),
    "trend": ("期间趋势", "Trend over the period"),
    "coverage": ("事项清单覆盖情况", "Checklist coverage per case (AV-ANNEX)"),
    "coverage_missing": ("有缺失环节的案件", "Cases with a step missing"),
    "faults": ("执法过错（第十六条）", "Faults per officer (AV-16)"),
    "unread": ("未纳入统计的检查", "Checks not counted"),
}

# Column headings.
COLUMNS: dict[str, tuple[str, str]] = {
    "rule": ("规则", "Rule"),
    "code": ("代码", "Code"),
    "title": ("名称", "Title"),
    "findings": ("发现数", "Findings"),
    "subjects": ("涉及对象", "Subjects"),
    "officer": ("执法人员", "Officer"),
    "section": ("科室", "Section"),
    "case": ("案号", "Case number"),
    "case_type": ("案件类型", "Case type"),
    "entity": ("被检查单位", "Inspected entity"),
    "step": ("执法环节", "Step"),
    "covered_by": ("覆盖情况", "Covered by"),
    "day": ("日期", "Day"),
    "week": ("周（起始日）", "Week starting"),
    "cases": ("案件数", "Cases"),
    "complete": ("全部覆盖", "Fully covered"),
    "incomplete": ("有缺失", "With a step missing"),
    "steps_missing": ("缺失环节数", "Steps missing"),
    "covered": ("已覆盖环节", "Steps covered"),
    "missing_steps": ("缺失环节", "Steps missing"),
    "total": ("合计", "Total"),
}

# How a step of the checklist is covered (check_av5_coverage.covered_by).
COVERAGE: dict[str | None, tuple[str, str]] = {
    "recording": ("已录像", "recording"),
    "exemption": ("不录制说明已确认", "acknowledged exemption"),
    None: ("缺失", "missing"),
}

UNATTRIBUTED = "（未标注）"  # a finding whose recording or case names no officer / section


@dataclass(frozen=True, slots=True)
class FaultKind:
    """One kind of AV-16 fault counted per officer, and what counts as one.

    A finding counts when its code is in `codes` or its category in `categories`; an audit
    record counts when it was REFUSED and its action is in `refused_actions`. Membership is
    by code and category (schemas.findings), so a new code of a counted category is
    counted without a change here."""

    key: str
    title_zh: str
    title_en: str
    codes: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    refused_actions: frozenset[str] = frozenset()


# AV-16 (第十六条): (一) not recording, (四) editing or falsifying, (五) storing so that records
# are lost; the attempted deletions and unapproved releases the audit log refused (AV-15).
FAULT_KINDS: tuple[FaultKind, ...] = (
    FaultKind("not_recording", "不制作或不按要求制作执法过程记录", "Not recording",
              codes=frozenset({"STEP_NOT_RECORDED"})),
    FaultKind("unexplained_interruption", "中断后未作语音说明",
              "Interruptions without explanation",
              codes=frozenset({"UNEXPLAINED_INTERRUPTION"})),
    FaultKind("late_storage", "超过24小时未存储", "Late storage",
              codes=frozenset({"INGEST_LATE"})),
    FaultKind("edits_found", "对执法记录信息进行删改", "Edits found",
              categories=frozenset({"edit"})),
    FaultKind("refused_deletion", "删除或降低保存期限被拒绝", "Refused deletions",
              refused_actions=frozenset({"delete", "retention.lower"})),
    FaultKind("refused_release", "未经批准对外提供或解除保全被拒绝", "Refused releases",
              refused_actions=frozenset({"export.request", "export.approve", "hold.lift"})),
)


@dataclass(frozen=True, slots=True)
class Period:
    """[start_utc, end_utc) and how a person wrote it (`2026-11`, `2026-11-01..2026-11-15`);
    the days are days of `zone`."""

    label: str
    first_day: dt.date
    last_day: dt.date  # inclusive
    zone: str
    start_utc: dt.datetime
    end_utc: dt.datetime


@dataclass(frozen=True, slots=True)
class Filters:
    section: str | None = None
    officer: str | None = None
    case: str | None = None


@dataclass(frozen=True, slots=True)
class RuleCount:
    """Findings of one code in the report's scope."""

    rule: str
    code: str
    title_zh: str
    title_en: str
    category: str
    severity: str
    findings: int
    subjects: int  # distinct recordings (else cases, devices) they concern


@dataclass(frozen=True, slots=True)
class Breakdown:
    """Findings of one code for one officer in one section (a finding naming two officers
    is counted once for each)."""

    officer: str
    section: str
    code: str
    findings: int


@dataclass(frozen=True, slots=True)
class TrendPoint:
    day: dt.date
    rule: str
    findings: int


@dataclass(frozen=True, slots=True)
class CoverageRow:
    case_number: str
    case_type: str | None
    inspected_entity: str | None
    section: str | None
    step: str
    step_en: str
    covered_by: str | None  # recording | exemption | None (missing)


@dataclass(frozen=True, slots=True)
class FaultCount:
    officer: str
    kind: str  # FaultKind.key
    count: int


@dataclass(frozen=True, slots=True)
class Report:
    period: Period
    filters: Filters
    generated_at_utc: dt.datetime
    total_findings: int
    by_rule: tuple[RuleCount, ...]
    breakdown: tuple[Breakdown, ...]
    trend: tuple[TrendPoint, ...]
    coverage: tuple[CoverageRow, ...]
    faults: tuple[FaultCount, ...]
    unread_checks: tuple[str, ...] = ()  # check views this report could not count

    @property
    def info_findings(self) -> int:
        """Findings of severity info: facts a check reads (NO_SPEECH_AT_START tells the AV-9
        case check a file opened without speech), shown apart, never a fault."""
        return sum(r.findings for r in self.by_rule if r.severity == "info")

    @property
    def actionable_findings(self) -> int:
        """Findings of severity warning or worse (a code the report does not know counts
        here): what makes `custody report` exit 1, as `custody ingest` does."""
        return self.total_findings - self.info_findings
