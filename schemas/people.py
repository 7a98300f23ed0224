"""People, devices and the ONE permission table (AUX-2..13, AV-2, AV-10, AV-15).

Staff and devices are event records: every registration and every change (status,
screening, custodian) is a new row, never an edit. Each row is a full snapshot of the
person or device after the change, numbered per subject (`seq`), so the current state is
simply the row with the highest `seq` and the history is the rows in order.

This module imports nothing from `schemas.records` (records imports it to extend
`TABLES`), so the record types here only carry their `TABLE` name.

Who may do what is decided here, as data: `PERMISSIONS` maps each role to the actions it
allows. `AUX10_FORBIDDEN` is checked on top of the roles: an auxiliary may never do these,
whatever roles a mistaken registration gave them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import ClassVar

# --- actions (the lead uses these names in ingest, retention, export) ----------------------
INGEST = "ingest"
LABEL = "label"
VIEW = "view"
QUERY = "query"
VERIFY = "verify"
REPORT = "report"
CASE_MANAGE = "case.manage"  # open a case, link recordings, documents, AV-13 events, exempt
CASE_UNLINK = "case.unlink"  # take a recording out of a case (its retention stays)
CASE_CLOSE = "case.close"  # close with the file's retention term; lifts holds (two people)
EXEMPTION_ACK = "exemption.acknowledge"  # AV-6: the section chief acknowledges
RETENTION_RAISE = "retention.raise"
RETENTION_LOWER = "retention.lower"  # nobody: retention only grows (AV-11)
DELETE = "delete"  # nobody: AV-15; attempts are still audited (AV-16)
HOLD_PLACE = "hold.place"
HOLD_LIFT = "hold.lift"  # plus the two-person rule
EXPORT_REQUEST = "export.request"
EXPORT_APPROVE = "export.approve"  # by someone other than the requester (AV-15)
STAFF_VIEW = "staff.view"
STAFF_MANAGE = "staff.manage"
STAFF_ROSTER = "staff.roster"  # the public roster (AUX-13): every role
DEVICE_VIEW = "device.view"
DEVICE_MANAGE = "device.manage"
AUDIT_VIEW = "audit.view"
AUDIT_VERIFY = "audit.verify"
# Merge the catalog's small committed parts into large ones (no row changes; the night
# job's maintenance): what writes catalog parts routinely, and the system administrator.
CATALOG_COMPACT = "catalog.compact"
# Not in the permission table: who an OS account may act as is decided by the identities
# file (pipeline.people.identity); a refused claim and every service delegation is audited
# under this action.
ACT_AS = "identity.act_as"

ACTIONS: tuple[str, ...] = (
    INGEST, LABEL, VIEW, QUERY, VERIFY, REPORT, CASE_MANAGE, CASE_UNLINK, CASE_CLOSE,
    EXEMPTION_ACK,
    RETENTION_RAISE, RETENTION_LOWER, DELETE, HOLD_PLACE, HOLD_LIFT,
    EXPORT_REQUEST, EXPORT_APPROVE, STAFF_VIEW, STAFF_MANAGE, STAFF_ROSTER,
    DEVICE_VIEW, DEVICE_MANAGE, AUDIT_VIEW, AUDIT_VERIFY, CATALOG_COMPACT,
)

# AUX-10: never for auxiliary staff, whatever their roles say.
AUX10_FORBIDDEN: frozenset[str] = frozenset({
    RETENTION_RAISE, RETENTION_LOWER, DELETE, HOLD_PLACE, HOLD_LIFT,
    EXPORT_REQUEST, EXPORT_APPROVE, EXEMPTION_ACK, STAFF_MANAGE, DEVICE_MANAGE,
    CASE_UNLINK, CASE_CLOSE, CATALOG_COMPACT,
})

# --- roles and the permission table --------------------------------------------------------
OFFICER = "officer"
AUXILIARY = "auxiliary"
SECTION_CHIEF = "section_chief"
LEGAL_UNIT = "legal_unit"
RECORDS_OFFICER = "records_officer"
ANALYST = "analyst"
ADMINISTRATOR = "administrator"

ROLES: tuple[str, ...] = (
    OFFICER, AUXILIARY, SECTION_CHIEF, LEGAL_UNIT, RECORDS_OFFICER, ANALYST, ADMINISTRATOR,
)

ROLE_TITLES_ZH: dict[str, str] = {
    OFFICER: "行政执法人员",
    AUXILIARY: "行政执法辅助人员",
    SECTION_CHIEF: "科室负责人",
    LEGAL_UNIT: "法制机构",
    RECORDS_OFFICER: "档案管理",
    ANALYST: "数据分析",
    ADMINISTRATOR: "系统管理员",
}

_READ = frozenset({VIEW, QUERY, VERIFY, STAFF_ROSTER, AUDIT_VERIFY})

PERMISSIONS: dict[str, frozenset[str]] = {
    # AUX-9: clerical work, data entry, equipment care, assisting officers.
    AUXILIARY: frozenset({INGEST, LABEL, VIEW, STAFF_ROSTER}),
    OFFICER: _READ | {INGEST, LABEL, CASE_MANAGE, EXPORT_REQUEST, DEVICE_VIEW, CATALOG_COMPACT},
    SECTION_CHIEF: _READ | {
        REPORT, EXEMPTION_ACK, EXPORT_REQUEST, EXPORT_APPROVE, HOLD_PLACE, STAFF_VIEW,
        DEVICE_VIEW, AUDIT_VIEW, CASE_MANAGE, CASE_UNLINK, CASE_CLOSE,
    },
    LEGAL_UNIT: _READ | {
        REPORT, RETENTION_RAISE, HOLD_PLACE, HOLD_LIFT, EXPORT_REQUEST, EXPORT_APPROVE,
        STAFF_VIEW, DEVICE_VIEW, AUDIT_VIEW,
    },
    RECORDS_OFFICER: _READ | {
        LABEL, CASE_MANAGE, CASE_UNLINK, CASE_CLOSE, RETENTION_RAISE, HOLD_PLACE, HOLD_LIFT,
        EXPORT_REQUEST, DEVICE_VIEW,
    },
    ANALYST: _READ | {REPORT},
    # Manages people and devices, reads the audit log; approves nothing (separation of duty).
    ADMINISTRATOR: _READ | {
        STAFF_VIEW, STAFF_MANAGE, DEVICE_VIEW, DEVICE_MANAGE, AUDIT_VIEW, CATALOG_COMPACT,
    },
}

assert set(PERMISSIONS) == set(ROLES)
assert all(a in ACTIONS for acts in PERMISSIONS.values() for a in acts)
assert not any(a in PERMISSIONS[AUXILIARY] for a in AUX10_FORBIDDEN)


def allowed_actions(roles: list[str] | tuple[str, ...]) -> frozenset[str]:
    """Every action any of `roles` allows (an unknown role allows nothing). Pure."""
    out: frozenset[str] = frozenset()
    for r in roles:
        out |= PERMISSIONS.get(r, frozenset())
    return out


# --- personnel ------------------------------------------------------------------------------
KIND_OFFICER = "officer"  # certified, holds an enforcement certificate (行政执法证)
KIND_AUXILIARY = "auxiliary"  # AUX-2/3: no independent enforcement power
# A service identity (the nightly job): not a person, never on the roster; a service account
# acts as it only under a grant in the identities file (pipeline.people.identity).
KIND_SERVICE = "service"
KINDS: tuple[str, ...] = (KIND_OFFICER, KIND_AUXILIARY, KIND_SERVICE)

STATUS_PENDING = "pending"
STATUS_ACTIVE = "active"
STATUS_SUSPENDED = "suspended"
STATUS_DISMISSED = "dismissed"  # AUX-7(4), AUX-15: 解聘, final
STATUS_LEFT = "left"  # contract ended or resigned

STATUSES: dict[str, str] = {
    STATUS_PENDING: "待岗",
    STATUS_ACTIVE: "在岗",
    STATUS_SUSPENDED: "停岗",
    STATUS_DISMISSED: "解聘",
    STATUS_LEFT: "离岗",
}

SCREENING_PASSED = "passed"
SCREENING_FAILED = "failed"
SCREENING_PENDING = "pending"
SCREENING_NA = "not_applicable"  # certified officers: screened as civil servants, not here
SCREENINGS: tuple[str, ...] = (SCREENING_PASSED, SCREENING_FAILED, SCREENING_PENDING)

MIN_AGE_YEARS = 18  # AUX-6: 年满十八周岁
MAX_FIRST_HIRE_AGE_YEARS = 35  # AUX-6: 首次聘用时年龄不超过三十五周岁

EVENT_REGISTERED = "registered"
EVENT_STATUS = "status"
EVENT_SCREENING = "screening"
EVENT_CUSTODIAN = "custodian"


@dataclass(frozen=True, slots=True)
class StaffEventRecord:
    """One registration or change of one person: a full snapshot after the change.

    Private fields (never on the public roster, AUX-13): `id_number`, `birth_date_iso`,
    the AUX-8 contract fields (`agency`, `work_area`, `contract_*`) and the screening.
    """

    TABLE: ClassVar[str] = "staff_events"
    staff_id: str
    seq: int  # 1 for the registration, then +1 per change of this person
    event: str  # registered | status | screening
    at_utc: dt.datetime  # when the change takes effect / was made (passed in)
    actor_id: str
    reason: str
    kind: str  # officer | auxiliary
    name: str
    section: str
    post: str
    roles: list[str]
    status: str
    certificate_number: str | None  # officers: enforcement certificate
    id_number: str | None
    birth_date_iso: str | None  # YYYY-MM-DD
    first_hired_iso: str | None  # YYYY-MM-DD, the FIRST hire (AUX-6 age limit)
    agency: str | None  # AUX-8 labour-dispatch / HR agency
    work_area: str | None
    contract_start_iso: str | None
    contract_end_iso: str | None
    screening: str  # passed | failed | pending (AUX-7) | not_applicable (officers)


# --- devices (AV-2, AV-10) ----------------------------------------------------------------
DEVICE_TYPES: dict[str, str] = {
    "video_surveillance": "视频监控",
    "camera": "照相机",
    "video_recorder": "录像机",
    "voice_recorder": "录音笔",
    "body_camera": "执法记录仪",
    "handheld_terminal": "手持终端机",
}

DEVICE_IN_SERVICE = "in_service"
DEVICE_RETIRED = "retired"


@dataclass(frozen=True, slots=True)
class DeviceEventRecord:
    """One registration or change of one recording device: a full snapshot after it."""

    TABLE: ClassVar[str] = "device_events"
    serial: str  # normalised: see `normalize_serial`
    seq: int
    event: str  # registered | custodian | status
    at_utc: dt.datetime
    actor_id: str
    reason: str
    device_type: str  # a key of DEVICE_TYPES
    section: str
    custodian_id: str  # AV-10: the person who keeps and maintains it
    make: str | None
    model: str | None
    status: str  # in_service | retired


def normalize_serial(serial: str) -> str:
    """The registry's form of a serial: trimmed, upper case (metadata and labels differ)."""
    return serial.strip().upper()


PEOPLE_TABLES: tuple[type[StaffEventRecord] | type[DeviceEventRecord], ...] = (
    StaffEventRecord,
    DeviceEventRecord,
)
