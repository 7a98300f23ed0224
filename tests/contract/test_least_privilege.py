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
