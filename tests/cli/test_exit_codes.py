"""Exit codes: 0 clean, 1 findings, 2 error; a crash is 2 and one line; a closed pipe is quiet."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pipeline.catalog.core import Catalog
from pipeline.storage.local import LocalStore
from tests.cli.conftest import Custody

ROOT = Path(__file__).resolve().parents[2]


def _corrupt_staff_part(custody: Custody) -> Path:
    part = sorted((custody.root / "catalog" / "batches").glob("*/*/staff_events.parquet"))[0]
    os.chmod(part, 0o644)
    part.write_bytes(b"not parquet at all")
    return part.resolve()


def test_a_crash_on_a_corrupt_catalog_part_exits_2_with_one_line(archive: Custody) -> None:
    part = _corrupt_staff_part(archive)
    r = archive("staff", "list", "--as", "A-1")
    assert r.code == 2
    assert r.err == (
        f"custody staff: error: ArrowInvalid: Could not open Parquet input source '{part}': "
        "Parquet magic bytes not found in footer. Either the file is corrupted or this is not "
        "a parquet file. (--debug shows the traceback)\n")


def test_debug_prints_the_traceback_before_the_one_line(archive: Custody) -> None:
    _corrupt_staff_part(archive)
    r = archive("staff", "list", "--as", "A-1", "--debug")
    assert r.code == 2
    lines = r.err.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[-2].startswith("pyarrow.lib.ArrowInvalid: Could not open Parquet input")
    assert lines[-1].startswith("custody staff: error: ArrowInvalid: Could not open Parquet")
    assert not lines[-1].endswith("(--debug shows the traceback)")


def test_a_store_path_that_is_a_file_exits_2_naming_it(custody: Custody, tmp_path: Path) -> None:
    store = tmp_path / "store-is-a-file"
    store.write_text("x")
    r = custody("store", "selftest", "--store", str(store), "--catalog", str(tmp_path / "c"),
                loc=False)
    assert r.code == 2
    assert r.err == f"custody store: error: {store}: cannot use as a store: Not a directory\n"


def test_findings_exit_1_and_a_clean_run_exits_0(archive: Custody) -> None:
    obj = next((archive.root / "store" / "objects").rglob("*"))
    while obj.is_dir():
        obj = next(obj.iterdir())
    assert archive("verify", "--as", "A-1").code == 0
    os.chmod(obj, 0o644)
    with open(obj, "r+b") as fh:
        fh.write(b"\xff" * 16)
    r = archive("verify", "--as", "A-1")
    assert r.code == 1
    assert r.out.splitlines()[-1] == "2 objects checked, 1 failed"


def test_a_usage_error_exits_2_with_usage(custody: Custody) -> None:
    r = custody("verify", "--no-such-option", loc=False)
    assert r.code == 2
    assert r.err.splitlines()[-1] == (
        "custody: error: unrecognized arguments: --no-such-option")


def test_a_closed_pipe_ends_quietly_with_exit_0(tmp_path: Path) -> None:
    """`custody query ... | head -1` under pipefail: one line out, nothing on stderr, exit 0."""
    Catalog(tmp_path / "c")
    LocalStore(tmp_path / "s")
    cmd = (f"set -o pipefail; {sys.executable} -m pipeline.cli query --csv "
           f"--store {tmp_path / 's'} --catalog {tmp_path / 'c'} "
           "'SELECT range AS n FROM range(300000)' | head -1")
    proc = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "n\n", "")
