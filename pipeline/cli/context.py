"""The store, catalog, authority and acting person of one command, opened once.

A command that only reads opens with `writes=False`: then a local catalog or store that
does not exist is an error that says where it looked, instead of being created (the
library's `Catalog(...)` and `LocalStore(...)` create their directories, which is right for
ingest and wrong for a mistyped `--catalog` of a query). An s3:// location is not checked
here: opening it creates nothing on this machine but its cache.

Who acts is `Authority.acting` for the caller's binding (`caller_of`: the real uid and the
identities file that applies, `pipeline.people.identity.bind_caller`); the CLI decides
nothing about identity itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.cli.settings import Settings, describe_origin
from pipeline.errors import InputError

if TYPE_CHECKING:
    from pipeline.catalog.core import Catalog
    from pipeline.people.identity import Caller
    from pipeline.people.permissions import Authority
    from pipeline.storage.base import WormStore


@dataclass(frozen=True, slots=True)
class Context:
    store: WormStore
    catalog: Catalog
    auth: Authority
    actor: str


def _is_remote(location: str) -> bool:
    return location.startswith("s3://")


def require_catalog(s: Settings) -> None:
    """A read-only command needs a catalog that is already there (local ones checked)."""
    if _is_remote(s.catalog):
        return
    root = Path(s.catalog)
    if not (root / "batches").is_dir():
        what = "no catalog" if not root.exists() else "not a catalog (no batches/)"
        raise InputError(f"{what} at {root.resolve()} ({describe_origin(s, 'catalog')}); "
                         "run `custody ingest` first or point --catalog at one")


def require_store(s: Settings) -> None:
    if _is_remote(s.store):
        return
    root = Path(s.store)
    if not (root / "objects").is_dir():
        what = "no store" if not root.exists() else "not a store (no objects/)"
        raise InputError(f"{what} at {root.resolve()} ({describe_origin(s, 'store')}); "
                         "point --store at the store of this catalog")


def open_catalog(s: Settings, *, writes: bool) -> Catalog:
    """The catalog `s` names. An s3:// catalog keeps its local state (catalog.duckdb for
    analysts, the ingest lock, cached manifests) under `<catalog_cache>/<bucket>/<prefix>`."""
    from pipeline.catalog.core import Catalog

    if not writes:
        require_catalog(s)
    cache = Path(s.catalog_cache) / s.catalog.removeprefix("s3://").strip("/")
    return Catalog.open(s.catalog, env=s.store_env, cache_dir=cache)


def open_store(s: Settings, *, writes: bool) -> WormStore:
    from pipeline.storage import open_store as open_location

    if not writes:
        require_store(s)
    return open_location(s.store, env=s.store_env)


def caller_of(s: Settings) -> Caller:
    """The account running this command and the identities binding that applies to it."""
    from pipeline.people.identity import bind_caller

    return bind_caller(s.os_account, system_identities=s.system_identities,
                       config_identities=s.config_identities, config_path=s.config.path,
                       catalog=s.catalog)


@contextlib.contextmanager
def open_context(s: Settings, *, writes: bool, require_actor: bool = False) -> Iterator[Context]:
    """(store, catalog, Authority, acting person) for one command. The acting person is the
    caller's mapped staff ID (`--as` may only repeat it); without a mapping, only a fresh
    installation (empty personnel registry) may act, as `unregistered:<account>`.
    `require_actor` (the people commands) wants a staff ID even then: the first person
    registers themselves."""
    from pipeline.people.identity import bound_id
    from pipeline.people.permissions import open_authority

    caller = caller_of(s)  # a bad identities file fails before anything is opened
    if require_actor and not s.actor and not bound_id(caller):
        raise InputError("no acting person: pass --as STAFF_ID or set `as = \"STAFF_ID\"` "
                         "in custody.toml")
    # The catalog first: it says what a store is for. A read checks each before opening it.
    catalog = open_catalog(s, writes=writes)
    try:
        store = open_store(s, writes=writes)
    except BaseException:
        catalog.close()
        raise
    try:
        with open_authority(catalog, store, s.now) as auth:
            actor = auth.acting(s.actor, caller=caller)
            yield Context(store, catalog, auth, actor)
    finally:
        catalog.close()
