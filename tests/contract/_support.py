"""Helpers shared by the contract tests (kept out of conftest.py so tests can import them)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import blake3

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


def inbox_with_clips(server: Any, tmp: Path, prefix: str) -> tuple[Any, str, dict[str, str]]:
    """A plain bucket (no Object Lock) holding what a docking station uploaded: two clean
    one-second clips `<prefix>REC0.mp4`, `<prefix>REC1.mp4`; the client, the bucket and
    the BLAKE3 of each clip by key."""
    from pipeline.demo import synth
    from tests.mediagen import START

    client = s3_config(server).client()
    bucket = f"inbox-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    digests = {}
    for i in range(2):
        data = synth.write_clean(tmp / f"REC{i}.mp4", 1.0, START.replace(minute=i)).read_bytes()
        client.put_object(Bucket=bucket, Key=f"{prefix}REC{i}.mp4", Body=data)
        digests[f"{prefix}REC{i}.mp4"] = blake3.blake3(data).hexdigest()
    return client, bucket, digests
