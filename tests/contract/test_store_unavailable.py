"""The store going away (issue 14): errors that name the store and say what went wrong,
uploads that are aborted, and the open uploads of killed runs aborted at the next start.

The servers that misbehave are real sockets on 127.0.0.1 (one that refuses, one that never
answers, one whose listen queue is full, one that resets) or the SeaweedFS session server
behind the flawed-store proxy; nothing of boto3 is mocked.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.storage.base import StoreUnavailable, WormStore, key_for
from pipeline.storage.local import LocalStore
from pipeline.storage.s3.store import S3Config, S3Store
from tests.contract._support import MiB, fresh_bucket, s3_config
from tests.flawed_s3 import PartAnswersError, flawed_s3
from tests.s3server import free_ports

KEY = key_for("3" * 64)


class _Silent:
    """A TCP server on 127.0.0.1 that accepts, reads, and then never answers (`mode`
    "silent") or resets the connection ("reset"); it counts the connections it accepted."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.accepted = 0
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._held: list[socket.socket] = []
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def _run(self) -> None:
        self._sock.settimeout(0.1)
        while not self._stop:
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            conn.settimeout(2)
            with contextlib.suppress(OSError):
                conn.recv(1 << 16)
            if self.mode == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
            else:
                self._held.append(conn)

    def close(self) -> None:
        self._stop = True
        self._thread.join(timeout=2)
        for c in self._held:
            c.close()
        self._sock.close()


@pytest.fixture
def silent() -> Iterator[_Silent]:
    server = _Silent("silent")
    yield server
    server.close()


def _config(endpoint: str, **kw: Any) -> S3Config:
    return S3Config(endpoint_url=endpoint, access_key_id="x", secret_access_key="y",
                    connect_timeout_s=0.5, read_timeout_s=0.5, max_attempts=1, **kw)


def _error(store: S3Store) -> StoreUnavailable:
    with pytest.raises(StoreUnavailable) as got:
        store.head(KEY)
    return got.value


# --- the words ------------------------------------------------------------------------------
def test_nothing_listening_is_connection_refused_naming_endpoint_and_bucket() -> None:
    endpoint = f"http://127.0.0.1:{free_ports(1)[0]}"
    exc = _error(S3Store("custody-gone", "evidence", config=_config(endpoint)))
    assert str(exc) == (
        f"S3 store {endpoint} bucket custody-gone unavailable: connection refused (the server "
        f"is down or not listening) (list versions, s3://custody-gone/evidence/{KEY})")
    assert exc.words == "connection refused (the server is down or not listening)"


def test_a_server_that_never_answers_timed_out_waiting(silent: _Silent) -> None:
    exc = _error(S3Store("custody-silent", config=_config(silent.endpoint)))
    assert str(exc).startswith(
        f"S3 store {silent.endpoint} bucket custody-silent unavailable: timed out waiting "
        "for an answer (the server accepted but did not reply) (list versions, ")


def test_a_full_listen_queue_timed_out_connecting() -> None:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)  # one connection fills the queue; nobody accepts; later SYNs are dropped
    filler = socket.create_connection(srv.getsockname(), timeout=1)
    try:
        endpoint = f"http://127.0.0.1:{srv.getsockname()[1]}"
        exc = _error(S3Store("custody-full", config=_config(endpoint)))
        assert exc.words == "timed out connecting (no answer to the connection request)"
        assert str(exc).startswith(f"S3 store {endpoint} bucket custody-full unavailable: ")
    finally:
        filler.close()
        srv.close()


def test_a_reset_connection_says_reset() -> None:
    server = _Silent("reset")
    try:
        exc = _error(S3Store("custody-reset", config=_config(server.endpoint)))
        assert exc.words == "connection reset by the server"
    finally:
        server.close()


def test_a_missing_bucket_is_named_with_the_store(s3_server: Any) -> None:
    exc = _error(S3Store("custody-no-such-bucket", config=s3_config(s3_server)))
    assert str(exc).startswith(
        f"S3 store {s3_server.endpoint_url} bucket custody-no-such-bucket unavailable: "
        "NoSuchBucket: no such bucket")


# --- a store that failed is not asked again for a while --------------------------------------
def test_after_the_store_failed_requests_fail_at_once_without_connecting(
    silent: _Silent,
) -> None:
    store = S3Store("custody-silent", config=_config(silent.endpoint))
    first = _error(store)
    assert silent.accepted == 1
    second = _error(store)
    assert silent.accepted == 1, "the second request must not have connected"
    assert "timed out waiting for an answer" in str(second)
    assert f"list versions, s3://custody-silent/{KEY} not tried" in str(second)
    assert store.unavailable is first


def test_with_no_hold_every_request_tries_again(silent: _Silent) -> None:
    store = S3Store("custody-silent", config=_config(silent.endpoint, unavailable_hold_s=0))
    first = _error(store)
    _error(store)
    assert silent.accepted == 2
    assert store.unavailable is first, "the store remembers the first failure"


def test_a_store_that_never_failed_has_no_unavailable(store: WormStore) -> None:
    assert not store.exists(KEY)
    assert store.unavailable is None


# --- uploads that cannot finish are aborted -----------------------------------------------------
def test_a_part_the_server_cannot_take_aborts_the_upload(
    s3_server: Any, s3_admin: Any, tmp_path: Path
) -> None:
    import blake3

    data = bytes(range(256)) * (100 * 1024)  # 25 MiB: 5 parts of 5 MiB
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    bucket = fresh_bucket(s3_admin)
    flaw = PartAnswersError(from_part=2)
    with flawed_s3(s3_server, flaw) as proxy:
        config = dataclasses.replace(s3_config(s3_server), endpoint_url=proxy.endpoint_url)
        store = S3Store(bucket, "evidence", config=config)
        until = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
        with pytest.raises(StoreUnavailable) as got:
            store.put_file(str(src), blake3.blake3(data).hexdigest(), retain_until_utc=until)
        assert flaw.hits >= 1
        assert proxy.seen.count("AbortMultipartUpload") == 1
    assert str(got.value).startswith(
        f"S3 store {proxy.endpoint_url} bucket {bucket} unavailable: ServiceUnavailable: the "
        "server is unavailable (ServiceUnavailable (flawed store)) (upload part, ")
    assert "stays open" not in str(got.value)
    assert s3_admin.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert len(data) == 25 * MiB


# --- open uploads of killed runs --------------------------------------------------------------
def _open_upload(client: Any, bucket: str, key: str) -> str:
    return str(client.create_multipart_upload(Bucket=bucket, Key=key,
                                              ChecksumAlgorithm="SHA256")["UploadId"])


def _open_uploads(client: Any, bucket: str) -> set[tuple[str, str]]:
    ups = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    return {(u["Key"], u["UploadId"]) for u in ups}


def test_abort_stale_uploads_aborts_only_old_uploads_of_its_own_content_keys(
    s3_server: Any, s3_admin: Any
) -> None:
    bucket = fresh_bucket(s3_admin)
    store = S3Store(bucket, "evidence", config=s3_config(s3_server))
    old_key, new_key = f"evidence/{key_for('a' * 64)}", f"evidence/{key_for('b' * 64)}"
    other_store, not_content = f"other/{key_for('c' * 64)}", "evidence/b3/not-a-digest"
    old = _open_upload(s3_admin, bucket, old_key)
    kept = {(k, _open_upload(s3_admin, bucket, k)) for k in (other_store, not_content)}
    time.sleep(2.2)  # the server stamps uploads and its Date to the second
    new = _open_upload(s3_admin, bucket, new_key)
    assert store.abort_stale_uploads(dt.timedelta(seconds=1)) == 1
    assert _open_uploads(s3_admin, bucket) == kept | {(new_key, new)}
    assert (old_key, old) not in _open_uploads(s3_admin, bucket)
    assert store.abort_stale_uploads(dt.timedelta(hours=1)) == 0


def test_a_run_start_clears_uploads_older_than_the_configured_age(
    s3_server: Any, s3_admin: Any
) -> None:
    bucket = fresh_bucket(s3_admin)
    config = dataclasses.replace(s3_config(s3_server), stale_upload_after_s=1)
    _open_upload(s3_admin, bucket, f"evidence/{key_for('d' * 64)}")
    time.sleep(2.2)
    assert S3Store(bucket, "evidence", config=config).clear_staging() == 1
    assert _open_uploads(s3_admin, bucket) == set()


def test_a_fresh_store_has_no_stale_uploads(store: WormStore) -> None:
    assert store.abort_stale_uploads(dt.timedelta(0)) == 0
    with pytest.raises(ValueError, match="must not be negative"):
        store.abort_stale_uploads(dt.timedelta(seconds=-1))


def test_the_local_store_aborts_nothing_and_clears_its_parts(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    (tmp_path / "store" / "tmp" / "killed.part").write_bytes(b"half")
    time.sleep(1.2)  # a copy changed in the last second may be a live writer's
    assert store.abort_stale_uploads(dt.timedelta(0)) == 0
    assert store.clear_staging() == 1


def test_the_stale_age_comes_from_the_environment() -> None:
    assert S3Config.from_env({}).stale_upload_after_s == 6 * 3600
    env = {"CUSTODY_S3_STALE_UPLOAD_AFTER_S": "90"}
    assert S3Config.from_env(env).stale_upload_after_s == 90
    with pytest.raises(StoreUnavailable, match="CUSTODY_S3_STALE_UPLOAD_AFTER_S must be a "
                                               "whole number of seconds, not '1h'"):
        S3Config.from_env({"CUSTODY_S3_STALE_UPLOAD_AFTER_S": "1h"})
