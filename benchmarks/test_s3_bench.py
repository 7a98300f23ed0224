"""Ingest into S3 Object Lock against a plain boto3 upload (issue 3's acceptance).

Contenders, on the cached 10-minute 1080p30 file (benchmarks/conftest.py) with a warm page
cache, against one SeaweedFS `weed mini` on 127.0.0.1 started for the session (the
`s3_server` fixture of tests/s3server.py), each round into a fresh Object Lock bucket
made in the untimed setup (a repeated put of the same content would be skipped):
- `test_s3_ingest`: `pipeline.ingest.run.ingest` with the S3 store AND the S3 catalog (the
  production layout: `s3://bucket/evidence`, `s3://bucket/catalog`), i.e. one read for
  BLAKE3 whole + 1 MiB chunks while the demuxer runs in a worker process, then the
  BLAKE3-gated multipart upload (second read, SHA-256 per part, COMPLIANCE lock, lock
  check), timing analysis, and the catalog commit (parts + manifest PUTs). The store
  self-test that the CLI runs before an ingest is not timed.
- `test_s3_peer_upload_file`: boto3's managed `upload_file` of the same file with the same
  `TransferConfig` (`TransferSettings().transfer_config()`) and the same per-part SHA-256
  checksum (`ChecksumAlgorithm=SHA256`); the bucket's default retention locks it.
- `test_s3_paired_ingest_and_upload_file`: each round one of each, back to back (alternating
  which goes first), each into a fresh bucket: the median of the per-round ratios is not
  moved by the server or the machine drifting between the two tests above.
Target: ingest <= 1.2 x the plain upload (medians), printed after the contenders have run.

    .venv/bin/pytest benchmarks/test_s3_bench.py --benchmark-only

The repository root is put on `sys.path` so the session fixture of `tests/s3server.py`
can be imported into this module (pytest allows `pytest_plugins` only in the rootdir
conftest, and `tests` is not an installed package).
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import pytest  # noqa: E402
from conftest import BenchInput, RunDirs, run_paired  # noqa: E402

from pipeline.catalog.core import Catalog  # noqa: E402
from pipeline.ingest.run import ARCHIVED, IngestSettings, RunResult  # noqa: E402
from pipeline.storage.s3.store import S3Config, S3Store, TransferSettings  # noqa: E402
from tests import s3server  # noqa: E402
from tests.contract._support import fresh_bucket  # noqa: E402
from tests.ingesting import run_ingest  # noqa: E402
from tests.s3server import S3Server  # noqa: E402

s3_server = s3server.s3_server  # the session fixture, registered by being in this module

ROUNDS = 5
WARMUP = 1
# S3 refuses a retain-until in the past, so "now" is the real time (taken once: every round
# is the same). The recording dates from 2024, so every round also finds it late (AV-12).
NOW = dt.datetime.now(dt.UTC)
INGEST = "test_s3_ingest"
UPLOAD = "test_s3_peer_upload_file"
TARGET = 1.2
_MEDIANS: dict[str, float] = {}
_PAIRED: list[float] = []


@pytest.fixture(scope="module")
def s3_ratio(request: pytest.FixtureRequest) -> Iterator[None]:
    """After the contenders ran: ingest / plain upload from their medians, and paired."""
    yield
    lines = []
    if {INGEST, UPLOAD} <= _MEDIANS.keys():
        ratio = _MEDIANS[INGEST] / _MEDIANS[UPLOAD]
        lines.append(
            f"s3 ingest {_MEDIANS[INGEST]:.3f}s / boto3 upload_file {_MEDIANS[UPLOAD]:.3f}s "
            f"= {ratio:.2f}  (target <= {TARGET}: {'met' if ratio <= TARGET else 'MISSED'})"
        )
    for paired in _PAIRED:
        lines.append(
            f"s3 ingest / boto3 upload_file, paired = {paired:.2f}  (target <= {TARGET}: "
            f"{'met' if paired <= TARGET else 'MISSED'}; median of per-round ratios, rounds "
            "back to back)"
        )
    if not lines:
        return
    line = "\n".join(lines)
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():  # teardown output is captured otherwise
            reporter.write_line("\n" + line)


def _config(server: S3Server) -> S3Config:
    """The production transfer settings (not the small ones of the contract tests)."""
    return S3Config(
        endpoint_url=server.endpoint_url, region=server.region,
        access_key_id=server.access_key_id, secret_access_key=server.secret_access_key,
        transfer=TransferSettings(),
    )


def _assert_locked(client: Any, bucket: str, key: str, size: int) -> dict[str, Any]:
    head: dict[str, Any] = client.head_object(Bucket=bucket, Key=key)
    assert head["ContentLength"] == size
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"] > dt.datetime.now(dt.UTC)
    assert "-" in head["ETag"], "a multipart upload's ETag ends in -<parts>"
    return head


def test_s3_ingest(
    benchmark: Any, bench_input: BenchInput, b3sum_of_input: str, s3_server: S3Server,
    run_dirs: RunDirs, s3_ratio: None,
) -> None:
    config = _config(s3_server)
    client = config.client()
    settings = IngestSettings(now=lambda: NOW)

    def setup() -> tuple[tuple[()], dict[str, Any]]:
        bucket = fresh_bucket(client)
        cache = run_dirs.fresh() / "catalog-cache"
        store = S3Store(bucket, "evidence", config=config)
        catalog = Catalog.open(f"s3://{bucket}/catalog", env=s3_server.env(), cache_dir=cache)
        return (), {"store": store, "catalog": catalog}

    def target(store: S3Store, catalog: Catalog) -> tuple[RunResult, S3Store, Catalog]:
        result = run_ingest([bench_input.path], store=store, catalog=catalog, settings=settings)
        return result, store, catalog

    result, store, catalog = benchmark.pedantic(
        target, setup=setup, rounds=ROUNDS, warmup_rounds=WARMUP
    )
    _MEDIANS[INGEST] = float(benchmark.stats.stats.median)

    assert [f.status for f in result.files] == [ARCHIVED], result.as_json()
    out = result.files[0]
    assert out.blake3 == b3sum_of_input
    _assert_locked(client, store.bucket, f"evidence/b3/{out.blake3}", bench_input.size_bytes)
    row = catalog.query(
        "SELECT (SELECT count(*) FROM recordings) AS recs,"
        " (SELECT count(*) FROM packets) AS packets"
    ).to_pylist()[0]
    assert row["recs"] == 1
    assert row["packets"] >= bench_input.video_packets + bench_input.audio_packets_min
    benchmark.extra_info.update({"bytes": bench_input.size_bytes, "catalog": "s3"})


def test_s3_peer_upload_file(
    benchmark: Any, bench_input: BenchInput, s3_server: S3Server, s3_ratio: None,
) -> None:
    config = _config(s3_server)
    client = config.client()
    transfer = config.transfer.transfer_config()
    key = f"evidence/{bench_input.name}"

    def setup() -> tuple[tuple[str], dict[str, Any]]:
        return (fresh_bucket(client),), {}

    def target(bucket: str) -> str:
        client.upload_file(
            str(bench_input.path), bucket, key, Config=transfer,
            ExtraArgs={"ChecksumAlgorithm": "SHA256"},
        )
        return bucket

    bucket = benchmark.pedantic(target, setup=setup, rounds=ROUNDS, warmup_rounds=WARMUP)
    _MEDIANS[UPLOAD] = float(benchmark.stats.stats.median)
    _assert_locked(client, bucket, key, bench_input.size_bytes)
    benchmark.extra_info.update({"bytes": bench_input.size_bytes})


def test_s3_paired_ingest_and_upload_file(
    benchmark: Any, bench_input: BenchInput, s3_server: S3Server, run_dirs: RunDirs,
    s3_ratio: None,
) -> None:
    config = _config(s3_server)
    client = config.client()
    transfer = config.transfer.transfer_config()
    settings = IngestSettings(now=lambda: NOW)
    outcomes: list[str] = []

    def ingest_one() -> Callable[[], object]:
        bucket = fresh_bucket(client)
        store = S3Store(bucket, "evidence", config=config)
        catalog = Catalog.open(f"s3://{bucket}/catalog", env=s3_server.env(),
                               cache_dir=run_dirs.fresh() / "catalog-cache")

        def act() -> None:
            result = run_ingest([bench_input.path], store=store, catalog=catalog, settings=settings)
            outcomes.extend(f.status for f in result.files)

        return act

    def upload_one() -> Callable[[], object]:
        bucket = fresh_bucket(client)

        def act() -> None:
            client.upload_file(str(bench_input.path), bucket, f"evidence/{bench_input.name}",
                               Config=transfer, ExtraArgs={"ChecksumAlgorithm": "SHA256"})

        return act

    paired = run_paired(benchmark, ingest_one, upload_one, rounds=ROUNDS, warmup=WARMUP)
    assert outcomes == [ARCHIVED] * (ROUNDS + WARMUP)
    _PAIRED.append(paired.median_ratio)
