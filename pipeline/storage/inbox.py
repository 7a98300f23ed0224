"""An S3 inbox (`s3://bucket/prefix/`): docking stations upload there; the nightly job reads.

The inbox is not the evidence store: it is an ordinary bucket where uploads land. The
nightly job copies each new object into a local spool folder (streamed in 8 MiB pieces,
written as `.part` and renamed when whole, so a killed run leaves no half file under a
real name) and ingests the spool like any dock folder. An inbox object is changed only
once its archived copy has been verified, and then never deleted: it is tagged
(`custody-archived = <BLAKE3>`), or with a done prefix copied there and tagged. A tagged
object is not fetched again, so a resumed run picks up exactly what is left.

A spool copy is reused only while the object's ETag and size are what they were when it
was fetched (recorded beside it); otherwise it is fetched again.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.storage.base import StoreError, StoreUnavailable
from pipeline.storage.s3.config import S3Config

ARCHIVED_TAG = "custody-archived"
_PIECE = 8 << 20


class InboxError(StoreError):
    """The inbox could not be listed, read or tagged."""


@dataclass(frozen=True, slots=True)
class InboxObject:
    key: str  # the full key
    relative: str  # below the inbox prefix
    size_bytes: int
    etag: str


def _split(uri: str) -> tuple[str, str]:
    parts = urlsplit(uri)
    if parts.scheme != "s3" or not parts.netloc:
        raise InboxError(f"{uri!r}: not an S3 inbox (s3://bucket/prefix/)")
    prefix = parts.path.strip("/")
    return parts.netloc, f"{prefix}/" if prefix else ""


@contextlib.contextmanager
def _boundary(where: str, what: str) -> Iterator[None]:
    try:
        yield
    except ClientError as exc:
        err = exc.response.get("Error", {})
        raise InboxError(f"{where}: {what}: {err.get('Code', '?')}: "
                         f"{err.get('Message', exc)}") from exc
    except BotoCoreError as exc:
        raise StoreUnavailable(f"{where}: {what}: {exc}") from exc


class S3Inbox:
    def __init__(self, uri: str, client: Any) -> None:
        self.uri = uri
        self.bucket, self.prefix = _split(uri)
        self._client = client

    @classmethod
    def open(cls, uri: str, env: Mapping[str, str]) -> S3Inbox:
        return cls(uri, S3Config.from_env(env).client())

    def _where(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{key}"

    def archived_tag(self, key: str) -> str | None:
        with _boundary(self._where(key), "read tags"):
            tags = self._client.get_object_tagging(Bucket=self.bucket, Key=key)["TagSet"]
        return next((t["Value"] for t in tags if t["Key"] == ARCHIVED_TAG), None)

    def pending(self) -> list[InboxObject]:
        """Every object below the prefix not yet tagged as archived, in key order."""
        out = []
        with _boundary(self._where(self.prefix), "list"):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix)
            items = [o for page in pages for o in page.get("Contents", [])]
        for o in sorted(items, key=lambda o: o["Key"]):
            key = o["Key"]
            if key.endswith("/") or self.archived_tag(key) is not None:
                continue
            out.append(InboxObject(key, key[len(self.prefix):], int(o["Size"]),
                                   str(o["ETag"]).strip('"')))
        return out

    def fetch(self, obj: InboxObject, spool: Path, work: Path) -> Path:
        """The object's bytes at `spool/<relative key>` (kept if already whole there).
        `work` (same filesystem, outside `spool`) holds the partial copy and the ETag it
        was read at, so nothing half-read or of ours is ever listed as a source file."""
        target = spool / obj.relative
        marker = work / (obj.relative + ".etag")
        if target.is_file() and target.stat().st_size == obj.size_bytes and \
                marker.is_file() and marker.read_text() == obj.etag:
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        marker.parent.mkdir(parents=True, exist_ok=True)
        part = work / (obj.relative + ".part")
        with _boundary(self._where(obj.key), "read"):
            body = self._client.get_object(Bucket=self.bucket, Key=obj.key)["Body"]
            with open(part, "wb") as fh:
                while piece := body.read(_PIECE):
                    fh.write(piece)
                fh.flush()
                os.fsync(fh.fileno())
        got = part.stat().st_size
        if got != obj.size_bytes:
            part.unlink()
            raise InboxError(f"{self._where(obj.key)}: read {got} bytes of {obj.size_bytes}")
        marker.write_text(obj.etag)
        os.replace(part, target)
        return target

    def mark_archived(self, obj: InboxObject, blake3_hex: str, done_prefix: str | None) -> None:
        """After its copy was verified: copy it below `done_prefix` (if given), then tag
        it `custody-archived = <BLAKE3>` (it is never deleted)."""
        tags = {"TagSet": [{"Key": ARCHIVED_TAG, "Value": blake3_hex}]}
        if done_prefix is not None:
            bucket, prefix = _split(done_prefix)
            dest = prefix + obj.relative
            with _boundary(f"s3://{bucket}/{dest}", "copy to the done prefix"):
                self._client.copy_object(
                    Bucket=bucket, Key=dest, CopySource={"Bucket": self.bucket, "Key": obj.key},
                    CopySourceIfMatch=f'"{obj.etag}"', TaggingDirective="REPLACE",
                    Tagging=f"{ARCHIVED_TAG}={blake3_hex}")
        with _boundary(self._where(obj.key), "tag as archived"):
            self._client.put_object_tagging(Bucket=self.bucket, Key=obj.key, Tagging=tags)


def matches(relative: str, pattern: str | None) -> bool:
    """Whether an inbox key (below the prefix) is one of the source's labels files."""
    return pattern is not None and (fnmatch.fnmatch(relative, pattern) or
                                    fnmatch.fnmatch(relative.rsplit("/", 1)[-1], pattern))
