"""Ingest of a 10-minute 1080p30 recording against its peers (issue 2's acceptance).

Contenders, each on the same cached file with a warm page cache, each round starting
from fresh directories on the repository's filesystem:
- `test_ingest`: `pipeline.ingest.run.ingest` into an empty local store and catalog (both
  created, empty, in the untimed setup), i.e. read once, BLAKE3 whole + 1 MiB chunks,
  copy into the store, fsync, demux in a worker process, timing analysis, catalog commit;
- `test_peer_ffprobe_packets`: ffprobe printing every packet's timing fields (CSV);
- `test_peer_b3sum`: b3sum of the file;
- `test_peer_durable_copy`: `cp` then `sync`.
Targets (printed at the end of the session, see `ratios.py`): ingest <= 1.2 x the
durable copy, ingest <= 0.7 x ffprobe + b3sum + durable copy.

`test_paired_ingest_and_durable_copy` measures the first ratio a second way: on a shared
machine, conditions drift between one test's rounds and the next test's, so there each
round is an ingest and a durable copy back to back (alternating which goes first) and
the ratio is taken per round; its median is printed beside the ratio of medians.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import stat
import statistics
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import BenchInput, RunDirs, record_paired_ratio, run_paired, run_peer

from pipeline.catalog.core import Catalog
from pipeline.ingest.run import ARCHIVED, IngestSettings, RunResult
from pipeline.integrity.hashing import DEFAULT_CHUNK_SIZE
from pipeline.storage.local import LocalStore
from tests.ingesting import run_ingest

ROUNDS = 9  # the machine is noisy: medians of 9 rounds move less than of 5
WARMUP = 1
# The synthetic recording starts 2024-05-01 08:00 UTC; "now" is just after it ends, so
# the 24-hour rule stays quiet and every round is identical.
NOW = dt.datetime(2024, 5, 1, 8, 30, tzinfo=dt.UTC)
FFPROBE_FIELDS = "packet=stream_index,pts,dts,duration,flags,size,pos"


def expected_packets(inp: BenchInput) -> tuple[int, int]:
    """(video, audio) packets the generator's parameters make: 1800 frames and 1875 AAC
    frames a minute, plus the AAC encoder's priming packet that only the first copy keeps."""
    return inp.video_packets, inp.audio_packets_min + 1


def test_ingest(
    benchmark: Any,
    bench_input: BenchInput,
    b3sum_of_input: str,
    run_dirs: RunDirs,
    record_median: Any,
) -> None:
    settings = IngestSettings(now=lambda: NOW)

    def setup() -> tuple[tuple[()], dict[str, Any]]:
        root = run_dirs.fresh()
        return (), {"store": LocalStore(root / "store"), "catalog": Catalog(root / "catalog")}

    def target(store: LocalStore, catalog: Catalog) -> tuple[RunResult, LocalStore, Catalog]:
        return (
            run_ingest([bench_input.path], store=store, catalog=catalog, settings=settings),
            store,
            catalog,
        )

    result, store, catalog = benchmark.pedantic(
        target, setup=setup, rounds=ROUNDS, warmup_rounds=WARMUP
    )
    record_median(benchmark)

    # One file archived, under the BLAKE3 an independent tool computes.
    assert [f.status for f in result.files] == [ARCHIVED], result.as_json()
    out = result.files[0]
    assert out.blake3 == b3sum_of_input
    assert out.size_bytes == bench_input.size_bytes
    obj = store.object_path(f"b3/{out.blake3}")
    st = obj.stat()
    assert st.st_size == bench_input.size_bytes
    assert not st.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)

    # The catalog holds the recording, its chunk table and every packet.
    video, audio = expected_packets(bench_input)
    row = catalog.query(
        "SELECT (SELECT count(*) FROM recordings) AS recs,"
        " (SELECT count(*) FROM chunks) AS chunks,"
        " (SELECT count(*) FROM packets WHERE stream_index = 0) AS v,"
        " (SELECT count(*) FROM packets WHERE stream_index = 1) AS a"
    ).to_pylist()[0]
    assert row == {
        "recs": 1,
        "chunks": math.ceil(bench_input.size_bytes / DEFAULT_CHUNK_SIZE),
        "v": video,
        "a": audio,
    }
    benchmark.extra_info.update(
        {
            "bytes": bench_input.size_bytes,
            "packets": video + audio,
            "findings": sorted(f.code for f in out.findings),
        }
    )


def test_peer_ffprobe_packets(benchmark: Any, bench_input: BenchInput, record_median: Any) -> None:
    argv = [
        "ffprobe",
        "-v",
        "error",
        "-show_entries",
        FFPROBE_FIELDS,
        "-of",
        "csv=p=0",
        str(bench_input.path),
    ]
    proc = benchmark.pedantic(run_peer, args=(argv,), rounds=ROUNDS, warmup_rounds=WARMUP)
    record_median(benchmark)
    # One line per packet; a packet with side data (the AAC priming packet's skip
    # samples) is followed by an empty line for its side-data section.
    lines = [ln for ln in proc.stdout.splitlines() if ln]
    video, audio = expected_packets(bench_input)
    assert sum(1 for ln in lines if ln.startswith(b"0,")) == video
    assert sum(1 for ln in lines if ln.startswith(b"1,")) == audio
    assert len(lines) == video + audio


def test_peer_b3sum(
    benchmark: Any, bench_input: BenchInput, b3sum_of_input: str, record_median: Any
) -> None:
    argv = ["b3sum", "--no-names", str(bench_input.path)]
    proc = benchmark.pedantic(run_peer, args=(argv,), rounds=ROUNDS, warmup_rounds=WARMUP)
    record_median(benchmark)
    assert proc.stdout.decode().strip() == b3sum_of_input


def test_peer_durable_copy(
    benchmark: Any,
    bench_input: BenchInput,
    b3sum_of_input: str,
    run_dirs: RunDirs,
    record_median: Any,
) -> None:
    def setup() -> tuple[tuple[Path], dict[str, Any]]:
        return (run_dirs.fresh() / bench_input.name,), {}

    def target(dst: Path) -> Path:
        run_peer(["cp", str(bench_input.path), str(dst)])
        run_peer(["sync"])
        return dst

    dst = benchmark.pedantic(target, setup=setup, rounds=ROUNDS, warmup_rounds=WARMUP)
    record_median(benchmark)
    assert os.path.getsize(dst) == bench_input.size_bytes
    got = subprocess.run(
        ["b3sum", "--no-names", str(dst)], check=True, capture_output=True, text=True
    ).stdout.strip()
    assert got == b3sum_of_input


def test_paired_ingest_and_durable_copy(
    benchmark: Any, bench_input: BenchInput, run_dirs: RunDirs
) -> None:
    settings = IngestSettings(now=lambda: NOW)
    outcomes: list[str] = []

    def ingest_one() -> Callable[[], object]:
        root = run_dirs.fresh()
        store, catalog = LocalStore(root / "store"), Catalog(root / "catalog")

        def act() -> None:
            result = run_ingest([bench_input.path], store=store, catalog=catalog, settings=settings)
            outcomes.extend(f.status for f in result.files)

        return act

    def copy_one() -> Callable[[], object]:
        dst = run_dirs.fresh() / bench_input.name

        def act() -> None:
            run_peer(["cp", str(bench_input.path), str(dst)])
            run_peer(["sync"])

        return act

    paired = run_paired(benchmark, ingest_one, copy_one, rounds=ROUNDS, warmup=WARMUP)
    assert outcomes == [ARCHIVED] * (ROUNDS + WARMUP)
    record_paired_ratio(paired.median_ratio, statistics.median(paired.ours),
                        statistics.median(paired.peer))
