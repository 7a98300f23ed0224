"""A killed ingest leaves nothing half-visible; verify names every damaged chunk, and
appended or removed bytes, in the last chunk too."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


def _commits(tmp: Path) -> int:
    """Whole lines of the catalog's commit list: the batches it reads (a batch's folder is
    in place a moment before its line, so folders alone can run ahead of the commits)."""
    try:
        return (tmp / "catalog" / "commits.jsonl").read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def test_sigkill_mid_batch_then_rerun_gives_every_file_exactly_once(
    batch_dir: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen(_ingest_cmd(batch_dir, tmp_path), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    # at least 2 committed one-file batches, then kill wherever it is
    while _commits(tmp_path) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "ingest finished before it could be killed"
    cat = Catalog(tmp_path / "catalog")
    first = cat.query("SELECT count(*) AS n FROM recordings").column("n")[0].as_py()
    assert 0 < first < N_FILES, (
        f"the kill did not land mid-batch: {first} recordings, {_commits(tmp_path)} "
        f"commit lines, {_batches(tmp_path)} batch folders")

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


# --- appended, removed and changed bytes, in the last chunk too ---------------------------

CHUNK = 4096


def _free_box_padded(src: Path, dst: Path, multiple: int) -> Path:
    """`src` with a trailing ISO BMFF `free` box making its size a whole number of chunks
    (a valid MP4: players skip free boxes)."""
    data = src.read_bytes()
    pad = -len(data) % multiple
    if pad < 8:
        pad += multiple
    dst.write_bytes(data + pad.to_bytes(4, "big") + b"free" + bytes(pad - 8))
    return dst


@pytest.fixture(scope="module")
def archived(batch_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two recordings ingested with 4 KiB chunks: `ragged.mp4` (its last chunk is short)
    and `whole.mp4` (a whole number of chunks)."""
    root = tmp_path_factory.mktemp("fixity")
    src = root / "src"
    src.mkdir()
    (src / "ragged.mp4").write_bytes((batch_dir / "REC0005.mp4").read_bytes())
    _free_box_padded(batch_dir / "REC0006.mp4", src / "whole.mp4", CHUNK)
    assert (src / "ragged.mp4").stat().st_size % CHUNK != 0
    assert (src / "whole.mp4").stat().st_size % CHUNK == 0
    code = main(["ingest", str(src), "--chunk-size", str(CHUNK), "--store",
                 str(root / "store"), "--catalog", str(root / "catalog")], env={},
                out=io.StringIO(), err=io.StringIO())
    assert code in (0, 1)
    return root


def _damage_and_verify(
    archived: Path, tmp_path: Path, name: str, damage: Callable[[bytearray], None]
) -> tuple[int, dict[str, Any], int, str]:
    """A copy of the archive with `name`'s stored object changed by `damage`; custody
    verify --json on it: (exit code, that object's entry, recorded size, store key)."""
    shutil.copytree(archived / "store", tmp_path / "store")
    shutil.copytree(archived / "catalog", tmp_path / "catalog")
    (row,) = Catalog(tmp_path / "catalog").query(
        "SELECT store_key, size_bytes, chunk_size_bytes FROM recordings WHERE file_name = ?",
        [name]).to_pylist()
    assert row["chunk_size_bytes"] == CHUNK
    path = LocalStore(tmp_path / "store").object_path(row["store_key"])
    data = bytearray(path.read_bytes())
    damage(data)
    path.chmod(0o644)  # what an attacker with the machine's root could do
    path.write_bytes(bytes(data))
    out = io.StringIO()
    code = main(["verify", "--json", "--store", str(tmp_path / "store"), "--catalog",
                 str(tmp_path / "catalog")], env={}, out=out, err=io.StringIO())
    doc = json.loads(out.getvalue())
    assert doc["catalog"]["findings"] == []  # the copied catalog is intact
    (obj,) = [o for o in doc["objects"] if o["file_name"] == name]
    assert [o["ok"] for o in doc["objects"] if o["file_name"] != name] == [True]
    return code, obj, row["size_bytes"], row["store_key"]


def _last_chunk(size: int) -> tuple[int, int, int]:
    index = (size - 1) // CHUNK
    return index, index * CHUNK, size - index * CHUNK


def _chunk_finding(name: str, key: str, index: int, offset: int, length: int) -> str:
    return (f"{name} ({key}): chunk {index} at byte offset {offset}, length {length}, "
            "does not match its recorded BLAKE3")


def _size_finding(name: str, key: str, got: int, size: int) -> str:
    return f"{name} ({key}): stored size {got} bytes, catalog says {size}"


def test_an_intact_copy_of_the_archive_verifies(archived: Path, tmp_path: Path) -> None:
    code, obj, _, _ = _damage_and_verify(archived, tmp_path, "ragged.mp4", lambda d: None)
    assert (code, obj["ok"], obj["bad_chunks"], obj["findings"]) == (0, True, [], [])


def test_verify_names_bytes_appended_into_a_short_last_chunk(
    archived: Path, tmp_path: Path
) -> None:
    code, obj, size, key = _damage_and_verify(archived, tmp_path, "ragged.mp4",
                                              lambda d: d.extend(b"\x00" * 10))
    index, offset, length = _last_chunk(size)
    assert (code, obj["ok"]) == (1, False)
    assert obj["bad_chunks"] == [{"index": index, "offset": offset, "length": length}]
    assert [(f["code"], f["detail"]) for f in obj["findings"]] == [
        ("FIXITY_MISMATCH", _chunk_finding("ragged.mp4", key, index, offset, length)),
        ("FIXITY_MISMATCH", _size_finding("ragged.mp4", key, size + 10, size)),
    ]


def test_verify_names_bytes_appended_after_the_last_whole_chunk(
    archived: Path, tmp_path: Path
) -> None:
    """Every recorded chunk still matches: only the size says the object grew."""
    code, obj, size, key = _damage_and_verify(archived, tmp_path, "whole.mp4",
                                              lambda d: d.extend(b"\x00"))
    assert (code, obj["ok"], obj["bad_chunks"]) == (1, False, [])
    assert [(f["code"], f["detail"]) for f in obj["findings"]] == [
        ("FIXITY_MISMATCH", _size_finding("whole.mp4", key, size + 1, size))]


def test_verify_names_bytes_removed_from_the_end(archived: Path, tmp_path: Path) -> None:
    def truncate(d: bytearray) -> None:
        del d[-10:]

    code, obj, size, key = _damage_and_verify(archived, tmp_path, "ragged.mp4", truncate)
    index, offset, length = _last_chunk(size)
    assert (code, obj["ok"]) == (1, False)
    assert obj["bad_chunks"] == [{"index": index, "offset": offset, "length": length}]
    assert [(f["code"], f["detail"]) for f in obj["findings"]] == [
        ("FIXITY_MISMATCH", _chunk_finding("ragged.mp4", key, index, offset, length)),
        ("FIXITY_MISMATCH", _size_finding("ragged.mp4", key, size - 10, size)),
    ]


def test_verify_names_a_whole_last_chunk_removed(archived: Path, tmp_path: Path) -> None:
    def truncate(d: bytearray) -> None:
        del d[-CHUNK:]

    code, obj, size, key = _damage_and_verify(archived, tmp_path, "whole.mp4", truncate)
    index, offset, length = _last_chunk(size)
    assert length == CHUNK
    assert (code, obj["ok"]) == (1, False)
    assert obj["bad_chunks"] == [{"index": index, "offset": offset, "length": CHUNK}]
    assert [(f["code"], f["detail"]) for f in obj["findings"]] == [
        ("FIXITY_MISMATCH", _chunk_finding("whole.mp4", key, index, offset, CHUNK)),
        ("FIXITY_MISMATCH", _size_finding("whole.mp4", key, size - CHUNK, size)),
    ]


@pytest.mark.parametrize("where", ["first", "last"])
def test_verify_names_the_one_chunk_with_a_changed_byte(
    archived: Path, tmp_path: Path, where: str
) -> None:
    """The first byte of the object, or its very last byte (inside the short last chunk):
    that chunk alone, and the size is unchanged."""
    at = 0 if where == "first" else -1

    def flip(d: bytearray) -> None:
        d[at] ^= 0x01

    code, obj, size, key = _damage_and_verify(archived, tmp_path, "ragged.mp4", flip)
    index, offset, length = (0, 0, CHUNK) if where == "first" else _last_chunk(size)
    assert (code, obj["ok"]) == (1, False)
    assert obj["bad_chunks"] == [{"index": index, "offset": offset, "length": length}]
    assert [(f["code"], f["detail"]) for f in obj["findings"]] == [
        ("FIXITY_MISMATCH", _chunk_finding("ragged.mp4", key, index, offset, length))]
