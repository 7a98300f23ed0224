"""What the S3 server itself enforces (SeaweedFS `weed mini`), attacked with boto3 directly.

The store is written through `S3Store`; the attacks use a raw boto3 client with the same
credentials, as a person with the ingest keys could. And: the self-test fails against
moto's server, which accepts shortening a COMPLIANCE retention.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import blake3
import pytest
from botocore.exceptions import ClientError

from pipeline.storage.base import (
    ObjectNotFound,
    RetentionRefused,
    StoreError,
    StoreUnavailable,
    key_for,
)
from pipeline.storage.s3.store import S3Config, S3Store, TransferSettings
from pipeline.storage.selftest import selftest
from tests.contract._support import MiB, fresh_bucket, s3_config

DAY = dt.timedelta(days=1)


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def put(store: S3Store, data: bytes, until: dt.datetime) -> tuple[str, str, str]:
    """(store key, S3 key, version id) of `data` written through the store."""
    staged = store.stage()
    staged.write(data)
    result = staged.commit(blake3.blake3(data).hexdigest(), retain_until_utc=until)
    assert result.version is not None
    return result.key, store._full(result.key), result.version


def versions(client: Any, bucket: str, key: str) -> list[dict[str, Any]]:
    resp = client.list_object_versions(Bucket=bucket, Prefix=key)
    return [v for v in resp.get("Versions", []) if v["Key"] == key]


def big_file(path: Path, size: int) -> tuple[str, str]:
    hasher = blake3.blake3()
    with open(path, "wb") as fh:
        block = os.urandom(MiB)
        for i in range(size // MiB):
            chunk = block[:-8] + i.to_bytes(8, "big")  # every MiB distinct, cheap to make
            fh.write(chunk)
            hasher.update(chunk)
        tail = os.urandom(size % MiB)
        fh.write(tail)
        hasher.update(tail)
    return str(path), hasher.hexdigest()


# --- every put carries the lock ------------------------------------------------------------
def test_single_put_carries_compliance_lock_and_checksum(
    s3_store: S3Store, s3_admin: Any, now: dt.datetime
) -> None:
    _, full, version = put(s3_store, b"locked on arrival", now + DAY)
    head = s3_admin.head_object(
        Bucket=s3_store.bucket, Key=full, VersionId=version, ChecksumMode="ENABLED"
    )
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"] == now + DAY
    assert head["ChecksumSHA256"] == sha256_b64(b"locked on arrival")


def test_retain_until_is_rounded_up_to_the_second(s3_store: S3Store, now: dt.datetime) -> None:
    key, _, _ = put(s3_store, b"sub-second", now + DAY + dt.timedelta(microseconds=1))
    assert s3_store.head(key).retain_until_utc == now + DAY + dt.timedelta(seconds=1)


def test_multipart_upload_carries_the_lock(
    s3_store: S3Store, s3_admin: Any, tmp_path: Path, now: dt.datetime
) -> None:
    path, hexd = big_file(tmp_path / "big.bin", 25 * MiB + 12345)
    result = s3_store.put_file(path, hexd, retain_until_utc=now + DAY)
    full = s3_store._full(result.key)
    head = s3_admin.head_object(Bucket=s3_store.bucket, Key=full, VersionId=result.version)
    assert head["ETag"].endswith('-6"')  # 5 MiB parts: a multipart upload of 6 parts
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"] == now + DAY
    with pytest.raises(ClientError) as exc:
        s3_admin.delete_object(Bucket=s3_store.bucket, Key=full, VersionId=result.version)
    assert error_code(exc) == "AccessDenied"
    with s3_store.open(result.key) as fh:  # whole read: BLAKE3 checked while streaming
        assert len(fh.read()) == result.size_bytes


@pytest.mark.slow
def test_200mb_file_goes_up_as_multipart_with_the_lock(
    s3_server: Any, s3_admin: Any, tmp_path: Path, now: dt.datetime
) -> None:
    """Default transfer settings (64 MiB threshold, 16 MiB parts)."""
    store = S3Store(
        fresh_bucket(s3_admin), "evidence", config=s3_config(s3_server, TransferSettings())
    )
    path, hexd = big_file(tmp_path / "200mb.bin", 200 * MiB)
    result = store.put_file(path, hexd, retain_until_utc=now + DAY)
    head = s3_admin.head_object(
        Bucket=store.bucket, Key=store._full(result.key), VersionId=result.version
    )
    assert head["ETag"].endswith('-13"')
    assert (head["ObjectLockMode"], head["ContentLength"]) == ("COMPLIANCE", 200 * MiB)
    assert len(versions(s3_admin, store.bucket, store._full(result.key))) == 1


def test_multipart_whose_bytes_do_not_match_stores_nothing_and_leaves_no_upload(
    s3_store: S3Store, s3_admin: Any, tmp_path: Path, now: dt.datetime
) -> None:
    path, _ = big_file(tmp_path / "big.bin", 20 * MiB)
    claimed = blake3.blake3(b"what the caller hashed earlier").hexdigest()
    with pytest.raises(StoreError, match="changed while being stored"):
        s3_store.put_file(path, claimed, retain_until_utc=now + DAY)
    assert versions(s3_admin, s3_store.bucket, s3_store._full(key_for(claimed))) == []
    assert s3_admin.list_multipart_uploads(Bucket=s3_store.bucket).get("Uploads", []) == []


def test_repeated_put_adds_no_version(s3_store: S3Store, s3_admin: Any, now: dt.datetime) -> None:
    _, full, _ = put(s3_store, b"only once", now + DAY)
    put(S3Store(s3_store.bucket, "evidence", config=s3_store.config), b"only once", now + DAY)
    assert len(versions(s3_admin, s3_store.bucket, full)) == 1


# --- attacks the server must refuse ----------------------------------------------------------
def test_locked_version_cannot_be_deleted(
    s3_store: S3Store, s3_admin: Any, now: dt.datetime
) -> None:
    key, full, version = put(s3_store, b"try to delete me", now + DAY)
    for bypass in (False, True):
        with pytest.raises(ClientError) as exc:
            s3_admin.delete_object(
                Bucket=s3_store.bucket,
                Key=full,
                VersionId=version,
                BypassGovernanceRetention=bypass,
            )
        assert error_code(exc) == "AccessDenied"
    with s3_store.open(key) as fh:
        assert fh.read() == b"try to delete me"


def test_batch_delete_of_locked_version_is_refused(
    s3_store: S3Store, s3_admin: Any, now: dt.datetime
) -> None:
    _, full, version = put(s3_store, b"batch delete", now + DAY)
    resp = s3_admin.delete_objects(
        Bucket=s3_store.bucket, Delete={"Objects": [{"Key": full, "VersionId": version}]}
    )
    assert resp.get("Deleted", []) == []
    assert [e["Code"] for e in resp["Errors"]] == ["AccessDenied"]


def test_overwrite_adds_a_version_and_the_locked_version_is_unchanged(
    s3_store: S3Store, s3_admin: Any, now: dt.datetime
) -> None:
    key, full, version = put(s3_store, b"the original", now + DAY)
    s3_admin.put_object(
        Bucket=s3_store.bucket, Key=full, Body=b"forged", ChecksumSHA256=sha256_b64(b"forged")
    )
    original = s3_admin.get_object(Bucket=s3_store.bucket, Key=full, VersionId=version)
    assert original["Body"].read() == b"the original"
    assert original["ObjectLockMode"] == "COMPLIANCE"
    fresh = S3Store(s3_store.bucket, "evidence", config=s3_store.config)  # no cached version
    with fresh.open(key) as fh:
        assert fh.read() == b"the original"
    assert fresh.head(key).version == version


def test_delete_without_version_only_adds_a_delete_marker(
    s3_store: S3Store, s3_admin: Any, now: dt.datetime
) -> None:
    key, full, version = put(s3_store, b"hide me", now + DAY)
    resp = s3_admin.delete_object(Bucket=s3_store.bucket, Key=full)
    assert resp["DeleteMarker"] is True
    with pytest.raises(ClientError):
        s3_admin.head_object(Bucket=s3_store.bucket, Key=full)  # the current version is a marker
    body = s3_admin.get_object(Bucket=s3_store.bucket, Key=full, VersionId=version)["Body"]
    assert body.read() == b"hide me"
    fresh = S3Store(s3_store.bucket, "evidence", config=s3_store.config)
    assert fresh.exists(key)
    with fresh.open(key) as fh:
        assert fh.read() == b"hide me"


def test_server_refuses_shortening_compliance_retention(
    s3_store: S3Store, s3_admin: Any, now: dt.datetime
) -> None:
    key, full, version = put(s3_store, b"shorten me", now + 2 * DAY)
    with pytest.raises(ClientError) as exc:
        s3_admin.put_object_retention(
            Bucket=s3_store.bucket,
            Key=full,
            VersionId=version,
            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": now + DAY},
        )
    assert error_code(exc) == "AccessDenied"
    assert s3_store.head(key).retain_until_utc == now + 2 * DAY


def test_server_refuses_downgrading_compliance_to_governance(
    s3_store: S3Store, s3_admin: Any, now: dt.datetime
) -> None:
    _, full, version = put(s3_store, b"downgrade me", now + DAY)
    with pytest.raises(ClientError) as exc:
        s3_admin.put_object_retention(
            Bucket=s3_store.bucket,
            Key=full,
            VersionId=version,
            Retention={"Mode": "GOVERNANCE", "RetainUntilDate": now + 2 * DAY},
            BypassGovernanceRetention=True,
        )
    assert error_code(exc) == "AccessDenied"


def test_store_refuses_shortening_before_asking_the_server(
    s3_store: S3Store, now: dt.datetime
) -> None:
    key, _, _ = put(s3_store, b"ask nobody", now + 2 * DAY)
    sent: list[str] = []
    s3_store._client.meta.events.register(
        "before-call.s3.PutObjectRetention", lambda **kw: sent.append(kw["model"].name)
    )
    with pytest.raises(RetentionRefused):
        s3_store.extend_retention(key, now + DAY)
    assert sent == []


def test_server_refusal_of_retention_and_hold_changes_is_retention_refused(
    s3_server: Any, s3_store: S3Store, now: dt.datetime
) -> None:
    """An identity that may only read: the server refuses, the store says RetentionRefused."""
    key, _, _ = put(s3_store, b"not yours to change", now + DAY)
    config = S3Config(
        endpoint_url=s3_server.endpoint_url,
        access_key_id=s3_server.reader_access_key_id,
        secret_access_key=s3_server.reader_secret_access_key,
        max_attempts=1,
    )
    reader = S3Store(s3_store.bucket, "evidence", config=config)
    assert reader.head(key).retain_until_utc == now + DAY
    with pytest.raises(RetentionRefused, match="AccessDenied"):
        reader.extend_retention(key, now + 2 * DAY)
    with pytest.raises(RetentionRefused, match="AccessDenied"):
        reader.set_legal_hold(key, True)
    assert s3_store.head(key).retain_until_utc == now + DAY


def test_legal_hold_blocks_deletion_after_retention_ends(s3_store: S3Store, s3_admin: Any) -> None:
    until = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=2)
    key, full, version = put(s3_store, b"held", until)
    s3_store.set_legal_hold(key, True)
    time.sleep(max(0.0, (until - dt.datetime.now(dt.UTC)).total_seconds()) + 1.1)
    with pytest.raises(ClientError) as exc:
        s3_admin.delete_object(Bucket=s3_store.bucket, Key=full, VersionId=version)
    assert error_code(exc) == "AccessDenied"
    # Proof that the hold, not the retention, refused it: lifted, the same delete succeeds.
    s3_store.set_legal_hold(key, False)
    s3_admin.delete_object(Bucket=s3_store.bucket, Key=full, VersionId=version)
    assert versions(s3_admin, s3_store.bucket, full) == []


def test_wrong_checksum_is_refused_and_nothing_stored(
    s3_store: S3Store, s3_admin: Any, now: dt.datetime
) -> None:
    full = s3_store._full(key_for(blake3.blake3(b"sent").hexdigest()))
    with pytest.raises(ClientError) as exc:
        s3_admin.put_object(
            Bucket=s3_store.bucket,
            Key=full,
            Body=b"sent",
            ChecksumSHA256=sha256_b64(b"something else"),
            ObjectLockMode="COMPLIANCE",
            ObjectLockRetainUntilDate=now + DAY,
        )
    assert error_code(exc) == "BadDigest"
    assert versions(s3_admin, s3_store.bucket, full) == []


def test_wrong_part_checksum_is_refused(s3_store: S3Store, s3_admin: Any, now: dt.datetime) -> None:
    full = s3_store._full(key_for("1" * 64))
    upload = s3_admin.create_multipart_upload(
        Bucket=s3_store.bucket,
        Key=full,
        ChecksumAlgorithm="SHA256",
        ObjectLockMode="COMPLIANCE",
        ObjectLockRetainUntilDate=now + DAY,
    )["UploadId"]
    try:
        with pytest.raises(ClientError) as exc:
            s3_admin.upload_part(
                Bucket=s3_store.bucket,
                Key=full,
                UploadId=upload,
                PartNumber=1,
                Body=b"part",
                ChecksumSHA256=sha256_b64(b"other part"),
            )
        assert error_code(exc) == "BadDigest"
    finally:
        s3_admin.abort_multipart_upload(Bucket=s3_store.bucket, Key=full, UploadId=upload)


def test_whole_read_of_damaged_object_raises_naming_the_key(
    s3_store: S3Store, s3_admin: Any, now: dt.datetime
) -> None:
    """A forged first version (written around the store) is caught by the streaming BLAKE3."""
    key = key_for(blake3.blake3(b"genuine").hexdigest())
    full = s3_store._full(key)
    s3_admin.put_object(
        Bucket=s3_store.bucket, Key=full, Body=b"forgery", ChecksumSHA256=sha256_b64(b"forgery")
    )
    with s3_store.open(key) as fh, pytest.raises(StoreError, match=key):
        fh.read()
    with s3_store.open(key, 0, 3) as fh:  # a range cannot be checked: it is returned as is
        assert fh.read() == b"for"


# --- errors at the boundary ------------------------------------------------------------------
def test_wrong_secret_is_store_unavailable(s3_server: Any, s3_store: S3Store) -> None:
    config = S3Config(
        endpoint_url=s3_server.endpoint_url,
        access_key_id=s3_server.access_key_id,
        secret_access_key="not-the-secret",
        max_attempts=1,
    )
    store = S3Store(s3_store.bucket, "evidence", config=config)
    with pytest.raises(StoreUnavailable, match="SignatureDoesNotMatch"):
        store.exists(key_for("2" * 64))


def test_unreachable_endpoint_is_store_unavailable() -> None:
    from tests.s3server import free_ports

    config = S3Config(
        endpoint_url=f"http://127.0.0.1:{free_ports(1)[0]}",
        access_key_id="x",
        secret_access_key="y",
        connect_timeout_s=1,
        max_attempts=1,
    )
    with pytest.raises(StoreUnavailable, match="connection refused"):
        S3Store("nowhere", config=config).head(key_for("3" * 64))


def test_missing_bucket_is_store_unavailable(s3_server: Any) -> None:
    store = S3Store("custody-no-such-bucket", config=s3_config(s3_server))
    with pytest.raises(StoreUnavailable, match="NoSuchBucket"):
        store.exists(key_for("4" * 64))


def test_non_content_key_is_not_found(s3_store: S3Store) -> None:
    with pytest.raises(ObjectNotFound):
        s3_store.head("selftest/whatever")


def test_from_uri_takes_endpoint_and_credentials_from_the_given_env(s3_server: Any) -> None:
    store = S3Store.from_uri("s3://custody-env/some/prefix/", env=s3_server.env())
    assert (store.bucket, store.prefix, store.uri) == (
        "custody-env",
        "some/prefix",
        "s3://custody-env/some/prefix",
    )
    assert store.config.endpoint_url == s3_server.endpoint_url
    assert store._client.meta.endpoint_url == s3_server.endpoint_url
    assert s3_server.secret_access_key not in repr(store.config)


# --- the self-test against a store that does not enforce Object Lock -------------------------
@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def test_selftest_fails_against_moto_which_lets_retention_shrink(moto_endpoint: str) -> None:
    config = S3Config(
        endpoint_url=moto_endpoint, access_key_id="moto", secret_access_key="moto", max_attempts=1
    )
    client = config.client()
    client.create_bucket(Bucket="custody-moto", ObjectLockEnabledForBucket=True)
    report = selftest(S3Store("custody-moto", "evidence", config=config))
    assert not report.passed
    assert not report.tamper_proof
    failed = [c.name for c in report.checks if not c.passed]
    # moto also ignores the lock headers of CreateMultipartUpload (the multipart canary)
    assert failed == ["multipart-canary-locked", "shorten-retention-refused"], report.summary()
    assert "ACCEPTED" in report.checks[-1].detail


def test_selftest_fails_on_a_bucket_without_object_lock(s3_server: Any, s3_admin: Any) -> None:
    s3_admin.create_bucket(Bucket="custody-plain")
    report = selftest(S3Store("custody-plain", config=s3_config(s3_server)))
    assert not report.passed
    assert report.checks[0].name == "bucket-object-lock" and not report.checks[0].passed
    findings = report.verification.findings
    assert findings and {f.code for f in findings} == {"STORE_SELFTEST_FAILED"}
    assert findings[0].detail.startswith("bucket-object-lock: Object Lock NOT enabled")
    assert findings[0].subject.id == "s3://custody-plain" and findings[0].rule == "AV-15"


def test_store_locks_a_multipart_version_the_server_left_unlocked(
    moto_endpoint: str, tmp_path: Path, now: dt.datetime
) -> None:
    """moto ignores lock headers on CreateMultipartUpload; the store checks and locks after."""
    config = S3Config(
        endpoint_url=moto_endpoint,
        access_key_id="moto",
        secret_access_key="moto",
        max_attempts=1,
        transfer=TransferSettings(multipart_threshold_bytes=MiB, multipart_chunk_bytes=5 * MiB),
    )
    config.client().create_bucket(Bucket="custody-moto-mpu", ObjectLockEnabledForBucket=True)
    store = S3Store("custody-moto-mpu", config=config)
    path, hexd = big_file(tmp_path / "mpu.bin", 6 * MiB)
    result = store.put_file(path, hexd, retain_until_utc=now + DAY)
    head = config.client().head_object(
        Bucket=store.bucket, Key=result.key, VersionId=result.version
    )
    assert head["ETag"].endswith('-2"')
    assert (head["ObjectLockMode"], head["ObjectLockRetainUntilDate"]) == ("COMPLIANCE", now + DAY)


def test_staged_bytes_over_the_threshold_go_up_as_multipart_with_the_lock(
    s3_store: S3Store, s3_admin: Any, now: dt.datetime
) -> None:
    hasher, staged = blake3.blake3(), s3_store.stage()
    for i in range(18):
        block = bytes([i]) * MiB
        hasher.update(block)
        staged.write(block)
    result = staged.commit(hasher.hexdigest(), retain_until_utc=now + DAY)
    head = s3_admin.head_object(
        Bucket=s3_store.bucket, Key=s3_store._full(result.key), VersionId=result.version
    )
    assert head["ETag"].endswith('-4"') and head["ObjectLockMode"] == "COMPLIANCE"
