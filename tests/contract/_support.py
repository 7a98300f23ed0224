"""Helpers shared by the contract tests (kept out of conftest.py so tests can import them)."""

from __future__ import annotations

import uuid
from typing import Any

from infra.provision import provision_bucket
from pipeline.storage.s3.store import S3Config, TransferSettings

MiB = 1 << 20
TEST_TRANSFER = TransferSettings(
    multipart_threshold_bytes=16 * MiB, multipart_chunk_bytes=5 * MiB, max_concurrency=4
)


def s3_config(server: Any, transfer: TransferSettings = TEST_TRANSFER) -> S3Config:
    return S3Config(
        endpoint_url=server.endpoint_url,
        region=server.region,
        access_key_id=server.access_key_id,
        secret_access_key=server.secret_access_key,
        transfer=transfer,
        max_attempts=2,
    )


def fresh_bucket(client: Any) -> str:
    name = f"custody-{uuid.uuid4().hex[:16]}"
    result = provision_bucket(client, name, default_retention_days=1)
    assert result.object_lock and result.versioning == "Enabled"
    return name
