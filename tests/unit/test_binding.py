"""The library binding (issue 10): once `acting` has resolved who acts, the Authority acts
only as that person; an unbound Authority acts as nobody; every record names the OS
account; a two-person action is proven by both people, each in their own command."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.catalog.core import Catalog
from pipeline.people.identity import Caller, Identities, OsAccount
from pipeline.people.permissions import (
    NOT_BOUND,
    TWO_PERSON_CONFIRM,
    TWO_PERSON_REQUEST,
    TWO_PERSON_WINDOW,
    Authority,
    PermissionDenied,
    open_authority,
)
from pipeline.people.registry import NewStaff
from pipeline.storage.local import LocalStore
from schemas.audit import AuditRecord
from schemas.people import EXPORT_APPROVE, HOLD_LIFT, INGEST, VIEW
from tests.anyone import AnyoneAuthority

AT = dt.datetime(2025, 6, 1, 9, 0, tzinfo=dt.UTC)
OBJ = "b3/" + "cd" * 32
UID = os.getuid()
ACCOUNTS = {"wang": "X-1", "li": "L-1", "zhao": "R-1", "chen": "A-1", "sun": "L-2"}


def officer(staff_id: str, *roles: str) -> NewStaff:
    return NewStaff(staff_id, "officer", f"官{staff_id}", "综合执法队", "执法队员",
                    roles=roles, certificate_number=f"ZJ-{staff_id}")


AUXILIARY = NewStaff(
    "X-1", "auxiliary", "王五", "综合执法队", "协管员", screening="passed",
    birth_date=dt.date(1995, 5, 1), first_hired=dt.date(2025, 6, 1), agency="遂昌县人力资源公司",
    work_area="大柘镇", contract_start=dt.date(2025, 6, 1), contract_end=dt.date(2027, 5, 31),
)


@dataclass
class World:
    catalog: Catalog
    store: LocalStore
    identities: Identities
    now: dt.datetime = AT

    def clock(self) -> dt.datetime:
        return self.now

    def caller(self, account: str) -> Caller:
        """`account` as the identities file maps it (this process's uid, another name)."""
        return Caller(OsAccount(UID, account), self.identities)

    def command(self, account: str) -> Iterator[Authority]:
        """One command of `account`: its own Authority, bound by `acting`."""
        with open_authority(self.catalog, self.store, self.clock) as auth:
            auth.acting(None, caller=self.caller(account))
            yield auth

    def audit(self) -> list[AuditRecord]:
        with open_authority(self.catalog, self.store, self.clock) as auth:
            return list(auth.audit.records())


@pytest.fixture
def world(tmp_path: Path) -> World:
    """A real catalog whose registry holds an administrator, two legal-unit members, a
    records officer and an auxiliary; each mapped by account name."""
    w = World(Catalog(tmp_path / "catalog"), LocalStore(tmp_path / "store"),
              Identities(tmp_path / "identities.toml", by_name=dict(ACCOUNTS)))
    with open_authority(w.catalog, w.store, w.clock) as auth:
        reg = auth.registry
        setup = AnyoneAuthority(reg, auth.audit)
        reg.add_staff(setup, "A-1", officer("A-1", "administrator"), at_utc=AT)
        for sid, role in (("L-1", "legal_unit"), ("L-2", "legal_unit"),
                          ("R-1", "records_officer")):
            reg.add_staff(setup, "A-1", officer(sid, role), at_utc=AT)
        reg.add_staff(setup, "A-1", AUXILIARY, at_utc=AT)
    return w


def test_an_auxiliarys_account_cannot_approve_an_export_as_a_legal_unit_member(world):
    """The acceptance of issue 10 through the library: bound as the auxiliary's account,
    an export approval in the legal-unit member's name is refused, and audited."""
    for auth in world.command("wang"):
        assert auth.bound == "X-1"
        with pytest.raises(PermissionDenied, match=r"acts as X-1 .*not as L-1"):
            auth.authorize_export_approval("L-1", "X-1", "export:E-1")
        with pytest.raises(PermissionDenied, match="not as L-1"):
            auth.authorize("L-1", EXPORT_APPROVE, "export:E-1")
        with pytest.raises(PermissionDenied, match="not as L-1"):
            auth.authorize_second("L-1", EXPORT_APPROVE, "export:E-1",
                                  first_actor_id="X-1", rule="AV-15")
        with pytest.raises(PermissionDenied, match="not as L-1"):
            auth.record("L-1", EXPORT_APPROVE, "export:E-1", "allowed", "approved")
    refused = [r for r in world.audit() if r.object_id == "export:E-1"]
    assert [(r.actor_id, r.action, r.result) for r in refused] == [
        ("X-1", EXPORT_APPROVE, "refused")] * 4
    assert all(r.os_account == f"wang (uid {UID})" for r in refused)
    assert "identity refused: this command acts as X-1 (os account wang" in refused[0].reason
    assert not [r for r in world.audit() if r.result == "allowed" and r.actor_id == "L-1"]


def test_the_bound_person_acts_and_every_record_names_the_os_account(world):
    for auth in world.command("li"):
        assert auth.authorize("L-1", VIEW, "exports").allowed
        auth.record("L-1", VIEW, "exports", "allowed", "listed")
    mine = [r for r in world.audit() if r.object_id == "exports"]
    assert [(r.actor_id, r.result, r.os_account) for r in mine] == [
        ("L-1", "allowed", f"li (uid {UID})")] * 2


def test_an_authority_never_bound_refuses_every_action(world):
    with open_authority(world.catalog, world.store, world.clock) as auth:
        assert auth.bound is None
        for call in (lambda: auth.authorize("A-1", VIEW, "x"),
                     lambda: auth.authorize("X-1", INGEST, "x"),
                     lambda: auth.record("A-1", VIEW, "x", "allowed", "y"),
                     lambda: auth.authorize_export_approval("L-1", "X-1", "x"),
                     lambda: auth.authorize_hold_lift("L-1", "R-1", "x")):
            with pytest.raises(PermissionDenied, match="no acting person is bound"):
                call()
    recs = [r for r in world.audit() if r.object_id == "x"]
    assert len(recs) == 5 and {r.result for r in recs} == {"refused"}
    assert {r.reason for r in recs} == {NOT_BOUND}


def test_a_refused_acting_leaves_the_authority_unbound(world):
    for auth in world.command("li"):
        with pytest.raises(PermissionDenied):
            auth.acting("A-1", caller=world.caller("li"))
        assert auth.bound is None
        with pytest.raises(PermissionDenied, match="no acting person is bound"):
            auth.authorize("L-1", VIEW, "y")


def test_the_fresh_install_bootstrap_acts_through_acting(tmp_path):
    catalog, store = Catalog(tmp_path / "c"), LocalStore(tmp_path / "s")
    with open_authority(catalog, store, lambda: AT) as auth:
        with pytest.raises(PermissionDenied, match="no acting person is bound"):
            auth.registry.add_staff(auth, "A-1", officer("A-1", "administrator"), at_utc=AT)
        assert auth.acting("A-1", os_user="chen") == "A-1"
        auth.registry.add_staff(auth, "A-1", officer("A-1", "administrator"), at_utc=AT)
        assert auth.registry.staff("A-1") is not None
        (boot,) = auth.audit.show(action="staff.manage", result="allowed")
        assert boot.os_account == "chen" and "bootstrap" in boot.reason


def test_a_one_command_hold_lift_says_the_second_person_is_only_named(world):
    for auth in world.command("li"):
        first, second = auth.authorize_hold_lift("L-1", "R-1", OBJ)
        assert (first.actor_id, second.actor_id) == ("L-1", "R-1")
        assert "named by L-1, not proven by their own account" in second.reason
    for auth in world.command("zhao"):  # only the first is the bound person
        with pytest.raises(PermissionDenied, match=r"acts as R-1 .*not as L-1"):
            auth.authorize_hold_lift("L-1", "R-1", OBJ)


# --- two proven people, two commands --------------------------------------------------------
def test_a_hold_lift_requested_by_one_and_confirmed_by_another_in_their_own_command(world):
    for auth in world.command("li"):
        assert auth.pending_second(HOLD_LIFT, OBJ) is None
        pending = auth.request_second(HOLD_LIFT, OBJ, rule="two-person rule")
        assert (pending.action, pending.object_id, pending.first_actor_id) == (
            HOLD_LIFT, OBJ, "L-1")
    world.now = AT + dt.timedelta(hours=3)
    for auth in world.command("zhao"):
        assert auth.pending_second(HOLD_LIFT, OBJ) == pending
        got, decision = auth.confirm_second(HOLD_LIFT, OBJ, rule="two-person rule")
        assert got == pending
        assert (decision.actor_id, decision.action, decision.allowed) == ("R-1", HOLD_LIFT, True)
        assert f"confirms request #{pending.request_seq} of L-1" in decision.reason
        assert auth.pending_second(HOLD_LIFT, OBJ) is None  # used up
    recs = [r for r in world.audit() if r.object_id == OBJ]
    assert [(r.actor_id, r.action, r.result, r.os_account) for r in recs] == [
        ("L-1", HOLD_LIFT, "allowed", f"li (uid {UID})"),
        ("L-1", TWO_PERSON_REQUEST, "allowed", f"li (uid {UID})"),
        ("R-1", HOLD_LIFT, "allowed", f"zhao (uid {UID})"),
        ("R-1", TWO_PERSON_CONFIRM, "allowed", f"zhao (uid {UID})"),
    ]
    assert recs[0].seq == pending.first_audit_seq and recs[1].seq == pending.request_seq
    for auth in world.command("sun"):  # a second confirmation finds nothing pending
        with pytest.raises(PermissionDenied, match="no pending request"):
            auth.confirm_second(HOLD_LIFT, OBJ, rule="two-person rule")


def test_the_first_person_cannot_confirm_their_own_request(world):
    for auth in world.command("li"):
        auth.request_second(HOLD_LIFT, OBJ, rule="two-person rule")
    for auth in world.command("li"):
        with pytest.raises(PermissionDenied, match="needs a second, different person"):
            auth.confirm_second(HOLD_LIFT, OBJ, rule="two-person rule")
        assert auth.pending_second(HOLD_LIFT, OBJ) is not None  # still waiting
    last = world.audit()[-1]
    assert (last.actor_id, last.action, last.result) == ("L-1", HOLD_LIFT, "refused")


def test_an_auxiliary_can_neither_request_nor_confirm(world):
    for auth in world.command("wang"):
        with pytest.raises(PermissionDenied, match="AUX-10"):
            auth.request_second(HOLD_LIFT, OBJ, rule="two-person rule")
        assert auth.pending_second(HOLD_LIFT, OBJ) is None
    for auth in world.command("li"):
        auth.request_second(HOLD_LIFT, OBJ, rule="two-person rule")
    for auth in world.command("wang"):
        with pytest.raises(PermissionDenied, match="AUX-10"):
            auth.confirm_second(HOLD_LIFT, OBJ, rule="two-person rule")
    assert not [r for r in world.audit() if r.action == TWO_PERSON_CONFIRM]


def test_a_request_waits_only_so_long_and_only_for_its_own_action_and_object(world):
    for auth in world.command("li"):
        auth.request_second(HOLD_LIFT, OBJ, rule="two-person rule")
    for auth in world.command("zhao"):
        assert auth.pending_second(HOLD_LIFT, OBJ + "x") is None
        assert auth.pending_second(EXPORT_APPROVE, OBJ) is None
    world.now = AT + TWO_PERSON_WINDOW + dt.timedelta(seconds=1)
    for auth in world.command("zhao"):
        with pytest.raises(PermissionDenied, match="no pending request"):
            auth.confirm_second(HOLD_LIFT, OBJ, rule="two-person rule")
    last = world.audit()[-1]
    assert (last.actor_id, last.action, last.result) == ("R-1", HOLD_LIFT, "refused")
