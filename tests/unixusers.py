"""Real Unix users for tests that run the CLI as someone other than root.

Root (as CI runs the suite) creates throw-away accounts with unique names and removes them
with `userdel -r` afterwards; elsewhere the tests that need them skip and say why. The
venv's interpreter usually sits under /root (0700), which another user cannot reach: then
Debian's python3.X of the same minor version runs with the venv's site-packages on
PYTHONPATH (compiled wheels are per minor version).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import site
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def why_no_users() -> str | None:
    """Why this machine cannot make test users, or None when it can."""
    if os.geteuid() != 0:
        return "needs root to create Unix users (useradd), as CI runs the suite"
    if not (shutil.which("useradd") and shutil.which("userdel") and shutil.which("runuser")):
        return "needs useradd, userdel and runuser"
    return None


@contextlib.contextmanager
def throwaway_users(roles: Sequence[str], prefix: str = "cst") -> Iterator[dict[str, str]]:
    """role -> a fresh account name (no home, no login shell), removed on exit."""
    tag = secrets.token_hex(3)
    names = {role: f"{prefix}{role[:4]}{tag}" for role in roles}
    made: list[str] = []
    try:
        for name in names.values():
            subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin",
                            name], check=True, capture_output=True)
            made.append(name)
        yield names
    finally:
        for name in made:
            subprocess.run(["userdel", "-r", name], capture_output=True)


def interpreter_for(user: str) -> tuple[list[str], dict[str, str]] | None:
    """(argv, extra environment) of a Python `user` may run with this project importable,
    or None when there is none."""
    probe = subprocess.run(["runuser", "-u", user, "--", sys.executable, "-c", "0"],
                           capture_output=True)
    if probe.returncode == 0:
        return [sys.executable], {"PYTHONPATH": str(REPO)}
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    system = shutil.which(f"python{version}", path="/usr/bin:/usr/local/bin")
    if system is None:
        return None
    return [system], {"PYTHONPATH": os.pathsep.join([str(REPO), *site.getsitepackages()])}
