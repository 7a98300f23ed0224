"""The same bytes twice in one run (two names, one content) give one object and one catalog
row: the first name is archived, the others are already archived (issue 11 item 4)."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import blake3
import pytest

from pipeline.catalog.core import Catalog
from pipeline.cli.main import main
from tests.mediagen import Generated

NAMES = ("A_first.mp4", "B_copy.mp4", "C_copy.mp4")


@pytest.mark.parametrize("workers", [1, 3])
def test_one_run_with_the_same_bytes_under_three_names_stores_them_once(
    tmp_path: Path, clean_recording: Generated, short_recording: Generated, workers: int
) -> None:
    """With one probe worker and with several (the copies probed at the same time)."""
    src = tmp_path / "src"
    src.mkdir()
    for name in NAMES:
        shutil.copy(clean_recording.path, src / name)
    shutil.copy(short_recording.path, src / "D_other.mp4")
    digest = blake3.blake3(clean_recording.path.read_bytes()).hexdigest()
    other = blake3.blake3(short_recording.path.read_bytes()).hexdigest()
    out, err = io.StringIO(), io.StringIO()
    code = main(["ingest", str(src), "--json", "--workers", str(workers), "--store",
                 str(tmp_path / "store"), "--catalog", str(tmp_path / "catalog")],
                env={}, out=out, err=err)
    assert code == 1, err.getvalue()  # exit 1: the findings below
    files = json.loads(out.getvalue())["files"]
    assert [(Path(f["path"]).name, f["status"], f["reason"], f["blake3"]) for f in files] == [
        ("A_first.mp4", "archived", None, digest),
        ("B_copy.mp4", "already_archived", "already archived (same BLAKE3)", digest),
        ("C_copy.mp4", "already_archived", "already archived (same BLAKE3)", digest),
        ("D_other.mp4", "archived", None, other),
    ]
    # Unlabelled, recorded in 2024: each archived object's two findings, the copies none.
    assert [[fd["code"] for fd in f["findings"]] for f in files] == [
        ["LABEL_MISSING", "INGEST_LATE"], [], [], ["LABEL_MISSING", "INGEST_LATE"]]

    stored = sorted(p.name for p in (tmp_path / "store" / "objects").rglob("*") if p.is_file())
    assert stored == sorted([digest, other])
    cat = Catalog(tmp_path / "catalog")
    assert cat.query("SELECT file_name, blake3 FROM recordings ORDER BY file_name").to_pylist(
    ) == [{"file_name": "A_first.mp4", "blake3": digest},
          {"file_name": "D_other.mp4", "blake3": other}]
    (rec,) = cat.query("SELECT chunk_count FROM recordings WHERE blake3 = ?", [digest]
                       ).to_pylist()

    def count(sql: str) -> int:
        return int(cat.query(sql, [digest]).column("n")[0].as_py())

    # Every per-recording table holds the first name's rows once.
    assert count("SELECT count(*) AS n FROM streams WHERE recording_blake3 = ?") == 2
    assert count("SELECT count(*) AS n FROM chunks WHERE recording_blake3 = ?") == (
        rec["chunk_count"])
    assert count("SELECT count(*) AS n FROM packets WHERE recording_blake3 = ?") == count(
        "SELECT sum(packet_count) AS n FROM streams WHERE recording_blake3 = ?")
    assert cat.query("SELECT code FROM findings WHERE recording_blake3 = ? ORDER BY code",
                     [digest]).column("code").to_pylist() == ["INGEST_LATE", "LABEL_MISSING"]
    # Each name the run saw is one ingest_files row.
    rows = cat.query("SELECT source_path, status FROM ingest_files ORDER BY source_path"
                     ).to_pylist()
    assert [(Path(r["source_path"]).name, r["status"]) for r in rows] == [
        ("A_first.mp4", "archived"), ("B_copy.mp4", "already_archived"),
        ("C_copy.mp4", "already_archived"), ("D_other.mp4", "archived")]
