"""A tamper-evident catalog (issue 10 item 5): each commit's manifest is in the audit chain,
the views read only committed parts, and `custody verify` names each edited, removed or
injected part, on a local catalog and on S3."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from pipeline.cli.main import main
from tests.contract._support import fresh_bucket, s3_config
from tests.mediagen import Generated


class Cli:
    """`custody ...` in-process, as A-1 (or, `as_ = []`, as a fresh installation's user)."""

    def __init__(self, loc: list[str], env: dict[str, str], as_: list[str]) -> None:
        self.loc, self.env, self.as_ = loc, env, as_

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = main([*argv, *self.as_, *self.loc], env=self.env, out=out, err=err)
        return code, out.getvalue(), err.getvalue()


def _archive(cli: Cli, inbox: Path, *ingest: str) -> None:
    if cli.as_:  # the staff registry's commit is recorded too
        code, _, err = cli("staff", "add", "A-1", "--name", "张三", "--kind", "officer",
                           "--section", "综合执法队", "--certificate", "ZJ-0001",
                           "--role", "administrator", "--role", "officer")
        assert code == 0, err
    code, _, err = cli("ingest", str(inbox), "--quiet", "--workers", "1", *ingest)
    assert code == 1, err  # the interrupted recording has findings


def _findings(cli: Cli) -> int:
    code, out, err = cli("query", "SELECT count(*) AS n FROM findings", "--json")
    assert code == 0, err
    return int(json.loads(out)[0]["n"])


def _one_row_fewer(data: bytes) -> bytes:
    """What an attacker writes: the same part with its first finding left out."""
    table = pq.read_table(io.BytesIO(data))
    assert table.num_rows >= 1
    buf = io.BytesIO()
    pq.write_table(table.slice(1), buf)
    return buf.getvalue()


@pytest.fixture()
def inbox(tmp_path: Path, clean_recording: Generated,
          interrupted_recording: Generated) -> Path:
    src = tmp_path / "inbox"
    src.mkdir()
    for g in (clean_recording, interrupted_recording):
        shutil.copy(g.path, src / g.path.name)
    return src


@pytest.fixture()
def local(tmp_path: Path, inbox: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "data"
    cli = Cli(["--store", str(data / "store"), "--catalog", str(data / "catalog")], {},
              ["--as", "A-1"])
    _archive(cli, inbox)
    return cli


def _catalog(cli: Cli) -> Path:
    return Path(cli.loc[3]).resolve()


def _finding_part(cli: Cli) -> Path:
    for line in (_catalog(cli) / "commits.jsonl").read_text().splitlines():
        for part in json.loads(line)["parts"]:
            if part["table"] == "findings":
                return _catalog(cli) / part["name"]
    raise AssertionError("no committed findings part")


def test_a_clean_catalog_verifies_and_every_commit_is_in_the_audit_chain(local: Cli) -> None:
    code, out, err = local("verify")
    assert code == 0, out + err
    assert f"OK   catalog {_catalog(local)}: " in out
    code, out, _ = local("audit", "show", "--action", "catalog_commit", "--json")
    recorded = {json.loads(r["reason"])["batch_id"] for r in json.loads(out)}
    listed = [json.loads(line)["batch_id"]
              for line in (_catalog(local) / "commits.jsonl").read_text().splitlines()]
    assert len(listed) >= 2 and recorded == set(listed)


def test_a_finding_row_removed_from_a_committed_part_is_named_by_verify(local: Cli) -> None:
    part = _finding_part(local)
    before = _findings(local)
    part.chmod(0o644)
    part.write_bytes(_one_row_fewer(part.read_bytes()))
    assert _findings(local) == before - 1  # evident, not prevented: the views read it
    code, out, _ = local("verify")
    assert code == 1
    assert f"FAIL catalog {_catalog(local)}: " in out
    (line,) = [x for x in out.splitlines() if "CATALOG_" in x]
    assert line.startswith(f"     CATALOG_PART_EDITED 目录数据文件在提交后被改动 / Catalog part "
                           f"was altered after its commit: {part}: batch ")


def test_a_part_added_by_hand_is_not_read_and_is_named_by_verify(local: Cli) -> None:
    before = _findings(local)
    forged = _catalog(local) / "batches" / "date=2026-11-27" / "batch=forged" / "findings.parquet"
    forged.parent.mkdir(parents=True)
    shutil.copy(_finding_part(local), forged)
    assert _findings(local) == before  # the views read committed parts only
    code, out, _ = local("verify", "--json")
    assert code == 1
    doc = json.loads(out)["catalog"]
    assert doc["kind"] == "catalog" and not doc["ok"]
    assert [(f["code"], f["subject"]) for f in doc["findings"]] == [
        ("CATALOG_PART_UNRECORDED", {"kind": "catalog", "id": str(forged)})]
    code, out, _ = local("verify")
    assert f"     CATALOG_PART_UNRECORDED 目录中有未经提交登记的数据文件 / Catalog part named by " \
           f"no recorded commit: {forged}: " in out


def test_a_commit_appended_by_hand_is_read_but_named_unrecorded(local: Cli) -> None:
    """Whoever can write the catalog can forge a commit line; the audit chain has no record
    of it, and verify says so for each part it makes the views read."""
    from pipeline.catalog.commits import Manifest, PartEntry
    from pipeline.catalog.parts import LocalParts

    forged = _catalog(local) / "batches" / "date=2026-11-27" / "batch=forged" / "findings.parquet"
    forged.parent.mkdir(parents=True)
    shutil.copy(_finding_part(local), forged)
    parts = LocalParts(_catalog(local))
    with parts.commit_list.locked():
        entry = PartEntry("findings", str(forged.relative_to(_catalog(local))), 1, 1, "0" * 64,
                          None, "x")
        parts.commit_list.append(Manifest("forged", "2026-11-27", (entry,)), None, "")
    code, out, _ = local("verify", "--json")
    assert code == 1
    found = [(f["code"], f["subject"]["id"]) for f in json.loads(out)["catalog"]["findings"]]
    assert found == [("CATALOG_COMMIT_UNRECORDED", str(forged))]


def test_a_commit_removed_from_the_list_breaks_its_chain_and_its_parts_go_missing(
    local: Cli,
) -> None:
    commits = _catalog(local) / "commits.jsonl"
    lines = commits.read_bytes().splitlines(keepends=True)
    dropped = json.loads(lines[0])
    commits.write_bytes(b"".join(lines[1:]))
    code, out, _ = local("verify", "--json")
    assert code == 1
    found = [(f["code"], f["subject"]["id"]) for f in json.loads(out)["catalog"]["findings"]]
    assert found[0] == ("CATALOG_COMMITS_BROKEN", str(commits))
    assert sorted(found[1:]) == sorted(
        ("CATALOG_PART_MISSING", str(_catalog(local) / p["name"])) for p in dropped["parts"])


# --- S3 ----------------------------------------------------------------------------------
@pytest.fixture()
def on_s3(s3_server: Any, tmp_path: Path, inbox: Path) -> tuple[Cli, str]:
    bucket = fresh_bucket(s3_config(s3_server).client())
    env = {**s3_server.env(), "CUSTODY_CATALOG_CACHE": str(tmp_path / "cache")}
    # An empty registry: a catalog on S3 is nobody's own, so registered staff would need
    # the system identities file (pipeline.people.identity); the bootstrap user acts.
    cli = Cli(["--store", f"s3://{bucket}/evidence", "--catalog", f"s3://{bucket}/catalog"],
              env, [])
    _archive(cli, inbox)
    return cli, bucket


def test_s3_a_new_version_of_a_part_and_a_part_added_by_hand_are_named(
    s3_server: Any, on_s3: tuple[Cli, str],
) -> None:
    cli, bucket = on_s3
    code, out, err = cli("verify")
    assert code == 0, out + err
    client = s3_config(s3_server).client()
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix="catalog/parts/")
            ["Contents"]]
    part = next(k for k in keys if k.endswith("/findings.parquet"))
    data = client.get_object(Bucket=bucket, Key=part)["Body"].read()
    before = _findings(cli)
    # Object Lock keeps the old version; readers see the new one.
    client.put_object(Bucket=bucket, Key=part, Body=_one_row_fewer(data),
                      ChecksumAlgorithm="SHA256")
    added = "catalog/parts/forged/findings.parquet"
    client.put_object(Bucket=bucket, Key=added, Body=data, ChecksumAlgorithm="SHA256")
    assert _findings(cli) == before - 1
    code, out, _ = cli("verify", "--json")
    assert code == 1
    found = sorted((f["code"], f["subject"]["id"]) for f in json.loads(out)["catalog"]["findings"])
    assert found == [("CATALOG_PART_EDITED", f"s3://{bucket}/{part}"),
                     ("CATALOG_PART_UNRECORDED", f"s3://{bucket}/{added}")]


def test_s3_a_manifest_put_by_hand_is_named_unrecorded(
    s3_server: Any, on_s3: tuple[Cli, str],
) -> None:
    """Whoever may put under commits/ can add a manifest, which readers take as a commit;
    the audit chain has no record of it and verify names each part it makes them read."""
    from pipeline.catalog.commits import Manifest, PartEntry

    cli, bucket = on_s3
    client = s3_config(s3_server).client()
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix="catalog/parts/")
            ["Contents"]]
    data = client.get_object(Bucket=bucket, Key=next(
        k for k in keys if k.endswith("/findings.parquet")))["Body"].read()
    added = "parts/forged/findings.parquet"
    client.put_object(Bucket=bucket, Key=f"catalog/{added}", Body=data,
                      ChecksumAlgorithm="SHA256")
    manifest = Manifest("forged", "2026-11-27", (
        PartEntry("findings", added, 1, len(data), "0" * 64, None, "x"),))
    client.put_object(Bucket=bucket, Key="catalog/commits/date=2026-11-27/forged.json",
                      Body=manifest.to_json(), ChecksumAlgorithm="SHA256")
    code, out, _ = cli("verify", "--json")
    assert code == 1
    found = [(f["code"], f["subject"]["id"]) for f in json.loads(out)["catalog"]["findings"]]
    assert found == [("CATALOG_COMMIT_UNRECORDED", f"s3://{bucket}/catalog/{added}")]
