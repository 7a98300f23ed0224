"""`decide` and its reasons, pinned for mutation testing (issue 11 item 1).

Each refusal reason is asserted whole: the audit log keeps it and a person reads it, so a
changed rule ID, status or role name in it is a change of record. The table itself is
module-level data that mutmut does not mutate; the independent-table tests pin it.
"""

from __future__ import annotations

import datetime as dt

import pytest

from pipeline.people.permissions import decide
from schemas.people import (
    ACTIONS,
    ANALYST,
    PERMISSIONS,
    ROLES,
    StaffEventRecord,
    allowed_actions,
    normalize_serial,
)

AT = dt.datetime(2025, 6, 1, 9, 0, tzinfo=dt.UTC)


def person(kind: str, *roles: str, status: str = "active",
           screening: str = "passed") -> StaffEventRecord:
    return StaffEventRecord(
        staff_id="P-1", seq=1, event="registered", at_utc=AT, actor_id="A-1", reason="",
        kind=kind, name="张三", section="s", post="p", roles=list(roles), status=status,
        certificate_number=None, id_number=None, birth_date_iso=None, first_hired_iso=None,
        agency=None, work_area=None, contract_start_iso=None, contract_end_iso=None,
        screening=screening,
    )


def test_an_allowed_action_names_the_first_role_that_grants_it() -> None:
    p = person("officer", "analyst", "legal_unit", "section_chief")
    assert decide(p, "P-1", "export.approve") == (True, "role legal_unit allows export.approve")
    assert decide(p, "P-1", "view") == (True, "role analyst allows view")


def test_an_unknown_action_is_refused_by_name() -> None:
    assert decide(person("officer", "officer"), "P-1", "burn") == (
        False, "unknown action 'burn'")


def test_an_unknown_action_is_refused_before_the_person_is_looked_at() -> None:
    assert decide(None, "P-9", "burn") == (False, "unknown action 'burn'")


def test_an_unregistered_person_is_refused() -> None:
    assert decide(None, "P-9", "view") == (False, "P-9 is not in the personnel registry")


@pytest.mark.parametrize(("status", "zh"), [("suspended", "停岗"), ("dismissed", "解聘"),
                                            ("left", "离岗"), ("pending", "待岗")])
def test_a_person_not_active_is_refused_with_the_status_in_chinese(status: str, zh: str) -> None:
    assert decide(person("officer", "officer", status=status), "P-1", "view") == (
        False, f"P-1 (张三) is {status} ({zh}), not active")


def test_an_unknown_status_is_refused_with_no_chinese() -> None:
    assert decide(person("officer", "officer", status="odd"), "P-1", "view") == (
        False, "P-1 (张三) is odd (), not active")


@pytest.mark.parametrize("screening", ["failed", "pending", "not_applicable"])
def test_an_auxiliary_not_passed_screening_is_refused_under_aux7(screening: str) -> None:
    p = person("auxiliary", "auxiliary", screening=screening)
    assert decide(p, "P-1", "view") == (False, f"AUX-7: screening of P-1 (张三) is {screening}")


def test_an_officer_is_not_held_to_screening() -> None:
    p = person("officer", "officer", screening="not_applicable")
    assert decide(p, "P-1", "view") == (True, "role officer allows view")


def test_aux10_refuses_an_auxiliary_whatever_their_roles() -> None:
    p = person("auxiliary", "legal_unit")
    assert decide(p, "P-1", "hold.lift") == (
        False, "AUX-10: auxiliary staff may never hold.lift (no deleting, changing retention "
        "or holds, approving or releasing footage)")


def test_an_auxiliary_passed_screening_may_do_what_their_role_allows() -> None:
    assert decide(person("auxiliary", "auxiliary"), "P-1", "ingest") == (
        True, "role auxiliary allows ingest")


def test_an_action_no_role_has_is_refused_as_never_allowed() -> None:
    assert decide(person("officer", *ROLES), "P-1", "delete") == (
        False, "no role may delete: originals are never deleted or shortened (AV-15)")


def test_an_action_other_roles_have_is_refused_naming_the_persons_roles() -> None:
    p = person("officer", "analyst", "officer")
    assert decide(p, "P-1", "hold.lift") == (
        False, "no role of P-1 (张三) (analyst, officer) allows hold.lift")


def test_a_person_with_no_roles_is_refused() -> None:
    assert decide(person("officer"), "P-1", "view") == (
        False, "no role of P-1 (张三) () allows view")


def test_an_unknown_role_grants_nothing() -> None:
    assert decide(person("officer", "wizard"), "P-1", "view") == (
        False, "no role of P-1 (张三) (wizard) allows view")


def test_allowed_actions_is_the_union_of_the_roles_rows() -> None:
    assert allowed_actions([]) == frozenset()
    assert allowed_actions(["wizard"]) == frozenset()
    assert allowed_actions([ANALYST]) == PERMISSIONS[ANALYST]
    assert allowed_actions(["officer", "analyst"]) == PERMISSIONS["officer"] | PERMISSIONS[
        "analyst"]
    assert allowed_actions(ROLES) == frozenset(a for a in ACTIONS if a not in (
        "delete", "retention.lower"))


def test_a_serial_is_trimmed_and_upper_cased() -> None:
    assert normalize_serial("  dsj-v9x 01\t") == "DSJ-V9X 01"

