"""`custody export make` of the 456 MB input from the local store, against its peers (issue 13).

One benchmark, `test_export_make_beside_its_peers`: each round runs, back to back in a
rotating order, each into a fresh directory on the repository's filesystem (the previous
one removed and synced untimed):
- make: `make_package` with the default digests (SHA-512, SHA-256): the stored object
  read once, every 1 MiB chunk's BLAKE3 checked, both digests and the write in their own
  threads over the same chunks; the fsyncs behind the writer; cover.pdf rendered in a
  worker process from the moment the digests are known, beside the packet hash list
  (36,751 packets, its own thread), the excerpt, inventory and manifests; the kept copy
  put into the store four at a time; every package checked with `sha512sum -c`;
- the durable copy: `cp` then `sync`;
- the digest peers: `cp`, `sync`, `sha256sum`, `sha512sum` one after another;
- the floor: SHA-512 alone of the input (in the page cache), by OpenSSL through hashlib
  as make computes it (coreutils' `sha512sum` is slower). No export that computes the
  SHA-512 manifest can take less (SHA-512 is one sequential stream: a second core does
  not shorten it), so `SHA-512 / durable copy` is the best ratio any implementation can
  reach on this machine, printed beside make's.
The medians and the medians of per-round ratios are printed (`-s`) and written to
`.cache/bench/export-ratios.txt` with the load at each round. Target (issue 13): make <=
1.3 x the durable copy. Not reachable here whatever the implementation: the floor line
measures SHA-512 alone at 2.3x the durable copy (0.56 s against 0.24 s, load 2.3, 2026-12-02),
and make's other CPU work (SHA-256 ~0.3 s, the chunk check and the packet hash list ~0.3 s
each of BLAKE3, cover.pdf ~1 s of WeasyPrint) shares the same 2 cores.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import CACHE, BenchInput, RunDirs, run_peer

from pipeline.catalog.core import Catalog
from pipeline.export.make import make_package
from pipeline.export.requests import approve_export, request_export
from pipeline.ingest.run import IngestSettings
from pipeline.people.permissions import open_authority
from pipeline.storage.local import LocalStore
from tests.ingesting import run_ingest

ROUNDS = 5
NOW = dt.datetime(2024, 5, 1, 8, 30, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def exported(bench_input: BenchInput) -> Any:
    """A local store and catalog holding the input, and an approved export of it."""
    root = CACHE / "runs" / "export-setup"
    import shutil

    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    store, catalog = LocalStore(root / "store"), Catalog(root / "catalog")
    run_ingest([bench_input.path], store=store, catalog=catalog,
               settings=IngestSettings(now=lambda: NOW))
    with open_authority(catalog, store, lambda: NOW) as auth:
        st = request_export(catalog, auth, auth.acting(None, os_user="requester"), now=NOW,
                            recipient="court", purpose="benchmark",
                            selectors=[bench_input.path.name])
    with open_authority(catalog, store, lambda: NOW) as auth:
        approve_export(catalog, auth, auth.acting(None, os_user="approver"), st.export_id,
                       now=NOW)
    yield store, catalog, st.export_id
    catalog.close()
    shutil.rmtree(root, ignore_errors=True)


def _make(store: Any, catalog: Any, export_id: str) -> Callable[[Path], Callable[[], None]]:
    def prepare(d: Path) -> Callable[[], None]:
        def run() -> None:
            with open_authority(catalog, store, lambda: NOW) as auth:
                make_package(store, catalog, auth, auth.acting(None, os_user="requester"),
                             export_id, d / "package", now=NOW)
        return run
    return prepare


def _peer(src: Path, *digests: str) -> Callable[[Path], Callable[[], None]]:
    """`cp` then `sync`, then each digest tool on the copy, one after another."""
    def prepare(d: Path) -> Callable[[], None]:
        def run() -> None:
            run_peer(["cp", str(src), str(d)])
            run_peer(["sync"])
            for tool in digests:
                run_peer([tool, str(d / src.name)])
        return run
    return prepare


def _sha512_only(src: Path) -> Callable[[Path], Callable[[], None]]:
    """SHA-512 of the input itself (in the page cache) by hashlib: the floor of make."""
    def prepare(d: Path) -> Callable[[], None]:
        def run() -> None:
            with open(src, "rb") as fh:
                hashlib.file_digest(fh, "sha512")
        return run
    return prepare


def test_export_make_beside_its_peers(benchmark: Any, exported: Any, run_dirs: RunDirs,
                                      bench_input: BenchInput) -> None:
    """Each round runs make, the durable copy and the copy-then-digests peer back to back,
    the order rotating, each into a fresh directory (the previous one removed and synced
    untimed), so the machine's load drifts into all three alike. Each package is checked
    with `sha512sum -c` after its timing."""
    store, catalog, export_id = exported
    prepare = {"make": _make(store, catalog, export_id),
               "durable_copy": _peer(bench_input.path),
               "copy_then_digests": _peer(bench_input.path, "sha256sum", "sha512sum"),
               "sha512_alone": _sha512_only(bench_input.path)}
    names = list(prepare)
    times: dict[str, list[float]] = {n: [] for n in names}
    loads: list[float] = []

    def one_round() -> None:
        k = len(times["make"]) % len(names)
        loads.append(os.getloadavg()[0])
        for which in names[k:] + names[:k]:
            d = run_dirs.fresh()
            action = prepare[which](d)
            start = time.perf_counter()
            action()
            times[which].append(time.perf_counter() - start)
            if which == "make":
                done = subprocess.run(["sha512sum", "-c", "manifest-sha512.txt"],
                                      cwd=d / "package", capture_output=True, check=False)
                assert done.returncode == 0, done.stdout
                copy = d / "package" / "data" / bench_input.path.name
                assert copy.stat().st_size == bench_input.size_bytes

    benchmark.pedantic(one_round, rounds=ROUNDS, warmup_rounds=1)
    kept = {n: t[1:] for n, t in times.items()}  # the warm-up round dropped
    med = {n: statistics.median(t) for n, t in kept.items()}
    per_round = {p: statistics.median(m / c for m, c in zip(kept["make"], kept[p], strict=True))
                 for p in ("durable_copy", "copy_then_digests")}
    per_round["floor"] = statistics.median(
        f / c for f, c in zip(kept["sha512_alone"], kept["durable_copy"], strict=True))
    benchmark.extra_info.update({
        **{f"{n}_s": [round(t, 3) for t in ts] for n, ts in kept.items()},
        "paired_ratio_median": {p: round(r, 3) for p, r in per_round.items()},
        "loadavg_1m": [round(x, 2) for x in loads[1:]],
    })
    _report(med, per_round, loads[1:])


def _report(m: dict[str, float], paired: dict[str, float], loads: list[float]) -> None:
    """The ratios (printed with -s, and written to .cache/bench/export-ratios.txt)."""
    ratio = m["make"] / m["durable_copy"]
    lines = [
        f"export make / durable copy                  = {ratio:.2f} (median of per-round "
        f"ratios {paired['durable_copy']:.2f}; target <= 1.3: "
        f"{'met' if ratio <= 1.3 else 'MISSED'})",
        f"export make / (cp+sync+sha256sum+sha512sum) = "
        f"{m['make'] / m['copy_then_digests']:.2f} (median of per-round ratios "
        f"{paired['copy_then_digests']:.2f})",
        f"floor: SHA-512 alone / durable copy        = "
        f"{m['sha512_alone'] / m['durable_copy']:.2f} (median of per-round ratios "
        f"{paired['floor']:.2f}; the least any export computing SHA-512 can take)",
        f"medians of {ROUNDS} interleaved rounds: make {m['make']:.2f} s, cp+sync "
        f"{m['durable_copy']:.2f} s, cp+sync+sha256sum+sha512sum {m['copy_then_digests']:.2f} s, "
        f"SHA-512 alone {m['sha512_alone']:.2f} s",
        f"1-minute load average at each round's start: "
        f"{' '.join(f'{x:.1f}' for x in loads)} on {os.cpu_count()} CPUs",
    ]
    (CACHE / "export-ratios.txt").write_text("\n".join(lines) + "\n")
    print("\n" + "\n".join(lines))
