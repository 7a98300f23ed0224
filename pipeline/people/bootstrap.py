"""The fresh-installation (bootstrap) policy, in one place. Pure.

An installation starts with an empty personnel registry, so nobody can be checked yet:
- every action some role could do is allowed and audited as unenforced (`unenforced`);
  deleting and lowering retention stay refused, since no role may do them;
- a command needs no registered actor: it acts as `unregistered:<os user>`
  (`acting_person`); once anyone is registered, every command names a registered person;
- the first registration ends this mode. When someone registers themselves into the empty
  registry it is the bootstrap, and that person must be an administrator
  (`bootstrap_refusal`).
The permission check (`permissions.Authority`), the registry (`registry.add_staff`) and
the CLI call these; none of them spells the rule again.
"""

from __future__ import annotations

from collections.abc import Iterable

from pipeline.errors import InputError
from schemas.people import ADMINISTRATOR, PERMISSIONS

UNENFORCED = (
    "personnel registry is empty: permissions are not enforced until staff are registered"
)
BOOTSTRAP = "bootstrap: first administrator registers themselves"
UNREGISTERED = "unregistered:"


def unenforced(registry_empty: bool, action: str) -> bool:
    """Whether `action` is allowed unchecked: a fresh installation, and some role could
    do it."""
    return registry_empty and any(action in acts for acts in PERMISSIONS.values())


def is_bootstrap(registry_empty: bool, actor_id: str, new_staff_id: str) -> bool:
    """Whether this registration is the bootstrap: someone registers themselves into the
    empty registry."""
    return registry_empty and actor_id == new_staff_id


def bootstrap_refusal(who: str, roles: Iterable[str]) -> str | None:
    """Why the bootstrap registration of `who` (its display name) is refused, or None."""
    if ADMINISTRATOR in roles:
        return None
    return f"{who}: the first person registered must be an administrator registering themselves"


def acting_person(registry_empty: bool, requested: str | None, *, os_user: str) -> str:
    """Who a command acts as: the requested staff number, or on a fresh installation the
    operating-system user (`unregistered:<user>`); otherwise an InputError."""
    if requested:
        return requested
    if not registry_empty:
        raise InputError(
            "no acting person: pass --as STAFF_ID or set `as = \"STAFF_ID\"` in "
            "custody.toml (every command acts as a registered person)"
        )
    return UNREGISTERED + os_user
