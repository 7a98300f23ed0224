"""Who may do what, as RULES.md and the README say it, checked against `decide()` and the
Authority on a real catalog with a real registry.

The expectations below are written here from the rule texts (quoted beside each row), not
read from `schemas.people.PERMISSIONS`: a change to the code's table that breaks a rule
(giving the administrator export approval, say) fails here even though the code's table
and `decide()` still agree with each other.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from pipeline.audit.log import AuditLog
from pipeline.catalog.core import Catalog
from pipeline.people.permissions import Authority, PermissionDenied, decide
from pipeline.people.registry import NewStaff, Registry
from pipeline.storage.local import LocalStore
from schemas.people import StaffEventRecord
from tests.anyone import AnyoneAuthority

AT = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)
OBJ = "b3/" + "cd" * 32

# The action names are the library's public vocabulary (what the CLI and the audit log
# say); they are spelled out here so that the table is not the code's.
INGEST, LABEL, VIEW = "ingest", "label", "view"
DELETE = "delete"
RETENTION_RAISE, RETENTION_LOWER = "retention.raise", "retention.lower"
HOLD_PLACE, HOLD_LIFT = "hold.place", "hold.lift"
EXPORT_REQUEST, EXPORT_APPROVE = "export.request", "export.approve"
EXEMPTION_ACK = "exemption.acknowledge"

ROLES = ("officer", "auxiliary", "section_chief", "legal_unit", "records_officer", "analyst",
         "administrator")

# --- the table, from RULES.md (and the README's People section) -------------------------

# AV-15: "Nobody may cut or alter the original footage." -> "WORM storage; originals are
#   never rewritten". AV-16 punishes "deleting or falsifying records".
# AV-11: "Retention tiers ... Retention can only grow."
# README (People): "Nobody can delete."
NOBODY = {
    DELETE: "AV-15/AV-16: nobody may delete footage",
    RETENTION_LOWER: "AV-11: retention can only grow",
}

# AUX-10: "Must not: ... delete, alter or spread internal materials, documents,
#   surveillance footage ..." -> "Auxiliary staff can never delete, change retention,
#   approve or export. Every attempt is refused and audited."
# README (People): "they can never change retention, place or lift holds, approve or
#   export (AUX-10)."
AUX10_NEVER = {
    DELETE: "AUX-10: never delete",
    RETENTION_RAISE: "AUX-10: never change retention (raise)",
    RETENTION_LOWER: "AUX-10: never change retention (lower)",
    HOLD_PLACE: "AUX-10: never place holds",
    HOLD_LIFT: "AUX-10: never lift holds",
    EXPORT_REQUEST: "AUX-10: never export (spread footage)",
    EXPORT_APPROVE: "AUX-10: never approve",
}

# AUX-9: "Duties: clerical work (documents, archives, hotline, intake, data entry) ..."
#   -> "Roles allow auxiliary staff to ingest, tag and view."
AUX9_MAY = {INGEST, LABEL, VIEW}

# AV-15 separation of duty: "an export needs a recorded approval by someone other than
#   the requester." The administrator manages people and devices; one who could also
#   approve exports, lift holds or raise retention could register a helper and release
#   or keep footage alone (issue 11: these three must fail a test).
ADMINISTRATOR_NEVER = {
    EXPORT_APPROVE: "AV-15: the administrator approves no export",
    HOLD_LIFT: "AV-15: the administrator lifts no hold",
    RETENTION_RAISE: "AV-15: the administrator changes no retention",
}

# What the rules need someone to be able to do:
# AV-6: "The user must then make a written work record ... and report it to the section
#   chief (科室负责人)" -> "the section chief's acknowledgement".
# AV-12: officers "may not keep footage themselves: within 24 hours it goes into ... the
#   agency's dedicated storage" -> officers ingest and label.
# README (export): "approved by another who may approve (section chief, legal unit)".
# README (per-role S3 credentials): "the legal unit and records officers extend retention
#   and place and lift holds; the section chief places holds."
MAY: dict[str, set[str]] = {
    "officer": {INGEST, LABEL, VIEW},
    "auxiliary": AUX9_MAY,
    "section_chief": {EXEMPTION_ACK, EXPORT_APPROVE, HOLD_PLACE, VIEW},
    "legal_unit": {EXPORT_APPROVE, RETENTION_RAISE, HOLD_PLACE, HOLD_LIFT, VIEW},
    "records_officer": {RETENTION_RAISE, HOLD_PLACE, HOLD_LIFT, VIEW},
    "analyst": {VIEW},
    "administrator": {VIEW},
}

# README (per-role S3 credentials): "every role reads; the analyst and the administrator
#   only read"; an officer is not the one who approves an export (AV-15: someone other
#   than the requester; README: section chief, legal unit).
MAY_NOT: dict[str, dict[str, str]] = {
    role: dict(NOBODY) for role in ROLES
}
MAY_NOT["auxiliary"].update(AUX10_NEVER)
MAY_NOT["administrator"].update(ADMINISTRATOR_NEVER)
MAY_NOT["administrator"][HOLD_PLACE] = "README: the administrator only reads at the store"
MAY_NOT["analyst"].update({
    RETENTION_RAISE: "README: the analyst only reads",
    HOLD_PLACE: "README: the analyst only reads",
    HOLD_LIFT: "README: the analyst only reads",
    EXPORT_APPROVE: "README: the analyst only reads",
})
MAY_NOT["officer"].update({
    EXPORT_APPROVE: "README: approval by the section chief or the legal unit",
    HOLD_LIFT: "README: holds are lifted by the legal unit and records officers",
    RETENTION_RAISE: "README: retention is extended by the legal unit and records officers",
})

# The table must not contradict itself.
assert all(not (MAY[r] & set(MAY_NOT[r])) for r in ROLES)

CELLS = sorted(
    [(role, a, True, "") for role in ROLES for a in sorted(MAY[role])]
    + [(role, a, False, why) for role in ROLES for a, why in sorted(MAY_NOT[role].items())]
)


def kind_of(role: str) -> str:
    return "auxiliary" if role == "auxiliary" else "officer"


def person(kind: str, *roles: str, staff_id: str = "P-1") -> StaffEventRecord:
    return StaffEventRecord(
        staff_id=staff_id, seq=1, event="registered", at_utc=AT, actor_id="A-1", reason="",
        kind=kind, name="某人", section="综合执法队", post="p", roles=list(roles),
        status="active", certificate_number=None if kind == "auxiliary" else "ZJ-1",
        id_number=None, birth_date_iso=None, first_hired_iso=None, agency=None,
        work_area=None, contract_start_iso=None, contract_end_iso=None,
        screening="passed" if kind == "auxiliary" else "not_applicable",
    )


# --- decide(), pure ----------------------------------------------------------------------


@pytest.mark.parametrize(("role", "action", "allowed", "why"), CELLS)
def test_decide_follows_the_rules_table(role: str, action: str, allowed: bool, why: str) -> None:
    got, reason = decide(person(kind_of(role), role), "P-1", action)
    assert got is allowed, f"{role} {action}: {why or 'should be allowed'} (decide: {reason})"


@pytest.mark.parametrize("action", sorted(AUX10_NEVER))
def test_aux10_an_auxiliary_is_refused_whatever_roles_a_mistaken_record_gives(action: str) -> None:
    """A registration the registry would refuse (AUX-3) still cannot give an auxiliary the
    AUX-10 actions: every role at once."""
    allowed, reason = decide(person("auxiliary", *ROLES), "P-1", action)
    assert (allowed, reason.startswith("AUX-10:")) == (False, True), reason


@pytest.mark.parametrize("action", sorted(NOBODY))
@pytest.mark.parametrize("kind", ["officer", "service"])
def test_av15_nobody_may_delete_or_shorten_retention_with_every_role(
    kind: str, action: str
) -> None:
    allowed, reason = decide(person(kind, *[r for r in ROLES if r != "auxiliary"]), "P-1",
                             action)
    assert allowed is False
    assert "AV-15" in reason, reason


# --- the Authority, on a real catalog with a real registry ----------------------------------

STAFF = {  # staff ID -> role
    "A-1": "administrator",
    "O-1": "officer",
    "C-1": "section_chief",
    "L-1": "legal_unit",
    "L-2": "legal_unit",
    "R-1": "records_officer",
    "N-1": "analyst",
    "X-1": "auxiliary",
}
BY_ROLE = {role: sid for sid, role in reversed(list(STAFF.items()))}  # the first of each


def _new(sid: str, role: str) -> NewStaff:
    if role == "auxiliary":
        return NewStaff(sid, "auxiliary", "王五", "综合执法队", "协管员", screening="passed",
                        birth_date=dt.date(1996, 3, 1), first_hired=dt.date(2026, 1, 5),
                        agency="遂昌县人力资源公司", work_area="大柘镇",
                        contract_start=dt.date(2026, 1, 5), contract_end=dt.date(2028, 1, 4))
    return NewStaff(sid, "officer", f"官{sid}", "综合执法队", "执法队员", roles=(role,),
                    certificate_number=f"ZJ-{sid}")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Authority, AuditLog]]:
    root = tmp_path_factory.mktemp("rules")
    catalog = Catalog(root / "catalog")
    audit = AuditLog.for_catalog(catalog.root, store=LocalStore(root / "store"),
                                 clock=lambda: AT)
    reg = Registry(catalog)
    auth = AnyoneAuthority(reg, audit)
    for sid, role in STAFF.items():
        reg.add_staff(auth, "A-1", _new(sid, role), at_utc=AT)
    yield auth, audit
    audit.close()


def _last(audit: AuditLog, actor: str) -> tuple[str, str, str, str]:
    r = audit.show(actor_id=actor)[-1]
    return r.actor_id, r.action, r.object_id, r.result


@pytest.mark.parametrize(("role", "action", "allowed", "why"), CELLS)
def test_the_authority_follows_the_rules_table_and_audits_each_decision(
    world: tuple[Authority, AuditLog], role: str, action: str, allowed: bool, why: str
) -> None:
    auth, audit = world
    sid = BY_ROLE[role]
    before = len(audit.show())
    if allowed:
        d = auth.authorize(sid, action, OBJ)
        assert (d.actor_id, d.action, d.object_id, d.allowed) == (sid, action, OBJ, True)
        assert _last(audit, sid) == (sid, action, OBJ, "allowed")
    else:
        with pytest.raises(PermissionDenied, match=rf"^{sid} \(.*\) may not {action} {OBJ}: "):
            auth.authorize(sid, action, OBJ)
        assert _last(audit, sid) == (sid, action, OBJ, "refused"), why
    assert len(audit.show()) == before + 1


# --- two-person rules ------------------------------------------------------------------------


def test_a_hold_is_lifted_by_two_different_authorised_people(
    world: tuple[Authority, AuditLog],
) -> None:
    auth, audit = world
    first, second = auth.authorize_hold_lift("L-1", "R-1", OBJ)
    assert [(d.actor_id, d.action, d.allowed) for d in (first, second)] == [
        ("L-1", HOLD_LIFT, True), ("R-1", HOLD_LIFT, True)]
    assert second.audit_seq == first.audit_seq + 1
    assert [(r.actor_id, r.action, r.object_id, r.result) for r in audit.show()[-2:]] == [
        ("L-1", HOLD_LIFT, OBJ, "allowed"), ("R-1", HOLD_LIFT, OBJ, "allowed")]


def test_one_person_cannot_be_both_people_of_a_hold_release(
    world: tuple[Authority, AuditLog],
) -> None:
    auth, audit = world
    with pytest.raises(PermissionDenied, match="needs a second, different person"):
        auth.authorize_hold_lift("L-1", "L-1", OBJ)
    records = audit.show(actor_id="L-1")[-2:]
    assert [(r.action, r.result) for r in records] == [(HOLD_LIFT, "allowed"),
                                                       (HOLD_LIFT, "refused")]


@pytest.mark.parametrize("second", ["A-1", "X-1", "O-1", "N-1", "C-1"])
def test_the_second_person_of_a_hold_release_must_be_allowed_to_lift(
    world: tuple[Authority, AuditLog], second: str
) -> None:
    """Administrator (AV-15), auxiliary (AUX-10), officer, analyst, section chief: none of
    them lifts a hold, not even as the second person."""
    auth, audit = world
    with pytest.raises(PermissionDenied, match=rf"^{second} \(.*\) may not {HOLD_LIFT} "):
        auth.authorize_hold_lift("L-1", second, OBJ)
    assert _last(audit, second) == (second, HOLD_LIFT, OBJ, "refused")


@pytest.mark.parametrize("first", ["A-1", "X-1"])
def test_an_administrator_or_auxiliary_cannot_start_a_hold_release(
    world: tuple[Authority, AuditLog], first: str
) -> None:
    auth, audit = world
    with pytest.raises(PermissionDenied, match=rf"^{first} \(.*\) may not {HOLD_LIFT} "):
        auth.authorize_hold_lift(first, "L-2", OBJ)
    assert _last(audit, first) == (first, HOLD_LIFT, OBJ, "refused")


@pytest.mark.parametrize("approver", ["C-1", "L-1"])
def test_av15_an_export_is_approved_by_someone_other_than_its_requester(
    world: tuple[Authority, AuditLog], approver: str
) -> None:
    auth, audit = world
    d = auth.authorize_export_approval(approver, "O-1", "EXP-1")
    assert (d.actor_id, d.action, d.object_id, d.allowed) == (approver, EXPORT_APPROVE,
                                                              "EXP-1", True)
    assert _last(audit, approver) == (approver, EXPORT_APPROVE, "EXP-1", "allowed")


@pytest.mark.parametrize("who", ["C-1", "L-1"])
def test_av15_the_requester_cannot_approve_their_own_export(
    world: tuple[Authority, AuditLog], who: str
) -> None:
    """Even a person whose role approves exports cannot approve their own request."""
    auth, audit = world
    with pytest.raises(PermissionDenied, match=r"AV-15: .*needs a second, different person"):
        auth.authorize_export_approval(who, who, "EXP-2")
    assert _last(audit, who) == (who, EXPORT_APPROVE, "EXP-2", "refused")


@pytest.mark.parametrize("approver", ["A-1", "X-1", "O-1", "N-1", "R-1"])
def test_av15_who_may_not_approve_cannot_approve_another_persons_export(
    world: tuple[Authority, AuditLog], approver: str
) -> None:
    auth, audit = world
    with pytest.raises(PermissionDenied, match=rf"^{approver} \(.*\) may not {EXPORT_APPROVE} "):
        auth.authorize_export_approval(approver, "L-1", "EXP-3")
    assert _last(audit, approver) == (approver, EXPORT_APPROVE, "EXP-3", "refused")


# --- a fresh installation ----------------------------------------------------------------------


@pytest.mark.parametrize("action", sorted(NOBODY))
def test_on_a_fresh_installation_deleting_and_lowering_retention_stay_refused(
    tmp_path, action: str
) -> None:
    """README: until the first person is registered commands are unenforced, "deleting and
    lowering retention are still refused" (AV-15, AV-11)."""
    catalog = Catalog(tmp_path / "catalog")
    audit = AuditLog.for_catalog(catalog.root, store=LocalStore(tmp_path / "store"),
                                 clock=lambda: AT)
    try:
        auth = AnyoneAuthority(Registry(catalog), audit)
        assert auth.registry.is_empty()
        with pytest.raises(PermissionDenied, match=f"may not {action} {OBJ}"):
            auth.authorize("unregistered:test", action, OBJ)
        (rec,) = audit.show()
        assert (rec.actor_id, rec.action, rec.object_id, rec.result) == (
            "unregistered:test", action, OBJ, "refused")
    finally:
        audit.close()
