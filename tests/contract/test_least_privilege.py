"""Least privilege at the store (issue 10 item 4): each role's own S3 credentials, and the
store itself refuses what the role may not do.

The SeaweedFS session server has one identity per role of `infra.provision.ROLES`, with the
actions `seaweed_actions` derives from the permission table (`tests.s3server`). Each test
uses a fresh Object Lock bucket (default COMPLIANCE retention, as provisioned) holding one
locked object written by the operator's credentials.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from infra.provision import ROLES, seaweed_actions, store_capabilities
from tests.contract._support import fresh_bucket

UNTIL = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=2)


def client(server: Any, role: str) -> Any:
    key, secret = server.role_keys[role]
    return boto3.client(
        "s3", endpoint_url=server.endpoint_url, aws_access_key_id=key,
        aws_secret_access_key=secret, region_name=server.region,
        config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}))


def refused(call: Callable[[], Any]) -> bool:
    try:
        call()
    except ClientError as exc:
        return exc.response["Error"]["Code"] == "AccessDenied"
    return False


@pytest.fixture
def locked(s3_server: Any, s3_admin: Any) -> tuple[str, str, str]:
    """(bucket, key, version id) of one object locked COMPLIANCE by the operator."""
    bucket = fresh_bucket(s3_admin)
    key = f"evidence/b3/{uuid.uuid4().hex}"
    put = client(s3_server, "operator").put_object(
        Bucket=bucket, Key=key, Body=b"evidence", ObjectLockMode="COMPLIANCE",
        ObjectLockRetainUntilDate=UNTIL, ChecksumAlgorithm="SHA256")
    return bucket, key, put["VersionId"]


def attempts(c: Any, bucket: str, key: str, version: str) -> dict[str, Callable[[], Any]]:
    later = UNTIL + dt.timedelta(days=30)
    return {
        "put": lambda: c.put_object(Bucket=bucket, Key=key + "-new", Body=b"x"),
        "put-locked": lambda: c.put_object(
            Bucket=bucket, Key=key + "-locked", Body=b"x", ObjectLockMode="COMPLIANCE",
            ObjectLockRetainUntilDate=later, ChecksumAlgorithm="SHA256"),
        "retention": lambda: c.put_object_retention(
            Bucket=bucket, Key=key, VersionId=version,
            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": later}),
        "hold": lambda: c.put_object_legal_hold(
            Bucket=bucket, Key=key, VersionId=version, LegalHold={"Status": "ON"}),
        "delete-version": lambda: c.delete_object(Bucket=bucket, Key=key, VersionId=version),
    }


def test_the_analysts_keys_read_and_the_store_refuses_every_write(
    s3_server: Any, locked: tuple[str, str, str]
) -> None:
    bucket, key, version = locked
    c = client(s3_server, "analyst")
    assert c.get_object(Bucket=bucket, Key=key, VersionId=version)["Body"].read() == b"evidence"
    tried = attempts(c, bucket, key, version)
    tried["delete-marker"] = lambda: c.delete_object(Bucket=bucket, Key=key)
    assert {name for name, call in tried.items() if refused(call)} == set(tried)


def test_the_auxiliarys_keys_put_only_and_cannot_touch_retention_holds_or_versions(
    s3_server: Any, s3_admin: Any, locked: tuple[str, str, str]
) -> None:
    """AUX-10 at the store: a plain put is allowed and locked by the bucket's default
    COMPLIANCE retention; lock headers, retention, holds and version deletes are refused."""
    bucket, key, version = locked
    c = client(s3_server, "auxiliary")
    tried = attempts(c, bucket, key, version)
    assert {name for name, call in tried.items() if refused(call)} == {
        "put-locked", "retention", "hold", "delete-version"}
    lock = s3_admin.get_object_retention(Bucket=bucket, Key=key + "-new")["Retention"]
    assert lock["Mode"] == "COMPLIANCE"


def test_a_delete_by_the_auxiliarys_keys_leaves_the_locked_version(
    s3_server: Any, locked: tuple[str, str, str]
) -> None:
    """SeaweedFS's `Write` admits a delete without version id (a delete marker; the AWS
    policy denies it): the locked version is still there, and Custody reads versions."""
    bucket, key, version = locked
    c = client(s3_server, "auxiliary")
    c.delete_object(Bucket=bucket, Key=key)
    assert c.get_object(Bucket=bucket, Key=key, VersionId=version)["Body"].read() == b"evidence"


def test_the_legal_units_keys_extend_retention_and_hold_but_cannot_put(
    s3_server: Any, locked: tuple[str, str, str]
) -> None:
    bucket, key, version = locked
    c = client(s3_server, "legal_unit")
    tried = attempts(c, bucket, key, version)
    assert {name for name, call in tried.items() if refused(call)} == {
        "put", "put-locked", "delete-version"}


@pytest.mark.parametrize("role", ROLES)
def test_no_roles_keys_delete_a_locked_version(
    s3_server: Any, locked: tuple[str, str, str], role: str
) -> None:
    bucket, key, version = locked
    c = client(s3_server, role)
    assert refused(lambda: c.delete_object(Bucket=bucket, Key=key, VersionId=version))


@pytest.mark.parametrize("role", ROLES)
def test_each_roles_seaweedfs_actions_follow_its_store_capabilities(role: str) -> None:
    actions = set(seaweed_actions(role))
    caps = store_capabilities(role)
    assert ("Write" in actions) == bool(caps & {"put-locked", "put-only"})
    assert ("PutObjectRetention" in actions) == bool(caps & {"put-locked", "retention"})
    assert ("PutObjectLegalHold" in actions) == bool(caps & {"hold-on", "hold-any"})
    assert not actions & {"Admin", "BypassGovernanceRetention", "DeleteBucket", "Tagging"}


def role_store(server: Any, bucket: str, role: str, **kw: Any) -> Any:
    """An S3Store at `bucket` with `role`'s own keys."""
    from pipeline.storage.s3.store import S3Config, S3Store

    key, secret = server.role_keys[role]
    return S3Store(bucket, "evidence", config=S3Config(
        endpoint_url=server.endpoint_url, region=server.region, access_key_id=key,
        secret_access_key=secret, max_attempts=1, **kw))


def test_a_seal_due_in_the_analysts_command_waits_for_the_operators_seal(
    s3_server: Any, s3_admin: Any, tmp_path: Any
) -> None:
    """Seals are locked puts, which the analyst's read-only keys may not make: the
    analyst's query still succeeds, the segment stays open and nothing of a seal is
    recorded; the operator's `audit seal` (the service's timer) seals it later."""
    from pipeline.audit.log import AuditError, AuditLog
    from pipeline.catalog.core import Catalog
    from pipeline.people.permissions import Authority
    from pipeline.people.registry import Registry
    from schemas.people import QUERY
    from tests.anyone import PERSONAL

    bucket = fresh_bucket(s3_admin)
    catalog = Catalog(tmp_path / "catalog")
    now = dt.datetime.now(dt.UTC)
    audit_root = tmp_path / "catalog" / "audit"
    with AuditLog(audit_root, store=role_store(s3_server, bucket, "analyst"),
                  clock=lambda: now, seal_every=2) as log:
        auth = Authority(Registry(catalog), log)
        actor = auth.acting("AN-1", caller=PERSONAL)
        auth.authorize(actor, QUERY, "catalog")  # a fresh installation: unenforced
        auth.record(actor, QUERY, "catalog", "allowed", "1 row; SQL: SELECT 1")  # seal due
        auth.record(actor, QUERY, "catalog", "allowed", "1 row; SQL: SELECT 2")
        assert log.seal_deferred and "AccessDenied" in log.seal_deferred
        with pytest.raises(AuditError, match="AccessDenied"):  # asked for, it says why
            log.seal()
        assert [r.seq for r in log.records()] == [1, 2, 3]
    assert (audit_root / "seals.jsonl").read_bytes() == b""
    assert len((audit_root / "segment-000001.jsonl").read_bytes().splitlines()) == 3
    assert not s3_admin.list_objects_v2(Bucket=bucket).get("Contents")
    with AuditLog(audit_root, store=role_store(s3_server, bucket, "operator"),
                  clock=lambda: now) as log:
        seal = log.seal()
        assert seal is not None and (seal.first_seq, seal.last_seq) == (1, 3)
        assert log.verify().ok
    assert not (audit_root / "segment-000001.jsonl").exists()
    with AuditLog(audit_root, store=role_store(s3_server, bucket, "analyst"),
                  clock=lambda: now) as log:  # the analyst reads the sealed segment back
        assert [r.os_account for r in log.records()] == [f"test (uid {PERSONAL.account.uid})"] * 3
        assert log.verify().ok


def test_the_auxiliarys_put_only_keys_store_under_the_buckets_default_lock(
    s3_server: Any, s3_admin: Any, tmp_path: Any
) -> None:
    """AUX ingest on S3: lock headers are refused to put-only keys; with `lock_headers =
    "bucket_default"` the put sends none, the bucket's default COMPLIANCE retention locks
    it, the lock is read back, and extending it to the rule's date is left pending."""
    import blake3

    from pipeline.storage.base import StoreError

    bucket = fresh_bucket(s3_admin)  # default retention: COMPLIANCE, 1 day
    src = tmp_path / "clip.bin"
    src.write_bytes(b"auxiliary footage " * 64)
    digest = blake3.blake3(src.read_bytes()).hexdigest()
    until = dt.datetime.now(dt.UTC) + dt.timedelta(days=400)
    with pytest.raises(StoreError, match="AccessDenied") as denied:
        role_store(s3_server, bucket, "auxiliary").put_file(str(src), digest,
                                                            retain_until_utc=until)
    assert getattr(denied.value, "access_denied", False)
    store = role_store(s3_server, bucket, "auxiliary", lock_headers="bucket_default")
    put = store.put_file(str(src), digest, retain_until_utc=until)
    assert put.created and put.key == f"b3/{digest}"
    lock = s3_admin.get_object_retention(Bucket=bucket, Key=f"evidence/{put.key}",
                                         VersionId=put.version)["Retention"]
    assert lock["Mode"] == "COMPLIANCE" and lock["RetainUntilDate"] < until
    version, have, want = store.lock_pending[put.key]
    assert version == put.version and have == lock["RetainUntilDate"] and want >= until
    with store.open(put.key) as fh:
        assert fh.read() == src.read_bytes()


def test_a_put_without_lock_headers_fails_when_the_buckets_default_is_too_short(
    s3_server: Any, s3_admin: Any, tmp_path: Any
) -> None:
    import blake3

    from pipeline.storage.base import StoreError

    bucket = fresh_bucket(s3_admin)  # 1 day, less than the 2 asked for
    src = tmp_path / "clip.bin"
    src.write_bytes(b"more footage " * 64)
    digest = blake3.blake3(src.read_bytes()).hexdigest()
    store = role_store(s3_server, bucket, "auxiliary", lock_headers="bucket_default",
                       bucket_default_min_days=2)
    with pytest.raises(StoreError, match="at least COMPLIANCE for 2 day"):
        store.put_file(str(src), digest,
                       retain_until_utc=dt.datetime.now(dt.UTC) + dt.timedelta(days=30))
    assert not store.lock_pending
