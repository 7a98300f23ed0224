"""`custody nightly` on the local pool: sources from the config, labels per source, a copy
verified before its source moves, the summary in the catalog, one run at a time, resume
after SIGKILL."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import blake3
import pytest

from pipeline.catalog.core import Catalog
from pipeline.cli.main import main
from pipeline.demo import synth
from pipeline.jobs.config import NightlySource
from pipeline.jobs.settle import move_to_done
from tests.mediagen import START

ROOT = Path(__file__).resolve().parents[2]


def _config(tmp: Path, dock: Path, done: Path, *, extra: str = "") -> Path:
    cfg = tmp / "custody.toml"
    cfg.write_text(
        f'[custody]\nstore = "{tmp / "store"}"\ncatalog = "{tmp / "catalog"}"\n'
        f'[custody.nightly]\nsources = [{{ path = "{dock}", labels = "labels-*.csv", '
        f'done = "{done}" }}]\n{extra}', encoding="utf-8")
    return cfg


def _cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), env={}, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def _b3(path: Path) -> str:
    return blake3.blake3(path.read_bytes()).hexdigest()


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def _store_objects(tmp: Path) -> int:
    return sum(1 for p in (tmp / "store" / "objects").rglob("*") if p.is_file())


@pytest.fixture()
def dock(tmp_path: Path) -> Path:
    d = tmp_path / "dock"
    (d / "sub").mkdir(parents=True)
    synth.write_clean(d / "REC0000.mp4", 2.0, START)
    synth.write_clean(d / "sub" / "REC0001.mp4", 2.0, START.replace(minute=5))
    synth.write_still(d / "photo.jpg", START)
    (d / "notes.txt").write_text("not media", encoding="utf-8")
    (d / "labels-1.csv").write_text("file,case_number\nREC0000.mp4,大柘综执罚〔2024〕1号\n",
                                    encoding="utf-8")
    return d


def test_nightly_archives_verifies_moves_and_records_its_summary(
    tmp_path: Path, dock: Path
) -> None:
    done = tmp_path / "done"
    digests = {n: _b3(dock / n) for n in ("REC0000.mp4", "sub/REC0001.mp4", "photo.jpg")}
    sizes = sum((dock / n).stat().st_size for n in digests)
    cfg = _config(tmp_path, dock, done)
    code, out, err = _cli("nightly", "--config", str(cfg), "--json", "--workers", "1")
    doc = json.loads(out)
    run = doc["run"]
    assert code == 1, err  # the files' findings (labels, AV-12 deadline)
    assert (run["files_seen"], run["archived"], run["already_archived"], run["skipped"],
            run["failed"]) == (4, 3, 0, 1, 0)  # the labels file is read, not ingested
    assert (run["verified"], run["moved"], run["left_in_place"]) == (3, 3, [])
    assert run["bytes_read"] == sizes
    assert run["rejects"] == [{
        "path": str(dock / "notes.txt"), "status": "skipped",
        "reason": f"{dock / 'notes.txt'}: not a media file (no known audio, video or image "
                  "signature)"}]
    assert (run["store_state"], run["error"], run["exit_code"]) == ("reachable", None, 1)
    # Moved: exactly the archived files, keeping their place below the source.
    assert _files(done) == set(digests)
    assert {n: _b3(done / n) for n in digests} == digests
    assert _files(dock) == {"notes.txt", "labels-1.csv"}
    cat = Catalog(tmp_path / "catalog")
    rows = cat.query("SELECT file_name, blake3, case_number FROM recordings "
                     "ORDER BY file_name").to_pylist()
    assert [(r["file_name"], r["blake3"], r["case_number"]) for r in rows] == [
        ("REC0000.mp4", digests["REC0000.mp4"], "大柘综执罚〔2024〕1号"),
        ("REC0001.mp4", digests["sub/REC0001.mp4"], None),
        ("photo.jpg", digests["photo.jpg"], None)]
    by_rule = {r["rule"]: r["n"] for r in cat.query(
        "SELECT rule, count(*) AS n FROM findings GROUP BY rule").to_pylist()}
    assert run["findings_by_rule"] == by_rule
    late = cat.query("SELECT count(DISTINCT recording_blake3) AS n FROM findings "
                     "WHERE code = 'INGEST_LATE'").column("n")[0].as_py()
    assert late == 2  # the two videos, recorded in 2024; the photo's time is unknown
    assert run["late_uploads"] == [str(dock / "REC0000.mp4"), str(dock / "sub/REC0001.mp4")]
    assert run["findings_by_code"] == {
        "GAP_BETWEEN_FILES": 1, "INGEST_LATE": 2, "LABEL_INCOMPLETE": 1, "LABEL_MISSING": 2,
        "RECORDING_TIME_UNKNOWN": 1}
    (rec,) = cat.query("SELECT * FROM nightly_runs").to_pylist()
    assert (rec["run_id"], rec["archived"], rec["skipped"], rec["moved"], rec["verified"],
            rec["exit_code"], rec["executor"], rec["bytes_read"]) == (
        run["run_id"], 3, 1, 3, 3, 1, "local:1", sizes)
    assert json.loads(rec["findings_by_rule"]) == by_rule
    assert rec["rejects"] == [run["rejects"][0]["reason"]]
    (ingest_run,) = cat.query("SELECT DISTINCT run_id FROM ingest_runs").to_pylist()
    assert ingest_run["run_id"] == run["run_id"]


def test_a_second_night_finds_nothing_new_and_moves_nothing(tmp_path: Path, dock: Path) -> None:
    cfg = _config(tmp_path, dock, tmp_path / "done")
    assert _cli("nightly", "--config", str(cfg), "--quiet")[0] == 1
    code, out, _ = _cli("nightly", "--config", str(cfg), "--json")
    run = json.loads(out)["run"]
    assert (code, run["files_seen"], run["archived"], run["moved"]) == (0, 1, 0, 0)
    assert Catalog(tmp_path / "catalog").query(
        "SELECT count(*) AS n FROM nightly_runs").column("n")[0].as_py() == 2


def test_a_file_modified_after_the_run_started_is_archived_but_left_in_place(
    tmp_path: Path, dock: Path
) -> None:
    late = dock / "photo.jpg"
    future = time.time() + 3600
    os.utime(late, (future, future))  # a dock still writing it, as far as the clock says
    code, out, _ = _cli("nightly", "--config", str(_config(tmp_path, dock, tmp_path / "done")),
                        "--json")
    run = json.loads(out)["run"]
    assert code == 1  # the videos' findings; a file left in place is not one
    assert (run["archived"], run["verified"], run["moved"]) == (3, 3, 2)
    assert run["left_in_place"] == [
        f"{late}: not moved: modified after the run started; the next run reads it"]
    assert late.exists()


def test_a_crash_between_link_and_unlink_is_finished_by_unlinking(tmp_path: Path) -> None:
    src, done = tmp_path / "dock", tmp_path / "done"
    src.mkdir()
    done.mkdir()
    f = src / "a.mp4"
    f.write_bytes(b"x" * 10)
    os.link(f, done / "a.mp4")  # the state a kill after the link leaves
    old = START.replace(year=2100)
    assert move_to_done(str(f), NightlySource(str(src), done=str(done)), 10, old) is None
    assert not f.exists() and (done / "a.mp4").read_bytes() == b"x" * 10


def test_another_file_of_the_same_name_in_done_is_never_replaced(tmp_path: Path) -> None:
    src, done = tmp_path / "dock", tmp_path / "done"
    src.mkdir()
    done.mkdir()
    (src / "a.mp4").write_bytes(b"new")
    (done / "a.mp4").write_bytes(b"old")
    why = move_to_done(str(src / "a.mp4"), NightlySource(str(src), done=str(done)), 3,
                       START.replace(year=2100))
    assert why == (f"{src / 'a.mp4'}: not moved: {done / 'a.mp4'} exists and is another "
                   "file; nothing was replaced")
    assert (done / "a.mp4").read_bytes() == b"old" and (src / "a.mp4").read_bytes() == b"new"


@pytest.mark.parametrize(("extra", "message"), [
    ('colour = "blue"\n', "unknown key 'nightly.colour'"),
    ('sources = [{ path = "/x", dne = "/y" }]\n', "unknown key 'dne'"),
])
def test_an_unknown_nightly_key_is_exit_2_naming_it_and_the_file(
    tmp_path: Path, extra: str, message: str
) -> None:
    cfg = tmp_path / "custody.toml"
    cfg.write_text(f"[custody.nightly]\n{extra}", encoding="utf-8")
    code, _, err = _cli("nightly", "--config", str(cfg))
    assert code == 2 and message in err and str(cfg) in err


def test_no_sources_is_exit_2_saying_where_to_set_them(tmp_path: Path) -> None:
    cfg = tmp_path / "custody.toml"
    cfg.write_text(f'[custody]\ncatalog = "{tmp_path / "cat"}"\nstore = "{tmp_path / "st"}"\n',
                   encoding="utf-8")
    code, _, err = _cli("nightly", "--config", str(cfg))
    assert code == 2
    assert "no sources; set `sources = [...]` in [custody.nightly]" in err


# --- killed, restarted, and started twice ------------------------------------------------
N_FILES = 16


def _nightly_cmd(cfg: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pipeline.cli", "nightly", "--config", str(cfg),
            "--workers", "1", "--batch-files", "2", *extra]


def _waiting(cmd: list[str]) -> list[str]:
    """`cmd` (python -m pipeline.cli ...) with everything imported first, started by a
    line on stdin: the command itself then begins within milliseconds."""
    return [cmd[0], "-c", "import sys; from pipeline.cli.main import main; "
            "sys.stdin.readline(); sys.exit(main(sys.argv[1:]))", *cmd[3:]]


def _go(waiting: subprocess.Popen[str]) -> str:
    """Start a `_waiting` command now; its stderr once it ends."""
    waiting.stdin.write("go\n")  # type: ignore[union-attr]
    waiting.stdin.flush()  # type: ignore[union-attr]
    return waiting.communicate(timeout=60)[1]


def _reap(*procs: subprocess.Popen[str]) -> None:
    """Kill what a failed test left running (these processes only)."""
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


def _env() -> dict[str, Any]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _committed(tmp: Path) -> int:
    path = tmp / "catalog" / "commits.jsonl"
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.mark.slow
def test_sigkill_then_restart_loses_nothing_duplicates_nothing_moves_only_verified(
    tmp_path: Path
) -> None:
    dock, done = tmp_path / "dock", tmp_path / "done"
    dock.mkdir()
    for i in range(N_FILES):
        synth.write_clean(dock / f"REC{i:04d}.mp4", 2.0, START.replace(minute=i))
    digests = {p.name: _b3(p) for p in dock.iterdir()}
    cfg = _config(tmp_path, dock, done)
    proc = subprocess.Popen(_nightly_cmd(cfg, "--quiet"), env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while _committed(tmp_path) < 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    cat = Catalog(tmp_path / "catalog")
    first = cat.query("SELECT count(*) AS n FROM recordings").column("n")[0].as_py()
    assert 0 < first < N_FILES, "the kill did not land mid-run"
    # Nothing is moved before the run's commit and the read-back: every source is still there.
    assert _files(dock) == set(digests) and not done.exists()

    # The restart; and while it holds the lock, a second start exits at once, exit 2 (its
    # interpreter and imports were loaded before; a line on stdin starts the command).
    second = subprocess.Popen(_waiting(_nightly_cmd(cfg)), env=_env(), text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    rerun = subprocess.Popen(_nightly_cmd(cfg, "--json"), env=_env(), text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        lock = tmp_path / "catalog" / "nightly.lock"
        deadline = time.monotonic() + 120
        while rerun.poll() is None and time.monotonic() < deadline and not (
                lock.exists() and f"pid {rerun.pid} " in lock.read_text()):
            time.sleep(0.005)
        second_err = _go(second)
        assert rerun.poll() is None, "the restart ended before the second start"
        rerun_out, rerun_err = rerun.communicate(timeout=300)
    finally:
        _reap(rerun, second)
    assert second.returncode == 2
    assert "another custody nightly is running on this catalog (pid " \
        f"{rerun.pid} on " in second_err
    assert second_err.endswith("this start exits without doing anything\n")
    assert rerun.returncode == 1, rerun_err  # AV-12 findings of footage from 2024
    run = json.loads(rerun_out)["run"]
    assert (run["already_archived"], run["archived"], run["failed"]) == (
        first, N_FILES - first, 0)
    assert (run["verified"], run["moved"]) == (N_FILES, N_FILES)
    rec = cat.query("SELECT blake3, count(*) AS n FROM recordings GROUP BY blake3").to_pylist()
    assert sorted(r["blake3"] for r in rec) == sorted(digests.values())
    assert all(r["n"] == 1 for r in rec)
    assert _store_objects(tmp_path) == N_FILES
    assert {n: _b3(done / n) for n in _files(done)} == digests
    assert _files(dock) == set()
    runs = cat.query("SELECT run_id, exit_code FROM nightly_runs").to_pylist()
    assert [r["exit_code"] for r in runs] == [1]  # the killed run recorded nothing


def test_off_a_terminal_the_run_logs_one_json_object_per_line_to_stderr(
    tmp_path: Path, dock: Path
) -> None:
    code, out, err = _cli("nightly", "--config", str(_config(tmp_path, dock, tmp_path / "done")))
    lines = [json.loads(line) for line in err.splitlines()]
    events = [e["event"] for e in lines]
    assert code == 1
    assert events[0] == "nightly.started" and events[-3:] == [
        "nightly.compaction", "nightly.finished", "nightly.reject"]
    assert set(events[1:-3]) == {"nightly.progress"}
    assert all(list(e)[:3] == ["timestamp", "level", "event"] for e in lines)
    compaction, finished, reject = lines[-3:]
    assert (compaction["state"], compaction["most_small_parts"]) == ("not due", 0)
    assert finished["compaction"]["state"] == "not due"
    assert (finished["archived"], finished["moved"], finished["exit_code"]) == (3, 3, 1)
    assert (reject["level"], reject["path"]) == ("warning", str(dock / "notes.txt"))
    assert lines[-4]["files_done"] == lines[-4]["files"] == 4
    assert "nightly run " in out and "moved 3 to the done folder" in out
    assert ("catalog compaction: not due: no table has 64 small parts to merge "
            "(compact_after_parts; at most 0)\n") in out  # one batch: a part a table


# --- a pool worker killed mid-run ----------------------------------------------------------
def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _grandchildren() -> set[int]:
    """The processes this test process's children started (a forkserver's workers; the
    forkserver is started once per process and may be older than this test)."""
    return {w for c in _children(os.getpid()) for w in _children(c)}


def _pool_workers(before: set[int]) -> list[int]:
    return sorted(_grandchildren() - before)


@pytest.mark.slow
def test_a_pool_worker_killed_mid_run_and_every_file_is_archived_exactly_once(
    tmp_path: Path
) -> None:
    import threading

    dock, done = tmp_path / "dock", tmp_path / "done"
    dock.mkdir()
    for i in range(N_FILES):
        synth.write_clean(dock / f"REC{i:04d}.mp4", 2.0, START.replace(minute=i))
    digests = sorted(_b3(p) for p in dock.iterdir())
    cfg = _config(tmp_path, dock, done)
    before = _grandchildren()
    result: dict[str, Any] = {}

    def run() -> None:
        result["code"], result["out"], result["err"] = _cli(
            "nightly", "--config", str(cfg), "--json", "--workers", "2", "--batch-files", "2")

    driver = threading.Thread(target=run)
    driver.start()
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and driver.is_alive() and time.monotonic() < deadline:
        workers = _pool_workers(before)
        if workers and _committed(tmp_path) >= 2:
            killed = workers[0]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.005)
    driver.join(timeout=300)
    assert killed is not None, "the run ended before a worker could be killed"
    assert result["out"], result["err"]
    run = json.loads(result["out"])["run"]
    assert result["code"] == 1, result["err"]
    assert (run["archived"], run["already_archived"], run["failed"], run["verified"],
            run["moved"]) == (N_FILES, 0, 0, N_FILES, N_FILES)
    rec = Catalog(tmp_path / "catalog").query(
        "SELECT blake3, count(*) AS n FROM recordings GROUP BY blake3").to_pylist()
    assert sorted(r["blake3"] for r in rec) == digests and {r["n"] for r in rec} == {1}
    assert _store_objects(tmp_path) == N_FILES


def test_the_exit_code_says_which_night_it_was() -> None:
    """0 clean, 1 a file not archived, 2 the run failed, the store failed during it, or
    the catalog did not take the summary (pure: the summary alone decides)."""
    from pipeline.ingest.outcome import FAILED, FileOutcome
    from pipeline.jobs.summary import NightlySummary

    def night(**kw: Any) -> NightlySummary:
        return NightlySummary(run_id="r", started_at_utc=START, finished_at_utc=START,
                              executor="local:1", sources=[], store_uri="file:///s", **kw)

    assert night().exit_code() == 0
    assert night(files=[FileOutcome("/d/a.mp4", FAILED, reason="x")]).exit_code() == 1
    assert night(error="store self-test failed").exit_code() == 2
    assert night(store_state="failed during the run: connection refused").exit_code() == 2
    assert night(recorded="not recorded: CatalogError: disk full").exit_code() == 2
