"""pytest plugin: a run that writes into the working tree fails, naming each path.

Registered from `tests/conftest.py` (`pytest_plugins`). Every test writes only below its
temporary directories; one that does not (a CLI run without --catalog/--store writing
./custody-data, a roster or a Parquet part in the current directory) fails the run at its
end, with what appeared, changed or vanished. Other people edit the tree while a run goes
on, so source files they write are left out, except inside the data directories.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Written by the tools themselves (pytest, Hypothesis's example database, mypy, ruff,
# pip's editable install, pytest-benchmark, mutmut, coverage), never by the code under test.
TOOL_DIRS = frozenset({
    ".git", ".venv", "venv", ".hypothesis", ".pytest_cache", ".mypy_cache", ".ruff_cache",
    "__pycache__", ".benchmarks", ".cache", "mutants", "build", "dist",
})
# Files people write (others edit the tree while a run goes on): new or changed ones are
# not the run's, except inside the data directories below. Data a test could leave behind
# (Parquet, DuckDB, JSON lines, JSON, CSV, HTML, media, locks) is always checked.
SOURCE_SUFFIXES = frozenset({
    ".py", ".pyi", ".md", ".rst", ".toml", ".cfg", ".ini", ".sh", ".j2", ".sql", ".txt",
    ".yml", ".yaml", ".gitignore", ".swp", ".swx", ".orig", ".rej",
})
SOURCE_NAMES = frozenset({"Makefile", "4913"})  # 4913: vim's probe file
DATA_DIRS = frozenset({"custody-data", "demo-data"})  # the CLI's and the demo's defaults


def _checked(rel: Path) -> bool:
    if rel.parts[0] in DATA_DIRS:
        return True
    name = rel.name
    return not (rel.suffix in SOURCE_SUFFIXES or name in SOURCE_NAMES or name.endswith("~")
                or name.startswith((".#", ".coverage")))


def tree_snapshot(root: Path = REPO) -> dict[str, tuple[int, int]]:
    """Every checked file under `root` (tool directories left out): relative path ->
    (mtime in ns, size); the data directories and every directory in them as (0, -1), so
    an empty one made by a test is seen too."""
    out: dict[str, tuple[int, int]] = {}
    for top, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in TOOL_DIRS and not d.endswith(".egg-info")]
        for name in dirs:
            rel = Path(top, name).relative_to(root)
            if rel.parts[0] in DATA_DIRS:
                out[rel.as_posix() + "/"] = (0, -1)
        for name in files:
            path = Path(top, name)
            rel = path.relative_to(root)
            if not _checked(rel):
                continue
            try:
                st = path.lstat()
            except FileNotFoundError:  # removed while walking: not there after either
                continue
            out[rel.as_posix()] = (st.st_mtime_ns, st.st_size)
    return out


def tree_changes(
    before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]
) -> list[str]:
    """What appeared, changed or vanished between two snapshots, one line each."""
    lines = [f"appeared: {p}" for p in sorted(after.keys() - before.keys())]
    lines += [f"changed:  {p}" for p in sorted(before.keys() & after.keys())
              if before[p] != after[p]]
    lines += [f"vanished: {p}" for p in sorted(before.keys() - after.keys())]
    return lines


_ROOT = pytest.StashKey[Path]()
_BEFORE = pytest.StashKey[dict[str, tuple[int, int]]]()


def pytest_sessionstart(session: pytest.Session) -> None:
    if os.environ.get("CUSTODY_TREE_CHECK", "on") == "off":
        return
    # CUSTODY_TREE_ROOT: another tree to watch (the check's own test watches a tmp_path).
    root = Path(os.environ.get("CUSTODY_TREE_ROOT") or REPO)
    session.stash[_ROOT] = root
    session.stash[_BEFORE] = tree_snapshot(root)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when the working tree changed: every test writes only below its
    temporary directories (CUSTODY_TREE_CHECK=off skips the check)."""
    before = session.stash.get(_BEFORE, None)
    if before is None:
        return
    root = session.stash[_ROOT]
    changes = tree_changes(before, tree_snapshot(root))
    if not changes:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = [f"the test run wrote into the working tree {root} (tests must write only "
             "below their tmp_path):", *(f"  {c}" for c in changes[:50])]
    if len(changes) > 50:
        lines.append(f"  ... and {len(changes) - 50} more")
    if reporter is not None:
        reporter.write_sep("=", "working tree changed", red=True)
        for line in lines:
            reporter.write_line(line, red=True)
    else:
        print("\n".join(lines))
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED

