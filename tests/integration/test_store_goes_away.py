"""The store goes away mid-run (issue 14 acceptance): SeaweedFS killed during a batch of three
large files, then started again on the same data directory.

The test starts its own `weed mini` (not the session server: it is killed here) and runs
`custody ingest` in its own process, killing the server (SIGKILL, the whole process group)
the moment the first multipart upload of the three is open. The first run must end
with exit 2, each failed file naming the store (endpoint and bucket) and the error; the
second, against the server back on the same data, archives the rest exactly once (one
catalog row and one object version per file) and aborts the upload the first run left open.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import blake3
import pytest

from pipeline.catalog.core import Catalog
from tests.contract._support import fresh_bucket, s3_config
from tests.s3server import S3Server, start_weed_mini

pytestmark = pytest.mark.slow

PREFIX = "evidence"


def _large_recordings(d: Path) -> list[Path]:
    """Three distinct 1080p MP4 recordings of 85-120 MB (multipart: above the 64 MiB
    threshold): a 4 s lossless testsrc2, stream-copied 5-7 times over (a few seconds of
    ffmpeg, no re-encoding)."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("ffmpeg not on PATH")
    d.mkdir(parents=True)
    base = d / "base.mp4"
    subprocess.run(
        [ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "4",
         "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-g", "30",
         "-pix_fmt", "yuv420p", "-c:a", "aac", str(base)], check=True)
    src = d / "in"
    src.mkdir()
    out = []
    for i, loops in enumerate((4, 5, 6), start=1):
        path = src / f"CAM0001_2024050108{i:02d}00.mp4"
        subprocess.run([ffmpeg, "-v", "error", "-y", "-stream_loop", str(loops), "-i",
                        str(base), "-c", "copy", str(path)], check=True)
        out.append(path)
    base.unlink()
    return out


def _b3(path: Path) -> str:
    h = blake3.blake3(max_threads=blake3.blake3.AUTO)
    h.update_mmap(path)
    return h.hexdigest()


def _kill(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def _start(workdir: Path) -> tuple[subprocess.Popen[bytes], S3Server]:
    for _ in range(3):  # a chosen free port can be taken before weed binds it
        try:
            return start_weed_mini(workdir)
        except RuntimeError:
            continue
    raise RuntimeError("could not start SeaweedFS")


@pytest.fixture
def weed(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Our own SeaweedFS; whatever runs at teardown is stopped."""
    state: dict[str, Any] = {"workdir": tmp_path / "weed"}
    state["proc"], state["server"] = _start(state["workdir"])
    yield state
    proc = state["proc"]
    if proc.poll() is None:
        _kill(proc)


def _start_ingest(server: S3Server, uri: str, src: Path, cat: Path) -> subprocess.Popen[str]:
    """`custody ingest --json` in its own process, as an operator runs it."""
    env = {**server.env(), "CUSTODY_S3_STALE_UPLOAD_AFTER_S": "1",
           "PATH": os.environ.get("PATH", ""), "HOME": str(cat.parent / "home"),
           "LANG": "C.UTF-8"}
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "ingest", str(src), "--store", uri,
         "--catalog", str(cat), "--json"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=Path(__file__).resolve().parents[2])


def _finish(proc: subprocess.Popen[str]) -> tuple[int, dict[str, Any], str]:
    out, err = proc.communicate(timeout=600)
    assert out, f"exit {proc.returncode}, no JSON; stderr: {err}"
    return proc.returncode, json.loads(out), err


def _open_uploads(client: Any, bucket: str) -> set[tuple[str, str]]:
    ups = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    return {(u["Key"], u["UploadId"]) for u in ups}


def test_the_store_killed_mid_batch_fails_the_run_and_the_next_run_archives_the_rest(
    weed: dict[str, Any], tmp_path: Path
) -> None:
    files = _large_recordings(tmp_path / "media")
    keys = {_b3(p): p for p in files}
    server: S3Server = weed["server"]
    admin = s3_config(server).client()
    bucket = fresh_bucket(admin)
    uri = f"s3://{bucket}/{PREFIX}"
    cat = tmp_path / "catalog"

    seen: dict[str, Any] = {}
    run = _start_ingest(server, uri, files[0].parent, cat)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and run.poll() is None:
        # The first upload of one of the three (the self-test's canary upload is not one).
        ups = {u for u in _open_uploads(admin, bucket)
               if u[0].removeprefix(f"{PREFIX}/b3/") in keys}
        if ups:
            _kill(weed["proc"])
            seen["killed_at"], seen["uploads"] = time.monotonic(), ups
            break
        time.sleep(0.02)
    code, doc, err = _finish(run)
    assert "uploads" in seen, f"the server was never killed: no multipart upload seen; {err}"

    # Which file was going up when the server died: the files before it are archived, it and
    # the ones after it failed, each naming the store and the error.
    ((open_key, open_id),) = seen["uploads"]
    dying = keys[open_key.removeprefix(f"{PREFIX}/b3/")]
    at = files.index(dying)
    statuses = {Path(f["path"]).name: f["status"] for f in doc["files"]}
    assert statuses == {p.name: "archived" if i < at else "failed" for i, p in enumerate(files)}
    assert code == 2
    assert doc["run"]["exit_code"] == 2
    store_words = f"S3 store {server.endpoint_url} bucket {bucket} unavailable: connection " \
                  "refused (the server is down or not listening)"
    for f in doc["files"]:
        if f["status"] == "failed":
            assert f["reason"].startswith(f"{f['path']}: {store_words}"), f["reason"]
    dying_reason = next(f["reason"] for f in doc["files"] if f["path"] == str(dying))
    assert "(upload part, " in dying_reason
    assert dying_reason.endswith("its multipart upload stays open until the next run or the "
                                 "bucket's lifecycle rule aborts it")
    assert doc["run"]["store_failed"].startswith(store_words)
    assert "custody ingest: error: the store failed during the run: " + store_words in err

    # The server back on the same data: the upload the first run left is still open.
    weed["proc"], server = _start(weed["workdir"])
    admin = s3_config(server).client()
    assert _open_uploads(admin, bucket) == {(open_key, open_id)}
    time.sleep(max(0.0, seen["killed_at"] + 2.2 - time.monotonic()))  # older than 1 s

    code, doc, err = _finish(_start_ingest(server, uri, files[0].parent, cat))
    assert doc["run"]["store_failed"] is None, err
    statuses = {Path(f["path"]).name: f["status"] for f in doc["files"]}
    assert statuses == {p.name: "already_archived" if i < at else "archived"
                        for i, p in enumerate(files)}
    assert doc["run"]["staging_removed"] == 1
    assert _open_uploads(admin, bucket) == set()
    assert code == doc["run"]["exit_code"] == (1 if doc["run"]["findings"] else 0)

    # Exactly once: one catalog row and one object version per file.
    rows = Catalog(cat).query("SELECT blake3 FROM recordings").to_pylist()
    assert sorted(r["blake3"] for r in rows) == sorted(keys)
    versions: dict[str, int] = {}
    pages = admin.get_paginator("list_object_versions").paginate(
        Bucket=bucket, Prefix=f"{PREFIX}/b3/")
    for page in pages:
        for v in page.get("Versions", []):
            hexd = v["Key"].removeprefix(f"{PREFIX}/b3/")
            if hexd in keys:
                versions[hexd] = versions.get(hexd, 0) + 1
                assert v["Size"] == keys[hexd].stat().st_size
    assert versions == {k: 1 for k in keys}
