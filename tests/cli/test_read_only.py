"""A command that only reads never creates ./custody-data; a missing catalog says where."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import Custody

READS = [
    ("query", "SELECT 1"),
    ("verify",),
    ("audit", "show"),
    ("audit", "verify"),
    ("retention", "show"),
    ("export", "list"),
    ("staff", "list"),
    ("staff", "status", "A-1"),
    ("staff", "roster"),
    ("device", "list"),
]


@pytest.mark.parametrize("argv", READS, ids=" ".join)
def test_a_read_without_a_catalog_is_exit_2_and_creates_nothing(
    custody: Custody, tmp_path: Path, argv: tuple[str, ...]
) -> None:
    r = custody(*argv, "--as", "A-1", loc=False)
    assert r.code == 2
    assert r.err == (
        f"custody {argv[0]}: error: no catalog at {tmp_path}/custody-data/catalog (the "
        "default; set --catalog, CUSTODY_CATALOG or `catalog` in custody.toml); run `custody "
        "ingest` first or point --catalog at one\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_config_show_creates_nothing(custody: Custody, tmp_path: Path) -> None:
    assert custody("config", "show", loc=False).code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_catalog_named_by_the_environment_is_named_in_the_error(
    custody: Custody, tmp_path: Path
) -> None:
    r = custody("query", "SELECT 1", env={"CUSTODY_CATALOG": "elsewhere"}, loc=False)
    assert r.err == (
        f"custody query: error: no catalog at {tmp_path}/elsewhere (from CUSTODY_CATALOG); "
        "run `custody ingest` first or point --catalog at one\n")
    assert not (tmp_path / "elsewhere").exists()


def test_a_read_with_a_catalog_but_no_store_creates_no_store(archive: Custody) -> None:
    missing = archive.root / "no-store"
    r = archive("verify", "--as", "A-1", "--store", str(missing), "--catalog",
                str(archive.root / "catalog"), loc=False)
    assert r.code == 2
    assert r.err == (
        f"custody verify: error: no store at {missing} (from --store); point --store at the "
        "store of this catalog\n")
    assert not missing.exists()
