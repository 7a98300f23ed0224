"""`custody catalog compact` through the CLI, on a catalog ingested for real and on S3, and a
compaction killed mid-write by the kernel (RLIMIT_FSIZE: the process gets SIGXFSZ while it
writes a merged part) that leaves the catalog as it was."""

from __future__ import annotations

import datetime as dt
import json
import os
import resource
import secrets
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pipeline.audit.log import AuditLog
from pipeline.catalog.core import Catalog
from pipeline.people.permissions import Authority
from pipeline.people.registry import NewStaff, Registry
from pipeline.storage.local import LocalStore
from schemas.records import ChunkRecord, FindingRecord
from tests.anyone import AnyoneAuthority
from tests.contract._support import fresh_bucket, s3_config
from tests.integration.test_catalog_tamper import (
    Cli,
    _archive,
    _catalog,
    _one_row_fewer,
    inbox,
)
from tests.unit.test_catalog_compact import every_view

__all__ = ["inbox"]  # the fixture shared with the tamper tests

AT = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)
REPO = Path(__file__).resolve().parents[2]
LIMIT = 600_000  # bytes any file of the child may reach; a merged findings part is ~1.3 MB


@pytest.fixture()
def local(tmp_path: Path, inbox: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """Two recordings ingested one batch each (as A-1, an administrator and officer)."""
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "data"
    cli = Cli(["--store", str(data / "store"), "--catalog", str(data / "catalog")], {},
              ["--as", "A-1"])
    _archive(cli, inbox, "--batch-files", "1")
    return cli


@pytest.fixture()
def on_s3(s3_server: Any, tmp_path: Path, inbox: Path) -> tuple[Cli, str]:
    """The same two recordings, one batch each, with store and catalog on S3 (an empty
    registry: a catalog on S3 is nobody's own, so the bootstrap user acts)."""
    bucket = fresh_bucket(s3_config(s3_server).client())
    env = {**s3_server.env(), "CUSTODY_CATALOG_CACHE": str(tmp_path / "cache")}
    cli = Cli(["--store", f"s3://{bucket}/evidence", "--catalog", f"s3://{bucket}/catalog"],
              env, [])
    _archive(cli, inbox, "--batch-files", "1")
    return cli, bucket


def _compact(cli: Cli, *more: str) -> dict[str, Any]:
    code, out, err = cli("catalog", "compact", "--json", *more)
    assert code == 0, err
    doc: dict[str, Any] = json.loads(out)
    return doc


@pytest.mark.slow
def test_an_ingested_catalog_compacts_with_the_same_rows_and_verifies(local: Cli) -> None:
    root = _catalog(local)
    before = every_view(Catalog(root))
    assert len(before["recordings"]) == 2 and len(before["packets"]) > 100
    doc = _compact(local)
    assert doc["compacted"] is True and doc["commit"] == str(
        root / "batches" / "compacted" / doc["compaction_id"])
    tables = {t["table"]: t for t in doc["tables"]}
    assert tables["packets"]["parts_after"] == 1
    assert doc["links_folded"] is None  # no case events: no fold
    assert tables["packets"]["rows"] == len(before["packets"])
    assert every_view(Catalog(root)) == before
    code, out, err = local("verify")
    assert code == 0, out + err
    code, out, _ = local("query", "SELECT count(*) AS n FROM findings", "--json")
    assert json.loads(out) == [{"n": len(before["findings"])}]

    code, out, err = local("catalog", "compact")
    assert (code, out) == (0, f"nothing to compact: no table of {root} has two parts under "
                              "134217728 bytes\n"), err
    code, out, _ = local("audit", "show", "--action", "catalog.compact", "--json")
    assert [(r["who"], r["result"]) for r in json.loads(out)] == [("A-1", "allowed")] * 4


def test_the_target_size_is_read_as_a_size_and_a_bad_one_is_refused(local: Cli) -> None:
    doc = _compact(local, "--target-size", "1KiB")
    assert doc["target_bytes"] == 1024
    code, _, err = local("catalog", "compact", "--target-size", "big")
    assert code == 2
    assert err == ("custody catalog: error: --target-size 'big': expected a size such as "
                   "128MiB, 64MB or 1GiB (a plain number is bytes)\n")


# --- a compaction killed while it writes -----------------------------------------------------
def _big_catalog(root: Path) -> tuple[Path, Path]:
    """20 batches whose findings carry 40 KB of random hex each (so their merged part
    outgrows LIMIT while every other file stays under it), with A-1 registered."""
    catalog = Catalog(root / "catalog")
    with AuditLog.for_catalog(catalog.root, store=LocalStore(root / "store"),
                              clock=lambda: AT) as audit:
        _fill_big(catalog, audit)
    return root / "catalog", root / "store"


def _fill_big(catalog: Catalog, audit: AuditLog) -> Authority:
    reg = Registry(catalog)
    auth = AnyoneAuthority(reg, audit)
    reg.add_staff(auth, "A-1", NewStaff("A-1", "officer", "张三", "综合执法队", "执法队员",
                                        roles=("administrator",), certificate_number="ZJ-1"),
                  at_utc=AT)
    for b in range(20):
        batch = catalog.batch(f"b{b:02d}")
        batch.add(ChunkRecord, [ChunkRecord(f"{b:064x}", 0, 0, 1, "f" * 64)])
        batch.add(FindingRecord, [FindingRecord(
            f"{b:064x}", f"/dock/{b}.mp4", "run1", "TIMESTAMP_GAP", "AV-9", "interruption",
            "warning", 0, k, 1.0, "Gap", "中断", secrets.token_hex(20_000), AT)
            for k in range(3)])
        batch.commit(dt.date(2026, 11, 27))
    return auth


def _limited_compaction(argv: list[str], env: dict[str, str], *,
                        killed: bool) -> subprocess.CompletedProcess[str]:
    """`custody catalog compact` in a child whose files may not grow past LIMIT. CPython
    ignores SIGXFSZ (a write past the limit fails with EFBIG); `killed` restores the
    default, so the kernel kills the child in the middle of its write."""
    code = ("import resource, signal, sys\n"
            f"resource.setrlimit(resource.RLIMIT_FSIZE, ({LIMIT}, {LIMIT}))\n"
            + ("signal.signal(signal.SIGXFSZ, signal.SIG_DFL)\n" if killed else "")
            + "from pipeline.cli.main import main\n"
            f"sys.exit(main({argv!r}))\n")
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.slow
def test_a_compaction_killed_while_writing_leaves_the_catalog_as_it_was(tmp_path: Path) -> None:
    catalog, store = _big_catalog(tmp_path)
    before = every_view(Catalog(catalog))
    lines = (catalog / "commits.jsonl").read_bytes()
    assert max(p.stat().st_size for p in catalog.rglob("*") if p.is_file()) < LIMIT
    argv = ["catalog", "compact", "--as", "A-1", "--catalog", str(catalog), "--store",
            str(store)]
    child = _limited_compaction(argv, {}, killed=True)
    assert child.returncode == -signal.SIGXFSZ, child.stderr
    # Nothing committed, nothing read differently, nothing under batches/ but batches.
    assert (catalog / "commits.jsonl").read_bytes() == lines
    assert every_view(Catalog(catalog)) == before
    assert not (catalog / "batches" / "compacted").exists()
    (staged,) = (catalog / "staging").iterdir()  # the dead writer's; invisible
    assert staged.name.startswith("compact-") and list(staged.iterdir())
    run = Cli(["--store", str(store), "--catalog", str(catalog)], {}, ["--as", "A-1"])
    code, out, err = run("verify")
    assert code == 0, out + err
    # The next compaction (the ingest lock is free again: the kernel dropped it) succeeds.
    doc = _compact(run)
    assert doc["compacted"] is True
    assert every_view(Catalog(catalog)) == before


def test_a_write_that_fails_is_a_clear_error_and_commits_nothing(tmp_path: Path) -> None:
    catalog, store = _big_catalog(tmp_path)
    lines = (catalog / "commits.jsonl").read_bytes()
    argv = ["catalog", "compact", "--as", "A-1", "--catalog", str(catalog), "--store",
            str(store)]
    child = _limited_compaction(argv, {}, killed=False)
    assert child.returncode == 2
    staged = child.stderr.split(": ")[2]
    assert child.stderr == (f"custody catalog: error: {staged}: not compacted, cannot write: "
                            "File too large\n")
    assert Path(staged).parent.parent == catalog / "staging"
    assert Path(staged).name == "findings-0001.parquet"
    assert (catalog / "commits.jsonl").read_bytes() == lines
    assert list((catalog / "staging").iterdir()) == []  # its own staging cleared


@pytest.mark.slow
def test_a_compaction_of_an_s3_catalog_killed_while_writing_changes_nothing(
    s3_server: Any, tmp_path: Path,
) -> None:
    bucket = fresh_bucket(s3_config(s3_server).client())
    env = {**s3_server.env(), "CUSTODY_CATALOG_CACHE": str(tmp_path / "cache")}
    loc = f"s3://{bucket}/catalog"
    cat = Catalog.open(loc, env=s3_server.env(), cache_dir=tmp_path / "fill")
    with AuditLog.for_catalog(cat.root, store=LocalStore(tmp_path / "store"),
                              clock=lambda: AT):  # records each commit
        for b in range(20):
            batch = cat.batch(f"b{b:02d}")
            batch.add(FindingRecord, [FindingRecord(
                f"{b:064x}", f"/dock/{b}.mp4", "run1", "TIMESTAMP_GAP", "AV-9",
                "interruption", "warning", 0, k, 1.0, "Gap", "中断",
                secrets.token_hex(20_000), AT) for k in range(3)])
            batch.commit(dt.date(2026, 11, 27))
    argv = ["catalog", "compact", "--catalog", loc, "--store", f"s3://{bucket}/evidence"]
    child = _limited_compaction(argv, env, killed=True)
    assert child.returncode == -signal.SIGXFSZ, child.stderr
    client = s3_config(s3_server).client()
    listed = client.list_objects_v2(Bucket=bucket, Prefix="catalog/compactions/")
    assert listed["KeyCount"] == 0
    reader = Catalog.open(loc, env=s3_server.env(), cache_dir=tmp_path / "reader")
    assert reader.query("SELECT count(*) AS n FROM findings").to_pylist() == [{"n": 60}]
    assert len(reader.parts.current().parts) == 20


@pytest.mark.slow
def test_an_s3_catalog_compacts_verifies_and_keeps_what_it_superseded(
    s3_server: Any, on_s3: tuple[Cli, str], tmp_path: Path,
) -> None:
    cli, bucket = on_s3
    loc = f"s3://{bucket}/catalog"
    reader = Catalog.open(loc, env=s3_server.env(), cache_dir=tmp_path / "reader")
    before = every_view(reader)
    client = s3_config(s3_server).client()
    old = sorted(o["Key"] for o in client.list_objects_v2(
        Bucket=bucket, Prefix="catalog/parts/")["Contents"])
    doc = _compact(cli)
    cid = doc["compaction_id"]
    assert doc["commit"] == f"{loc}/compactions/{cid}.json"
    assert every_view(reader) == before  # a reader that cached the old manifests too
    assert every_view(Catalog.open(loc, env=s3_server.env(),
                                   cache_dir=tmp_path / "fresh")) == before
    now = sorted(o["Key"] for o in client.list_objects_v2(
        Bucket=bucket, Prefix="catalog/parts/")["Contents"])
    assert set(old) < set(now)  # nothing superseded is gone
    new = [k for k in now if k.startswith(f"catalog/parts/{cid}/")]
    assert len(new) == len({t["table"] for t in doc["tables"]})
    head = client.head_object(Bucket=bucket, Key=new[0])
    assert head["ObjectLockMode"] == "COMPLIANCE"  # the bucket's default retention
    code, out, err = cli("verify")
    assert code == 0, out + err
    code, out, _ = cli("catalog", "compact")
    assert code == 0 and out.startswith(f"nothing to compact: no table of {loc} ")
    # An edit of a compacted part (a new version over it) is named.
    findings = next(k for k in new if "/findings-" in k)
    data = client.get_object(Bucket=bucket, Key=findings)["Body"].read()
    client.put_object(Bucket=bucket, Key=findings, Body=_one_row_fewer(data),
                      ChecksumAlgorithm="SHA256")
    code, out, _ = cli("verify", "--json")
    assert code == 1
    found = [(f["code"], f["subject"]["id"]) for f in json.loads(out)["catalog"]["findings"]]
    assert found == [("CATALOG_PART_EDITED", f"s3://{bucket}/{findings}")]


@pytest.mark.parametrize(("killed", "code"), [(True, -signal.SIGXFSZ), (False, 1)])
def test_the_rlimit_is_what_stops_the_child(killed: bool, code: int) -> None:
    """The tests' failing condition is real: a child that writes past RLIMIT_FSIZE is
    killed by SIGXFSZ, or (CPython's default, SIGXFSZ ignored) its write fails with EFBIG;
    the parent's limit is untouched."""
    child = subprocess.run(
        [sys.executable, "-c", "import resource, signal, tempfile\n"
         f"resource.setrlimit(resource.RLIMIT_FSIZE, ({LIMIT}, {LIMIT}))\n"
         + ("signal.signal(signal.SIGXFSZ, signal.SIG_DFL)\n" if killed else "")
         + f"tempfile.TemporaryFile().write(b'x' * {LIMIT + 100_000})\n"],
        check=False, timeout=60, capture_output=True, text=True)
    assert child.returncode == code
    assert child.stderr.endswith("" if killed else "OSError: [Errno 27] File too large\n")
    assert resource.getrlimit(resource.RLIMIT_FSIZE)[0] == resource.RLIM_INFINITY
