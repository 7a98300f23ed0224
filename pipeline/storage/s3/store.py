"""The production store: S3 Object Lock in COMPLIANCE mode.

Every object version is written with `ObjectLockMode=COMPLIANCE` and a retain-until date,
and an explicit SHA-256 checksum (AWS refuses locked uploads without one; SeaweedFS 4.x,
Ceph RGW and MinIO check it too). The VersionId the server assigns is returned and
recorded by the caller.

Decision: uploads use the low-level multipart API, not boto3's managed `upload_file`.
On a locked bucket a completed object can never be removed, so "never make visible an
object whose bytes do not hash to its key" must hold before the last request, not after.
`upload_file` reads the parts of a named file from several threads in any order and
completes the upload by itself; nothing can compare the BLAKE3 of exactly the bytes that
went up before it completes. Here one thread reads the source once, in order, feeding
BLAKE3 and handing each part to a thread pool that uploads it with its own SHA-256;
`CompleteMultipartUpload` is sent only when the BLAKE3 equals the key, otherwise the
upload is aborted and nothing is stored (`uploads.py`, which also aborts at a run's start
the uploads killed runs left open: `abort_stale_uploads`). The tunables are the
managed-transfer ones (`TransferSettings`: threshold, part size, concurrency;
`transfer_config()` gives the equivalent boto3 `TransferConfig` for a like-for-like
benchmark). Objects below the threshold go up in one `PutObject` whose body is the very
bytes that were hashed.

A key names content, so the store reads the *first* version ever written under a key
(listing its versions once per process; versions are immutable, the answer is cached).
A later version under the same key (someone's overwrite) or a delete marker (a delete
without version id) therefore changes nothing for readers. Whole-object reads re-check
BLAKE3 as they stream.

Put-only keys (the auxiliary's) may not send lock headers. With `lock_headers =
"bucket_default"` (`S3Config`; `CUSTODY_S3_LOCK_HEADERS`) a put sends none and relies on
the bucket's default COMPLIANCE retention: the version's lock is read back (HEAD) and the
put fails unless it is COMPLIANCE for at least `bucket_default_min_days`; what remains to
extend to the requested date is kept in `lock_pending` for a role whose keys may.

Configuration comes from an explicit `S3Config` (`config.py`); `S3Store.from_uri` builds
one from the AWS environment variables when the CLI passes them (`env`), or from
`os.environ` when it passes nothing. Every request goes through `client.boundary`, which
maps botocore's errors to the project's, a store that cannot be used naming itself
(endpoint, bucket) and the error in plain words; the first such error is kept
(`unavailable`, for the run's exit 2), and for `unavailable_hold_s` after one the next
requests fail at once instead of each waiting out the retries. `S3Config`,
`TransferSettings` and `S3Objects` are re-exported here: this was one module, and callers
import them from it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any, BinaryIO, cast
from urllib.parse import urlsplit

import blake3
from botocore.exceptions import BotoCoreError, ClientError

from pipeline.storage.base import (
    ObjectInfo,
    ObjectNotFound,
    PutResult,
    RetentionRefused,
    StagedObject,
    StoreError,
    StoreUnavailable,
    WormStore,
    key_for,
)
from pipeline.storage.s3.client import (
    CheckedBody,
    StoreAccessDenied,
    b64_sha256,
    boundary,
    plain_words,
    store_label,
    translate,
    unavailable,
)
from pipeline.storage.s3.config import (
    LOCK_BUCKET_DEFAULT,
    MiB,
    S3Config,
    TransferSettings,
)
from pipeline.storage.s3.objects import S3Objects
from pipeline.storage.s3.uploads import abort_stale, put_multipart

__all__ = ["S3Config", "S3Objects", "S3Store", "TransferSettings"]

_LOCK_MODE = "COMPLIANCE"


def _utc(when: dt.datetime) -> dt.datetime:
    if when.tzinfo is None:
        raise ValueError(f"retain-until must be timezone-aware, got naive {when.isoformat()}")
    return when.astimezone(dt.UTC)


def _ceil_second(when: dt.datetime) -> dt.datetime:
    """S3 keeps retain-until to the second; round up so a lock never ends early."""
    when = _utc(when)
    if when.microsecond:
        when = when.replace(microsecond=0) + dt.timedelta(seconds=1)
    return when


@dataclass(frozen=True, slots=True)
class _Version:
    version_id: str
    size_bytes: int



class _S3Staged(StagedObject):
    """Spools to memory (below the multipart threshold) or a temp file until the key is known.

    S3 needs the key when an upload starts, and a temporary object on a locked bucket could
    never be removed, so the bytes wait locally. Ingest uses `put_file`, which does not
    spool.
    """

    def __init__(self, store: S3Store) -> None:
        self._store = store
        self._spool: IO[bytes] | None = tempfile.SpooledTemporaryFile(  # noqa: SIM115
            max_size=store.config.transfer.multipart_threshold_bytes,
            dir=store.spool_dir,
            prefix="custody-s3-",
        )

    def write(self, data: memoryview | bytes) -> None:
        assert self._spool is not None, "write after commit or abort"
        self._spool.write(data)

    def commit(
        self, blake3_hex: str, *, retain_until_utc: dt.datetime, durable: bool = True
    ) -> PutResult:  # durable whatever `durable` says: S3 acknowledges a stored object
        assert self._spool is not None, "commit after commit or abort"
        spool = self._spool
        try:
            size = spool.tell()
            spool.seek(0)
            return self._store._put_stream(
                cast(BinaryIO, spool), size, blake3_hex, retain_until_utc, source="staged bytes"
            )
        finally:
            self.abort()

    def abort(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None


class S3Store(WormStore):
    """Objects under `s3://bucket/prefix/b3/<hex>`, each version locked in COMPLIANCE mode."""

    streams_puts = False

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        config: S3Config | None = None,
        spool_dir: str | None = None,
    ) -> None:
        if not bucket:
            raise ValueError("an S3 store needs a bucket")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.config = config or S3Config()
        self.spool_dir = spool_dir
        self.uri = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self._client = self.config.client()  # also the selftest's attack surface, see selftest.py
        self.label = store_label(self._client, bucket)  # "S3 store <endpoint> bucket <name>"
        # (monotonic time, words) of the last request that found the store unusable: for
        # `unavailable_hold_s` after it, requests fail at once (`_boundary`).
        self._down: tuple[float, StoreUnavailable] | None = None
        self._down_lock = threading.Lock()
        self._versions: dict[str, _Version] = {}
        self._versions_lock = threading.Lock()
        # lock_headers = "bucket_default": key -> (version, locked until, wanted until) of
        # each version put here whose lock still has to be extended by a role that may.
        self.lock_pending: dict[str, tuple[str, dt.datetime, dt.datetime]] = {}
        self._pending_lock = threading.Lock()

    @classmethod
    def from_uri(
        cls,
        uri: str,
        *,
        config: S3Config | None = None,
        env: Mapping[str, str] | None = None,
        spool_dir: str | None = None,
    ) -> S3Store:
        """`s3://bucket[/prefix]`. Without `config`, read the AWS variables from `env`;
        without `env` either, from `os.environ` (the one place this module reads it)."""
        parts = urlsplit(uri)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(f"not an S3 store location (s3://bucket/prefix): {uri!r}")
        if config is None:
            config = S3Config.from_env(os.environ if env is None else env)
        return cls(parts.netloc, parts.path, config=config, spool_dir=spool_dir)

    # --- boundary ---------------------------------------------------------------------------
    def _full(self, key: str) -> str:
        if not key.startswith("b3/"):
            raise ObjectNotFound(f"{key}: not a content key of this store")
        key_for(key[3:])
        return f"{self.prefix}/{key}" if self.prefix else key

    def _where(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._full(key)}"

    def _translate(
        self, exc: ClientError, where: str, what: str, refused: type[StoreError] | None = None
    ) -> StoreError:
        return self._noted(translate(exc, where, what, missing=f"{where}: not in store "
                                     f"{self.uri}", refused=refused, store=self.label))

    def _noted(self, exc: StoreError) -> StoreError:
        """`exc`, remembered first when it says the store itself cannot be used."""
        if isinstance(exc, StoreUnavailable):
            with self._down_lock:
                self._down = (time.monotonic(), exc)
                if self.unavailable is None:
                    self.unavailable = exc
        return exc

    @contextlib.contextmanager
    def _boundary(
        self, where: str, what: str, refused: type[StoreError] | None = None
    ) -> Iterator[None]:
        """Requests through `client.boundary`. Once a request found the store unusable (its
        retries spent), the next ones within `unavailable_hold_s` fail at once with the same
        words: a night's thousands of files do not each wait out the retries of a server
        that is down, and each still says which store failed and how."""
        with self._down_lock:
            down = self._down
        hold = self.config.unavailable_hold_s
        if down is not None and (ago := time.monotonic() - down[0]) < hold:
            words = down[1].words or str(down[1])
            raise StoreUnavailable(
                f"{self.label} unavailable: {words}, {ago:.0f} s ago ({what}, {where} not "
                f"tried: the store is tried again {hold - ago:.0f} s from now)") from down[1]
        try:
            with boundary(where, what, missing=f"{where}: not in store {self.uri}",
                          refused=refused, store=self.label):
                yield
        except StoreUnavailable as exc:
            self._noted(exc)
            raise

    # --- versions ---------------------------------------------------------------------------
    def _first_version(self, key: str) -> _Version | None:
        """The oldest version under `key` (S3 lists a key's versions newest first)."""
        with self._versions_lock:
            cached = self._versions.get(key)
        if cached is not None:
            return cached
        full = self._full(key)
        oldest: dict[str, Any] | None = None
        with self._boundary(self._where(key), "list versions"):
            pages = self._client.get_paginator("list_object_versions").paginate(
                Bucket=self.bucket, Prefix=full
            )
            for page in pages:
                for v in page.get("Versions", []):
                    if v["Key"] == full:
                        oldest = v
        if oldest is None:
            return None
        found = _Version(str(oldest["VersionId"]), int(oldest["Size"]))
        with self._versions_lock:
            self._versions[key] = found
        return found

    def _version(self, key: str) -> _Version:
        found = self._first_version(key)
        if found is None:
            raise ObjectNotFound(f"{key}: not in store {self.uri}")
        return found

    def _forget(self, key: str) -> None:
        with self._versions_lock:
            self._versions.pop(key, None)

    # --- writing ----------------------------------------------------------------------------
    def stage(self, size_hint: int | None = None) -> StagedObject:
        return _S3Staged(self)

    def put_file(self, path: str, blake3_hex: str, *, retain_until_utc: dt.datetime) -> PutResult:
        """Upload `path` in one read, re-hashing it; nothing is stored unless it matches."""
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise StoreError(f"{path}: cannot read: {exc.strerror}") from exc
        with fh:
            size = os.fstat(fh.fileno()).st_size
            try:
                return self._put_stream(fh, size, blake3_hex, retain_until_utc, source=path)
            except OSError as exc:  # the source failed mid-read; the upload was aborted
                raise StoreError(f"{path}: read failed: {exc.strerror or exc}") from exc

    def _put_stream(
        self,
        fh: BinaryIO,
        size_bytes: int,
        blake3_hex: str,
        retain_until_utc: dt.datetime,
        *,
        source: str,
    ) -> PutResult:
        key = key_for(blake3_hex)
        until = _ceil_second(retain_until_utc)
        existing = self._first_version(key)
        if existing is not None:
            if existing.size_bytes != size_bytes:
                raise StoreError(
                    f"{self._where(key)}: stored with {existing.size_bytes} bytes, "
                    f"{source} has {size_bytes}; the store is damaged, run `custody verify`"
                )
            return PutResult(key, existing.size_bytes, existing.version_id, created=False)
        if size_bytes < self.config.transfer.multipart_threshold_bytes:
            version, stored = self._put_single(fh, key, blake3_hex, until, source)
        else:
            version, stored = self._put_multipart(fh, key, blake3_hex, until, size_bytes, source)
        self._ensure_locked(key, version, until)
        return PutResult(key, stored, version, created=True)

    def _lock_args(self, until: dt.datetime) -> dict[str, Any]:
        if self.config.lock_headers == LOCK_BUCKET_DEFAULT:
            return {}  # the bucket's default COMPLIANCE retention locks it (_ensure_locked)
        return {"ObjectLockMode": _LOCK_MODE, "ObjectLockRetainUntilDate": until}

    def _mismatch(self, source: str, got: str, want: str) -> StoreError:
        return StoreError(
            f"{source}: changed while being stored (BLAKE3 {got} != {want}); nothing stored"
        )

    def _put_single(
        self, fh: BinaryIO, key: str, blake3_hex: str, until: dt.datetime, source: str
    ) -> tuple[str, int]:
        data = fh.read()
        got = blake3.blake3(data).hexdigest()
        if got != blake3_hex:
            raise self._mismatch(source, got, blake3_hex)
        with self._boundary(self._where(key), "upload"):
            resp = self._client.put_object(
                Bucket=self.bucket,
                Key=self._full(key),
                Body=data,
                ChecksumAlgorithm="SHA256",  # some servers want the algorithm named too
                ChecksumSHA256=b64_sha256(data),
                ContentType="application/octet-stream",
                **self._lock_args(until),
            )
        return str(resp["VersionId"]), len(data)

    def _put_multipart(
        self, fh: BinaryIO, key: str, blake3_hex: str, until: dt.datetime, size_bytes: int,
        source: str,
    ) -> tuple[str, int]:
        return put_multipart(self, fh, key, blake3_hex, until, size_bytes, source)

    # --- stale uploads ------------------------------------------------------------------------
    def abort_stale_uploads(self, older_than: dt.timedelta) -> int:
        """Abort the multipart uploads under this store's own content keys (`<prefix>/b3/`)
        started more than `older_than` ago by the server's clock; how many
        (`uploads.abort_stale`: a concurrent run's live upload is younger and is left)."""
        return abort_stale(self, older_than)

    def clear_staging(self) -> int:
        """What a run clears at its start (`pipeline.ingest.run.clear_leftovers`): the open
        multipart uploads older than `S3Config.stale_upload_after_s`; how many. Keys that
        may not list or abort uploads leave them to the bucket's lifecycle rule (0)."""
        try:
            return self.abort_stale_uploads(
                dt.timedelta(seconds=self.config.stale_upload_after_s))
        except StoreAccessDenied:
            return 0

    def _ensure_locked(self, key: str, version: str, until: dt.datetime) -> None:
        """Check the new version carries the lock; some servers drop it on multipart uploads."""
        where = self._where(key)
        with self._boundary(where, "check lock"):
            head = self._client.head_object(
                Bucket=self.bucket, Key=self._full(key), VersionId=version
            )
        mode = head.get("ObjectLockMode")
        have = head.get("ObjectLockRetainUntilDate")
        if mode == _LOCK_MODE and have is not None and _utc(have) >= until:
            return
        if self.config.lock_headers == LOCK_BUCKET_DEFAULT:
            self._check_default_lock(key, version, head, until)
            return
        with self._boundary(where, f"lock version {version} after upload"):
            self._client.put_object_retention(
                Bucket=self.bucket,
                Key=self._full(key),
                VersionId=version,
                Retention={"Mode": _LOCK_MODE, "RetainUntilDate": until},
            )

    def _check_default_lock(
        self, key: str, version: str, head: Mapping[str, Any], until: dt.datetime
    ) -> None:
        """A put without lock headers: the bucket's default must have locked the version
        COMPLIANCE for at least `bucket_default_min_days` after it was written (the server's
        LastModified), or the put fails (StoreError: the caller catalogues nothing; the
        version stays in the bucket, as every version does). Extending it to `until` is left
        to a role whose keys may (`lock_pending`)."""
        mode = head.get("ObjectLockMode")
        have = head.get("ObjectLockRetainUntilDate")
        written = head.get("LastModified")
        days = self.config.bucket_default_min_days
        # The server stamps the default retention and LastModified from its own clock, each
        # to the second and not at the same instant: a minute of slack, never a day.
        slack = dt.timedelta(minutes=1)
        if mode != _LOCK_MODE or have is None or written is None or (
                _utc(have) < _utc(written) + dt.timedelta(days=days) - slack):
            lock = f"{mode or 'no lock'} until {have.isoformat() if have else '-'}"
            raise StoreError(
                f"{self._where(key)}: version {version} was put without lock headers and the "
                f"bucket's default gave it {lock}; at least COMPLIANCE for {days} day(s) is "
                "needed (set the bucket's default retention); not catalogued")
        with self._pending_lock:
            self.lock_pending[key] = (version, _utc(have), until)

    # --- reading ----------------------------------------------------------------------------
    def open(
        self, key: str, start: int = 0, end: int | None = None, *, verify: bool = True
    ) -> BinaryIO:
        if start < 0 or (end is not None and end < 0):
            raise ValueError(f"byte range must not be negative: [{start}, {end})")
        where = self._where(key)
        version = self._version(key)
        size = version.size_bytes
        stop = size if end is None else min(end, size)
        if start >= stop:
            return io.BytesIO(b"")
        whole = start == 0 and stop == size
        args: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": self._full(key),
            "VersionId": version.version_id,
        }
        if not whole:
            args["Range"] = f"bytes={start}-{stop - 1}"
        try:
            with self._boundary(where, "read"):
                resp = self._client.get_object(**args)
        except ObjectNotFound:
            self._forget(key)
            raise
        raw = CheckedBody(
            resp["Body"],
            where=where,
            expected_bytes=stop - start,
            blake3_hex=key[3:] if whole and verify else None,
            store=self.label,
        )
        return cast(BinaryIO, io.BufferedReader(raw, buffer_size=MiB))

    def exists(self, key: str) -> bool:
        return self._first_version(key) is not None

    def head(self, key: str) -> ObjectInfo:
        version = self._version(key)
        with self._boundary(self._where(key), "head"):
            resp = self._client.head_object(
                Bucket=self.bucket, Key=self._full(key), VersionId=version.version_id
            )
        until = resp.get("ObjectLockRetainUntilDate")
        stored = resp.get("LastModified")
        return ObjectInfo(
            key=key,
            size_bytes=int(resp["ContentLength"]),
            version=version.version_id,
            retain_until_utc=_utc(until) if until is not None else None,
            legal_hold=resp.get("ObjectLockLegalHoldStatus") == "ON",
            stored_at_utc=_utc(stored) if stored is not None else None,
        )

    # --- retention --------------------------------------------------------------------------
    def extend_retention(self, key: str, retain_until_utc: dt.datetime) -> ObjectInfo:
        """Move retain-until later (rounded up to the second). Shortening is refused here,
        before S3 is asked, and S3's own refusal is reported the same way."""
        target = _ceil_second(retain_until_utc)
        info = self.head(key)
        current = info.retain_until_utc
        if current is not None and target < current:
            raise RetentionRefused(
                f"{self._where(key)}: retain-until {target.isoformat()} is earlier than the "
                f"current {current.isoformat()}; retention only grows"
            )
        if current == target:
            return info
        with self._boundary(self._where(key), "extend retention", RetentionRefused):
            self._client.put_object_retention(
                Bucket=self.bucket,
                Key=self._full(key),
                VersionId=info.version,
                Retention={"Mode": _LOCK_MODE, "RetainUntilDate": target},
            )
        return self.head(key)

    def set_legal_hold(self, key: str, on: bool) -> ObjectInfo:
        version = self._version(key)
        what = "place legal hold" if on else "lift legal hold"
        with self._boundary(self._where(key), what, RetentionRefused):
            self._client.put_object_legal_hold(
                Bucket=self.bucket,
                Key=self._full(key),
                VersionId=version.version_id,
                LegalHold={"Status": "ON" if on else "OFF"},
            )
        return self.head(key)

    def lock_configuration(self) -> tuple[bool, str | None]:
        """(Object Lock enabled on the bucket, versioning status) as the server reports them."""
        where = f"s3://{self.bucket}"
        try:
            conf = self._client.get_object_lock_configuration(Bucket=self.bucket)
            lock = conf.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled"
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ObjectLockConfigurationNotFoundError":
                raise self._translate(exc, where, "read Object Lock configuration") from exc
            lock = False
        except BotoCoreError as exc:
            raise self._noted(unavailable(self.label, where, "read Object Lock configuration",
                                          plain_words(exc))) from exc
        with self._boundary(where, "read versioning"):
            status = self._client.get_bucket_versioning(Bucket=self.bucket).get("Status")
        return lock, status
