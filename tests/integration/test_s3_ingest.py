"""Ingest and verify end to end into S3 Object Lock (a real SeaweedFS on 127.0.0.1)."""

from __future__ import annotations

import io
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.catalog.core import Catalog
from pipeline.cli.main import main
from tests.contract._support import fresh_bucket, s3_config
from tests.mediagen import Generated


def _cli(env: dict[str, str], *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), env=env, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture()
def s3_uri(s3_server: Any) -> str:
    return f"s3://{fresh_bucket(s3_config(s3_server).client())}/evidence"


def _assert_locked(s3_server: Any, uri: str, catalog: Path) -> int:
    client = s3_config(s3_server).client()
    bucket = uri.removeprefix("s3://").split("/")[0]
    rows = Catalog(catalog).query(
        "SELECT store_key, store_version, retain_until_utc FROM recordings").to_pylist()
    for r in rows:
        head = client.head_object(Bucket=bucket, Key=f"evidence/{r['store_key']}",
                                  VersionId=r["store_version"])
        assert head["ObjectLockMode"] == "COMPLIANCE"
        assert head["ObjectLockRetainUntilDate"] >= r["retain_until_utc"].replace(microsecond=0)
    return len(rows)


def test_ingest_and_verify_generated_media_in_s3(
    s3_server: Any, s3_uri: str, tmp_path: Path, clean_recording: Generated,
    interrupted_recording: Generated,
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for g in (clean_recording, interrupted_recording):
        shutil.copy(g.path, src / g.path.name)
    cat = tmp_path / "catalog"
    code, out, err = _cli(s3_server.env(), "ingest", str(src), "--store", s3_uri,
                          "--catalog", str(cat), "--json")
    assert code == 1, err
    doc = json.loads(out)
    assert [f["status"] for f in doc["files"]] == ["archived", "archived"]
    assert _assert_locked(s3_server, s3_uri, cat) == 2
    runs = Catalog(cat).query("SELECT store_selftest FROM ingest_runs").to_pylist()
    assert {r["store_selftest"] for r in runs} == {"passed"}
    code, out, _ = _cli(s3_server.env(), "verify", "--store", s3_uri, "--catalog", str(cat))
    assert code == 0 and "2 objects checked, 0 failed" in out


def test_ingest_and_verify_the_shared_corpus_in_s3(
    s3_server: Any, s3_uri: str, tmp_path: Path, shared_media: Path
) -> None:
    cat = tmp_path / "catalog"
    code, out, err = _cli(s3_server.env(), "ingest", str(shared_media), "--store", s3_uri,
                          "--catalog", str(cat), "--json")
    assert code == 1, err
    statuses = {f["status"] for f in json.loads(out)["files"]}
    assert statuses == {"archived", "skipped"}
    _assert_locked(s3_server, s3_uri, cat)
    code, out, _ = _cli(s3_server.env(), "verify", "--store", s3_uri, "--catalog", str(cat))
    assert code == 0, out


def test_a_200_mb_file_goes_up_multipart_with_the_lock(
    s3_server: Any, s3_uri: str, tmp_path: Path, clean_recording: Generated
) -> None:
    big = tmp_path / "in" / "BIG0001.mp4"
    big.parent.mkdir()
    with open(big, "wb") as fh:  # a real recording followed by 200 MB of recorder junk
        fh.write(clean_recording.path.read_bytes())
        for _ in range(25):
            fh.write(os.urandom(8 << 20))
    cat = tmp_path / "catalog"
    code, _, err = _cli(s3_server.env(), "ingest", str(big.parent), "--store", s3_uri,
                          "--catalog", str(cat), "--json")
    assert code in (0, 1), err
    (row,) = Catalog(cat).query("SELECT store_key, store_version FROM recordings").to_pylist()
    client = s3_config(s3_server).client()
    bucket = s3_uri.removeprefix("s3://").split("/")[0]
    head = client.head_object(Bucket=bucket, Key=f"evidence/{row['store_key']}",
                              VersionId=row["store_version"])
    assert "-" in head["ETag"], "a multipart upload's ETag ends in -<parts>"
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ContentLength"] == big.stat().st_size


def test_ingest_refuses_an_s3_bucket_without_object_lock(
    s3_server: Any, tmp_path: Path, clean_recording: Generated
) -> None:
    client = s3_config(s3_server).client()
    bucket = f"custody-plain-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket)
    cat = tmp_path / "catalog"
    code, _, err = _cli(s3_server.env(), "ingest", str(clean_recording.path), "--store",
                        f"s3://{bucket}/evidence", "--catalog", str(cat))
    assert code == 2
    assert "self-test failed" in err and "--allow-unverified-store" in err
    assert Catalog(cat).query("SELECT count(*) AS n FROM recordings").column("n")[0].as_py() == 0


@pytest.fixture(scope="module")
def moto_env() -> Iterator[dict[str, str]]:
    """moto's S3 server: accepts lock headers but lets COMPLIANCE retention shrink."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield {"AWS_ENDPOINT_URL_S3": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "moto",
               "AWS_SECRET_ACCESS_KEY": "moto", "AWS_REGION": "us-east-1"}
    finally:
        server.stop()


def test_ingest_into_a_non_enforcing_store_needs_an_override_which_is_recorded(
    moto_env: dict[str, str], tmp_path: Path, clean_recording: Generated
) -> None:
    from pipeline.storage.s3.store import S3Config

    S3Config.from_env(moto_env).client().create_bucket(
        Bucket="custody-moto-ingest", ObjectLockEnabledForBucket=True)
    uri = "s3://custody-moto-ingest/evidence"
    cat = tmp_path / "catalog"
    code, _, err = _cli(moto_env, "ingest", str(clean_recording.path), "--store", uri,
                        "--catalog", str(cat))
    assert code == 2 and "shorten-retention-refused" in err
    code, _, err = _cli(moto_env, "ingest", str(clean_recording.path), "--store", uri,
                        "--catalog", str(cat), "--allow-unverified-store")
    assert code in (0, 1), err
    assert "overridden" in err
    runs = Catalog(cat).query(
        "SELECT store_selftest FROM ingest_runs WHERE event = 'finished'").to_pylist()
    assert runs == [{"store_selftest": "failed_overridden"}]


def test_store_selftest_command_passes_on_a_locked_bucket(
    s3_server: Any, s3_uri: str, tmp_path: Path
) -> None:
    code, out, _ = _cli(s3_server.env(), "store", "selftest", "--store", s3_uri,
                        "--catalog", str(tmp_path / "c"), "--json")
    assert code == 0
    assert json.loads(out)["passed"] is True


def test_s3_endpoint_and_credentials_can_come_from_the_config_file(
    s3_server: Any, s3_uri: str, tmp_path: Path, clean_recording: Generated
) -> None:
    cfg = tmp_path / "custody.toml"
    cfg.write_text(
        "[custody]\n"
        f'store = "{s3_uri}"\n'
        f'catalog = "{tmp_path / "catalog"}"\n'
        "[custody.s3]\n"
        f'endpoint_url = "{s3_server.endpoint_url}"\n'
        f'region = "{s3_server.region}"\n'
        f'access_key_id = "{s3_server.access_key_id}"\n'
        f'secret_access_key = "{s3_server.secret_access_key}"\n',
        encoding="utf-8",
    )
    code, out, err = _cli({}, "ingest", str(clean_recording.path), "--config", str(cfg),
                          "--json")
    assert code in (0, 1), err
    assert [f["status"] for f in json.loads(out)["files"]] == ["archived"]


def test_the_library_ingest_gates_the_store_itself_and_audits_the_refusal(
    s3_server: Any, tmp_path: Path, clean_recording: Generated
) -> None:
    """A script calling `ingest()` meets the same self-test gate as the CLI: refused (and
    audited) on a bucket without Object Lock, recorded when knowingly overridden."""
    import datetime as dt

    from pipeline.ingest.run import IngestSettings
    from pipeline.people.permissions import open_authority
    from pipeline.storage import open_store
    from pipeline.storage.selftest import StoreSelftestFailed
    from tests.ingesting import run_ingest

    client = s3_config(s3_server).client()
    bucket = f"custody-plain-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket)
    store = open_store(f"s3://{bucket}/evidence", env=s3_server.env())
    catalog = Catalog(tmp_path / "catalog")
    now = dt.datetime.now(dt.UTC)
    with pytest.raises(StoreSelftestFailed, match="self-test failed"):
        run_ingest([clean_recording.path], store=store, catalog=catalog,
                   settings=IngestSettings(now=lambda: now))
    assert not list(client.list_objects_v2(Bucket=bucket, Prefix="evidence/b3/")
                    .get("Contents", []))
    result = run_ingest([clean_recording.path], store=store, catalog=catalog,
                        settings=IngestSettings(now=lambda: now, allow_unverified_store=True))
    assert result.store_selftest == "failed_overridden"
    assert result.store_warning and "overridden" in result.store_warning
    assert result.as_json()["run"]["store_selftest"] == "failed_overridden"
    with open_authority(catalog, store, lambda: now) as auth:
        results = [r.result for r in auth.audit.show(action="ingest")]
    assert results[:2] == ["allowed", "refused"]  # authorised, then refused by the gate
