"""WORM storage: one interface (`base.WormStore`), a local and an S3 implementation."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pipeline.storage.base import WormStore


def open_store(
    location: str | os.PathLike[str], *, env: Mapping[str, str] | None = None
) -> WormStore:
    """The store at `location`: `s3://bucket/prefix` for S3, anything else is a directory.

    `env` carries the S3 endpoint and credentials (AWS_* variables) from the CLI."""
    loc = os.fspath(location)
    if loc.startswith("s3://"):
        from pipeline.storage.s3.store import S3Store  # boto3 is imported only there

        return S3Store.from_uri(loc, env=env)
    from pipeline.storage.local import LocalStore

    return LocalStore(loc)
