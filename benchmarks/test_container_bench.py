"""Ingest of the 10-minute input stream-copied to MPEG-TS and to fragmented MP4 (issue 9).

The plain MP4 is timed from its sample tables; these two families have none: a fragmented
MP4 keeps its samples in `moof`/`trun` boxes, an MPEG-TS only in the PES headers of its
188-byte packets. Each is measured the way `test_paired_ingest_and_durable_copy` measures
the plain file: every round an ingest and a `cp` + `sync` back to back (alternating which
goes first), the median of the per-round ratios against the target of 1.2. The remuxes
(PyAV stream copies of the cached input) are cached beside it (`conftest.ensure_remux`).

Each benchmark checks its result: every round archived, the object's BLAKE3 equal to
b3sum's, and the catalog holding every packet of both streams. The MPEG-TS one first
checks (untimed) that the probe took the PES-header path and that its timelines equal a
full demux's field by field (pts, dts, duration, keyframe, discard, size, pos, parameter
sets, encoder SEI).
"""

from __future__ import annotations

import statistics
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from conftest import (
    BenchInput,
    RunDirs,
    ensure_remux,
    ratios,
    record_paired_ratio,
    run_paired,
    run_peer,
)
from test_ingest_bench import NOW, ROUNDS, WARMUP, expected_packets

from pipeline.catalog.core import Catalog
from pipeline.ingest.run import ARCHIVED, IngestSettings
from pipeline.storage.local import LocalStore
from tests.ingesting import run_ingest


@pytest.fixture(scope="module")
def mpegts_input(bench_input: BenchInput) -> BenchInput:
    return _warm(ensure_remux(bench_input, "mpegts"))


@pytest.fixture(scope="module")
def fmp4_input(bench_input: BenchInput) -> BenchInput:
    return _warm(ensure_remux(bench_input, "fmp4"))


def _warm(inp: BenchInput) -> BenchInput:
    from conftest import warm

    warm(inp.path)
    return inp


def _b3sum(inp: BenchInput) -> str:
    return subprocess.run(
        ["b3sum", "--no-names", str(inp.path)], check=True, capture_output=True, text=True
    ).stdout.strip()


def _packet_counts(catalog: Catalog) -> dict[str, int]:
    row: dict[str, int] = catalog.query(
        "SELECT (SELECT count(*) FROM packets WHERE stream_index = 0) AS v,"
        " (SELECT count(*) FROM packets WHERE stream_index = 1) AS a"
    ).to_pylist()[0]
    return row


def _paired(benchmark: Any, inp: BenchInput, run_dirs: RunDirs, name: str) -> None:
    settings = IngestSettings(now=lambda: NOW)
    outcomes: list[tuple[str, str | None]] = []
    counts: list[dict[str, int]] = []
    catalogs: list[Catalog] = []
    # The copies get their own directories, so each ingest's store and catalog stay until
    # the next ingest is prepared, and are checked then (untimed).
    copy_dirs = RunDirs(f"{name}-copy")

    def ingest_one() -> Callable[[], object]:
        if catalogs:
            counts.append(_packet_counts(catalogs.pop()))
        root = run_dirs.fresh()
        store, catalog = LocalStore(root / "store"), Catalog(root / "catalog")

        def act() -> None:
            result = run_ingest([inp.path], store=store, catalog=catalog, settings=settings)
            outcomes.extend((f.status, f.blake3) for f in result.files)
            catalogs.append(catalog)

        return act

    def copy_one() -> Callable[[], object]:
        dst = copy_dirs.fresh() / inp.name

        def act() -> None:
            run_peer(["cp", str(inp.path), str(dst)])
            run_peer(["sync"])

        return act

    try:
        paired = run_paired(benchmark, ingest_one, copy_one, rounds=ROUNDS, warmup=WARMUP)
    finally:
        copy_dirs.close()
    counts.extend(_packet_counts(c) for c in catalogs)
    assert [o[0] for o in outcomes] == [ARCHIVED] * (ROUNDS + WARMUP)
    assert {o[1] for o in outcomes} == {_b3sum(inp)}
    video, audio = expected_packets(inp)
    assert counts == [{"v": video, "a": audio}] * (ROUNDS + WARMUP)
    record_paired_ratio(paired.median_ratio, statistics.median(paired.ours),
                        statistics.median(paired.peer), ratios.PAIRED[name])


def _probe_is_a_full_demux(inp: BenchInput, monkeypatch: pytest.MonkeyPatch) -> None:
    """The PES-header path gave the probe's timelines, and they are a full demux's."""
    import numpy as np

    from pipeline.media.probe import demux, indexed, probe

    used: list[bool] = []
    real = indexed.from_mpegts

    def spy(*args: Any) -> Any:
        got = real(*args)
        used.append(got is not None)
        return got

    with monkeypatch.context() as m:
        m.setattr(demux, "from_mpegts", spy)
        fast = probe(inp.path)
    full = probe(inp.path, full_demux=True)
    assert used == [True]
    assert len(fast.streams) == len(full.streams) and fast.demux_errors == full.demux_errors
    for x, y in zip(fast.streams, full.streams, strict=True):
        for field in ("pts", "dts", "duration", "keyframe", "discard", "size", "pos"):
            assert np.array_equal(getattr(x, field), getattr(y, field)), (x.index, field)
        assert x.param_sets == y.param_sets and x.encoder_signatures == y.encoder_signatures


def test_paired_ingest_mpegts_and_durable_copy(
    benchmark: Any, mpegts_input: BenchInput, run_dirs: RunDirs, monkeypatch: pytest.MonkeyPatch
) -> None:
    _probe_is_a_full_demux(mpegts_input, monkeypatch)
    _paired(benchmark, mpegts_input, run_dirs, "test_paired_ingest_mpegts_and_durable_copy")


def test_paired_ingest_fmp4_and_durable_copy(
    benchmark: Any, fmp4_input: BenchInput, run_dirs: RunDirs
) -> None:
    _paired(benchmark, fmp4_input, run_dirs, "test_paired_ingest_fmp4_and_durable_copy")
