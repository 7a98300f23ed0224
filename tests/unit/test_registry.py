"""Personnel and device registries: AUX-6/7/8 at registration, events never rewritten, AV-10."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from pathlib import Path

import pytest

from pipeline.audit.log import AuditLog
from pipeline.catalog.core import Catalog
from pipeline.people.permissions import Authority, PermissionDenied, RuleRefused
from pipeline.people.registry import (
    NewStaff,
    Registry,
    age_on,
    registration_problem,
)
from pipeline.rules.devices import DEVICE_NO_SERIAL, DEVICE_REGISTERED, DEVICE_UNKNOWN
from pipeline.storage.local import LocalStore
from schemas.records import ChunkRecord
from tests.anyone import AnyoneAuthority

AT = dt.datetime(2025, 6, 1, 9, 0, tzinfo=dt.UTC)


def clock() -> dt.datetime:
    return AT


def admin() -> NewStaff:
    return NewStaff("A-1", "officer", "张三", "综合执法队", "队长", roles=("administrator",),
                    certificate_number="ZJ-0001")


def aux(staff_id: str = "X-1", *, born: dt.date = dt.date(1995, 5, 1),
        hired: dt.date = dt.date(2025, 6, 1), **kw: object) -> NewStaff:
    fields: dict[str, object] = dict(
        staff_id=staff_id, kind="auxiliary", name="王五", section="综合执法队", post="协管员",
        screening="passed", id_number="330827199505010011", birth_date=born, first_hired=hired,
        agency="遂昌县人力资源公司", work_area="大柘镇", contract_start=dt.date(2025, 6, 1),
        contract_end=dt.date(2027, 5, 31),
    )
    fields.update(kw)
    return NewStaff(**fields)  # type: ignore[arg-type]


@pytest.fixture
def world(tmp_path: Path) -> tuple[Registry, Authority, AuditLog]:
    catalog = Catalog(tmp_path / "catalog")
    audit = AuditLog.for_catalog(catalog.root, store=LocalStore(tmp_path / "store"), clock=clock)
    reg = Registry(catalog)
    auth = AnyoneAuthority(reg, audit)
    reg.add_staff(auth, "A-1", admin(), at_utc=AT)
    yield reg, auth, audit
    audit.close()


def test_age_is_counted_in_whole_years():
    assert age_on(dt.date(1990, 6, 2), dt.date(2025, 6, 1)) == 34
    assert age_on(dt.date(1990, 6, 1), dt.date(2025, 6, 1)) == 35


def test_the_first_registration_is_an_administrator_registering_themselves(world):
    reg, _, audit = world
    assert reg.staff("A-1").roles == ["administrator"]  # type: ignore[union-attr]
    (rec,) = audit.show(actor_id="A-1", action="staff.manage")
    assert rec.result == "allowed" and "bootstrap" in rec.reason


def test_bootstrap_needs_an_administrator(tmp_path):
    catalog = Catalog(tmp_path / "c")
    with AuditLog.for_catalog(catalog.root, store=LocalStore(tmp_path / "s"),
                              clock=clock) as audit:
        reg = Registry(catalog)
        officer = dataclasses.replace(admin(), roles=("officer",))
        with pytest.raises(RuleRefused, match="first person registered must be an admin"):
            reg.add_staff(AnyoneAuthority(reg, audit), "A-1", officer, at_utc=AT)
        assert reg.is_empty()


def test_an_unregistered_person_cannot_register_anyone_once_bootstrapped(world):
    reg, auth, _ = world
    with pytest.raises(PermissionDenied, match="not in the personnel registry"):
        reg.add_staff(auth, "X-9", aux("X-9"), at_utc=AT)


def test_aux6_an_auxiliary_aged_36_at_first_hire_is_refused(world):
    reg, auth, audit = world
    with pytest.raises(RuleRefused) as exc:
        reg.add_staff(auth, "A-1", aux(born=dt.date(1989, 3, 1)), at_utc=AT)
    msg = str(exc.value)
    assert "X-1 (王五)" in msg and "AUX-6" in msg and "aged 36" in msg
    assert "\n" not in msg
    assert reg.staff("X-1") is None
    (rec,) = audit.show(object_id="X-1")
    assert rec.result == "refused" and "AUX-6" in rec.reason


def test_aux6_aged_35_at_first_hire_is_accepted(world):
    reg, auth, _ = world
    assert reg.add_staff(auth, "A-1", aux(born=dt.date(1990, 6, 1)), at_utc=AT)


def test_aux6_the_limit_is_at_first_hire_not_today(world):
    reg, auth, _ = world
    old_hand = aux(born=dt.date(1980, 1, 1), hired=dt.date(2010, 1, 1))
    assert reg.add_staff(auth, "A-1", old_hand, at_utc=AT).first_hired_iso == "2010-01-01"


def test_aux6_under_18_is_refused():
    problem = registration_problem(aux(born=dt.date(2008, 1, 1)), None)
    assert problem is not None and "AUX-6" in problem and "aged 17" in problem


def test_aux7_a_failed_screening_is_refused(world):
    reg, auth, _ = world
    with pytest.raises(RuleRefused, match=r"X-1 \(王五\): refused by AUX-7: .*screening failed"):
        reg.add_staff(auth, "A-1", aux(screening="failed", status="pending"), at_utc=AT)


def test_aux7_a_pending_screening_cannot_be_activated_until_passed(world):
    reg, auth, _ = world
    reg.add_staff(auth, "A-1", aux(screening="pending", status="pending"), at_utc=AT)
    with pytest.raises(RuleRefused, match="AUX-7"):
        reg.set_status(auth, "A-1", "X-1", "active", at_utc=AT, reason="start")
    reg.set_screening(auth, "A-1", "X-1", "passed", at_utc=AT, reason="checked")
    now = reg.set_status(auth, "A-1", "X-1", "active", at_utc=AT, reason="start")
    assert now.status == "active"


def test_aux7_a_dismissed_person_cannot_be_activated_again(world):
    reg, auth, _ = world
    reg.add_staff(auth, "A-1", aux(), at_utc=AT)
    reg.set_status(auth, "A-1", "X-1", "dismissed", at_utc=AT, reason="AUX-15")
    with pytest.raises(RuleRefused, match="dismissed"):
        reg.set_status(auth, "A-1", "X-1", "active", at_utc=AT, reason="rehire")


def test_aux8_contract_fields_are_required(world):
    reg, auth, _ = world
    with pytest.raises(RuleRefused, match="AUX-8: auxiliary staff need agency, contract end"):
        reg.add_staff(auth, "A-1", aux(agency=None, contract_end=None), at_utc=AT)


def test_aux3_an_auxiliary_holds_only_the_auxiliary_role():
    problem = registration_problem(aux(roles=("auxiliary", "legal_unit")), None)
    assert problem is not None and "AUX-3" in problem


def test_an_officer_needs_a_certificate_number():
    problem = registration_problem(dataclasses.replace(admin(), certificate_number=None), None)
    assert problem is not None and "certificate" in problem


def test_status_changes_are_appended_and_nothing_is_rewritten(world, tmp_path):
    reg, auth, _ = world
    reg.add_staff(auth, "A-1", aux(), at_utc=AT)
    parts = sorted((tmp_path / "catalog" / "batches").rglob("staff_events.parquet"))
    before = {p: p.read_bytes() for p in parts}
    later = AT + dt.timedelta(days=30)
    reg.set_status(auth, "A-1", "X-1", "suspended", at_utc=later, reason="investigation")
    assert {p: p.read_bytes() for p in parts} == before
    fresh = Registry(reg.catalog)  # state recomputed from the events alone
    assert [(h.seq, h.event, h.status) for h in fresh.history("X-1")] == [
        (1, "registered", "active"), (2, "status", "suspended")]
    assert fresh.staff("X-1").status == "suspended"  # type: ignore[union-attr]
    assert fresh.staff("X-1").id_number == "330827199505010011"  # type: ignore[union-attr]


def test_registering_the_same_staff_number_twice_is_refused(world):
    reg, auth, _ = world
    reg.add_staff(auth, "A-1", aux(), at_utc=AT)
    with pytest.raises(RuleRefused, match="already registered"):
        reg.add_staff(auth, "A-1", aux(), at_utc=AT)


def test_a_device_is_registered_and_found_by_serial_in_any_case(world):
    reg, auth, _ = world
    reg.add_staff(auth, "A-1", aux(), at_utc=AT)
    dev = reg.add_device(auth, "A-1", " dsj-a8-0042 ", "执法记录仪", "综合执法队", "X-1",
                         at_utc=AT, make="Hikvision", model="DS-MH2311")
    assert (dev.serial, dev.device_type, dev.custodian_id) == ("DSJ-A8-0042", "body_camera", "X-1")
    assert reg.lookup_device("dsj-a8-0042") == dev
    index = Registry(reg.catalog).device_index()
    assert index.classify("DSJ-A8-0042") == DEVICE_REGISTERED
    assert index.classify("OTHER-1") == DEVICE_UNKNOWN and index.is_unknown("OTHER-1")
    assert index.classify(None) == DEVICE_NO_SERIAL and index.is_unknown("")


def test_av10_a_custodian_from_another_section_is_refused(world):
    reg, auth, _ = world
    reg.add_staff(auth, "A-1", aux(section="市场监管"), at_utc=AT)
    with pytest.raises(RuleRefused, match=r"AV-10: custodian X-1 .* is in section 市场监管"):
        reg.add_device(auth, "A-1", "SN1", "camera", "综合执法队", "X-1", at_utc=AT)


def test_av2_an_unknown_device_type_is_refused(world):
    reg, auth, _ = world
    with pytest.raises(RuleRefused, match="type must be one of"):
        reg.add_device(auth, "A-1", "SN1", "drone", "综合执法队", "A-1", at_utc=AT)


def test_a_custodian_change_is_appended(world):
    reg, auth, _ = world
    reg.add_staff(auth, "A-1", aux(), at_utc=AT)
    reg.add_device(auth, "A-1", "SN1", "voice_recorder", "综合执法队", "A-1", at_utc=AT)
    reg.set_custodian(auth, "A-1", "SN1", "X-1", at_utc=AT, reason="handover")
    assert [d.custodian_id for d in Registry(reg.catalog).device_history("sn1")] == ["A-1", "X-1"]


def test_a_catalog_from_before_the_registry_reads_as_empty(tmp_path):
    """Made for real: a catalog with a batch of its own, a person and a device registered,
    then the registry's batches and the commit list (both newer than such a catalog)
    removed; the older rows stay readable."""
    catalog = Catalog(tmp_path / "c")
    b = catalog.batch("old")
    b.add(ChunkRecord, [ChunkRecord("a", 0, 0, 1, "f" * 64)])
    b.commit(AT.date())
    audit = AuditLog.for_catalog(catalog.root, store=LocalStore(tmp_path / "store"), clock=clock)
    reg = Registry(catalog)
    auth = AnyoneAuthority(reg, audit)
    reg.add_staff(auth, "A-1", admin(), at_utc=AT)  # the bootstrap administrator
    reg.add_device(auth, "A-1", "SN1", "voice_recorder", "综合执法队", "A-1", at_utc=AT)
    audit.close()
    parts = sorted(catalog.root.glob("batches/*/*/*_events.parquet"))
    assert sorted(p.name for p in parts) == ["device_events.parquet", "staff_events.parquet"]
    for part in parts:
        assert [p.name for p in part.parent.iterdir()] == [part.name]  # its own batch
        shutil.rmtree(part.parent)
    (catalog.root / "commits.jsonl").unlink()

    old = Catalog(tmp_path / "c")
    reg = Registry(old)
    assert (reg.is_empty(), reg.staff("A-1"), reg.devices()) == (True, None, [])
    assert old.query("SELECT recording_blake3 FROM chunks").to_pylist() == [
        {"recording_blake3": "a"}]
