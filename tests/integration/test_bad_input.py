"""Bad input the night operator meets: a store that fails mid-write, a huge file.

Each names the file and the problem, the batch goes on, and nothing is half-stored."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

from pipeline.demo import synth
from tests.ingesting import run_ingest
from tests.mediagen import START, Generated

ROOT = Path(__file__).resolve().parents[2]


def _ingest(argv: list[str], *, fsize_limit: int | None = None) -> subprocess.CompletedProcess[str]:
    def limit() -> None:  # runs in the child only
        if fsize_limit is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize_limit, fsize_limit))

    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "ingest", *argv, "--json", "--quiet"],
        capture_output=True, text=True, check=False, preexec_fn=limit,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_a_store_write_failing_mid_file_fails_that_file_only_and_leaves_nothing(
    tmp_path: Path, short_recording: Generated
) -> None:
    """The store's disk refuses to grow a file past 256 KiB (as a full disk would)."""
    src = tmp_path / "in"
    src.mkdir()
    small = src / "A_small.mp4"
    small.write_bytes(short_recording.path.read_bytes())
    assert small.stat().st_size < 200_000
    big = synth.write_clean(src / "B_big.mp4", 30.0, START)
    assert big.stat().st_size > 400_000
    store = tmp_path / "store"
    proc = _ingest([str(src), "--store", str(store), "--catalog", str(tmp_path / "catalog")],
                   fsize_limit=256 * 1024)
    assert proc.returncode == 1, proc.stderr  # a failed file is named, the run goes on
    files = {Path(f["path"]).name: f for f in json.loads(proc.stdout)["files"]}
    assert files["A_small.mp4"]["status"] == "archived"
    assert files["B_big.mp4"]["status"] == "failed"
    assert "B_big.mp4" in files["B_big.mp4"]["reason"]
    assert "too large" in files["B_big.mp4"]["reason"].lower()
    objects = [p for p in (store / "objects").rglob("*") if p.is_file()]
    assert [p.name for p in objects] == [files["A_small.mp4"]["blake3"]]
    assert list((store / "tmp").iterdir()) == []


def test_a_huge_sparse_file_is_archived_with_bounded_memory(
    tmp_path: Path, short_recording: Generated
) -> None:
    """2 GiB: a real recording followed by a hole (a card image, a broken recorder)."""
    src = tmp_path / "in"
    src.mkdir()
    huge = src / "HUGE0001.mp4"
    with open(huge, "wb") as fh:
        fh.write(short_recording.path.read_bytes())
        fh.truncate(2 << 30)
    proc = subprocess.run(
        [sys.executable, "-c",
         "import resource, sys\n"
         "from pipeline.cli.main import main\n"
         "code = main(sys.argv[1:])\n"
         # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across execve, so a child of a
         # pytest grown to 700 MB would report the pytest's peak as its own.
         "kib = int(next(l for l in open('/proc/self/status')"
         " if l.startswith('VmHWM:')).split()[1])\n"
         "kib_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
         "print(max(kib, kib_children), file=sys.stderr)\n"
         "sys.exit(code)\n",
         "ingest", str(src), "--store", str(tmp_path / "store"), "--catalog",
         str(tmp_path / "catalog"), "--json", "--quiet"],
        capture_output=True, text=True, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode in (0, 1), proc.stderr
    (f,) = json.loads(proc.stdout)["files"]
    assert f["status"] == "archived" and f["size_bytes"] == 2 << 30
    peak_mib = int(proc.stderr.strip().splitlines()[-1]) / 1024
    assert peak_mib < 600, f"peak RSS {peak_mib:.0f} MiB for a 2 GiB file"


def _probe_workers(pid: int) -> list[int]:
    """Processes forked by a multiprocessing forkserver that `pid` started."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    servers = set()
    for p, pp in parents.items():
        if pp != pid:
            continue
        try:
            if b"forkserver" in Path(f"/proc/{p}/cmdline").read_bytes():
                servers.add(p)
        except OSError:
            continue
    return [p for p, pp in parents.items() if pp in servers]


def test_a_probe_worker_killed_mid_run_loses_no_file(
    tmp_path: Path, clean_recording: Generated, short_recording: Generated,
    interrupted_recording: Generated, audio_recording: Generated,
) -> None:
    """The demuxer's process dies (as FFmpeg would on a hostile file): the pool is rebuilt,
    the file is probed again, and every file of the batch is archived."""
    import datetime as dt
    import threading
    import time

    from pipeline.catalog.core import Catalog
    from pipeline.ingest.run import IngestSettings
    from pipeline.storage.local import LocalStore

    src = tmp_path / "in"
    src.mkdir()
    for i in range(4):
        for g in (clean_recording, short_recording, interrupted_recording, audio_recording):
            data = g.path.read_bytes() + bytes([i])  # distinct bytes, same media
            (src / f"{i}_{g.path.name}").write_bytes(data)
    killed: list[int] = []
    done = threading.Event()

    def killer() -> None:
        while not done.is_set() and not killed:
            for pid in _probe_workers(os.getpid()):
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                except ProcessLookupError:
                    continue
                break
            time.sleep(0.002)

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        result = run_ingest([src], store=LocalStore(tmp_path / "store"),
                        catalog=Catalog(tmp_path / "catalog"),
                        settings=IngestSettings(now=lambda: START + dt.timedelta(hours=1),
                                                probe_workers=1))
    finally:
        done.set()
        thread.join()
    assert killed, "no probe worker was seen to kill"
    assert [f.status for f in result.files] == ["archived"] * 16
    assert not [f for o in result.files for f in o.findings if f.code == "MEDIA_UNREADABLE"]


def test_a_store_that_cannot_stage_fails_each_file_and_the_batch_goes_on(
    tmp_path: Path, short_recording: Generated
) -> None:
    """The store's staging directory has become a file (a broken disk, a wrong mount):
    every file fails naming itself and the problem; nothing is stored or catalogued."""
    import datetime as dt

    from pipeline.catalog.core import Catalog
    from pipeline.ingest.run import FAILED, IngestSettings
    from pipeline.storage.local import LocalStore

    src = tmp_path / "in"
    src.mkdir()
    for name in ("A.mp4", "B.mp4"):
        (src / name).write_bytes(short_recording.path.read_bytes())
    store = LocalStore(tmp_path / "store")
    (tmp_path / "store" / "tmp").rmdir()
    (tmp_path / "store" / "tmp").write_bytes(b"")
    catalog = Catalog(tmp_path / "catalog")
    result = run_ingest([src], store=store, catalog=catalog,
                    settings=IngestSettings(now=lambda: START + dt.timedelta(hours=1)))
    assert [(Path(f.path).name, f.status) for f in result.files] == [
        ("A.mp4", FAILED), ("B.mp4", FAILED)
    ]
    for f in result.files:
        assert Path(f.path).name in f.reason and "cannot stage" in f.reason
    assert [p for p in (tmp_path / "store" / "objects").rglob("*") if p.is_file()] == []
    assert catalog.query("SELECT count(*) AS n FROM recordings").column("n")[0].as_py() == 0
    assert catalog.query(
        "SELECT count(*) AS n FROM ingest_files WHERE status = 'failed'"
    ).column("n")[0].as_py() == 2


def test_a_recording_still_being_written_fails_and_nothing_of_it_is_stored(
    tmp_path: Path, short_recording: Generated
) -> None:
    """A camera dock is still writing one file when ingest copies it: that file fails,
    naming itself and the problem, nothing of it is stored, the other file is archived."""
    import datetime as dt
    import threading
    import time

    from pipeline.catalog.core import Catalog
    from pipeline.ingest.run import ARCHIVED, FAILED, IngestSettings
    from pipeline.storage.local import LocalStore

    src = tmp_path / "in"
    src.mkdir()
    (src / "A_done.mp4").write_bytes(short_recording.path.read_bytes())
    growing = src / "B_writing.mp4"
    with open(growing, "wb") as fh:
        fh.write(short_recording.path.read_bytes())
        fh.truncate(512 * 1024 * 1024)
    staging = tmp_path / "store" / "tmp"
    stop = threading.Event()
    appended = threading.Event()

    def part_sizes() -> list[int]:
        sizes = []
        for part in staging.glob("*.part"):
            # A_done's copy can be committed between the glob and the stat.
            with contextlib.suppress(FileNotFoundError):
                sizes.append(part.stat().st_size)
        return sizes

    def dock_writes_once_the_copy_runs() -> None:
        while not stop.is_set():
            if any(size >= 8 * 1024 * 1024 for size in part_sizes()):
                with open(growing, "ab") as fh:
                    fh.write(b"\0" * 4096)
                appended.set()
                return
            time.sleep(0.0005)

    store = LocalStore(tmp_path / "store")
    catalog = Catalog(tmp_path / "catalog")
    dock = threading.Thread(target=dock_writes_once_the_copy_runs)
    dock.start()
    try:
        result = run_ingest([src], store=store, catalog=catalog,
                        settings=IngestSettings(now=lambda: START + dt.timedelta(hours=1)))
    finally:
        stop.set()
        dock.join()
    assert appended.is_set(), "the dock never saw B_writing.mp4's copy under way"
    files = {Path(f.path).name: f for f in result.files}
    assert files["A_done.mp4"].status == ARCHIVED
    assert files["B_writing.mp4"].status == FAILED
    assert "B_writing.mp4: changed while it was read" in str(files["B_writing.mp4"].reason)
    objects = [p.name for p in (tmp_path / "store" / "objects").rglob("*") if p.is_file()]
    assert objects == [files["A_done.mp4"].blake3]
    assert list(staging.iterdir()) == []
    assert catalog.query("SELECT count(*) AS n FROM recordings").column("n")[0].as_py() == 1
