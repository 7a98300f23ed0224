"""`custody ingest` as a process (issue 9): a SIGKILLed run leaves no process behind and
its staging leftovers are removed by the next run; one mixed dock folder, ingested as a
non-root user, gives every entry its status and reason in one run that never hangs."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import os
import pwd
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.demo import synth
from tests.mediagen import START, Generated
from tests.unixusers import interpreter_for, throwaway_users, why_no_users

ROOT = Path(__file__).resolve().parents[2]


def _parents() -> dict[int, int]:
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                out[int(entry.name)] = int(
                    (entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
    return out


def _descendants(pid: int) -> set[int]:
    parents = _parents()
    found: set[int] = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        for child, parent in parents.items():
            if parent == p and child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_sigkilled_ingest_leaves_no_process_and_the_next_run_removes_its_staging(
    tmp_path: Path,
) -> None:
    src = tmp_path / "dock"
    src.mkdir()
    for i in range(6):
        synth.write_clean(src / f"F{i}.mp4", 20.0 + i, START)
    argv = [sys.executable, "-m", "pipeline.cli", "ingest", str(src), "--store",
            str(tmp_path / "store"), "--catalog", str(tmp_path / "catalog"), "--json",
            "--quiet", "--workers", "2"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    staging = tmp_path / "store" / "tmp"
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    seen: set[int] = set()
    deadline = time.monotonic() + 60
    try:
        # Mid-way: the probe workers are up and a file is being copied into the store.
        while time.monotonic() < deadline and proc.poll() is None:
            seen |= _descendants(proc.pid)
            if len(seen) >= 4 and staging.is_dir() and any(staging.glob("*.part")):
                break
        assert proc.poll() is None, "the run ended before it could be killed"
        seen |= _descendants(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert len(seen) >= 4, seen  # resource tracker, forkserver, two workers
    assert any(staging.glob("*.part"))
    end = time.monotonic() + 10
    while time.monotonic() < end and [p for p in seen if _alive(p)]:
        time.sleep(0.05)
    assert [p for p in seen if _alive(p)] == []
    time.sleep(1.0)  # the store leaves alone a copy changed in the last second
    again = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120,
                           check=False)
    assert again.returncode in (0, 1), again.stderr
    run = json.loads(again.stdout)["run"]
    assert run["staging_removed"] >= 1
    assert run["archived"] + run["already_archived"] == 6
    assert list(staging.iterdir()) == []
    assert list((tmp_path / "catalog" / "staging").iterdir()) == []


# --- the mixed dock folder, as a non-root user ---------------------------------------------


@pytest.fixture(scope="module")
def acting_user() -> Iterator[pwd.struct_passwd]:
    """A throw-away non-root account (removed afterwards)."""
    why = why_no_users()
    if why:
        pytest.skip(why)
    with throwaway_users(["ingest"]) as names:
        yield pwd.getpwnam(names["ingest"])


_IN_OPEN = 0x20


class _OnOpen:
    """Runs an action once the ingest opens a given file of a folder (inotify IN_OPEN)."""

    def __init__(self, folder: Path, name: str, action: object) -> None:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        self.fd = libc.inotify_init1(os.O_CLOEXEC)
        assert self.fd >= 0
        assert libc.inotify_add_watch(self.fd, os.fsencode(folder), _IN_OPEN) >= 0
        self.name, self.action = os.fsencode(name), action
        self.fired = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        while not self.fired.is_set():
            try:
                data = os.read(self.fd, 4096)
            except OSError:
                return
            pos = 0
            while pos < len(data):
                _wd, _mask, _cookie, n = struct.unpack_from("iIII", data, pos)
                name = data[pos + 16:pos + 16 + n].rstrip(b"\0")
                pos += 16 + n
                if name == self.name and not self.fired.is_set():
                    self.action()  # type: ignore[operator]
                    self.fired.set()

    def close(self) -> None:
        os.close(self.fd)


@pytest.fixture
def dock_tmp() -> Iterator[Path]:
    """A tree outside /tmp/pytest-of-root (which is 0700): the acting user must reach it."""
    path = Path(tempfile.mkdtemp(prefix="custody-dock-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_one_mixed_dock_folder_ingests_in_one_run_as_a_non_root_user(
    dock_tmp: Path, clean_recording: Generated, short_recording: Generated,
    interrupted_recording: Generated, acting_user: pwd.struct_passwd,
) -> None:
    user = acting_user
    src = dock_tmp / "dock"
    src.mkdir()

    def copy(g: Generated, name: str | bytes, salt: int) -> Path:
        dst = src / (os.fsdecode(name) if isinstance(name, bytes) else name)
        dst.write_bytes(g.path.read_bytes() + bytes([salt]))
        return dst

    copy(clean_recording, "a1_clean.mp4", 1)
    copy(short_recording, "a2_short.mp4", 2)
    copy(interrupted_recording, "a3_interrupted.mp4", 3)  # a finding: exit 1 regardless
    os.mkfifo(src / "b_pipe.mp4")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(src / "b_socket"))
    (src / "c_dangling.mp4").symlink_to(src / "nowhere.mp4")
    (src / "c_loop.mp4").symlink_to(src / "c_loop.mp4")
    copy(short_recording, b"\xb2\xe2\xca\xd4.mp4", 4)  # 测试.mp4 in GBK
    copy(clean_recording, b"bad\xff\xfe.mp4", 5)  # neither UTF-8 nor GB18030
    victim = copy(short_recording, "zz_deleted.mp4", 6)
    for p in [dock_tmp, *dock_tmp.rglob("*")]:
        os.lchown(p, user.pw_uid, user.pw_gid)
    locked = copy(clean_recording, "d_unreadable.mp4", 7)  # root's, mode 000
    locked.chmod(0)
    os.chmod(dock_tmp, 0o755)
    python = interpreter_for(user.pw_name)
    if python is None:
        pytest.skip(f"no Python runnable by {user.pw_name} with the project's packages")
    argv, pyenv = python
    env = {**pyenv, "HOME": str(dock_tmp), "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "LANG": "C.UTF-8"}
    # Deleted after the listing, before it is opened: when the first file is opened, the
    # listing is done and zz_deleted.mp4 (the last but one) is several files away.
    watch = _OnOpen(src, "a1_clean.mp4", victim.unlink)
    try:
        proc = subprocess.run(
            ["runuser", "-u", user.pw_name, "--", "env", *[f"{k}={v}" for k, v in env.items()],
             *argv, "-m", "pipeline.cli", "ingest", str(src), "--store", str(dock_tmp / "store"),
             "--catalog", str(dock_tmp / "catalog"), "--json", "--quiet", "--workers", "1"],
            cwd=dock_tmp, capture_output=True, text=True, timeout=180, check=False)
    finally:
        watch.close()
        sock.close()
    assert watch.fired.is_set()
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    files = {f["path"].rsplit("/", 1)[1]: f for f in doc["files"]}
    expected = {
        "a1_clean.mp4": ("archived", []),
        "a2_short.mp4": ("archived", []),
        "a3_interrupted.mp4": ("archived", []),
        "b_pipe.mp4": ("skipped", ["FIFO", "not a regular file", "without opening it"]),
        "b_socket": ("skipped", ["a socket", "not a regular file", "without opening it"]),
        "c_dangling.mp4": ("skipped", ["symbolic link", "not followed", "dangling"]),
        "c_loop.mp4": ("skipped", ["symbolic link", "not followed", "loop"]),
        "d_unreadable.mp4": ("failed", ["cannot read: Permission denied"]),
        "zz_deleted.mp4": ("failed", ["vanished after it was listed"]),
        "测试.mp4": ("archived", []),
        "bad\\xff\\xfe.mp4": ("archived", []),
    }
    assert {k: f["status"] for k, f in files.items()} == {k: v[0] for k, v in expected.items()}
    for name, (status, words) in expected.items():
        reason = files[name]["reason"]
        if status == "archived":
            assert reason is None and files[name]["blake3"], name
            continue
        assert reason.startswith(f"{src}/{name}: "), reason
        for word in words:
            assert word in reason, (name, reason)
    assert doc["run"]["files_seen"] == 11 and doc["run"]["exit_code"] == 1
    assert list((dock_tmp / "store" / "tmp").iterdir()) == []
