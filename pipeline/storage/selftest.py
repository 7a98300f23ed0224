"""Prove, against the live store, that it refuses to lose evidence.

`selftest(store)` writes a canary through the store's own write path under a short
COMPLIANCE retention, then attacks exactly that canary: it tries to delete its version,
to overwrite it, and to shorten its retention. It passes only if the store refuses all
of them. Ingest into an S3 store must not start while this fails.

The attacks are not part of the `WormStore` interface (which has no delete and must not
grow one). For S3 they go through the store's own boto3 client, `S3Store._client`, used
privately from here: the point is to prove that the credentials ingest writes with
cannot delete, so a client built separately (possibly with other credentials) would prove
something else. Only the canary's key and version are ever attacked.

What a pass means on S3: the server kept the locked version's bytes and retention. A PUT
to the same key on a versioned bucket is not an error in S3, it adds a newer version; the
overwrite check therefore passes when the locked version is unchanged and the store still
reads it (the store always reads the first version under a key). On AWS a refusal may come
from IAM rather than from the lock; run the self-test with the operator role, which may
set retention, so that the refused shortening is the lock's doing.

The local store cannot refuse anything to its owner or root: its self-test checks what it
can (the object file is read-only, the ledger refuses shortening, the ledger chain is
whole) and reports `tamper_proof=False`: tamper-evident, not tamper-proof.

`SelftestReport.verification` is the result shape every kind of check shares: each failed
check is one STORE_SELFTEST_FAILED finding about the store.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import blake3

from pipeline.storage.base import RetentionRefused, StoreError, WormStore, key_for
from schemas.media import Finding, Subject
from schemas.verification import Verification

if TYPE_CHECKING:
    from pipeline.storage.local import LocalStore
    from pipeline.storage.s3.store import S3Store

Clock = Callable[[], dt.datetime]


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    passed: bool
    detail: str


@dataclass(frozen=True, slots=True)
class SelftestReport:
    store_uri: str
    tamper_proof: bool  # the store itself refuses deletion (S3 Object Lock), not just detects it
    checks: tuple[Check, ...]
    note: str

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def verification(self) -> Verification:
        """The self-test as the shared result: one finding per failed check."""
        about = Subject("store", self.store_uri)
        findings = tuple(
            Finding("STORE_SELFTEST_FAILED", f"{c.name}: {c.detail}", subject=about)
            for c in self.checks if not c.passed
        ) or (() if self.checks else (
            Finding("STORE_SELFTEST_FAILED", "no check ran: nothing was proven", subject=about),))
        return Verification("store_selftest", about, len(self.checks), findings, self.note)

    def summary(self) -> str:
        lines = [f"store self-test {'PASSED' if self.passed else 'FAILED'}: {self.store_uri}"]
        lines += [f"  [{'ok' if c.passed else 'FAIL'}] {c.name}: {c.detail}" for c in self.checks]
        lines.append(f"  {self.note}")
        return "\n".join(lines)


def _canary_bytes(now: dt.datetime) -> bytes:
    return f"custody store self-test canary {uuid.uuid4()} {now.isoformat()}\n".encode()


def _write_canary(store: WormStore, data: bytes, until: dt.datetime) -> str:
    hexd = blake3.blake3(data).hexdigest()
    staged = store.stage(len(data))
    try:
        staged.write(data)
        return staged.commit(hexd, retain_until_utc=until).key
    except BaseException:
        staged.abort()
        raise


def selftest(
    store: WormStore,
    *,
    canary_retention: dt.timedelta = dt.timedelta(seconds=30),
    clock: Clock | None = None,
) -> SelftestReport:
    """Attack a fresh canary in `store`; the report says which refusals held."""
    now = (clock or (lambda: dt.datetime.now(dt.UTC)))()
    if canary_retention < dt.timedelta(seconds=5):
        raise ValueError("canary_retention must leave time for the attacks (at least 5 s)")
    from pipeline.storage.local import LocalStore

    if isinstance(store, LocalStore):
        return _selftest_local(store, now, canary_retention)
    from pipeline.storage.s3.store import S3Store

    if isinstance(store, S3Store):
        # Its attacks are raw requests; a server that is down or unreachable meanwhile is
        # the store's own StoreUnavailable, in its words, not botocore's URL.
        with store._boundary(store.uri, "self-test"):
            return _selftest_s3(store, now, canary_retention)
    return SelftestReport(
        store.uri,
        False,
        (Check("store-kind", False, f"no self-test for {type(store).__name__}"),),
        "unknown store kind: nothing was proven",
    )


# --- local ----------------------------------------------------------------------------------
def _selftest_local(store: LocalStore, now: dt.datetime, keep: dt.timedelta) -> SelftestReport:
    note = (
        "local store: tamper-EVIDENT, not tamper-proof; the owner of the directory or root "
        "can change or delete files; `custody verify` and the ledger's hash chain detect it"
    )
    data = _canary_bytes(now)
    until = now + keep
    try:
        key = _write_canary(store, data, until)
    except StoreError as exc:
        return SelftestReport(store.uri, False, (Check("canary-written", False, str(exc)),), note)
    checks = [Check("canary-written", True, key)]
    with store.open(key) as fh:
        same = fh.read() == data
    checks.append(
        Check("canary-readable", same, "read back equal" if same else "read back differs")
    )
    ro = store.is_read_only(key)
    checks.append(
        Check(
            "object-read-only",
            ro,
            "file mode has no write bit (root can still write it)" if ro else "file is writable",
        )
    )
    try:
        store.extend_retention(key, until - dt.timedelta(seconds=1))
        checks.append(Check("shorten-retention-refused", False, "ledger accepted an earlier date"))
    except RetentionRefused as exc:
        checks.append(Check("shorten-retention-refused", True, str(exc)))
    broken = store.verify_ledger()
    checks.append(Check("ledger-chain-whole", broken is None, broken or "hash chain intact"))
    return SelftestReport(store.uri, False, tuple(checks), note)


# --- S3 -------------------------------------------------------------------------------------
def _error_code(exc: Exception) -> str | None:
    """The S3 error code of a botocore ClientError (duck-typed: a local self-test must not
    import boto3)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", "")) or "unknown"
    return None


# What S3 servers answer when Object Lock refuses a request: AWS, SeaweedFS, MinIO and Ceph
# RGW all say AccessDenied (403). Any other error (500 InternalError, 503 SlowDown, 400
# InvalidRequest, 501 NotImplemented, NoSuchVersion...) proves nothing about the lock:
# the server failed, or the version is not there to protect.
_REFUSAL_CODES = frozenset({"AccessDenied"})


def _attempt(call: Callable[[], Any]) -> tuple[bool, str]:
    """(refused, what happened) for one attack request; only a lock refusal is a refusal."""
    try:
        call()
    except Exception as exc:
        code = _error_code(exc)
        if code is None:
            raise
        if code in _REFUSAL_CODES:
            return True, f"refused ({code})"
        return False, f"answered {code}, which is no refusal"
    return False, "ACCEPTED"


def _lock_of(client: Any, bucket: str, key: str, version: str) -> tuple[str | None, Any]:
    """(mode, retain-until) of exactly this version, as the server reports it now."""
    try:
        head = client.head_object(Bucket=bucket, Key=key, VersionId=version)
    except Exception as exc:
        if _error_code(exc) is None:
            raise
        return None, None
    return head.get("ObjectLockMode"), head.get("ObjectLockRetainUntilDate")


_MULTIPART_CANARY_BYTES = 5 * (1 << 20)  # one part of the S3 minimum part size


def _multipart_canary(store: S3Store, now: dt.datetime, until: dt.datetime) -> tuple[bool, str]:
    """Upload a one-part multipart canary with the lock headers; (locked as asked, detail).

    Raw requests, not `put_file`: the store re-locks a version the server left unlocked
    (`_ensure_locked`), which would hide exactly what this checks, that the server keeps
    the Object Lock headers of CreateMultipartUpload."""
    line = _canary_bytes(now)
    data = (line * (_MULTIPART_CANARY_BYTES // len(line) + 1))[:_MULTIPART_CANARY_BYTES]
    client, bucket = store._client, store.bucket
    full = store._full(key_for(blake3.blake3(data).hexdigest()))
    sha = base64.b64encode(hashlib.sha256(data).digest()).decode()
    until = until.replace(microsecond=0) + dt.timedelta(seconds=1)
    try:
        upload = client.create_multipart_upload(
            Bucket=bucket,
            Key=full,
            ChecksumAlgorithm="SHA256",
            ObjectLockMode="COMPLIANCE",
            ObjectLockRetainUntilDate=until,
        )["UploadId"]
        etag = client.upload_part(
            Bucket=bucket, Key=full, UploadId=upload, PartNumber=1, Body=data,
            ChecksumAlgorithm="SHA256", ChecksumSHA256=sha,
        )["ETag"]  # fmt: skip
        version = client.complete_multipart_upload(
            Bucket=bucket, Key=full, UploadId=upload,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag, "ChecksumSHA256": sha}]},
        )["VersionId"]  # fmt: skip
    except Exception as exc:
        code = _error_code(exc)
        if code is None:
            raise
        return False, f"multipart canary not written: {code}"
    mode, have = _lock_of(client, bucket, full, str(version))
    ok = mode == "COMPLIANCE" and have == until
    return ok, (
        f"{full} version {version}: asked COMPLIANCE until {until.isoformat()}, stored "
        f"mode {mode}, retain-until {have.isoformat() if have else None}"
        + ("" if ok else " (the server does not keep the lock headers of multipart uploads)")
    )


def _selftest_s3(store: S3Store, now: dt.datetime, keep: dt.timedelta) -> SelftestReport:
    note = "S3 Object Lock (COMPLIANCE): tamper-proof while every check passes"
    checks: list[Check] = []
    lock_on, versioning = store.lock_configuration()
    checks.append(
        Check(
            "bucket-object-lock",
            lock_on and versioning == "Enabled",
            f"Object Lock {'enabled' if lock_on else 'NOT enabled'}, versioning {versioning}",
        )
    )
    data = _canary_bytes(now)
    until = now + keep
    try:
        key = _write_canary(store, data, until)
        info = store.head(key)
    except StoreError as exc:
        checks.append(Check("canary-locked", False, f"canary not written: {exc}"))
        return SelftestReport(store.uri, False, tuple(checks), note)

    client = store._client  # the attack surface, see the module docstring
    bucket, full, version = store.bucket, store._full(key), info.version
    raw = client.head_object(Bucket=bucket, Key=full, VersionId=version)
    mode = raw.get("ObjectLockMode")
    locked = (
        mode == "COMPLIANCE"
        and info.retain_until_utc is not None
        and info.retain_until_utc >= until
    )
    checks.append(
        Check(
            "canary-locked",
            locked,
            f"{full} version {version}: mode {mode}, retain-until "
            f"{info.retain_until_utc.isoformat() if info.retain_until_utc else None}",
        )
    )

    ok, what = _multipart_canary(store, now, until)
    checks.append(Check("multipart-canary-locked", ok, what))

    def original_intact() -> bool:
        """The locked version still holds the canary, and the store still reads it."""
        store._forget(key)
        try:
            body = client.get_object(Bucket=bucket, Key=full, VersionId=version)["Body"].read()
            with store.open(key) as fh:
                return bool(body == data and fh.read() == data)
        except StoreError:
            return False
        except Exception as exc:
            if _error_code(exc) is None:
                raise
            return False

    refused, what = _attempt(
        lambda: client.delete_object(
            Bucket=bucket, Key=full, VersionId=version, BypassGovernanceRetention=True
        )
    )
    ok = refused and original_intact()
    checks.append(Check("delete-version-refused", ok, f"DeleteObject of version {version}: {what}"))

    other = b"custody self-test overwrite attempt " + uuid.uuid4().bytes
    refused, what = _attempt(
        lambda: client.put_object(
            Bucket=bucket,
            Key=full,
            Body=other,
            ChecksumSHA256=base64.b64encode(hashlib.sha256(other).digest()).decode(),
            ObjectLockMode="COMPLIANCE",
            ObjectLockRetainUntilDate=until,
        )
    )
    if not refused:
        what = "a newer version was added (S3 versioning)"
    ok = original_intact()
    checks.append(
        Check(
            "overwrite-refused",
            ok,
            f"PUT to {full}: {what}; locked version {'unchanged' if ok else 'CHANGED or gone'}",
        )
    )

    earlier = until - keep / 2
    refused_short, what_short = _attempt(
        lambda: client.put_object_retention(
            Bucket=bucket,
            Key=full,
            VersionId=version,
            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": earlier},
        )
    )
    refused_gov, what_gov = _attempt(
        lambda: client.put_object_retention(
            Bucket=bucket,
            Key=full,
            VersionId=version,
            Retention={"Mode": "GOVERNANCE", "RetainUntilDate": until},
            BypassGovernanceRetention=True,
        )
    )
    # Exactly the canary's version, unchanged: after an accepted delete, store.head would
    # read the next version under the key and prove nothing about this one.
    after_mode, after = _lock_of(client, bucket, full, str(version))
    kept = after_mode == "COMPLIANCE" and after == info.retain_until_utc
    checks.append(
        Check(
            "shorten-retention-refused",
            refused_short and refused_gov and kept,
            f"shorten to {earlier.isoformat()}: {what_short}; downgrade to GOVERNANCE: "
            f"{what_gov}; retain-until now {after.isoformat() if after else None}",
        )
    )
    passed = all(c.passed for c in checks)
    return SelftestReport(store.uri, passed, tuple(checks), note)


class StoreSelftestFailed(StoreError):
    """The store did not refuse to lose evidence, and nobody knowingly overrode that."""


@dataclass(frozen=True, slots=True)
class GateResult:
    """What the gate decided before ingest: `state` is recorded with the run."""

    state: str  # passed | not_tamper_proof | failed_overridden
    warning: str | None = None  # for the operator, when the gate was overridden


def gate_store(store: WormStore, *, allow_unverified: bool = False) -> GateResult:
    """The one gate in front of writing evidence: an S3 store must pass its self-test.

    The local store is tamper-evident by design (`not_tamper_proof`, nothing to gate). An
    S3 store that fails raises `StoreSelftestFailed`, unless `allow_unverified` (a test
    bucket, knowingly): then the run goes on and records `failed_overridden`."""
    if store.streams_puts:
        return GateResult("not_tamper_proof")
    report = selftest(store)
    if report.passed:
        return GateResult("passed")
    if not allow_unverified:
        raise StoreSelftestFailed(
            f"{store.uri}: the store self-test failed, so this store may not protect "
            f"evidence: {report.summary()}. Fix the bucket (Object Lock, COMPLIANCE) or, "
            "knowingly, pass --allow-unverified-store (the override is recorded)"
        )
    return GateResult(
        "failed_overridden",
        f"store self-test FAILED and was overridden: {report.summary()}",
    )
