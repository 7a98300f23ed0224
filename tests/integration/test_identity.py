"""Identity bound to the OS account (issue 10 item 1), with real Unix users.

Root (as CI runs) creates throw-away users with `useradd`, writes a root-owned identities
file into a root-owned temporary system directory, and runs `custody` as each user with
`runuser`. The system directory reaches the CLI through `CUSTODY_SYSTEM_DIR`, which is
honoured only on a machine without /etc/custody and only for root-owned files, so the
tests never touch the real /etc/custody. Elsewhere (not root, no useradd, or a machine
that has /etc/custody) the tests skip and say why.

The users' tree is a `mkdtemp` under /tmp made reachable (0755) rather than pytest's
tmp_path: pytest resets /tmp/pytest-of-root to 0700 at the start of every session, which
would cut a concurrently running session's users off mid-test.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.cli.main import main
from tests.unixusers import interpreter_for, throwaway_users, why_no_users

REPO = Path(__file__).resolve().parents[2]
AUX = ["--kind", "auxiliary", "--section", "综合执法队", "--post", "协管员",
       "--agency", "遂昌县人力资源公司", "--work-area", "大柘镇", "--contract-start", "2025-06-01",
       "--contract-end", "2027-05-31", "--first-hired", "2025-06-01", "--birth-date",
       "1995-05-01", "--screening", "passed"]


def _why_not() -> str | None:
    why = why_no_users()
    if why:
        return why
    if Path("/etc/custody").exists():
        return "this machine has /etc/custody: CUSTODY_SYSTEM_DIR is refused here (by design)"
    return None


pytestmark = pytest.mark.skipif(_why_not() is not None, reason=_why_not() or "")


def _interpreter() -> tuple[list[str], dict[str, str]]:
    """A Python another user may run with this project importable (tests.unixusers)."""
    python = interpreter_for("nobody")
    if python is None:
        pytest.skip(f"{sys.executable} is not reachable by other users and there is no "
                    f"system python{sys.version_info.major}.{sys.version_info.minor}")
    return python


@dataclass
class World:
    root: Path
    sysdir: Path
    users: dict[str, str]  # role -> account name
    python: list[str]
    pyenv: dict[str, str]

    @property
    def identities(self) -> Path:
        return self.sysdir / "identities.toml"

    def loc(self) -> list[str]:
        return ["--store", str(self.root / "data" / "store"),
                "--catalog", str(self.root / "data" / "catalog")]

    def env(self) -> dict[str, str]:
        return {"CUSTODY_SYSTEM_DIR": str(self.sysdir)}

    def as_root(self, *argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = main([*argv, *self.loc()], env=self.env(), out=out, err=err)
        self.share()
        return code, out.getvalue(), err.getvalue()

    def run(self, role: str, *argv: str, module: str = "pipeline.cli",
            loc: bool = True) -> subprocess.CompletedProcess[str]:
        """`custody argv...` as the user of `role`, through runuser (a clean environment:
        nothing but the system dir, the interpreter's path and a HOME)."""
        self.share()
        env = {**self.pyenv, **self.env(), "HOME": str(self.root), "PATH": "/usr/bin:/bin"}
        cmd = ["runuser", "-u", self.users[role], "--", "env", "-i",
               *(f"{k}={v}" for k, v in env.items()), *self.python, "-m", module, *argv,
               *(self.loc() if loc else [])]
        return subprocess.run(cmd, capture_output=True, text=True, cwd=self.root, timeout=120)

    def share(self) -> None:
        """The catalog is a shared installation's: every test user may write it (a real
        one would use a group), and none of them owns it."""
        subprocess.run(["chmod", "-R", "a+rwX", str(self.root / "data")], check=True)

    def write_identities(self, text: str, mode: int = 0o644) -> None:
        self.identities.write_text(text, encoding="utf-8")
        os.chown(self.identities, 0, 0)
        os.chmod(self.identities, mode)

    def audit(self) -> list[dict[str, str]]:
        code, out, err = self.as_root("audit", "show", "--json")
        assert code == 0, err
        recs: list[dict[str, str]] = json.loads(out)
        return recs

    def uid(self, role: str) -> int:
        import pwd

        return pwd.getpwnam(self.users[role]).pw_uid


@pytest.fixture(scope="module")
def users() -> Iterator[dict[str, str]]:
    """Throw-away accounts (unique names), removed with `userdel -r` afterwards."""
    with throwaway_users(("aux", "legal", "admin", "svc", "nobody")) as names:
        yield names


def _identities(users: dict[str, str]) -> str:
    return (f'[accounts]\nroot = "ZF0001"\n{users["admin"]} = "ZF0002"\n'
            f'{users["aux"]} = "FZ0301"\n{users["legal"]} = "LU0001"\n\n'
            f'[service.{users["svc"]}]\nstaff_id = "SVC-NIGHTLY"\ngranted_by = "ZF0001"\n')


@pytest.fixture
def fresh(users: dict[str, str]) -> Iterator[World]:
    """An empty installation: a root-owned system dir with the identities file."""
    root = Path(tempfile.mkdtemp(prefix="custody-identity-", dir="/tmp"))
    try:
        os.chmod(root, 0o755)
        sysdir = root / "etc"
        sysdir.mkdir(mode=0o755)
        (root / "data").mkdir()
        python, pyenv = _interpreter()
        w = World(root, sysdir, users, python, pyenv)
        w.write_identities(_identities(users))
        yield w
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def world(fresh: World) -> World:
    """The installation with its people: root's administrator, an auxiliary, a legal-unit
    member and the nightly job's service identity."""
    steps = [
        ("staff", "add", "ZF0001", "--name", "张三", "--kind", "officer", "--section", "办公室",
         "--certificate", "ZJ-0001", "--role", "administrator", "--as", "ZF0001"),
        ("staff", "add", "FZ0301", "--name", "王五", *AUX),
        ("staff", "add", "LU0001", "--name", "赵六", "--kind", "officer", "--section", "法制办",
         "--certificate", "ZJ-0002", "--role", "legal_unit"),
        ("staff", "add", "SVC-NIGHTLY", "--name", "夜间核验", "--kind", "service",
         "--section", "办公室", "--role", "analyst"),
    ]
    for argv in steps:
        code, _, err = fresh.as_root(*argv)
        assert code == 0, err
    return fresh


def test_an_auxiliary_account_cannot_act_as_a_legal_unit_member_through_the_cli(
    world: World,
) -> None:
    r = world.run("aux", "staff", "roster", "--as", "LU0001")
    assert r.returncode == 2
    assert r.stderr == (
        f"custody staff: error: identity refused: {world.users['aux']} (uid "
        f"{world.uid('aux')}) may act only as FZ0301 (mapped in {world.identities}), not as "
        "LU0001\n")
    last = [a for a in world.audit() if a["action"] == "identity.act_as"][-1]
    assert (last["who"], last["object"], last["result"]) == (
        "FZ0301", f"os:{world.users['aux']}", "refused")
    assert "not as LU0001" in last["reason"]


def test_an_auxiliary_account_cannot_act_as_a_legal_unit_member_through_the_library(
    world: World,
) -> None:
    script = world.root / "as_legal.py"
    script.write_text(
        "import datetime as dt, os, pwd, sys\n"
        "from pathlib import Path\n"
        "from pipeline.catalog.core import Catalog\n"
        "from pipeline.people.identity import OsAccount, bind_caller\n"
        "from pipeline.people.permissions import PermissionDenied, open_authority\n"
        "from pipeline.storage.local import LocalStore\n"
        "data, identities = Path(sys.argv[1]), Path(sys.argv[2])\n"
        "me = OsAccount(os.getuid(), pwd.getpwuid(os.getuid()).pw_name)\n"
        "caller = bind_caller(me, system_identities=identities, config_identities=None,\n"
        "                     config_path=None, catalog=str(data / 'catalog'))\n"
        "now = lambda: dt.datetime.now(dt.UTC)\n"
        "with open_authority(Catalog(data / 'catalog'), LocalStore(data / 'store'), now) as a:\n"
        "    for how in ({'caller': caller}, {'os_user': me.name}):\n"
        "        try:\n"
        "            a.acting('LU0001', **how)\n"
        "        except PermissionDenied as exc:\n"
        "            print(exc)\n"
        "    a.acting(None, caller=caller)  # bound as the auxiliary, then act as another\n"
        "    try:\n"
        "        a.authorize_export_approval('LU0001', 'FZ0301', 'export:E-1')\n"
        "    except PermissionDenied as exc:\n"
        "        print(exc)\n",
        encoding="utf-8")
    os.chmod(script, 0o644)
    world.share()
    env = {**world.pyenv, "PATH": "/usr/bin:/bin"}
    r = subprocess.run(["runuser", "-u", world.users["aux"], "--", "env", "-i",
                        *(f"{k}={v}" for k, v in env.items()), *world.python, str(script),
                        str(world.root / "data"), str(world.identities)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        f"identity refused: {world.users['aux']} (uid {world.uid('aux')}) may act only as "
        f"FZ0301 (mapped in {world.identities}), not as LU0001",
        "the library needs the caller's operating-system identity (acting(..., "
        "caller=bind_caller(...))) once the registry holds anyone",
        f"identity refused: this command acts as FZ0301 (os account {world.users['aux']} "
        f"(uid {world.uid('aux')})), not as LU0001",
    ]
    refused = [a for a in world.audit() if a["action"] == "identity.act_as"]
    assert [a["who"] for a in refused] == ["FZ0301"]
    (approval,) = [a for a in world.audit() if a["action"] == "export.approve"]
    assert (approval["who"], approval["result"]) == ("FZ0301", "refused")
    assert "not as LU0001" in approval["reason"]


def test_a_mapped_account_acts_as_its_staff_id_without_as(world: World) -> None:
    r = world.run("legal", "staff", "list", "--json")
    assert r.returncode == 0, r.stderr
    views = [a for a in world.audit() if a["action"] == "staff.view"]
    assert views[-1]["who"] == "LU0001" and views[-1]["result"] == "allowed"


def test_an_unmapped_account_is_refused_once_the_registry_has_people(world: World) -> None:
    r = world.run("nobody", "staff", "roster", "--as", "FZ0301")
    assert r.returncode == 2
    assert r.stderr == (
        f"custody staff: error: identity refused: {world.users['nobody']} (uid "
        f"{world.uid('nobody')}) is not mapped to a staff ID in {world.identities}; it may "
        "not act as FZ0301\n")


def test_a_group_writable_identities_file_is_refused(world: World) -> None:
    os.chmod(world.identities, 0o664)
    r = world.run("legal", "staff", "list")
    assert r.returncode == 2
    assert r.stderr == (
        f"custody staff: error: {world.identities}: refused: the identities file is "
        "group-writable (mode 0664); only its owner may write it (chmod 0644)\n")


def test_an_identities_file_owned_by_a_user_is_refused(world: World) -> None:
    os.chown(world.identities, world.uid("legal"), -1)
    r = world.run("legal", "staff", "list")
    assert r.returncode == 2
    assert r.stderr == (
        f"custody staff: error: {world.identities}: refused: the identities file is owned by "
        f"uid {world.uid('legal')}, not root\n")


def test_a_system_config_a_user_could_write_is_refused(world: World) -> None:
    cfg = world.sysdir / "custody.toml"
    cfg.write_text('timezone = "UTC"\n', encoding="utf-8")
    os.chmod(cfg, 0o666)
    r = world.run("legal", "staff", "list")
    assert r.returncode == 2
    assert r.stderr == (
        f"custody staff: error: {cfg}: refused: the config file is group and other-writable "
        "(mode 0666); only its owner may write it (chmod 0644)\n")


def test_a_user_config_cannot_name_another_identities_file(world: World) -> None:
    mine = world.root / "mine"
    mine.mkdir()
    (mine / "identities.toml").write_text(
        f'[accounts]\n{world.users["aux"]} = "LU0001"\n', encoding="utf-8")
    (mine / "custody.toml").write_text(
        f'identities = "{mine / "identities.toml"}"\n', encoding="utf-8")
    subprocess.run(["chown", "-R", world.users["aux"], str(mine)], check=True)
    r = world.run("aux", "staff", "list", "--config", str(mine / "custody.toml"))
    assert r.returncode == 2
    assert r.stderr.startswith(f"custody staff: error: {mine / 'custody.toml'}: identities = ")
    assert f"this machine has {world.identities}, the only identities file" in r.stderr


def test_the_service_account_acts_as_its_service_identity_and_each_act_is_audited(
    world: World,
) -> None:
    r = world.run("svc", "staff", "roster", "--json")
    assert r.returncode == 0, r.stderr
    recs = world.audit()
    grant = [a for a in recs if a["action"] == "identity.act_as"][-1]
    assert (grant["who"], grant["object"], grant["result"]) == (
        "SVC-NIGHTLY", f"os:{world.users['svc']}", "allowed")
    assert grant["reason"] == (
        f"service account {world.users['svc']} (uid {world.uid('svc')}) acts as SVC-NIGHTLY, "
        f"granted by ZF0001 in {world.identities}")
    roster = [a for a in recs if a["action"] == "staff.roster"][-1]
    assert roster["who"] == "SVC-NIGHTLY" and roster["result"] == "allowed"


def test_the_service_account_cannot_act_as_anyone_else(world: World) -> None:
    r = world.run("svc", "staff", "roster", "--as", "ZF0001")
    assert r.returncode == 2
    assert r.stderr == (
        f"custody staff: error: identity refused: service account {world.users['svc']} (uid "
        f"{world.uid('svc')}) may act only as SVC-NIGHTLY (granted in {world.identities}), "
        "not as ZF0001\n")


def test_a_grant_by_someone_who_is_not_an_administrator_does_not_hold(world: World) -> None:
    world.write_identities(_identities(world.users).replace(
        'granted_by = "ZF0001"', 'granted_by = "LU0001"'))
    r = world.run("svc", "staff", "roster")
    assert r.returncode == 2
    assert r.stderr == (
        f"custody staff: error: identity refused: service account {world.users['svc']} (uid "
        f"{world.uid('svc')}): the grant to SVC-NIGHTLY is by LU0001, who is not an active "
        "administrator\n")


def test_a_fresh_installation_still_bootstraps(fresh: World) -> None:
    """Empty registry: an unmapped account acts as unregistered:<account> (and may claim no
    staff ID); the administrator's account registers itself."""
    r = fresh.run("nobody", "store", "selftest")
    assert r.returncode == 0, r.stderr
    verified = [a for a in fresh.audit() if a["action"] == "verify"]
    assert {a["who"] for a in verified} == {f"unregistered:{fresh.users['nobody']}"}
    r = fresh.run("nobody", "staff", "add", "ZF0002", "--name", "李四", "--kind", "officer",
                  "--section", "办公室", "--certificate", "ZJ-0003", "--role",
                  "administrator", "--as", "ZF0002")
    assert r.returncode == 2
    assert r.stderr == (
        f"custody staff: error: identity refused: {fresh.users['nobody']} (uid "
        f"{fresh.uid('nobody')}) is not mapped to a staff ID in {fresh.identities}; it may "
        "not act as ZF0002\n")
    r = fresh.run("admin", "staff", "add", "ZF0002", "--name", "李四", "--kind", "officer",
                  "--section", "办公室", "--certificate", "ZJ-0003", "--role",
                  "administrator", "--as", "ZF0002")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("registered ZF0002 李四")
