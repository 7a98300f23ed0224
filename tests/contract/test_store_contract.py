"""The WORM store contract: every test runs against the local store and the S3 store."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import blake3
import pytest

from pipeline.storage.base import (
    ObjectNotFound,
    RetentionRefused,
    StoreError,
    WormStore,
    key_for,
)
from pipeline.storage.selftest import selftest

DAY = dt.timedelta(days=1)


def write(path: Path, data: bytes) -> tuple[str, str]:
    path.write_bytes(data)
    return str(path), blake3.blake3(data).hexdigest()


def put_bytes(store: WormStore, data: bytes, until: dt.datetime) -> str:
    staged = store.stage(len(data))
    staged.write(data)
    return staged.commit(blake3.blake3(data).hexdigest(), retain_until_utc=until).key


def test_put_file_stores_bytes_under_their_content_key(
    store: WormStore, tmp_path: Path, now: dt.datetime
) -> None:
    data = os.urandom(100_000)
    path, hexd = write(tmp_path / "a.bin", data)
    result = store.put_file(path, hexd, retain_until_utc=now + DAY)
    assert (result.key, result.size_bytes, result.created) == (key_for(hexd), len(data), True)
    with store.open(result.key) as fh:
        assert fh.read() == data


def test_staged_bytes_are_committed_under_their_content_key(
    store: WormStore, now: dt.datetime
) -> None:
    data = b"staged evidence " * 1000
    key = put_bytes(store, data, now + DAY)
    assert key == key_for(blake3.blake3(data).hexdigest())
    with store.open(key) as fh:
        assert fh.read() == data


def test_aborted_stage_stores_nothing(store: WormStore) -> None:
    data = b"never committed"
    staged = store.stage()
    staged.write(data)
    staged.abort()
    assert not store.exists(key_for(blake3.blake3(data).hexdigest()))


def test_empty_object_round_trips(store: WormStore, now: dt.datetime) -> None:
    key = put_bytes(store, b"", now + DAY)
    assert store.head(key).size_bytes == 0
    with store.open(key) as fh:
        assert fh.read() == b""


def test_open_reads_exact_byte_ranges(store: WormStore, now: dt.datetime) -> None:
    data = bytes(range(256)) * 40
    key = put_bytes(store, data, now + DAY)
    for start, end in [(0, 1), (10, 20), (255, 4000), (len(data) - 3, None), (5, len(data) + 99)]:
        with store.open(key, start, end) as fh:
            assert fh.read() == data[start:end], (start, end)


def test_range_past_the_end_is_empty(store: WormStore, now: dt.datetime) -> None:
    key = put_bytes(store, b"0123456789", now + DAY)
    with store.open(key, 10) as fh:
        assert fh.read() == b""
    with store.open(key, 50, 60) as fh:
        assert fh.read() == b""


def test_iter_range_streams_the_range(store: WormStore, now: dt.datetime) -> None:
    data = os.urandom(50_000)
    key = put_bytes(store, data, now + DAY)
    assert b"".join(store.iter_range(key, 100, 40_000, block=4096)) == data[100:40_000]


def test_head_reports_size_retention_hold_and_time(store: WormStore, now: dt.datetime) -> None:
    key = put_bytes(store, b"head me", now + DAY)
    info = store.head(key)
    assert (info.key, info.size_bytes, info.retain_until_utc) == (key, 7, now + DAY)
    assert info.legal_hold is False
    assert info.stored_at_utc is not None
    assert abs(info.stored_at_utc - now) < dt.timedelta(minutes=5)


def test_missing_key_is_object_not_found(store: WormStore) -> None:
    key = key_for("0" * 64)
    assert not store.exists(key)
    with pytest.raises(ObjectNotFound):
        store.head(key)
    with pytest.raises(ObjectNotFound):
        store.open(key)


def test_repeated_put_of_same_content_creates_nothing_new(
    store: WormStore, tmp_path: Path, now: dt.datetime
) -> None:
    path, hexd = write(tmp_path / "same.bin", b"same bytes twice")
    first = store.put_file(path, hexd, retain_until_utc=now + DAY)
    second = store.put_file(path, hexd, retain_until_utc=now + DAY)
    assert first.created and not second.created
    assert second.version == first.version
    assert store.head(first.key).version == first.version


def test_put_file_whose_bytes_do_not_match_the_hash_stores_nothing(
    store: WormStore, tmp_path: Path, now: dt.datetime
) -> None:
    path, _ = write(tmp_path / "changed.bin", b"bytes after the change")
    claimed = blake3.blake3(b"bytes before the change").hexdigest()
    with pytest.raises(StoreError, match="changed while being stored"):
        store.put_file(path, claimed, retain_until_utc=now + DAY)
    assert not store.exists(key_for(claimed))
    assert not store.exists(key_for(blake3.blake3(b"bytes after the change").hexdigest()))


def test_retention_can_be_extended(store: WormStore, now: dt.datetime) -> None:
    key = put_bytes(store, b"keep me longer", now + DAY)
    assert store.extend_retention(key, now + 3 * DAY).retain_until_utc == now + 3 * DAY
    assert store.head(key).retain_until_utc == now + 3 * DAY


def test_retention_cannot_be_shortened(store: WormStore, now: dt.datetime) -> None:
    key = put_bytes(store, b"do not shorten", now + 3 * DAY)
    with pytest.raises(RetentionRefused, match="only grows"):
        store.extend_retention(key, now + DAY)
    assert store.head(key).retain_until_utc == now + 3 * DAY


def test_extending_to_the_same_date_changes_nothing(store: WormStore, now: dt.datetime) -> None:
    key = put_bytes(store, b"same date", now + DAY)
    assert store.extend_retention(key, now + DAY).retain_until_utc == now + DAY


def test_legal_hold_can_be_placed_and_lifted(store: WormStore, now: dt.datetime) -> None:
    key = put_bytes(store, b"hold me", now + DAY)
    assert store.set_legal_hold(key, True).legal_hold is True
    assert store.head(key).legal_hold is True
    assert store.set_legal_hold(key, False).legal_hold is False


def test_selftest_passes(store: WormStore) -> None:
    """The self-test passes, and its `verification` says the same. (One test, so one fresh
    bucket: the session's SeaweedFS has room for about 70.)"""
    report = selftest(store, canary_retention=dt.timedelta(seconds=20))
    assert report.passed, report.summary()
    v = report.verification
    assert (v.kind, v.target.kind, v.target.id, v.ok) == (
        "store_selftest", "store", store.uri, True), report.summary()
    assert v.checked == len(report.checks) and v.note == report.note


def test_selftest_says_whether_the_store_is_tamper_proof(store: WormStore) -> None:
    report = selftest(store, canary_retention=dt.timedelta(seconds=20))
    if store.uri.startswith("s3://"):
        assert report.tamper_proof
    else:
        assert not report.tamper_proof
        assert "tamper-EVIDENT, not tamper-proof" in report.note
