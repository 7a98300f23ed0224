"""Fixity's exact findings, pinned for mutation testing (issue 11 items 1 and 4).

A real local store and a real catalog, filled directly (no media, no ingest): each
object's chunk table is written here from its bytes, then the stored bytes are changed,
appended to, cut short or removed, and `verify` must say exactly which chunk, offset,
length and size.
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import BinaryIO

import blake3
import pytest

from pipeline.catalog.core import Catalog
from pipeline.integrity import fixity
from pipeline.progress import Tick
from pipeline.storage.base import StoreUnavailable
from pipeline.storage.local import LocalStore
from schemas.media import Subject
from schemas.records import ChunkRecord, RecordingRecord

T0 = dt.datetime(2026, 11, 27, 1, 30, tzinfo=dt.UTC)
CHUNK = 16


def _b3(data: bytes) -> str:
    return blake3.blake3(data).hexdigest()


def _recording(name: str, data: bytes, key: str, *, b3: str | None = None) -> RecordingRecord:
    return RecordingRecord(
        blake3=b3 or _b3(data), size_bytes=len(data), source_path=f"/in/{name}",
        file_name=name, media_kind="video", container="mp4", duration_seconds=1.0,
        creation_time_utc=None, make=None, model=None, serial=None, gps_iso6709=None,
        case_number=None, inspected_entity=None, officer_ids=[], device_id=None,
        activity_type=None, recorded_start_utc=None, recorded_end_utc=None,
        recorded_time_source=None, ingested_at_utc=T0, run_id="r1", store_uri="local",
        store_key=key, store_version=None, retain_until_utc=None, chunk_size_bytes=CHUNK,
        chunk_count=-(-len(data) // CHUNK), tags_json="{}",
    )


def _chunks(b3: str, data: bytes) -> list[ChunkRecord]:
    return [ChunkRecord(recording_blake3=b3, chunk_index=i // CHUNK, offset_bytes=i,
                        length_bytes=len(data[i:i + CHUNK]), blake3=_b3(data[i:i + CHUNK]))
            for i in range(0, len(data), CHUNK)]


class DroppingStore(LocalStore):
    """A flawed store: the connection drops after the first `ok` bytes of any read, as an
    S3 read does when the network goes (the store's own error, not a missing object)."""

    ok = 20

    def open(self, key: str, start: int = 0, end: int | None = None, *,
             verify: bool = True) -> BinaryIO:
        data = super().open(key, start, end, verify=verify).read()
        store = self

        class Dropping(io.BytesIO):
            def read(self, n: int | None = -1) -> bytes:
                if self.tell() >= store.ok:
                    raise StoreUnavailable(f"{key}: connection reset after {store.ok} bytes")
                return super().read(n)

        return Dropping(data)


class Archive:
    def __init__(self, root: Path, store: type[LocalStore] = LocalStore) -> None:
        self.store = store(root / "store")
        self.catalog = Catalog(root / "catalog")
        self.keys: dict[str, str] = {}

    def put(self, name: str, data: bytes, *, recorded_b3: str | None = None) -> str:
        staged = self.store.stage()
        staged.write(data)
        key = staged.commit(_b3(data), retain_until_utc=T0 + dt.timedelta(days=365)).key
        b3 = recorded_b3 or _b3(data)
        batch = self.catalog.batch()
        batch.add(RecordingRecord, [_recording(name, data, key, b3=b3)])
        batch.add(ChunkRecord, _chunks(b3, data))
        batch.commit(T0.date())
        self.keys[name] = key
        return key

    def rewrite(self, name: str, data: bytes) -> None:
        path = self.store.object_path(self.keys[name])
        path.chmod(0o644)  # what someone with the machine's root could do
        path.write_bytes(data)


DATA = bytes(range(40))  # chunks 0..15, 16..31 and a short last one 32..39


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    a = Archive(tmp_path)
    a.put("a.mp4", DATA)
    return a


def _one(archive: Archive) -> fixity.FixityResult:
    (result,) = fixity.verify(archive.store, archive.catalog)
    return result


def test_an_intact_object_is_ok_with_nothing_found(archive: Archive) -> None:
    r = _one(archive)
    assert (r.blake3, r.file_name, r.store_key, r.size_bytes) == (
        _b3(DATA), "a.mp4", archive.keys["a.mp4"], 40)
    assert (r.ok, r.findings, r.bad_chunks) == (True, [], [])


def test_a_changed_byte_names_its_chunk_offset_and_length(archive: Archive) -> None:
    archive.rewrite("a.mp4", DATA[:20] + b"\xff" + DATA[21:])
    r = _one(archive)
    key = archive.keys["a.mp4"]
    assert r.ok is False
    assert r.bad_chunks == [(1, 16, 16)]
    assert [(f.code, f.detail, f.subject) for f in r.findings] == [(
        "FIXITY_MISMATCH",
        f"a.mp4 ({key}): chunk 1 at byte offset 16, length 16, does not match its "
        "recorded BLAKE3",
        Subject("object", key),
    )]


def test_a_change_in_the_short_last_chunk_is_named(archive: Archive) -> None:
    archive.rewrite("a.mp4", DATA[:39] + b"\x00")
    assert _one(archive).bad_chunks == [(2, 32, 8)]


def test_two_changed_chunks_are_two_findings_in_order(archive: Archive) -> None:
    archive.rewrite("a.mp4", b"\xff" + DATA[1:33] + b"\xff" + DATA[34:])
    r = _one(archive)
    assert r.bad_chunks == [(0, 0, 16), (2, 32, 8)]
    assert [f.detail.split(": ", 1)[1] for f in r.findings] == [
        "chunk 0 at byte offset 0, length 16, does not match its recorded BLAKE3",
        "chunk 2 at byte offset 32, length 8, does not match its recorded BLAKE3",
    ]


def test_bytes_appended_after_a_short_last_chunk_change_it_and_the_size(
    archive: Archive,
) -> None:
    """The last chunk is read at the full chunk size, so it takes in the appended bytes."""
    archive.rewrite("a.mp4", DATA + b"\x00" * 20)
    r = _one(archive)
    key = archive.keys["a.mp4"]
    assert r.ok is False and r.bad_chunks == [(2, 32, 8)]
    assert [(f.code, f.detail, f.subject) for f in r.findings][1:] == [(
        "FIXITY_MISMATCH", f"a.mp4 ({key}): stored size 60 bytes, catalog says 40",
        Subject("object", key))]


def test_bytes_appended_to_a_whole_number_of_chunks_are_a_size_finding(
    tmp_path: Path,
) -> None:
    a = Archive(tmp_path)
    data = bytes(32)
    a.put("w.mp4", data)
    a.rewrite("w.mp4", data + b"\x01")
    (r,) = fixity.verify(a.store, a.catalog)
    assert [f.detail.split(": ", 1)[1] for f in r.findings] == [
        "stored size 33 bytes, catalog says 32"]


def test_removed_bytes_are_a_chunk_and_a_size_finding(archive: Archive) -> None:
    archive.rewrite("a.mp4", DATA[:36])
    r = _one(archive)
    assert r.bad_chunks == [(2, 32, 8)]
    assert [f.detail.split(": ", 1)[1] for f in r.findings] == [
        "chunk 2 at byte offset 32, length 8, does not match its recorded BLAKE3",
        "stored size 36 bytes, catalog says 40",
    ]


def test_a_whole_object_hash_other_than_recorded_is_its_own_finding(tmp_path: Path) -> None:
    """The chunk table matches, but the recording's BLAKE3 does not: still a finding."""
    a = Archive(tmp_path)
    key = a.put("b.mp4", DATA, recorded_b3="e" * 64)
    (r,) = fixity.verify(a.store, a.catalog)
    assert r.bad_chunks == []
    assert [(f.code, f.detail, f.subject) for f in r.findings] == [
        ("FIXITY_MISMATCH", f"b.mp4 ({key}): whole-object BLAKE3 differs",
         Subject("object", key))]
    assert r.ok is False


def test_a_missing_object_is_object_missing(archive: Archive) -> None:
    key = archive.keys["a.mp4"]
    archive.store.object_path(key).unlink()
    r = _one(archive)
    assert r.ok is False
    assert [(f.code, f.subject) for f in r.findings] == [("OBJECT_MISSING",
                                                          Subject("object", key))]
    assert r.findings[0].detail == f"a.mp4: {key}: not in store {archive.store.uri}"


def test_selectors_choose_by_name_and_results_are_in_name_order(archive: Archive) -> None:
    archive.put("0.mp4", b"zero")
    archive.put("z.mp4", b"last")
    every = fixity.verify(archive.store, archive.catalog)
    assert [r.file_name for r in every] == ["0.mp4", "a.mp4", "z.mp4"]
    chosen = fixity.verify(archive.store, archive.catalog, ["z.mp4"])
    assert [r.file_name for r in chosen] == ["z.mp4"]


def test_progress_is_weighted_by_size_and_ends_complete(archive: Archive) -> None:
    archive.put("z.mp4", b"last")
    ticks: list[Tick] = []
    fixity.verify(archive.store, archive.catalog, progress=ticks.append)
    assert ticks == [Tick(0, 2, 0, 44, "a.mp4"), Tick(1, 2, 40, 44, "z.mp4"),
                     Tick(2, 2, 44, 44)]


def test_verify_fixity_is_one_verification_of_the_store(archive: Archive) -> None:
    archive.put("z.mp4", b"last")
    archive.store.object_path(archive.keys["z.mp4"]).unlink()
    v = fixity.verify_fixity(archive.store, archive.catalog)
    assert (v.kind, v.target, v.checked, v.note) == (
        "fixity", Subject("store", archive.store.uri), 2, fixity.NOTE)
    assert [(f.code, f.subject.id) for f in v.findings] == [
        ("OBJECT_MISSING", archive.keys["z.mp4"])]


def test_verify_fixity_reports_progress_too(archive: Archive) -> None:
    ticks: list[Tick] = []
    fixity.verify_fixity(archive.store, archive.catalog, progress=ticks.append)
    assert ticks == [Tick(0, 1, 0, 40, "a.mp4"), Tick(1, 1, 40, 40)]


def test_a_read_the_store_cannot_finish_is_a_mismatch_naming_its_error(tmp_path: Path) -> None:
    a = Archive(tmp_path, DroppingStore)
    key = a.put("a.mp4", DATA)
    (r,) = fixity.verify(a.store, a.catalog)
    assert (r.ok, r.bad_chunks) == (False, [])
    assert [(f.code, f.detail, f.subject) for f in r.findings] == [(
        "FIXITY_MISMATCH", f"a.mp4: {key}: connection reset after 20 bytes",
        Subject("object", key))]
