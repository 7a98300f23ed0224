"""Real dock folders (issue 9 items 1-4): byte names, special files, symbolic links, files
that vanish, faults in each stage of a file's work. Nothing in a folder stops the batch,
every entry gets a status and a reason, and nothing is half-stored."""

from __future__ import annotations

import base64
import datetime as dt
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.catalog.core import Catalog
from pipeline.ingest.run import ARCHIVED, FAILED, SKIPPED, IngestSettings, RunResult
from pipeline.people.permissions import open_authority
from pipeline.progress import Tick
from pipeline.storage.local import LocalStore
from schemas.audit import AuditRecord
from tests.ingesting import run_ingest
from tests.mediagen import START, Generated

NOW = START + dt.timedelta(hours=1)
GBK = b"\xb2\xe2\xca\xd4.mp4"  # 测试.mp4 in GBK
BAD = b"bad\xff\xfe.mp4"  # neither UTF-8 nor GB18030


def _name(raw: bytes) -> str:
    return os.fsdecode(raw)


def _copy(src: Generated, dst: Path, salt: int) -> Path:
    dst.write_bytes(src.path.read_bytes() + bytes([salt]))  # distinct bytes, same media
    return dst


def _run(sources: list[Path], tmp: Path, **kw: Any) -> RunResult:
    progress = kw.pop("progress", None)
    return run_ingest(sources, store=LocalStore(tmp / "store"), catalog=Catalog(tmp / "catalog"),
                      settings=IngestSettings(now=lambda: NOW, **kw), progress=progress)


def _audit(tmp: Path) -> list[AuditRecord]:
    with open_authority(Catalog(tmp / "catalog"), LocalStore(tmp / "store"),
                        lambda: NOW) as auth:
        return list(auth.audit.records())


def _by_name(result: RunResult) -> dict[str, Any]:
    return {o.display_name: o for o in result.files}


def _stored(tmp: Path) -> list[str]:
    return sorted(p.name for p in (tmp / "store" / "objects").rglob("*") if p.is_file())


@pytest.fixture
def unblock_fifos() -> Iterator[list[Path]]:
    """FIFOs a test makes; should ingest ever open one, a writer appears after 20 s, so
    the test fails on its assertions instead of hanging."""
    fifos: list[Path] = []
    done = threading.Event()

    def writer() -> None:
        if done.wait(20):
            return
        for fifo in fifos:
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                continue  # nobody has it open for reading: good
            os.close(fd)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    yield fifos
    done.set()
    thread.join()


# --- item 1: names are bytes ------------------------------------------------------------


def test_gbk_and_invalid_byte_names_are_catalogued_by_display_form_and_exact_bytes(
    tmp_path: Path, clean_recording: Generated, short_recording: Generated
) -> None:
    src = tmp_path / "dock"
    src.mkdir()
    gbk = _copy(clean_recording, src / _name(GBK), 1)
    bad = _copy(short_recording, src / _name(BAD), 2)
    labels = tmp_path / "labels.csv"
    labels.write_bytes("文件,案号,被检查单位,执法人员,开始时间\n"
                       "测试.mp4,遂综执检2026-31,大柘镇某某餐馆,ZF0101,2024-05-01T16:00:00+08:00\n"
                       .encode("gb18030"))
    result = _run([src], tmp_path, labels_path=str(labels))
    assert result.labels_encoding == "gb18030"
    assert {o.display_name: o.status for o in result.files} == {
        "测试.mp4": ARCHIVED, "bad\\xff\\xfe.mp4": ARCHIVED}
    catalog = Catalog(tmp_path / "catalog")
    rows = catalog.query("SELECT file_name, file_name_bytes, source_path, source_path_bytes, "
                         "case_number FROM recordings ORDER BY file_name").to_pylist()
    assert [(r["file_name"], r["file_name_bytes"], r["case_number"]) for r in rows] == [
        ("bad\\xff\\xfe.mp4", BAD, None), ("测试.mp4", GBK, "遂综执检2026-31")]
    assert [r["source_path_bytes"] for r in rows] == [
        os.fsencode(bad.resolve()), os.fsencode(gbk.resolve())]
    assert rows[1]["source_path"] == f"{src.resolve()}/测试.mp4"
    # Found by the exact bytes, as an analyst would look one up.
    (hit,) = catalog.query(
        "SELECT file_name FROM recordings WHERE file_name_bytes = "
        "'\\xB2\\xE2\\xCA\\xD4.mp4'::BLOB").to_pylist()
    assert hit == {"file_name": "测试.mp4"}
    files = catalog.query("SELECT source_path, source_path_bytes FROM ingest_files "
                          "ORDER BY source_path").to_pylist()
    assert [(f["source_path"], f["source_path_bytes"]) for f in files] == [
        (f"{src}/bad\\xff\\xfe.mp4", os.fsencode(bad)), (f"{src}/测试.mp4", os.fsencode(gbk))]
    found = catalog.query("SELECT DISTINCT source_path_bytes FROM findings").column(0)
    assert set(found.to_pylist()) <= {os.fsencode(bad), os.fsencode(gbk)}
    # The audit log names each by its display form and keeps its bytes.
    reasons = [r.reason for r in _audit(tmp_path)]
    for shown, raw in ((f"{src}/测试.mp4", gbk), (f"{src}/bad\\xff\\xfe.mp4", bad)):
        b64 = base64.b64encode(os.fsencode(raw)).decode()
        assert any(r.startswith(f"archived: {shown} [name bytes base64 {b64}]")
                   for r in reasons), reasons
    # The JSON document is UTF-8 text and gives the bytes back.
    doc = result.as_json()
    by_path = {f["path"]: base64.b64decode(f["path_b64"]) for f in doc["files"]}
    assert by_path == {f"{src}/测试.mp4": os.fsencode(gbk),
                       f"{src}/bad\\xff\\xfe.mp4": os.fsencode(bad)}


# --- item 2: only regular files are opened ------------------------------------------------


def test_fifos_sockets_and_devices_are_skipped_without_being_opened(
    tmp_path: Path, clean_recording: Generated, unblock_fifos: list[Path]
) -> None:
    src = tmp_path / "dock"
    src.mkdir()
    _copy(clean_recording, src / "A.mp4", 1)
    os.mkfifo(src / "B_pipe.mp4")
    unblock_fifos.append(src / "B_pipe.mp4")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(src / "C_socket"))
    expected = {"A.mp4": ARCHIVED, "B_pipe.mp4": SKIPPED, "C_socket": SKIPPED}
    try:
        os.mknod(src / "D_null", 0o600 | 0o020000, os.makedev(1, 3))
        expected["D_null"] = SKIPPED
    except PermissionError:
        pass  # not root: no device node here
    try:
        result = _run([src], tmp_path)
    finally:
        sock.close()
    got = _by_name(result)
    assert {k: o.status for k, o in got.items()} == expected
    assert got["B_pipe.mp4"].reason == (
        f"{src}/B_pipe.mp4: a FIFO (named pipe), not a regular file: skipped without "
        "opening it")
    assert "a socket, not a regular file" in got["C_socket"].reason
    if "D_null" in got:
        assert "a character device, not a regular file" in got["D_null"].reason


def test_symbolic_links_are_skipped_with_the_reason_unless_followed(
    tmp_path: Path, clean_recording: Generated
) -> None:
    src = tmp_path / "dock"
    (src / "sub").mkdir(parents=True)
    _copy(clean_recording, src / "A.mp4", 1)
    outside = _copy(clean_recording, tmp_path / "outside.mp4", 2)
    (src / "B_link.mp4").symlink_to(outside)
    (src / "C_dangling.mp4").symlink_to(tmp_path / "nowhere.mp4")
    (src / "D_loop.mp4").symlink_to(src / "D_loop.mp4")
    (src / "sub" / "up").symlink_to(src)  # a folder loop, if followed
    got = _by_name(_run([src], tmp_path))
    assert {k: o.status for k, o in got.items()} == {
        "A.mp4": ARCHIVED, "B_link.mp4": SKIPPED, "C_dangling.mp4": SKIPPED,
        "D_loop.mp4": SKIPPED, "up": SKIPPED}
    for name in ("B_link.mp4", "C_dangling.mp4", "D_loop.mp4", "up"):
        assert "a symbolic link to" in got[name].reason
        assert "not followed (--follow-symlinks follows links)" in got[name].reason
    assert "dangling" in got["C_dangling.mp4"].reason
    assert "loop of symbolic links" in got["D_loop.mp4"].reason

    followed = _by_name(_run([src], tmp_path / "2", follow_symlinks=True))
    assert {k: o.status for k, o in followed.items()} == {
        "A.mp4": ARCHIVED, "B_link.mp4": ARCHIVED, "C_dangling.mp4": SKIPPED,
        "D_loop.mp4": SKIPPED, "up": SKIPPED}
    assert "which this run walks already" in followed["up"].reason
    assert "dangling" in followed["C_dangling.mp4"].reason


def test_a_file_deleted_after_the_listing_fails_as_vanished_and_the_batch_goes_on(
    tmp_path: Path, clean_recording: Generated
) -> None:
    src = tmp_path / "dock"
    src.mkdir()
    _copy(clean_recording, src / "A.mp4", 1)
    victim = _copy(clean_recording, src / "B_gone.mp4", 2)
    _copy(clean_recording, src / "C.mp4", 3)

    def delete_once_listed(tick: Tick) -> None:
        if tick.done_items == 0 and victim.exists():
            victim.unlink()  # listed (it is counted in the total), not opened yet

    result = _run([src], tmp_path, progress=delete_once_listed)
    got = _by_name(result)
    assert {k: o.status for k, o in got.items()} == {
        "A.mp4": ARCHIVED, "B_gone.mp4": FAILED, "C.mp4": ARCHIVED}
    assert got["B_gone.mp4"].reason == (
        f"{src}/B_gone.mp4: vanished after it was listed (No such file or directory)")
    assert result.exit_code() == 1


# --- item 2: a fault in any stage is that file's failure ----------------------------------

STAGES = {
    "sniff": "pipeline.media.sniff.sniff_bytes",
    "probe": "pipeline.ingest.prober.Prober.result",
    "analysis": "pipeline.ingest.file.analyse",
    "store": "pipeline.storage.local._LocalStaged.commit",
    "rows": "pipeline.ingest.file.media_tables",
    "batch": "pipeline.ingest.batch.gaps_around",
}


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_an_exception_in_one_stage_fails_that_file_only_and_stores_nothing_of_it(
    stage: str, tmp_path: Path, clean_recording: Generated, short_recording: Generated,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first file's `stage` raises (injected: the issue asks for a fault at each one);
    it is `failed` naming itself, the exception's type and message; the next file is
    archived; no staged copy is left, and nothing of the failed file is catalogued."""
    import importlib

    target = STAGES[stage]
    module_name, _, attr = target.rpartition(".")
    owner: Any
    try:
        owner = importlib.import_module(module_name)
    except ModuleNotFoundError:
        mod, _, cls = module_name.rpartition(".")
        owner = getattr(importlib.import_module(mod), cls)
    original = getattr(owner, attr)
    calls = {"n": 0}

    def raising(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError(f"injected {stage} fault")
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, attr, raising)
    src = tmp_path / "dock"
    src.mkdir()
    _copy(clean_recording, src / "A_first.mp4", 1)
    _copy(short_recording, src / "B_second.mp4", 2)
    result = _run([src], tmp_path)
    got = _by_name(result)
    assert {k: o.status for k, o in got.items()} == {
        "A_first.mp4": FAILED, "B_second.mp4": ARCHIVED}
    assert got["A_first.mp4"].reason == (
        f"{src}/A_first.mp4: RuntimeError: injected {stage} fault")
    assert list((tmp_path / "store" / "tmp").iterdir()) == []
    catalog = Catalog(tmp_path / "catalog")
    assert catalog.query("SELECT file_name FROM recordings").column(0).to_pylist() == [
        "B_second.mp4"]
    failed = catalog.query("SELECT reason FROM ingest_files WHERE status = 'failed'")
    assert failed.column(0).to_pylist() == [got["A_first.mp4"].reason]
    stored = _stored(tmp_path)
    if stage == "batch":
        # Its object was stored before the batch; the next run catalogues it.
        assert len(stored) == 2 and got["B_second.mp4"].blake3 in stored
    else:
        assert stored == [got["B_second.mp4"].blake3]


def test_a_probe_that_raises_in_its_worker_still_archives_the_file_with_a_damage_finding(
    tmp_path: Path, clean_recording: Generated
) -> None:
    """The demuxer failing on a file is evidence of damage, not a lost file."""
    src = tmp_path / "dock"
    src.mkdir()
    (src / "A.mp4").write_bytes(b"\0\0\0\x18ftypisom" + b"\xff" * 4000)  # sniffs as MP4
    (o,) = _run([src], tmp_path).files
    assert o.status == ARCHIVED
    assert "damage" in {f.category for f in o.findings}


def test_a_store_whose_staging_folder_is_removed_mid_run_fails_the_next_files_only(
    tmp_path: Path, clean_recording: Generated
) -> None:
    """A real fault: the store's staging folder disappears after the first file."""
    import shutil

    src = tmp_path / "dock"
    src.mkdir()
    for i, name in enumerate(("A.mp4", "B.mp4")):
        _copy(clean_recording, src / name, i)
    staging = tmp_path / "store" / "tmp"

    def remove_staging(tick: Tick) -> None:
        if tick.done_items == 1:
            shutil.rmtree(staging)

    got = _by_name(_run([src], tmp_path, progress=remove_staging))
    assert {k: o.status for k, o in got.items()} == {"A.mp4": ARCHIVED, "B.mp4": FAILED}
    assert got["B.mp4"].reason.startswith(f"{src}/B.mp4: ")
    assert "cannot stage an object: No such file or directory" in got["B.mp4"].reason
    assert _stored(tmp_path) == [got["A.mp4"].blake3]
