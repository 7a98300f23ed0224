"""The session check (`tests.treecheck`): a run that writes into the working tree fails,
naming each path; files people edit and the tools' caches are not the run's."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.treecheck import tree_changes, tree_snapshot

# The inner runs load only the check (Hypothesis's plugin alone takes seconds to load).
QUIET = ("-p", "no:randomly", "-p", "no:hypothesispytest", "-p", "no:cacheprovider")


def _write(root: Path, rel: str, data: bytes = b"x") -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_the_snapshot_names_what_a_test_could_leave_and_nothing_people_edit(
    tmp_path: Path,
) -> None:
    for rel in ("pipeline/a.py", "custody-data/catalog/audit/segment-000001.jsonl",
                "infra/policies/role-analyst.json", "README.md"):
        _write(tmp_path, rel)
    before = tree_snapshot(tmp_path)
    # What a test could leave behind:
    _write(tmp_path, "roster.html")
    _write(tmp_path, "tests/unit/chunks.parquet")
    _write(tmp_path, "custody-data/store/ledger.jsonl")
    _write(tmp_path, "custody-data/notes.md")  # anything inside a data directory
    (tmp_path / "custody-data" / "catalog" / "staging").mkdir()
    _write(tmp_path, "custody-data/catalog/audit/segment-000001.jsonl", b"longer")
    (tmp_path / "infra" / "policies" / "role-analyst.json").unlink()
    # What people and tools write while a run goes on:
    _write(tmp_path, "pipeline/b.py")
    _write(tmp_path, "pipeline/export/templates/cover.html.j2")
    _write(tmp_path, "README.md", b"edited")
    _write(tmp_path, ".hypothesis/examples/ab/cd")
    _write(tmp_path, "pipeline/__pycache__/a.cpython-311.pyc")
    _write(tmp_path, "custody.egg-info/PKG-INFO")
    _write(tmp_path, "mutants/pipeline/a.py.meta")
    _write(tmp_path, "tests/.test_x.py.swp")
    assert tree_changes(before, tree_snapshot(tmp_path)) == [
        "appeared: custody-data/catalog/staging/",
        "appeared: custody-data/notes.md",
        "appeared: custody-data/store/",
        "appeared: custody-data/store/ledger.jsonl",
        "appeared: roster.html",
        "appeared: tests/unit/chunks.parquet",
        "changed:  custody-data/catalog/audit/segment-000001.jsonl",
        "vanished: infra/policies/role-analyst.json",
    ]


def test_a_run_whose_test_writes_into_the_tree_fails_naming_the_path(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real pytest run with this plugin, watching a tree in tmp_path: its one test
    passes, yet the run exits 1 and names what the test left in ./custody-data."""
    tree = tmp_path / "tree"
    tree.mkdir()
    pytester.makepyfile(test_writes=(
        "from pathlib import Path\n\n\n"
        "def test_writes_an_audit_log_into_the_tree(tmp_path):\n"
        f"    out = Path({str(tree)!r}) / 'custody-data' / 'catalog' / 'audit'\n"
        "    out.mkdir(parents=True)\n"
        "    (out / 'segment-000001.jsonl').write_text('{}')\n"
        "    (tmp_path / 'fine.parquet').write_text('below tmp_path: not the tree')\n"))
    monkeypatch.setenv("CUSTODY_TREE_ROOT", str(tree))
    monkeypatch.delenv("CUSTODY_TREE_CHECK", raising=False)
    run = pytester.runpytest_inprocess("-p", "tests.treecheck", *QUIET)
    run.assert_outcomes(passed=1)
    assert run.ret == pytest.ExitCode.TESTS_FAILED
    changed = [line.strip() for line in run.outlines
               if line.strip().startswith(("appeared:", "changed:", "vanished:"))]
    assert changed == [
        "appeared: custody-data/",
        "appeared: custody-data/catalog/",
        "appeared: custody-data/catalog/audit/",
        "appeared: custody-data/catalog/audit/segment-000001.jsonl",
    ]
    assert f"the test run wrote into the working tree {tree}" in run.stdout.str()


def test_a_run_that_writes_only_below_tmp_path_passes(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = tmp_path / "tree"
    (tree / "custody-data").mkdir(parents=True)
    pytester.makepyfile(test_fine=(
        "def test_writes_below_its_tmp_path(tmp_path):\n"
        "    (tmp_path / 'custody-data').mkdir()\n"
        "    (tmp_path / 'custody-data' / 'x.parquet').write_text('fine')\n"))
    monkeypatch.setenv("CUSTODY_TREE_ROOT", str(tree))
    monkeypatch.delenv("CUSTODY_TREE_CHECK", raising=False)
    run = pytester.runpytest_inprocess("-p", "tests.treecheck", *QUIET)
    run.assert_outcomes(passed=1)
    assert run.ret == pytest.ExitCode.OK
    assert "working tree changed" not in run.stdout.str()
