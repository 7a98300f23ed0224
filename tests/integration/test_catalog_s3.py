"""The catalog under an S3 prefix (a real SeaweedFS with Object Lock on 127.0.0.1)."""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from pipeline.catalog.core import Catalog
from pipeline.catalog.s3parts import S3Parts
from pipeline.cli.main import main
from pipeline.errors import CatalogError
from schemas.records import ChunkRecord, to_table
from tests.contract._support import fresh_bucket, s3_config
from tests.mediagen import Generated


def _cli(env: dict[str, str], *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), env=env, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture()
def bucket(s3_server: Any) -> str:
    return fresh_bucket(s3_config(s3_server).client())


@pytest.fixture()
def env(s3_server: Any, tmp_path: Path) -> dict[str, str]:
    return {**s3_server.env(), "CUSTODY_CATALOG_CACHE": str(tmp_path / "cache")}


def _open(s3_server: Any, bucket: str, cache: Path) -> Catalog:
    return Catalog.open(f"s3://{bucket}/catalog", env=s3_server.env(), cache_dir=cache)


def _chunk(b3: str) -> ChunkRecord:
    return ChunkRecord(recording_blake3=b3, chunk_index=0, offset_bytes=0, length_bytes=1,
                       blake3="f" * 64)


def _count(cat: Catalog, view: str) -> int:
    n = cat.query(f"SELECT count(*) AS n FROM {view}").column("n")[0].as_py()
    return int(n)


@pytest.fixture()
def sources(tmp_path: Path, clean_recording: Generated,
            interrupted_recording: Generated) -> Path:
    src = tmp_path / "in"
    src.mkdir()
    for g in (clean_recording, interrupted_recording):
        shutil.copy(g.path, src / g.path.name)
    return src


def test_ingest_query_and_verify_with_store_and_catalog_in_s3(
    s3_server: Any, bucket: str, env: dict[str, str], sources: Path
) -> None:
    loc = ["--store", f"s3://{bucket}/evidence", "--catalog", f"s3://{bucket}/catalog"]
    code, out, err = _cli(env, "ingest", str(sources), *loc, "--json")
    assert code == 1, err  # the interrupted recording has findings
    doc = json.loads(out)
    assert [f["status"] for f in doc["files"]] == ["archived", "archived"]
    assert doc["run"]["catalog"] == f"s3://{bucket}/catalog"

    code, out, err = _cli(env, "query", "SELECT file_name, store_uri FROM recordings "
                          "ORDER BY file_name", *loc, "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert sorted(r["file_name"] for r in rows) == sorted(p.name for p in sources.iterdir())
    assert {r["store_uri"] for r in rows} == {f"s3://{bucket}/evidence"}

    code, out, err = _cli(env, "verify", *loc)
    assert code == 0, err
    assert "2 objects checked, 0 failed" in out


def test_catalog_objects_are_a_manifest_per_batch_over_locked_parts(
    s3_server: Any, bucket: str, tmp_path: Path
) -> None:
    cat = _open(s3_server, bucket, tmp_path / "cache")
    b = cat.batch("b1")
    b.add(ChunkRecord, [_chunk("a")])
    where = b.commit(dt.date(2026, 11, 27))
    assert where == f"s3://{bucket}/catalog/commits/date=2026-11-27/b1.json"
    client = s3_config(s3_server).client()
    manifest = json.loads(client.get_object(
        Bucket=bucket, Key="catalog/commits/date=2026-11-27/b1.json")["Body"].read())
    (part,) = manifest["parts"]  # tables without rows get no part
    assert part["table"] == "chunks" and part["rows"] == 1
    head = client.head_object(Bucket=bucket, Key=f"catalog/{part['name']}")
    assert head["ContentLength"] == part["size_bytes"]
    assert head["ObjectLockMode"] == "COMPLIANCE"  # the bucket's default retention


def test_a_new_s3_catalog_has_every_view_empty(
    s3_server: Any, bucket: str, tmp_path: Path
) -> None:
    cat = _open(s3_server, bucket, tmp_path / "cache")
    for view in ("recordings", "streams", "chunks", "packets", "findings", "ingest_runs",
                 "ingest_files", "recordings_by_officer", "findings_summary", "late_ingests"):
        assert _count(cat, view) == 0


def test_parts_without_a_manifest_stay_invisible(
    s3_server: Any, bucket: str, tmp_path: Path
) -> None:
    """A writer that dies between its parts and its manifest leaves nothing visible."""
    cat = _open(s3_server, bucket, tmp_path / "cache")
    assert isinstance(cat.parts, S3Parts)
    cat.parts.write_parts_only("dead", {"chunks": to_table(ChunkRecord, [_chunk("x")])})
    listed = s3_config(s3_server).client().list_objects_v2(Bucket=bucket, Prefix="catalog/")
    assert "catalog/parts/dead/chunks.parquet" in [o["Key"] for o in listed["Contents"]]
    assert _count(cat, "chunks") == 0
    b = cat.batch()
    b.add(ChunkRecord, [_chunk("a")])
    b.commit(dt.date(2026, 11, 27))
    rows = cat.query("SELECT recording_blake3 FROM chunks").to_pylist()
    assert rows == [{"recording_blake3": "a"}]
    cat.clear_staging()  # nothing to clear: the dead parts are locked and unread
    assert _count(_open(s3_server, bucket, tmp_path / "other-cache"), "chunks") == 1


def test_an_uncommitted_batch_is_invisible_and_a_commit_shows_at_once(
    s3_server: Any, bucket: str, tmp_path: Path
) -> None:
    writer = _open(s3_server, bucket, tmp_path / "w")
    reader = _open(s3_server, bucket, tmp_path / "r")
    b = writer.batch()
    b.add(ChunkRecord, [_chunk("a"), _chunk("b")])
    assert _count(reader, "chunks") == 0
    b.commit(dt.date(2026, 11, 27))
    assert _count(reader, "chunks") == 2  # the reader's kept connection sees the new batch


def test_reingest_into_s3_is_already_archived(
    s3_server: Any, bucket: str, env: dict[str, str], sources: Path, tmp_path: Path
) -> None:
    loc = ["--store", f"s3://{bucket}/evidence", "--catalog", f"s3://{bucket}/catalog"]
    code, _, err = _cli(env, "ingest", str(sources), *loc, "--json")
    assert code == 1, err
    # Another machine: an empty local cache, so what it knows comes from S3 alone.
    env2 = {**env, "CUSTODY_CATALOG_CACHE": str(tmp_path / "cache2")}
    code, out, err = _cli(env2, "ingest", str(sources), *loc, "--json")
    assert code == 0, err
    files = json.loads(out)["files"]
    assert [f["status"] for f in files] == ["already_archived", "already_archived"]
    code, out, _ = _cli(env2, "query", "SELECT count(*) AS n FROM recordings", *loc, "--json")
    assert json.loads(out) == [{"n": 2}]


def test_catalog_duckdb_for_analysts_reads_s3_after_connect_sql(
    s3_server: Any, bucket: str, tmp_path: Path
) -> None:
    cat = _open(s3_server, bucket, tmp_path / "cache")
    b = cat.batch()
    b.add(ChunkRecord, [_chunk("a")])
    b.commit(dt.date(2026, 11, 27))
    db = cat.refresh_views()
    assert db == tmp_path / "cache" / "catalog.duckdb"
    connect_sql = (tmp_path / "cache" / "connect.sql").read_text()
    assert s3_server.secret_access_key not in connect_sql
    script = connect_sql.replace("<AWS_ACCESS_KEY_ID>", s3_server.access_key_id).replace(
        "<AWS_SECRET_ACCESS_KEY>", s3_server.secret_access_key)
    with duckdb.connect(str(db), read_only=True) as con:
        con.execute(script)
        assert con.execute("SELECT count(*) FROM chunks").fetchone() == (1,)


def test_an_s3_catalog_without_keys_is_a_clear_error(
    s3_server: Any, bucket: str, tmp_path: Path
) -> None:
    env = {"AWS_ENDPOINT_URL_S3": s3_server.endpoint_url, "AWS_REGION": "us-east-1"}
    code, _, err = _cli({**env, "CUSTODY_CATALOG_CACHE": str(tmp_path / "c")}, "query",
                        "SELECT 1", "--catalog", f"s3://{bucket}/catalog")
    assert code == 2
    assert "AWS_ACCESS_KEY_ID" in err


def test_read_table_gives_what_the_view_gives_and_refuses_a_replaced_part(
    s3_server: Any, bucket: str, tmp_path: Path
) -> None:
    """Ingest reads its state with Arrow from the parts its manifests name, each checked
    against the manifest's SHA-256: a new version put over a part is refused."""
    cat = _open(s3_server, bucket, tmp_path / "cache")
    assert cat.read_table(ChunkRecord).num_rows == 0
    for day, names in ((27, ["a", "b"]), (28, ["c"])):
        b = cat.batch()
        b.add(ChunkRecord, [_chunk(n) for n in names])
        b.commit(dt.date(2026, 11, day))
    cols = ["recording_blake3", "chunk_index", "blake3"]
    got = sorted(cat.read_table(ChunkRecord, cols).to_pylist(), key=str)
    assert got == sorted(cat.query(f"SELECT {', '.join(cols)} FROM chunks").to_pylist(), key=str)
    assert [r["recording_blake3"] for r in got] == ["a", "b", "c"]

    client = s3_config(s3_server).client()
    parts = [o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix="catalog/parts/")
             ["Contents"] if o["Key"].endswith("/chunks.parquet")]
    buf = io.BytesIO()
    pq.write_table(to_table(ChunkRecord, [_chunk("forged")]), buf)
    client.put_object(Bucket=bucket, Key=parts[0], Body=buf.getvalue())  # a new version
    with pytest.raises(CatalogError, match=r"does not match the SHA-256 in its manifest"):
        _open(s3_server, bucket, tmp_path / "cache2").read_table(ChunkRecord)
