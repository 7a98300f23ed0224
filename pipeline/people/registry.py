"""Personnel and device registries (AUX-6/7/8, AUX-13, AV-2, AV-10) as catalog events.

Every registration and change is one appended `StaffEventRecord` / `DeviceEventRecord`
(a full snapshot after the change) committed as its own catalog batch; nothing is
rewritten. The current state of a person or device is its row with the highest `seq`;
its history is all its rows in order.

The rules are pure functions (`registration_problem`, `status_problem`,
`device_problem`) that return a one-line reason or None, so they are tested without a
catalog. Every write goes through an `Authority` (pipeline.people.permissions): it checks the
actor's permission, and writes exactly one audit record per attempt, allowed or refused
(by permission or by one of these rules). Times are passed in; nothing here reads a clock.

The registry caches what it read: authorising every file of an ingest must not query the
catalog every time. `reload()` re-reads it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline.catalog.core import Catalog
from pipeline.people.bootstrap import bootstrap_refusal, is_bootstrap
from pipeline.rules.devices import DeviceIndex
from schemas.people import (
    ADMINISTRATOR,
    AUXILIARY,
    DEVICE_IN_SERVICE,
    DEVICE_MANAGE,
    DEVICE_TYPES,
    EVENT_CUSTODIAN,
    EVENT_REGISTERED,
    EVENT_SCREENING,
    EVENT_STATUS,
    KIND_AUXILIARY,
    KIND_OFFICER,
    KIND_SERVICE,
    KINDS,
    MAX_FIRST_HIRE_AGE_YEARS,
    MIN_AGE_YEARS,
    OFFICER,
    ROLES,
    SCREENING_FAILED,
    SCREENING_NA,
    SCREENING_PASSED,
    SCREENING_PENDING,
    SCREENINGS,
    STAFF_MANAGE,
    STATUS_ACTIVE,
    STATUS_DISMISSED,
    STATUS_PENDING,
    STATUSES,
    DeviceEventRecord,
    StaffEventRecord,
    normalize_serial,
)

if TYPE_CHECKING:
    from pipeline.people.permissions import Authority


@dataclass(frozen=True, slots=True)
class NewStaff:
    """What a registration gives. Officers need a certificate number; auxiliaries need a
    birth date, first-hire date and the AUX-8 contract fields."""

    staff_id: str
    kind: str
    name: str
    section: str
    post: str
    roles: tuple[str, ...] = ()
    status: str = STATUS_ACTIVE
    screening: str | None = None  # auxiliaries: passed | failed | pending (AUX-7)
    certificate_number: str | None = None
    id_number: str | None = None
    birth_date: dt.date | None = None
    first_hired: dt.date | None = None
    agency: str | None = None
    work_area: str | None = None
    contract_start: dt.date | None = None
    contract_end: dt.date | None = None

    def effective_roles(self) -> tuple[str, ...]:
        if self.roles:
            return tuple(dict.fromkeys(self.roles))
        return (AUXILIARY,) if self.kind == KIND_AUXILIARY else (OFFICER,)

    def effective_screening(self) -> str:
        if self.screening:
            return self.screening
        return SCREENING_NA if self.kind in (KIND_OFFICER, KIND_SERVICE) else SCREENING_PENDING


def age_on(birth: dt.date, day: dt.date) -> int:
    """Whole years of age on `day` (周岁). Pure."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def _who(staff_id: str, name: str | None) -> str:
    return f"{staff_id} ({name})" if name else staff_id


# --- the rules, pure ----------------------------------------------------------------------
def registration_problem(new: NewStaff, existing: StaffEventRecord | None) -> str | None:
    """Why `new` may not be registered (one line naming the person and the rule), or None."""
    who = _who(new.staff_id, new.name)
    if existing is not None:
        return (f"{who}: already registered as {_who(existing.staff_id, existing.name)}; "
                "change a person with a status event, never by registering again")
    if not new.staff_id.strip() or not new.name.strip() or not new.section.strip():
        return f"{who}: staff number, name and section are required"
    if new.kind not in KINDS:
        return f"{who}: kind must be one of {', '.join(KINDS)}, not {new.kind!r}"
    roles = new.effective_roles()
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        return f"{who}: unknown role {unknown[0]!r} (roles: {', '.join(ROLES)})"
    if new.status not in (STATUS_ACTIVE, STATUS_PENDING):
        return f"{who}: a registration starts as active or pending, not {new.status!r}"
    screening = new.effective_screening()
    if screening not in (*SCREENINGS, SCREENING_NA):
        return f"{who}: screening must be one of {', '.join(SCREENINGS)}, not {screening!r}"
    if new.kind == KIND_SERVICE:
        if not new.roles:
            return f"{who}: a service identity needs its roles given (--role)"
        if AUXILIARY in roles or ADMINISTRATOR in roles:
            return (f"{who}: a service identity may hold neither the auxiliary nor the "
                    "administrator role")
        if screening != SCREENING_NA:
            return f"{who}: a service identity has no screening"
        return None
    if new.kind == KIND_OFFICER:
        if not new.certificate_number:
            return f"{who}: a certified officer needs an enforcement certificate number"
        if AUXILIARY in roles:
            return f"{who}: an officer cannot hold the auxiliary role"
        return None
    # Auxiliary staff.
    if roles != (AUXILIARY,):
        return (f"{who}: refused by AUX-3: auxiliary staff have no independent enforcement "
                f"power and hold only the auxiliary role, not {', '.join(roles)}")
    missing = [n for n, v in (("post", new.post), ("agency", new.agency),
                              ("work area", new.work_area),
                              ("contract start", new.contract_start),
                              ("contract end", new.contract_end),
                              ("birth date", new.birth_date),
                              ("first-hire date", new.first_hired)) if not v]
    if missing:
        return f"{who}: refused by AUX-8: auxiliary staff need {', '.join(missing)}"
    assert new.birth_date and new.first_hired and new.contract_start and new.contract_end
    if new.contract_end <= new.contract_start:
        return (f"{who}: refused by AUX-8: contract ends {new.contract_end} on or before it "
                f"starts {new.contract_start}")
    age = age_on(new.birth_date, new.first_hired)
    if not MIN_AGE_YEARS <= age <= MAX_FIRST_HIRE_AGE_YEARS:
        return (f"{who}: refused by AUX-6: aged {age} at first hire on {new.first_hired} "
                f"(born {new.birth_date}); auxiliary staff must be {MIN_AGE_YEARS} to "
                f"{MAX_FIRST_HIRE_AGE_YEARS} at first hire")
    if screening == SCREENING_FAILED:
        return (f"{who}: refused by AUX-7: the background screening failed; a disqualified "
                "person may not be hired or activated")
    if new.status == STATUS_ACTIVE and screening != SCREENING_PASSED:
        return (f"{who}: refused by AUX-7: screening is {screening}; an auxiliary is "
                "activated only after passing it (register as pending until then)")
    return None


def status_problem(person: StaffEventRecord, status: str) -> str | None:
    """Why `person` may not move to `status`, or None. Pure."""
    who = _who(person.staff_id, person.name)
    if status not in STATUSES:
        return f"{who}: status must be one of {', '.join(STATUSES)}, not {status!r}"
    if status == person.status:
        return f"{who}: already {status}"
    if status == STATUS_ACTIVE:
        if person.status == STATUS_DISMISSED:
            return (f"{who}: refused by AUX-7: dismissed for breaking rules; a dismissed person "
                    "may not be hired or activated again")
        if person.kind == KIND_AUXILIARY and person.screening != SCREENING_PASSED:
            return (f"{who}: refused by AUX-7: screening is {person.screening}; a person who "
                    "has not passed screening cannot be activated")
    return None


def device_problem(
    serial: str,
    device_type: str,
    section: str,
    custodian: StaffEventRecord | None,
    custodian_id: str,
) -> str | None:
    """Why a device may not have these fields (AV-2 type, AV-10 custodian), or None. Pure."""
    if not serial:
        return "a device needs a serial number"
    if device_type not in DEVICE_TYPES:
        kinds = ", ".join(f"{k} ({v})" for k, v in DEVICE_TYPES.items())
        return f"device {serial}: type must be one of {kinds}, not {device_type!r}"
    if not section.strip():
        return f"device {serial}: a section is required (AV-10)"
    if custodian is None:
        return f"device {serial}: refused by AV-10: custodian {custodian_id} is not registered"
    if custodian.status != STATUS_ACTIVE:
        return (f"device {serial}: refused by AV-10: custodian "
                f"{_who(custodian.staff_id, custodian.name)} is {custodian.status}, not active")
    if custodian.section != section:
        return (f"device {serial}: refused by AV-10: custodian "
                f"{_who(custodian.staff_id, custodian.name)} is in section {custodian.section}, "
                f"the device in {section}; each section names a custodian for its own devices")
    return None


def device_type_code(text: str) -> str:
    """A device type from its code or its Chinese name (执法记录仪 -> body_camera)."""
    t = text.strip()
    for code, zh in DEVICE_TYPES.items():
        if t in (code, zh):
            return code
    return t


# --- the registry ------------------------------------------------------------------------
def _snapshot(rows: Sequence[Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for r in rows:
        out.setdefault(r[0], []).append(r[1])
    for hist in out.values():
        hist.sort(key=lambda e: e.seq)
    return out


def _utc(t: Any) -> Any:
    return t.astimezone(dt.UTC) if isinstance(t, dt.datetime) else t


class Registry:
    """Staff and devices of one catalog, read once and kept current by this process's writes."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._staff: dict[str, list[StaffEventRecord]] | None = None
        self._devices: dict[str, list[DeviceEventRecord]] | None = None

    def reload(self) -> None:
        self._staff = _snapshot([(r.staff_id, r) for r in self._read(StaffEventRecord)])
        self._devices = _snapshot([(r.serial, r) for r in self._read(DeviceEventRecord)])

    def _read(self, cls: Any) -> list[Any]:
        # Every table has a view, even before its first row (the catalog supplies an empty
        # typed part), on a local directory and on S3 alike.
        rows = self.catalog.read_table(cls).to_pylist()
        names = [f.name for f in dataclasses.fields(cls)]
        return [cls(**{n: _utc(r[n]) for n in names}) for r in rows]

    def _staff_map(self) -> dict[str, list[StaffEventRecord]]:
        if self._staff is None:
            self.reload()
        assert self._staff is not None
        return self._staff

    def _device_map(self) -> dict[str, list[DeviceEventRecord]]:
        if self._devices is None:
            self.reload()
        assert self._devices is not None
        return self._devices

    # --- reads --------------------------------------------------------------------------
    def is_empty(self) -> bool:
        return not self._staff_map()

    def staff(self, staff_id: str) -> StaffEventRecord | None:
        """The person's current state (latest event), or None if never registered."""
        hist = self._staff_map().get(staff_id)
        return hist[-1] if hist else None

    def all_staff(self) -> list[StaffEventRecord]:
        return [h[-1] for _, h in sorted(self._staff_map().items())]

    def history(self, staff_id: str) -> list[StaffEventRecord]:
        return list(self._staff_map().get(staff_id, []))

    def device(self, serial: str) -> DeviceEventRecord | None:
        hist = self._device_map().get(normalize_serial(serial))
        return hist[-1] if hist else None

    def devices(self) -> list[DeviceEventRecord]:
        return [h[-1] for _, h in sorted(self._device_map().items())]

    def device_history(self, serial: str) -> list[DeviceEventRecord]:
        return list(self._device_map().get(normalize_serial(serial), []))

    def device_index(self) -> DeviceIndex:
        """A snapshot for ingest: `lookup(serial)`, `classify(serial)`, `is_unknown(serial)`."""
        return DeviceIndex(self.devices())

    def lookup_device(self, serial: str | None) -> DeviceEventRecord | None:
        """The registered device with this serial, for linking a file to it; or None."""
        return self.device_index().lookup(serial)

    # --- writes (each authorised and audited) --------------------------------------------
    def _commit(self, cls: Any, rec: Any) -> None:
        batch = self.catalog.batch()
        batch.add(cls, [rec])
        batch.commit(rec.at_utc.astimezone(dt.UTC).date())

    def add_staff(
        self, auth: Authority, actor_id: str, new: NewStaff, *, at_utc: dt.datetime,
        reason: str = "",
    ) -> StaffEventRecord:
        """Register a person (AUX-6, AUX-7, AUX-8 enforced). The very first registration of
        an empty registry is the bootstrap: an administrator registering themselves."""
        problem = registration_problem(new, self.staff(new.staff_id))
        if is_bootstrap(self.is_empty(), actor_id, new.staff_id) and problem is None:
            problem = bootstrap_refusal(_who(new.staff_id, new.name), new.effective_roles())
            auth.authorize_bootstrap(actor_id, STAFF_MANAGE, new.staff_id, refusal=problem)
        else:
            auth.authorize(actor_id, STAFF_MANAGE, new.staff_id, refusal=problem)
        rec = StaffEventRecord(
            staff_id=new.staff_id, seq=1, event=EVENT_REGISTERED, at_utc=at_utc,
            actor_id=actor_id, reason=reason, kind=new.kind, name=new.name,
            section=new.section, post=new.post, roles=list(new.effective_roles()),
            status=new.status, certificate_number=new.certificate_number,
            id_number=new.id_number, birth_date_iso=_iso(new.birth_date),
            first_hired_iso=_iso(new.first_hired), agency=new.agency,
            work_area=new.work_area, contract_start_iso=_iso(new.contract_start),
            contract_end_iso=_iso(new.contract_end), screening=new.effective_screening(),
        )
        self._commit(StaffEventRecord, rec)
        self._staff_map()[rec.staff_id] = [rec]
        return rec

    def _change(
        self, auth: Authority, actor_id: str, staff_id: str, event: str,
        problem: str | None, *, at_utc: dt.datetime, reason: str, **fields: Any,
    ) -> StaffEventRecord:
        current = self.staff(staff_id)
        if current is None:
            problem = f"{staff_id}: not registered"
        auth.authorize(actor_id, STAFF_MANAGE, staff_id, refusal=problem)
        assert current is not None
        rec = dataclasses.replace(current, seq=current.seq + 1, event=event, at_utc=at_utc,
                                  actor_id=actor_id, reason=reason, **fields)
        self._commit(StaffEventRecord, rec)
        self._staff_map()[staff_id].append(rec)
        return rec

    def set_status(
        self, auth: Authority, actor_id: str, staff_id: str, status: str, *,
        at_utc: dt.datetime, reason: str,
    ) -> StaffEventRecord:
        """Append a status change (activate, suspend, dismiss...); the old status stays in
        the history."""
        current = self.staff(staff_id)
        problem = status_problem(current, status) if current else None
        return self._change(auth, actor_id, staff_id, EVENT_STATUS, problem, at_utc=at_utc,
                            reason=reason, status=status)

    def set_screening(
        self, auth: Authority, actor_id: str, staff_id: str, screening: str, *,
        at_utc: dt.datetime, reason: str,
    ) -> StaffEventRecord:
        """Record a screening result (AUX-7). A failed one blocks activation for good."""
        problem = None
        if screening not in SCREENINGS:
            problem = f"{staff_id}: screening must be one of {', '.join(SCREENINGS)}"
        return self._change(auth, actor_id, staff_id, EVENT_SCREENING, problem, at_utc=at_utc,
                            reason=reason, screening=screening)

    def add_device(
        self, auth: Authority, actor_id: str, serial: str, device_type: str, section: str,
        custodian_id: str, *, at_utc: dt.datetime, make: str | None = None,
        model: str | None = None, reason: str = "",
    ) -> DeviceEventRecord:
        """Register a recording device (AV-2 type) with its section's custodian (AV-10)."""
        key = normalize_serial(serial)
        code = device_type_code(device_type)
        problem = device_problem(key, code, section, self.staff(custodian_id), custodian_id)
        if problem is None and self.device(key) is not None:
            problem = f"device {key}: already registered"
        auth.authorize(actor_id, DEVICE_MANAGE, f"device:{key}", refusal=problem)
        rec = DeviceEventRecord(
            serial=key, seq=1, event=EVENT_REGISTERED, at_utc=at_utc, actor_id=actor_id,
            reason=reason, device_type=code, section=section, custodian_id=custodian_id,
            make=make, model=model, status=DEVICE_IN_SERVICE,
        )
        self._commit(DeviceEventRecord, rec)
        self._device_map()[key] = [rec]
        return rec

    def set_custodian(
        self, auth: Authority, actor_id: str, serial: str, custodian_id: str, *,
        at_utc: dt.datetime, reason: str,
    ) -> DeviceEventRecord:
        """Hand a device to another custodian of its section (AV-10)."""
        key = normalize_serial(serial)
        current = self.device(key)
        if current is None:
            problem: str | None = f"device {key}: not registered"
        else:
            problem = device_problem(key, current.device_type, current.section,
                                     self.staff(custodian_id), custodian_id)
        auth.authorize(actor_id, DEVICE_MANAGE, f"device:{key}", refusal=problem)
        assert current is not None
        rec = dataclasses.replace(current, seq=current.seq + 1, event=EVENT_CUSTODIAN,
                                  at_utc=at_utc, actor_id=actor_id, reason=reason,
                                  custodian_id=custodian_id)
        self._commit(DeviceEventRecord, rec)
        self._device_map()[key].append(rec)
        return rec


def _iso(d: dt.date | None) -> str | None:
    return d.isoformat() if d else None
