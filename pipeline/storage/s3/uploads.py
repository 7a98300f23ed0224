"""Multipart uploads of the S3 store: the BLAKE3-gated upload, and aborting what will not
complete (a failed upload at once, killed runs' at the next start).

Decision (see `store.py`): the low-level multipart API, one thread reading the source once
in order, feeding BLAKE3 and handing parts to a pool; `CompleteMultipartUpload` only when
the BLAKE3 equals the key. An upload that cannot complete is aborted at once when the
server answers; when it does not (it went away), the upload stays open, invisible, until
the next run's start aborts it (`abort_stale`, by the server's clock, only under the
store's own content keys and only when older than a live upload can be) or the bucket's
lifecycle rule does (`infra.provision`).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Mapping
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any, BinaryIO, cast

import blake3
from botocore.exceptions import BotoCoreError, ClientError

from pipeline.storage.base import StoreError, StoreUnavailable
from pipeline.storage.s3.client import b64_sha256, error_code
from pipeline.storage.s3.config import S3_MAX_PARTS

if TYPE_CHECKING:
    from pipeline.storage.s3.store import S3Store

_GONE = ("NoSuchUpload", "404")  # aborted or completed meanwhile: nothing left to abort


def _server_time(answer: Mapping[str, Any]) -> dt.datetime:
    """The server's clock at its answer (the HTTP `Date` header)."""
    from email.utils import parsedate_to_datetime

    date = answer.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    if not date:
        raise StoreError("the S3 server's answer has no Date header; cannot tell how old "
                         "its open uploads are, none aborted")
    return parsedate_to_datetime(str(date)).astimezone(dt.UTC)


def _is_content_key(key: str, under: str) -> bool:
    rest = key[len(under):] if key.startswith(under) else ""
    return len(rest) == 64 and all(c in "0123456789abcdef" for c in rest)


def _upload_part(
    store: S3Store, full: str, upload_id: str, number: int, data: bytes
) -> dict[str, Any]:
    checksum = b64_sha256(data)
    resp = store._client.upload_part(
        Bucket=store.bucket,
        Key=full,
        UploadId=upload_id,
        PartNumber=number,
        Body=data,
        ChecksumAlgorithm="SHA256",
        ChecksumSHA256=checksum,
    )
    return {"PartNumber": number, "ETag": resp["ETag"], "ChecksumSHA256": checksum}


def put_multipart(
    store: S3Store,
    fh: BinaryIO,
    key: str,
    blake3_hex: str,
    until: dt.datetime,
    size_bytes: int,
    source: str,
) -> tuple[str, int]:
    """Upload `fh` under `key` in parts, completing only if its bytes hash to `blake3_hex`;
    (version id, bytes stored). On failure the upload is aborted, or the error says it
    stays open."""
    full, where = store._full(key), store._where(key)
    settings = store.config.transfer
    part_bytes = settings.part_bytes(size_bytes)
    with store._boundary(where, "start multipart upload"):
        upload_id = store._client.create_multipart_upload(
            Bucket=store.bucket,
            Key=full,
            ChecksumAlgorithm="SHA256",
            ContentType="application/octet-stream",
            **store._lock_args(until),
        )["UploadId"]
    completed = aborted = False
    try:
        hasher = blake3.blake3()
        stored = 0
        futures: list[Future[dict[str, Any]]] = []
        failures: list[BaseException] = []
        # One part being read, max_concurrency in flight: memory stays bounded.
        slots = threading.BoundedSemaphore(settings.max_concurrency + 1)

        def settled(fut: Future[dict[str, Any]]) -> None:
            if not fut.cancelled() and fut.exception() is not None:
                failures.append(cast(BaseException, fut.exception()))
            slots.release()

        with (
            store._boundary(where, "upload part"),
            ThreadPoolExecutor(
                settings.max_concurrency, thread_name_prefix="custody-s3"
            ) as pool,
        ):
            try:
                while not failures:
                    slots.acquire()
                    data = fh.read(part_bytes)
                    if not data:
                        slots.release()
                        break
                    if len(futures) == S3_MAX_PARTS:
                        slots.release()
                        raise StoreError(f"{source}: grew past {S3_MAX_PARTS} parts")
                    hasher.update(data)
                    stored += len(data)
                    fut = pool.submit(
                        _upload_part, store, full, upload_id, len(futures) + 1, data
                    )
                    fut.add_done_callback(settled)
                    futures.append(fut)
                wait(futures, return_when=FIRST_EXCEPTION)
                if failures:
                    raise failures[0]
                parts = [f.result() for f in futures]
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        got = hasher.hexdigest()
        if got != blake3_hex:
            raise store._mismatch(source, got, blake3_hex)
        with store._boundary(where, "complete multipart upload"):
            resp = store._client.complete_multipart_upload(
                Bucket=store.bucket,
                Key=full,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        completed = True
        return str(resp["VersionId"]), stored
    except StoreError as exc:
        aborted = True
        if abort_upload(store, full, upload_id):
            raise
        left = type(exc)(f"{exc}; its multipart upload stays open until the next run "
                         "or the bucket's lifecycle rule aborts it")
        if isinstance(exc, StoreUnavailable) and isinstance(left, StoreUnavailable):
            left.words = exc.words
        raise left from exc
    finally:
        if not completed and not aborted:
            abort_upload(store, full, upload_id)


def abort_upload(store: S3Store, full: str, upload_id: str) -> bool:
    """Abort an upload that will not complete (it is invisible, but its parts use space
    and, on AWS, are billed); True when it is gone. Not held back by `_down`: the server
    may be back, and an open upload is worth one more try."""
    try:
        store._client.abort_multipart_upload(Bucket=store.bucket, Key=full, UploadId=upload_id)
    except ClientError as exc:
        if error_code(exc) not in _GONE:
            return False
    except BotoCoreError:
        return False
    return True


def abort_stale(store: S3Store, older_than: dt.timedelta) -> int:
    """Abort the multipart uploads under this store's own content keys (`<prefix>/b3/`)
    that were started more than `older_than` ago by the server's clock (its `Date`
    answer against each upload's `Initiated`, so this machine's clock does not matter);
    how many. Uploads of killed runs: invisible, but their parts use space. A live
    upload of a concurrent run is younger than `older_than` and is left alone; keys
    outside the prefix (the catalog's, anyone else's) are never touched."""
    if older_than < dt.timedelta(0):
        raise ValueError(f"older_than must not be negative, got {older_than}")
    under = f"{store.prefix}/b3/" if store.prefix else "b3/"
    where = f"s3://{store.bucket}/{under}"
    stale: list[tuple[str, str]] = []
    with store._boundary(where, "list open multipart uploads"):
        pages = store._client.get_paginator("list_multipart_uploads").paginate(
            Bucket=store.bucket, Prefix=under)
        for page in pages:
            server_now = _server_time(page)
            for up in page.get("Uploads", []):
                key, started = str(up["Key"]), up.get("Initiated")
                if not _is_content_key(key, under) or started is None:
                    continue
                if server_now - started.astimezone(dt.UTC) > older_than:
                    stale.append((key, str(up["UploadId"])))
    aborted = 0
    for key, upload_id in stale:
        with store._boundary(f"s3://{store.bucket}/{key}", f"abort upload {upload_id}"):
            try:
                store._client.abort_multipart_upload(
                    Bucket=store.bucket, Key=key, UploadId=upload_id)
            except ClientError as exc:
                if error_code(exc) not in _GONE:
                    raise
                continue  # someone else aborted or completed it meanwhile
        aborted += 1
    return aborted
