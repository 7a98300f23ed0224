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

The binding (issue 10). `acting(requested, caller=...)` resolves who acts for the
operating-system account and BINDS the Authority to that person (and writes the account on
every audit record from then on, `AuditLog.os_account`). After that, `authorize`,
`authorize_bootstrap`, `authorize_second` and `record` for any other staff ID are refused
(PermissionDenied, audited as the bound person): a script that skips `acting` or passes
someone else's ID meets the same wall as `--as`. An Authority on which `acting` was never
called refuses every action (audited). Calling `acting` again re-runs the same identity
check and rebinds (or, refused, leaves the Authority unbound).

Second persons. Export approval is by the bound person (the approver); its requester acted
in an earlier command. Where both people of a two-person rule must be proven, the first
records a pending request in the audit log (`request_second`) and the second confirms it
from their OWN bound Authority in a later command (`confirm_second`); `pending_second`
reads it back. `authorize_hold_lift(first, second, ...)` in one command is the older form:
the first must be the bound person, and the second is only NAMED by them, which its
audit record says ("named by ..., not proven by their own account").
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pipeline.audit.log import AuditLog
from pipeline.catalog.core import Catalog
from pipeline.errors import CustodyError, InputError
from pipeline.people.bootstrap import BOOTSTRAP, UNENFORCED, acting_person, unenforced
from pipeline.people.identity import Caller, OsAccount, Refused, ServiceGrant, resolve
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


def _account(account: OsAccount) -> str:
    return str(account)


class PermissionDenied(CustodyError):
    """The acting person may not do this; the refusal is already in the audit log."""


class RuleRefused(CustodyError):
    """A rule (AUX-6, AUX-7, AV-10, AV-15...) refuses the action; audited already."""


TWO_PERSON_REQUEST = "two_person.request"  # audit action: a first person waits for a second
TWO_PERSON_CONFIRM = "two_person.confirm"  # audit action: the second person confirmed
TWO_PERSON_WINDOW = dt.timedelta(days=7)  # how long a request waits for its second person
NOT_BOUND = ("no acting person is bound to this Authority: call acting(requested, "
             "caller=bind_caller(...)) first (the CLI does)")
_REQUEST_RE = re.compile(r"^(\S+) of .* first person (\S+), decision #(\d+)")
_CONFIRM_RE = re.compile(r"request #(\d+) ")


@dataclass(frozen=True, slots=True)
class PendingSecond:
    """A two-person action the first person asked for, waiting for a second person."""

    action: str
    object_id: str
    first_actor_id: str
    first_audit_seq: int  # the first person's allowed decision
    request_seq: int  # the `two_person.request` record
    requested_at_utc: dt.datetime


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
        self._bound: str | None = None  # who `acting` resolved; None: nobody may act

    @property
    def bound(self) -> str | None:
        """The staff ID `acting` bound this Authority to (None before, or after a refusal)."""
        return self._bound

    def _bind(self, actor_id: str) -> str:
        self._bound = actor_id
        return actor_id

    def _require_bound(self, actor_id: str, action: str, object_id: str) -> None:
        """Refuse (audited) unless `actor_id` is the person `acting` bound this Authority to."""
        if self._bound is None:
            self.audit.append(actor_id, action, object_id, REFUSED, NOT_BOUND)
            raise PermissionDenied(f"{actor_id} may not {action} {object_id}: {NOT_BOUND}")
        if actor_id != self._bound:
            reason = (f"identity refused: this command acts as {self._bound} "
                      f"(os account {self.audit.os_account or '?'}), not as {actor_id}")
            self.audit.append(self._bound, action, object_id, REFUSED, reason)
            raise PermissionDenied(reason)

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
        refused, so a script cannot skip the binding by leaving `caller` out.

        The person returned is the one this Authority is bound to from then on (module
        doc); the OS account goes on every audit record (`AuditLog.os_account`)."""
        self._bound = None
        empty = self.registry.is_empty()
        if caller is None:
            if os_user is None:
                raise TypeError("Authority.acting() needs caller= (the OS account's binding)")
            self.audit.os_account = os_user
            if not empty:
                raise PermissionDenied(
                    "the library needs the caller's operating-system identity "
                    "(acting(..., caller=bind_caller(...))) once the registry holds anyone")
            return self._bind(acting_person(empty, requested, os_user=os_user))
        self.audit.os_account = _account(caller.account)
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
        return self._bind(outcome.actor_id)

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
        """Append a record the caller decided itself (e.g. the outcome of an export); only
        for the bound person."""
        self._require_bound(actor_id, action, object_id)
        return self.audit.append(actor_id, action, object_id, result, reason)

    def authorize(
        self, actor_id: str, action: str, object_id: str, *, refusal: str | None = None,
        refusal_error: type[CustodyError] = RuleRefused,
    ) -> Decision:
        """Decide, audit, then return the Decision or raise.

        PermissionDenied when the permission table refuses; `refusal_error(refusal)` when
        the permission holds but the caller's rule refuses (`refusal` is its one-line why).
        Only for the bound person (module doc).
        """
        self._require_bound(actor_id, action, object_id)
        return self._authorize(actor_id, action, object_id, refusal=refusal,
                               refusal_error=refusal_error)

    def _authorize(
        self, actor_id: str, action: str, object_id: str, *, refusal: str | None,
        refusal_error: type[CustodyError], note: str = "",
    ) -> Decision:
        person = self.registry.staff(actor_id)
        if unenforced(self.registry.is_empty(), action):  # a fresh installation (bootstrap)
            allowed, reason = True, UNENFORCED
        else:
            allowed, reason = decide(person, actor_id, action)
        error: type[CustodyError] = PermissionDenied
        if allowed and refusal:
            allowed, reason, error = False, refusal, refusal_error
        if allowed and note:
            reason = f"{reason}; {note}"
        return self._finish(person, actor_id, action, object_id, allowed, reason, error)

    def authorize_bootstrap(
        self, actor_id: str, action: str, object_id: str, *, refusal: str | None
    ) -> Decision:
        """The first registration of an empty registry (nobody exists to authorise it)."""
        if not self.registry.is_empty():
            raise PermissionDenied("bootstrap is only for an empty personnel registry")
        self._require_bound(actor_id, action, object_id)
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
        """The second person of a two-person rule: authorised AND not the first person.
        `actor_id` is the bound person (the first acted in an earlier command)."""
        self._require_bound(actor_id, action, object_id)
        return self._second(actor_id, action, object_id, first_actor_id=first_actor_id,
                            rule=rule)

    def _second(
        self, actor_id: str, action: str, object_id: str, *, first_actor_id: str, rule: str,
        note: str = "",
    ) -> Decision:
        refusal = None
        if actor_id == first_actor_id:
            refusal = (f"{rule}: {action} of {object_id} needs a second, different person; "
                       f"{actor_id} already acted as the first")
        return self._authorize(actor_id, action, object_id, refusal=refusal,
                               refusal_error=PermissionDenied, note=note)

    def authorize_hold_lift(
        self, first_actor_id: str, second_actor_id: str, object_id: str
    ) -> tuple[Decision, Decision]:
        """Lifting a legal hold: two different people, each allowed to lift holds, in one
        command. The first is the bound person; the second is only named by them (its
        record says so). Both proven: `request_second` then `confirm_second`."""
        first = self.authorize(first_actor_id, HOLD_LIFT, object_id)
        note = ""
        if second_actor_id != first_actor_id:
            note = f"named by {first_actor_id}, not proven by their own account"
        second = self._second(second_actor_id, HOLD_LIFT, object_id,
                              first_actor_id=first_actor_id, rule="two-person rule", note=note)
        return first, second

    # --- two proven people, in two commands -----------------------------------------------
    def request_second(self, action: str, object_id: str, *, rule: str) -> PendingSecond:
        """The first person of a two-person rule (the bound person): authorised for
        `action` now (audited), then a `two_person.request` record that waits, for
        `TWO_PERSON_WINDOW`, for a second person to `confirm_second` it in their own
        command. Nothing is done to the object yet."""
        first_id = self._bound or ""
        first = self.authorize(first_id, action, object_id)
        rec = self.audit.append(
            first_id, TWO_PERSON_REQUEST, object_id, ALLOWED,
            f"{action} of {object_id} ({rule}): first person {first_id}, decision "
            f"#{first.audit_seq}; waits for a second, different person to confirm")
        return PendingSecond(action, object_id, first_id, first.audit_seq, rec.seq, rec.at_utc)

    def pending_second(self, action: str, object_id: str) -> PendingSecond | None:
        """The newest unconfirmed request for `action` on `object_id` still within
        `TWO_PERSON_WINDOW`, from the audit log; None if there is none. Not audited."""
        requests: dict[int, PendingSecond] = {}
        for r in self.audit.show(object_id=object_id):
            if r.object_id != object_id or r.result != ALLOWED:
                continue
            if r.action == TWO_PERSON_REQUEST:
                m = _REQUEST_RE.match(r.reason)
                if m and m.group(1) == action and m.group(2) == r.actor_id:
                    requests[r.seq] = PendingSecond(action, object_id, r.actor_id,
                                                    int(m.group(3)), r.seq, r.at_utc)
            elif r.action == TWO_PERSON_CONFIRM:
                c = _CONFIRM_RE.search(r.reason)
                if c:
                    requests.pop(int(c.group(1)), None)
        now = self.audit.now()
        live = [p for p in requests.values() if now - p.requested_at_utc <= TWO_PERSON_WINDOW]
        return max(live, key=lambda p: p.request_seq) if live else None

    def confirm_second(
        self, action: str, object_id: str, *, rule: str
    ) -> tuple[PendingSecond, Decision]:
        """The second person (the bound person, proven by their own account): confirms the
        pending request of a DIFFERENT first person, both still allowed to do `action`.
        Audited (the second's decision, then `two_person.confirm`); PermissionDenied, also
        audited, when there is no pending request, the second is the first, or either may
        not act. On return the caller does the action."""
        second_id = self._bound or ""
        self._require_bound(second_id, action, object_id)
        pending = self.pending_second(action, object_id)
        problem = None
        if pending is None:
            problem = (f"{rule}: no pending request for {action} of {object_id} by a first "
                       f"person (within {TWO_PERSON_WINDOW.days} days)")
        else:
            allowed, why = decide(self.registry.staff(pending.first_actor_id),
                                  pending.first_actor_id, action)
            if not allowed:
                problem = f"{rule}: the first person may no longer {action}: {why}"
        if problem is not None:
            self.audit.append(second_id, action, object_id, REFUSED, problem)
            raise PermissionDenied(problem)
        assert pending is not None
        decision = self._second(second_id, action, object_id,
                                first_actor_id=pending.first_actor_id, rule=rule,
                                note=f"confirms request #{pending.request_seq} of "
                                     f"{pending.first_actor_id}")
        self.audit.append(second_id, TWO_PERSON_CONFIRM, object_id, ALLOWED,
                          f"{action} of {object_id} ({rule}): request #{pending.request_seq} "
                          f"of {pending.first_actor_id} confirmed by {second_id}, decision "
                          f"#{decision.audit_seq}")
        return pending, decision

    def authorize_export_approval(
        self, approver_id: str, requester_id: str, object_id: str
    ) -> Decision:
        """AV-15: an export is approved by someone other than the person who requested it."""
        return self.authorize_second(approver_id, EXPORT_APPROVE, object_id,
                                     first_actor_id=requester_id, rule="AV-15")
