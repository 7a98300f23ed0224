"""`custody nightly` reading an S3 inbox (a real SeaweedFS bucket): objects fetched into a
spool, archived, then tagged and copied to the done prefix, never deleted; a second night
fetches only what is not tagged."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path
from typing import Any

import blake3
import pytest

from pipeline.catalog.core import Catalog
from pipeline.cli.main import main
from pipeline.demo import synth
from tests.contract._support import inbox_with_clips, s3_config
from tests.mediagen import START


def _tags(client: Any, bucket: str, key: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in
            client.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]}


def _keys(client: Any, bucket: str, prefix: str) -> list[str]:
    resp = client.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for o in resp.get("Contents", []))


@pytest.fixture()
def inbox(s3_server: Any, tmp_path: Path) -> tuple[Any, str, dict[str, str]]:
    """A plain bucket with what a docking station uploaded: two clips, a labels file and a
    note; the BLAKE3 of each clip by key."""
    client, bucket, digests = inbox_with_clips(s3_server, tmp_path, "station-3/day/")
    client.put_object(Bucket=bucket, Key="station-3/labels-1.csv",
                      Body="file,case_number\nREC0.mp4,大柘综执罚〔2024〕7号\n".encode())
    client.put_object(Bucket=bucket, Key="station-3/readme.txt", Body=b"not media")
    return client, bucket, digests


def _run(s3_server: Any, cfg: Path) -> tuple[int, dict[str, Any]]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["nightly", "--config", str(cfg), "--json", "--workers", "1"],
                env=s3_server.env(), out=out, err=err)
    assert out.getvalue(), err.getvalue()
    return code, json.loads(out.getvalue())["run"]


def test_an_s3_inbox_is_archived_then_tagged_and_copied_never_deleted(
    s3_server: Any, tmp_path: Path, inbox: tuple[Any, str, dict[str, str]]
) -> None:
    client, bucket, digests = inbox
    cfg = tmp_path / "custody.toml"
    cfg.write_text(
        f'[custody]\nstore = "{tmp_path / "store"}"\ncatalog = "{tmp_path / "catalog"}"\n'
        f'[custody.nightly]\nspool = "{tmp_path / "spool"}"\n'
        f'sources = [{{ path = "s3://{bucket}/station-3/", labels = "labels-*.csv", '
        f'done = "s3://{bucket}/done/" }}]\n', encoding="utf-8")
    code, run = _run(s3_server, cfg)
    assert code == 1  # AV-12 findings of footage from 2024
    assert (run["files_seen"], run["archived"], run["skipped"], run["failed"],
            run["verified"], run["moved"], run["left_in_place"]) == (3, 2, 1, 0, 2, 2, [])
    rows = Catalog(tmp_path / "catalog").query(
        "SELECT file_name, blake3, case_number FROM recordings ORDER BY 1").to_pylist()
    assert [(r["file_name"], r["blake3"], r["case_number"]) for r in rows] == [
        ("REC0.mp4", digests["station-3/day/REC0.mp4"], "大柘综执罚〔2024〕7号"),
        ("REC1.mp4", digests["station-3/day/REC1.mp4"], None)]
    # Nothing deleted from the inbox; each archived object tagged with its BLAKE3 and
    # copied below done/ (tagged too); the labels file and the note untouched.
    assert _keys(client, bucket, "station-3/") == [
        "station-3/day/REC0.mp4", "station-3/day/REC1.mp4", "station-3/labels-1.csv",
        "station-3/readme.txt"]
    for key, b3 in digests.items():
        assert _tags(client, bucket, key) == {"custody-archived": b3}
        copy = "done/" + key.removeprefix("station-3/")
        assert _tags(client, bucket, copy) == {"custody-archived": b3}
        body = client.get_object(Bucket=bucket, Key=copy)["Body"].read()
        assert blake3.blake3(body).hexdigest() == b3
    for key in ("station-3/labels-1.csv", "station-3/readme.txt"):
        assert _tags(client, bucket, key) == {}
    spool = tmp_path / "spool" / "files" / bucket / "station-3"
    assert sorted(p.name for p in spool.rglob("*") if p.is_file()) == [
        "labels-1.csv", "readme.txt"]  # the archived copies are gone from the spool

    # The second night: the tagged objects are not fetched again.
    code, run = _run(s3_server, cfg)
    assert (code, run["files_seen"], run["archived"], run["already_archived"],
            run["skipped"]) == (0, 1, 0, 0, 1)


def test_an_inbox_that_cannot_be_listed_fails_the_run_and_the_rest_still_goes(
    s3_server: Any, tmp_path: Path
) -> None:
    dock = tmp_path / "dock"
    dock.mkdir()
    synth.write_still(dock / "photo.jpg", START)
    cfg = tmp_path / "custody.toml"
    cfg.write_text(
        f'[custody]\nstore = "{tmp_path / "store"}"\ncatalog = "{tmp_path / "catalog"}"\n'
        f'[custody.nightly]\nspool = "{tmp_path / "spool"}"\n'
        f'sources = ["s3://no-such-inbox-{uuid.uuid4().hex[:8]}/x/", "{dock}"]\n',
        encoding="utf-8")
    code, run = _run(s3_server, cfg)
    assert code == 2
    assert (run["archived"], run["store_state"]) == (1, "reachable")
    assert "s3://no-such-inbox-" in run["error"] and "NoSuchBucket" in run["error"]


def test_a_store_that_fails_its_self_test_is_exit_2_and_recorded(
    s3_server: Any, tmp_path: Path
) -> None:
    """A bucket without Object Lock deletes what it is asked to: the run itself fails."""
    client = s3_config(s3_server).client()
    bucket = f"plain-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    dock = tmp_path / "dock"
    dock.mkdir()
    synth.write_still(dock / "photo.jpg", START)
    cfg = tmp_path / "custody.toml"
    cfg.write_text(
        f'[custody]\nstore = "s3://{bucket}/evidence"\ncatalog = "{tmp_path / "catalog"}"\n'
        f'[custody.nightly]\nsources = [{{ path = "{dock}", done = "{tmp_path / "done"}" }}]\n',
        encoding="utf-8")
    code, run = _run(s3_server, cfg)
    assert code == 2
    assert (run["files_seen"], run["archived"], run["moved"]) == (0, 0, 0)
    assert "self-test" in run["error"]
    assert (dock / "photo.jpg").exists() and not (tmp_path / "done").exists()
    (rec,) = Catalog(tmp_path / "catalog").query(
        "SELECT exit_code, error, archived FROM nightly_runs").to_pylist()
    assert (rec["exit_code"], rec["error"], rec["archived"]) == (2, run["error"], 0)
