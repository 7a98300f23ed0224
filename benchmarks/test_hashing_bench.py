"""Hashing alone: `pipeline.integrity.hashing.digest_file` (BLAKE3 whole + 1 MiB chunks, no sink)
against `b3sum` (all cores, and one thread) and `sha256sum`, on the same cached file with
a warm page cache."""

from __future__ import annotations

import hashlib
import math
from typing import Any

from conftest import BenchInput, run_peer

from pipeline.integrity.hashing import DEFAULT_CHUNK_SIZE, digest_file

ROUNDS = 10
WARMUP = 1


def test_hash_digest_file(
    benchmark: Any, bench_input: BenchInput, b3sum_of_input: str, record_median: Any
) -> None:
    d = benchmark.pedantic(
        digest_file, args=(bench_input.path,), rounds=ROUNDS, warmup_rounds=WARMUP
    )
    record_median(benchmark)
    assert d.blake3 == b3sum_of_input
    assert d.size_bytes == bench_input.size_bytes
    assert len(d.chunks) == math.ceil(bench_input.size_bytes / DEFAULT_CHUNK_SIZE)


def test_hash_b3sum_one_thread(
    benchmark: Any, bench_input: BenchInput, b3sum_of_input: str, record_median: Any
) -> None:
    argv = ["b3sum", "--no-names", "--num-threads", "1", str(bench_input.path)]
    proc = benchmark.pedantic(run_peer, args=(argv,), rounds=ROUNDS, warmup_rounds=WARMUP)
    record_median(benchmark)
    assert proc.stdout.decode().strip() == b3sum_of_input


def test_hash_sha256sum(benchmark: Any, bench_input: BenchInput, record_median: Any) -> None:
    argv = ["sha256sum", str(bench_input.path)]
    proc = benchmark.pedantic(run_peer, args=(argv,), rounds=ROUNDS, warmup_rounds=WARMUP)
    record_median(benchmark)
    with open(bench_input.path, "rb") as fh:
        expected = hashlib.file_digest(fh, "sha256").hexdigest()
    assert proc.stdout.decode().split()[0] == expected
