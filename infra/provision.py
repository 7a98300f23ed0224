"""Provision an evidence bucket and write the role policies. Run `python -m infra.provision -h`.

Creates (or checks) a bucket with S3 Object Lock enabled, versioning on, and a default
COMPLIANCE retention, so that even an object written without lock headers is locked; adds
a lifecycle rule that aborts multipart uploads left open a day after they began (a killed
run's: invisible, but their parts use space and, on AWS, are billed), keeping the bucket's
other lifecycle rules (a put replaces them all). Then writes IAM-style JSON policies, one
per role of the permission table (`schemas.people.PERMISSIONS`) plus `operator` (the
ingest and sealing service), and a bucket policy. What a role may do at the store follows
from what the table lets it do (`store_capabilities`):

- every role reads (all of them may view);
- ingest: PutObject with lock headers (which needs PutObjectRetention) and multipart; for
  the auxiliary role put-only: PutObject without lock headers, locked by the bucket's
  default COMPLIANCE retention, and an explicit Deny of PutObjectRetention and
  PutObjectLegalHold (AUX-10: no changing retention or holds);
- retention.raise: PutObjectRetention (COMPLIANCE cannot be shortened, so it only grows);
- hold.place: PutObjectLegalHold ON only; hold.lift: PutObjectLegalHold;
- analyst, administrator: read only, lock changes denied;
- everyone: explicit Deny of every delete, of governance bypass, and of changes to the
  bucket's lock, versioning, lifecycle and policy.

`seaweed_actions` says the same in SeaweedFS's identity actions (`s3.json`), which the test
suite uses to show the store itself refusing each role what it may not do.

The endpoint and credentials are the usual AWS environment variables (this is a command,
it may read them), or `--endpoint-url`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.storage.s3.store import S3Config
from schemas.people import (
    AUXILIARY,
    HOLD_LIFT,
    HOLD_PLACE,
    INGEST,
    PERMISSIONS,
    RETENTION_RAISE,
)
from schemas.people import ROLES as STAFF_ROLES

OPERATOR = "operator"  # the ingest / audit-sealing service (the nightly job's credentials)
ROLES = (*STAFF_ROLES, OPERATOR)

# What a role may do at the store (derived from the permission table).
READ, PUT_LOCKED, PUT_ONLY, RETENTION, HOLD_ON, HOLD_ANY = (
    "read", "put-locked", "put-only", "retention", "hold-on", "hold-any")


def store_capabilities(role: str) -> frozenset[str]:
    """What `role` needs at the store for what the permission table lets it do. Pure."""
    if role == OPERATOR:
        return frozenset({READ, PUT_LOCKED, HOLD_ON})
    acts = PERMISSIONS[role]
    caps = {READ}
    if INGEST in acts:
        caps.add(PUT_ONLY if role == AUXILIARY else PUT_LOCKED)
    if RETENTION_RAISE in acts:
        caps.add(RETENTION)
    if HOLD_LIFT in acts:
        caps.add(HOLD_ANY)
    elif HOLD_PLACE in acts:
        caps.add(HOLD_ON)
    return frozenset(caps)


_SEAWEED = {
    READ: ["Read", "List", "GetObjectRetention", "GetObjectLegalHold",
           "GetBucketObjectLockConfiguration"],
    PUT_ONLY: ["Write"],
    PUT_LOCKED: ["Write", "PutObjectRetention"],
    RETENTION: ["PutObjectRetention"],
    HOLD_ON: ["PutObjectLegalHold"],  # SeaweedFS cannot condition on ON/OFF; AWS can
    HOLD_ANY: ["PutObjectLegalHold"],
}


def seaweed_actions(role: str, bucket: str | None = None) -> list[str]:
    """SeaweedFS identity actions for `role` (`Action:bucket` when scoped to one bucket).
    SeaweedFS's `Write` also allows a delete without version id (a delete marker, which
    Custody ignores: it reads the first version); deleting a locked version is refused."""
    out: list[str] = []
    for cap in sorted(store_capabilities(role)):
        out += [a for a in _SEAWEED[cap] if a not in out]
    return [f"{a}:{bucket}" for a in out] if bucket else out

_READ_OBJECT = [
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:GetObjectAttributes",
    "s3:GetObjectVersionAttributes",
    "s3:GetObjectRetention",
    "s3:GetObjectLegalHold",
]
_READ_BUCKET = [
    "s3:ListBucket",
    "s3:ListBucketVersions",
    "s3:GetBucketLocation",
    "s3:GetBucketVersioning",
    "s3:GetBucketObjectLockConfiguration",
]
_WRITE_OBJECT = ["s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]
_LOCK_CHANGES = ["s3:PutObjectRetention", "s3:PutObjectLegalHold"]
NEVER = [
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:DeleteObjectTagging",
    "s3:DeleteObjectVersionTagging",
    "s3:DeleteBucket",
    "s3:DeleteBucketPolicy",
    "s3:BypassGovernanceRetention",
    "s3:PutBucketObjectLockConfiguration",
    "s3:PutBucketVersioning",
    "s3:PutLifecycleConfiguration",
    "s3:PutBucketPolicy",
]


def _arns(bucket: str, prefix: str) -> tuple[str, str]:
    prefix = prefix.strip("/")
    objects = f"arn:aws:s3:::{bucket}/{prefix + '/' if prefix else ''}*"
    return f"arn:aws:s3:::{bucket}", objects


def role_policies(bucket: str, prefix: str = "") -> dict[str, dict[str, Any]]:
    """IAM identity policies, one per role, for the store at s3://bucket/prefix. Pure."""
    bucket_arn, objects = _arns(bucket, prefix)

    def allow(sid: str, actions: list[str], resource: str, **cond: Any) -> dict[str, Any]:
        st: dict[str, Any] = {
            "Sid": sid,
            "Effect": "Allow",
            "Action": actions,
            "Resource": resource,
        }
        if cond:
            st["Condition"] = cond
        return st

    def deny(sid: str, actions: list[str], **cond: Any) -> dict[str, Any]:
        st: dict[str, Any] = {
            "Sid": sid,
            "Effect": "Deny",
            "Action": actions,
            "Resource": [bucket_arn, f"arn:aws:s3:::{bucket}/*"],
        }
        if cond:
            st["Condition"] = cond
        return st

    def statements(role: str) -> list[dict[str, Any]]:
        caps = store_capabilities(role)
        out = [
            allow("ReadEvidence", _READ_OBJECT, objects),
            allow("ListEvidence", _READ_BUCKET, bucket_arn),
        ]
        if caps & {PUT_LOCKED, PUT_ONLY}:
            extra = ["s3:PutObjectRetention"] if PUT_LOCKED in caps else []
            out.append(allow("IngestLocked" if extra else "IngestPutOnly",
                             [*_WRITE_OBJECT, *extra], objects))
            out.append(allow("ListOpenUploads", ["s3:ListBucketMultipartUploads"], bucket_arn))
        if RETENTION in caps:
            out.append(allow("ExtendRetention", ["s3:PutObjectRetention"], objects))
        if HOLD_ANY in caps:
            out.append(allow("PlaceAndLiftLegalHold", ["s3:PutObjectLegalHold"], objects))
        elif HOLD_ON in caps:
            out.append(allow("PlaceLegalHold", ["s3:PutObjectLegalHold"], objects,
                             StringEquals={"s3:object-lock-legal-hold": "ON"}))
            out.append(deny("NeverLiftLegalHold", ["s3:PutObjectLegalHold"],
                            StringEquals={"s3:object-lock-legal-hold": "OFF"}))
        if not caps & {PUT_LOCKED, RETENTION, HOLD_ON, HOLD_ANY}:
            out.append(deny("NoLockChanges", _LOCK_CHANGES))
        elif RETENTION not in caps and PUT_LOCKED not in caps:
            out.append(deny("NoRetentionChanges", ["s3:PutObjectRetention"]))
        out.append(deny("NoDeleteNoBypassNoReconfigure", NEVER))
        return out

    statements_of = {role: statements(role) for role in ROLES}
    return {role: {"Version": "2012-10-17", "Statement": sts}
            for role, sts in statements_of.items()}


def bucket_policy(bucket: str) -> dict[str, Any]:
    """A bucket policy denying every delete and reconfiguration to every principal.

    Defence in depth for AWS: Object Lock already refuses deleting a locked version; this
    also refuses delete markers and lock/versioning changes. With it in place the
    self-test's delete attempt is refused by policy; its shorten-retention check still
    proves the lock.
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "NoDeleteForAnyone",
                "Effect": "Deny",
                "Principal": "*",
                "Action": NEVER,
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
            }
        ],
    }


def write_policies(out_dir: Path, bucket: str, prefix: str = "") -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    docs = {f"role-{r}.json": p for r, p in role_policies(bucket, prefix).items()}
    docs["bucket-policy.json"] = bucket_policy(bucket)
    for name, doc in docs.items():
        path = out_dir / name
        path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written


@dataclass(frozen=True, slots=True)
class Provisioned:
    bucket: str
    created: bool
    object_lock: bool
    versioning: str | None
    default_mode: str | None
    default_days: int | None
    lifecycle: str


class ProvisionError(Exception):
    pass


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


ABORT_RULE_ID = "abort-open-multipart-uploads"
ABORT_AFTER_DAYS = 1  # no single upload lasts a day; AWS's own advice is 24 hours


def abort_rule() -> dict[str, Any]:
    """The lifecycle rule that aborts multipart uploads left open (a killed run's: invisible,
    but their parts use space and, on AWS, are billed) a day after they began. Pure."""
    return {
        "ID": ABORT_RULE_ID,
        "Status": "Enabled",
        "Filter": {"Prefix": ""},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": ABORT_AFTER_DAYS},
    }


def lifecycle_rules(existing: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The bucket's rules with ours in place: the others kept as they are (a put replaces
    the whole configuration), ours once, last. Pure."""
    return [r for r in existing if r.get("ID") != ABORT_RULE_ID] + [abort_rule()]


def _set_abort_rule(client: Any, bucket: str) -> str:
    """Put `abort_rule` among the bucket's lifecycle rules; what was done, in words."""
    try:
        existing = client.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", [])
    except ClientError as exc:
        if _code(exc) != "NoSuchLifecycleConfiguration":
            return f"not set ({_code(exc)}): abort stale multipart uploads by hand"
        existing = []
    try:
        client.put_bucket_lifecycle_configuration(
            Bucket=bucket, LifecycleConfiguration={"Rules": lifecycle_rules(existing)})
    except ClientError as exc:
        return f"not set ({_code(exc)}): abort stale multipart uploads by hand"
    kept = len(lifecycle_rules(existing)) - 1
    return (f"abort open multipart uploads after {ABORT_AFTER_DAYS} day"
            + (f" ({kept} other rule(s) kept)" if kept else ""))


def provision_bucket(
    client: Any, bucket: str, *, default_retention_days: int = 90, region: str | None = None
) -> Provisioned:
    """Create `bucket` with Object Lock (or check an existing one) and set its defaults."""
    if default_retention_days < 1:
        raise ValueError("default_retention_days must be at least 1")
    created = True
    args: dict[str, Any] = {"Bucket": bucket, "ObjectLockEnabledForBucket": True}
    if region and region != "us-east-1":
        args["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        client.create_bucket(**args)
    except ClientError as exc:
        if _code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise ProvisionError(f"s3://{bucket}: cannot create: {exc}") from exc
        created = False
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    try:
        client.put_object_lock_configuration(
            Bucket=bucket,
            ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled",
                "Rule": {
                    "DefaultRetention": {"Mode": "COMPLIANCE", "Days": default_retention_days}
                },
            },
        )
    except ClientError as exc:
        raise ProvisionError(
            f"s3://{bucket}: cannot set Object Lock defaults ({_code(exc)}); a bucket "
            "created without Object Lock cannot be used as an evidence store"
        ) from exc
    lifecycle = _set_abort_rule(client, bucket)
    conf = client.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    default = conf.get("Rule", {}).get("DefaultRetention", {})
    return Provisioned(
        bucket=bucket,
        created=created,
        object_lock=conf.get("ObjectLockEnabled") == "Enabled",
        versioning=client.get_bucket_versioning(Bucket=bucket).get("Status"),
        default_mode=default.get("Mode"),
        default_days=default.get("Days"),
        lifecycle=lifecycle,
    )


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.provision",
        description="Create an Object Lock bucket for Custody and write the role policies. "
        "Endpoint and credentials come from the AWS environment variables "
        "(AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION).",
    )
    parser.add_argument("--bucket", required=True, help="bucket name")
    parser.add_argument("--prefix", default="", help="key prefix the store uses (policies)")
    parser.add_argument("--endpoint-url", help="S3 endpoint (overrides AWS_ENDPOINT_URL_S3)")
    parser.add_argument(
        "--default-retention-days",
        type=int,
        default=90,
        help="bucket default COMPLIANCE retention in days (default 90, the minimum lock)",
    )
    parser.add_argument("--policies-out", type=Path, help="write the policy JSON files here")
    parser.add_argument(
        "--policies-only", action="store_true", help="only write policies, touch no server"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    out: dict[str, Any] = {}
    if args.policies_out:
        out["policies"] = [
            str(p) for p in write_policies(args.policies_out, args.bucket, args.prefix)
        ]
    if not args.policies_only:
        config = S3Config.from_env(os.environ if env is None else env)
        if args.endpoint_url:
            config = S3Config(**{**_fields(config), "endpoint_url": args.endpoint_url})
        try:
            result = provision_bucket(
                config.client(),
                args.bucket,
                default_retention_days=args.default_retention_days,
                region=config.region,
            )
        except (ProvisionError, ClientError, BotoCoreError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        out["bucket"] = asdict(result)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        if "bucket" in out:
            b = out["bucket"]
            print(
                f"s3://{b['bucket']}: {'created' if b['created'] else 'exists'}, Object Lock "
                f"{'on' if b['object_lock'] else 'OFF'}, versioning {b['versioning']}, default "
                f"{b['default_mode']} {b['default_days']} days; lifecycle: {b['lifecycle']}"
            )
        for p in out.get("policies", []):
            print(f"wrote {p}")
    return 0


def _fields(config: S3Config) -> dict[str, Any]:
    return {name: getattr(config, name) for name in config.__dataclass_fields__}


if __name__ == "__main__":
    raise SystemExit(main())
