"""A killed ingest leaves nothing half-visible; verify names a damaged chunk."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.catalog.core import Catalog
from pipeline.cli.main import main
from pipeline.demo import synth
from pipeline.integrity.fixity import verify_fixity
from pipeline.storage.local import LocalStore
from tests.mediagen import START

N_FILES = 10


@pytest.fixture(scope="module")
def batch_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ten distinct 3 s recordings (distinct start times give distinct bytes)."""
    d = tmp_path_factory.mktemp("nightly")
    for i in range(N_FILES):
        synth.write_clean(d / f"REC{i:04d}.mp4", 3.0, START.replace(minute=i))
    return d


def _ingest_cmd(src: Path, tmp: Path) -> list[str]:
    return [sys.executable, "-m", "pipeline.cli", "ingest", str(src), "--store",
            str(tmp / "store"), "--catalog", str(tmp / "catalog"), "--batch-files", "1",
            "--workers", "1", "--quiet"]


def _batches(tmp: Path) -> int:
    return len(list((tmp / "catalog" / "batches").glob("date=*/batch=*")))


def test_sigkill_mid_batch_then_rerun_gives_every_file_exactly_once(
    batch_dir: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen(_ingest_cmd(batch_dir, tmp_path), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    # genesis + at least 2 committed file batches, then kill wherever it is
    while _batches(tmp_path) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "ingest finished before it could be killed"
    cat = Catalog(tmp_path / "catalog")
    first = cat.query("SELECT count(*) AS n FROM recordings").column("n")[0].as_py()
    assert 0 < first < N_FILES, "the kill did not land mid-batch"

    rerun = subprocess.run([*_ingest_cmd(batch_dir, tmp_path), "--json"], env=env,
                           capture_output=True, text=True, check=False)
    assert rerun.returncode in (0, 1), rerun.stderr
    statuses = [f["status"] for f in json.loads(rerun.stdout)["files"]]
    assert statuses.count("already_archived") == first
    assert statuses.count("archived") == N_FILES - first

    rec = cat.query("SELECT blake3, count(*) AS n FROM recordings GROUP BY blake3").to_pylist()
    assert len(rec) == N_FILES and all(r["n"] == 1 for r in rec)
    objects = list((tmp_path / "store" / "objects").rglob("*"))
    assert sum(1 for o in objects if o.is_file()) == N_FILES
    for table in ("streams", "chunks", "packets", "findings"):
        orphans = cat.query(
            f"SELECT count(*) AS n FROM {table} t WHERE t.recording_blake3 NOT IN "
            "(SELECT blake3 FROM recordings)").column("n")[0].as_py()
        assert orphans == 0, table
    assert not list((tmp_path / "catalog" / "staging").iterdir())


def test_verify_names_the_chunk_with_a_flipped_byte(batch_dir: Path, tmp_path: Path) -> None:
    src = batch_dir / "REC0000.mp4"
    args = ["--store", str(tmp_path / "store"), "--catalog", str(tmp_path / "catalog")]
    out, err = io.StringIO(), io.StringIO()
    assert main(["ingest", str(src), "--chunk-size", "4096", *args], env={}, out=out,
                err=err) in (0, 1)
    (row,) = Catalog(tmp_path / "catalog").query(
        "SELECT store_key, size_bytes FROM recordings").to_pylist()
    path = LocalStore(tmp_path / "store").object_path(row["store_key"])
    offset = 3 * 4096 + 1000
    assert row["size_bytes"] > offset
    path.chmod(0o644)  # what an attacker with the machine's root could do
    with open(path, "r+b") as fh:
        fh.seek(offset)
        b = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([b[0] ^ 0xFF]))

    out = io.StringIO()
    code = main(["verify", "--json", *args], env={}, out=out, err=io.StringIO())
    doc = json.loads(out.getvalue())
    assert code == 1
    (obj,) = doc["objects"]
    assert obj["ok"] is False
    assert obj["bad_chunks"] == [{"index": 3, "offset": 3 * 4096, "length": 4096}]
    assert obj["findings"][0]["code"] == "FIXITY_MISMATCH"


def test_verify_of_intact_store_passes(batch_dir: Path, tmp_path: Path) -> None:
    args = ["--store", str(tmp_path / "store"), "--catalog", str(tmp_path / "catalog")]
    main(["ingest", str(batch_dir / "REC0001.mp4"), *args], env={}, out=io.StringIO(),
         err=io.StringIO())
    out = io.StringIO()
    assert main(["verify", *args], env={}, out=out, err=io.StringIO()) == 0
    assert "1 objects checked, 0 failed" in out.getvalue()


def test_verify_reports_a_missing_object(batch_dir: Path, tmp_path: Path) -> None:
    args = ["--store", str(tmp_path / "store"), "--catalog", str(tmp_path / "catalog")]
    main(["ingest", str(batch_dir / "REC0002.mp4"), *args], env={}, out=io.StringIO(),
         err=io.StringIO())
    for p in (tmp_path / "store" / "objects").rglob("*"):
        if p.is_file():
            p.unlink()
    out = io.StringIO()
    assert main(["verify", *args], env={}, out=out, err=io.StringIO()) == 1
    assert "OBJECT_MISSING" in out.getvalue()


def test_fixity_is_one_verification_whose_findings_name_the_damaged_object(
    batch_dir: Path, tmp_path: Path
) -> None:
    args = ["--store", str(tmp_path / "store"), "--catalog", str(tmp_path / "catalog")]
    for name in ("REC0003.mp4", "REC0004.mp4"):
        main(["ingest", str(batch_dir / name), *args], env={}, out=io.StringIO(),
             err=io.StringIO())
    store, catalog = LocalStore(tmp_path / "store"), Catalog(tmp_path / "catalog")
    whole = verify_fixity(store, catalog)
    assert (whole.kind, whole.target.id, whole.checked, whole.ok) == (
        "fixity", store.uri, 2, True)
    key = catalog.query("SELECT store_key FROM recordings WHERE file_name = 'REC0004.mp4'"
                        ).to_pylist()[0]["store_key"]
    store.object_path(key).unlink()
    broken = verify_fixity(store, catalog)
    (f,) = broken.findings
    assert (broken.checked, broken.ok, f.code, f.rule) == (2, False, "OBJECT_MISSING", "AV-16")
    assert (f.subject.kind, f.subject.id) == ("object", key)
