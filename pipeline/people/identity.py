"""Who the operating system says runs a command, and which staff ID that account may act as.

`--as STAFF_ID` alone is a claim. The binding is a root-owned identities file (default
`/etc/custody/identities.toml`) that maps Unix accounts to staff IDs, and may let a named
service account act as a registered service identity (the nightly job):

    [accounts]
    zhang = "ZF0001"          # by account name
    1003 = "FZ0301"           # or by uid (a bare all-digit key)

    [service.custody-nightly]
    staff_id = "SVC-NIGHTLY"
    granted_by = "ZF0001"     # an active administrator of the registry

The file, and every directory above it, must be owned by root and writable by nobody else
(`check_secure`, ssh's StrictModes; a root-owned sticky directory such as /tmp may be
world-writable, since nobody else can rename what root put in it). A file an ordinary user
could write would make the binding a claim again.

Which file applies (`bind_caller`, decided once per command):
- the system file (`<system_dir>/identities.toml`, or `identities` in the root-owned system
  config) when it exists: then it is the only one, and a user config that names another is
  refused;
- otherwise, on a machine with no system file, a *personal installation*: a local catalog
  owned by the caller (the demo, a developer's directory). The caller could rewrite its files
  anyway, so a config of theirs may name their own identities file (owned by them or root),
  and without one `--as` is taken as given, as before;
- otherwise (a catalog the caller does not own and no system file) nobody is bound, and once
  the registry holds anyone every command is refused.

`resolve` is the pure rule of who acts; `Authority.acting` calls it, audits refusals and
delegations, and checks the service grant against the registry. The operating-system
identity (`OsAccount`) is passed in by the driver, as the clock is: nothing here calls
`os.getuid()`.
"""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import InputError
from pipeline.people.bootstrap import UNREGISTERED

NO_ACTOR = ("no acting person: pass --as STAFF_ID or set `as = \"STAFF_ID\"` in custody.toml "
            "(every command acts as a registered person)")
DEFAULT_SYSTEM_DIR = Path("/etc/custody")
IDENTITIES_NAME = "identities.toml"


class IdentityError(InputError):
    """An identities or config file is unsafe or malformed, or an account is not bound."""


@dataclass(frozen=True, slots=True)
class OsAccount:
    """The real user the process runs as (from the driver: `os.getuid()` and its name)."""

    uid: int
    name: str

    def __str__(self) -> str:
        return f"{self.name} (uid {self.uid})"


@dataclass(frozen=True, slots=True)
class ServiceGrant:
    """A service account allowed to act as a registered service identity."""

    account: str
    staff_id: str
    granted_by: str


@dataclass(frozen=True, slots=True)
class Identities:
    """A parsed identities file: accounts (by uid or name) -> staff ID, and service grants."""

    path: Path
    by_uid: Mapping[int, str] = field(default_factory=dict)
    by_name: Mapping[str, str] = field(default_factory=dict)
    services: Mapping[str, ServiceGrant] = field(default_factory=dict)

    def staff_of(self, account: OsAccount) -> str | None:
        """The staff ID mapped to `account` (its uid first, then its name), or None."""
        return self.by_uid.get(account.uid) or self.by_name.get(account.name)

    def service_of(self, account: OsAccount) -> ServiceGrant | None:
        return self.services.get(account.name)


@dataclass(frozen=True, slots=True)
class Caller:
    """The account running a command and the binding it is held to.

    `identities` is the file that applies, or None: then `personal` says whether this is
    the caller's own installation (`--as` taken as given) or an unbound one (refused once
    the registry holds anyone); `why` says which, for messages.
    """

    account: OsAccount
    identities: Identities | None
    personal: bool = False
    why: str = ""


@dataclass(frozen=True, slots=True)
class Resolved:
    """Who acts, and (for a service account) the grant it acts under."""

    actor_id: str
    service: ServiceGrant | None = None


@dataclass(frozen=True, slots=True)
class Refused:
    """Why the caller may not act as requested; `who` is the audit record's actor. A
    missing `--as` (`audit=False`) is a usage error, not an attempt."""

    who: str
    reason: str
    audit: bool = True


# --- StrictModes ----------------------------------------------------------------------------
def _owner_ok(st: os.stat_result, owners: frozenset[int]) -> bool:
    return st.st_uid in owners


def check_secure(path: Path, *, owners: frozenset[int], what: str) -> Path:
    """`path` resolved, after checking it and every directory above it: a regular file owned
    by one of `owners`, not writable by group or others; each directory owned by one of
    `owners` (or root) and not group/other-writable, unless it is a root-owned sticky
    directory (/tmp). Raises IdentityError naming the file and the offending owner/mode."""
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        raise IdentityError(f"{path}: cannot read the {what}: "
                            f"{getattr(exc, 'strerror', None) or exc}") from None
    allowed = ", ".join("root" if u == 0 else f"uid {u}" for u in sorted(owners))
    try:
        st = real.stat()
    except OSError as exc:
        raise IdentityError(f"{real}: cannot read the {what}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise IdentityError(f"{real}: refused: the {what} is not a regular file")
    if not _owner_ok(st, owners):
        raise IdentityError(f"{real}: refused: the {what} is owned by uid {st.st_uid}, "
                            f"not {allowed}")
    if st.st_mode & 0o022:
        raise IdentityError(
            f"{real}: refused: the {what} is {_writable(st.st_mode)} (mode "
            f"{stat.S_IMODE(st.st_mode):04o}); only its owner may write it (chmod 0644)")
    dir_owners = owners | {0}
    for parent in real.parents:
        try:
            pst = parent.stat()
        except OSError as exc:
            raise IdentityError(f"{parent}: cannot check a directory above {real}: "
                                f"{exc.strerror}") from None
        if not _owner_ok(pst, dir_owners):
            raise IdentityError(f"{real}: refused: directory {parent} is owned by uid "
                                f"{pst.st_uid}, not {allowed}")
        sticky_root = pst.st_uid == 0 and pst.st_mode & stat.S_ISVTX
        if pst.st_mode & 0o022 and not sticky_root:
            raise IdentityError(
                f"{real}: refused: directory {parent} is {_writable(pst.st_mode)} (mode "
                f"{stat.S_IMODE(pst.st_mode):04o}); someone else could replace the {what}")
    return real


def _writable(mode: int) -> str:
    who = [w for bit, w in ((0o020, "group"), (0o002, "other")) if mode & bit]
    return " and ".join(who) + "-writable"


# --- the file -------------------------------------------------------------------------------
def parse_identities(text: str, path: Path) -> Identities:
    """An identities file's contents, every key checked (unknown keys are refused)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise IdentityError(f"{path}: invalid TOML: {exc}") from None
    extra = sorted(set(data) - {"accounts", "service"})
    if extra:
        raise IdentityError(f"{path}: unknown key {extra[0]!r}; expected [accounts] and "
                            "[service.ACCOUNT] tables")
    accounts = data.get("accounts", {})
    if not isinstance(accounts, dict):
        raise IdentityError(f"{path}: accounts must be a table ([accounts])")
    by_uid: dict[int, str] = {}
    by_name: dict[str, str] = {}
    for key, staff in accounts.items():
        if not isinstance(staff, str) or not staff.strip():
            raise IdentityError(f"{path}: accounts.{key} = {staff!r}: expected a staff ID")
        if key.isdigit():
            by_uid[int(key)] = staff.strip()
        else:
            by_name[key] = staff.strip()
    services: dict[str, ServiceGrant] = {}
    table = data.get("service", {})
    if not isinstance(table, dict):
        raise IdentityError(f"{path}: service must be a table ([service.ACCOUNT])")
    for account, grant in table.items():
        where = f"{path}: service.{account}"
        if not isinstance(grant, dict):
            raise IdentityError(f"{where} must be a table with staff_id and granted_by")
        unknown = sorted(set(grant) - {"staff_id", "granted_by"})
        if unknown:
            raise IdentityError(f"{where}: unknown key {unknown[0]!r}; expected staff_id, "
                                "granted_by")
        staff_id, granted_by = grant.get("staff_id"), grant.get("granted_by")
        if not isinstance(staff_id, str) or not staff_id.strip():
            raise IdentityError(f"{where}: staff_id is required (the service identity)")
        if not isinstance(granted_by, str) or not granted_by.strip():
            raise IdentityError(f"{where}: granted_by is required (the administrator who "
                                "granted it)")
        if account in by_name or staff_id in by_name.values() or staff_id in by_uid.values():
            raise IdentityError(f"{where}: a service account or identity may not also be a "
                                "person's mapping in [accounts]")
        services[account] = ServiceGrant(account, staff_id.strip(), granted_by.strip())
    return Identities(path, by_uid, by_name, services)


def load_identities(path: Path, *, owners: frozenset[int]) -> Identities:
    """Check `path` (`check_secure`) and parse it."""
    real = check_secure(path, owners=owners, what="identities file")
    try:
        text = real.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise IdentityError(f"{real}: cannot read the identities file: {exc}") from None
    return parse_identities(text, real)


def _catalog_owner(catalog: str) -> int | None:
    """The uid owning a local catalog directory (or the nearest existing parent, for a
    catalog about to be created); None for an s3:// catalog."""
    if catalog.startswith("s3://"):
        return None
    p = Path(catalog).absolute()
    for candidate in (p, *p.parents):
        try:
            return candidate.stat().st_uid
        except OSError:
            continue
    return None


def bind_caller(
    account: OsAccount, *, system_identities: Path, config_identities: Path | None,
    config_path: Path | None, catalog: str,
) -> Caller:
    """The binding of `account` for a command on `catalog` (the rules in the module doc).

    `system_identities` is the system file's path (it may not exist); `config_identities` is
    an identities file named by a user's config (`config_path`), honoured only on a
    personal installation."""
    owner = _catalog_owner(catalog)
    own_catalog = owner is not None and owner == account.uid
    if system_identities.exists():
        if config_identities is not None:
            raise IdentityError(
                f"{config_path}: identities = {str(config_identities)!r} is refused: this "
                f"machine has {system_identities}, the only identities file that counts; "
                "remove `identities` from the config")
        return Caller(account, load_identities(system_identities, owners=frozenset({0})))
    if config_identities is not None:
        if not own_catalog:
            raise IdentityError(
                f"{config_path}: identities = {str(config_identities)!r} is refused: a "
                "config may name its own identities file only for a local catalog owned by "
                f"{account.name} ({catalog} is not); a shared installation maps accounts in "
                f"{system_identities} (owned by root)")
        table = load_identities(config_identities, owners=frozenset({0, account.uid}))
        return Caller(account, table, personal=True,
                      why=f"{table.path}, named by {config_path} for {account.name}'s own "
                      "catalog")
    if own_catalog:
        return Caller(account, None, personal=True,
                      why=f"no {system_identities}; the catalog is {account.name}'s own")
    return Caller(account, None, personal=False,
                  why=f"{system_identities} does not exist and the catalog {catalog} is not "
                  f"{account.name}'s own")


# --- who acts (pure) ------------------------------------------------------------------------
def bound_id(caller: Caller) -> str | None:
    """The staff ID the caller's account is bound to (a mapping or a service grant)."""
    if caller.identities is None:
        return None
    grant = caller.identities.service_of(caller.account)
    return grant.staff_id if grant else caller.identities.staff_of(caller.account)


def resolve(caller: Caller, requested: str | None, *, registry_empty: bool) -> Resolved | Refused:
    """Who a command acts as, or why not. Pure.

    - A service account acts only as its granted service identity.
    - A mapped account acts as its staff ID (`--as` may repeat it, never name another).
    - An unmapped account is refused once the registry holds anyone; on a fresh installation
      it acts as `unregistered:<name>` (the bootstrap), and may not claim a staff ID.
    - Without any identities file: the caller's own installation takes `--as` as given; an
      unbound one is refused once the registry holds anyone.
    """
    acct = caller.account
    table = caller.identities
    if table is None:
        if requested and (caller.personal or registry_empty):
            return Resolved(requested)
        if requested:
            return Refused(f"{UNREGISTERED}{acct.name}",
                           f"identity refused: {acct} is bound to no staff ID: {caller.why}")
        if registry_empty:
            return Resolved(UNREGISTERED + acct.name)
        if caller.personal:
            return Refused(f"{UNREGISTERED}{acct.name}", NO_ACTOR, audit=False)
        return Refused(f"{UNREGISTERED}{acct.name}",
                       f"identity refused: {acct} is bound to no staff ID: {caller.why}")
    grant = table.service_of(acct)
    if grant is not None:
        if requested and requested != grant.staff_id:
            return Refused(grant.staff_id, (
                f"identity refused: service account {acct} may act only as "
                f"{grant.staff_id} (granted in {table.path}), not as {requested}"))
        return Resolved(grant.staff_id, grant)
    mapped = table.staff_of(acct)
    if mapped is None:
        if registry_empty and not requested:
            return Resolved(UNREGISTERED + acct.name)
        return Refused(f"{UNREGISTERED}{acct.name}", (
            f"identity refused: {acct} is not mapped to a staff ID in {table.path}"
            + (f"; it may not act as {requested}" if requested else "")))
    if requested and requested != mapped:
        return Refused(mapped, (
            f"identity refused: {acct} may act only as {mapped} (mapped in {table.path}), "
            f"not as {requested}"))
    return Resolved(mapped)
