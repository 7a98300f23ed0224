"""pipeline.people.identity: the identities file, StrictModes, and who acts (pure rules)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.people.identity import (
    Caller,
    Identities,
    IdentityError,
    OsAccount,
    Refused,
    Resolved,
    ServiceGrant,
    bind_caller,
    check_secure,
    parse_identities,
    resolve,
)

P = Path("/etc/custody/identities.toml")
AUX = OsAccount(1003, "wang")
TABLE = Identities(P, by_uid={1003: "FZ0301"}, by_name={"zhao": "LU0001"},
                   services={"custody-nightly": ServiceGrant("custody-nightly", "SVC-1", "ZF1")})


def test_accounts_by_name_and_by_uid_and_service_grants_are_parsed() -> None:
    t = parse_identities('[accounts]\nzhao = "LU0001"\n1003 = "FZ0301"\n'
                         '[service.custody-nightly]\nstaff_id = "SVC-1"\ngranted_by = "ZF1"\n', P)
    assert (t.by_name, t.by_uid) == ({"zhao": "LU0001"}, {1003: "FZ0301"})
    assert t.services["custody-nightly"] == ServiceGrant("custody-nightly", "SVC-1", "ZF1")


@pytest.mark.parametrize(("text", "message"), [
    ('acounts = {}\n', "unknown key 'acounts'"),
    ('[accounts]\nzhao = 7\n', "accounts.zhao = 7: expected a staff ID"),
    ('[service.n]\nstaff_id = "S"\n', "granted_by is required"),
    ('[service.n]\nstaff_id = "S"\ngranted_by = "A"\nroles = []\n', "unknown key 'roles'"),
    ('[accounts]\nn = "S"\n[service.n]\nstaff_id = "S"\ngranted_by = "A"\n',
     "may not also be a person's mapping"),
])
def test_a_malformed_identities_file_is_refused_naming_the_key(text: str, message: str) -> None:
    with pytest.raises(IdentityError, match=message):
        parse_identities(text, P)


def test_a_mapped_account_acts_only_as_its_staff_id() -> None:
    caller = Caller(AUX, TABLE)
    assert resolve(caller, None, registry_empty=False) == Resolved("FZ0301")
    assert resolve(caller, "FZ0301", registry_empty=False) == Resolved("FZ0301")
    out = resolve(caller, "LU0001", registry_empty=False)
    assert isinstance(out, Refused) and out.who == "FZ0301"
    assert out.reason == ("identity refused: wang (uid 1003) may act only as FZ0301 (mapped "
                          "in /etc/custody/identities.toml), not as LU0001")


def test_an_unmapped_account_bootstraps_only_as_unregistered() -> None:
    caller = Caller(OsAccount(2000, "li"), TABLE)
    assert resolve(caller, None, registry_empty=True) == Resolved("unregistered:li")
    assert isinstance(resolve(caller, "ZF1", registry_empty=True), Refused)
    assert isinstance(resolve(caller, None, registry_empty=False), Refused)


def test_a_service_account_acts_as_its_grant() -> None:
    caller = Caller(OsAccount(999, "custody-nightly"), TABLE)
    assert resolve(caller, None, registry_empty=False) == Resolved("SVC-1", TABLE.services[
        "custody-nightly"])
    assert isinstance(resolve(caller, "ZF1", registry_empty=False), Refused)


def test_without_identities_a_personal_installation_takes_as_and_an_unbound_one_does_not(
) -> None:
    personal = Caller(AUX, None, personal=True)
    unbound = Caller(AUX, None, personal=False, why="no file")
    assert resolve(personal, "ZF1", registry_empty=False) == Resolved("ZF1")
    assert isinstance(resolve(unbound, "ZF1", registry_empty=False), Refused)
    assert resolve(unbound, "ZF1", registry_empty=True) == Resolved("ZF1")  # the bootstrap


def test_a_group_writable_file_is_refused_with_its_mode(tmp_path: Path) -> None:
    f = tmp_path / "identities.toml"
    f.write_text("", encoding="utf-8")
    os.chmod(f, 0o664)
    with pytest.raises(IdentityError, match=r"group-writable \(mode 0664\)"):
        check_secure(f, owners=frozenset({os.getuid()}), what="identities file")


def test_a_writable_directory_above_the_file_is_refused(tmp_path: Path) -> None:
    d = tmp_path / "etc"
    d.mkdir()
    (d / "identities.toml").write_text("", encoding="utf-8")
    os.chmod(d, 0o777)
    with pytest.raises(IdentityError, match=f"directory {d} is group and other-writable"):
        check_secure(d / "identities.toml", owners=frozenset({os.getuid()}),
                     what="identities file")


def test_a_file_of_another_owner_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "identities.toml"
    f.write_text("", encoding="utf-8")
    with pytest.raises(IdentityError, match=f"owned by uid {os.getuid()}, not uid 4242"):
        check_secure(f, owners=frozenset({4242}), what="identities file")


def test_a_config_may_name_its_own_identities_file_only_for_its_own_catalog(
    tmp_path: Path,
) -> None:
    me = OsAccount(os.getuid(), "me")
    ids = tmp_path / "identities.toml"
    ids.write_text('[accounts]\nme = "ZF1"\n', encoding="utf-8")
    mine = bind_caller(me, system_identities=tmp_path / "none.toml", config_identities=ids,
                       config_path=tmp_path / "custody.toml", catalog=str(tmp_path / "cat"))
    assert mine.identities is not None and mine.identities.by_name == {"me": "ZF1"}
    with pytest.raises(IdentityError, match="only for a local catalog owned by me"):
        bind_caller(me, system_identities=tmp_path / "none.toml", config_identities=ids,
                    config_path=tmp_path / "custody.toml", catalog="s3://bucket/catalog")
