"""Small named objects under one S3 prefix: the S3 catalog's Parquet parts and manifests.

Here, not in the catalog, so that boto3 stays under `pipeline/storage/`; requests go
through the same error boundary as the WORM store's (`client.boundary`).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
from typing import cast

from pipeline.storage.s3.client import S3Access, access, boundary, session_client
from pipeline.storage.s3.config import S3Config


class S3Objects:
    """Small named objects under one prefix: the S3 catalog's Parquet parts and manifests.

    Not content-addressed and outside the WORM interface. Each put carries an explicit
    SHA-256 checksum (AWS refuses uploads to a bucket with a default Object Lock retention
    without one) and no lock headers of its own: the bucket's default retention locks what
    the catalog writes, which suits an append-only catalog. Names are relative to the prefix.
    """

    def __init__(self, bucket: str, prefix: str = "", *, config: S3Config | None = None) -> None:
        if not bucket:
            raise ValueError("S3 objects need a bucket")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.config = config or S3Config()
        self.uri = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self._session, self._client = session_client(self.config)

    @property
    def region(self) -> str:
        """The region the client resolved (from the configuration or the profile)."""
        return str(self._client.meta.region_name)

    def access(self) -> S3Access:
        """What DuckDB needs to read these objects as this client does, credentials now."""
        return access(self._session, self._client, self.config)

    def key(self, name: str) -> str:
        """The bucket key of `name`."""
        return f"{self.prefix}/{name}" if self.prefix else name

    def _boundary(self, name: str, what: str) -> contextlib.AbstractContextManager[None]:
        where = f"s3://{self.bucket}/{self.key(name)}"
        return boundary(where, what, missing=f"{where}: not found", checksum=False)

    def put(self, name: str, data: bytes) -> tuple[str | None, str]:
        """Write `name`; returns (VersionId or None, SHA-256 hex of `data`)."""
        digest = hashlib.sha256(data).digest()
        with self._boundary(name, "upload"):
            resp = self._client.put_object(
                Bucket=self.bucket,
                Key=self.key(name),
                Body=data,
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=base64.b64encode(digest).decode("ascii"),
                ContentType="application/octet-stream",
            )
        version = resp.get("VersionId")
        return (str(version) if version else None), digest.hex()

    def get(self, name: str) -> bytes:
        with self._boundary(name, "read"):
            body = self._client.get_object(Bucket=self.bucket, Key=self.key(name))["Body"]
            try:
                return cast(bytes, body.read())
            finally:
                body.close()

    def head(self, name: str) -> tuple[int, str | None]:
        """(size, VersionId or None) of the current version of `name`."""
        with self._boundary(name, "head"):
            resp = self._client.head_object(Bucket=self.bucket, Key=self.key(name))
        version = resp.get("VersionId")
        return int(resp["ContentLength"]), (str(version) if version else None)

    def list(self, under: str) -> list[tuple[str, int]]:
        """(name, size) of every current object whose name starts with `under`, in key order."""
        found: list[tuple[str, int]] = []
        strip = len(self.prefix) + 1 if self.prefix else 0
        with self._boundary(under, "list"):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.key(under)
            )
            for page in pages:
                for obj in page.get("Contents", []):
                    found.append((str(obj["Key"])[strip:], int(obj["Size"])))
        return found
