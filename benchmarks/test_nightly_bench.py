"""The nightly job against what an operator would script (issue 14's benchmarks).

Inputs, generated once and cached under `.cache/bench/nightly-<key>/` (the key covers
everything that decides their bytes):
- **small**: 2,000 files, 1,000 JPEG photos (1920x1080) and 1,000 five-second 720p H.264 +
  AAC clips of ten cameras (`pipeline.demo.synth`, one clip encoded per camera, then
  stream-copied by ffmpeg with each clip's own creation time: consecutive 5 s recordings,
  as a body camera splits them). Each photo carries its own JPEG comment, so all 2,000
  are distinct content.
- **large**: 20 (`CUSTODY_BENCH_LARGE`) one-minute 1080p30 recordings at 6 Mbit/s (the
  benchmark input's minute, `conftest.ensure_input`, stream-copied, each with its own
  creation time), about 45 MB each.

Contenders, each round from fresh directories on the repository's filesystem, the inputs
in the page cache:
- `custody nightly` (local pool; a separate process, as a timer runs it) with the folder
  as its one `[custody.nightly]` source, into an empty local store and catalog; it ingests,
  re-reads each archived copy against its BLAKE3, and records its summary.
- the operator's loop: for each file `ffprobe -show_entries packet=...` (the timestamps),
  `b3sum` and `cp` into a folder, then one `sync`.
- `cp` + `sync` of the whole folder (large files: the durable-copy throughput).
- the same `custody nightly` with `--cluster` on a 2-worker `LocalCluster` (started once,
  outside the timing), against the local pool.

Each pair runs back to back per round, alternating which goes first (`run_paired`), so the
ratios are per round; the session prints files/s, MB/s and the ratios against the targets
(small: nightly >= 15x the loop's files/s; large: nightly >= 1x cp + sync's MB/s; cluster:
<= 1.3x the local pool's time), with the load average, and writes them to
`.cache/bench/nightly-ratios.txt`. `CUSTODY_BENCH_SMALL=400` makes a smaller small set
while working on this file; `CUSTODY_BENCH_LARGE=40` a larger large set (the MB/s of the
files after the first 20: the difference of the two runs, without the fixed start of a
process); `CUSTODY_BENCH_ROUNDS` sets the paired rounds (default 3).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import CACHE, RUNS, Paired, RunDirs, ensure_input, run_paired, warm

REPO = Path(__file__).resolve().parent.parent
CUSTODY = [sys.executable, "-m", "pipeline.cli"]
SMALL = int(os.environ.get("CUSTODY_BENCH_SMALL", "2000"))
LARGE = int(os.environ.get("CUSTODY_BENCH_LARGE", "20"))
CAMERAS = 10
START = dt.datetime(2024, 5, 1, 8, 0, 0, tzinfo=dt.UTC)
FFPROBE_FIELDS = "packet=stream_index,pts,dts,duration,flags,size,pos"
# Paired rounds; the loop alone takes minutes on 2,000 files (CUSTODY_BENCH_ROUNDS=1 for one).
ROUNDS_SMALL = ROUNDS_LARGE = ROUNDS_CLUSTER = int(os.environ.get("CUSTODY_BENCH_ROUNDS", "3"))
TARGET_SMALL_X, TARGET_LARGE_X, TARGET_CLUSTER_X = 15.0, 1.0, 1.3

# The operator's script: per file the packet timestamps, the BLAKE3 and a copy; one sync.
LOOP = ('for f in "$SRC"/*; do '
        f'ffprobe -v error -show_entries {FFPROBE_FIELDS} -of csv=p=0 "$f" >/dev/null '
        '|| exit 1; b3sum --no-names "$f" >/dev/null || exit 1; cp "$f" "$DST"/ || exit 1; '
        "done; sync")
COPY = 'cp "$SRC"/* "$DST"/ && sync'


# --- the corpus -------------------------------------------------------------------------
@dataclass(frozen=True)
class Corpus:
    folder: Path
    files: int
    size_bytes: int

    @property
    def mb(self) -> float:
        return self.size_bytes / 1e6


def _ffmpeg() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        pytest.skip("ffmpeg not installed")
    return path


def _key(**params: Any) -> str:
    from pipeline.demo import synth

    version = subprocess.run([_ffmpeg(), "-version"], capture_output=True, text=True,
                             check=True).stdout.splitlines()[0]
    doc = {**params, "ffmpeg": version,
           "synth": hashlib.sha256(Path(synth.__file__).read_bytes()).hexdigest()}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _retime(ffmpeg: str, src: Path, dst: Path, when: dt.datetime) -> None:
    """A stream copy of `src` whose container says it was recorded at `when`."""
    subprocess.run([ffmpeg, "-v", "error", "-y", "-i", str(src), "-map", "0", "-c", "copy",
                    "-map_metadata", "0", "-metadata",
                    f"creation_time={when.strftime('%Y-%m-%dT%H:%M:%S.000000Z')}",
                    "-f", "mp4", str(dst)], check=True)


def _with_comment(jpeg: bytes, text: str) -> bytes:
    """The JPEG with a COM segment after SOI: the same picture, other bytes."""
    assert jpeg[:2] == b"\xff\xd8"
    body = text.encode()
    return jpeg[:2] + b"\xff\xfe" + (len(body) + 2).to_bytes(2, "big") + body + jpeg[2:]


def _make_small(tmp: Path) -> None:
    from pipeline.demo import synth

    ffmpeg = _ffmpeg()
    enc = synth.Encoding(width=1280, height=720, fps=30, gop_s=1, preset="ultrafast",
                         video_bit_rate=2_000_000)
    photo = synth.write_still(tmp / "photo.jpg", START, width=1920, height=1080).read_bytes()
    clips = SMALL // 2
    for cam in range(CAMERAS):
        base = tmp / f"base{cam}.mp4"
        synth.write_clean(base, 5.0, START, camera=synth.Camera(serial=f"SYN{cam:07d}"),
                          encoding=enc)
        for i in range(cam, clips, CAMERAS):
            when = START + dt.timedelta(seconds=5 * (i // CAMERAS))
            _retime(ffmpeg, base, tmp / f"CAM{cam:02d}_{when:%Y%m%d%H%M%S}.mp4", when)
        base.unlink()
    for i in range(SMALL - clips):
        (tmp / f"IMG_{i:05d}.jpg").write_bytes(_with_comment(photo, f"custody bench {i}"))
    (tmp / "photo.jpg").unlink()


def _make_large(tmp: Path) -> None:
    ffmpeg = _ffmpeg()
    ensure_input()  # makes (or finds) the cached one-minute encode beside the long input
    (minute,) = sorted(CACHE.glob("minute-*.mp4"))
    for i in range(LARGE):
        when = START + dt.timedelta(minutes=i)
        _retime(ffmpeg, minute, tmp / f"CAM99_{when:%Y%m%d%H%M%S}.mp4", when)


def _corpus(kind: str, make: Callable[[Path], None], **params: Any) -> Corpus:
    final = CACHE / f"nightly-{kind}-{_key(kind=kind, **params)}"
    if not final.exists():
        tmp = CACHE / f".tmp-{uuid.uuid4().hex[:8]}-nightly-{kind}"
        tmp.mkdir(parents=True)
        try:
            make(tmp)
            os.sync()
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        for old in CACHE.glob(f"nightly-{kind}-*"):
            if old != final:
                shutil.rmtree(old, ignore_errors=True)
    files = sorted(final.iterdir())
    for f in files:
        warm(f)
    return Corpus(final, len(files), sum(f.stat().st_size for f in files))


@pytest.fixture(scope="module")
def small() -> Corpus:
    c = _corpus("small", _make_small, files=SMALL, cameras=CAMERAS, clip_s=5,
                clip="1280x720 2Mbit/s ultrafast", photo="1920x1080", version=1)
    assert c.files == SMALL
    return c


@pytest.fixture(scope="module")
def large() -> Corpus:
    minute = sorted(p.name for p in CACHE.glob("minute-*.mp4"))
    c = _corpus("large", _make_large, files=LARGE, minute=minute, version=1)
    assert c.files == LARGE
    return c


# --- the contenders ------------------------------------------------------------------------
def _config(root: Path, source: Path, cluster: str | None = None) -> Path:
    cfg = root / "custody.toml"
    lines = ["[custody]", f'store = "{root / "store"}"', f'catalog = "{root / "catalog"}"',
             "[custody.nightly]", f'sources = ["{source}"]']
    if cluster:
        lines.append(f'cluster = "{cluster}"')
    cfg.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg.chmod(0o600)
    return cfg


def _env(root: Path) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", ""), "HOME": str(root), "LANG": "C.UTF-8"}


@dataclass
class Run:
    """One contender's run: prepared (untimed), then `action` is timed; `check` after."""

    dirs: RunDirs
    last: dict[str, Any]

    def nightly(self, source: Path, cluster: str | None = None) -> Callable[[], object]:
        root = self.dirs.fresh()
        cfg = _config(root, source, cluster)

        def action() -> None:
            got = subprocess.run([*CUSTODY, "nightly", "--config", str(cfg), "--json"],
                                 cwd=REPO, env=_env(root), capture_output=True, text=True)
            assert got.returncode in (0, 1), got.stderr[-3000:]
            self.last["nightly"] = json.loads(got.stdout)

        return action

    def shell(self, script: str, source: Path) -> Callable[[], object]:
        root = self.dirs.fresh()
        (root / "copy").mkdir()

        def action() -> None:
            subprocess.run(["sh", "-c", script], check=True, capture_output=True,
                           env={**_env(root), "SRC": str(source), "DST": str(root / "copy")})
            self.last["copied"] = len(os.listdir(root / "copy"))

        return action


@pytest.fixture
def runs(request: pytest.FixtureRequest) -> Iterator[tuple[Run, Run]]:
    RUNS.mkdir(parents=True, exist_ok=True)
    label = request.node.name
    a, b = RunDirs(f"{label}-ours"), RunDirs(f"{label}-peer")
    try:
        yield Run(a, {}), Run(b, {})
    finally:
        a.close()
        b.close()


_LINES: list[str] = []


@pytest.fixture(scope="module", autouse=True)
def _report(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if not _LINES:
        return
    lines = [*_LINES, f"1-minute load average at the end: {os.getloadavg()[0]:.1f} on "
             f"{os.cpu_count()} CPUs"]
    (CACHE / "nightly-ratios.txt").write_text("\n".join(lines) + "\n")
    tr = request.config.pluginmanager.getplugin("terminalreporter")
    if tr is not None:
        tr.write_sep("-", "custody nightly benchmarks")
        for line in lines:
            tr.write_line(line)


def _rate(c: Corpus, seconds: float) -> str:
    return f"{c.files / seconds:.1f} files/s, {c.mb / seconds:.1f} MB/s ({seconds:.2f} s)"


def _record(benchmark: Any, c: Corpus, paired: Paired, ours: str, peer: str) -> None:
    o, p = statistics.median(paired.ours), statistics.median(paired.peer)
    benchmark.extra_info.update({
        "files": c.files, "mb": round(c.mb, 1),
        f"{ours}_files_per_s": round(c.files / o, 2), f"{ours}_mb_per_s": round(c.mb / o, 2),
        f"{peer}_files_per_s": round(c.files / p, 2), f"{peer}_mb_per_s": round(c.mb / p, 2),
        "loadavg_1m_after": round(os.getloadavg()[0], 2)})
    _LINES.append(f"  {ours:<22} {_rate(c, o)}")
    _LINES.append(f"  {peer:<22} {_rate(c, p)}")


def _check_nightly(doc: dict[str, Any], c: Corpus) -> None:
    run = doc["run"]
    assert (run["files_seen"], run["archived"], run["failed"]) == (c.files, c.files, 0), run
    assert run["verified"] == c.files, run


# --- the benchmarks ------------------------------------------------------------------------
def test_small_files_nightly_against_the_operators_loop(
    benchmark: Any, small: Corpus, runs: tuple[Run, Run]
) -> None:
    ours, peer = runs
    paired = run_paired(benchmark, lambda: ours.nightly(small.folder),
                        lambda: peer.shell(LOOP, small.folder),
                        rounds=ROUNDS_SMALL, warmup=0)
    _check_nightly(ours.last["nightly"], small)
    assert peer.last["copied"] == small.files
    speedup = statistics.median(1 / r for r in paired.ratios)
    ok = "met" if speedup >= TARGET_SMALL_X else "MISSED"
    _LINES.append(f"small ({small.files} files, {small.mb:.0f} MB): nightly / loop files/s = "
                  f"{speedup:.1f}x (target >= {TARGET_SMALL_X:g}x: {ok}; median of "
                  f"{len(paired.ratios)} paired rounds)")
    _record(benchmark, small, paired, "nightly (local pool)", "ffprobe+b3sum+cp loop")


def test_large_files_nightly_against_cp_and_sync(
    benchmark: Any, large: Corpus, runs: tuple[Run, Run]
) -> None:
    ours, peer = runs
    paired = run_paired(benchmark, lambda: ours.nightly(large.folder),
                        lambda: peer.shell(COPY, large.folder),
                        rounds=ROUNDS_LARGE, warmup=0)
    _check_nightly(ours.last["nightly"], large)
    assert peer.last["copied"] == large.files
    speedup = statistics.median(1 / r for r in paired.ratios)
    ok = "met" if speedup >= TARGET_LARGE_X else "MISSED"
    _LINES.append(f"large ({large.files} files, {large.mb:.0f} MB): nightly / (cp + sync) "
                  f"MB/s = {speedup:.2f}x (target >= {TARGET_LARGE_X:g}x: {ok}; median of "
                  f"{len(paired.ratios)} paired rounds)")
    _record(benchmark, large, paired, "nightly (local pool)", "cp + sync")


@pytest.fixture(scope="module")
def local_cluster() -> Iterator[str]:
    pytest.importorskip("distributed")
    from tests.clusters import local_cluster

    with local_cluster() as cluster:  # under infra/dask/custody.yaml, as a real cluster
        yield str(cluster.scheduler_address)


def test_small_files_on_a_two_worker_cluster_against_the_local_pool(
    benchmark: Any, small: Corpus, runs: tuple[Run, Run], local_cluster: str
) -> None:
    ours, peer = runs
    paired = run_paired(benchmark, lambda: ours.nightly(small.folder, local_cluster),
                        lambda: peer.nightly(small.folder),
                        rounds=ROUNDS_CLUSTER, warmup=0)
    _check_nightly(ours.last["nightly"], small)
    _check_nightly(peer.last["nightly"], small)
    assert ours.last["nightly"]["run"]["executor"].startswith("cluster:")
    ratio = paired.median_ratio
    ok = "met" if ratio <= TARGET_CLUSTER_X else "MISSED"
    _LINES.append(f"small on a 2-worker LocalCluster / local pool time = {ratio:.2f} (target "
                  f"<= {TARGET_CLUSTER_X:g}: {ok}; median of {len(paired.ratios)} paired "
                  "rounds)")
    _record(benchmark, small, paired, "nightly (cluster)", "nightly (local pool)")
