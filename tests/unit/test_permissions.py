"""The permission table, AUX-10, two-person rules, and an audit record for every decision."""

from __future__ import annotations

import contextlib
import datetime as dt

import pytest

from pipeline.audit.log import AuditLog
from pipeline.catalog.core import Catalog
from pipeline.people.permissions import Authority, PermissionDenied, decide
from pipeline.people.registry import NewStaff, Registry
from pipeline.storage.local import LocalStore
from schemas.people import (
    ACTIONS,
    AUX10_FORBIDDEN,
    DELETE,
    EXPORT_APPROVE,
    EXPORT_REQUEST,
    HOLD_LIFT,
    HOLD_PLACE,
    INGEST,
    LABEL,
    PERMISSIONS,
    RETENTION_LOWER,
    RETENTION_RAISE,
    ROLES,
    VIEW,
    StaffEventRecord,
)
from tests.anyone import AnyoneAuthority

AT = dt.datetime(2025, 6, 1, 9, 0, tzinfo=dt.UTC)
OBJ = "b3/" + "ab" * 32


def clock() -> dt.datetime:
    return AT


def officer(staff_id: str, *roles: str) -> NewStaff:
    return NewStaff(staff_id, "officer", f"官{staff_id}", "综合执法队", "执法队员",
                    roles=roles, certificate_number=f"ZJ-{staff_id}")


AUXILIARY = NewStaff(
    "X-1", "auxiliary", "王五", "综合执法队", "协管员", screening="passed",
    birth_date=dt.date(1995, 5, 1), first_hired=dt.date(2025, 6, 1), agency="遂昌县人力资源公司",
    work_area="大柘镇", contract_start=dt.date(2025, 6, 1), contract_end=dt.date(2027, 5, 31),
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Authority, AuditLog]:
    """One registry for the module: the tests only authorise, which appends to the log."""
    tmp_path = tmp_path_factory.mktemp("perm")
    catalog = Catalog(tmp_path / "catalog")
    audit = AuditLog.for_catalog(catalog.root, store=LocalStore(tmp_path / "store"), clock=clock)
    reg = Registry(catalog)
    auth = AnyoneAuthority(reg, audit)
    reg.add_staff(auth, "A-1", officer("A-1", "administrator"), at_utc=AT)
    for sid, role in (("L-1", "legal_unit"), ("L-2", "legal_unit"), ("R-1", "records_officer"),
                      ("C-1", "section_chief"), ("O-1", "officer")):
        reg.add_staff(auth, "A-1", officer(sid, role), at_utc=AT)
    reg.add_staff(auth, "A-1", AUXILIARY, at_utc=AT)
    yield auth, audit
    audit.close()


def person(kind: str, *roles: str, status: str = "active") -> StaffEventRecord:
    return StaffEventRecord(
        staff_id="P-1", seq=1, event="registered", at_utc=AT, actor_id="A-1", reason="",
        kind=kind, name="某人", section="s", post="p", roles=list(roles), status=status,
        certificate_number=None, id_number=None, birth_date_iso=None, first_hired_iso=None,
        agency=None, work_area=None, contract_start_iso=None, contract_end_iso=None,
        screening="passed",
    )


@pytest.mark.parametrize("action", [RETENTION_RAISE, HOLD_LIFT, HOLD_PLACE, EXPORT_APPROVE,
                                    EXPORT_REQUEST, DELETE])
def test_aux10_an_auxiliary_is_refused_and_the_refusal_is_audited(world, action):
    auth, audit = world
    with pytest.raises(PermissionDenied, match=rf"X-1 \(王五\) may not {action} .*AUX-10"):
        auth.authorize("X-1", action, OBJ)
    last = audit.show(actor_id="X-1")[-1]
    assert (last.action, last.object_id, last.result) == (action, OBJ, "refused")
    assert "AUX-10" in last.reason and last.at_utc == AT


@pytest.mark.parametrize("action", [INGEST, LABEL, VIEW])
def test_aux9_an_auxiliary_may_ingest_label_and_view(world, action):
    auth, audit = world
    assert auth.authorize("X-1", action, OBJ).allowed
    assert audit.show(actor_id="X-1")[-1].result == "allowed"


def test_aux10_holds_whatever_roles_an_auxiliary_was_given():
    for action in AUX10_FORBIDDEN:
        allowed, reason = decide(person("auxiliary", "legal_unit", "administrator"), "P-1", action)
        assert not allowed and "AUX-10" in reason


@pytest.mark.parametrize("role", ROLES)
def test_each_role_allows_exactly_its_table_row(role):
    p = person("auxiliary" if role == "auxiliary" else "officer", role)
    allowed = {a for a in ACTIONS if decide(p, "P-1", a)[0]}
    assert allowed == set(PERMISSIONS[role])


@pytest.mark.parametrize("action", [DELETE, RETENTION_LOWER])
def test_nobody_may_delete_or_shorten_retention(action):
    allowed, reason = decide(person("officer", *ROLES[:1], *ROLES[2:]), "P-1", action)
    assert not allowed and "AV-15" in reason


def test_a_suspended_person_is_refused_everything():
    allowed, reason = decide(person("officer", "legal_unit", status="suspended"), "P-1", VIEW)
    assert not allowed and "suspended" in reason


def test_an_unknown_person_is_refused_and_audited(world):
    auth, audit = world
    with pytest.raises(PermissionDenied, match="not in the personnel registry"):
        auth.authorize("NOBODY", VIEW, OBJ)
    assert audit.show(actor_id="NOBODY")[-1].result == "refused"


def test_an_unknown_action_is_refused(world):
    auth, _ = world
    with pytest.raises(PermissionDenied, match="unknown action"):
        auth.authorize("L-1", "launch", OBJ)


def test_every_decision_is_one_audit_record(world):
    auth, audit = world
    before = len(audit.show())
    for who, action in (("L-1", RETENTION_RAISE), ("X-1", RETENTION_RAISE), ("O-1", VIEW),
                        ("O-1", HOLD_LIFT)):
        with contextlib.suppress(PermissionDenied):
            auth.authorize(who, action, OBJ)
    recs = audit.show()[before:]
    assert [(r.actor_id, r.action, r.result) for r in recs] == [
        ("L-1", RETENTION_RAISE, "allowed"), ("X-1", RETENTION_RAISE, "refused"),
        ("O-1", VIEW, "allowed"), ("O-1", HOLD_LIFT, "refused")]
    assert audit.verify().ok


def test_lifting_a_hold_needs_two_different_authorised_people(world):
    auth, audit = world
    first, second = auth.authorize_hold_lift("L-1", "R-1", OBJ)
    assert (first.actor_id, second.actor_id) == ("L-1", "R-1")
    with pytest.raises(PermissionDenied, match=r"two-person rule: .*second, different person"):
        auth.authorize_hold_lift("L-1", "L-1", OBJ)
    assert audit.show(actor_id="L-1", action=HOLD_LIFT)[-1].result == "refused"


def test_an_auxiliary_cannot_be_the_second_person_of_a_hold_lift(world):
    auth, _ = world
    with pytest.raises(PermissionDenied, match="AUX-10"):
        auth.authorize_hold_lift("L-1", "X-1", OBJ)


def test_av15_an_export_is_not_approved_by_its_requester(world):
    auth, _ = world
    with pytest.raises(PermissionDenied, match="AV-15"):
        auth.authorize_export_approval("L-1", "L-1", "export:1")
    assert auth.authorize_export_approval("L-2", "L-1", "export:1").allowed
    with pytest.raises(PermissionDenied, match="AUX-10"):
        auth.authorize_export_approval("X-1", "L-1", "export:1")
