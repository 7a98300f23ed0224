"""Who may do what: every decision checked here, in the library, and audited.

`Authority(registry, audit).authorize(actor_id, action, object_id)` returns a `Decision`
when the person may act, and raises `PermissionDenied` when not. Either way exactly one
audit record is appended first (who, what, which object, result, reason). The CLI is only
one caller: a script that calls the library meets the same checks.

A person may act when they are registered, active, (if auxiliary) passed screening (AUX-7),
and one of their roles allows the action in `schemas.people.PERMISSIONS`. Auxiliary staff
are refused the AUX-10 actions whatever their roles say. A caller may also pass `refusal`:
a rule of its own (AUX-6, AV-10, "retention only grows"...) that refuses an otherwise
permitted action; that refusal is audited the same way and raised as `RuleRefused`.

Two-person rules: lifting a legal hold needs two different authorised people
(`authorize_hold_lift`); approving an export needs someone other than its requester
(`authorize_export_approval`, AV-15).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pipeline.audit.log import AuditLog
from pipeline.catalog.core import Catalog
from pipeline.errors import CustodyError, InputError
from pipeline.people.bootstrap import BOOTSTRAP, UNENFORCED, acting_person, unenforced
from pipeline.people.identity import Caller, Refused, ServiceGrant, resolve
from pipeline.people.registry import Registry
from pipeline.storage.base import WormStore
from schemas.audit import ALLOWED, REFUSED, AuditRecord
from schemas.people import (
    ACT_AS,
    ACTIONS,
    ADMINISTRATOR,
    AUX10_FORBIDDEN,
    EXPORT_APPROVE,
    HOLD_LIFT,
    KIND_AUXILIARY,
    PERMISSIONS,
    SCREENING_PASSED,
    STATUS_ACTIVE,
    STATUSES,
    StaffEventRecord,
)


@contextmanager
def open_authority(
    catalog: Catalog, store: WormStore, clock: Callable[[], dt.datetime]
) -> Iterator[Authority]:
    """The Authority of a catalog (its registry and its audit log), closed afterwards."""
    audit = AuditLog.for_catalog(catalog.root, store=store, clock=clock)
    try:
        yield Authority(Registry(catalog), audit)
    finally:
        audit.close()


class PermissionDenied(CustodyError):
    """The acting person may not do this; the refusal is already in the audit log."""


class RuleRefused(CustodyError):
    """A rule (AUX-6, AUX-7, AV-10, AV-15...) refuses the action; audited already."""


@dataclass(frozen=True, slots=True)
class Decision:
    actor_id: str
    action: str
    object_id: str
    allowed: bool
    reason: str
    audit_seq: int  # the audit record that holds this decision


def _who(p: StaffEventRecord | None, staff_id: str) -> str:
    return f"{staff_id} ({p.name})" if p else staff_id


def decide(person: StaffEventRecord | None, staff_id: str, action: str) -> tuple[bool, str]:
    """Whether `person` may do `action`, and why, by the permission table. Pure."""
    if action not in ACTIONS:
        return False, f"unknown action {action!r}"
    if person is None:
        return False, f"{staff_id} is not in the personnel registry"
    if person.status != STATUS_ACTIVE:
        zh = STATUSES.get(person.status, "")
        return False, f"{_who(person, staff_id)} is {person.status} ({zh}), not active"
    if person.kind == KIND_AUXILIARY:
        if person.screening != SCREENING_PASSED:
            return False, f"AUX-7: screening of {_who(person, staff_id)} is {person.screening}"
        if action in AUX10_FORBIDDEN:
            return False, (f"AUX-10: auxiliary staff may never {action} (no deleting, changing "
                           "retention or holds, approving or releasing footage)")
    granting = [r for r in person.roles if action in PERMISSIONS.get(r, frozenset())]
    if not granting:
        if not any(action in acts for acts in PERMISSIONS.values()):
            return False, f"no role may {action}: originals are never deleted or shortened (AV-15)"
        roles = ", ".join(person.roles)
        return False, f"no role of {_who(person, staff_id)} ({roles}) allows {action}"
    return True, f"role {granting[0]} allows {action}"


class Authority:
    """The permission check and its audit record, for one registry and one audit log."""

    def __init__(self, registry: Registry, audit: AuditLog) -> None:
        self.registry = registry
        self.audit = audit

    def may(self, actor_id: str, action: str) -> bool:
        """Whether the actor may do the action; NOT audited (for hiding menu items, not
        for deciding: call `authorize` before acting)."""
        return decide(self.registry.staff(actor_id), actor_id, action)[0]

    def acting(
        self, requested: str | None, *, caller: Caller | None = None, os_user: str | None = None
    ) -> str:
        """Who acts for `caller` (the OS account and its identities binding,
        `pipeline.people.identity`): its mapped staff ID, which `requested` (--as) may repeat
        but never replace. A refusal is audited, then raised as PermissionDenied. A service
        account acts as its service identity only while the grant's administrator is an
        active administrator of the registry; each such act is audited (which OS account,
        which identity, granted by whom).

        `os_user=` (a bare account name, nothing to check it against) is enough only for a
        fresh installation, where nobody can be bound yet: with anyone registered it is
        refused, so a script cannot skip the binding by leaving `caller` out."""
        empty = self.registry.is_empty()
        if caller is None:
            if os_user is None:
                raise TypeError("Authority.acting() needs caller= (the OS account's binding)")
            if not empty:
                raise PermissionDenied(
                    "the library needs the caller's operating-system identity "
                    "(acting(..., caller=bind_caller(...))) once the registry holds anyone")
            return acting_person(empty, requested, os_user=os_user)
        outcome = resolve(caller, requested, registry_empty=empty)
        if isinstance(outcome, Refused):
            if not outcome.audit:
                raise InputError(outcome.reason)
            self.audit.append(outcome.who, ACT_AS, f"os:{caller.account.name}", REFUSED,
                              outcome.reason)
            raise PermissionDenied(outcome.reason)
        grant = outcome.service
        if grant is not None:
            problem = self._grant_problem(grant)
            acct = caller.account
            where = caller.identities.path if caller.identities else "?"
            if problem:
                reason = f"identity refused: service account {acct}: {problem}"
                self.audit.append(grant.staff_id, ACT_AS, f"os:{acct.name}", REFUSED, reason)
                raise PermissionDenied(reason)
            self.audit.append(grant.staff_id, ACT_AS, f"os:{acct.name}", ALLOWED,
                              f"service account {acct} acts as {grant.staff_id}, granted by "
                              f"{grant.granted_by} in {where}")
        return outcome.actor_id

    def _grant_problem(self, grant: ServiceGrant) -> str | None:
        """Why a service grant does not hold now (its identity or its grantor), or None."""
        if self.registry.staff(grant.staff_id) is None:
            return f"{grant.staff_id} is not a registered service identity"
        admin = self.registry.staff(grant.granted_by)
        if admin is None or admin.status != STATUS_ACTIVE or ADMINISTRATOR not in admin.roles:
            return (f"the grant to {grant.staff_id} is by {grant.granted_by}, who is not an "
                    "active administrator")
        return None

    def record(self, actor_id: str, action: str, object_id: str, result: str,
               reason: str) -> AuditRecord:
        """Append a record the caller decided itself (e.g. the outcome of an export)."""
        return self.audit.append(actor_id, action, object_id, result, reason)

    def authorize(
        self, actor_id: str, action: str, object_id: str, *, refusal: str | None = None,
        refusal_error: type[CustodyError] = RuleRefused,
    ) -> Decision:
        """Decide, audit, then return the Decision or raise.

        PermissionDenied when the permission table refuses; `refusal_error(refusal)` when
        the permission holds but the caller's rule refuses (`refusal` is its one-line why).
        """
        person = self.registry.staff(actor_id)
        if unenforced(self.registry.is_empty(), action):  # a fresh installation (bootstrap)
            allowed, reason = True, UNENFORCED
        else:
            allowed, reason = decide(person, actor_id, action)
        error: type[CustodyError] = PermissionDenied
        if allowed and refusal:
            allowed, reason, error = False, refusal, refusal_error
        return self._finish(person, actor_id, action, object_id, allowed, reason, error)

    def authorize_bootstrap(
        self, actor_id: str, action: str, object_id: str, *, refusal: str | None
    ) -> Decision:
        """The first registration of an empty registry (nobody exists to authorise it)."""
        if not self.registry.is_empty():
            raise PermissionDenied("bootstrap is only for an empty personnel registry")
        allowed = refusal is None
        reason = refusal or BOOTSTRAP
        return self._finish(None, actor_id, action, object_id, allowed, reason, RuleRefused)

    def _finish(
        self, person: StaffEventRecord | None, actor_id: str, action: str, object_id: str,
        allowed: bool, reason: str, error: type[CustodyError],
    ) -> Decision:
        rec = self.audit.append(actor_id, action, object_id, ALLOWED if allowed else REFUSED,
                                reason)
        if not allowed:
            if error is PermissionDenied:
                raise PermissionDenied(
                    f"{_who(person, actor_id)} may not {action} {object_id}: {reason}")
            raise error(reason)
        return Decision(actor_id, action, object_id, True, reason, rec.seq)

    def authorize_second(
        self, actor_id: str, action: str, object_id: str, *, first_actor_id: str, rule: str
    ) -> Decision:
        """The second person of a two-person rule: authorised AND not the first person."""
        refusal = None
        if actor_id == first_actor_id:
            refusal = (f"{rule}: {action} of {object_id} needs a second, different person; "
                       f"{actor_id} already acted as the first")
        return self.authorize(actor_id, action, object_id, refusal=refusal,
                              refusal_error=PermissionDenied)

    def authorize_hold_lift(
        self, first_actor_id: str, second_actor_id: str, object_id: str
    ) -> tuple[Decision, Decision]:
        """Lifting a legal hold: two different people, each allowed to lift holds."""
        first = self.authorize(first_actor_id, HOLD_LIFT, object_id)
        second = self.authorize_second(second_actor_id, HOLD_LIFT, object_id,
                                       first_actor_id=first_actor_id, rule="two-person rule")
        return first, second

    def authorize_export_approval(
        self, approver_id: str, requester_id: str, object_id: str
    ) -> Decision:
        """AV-15: an export is approved by someone other than the person who requested it."""
        return self.authorize_second(approver_id, EXPORT_APPROVE, object_id,
                                     first_actor_id=requester_id, rule="AV-15")
