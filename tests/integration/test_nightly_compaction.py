"""`custody nightly` compacts the catalog at its end when enough small parts piled up
(`pipeline.jobs.compaction`): real catalogs, real photos, real parts on disk."""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from pipeline.catalog.core import Catalog
from pipeline.cli.main import main
from pipeline.demo import synth
from tests.mediagen import START

# One photo a batch (--batch-files 1) commits a part to each of these tables; a run
# commits two ingest_runs parts (its start and its end) and its summary one nightly_runs.
PER_PHOTO = ("recordings", "streams", "chunks", "packets", "findings", "ingest_files")
# The views whose rows are compared before and after a compaction, every column (a batch
# part's `batch` and `date` from its path, a compacted part's its own); not nightly_runs:
# every night adds its row.
VIEWS = (*PER_PHOTO, "ingest_runs")


def _photos(dock: Path, n: int, first: int = 0) -> None:
    dock.mkdir(parents=True, exist_ok=True)
    for i in range(first, first + n):
        synth.write_still(dock / f"P{i:03d}.jpg", START.replace(minute=i))


def _config(tmp: Path, extra: str = "") -> Path:
    cfg = tmp / "custody.toml"
    cfg.write_text(
        f'[custody]\nstore = "{tmp / "store"}"\ncatalog = "{tmp / "catalog"}"\n'
        f'[custody.nightly]\nsources = [{{ path = "{tmp / "dock"}", done = "{tmp / "done"}" }}]\n'
        f'{extra}', encoding="utf-8")
    return cfg


def _night(cfg: Path) -> tuple[int, dict[str, Any], str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["nightly", "--config", str(cfg), "--json", "--workers", "1",
                 "--batch-files", "1"], env={}, out=out, err=err)
    assert out.getvalue(), err.getvalue()
    return code, json.loads(out.getvalue())["run"], err.getvalue()


def _parts(tmp: Path) -> Counter[str]:
    return Counter(p.table for p in Catalog(tmp / "catalog").parts.current().parts)


def _rows(tmp: Path) -> dict[str, list[str]]:
    cat = Catalog(tmp / "catalog")
    return {t: sorted(json.dumps(r, default=str, sort_keys=True) for r in cat.query(
        f"SELECT * FROM {t}").to_pylist()) for t in VIEWS}


def _compactions(tmp: Path) -> int:
    lines = (tmp / "catalog" / "commits.jsonl").read_text().splitlines()
    return sum(1 for line in lines if '"compaction"' in line)


def _night_one(tmp: Path, photos: int) -> dict[str, list[str]]:
    """A first night that does not compact: `photos` one-photo batches."""
    _photos(tmp / "dock", photos)
    code, run, err = _night(_config(tmp, "compact = false\n"))
    assert (code, run["archived"], run["failed"]) == (1, photos, 0), err  # no-time finding
    assert run["compaction"]["state"] == "off"
    assert _parts(tmp) == Counter({**dict.fromkeys(PER_PHOTO, photos), "ingest_runs": 2,
                                   "nightly_runs": 1})
    return _rows(tmp)


@pytest.mark.slow
def test_a_night_over_enough_small_batches_compacts_and_the_views_read_the_same_rows(
    tmp_path: Path
) -> None:
    before = _night_one(tmp_path, 6)  # 6 * 6 + 2 + 1 = 39 parts
    _photos(tmp_path / "dock", 2, first=6)  # the second night: two more photos
    code, run, err = _night(_config(tmp_path, "compact_after_parts = 8\n"))
    assert (code, run["archived"], run["already_archived"]) == (1, 2, 0), err
    # Before: 8 parts of each photo table, 4 of ingest_runs and 1 of nightly_runs (53);
    # the 52 of 7 tables merged into one each, nightly_runs' lone part kept: 8. Then the
    # summary's row adds nightly_runs' second part.
    assert run["compaction"] == {
        "state": "compacted", "detail": run["compaction"]["detail"], "parts_before": 53,
        "parts_after": 8, "most_small_parts": 8,
        "compaction_id": run["compaction"]["compaction_id"],
        "seconds": run["compaction"]["seconds"]}
    assert run["compaction"]["detail"] == (
        f"compacted 52 parts of 7 tables into 7 (compaction "
        f"{run['compaction']['compaction_id']})")
    assert run["exit_code"] == 1 and run["error"] is None
    assert _parts(tmp_path) == Counter({**dict.fromkeys(VIEWS, 1), "nightly_runs": 2})
    assert _compactions(tmp_path) == 1
    after = _rows(tmp_path)
    assert {t: len(r) for t, r in after.items()}["recordings"] == 8
    # The first night's rows, every one, still read through the views, beside the second's.
    assert all(set(before[t]) <= set(after[t]) for t in VIEWS)
    assert len(after["chunks"]) - len(before["chunks"]) == 2  # one chunk a small photo
    cat = Catalog(tmp_path / "catalog")
    rows = cat.query("SELECT compaction, compaction_detail, catalog_parts_before, "
                     "catalog_parts_after, exit_code FROM nightly_runs "
                     "ORDER BY started_at_utc").to_pylist()
    assert [(r["compaction"], r["catalog_parts_before"], r["catalog_parts_after"],
             r["exit_code"]) for r in rows] == [("off", None, None, 1),
                                                ("compacted", 53, 8, 1)]
    assert rows[1]["compaction_detail"] == run["compaction"]["detail"]
    # A third night with nothing new, due at 2: the compacted ingest_runs part and the
    # night's new one, and the two nightly_runs parts, merge (10 parts -> 8); on the
    # terminal it is one line.
    out, err = io.StringIO(), io.StringIO()
    code = main(["nightly", "--config", str(_config(tmp_path, "compact_after_parts = 2\n")),
                 "--workers", "1", "--quiet"], env={}, out=out, err=err)
    assert code == 0, err.getvalue()
    (line,) = [x for x in out.getvalue().splitlines() if x.startswith("catalog compaction")]
    assert re.fullmatch(r"catalog compaction: compacted 4 parts of 2 tables into 2 "
                        r"\(compaction compact-\d{8}T\d{12}Z-[0-9a-f]{8}\) "
                        r"\(10 parts -> 8\)", line), line
    assert _rows(tmp_path) == {**after, "ingest_runs": _rows(tmp_path)["ingest_runs"]}
    assert len(_rows(tmp_path)["ingest_runs"]) == len(after["ingest_runs"]) + 2  # start, end


def test_a_night_under_the_threshold_does_not_compact(tmp_path: Path) -> None:
    _night_one(tmp_path, 3)
    code, run, _ = _night(_config(tmp_path, "compact_after_parts = 4\n"))
    assert (code, run["archived"], run["files_seen"]) == (0, 0, 0)
    # 3 parts of each photo table, 3 of ingest_runs (an empty night commits one), 1 of
    # nightly_runs (22): at most 3 of one table, under 4.
    assert run["compaction"]["state"] == "not due"
    assert run["compaction"]["detail"] == (
        "not due: no table has 4 small parts to merge (compact_after_parts; at most 3)")
    assert (run["compaction"]["parts_before"], run["compaction"]["parts_after"]) == (22, 22)
    assert _compactions(tmp_path) == 0
    assert _parts(tmp_path)["recordings"] == 3 and _parts(tmp_path)["nightly_runs"] == 2


@pytest.mark.slow
def test_compact_false_never_compacts(tmp_path: Path) -> None:
    _night_one(tmp_path, 3)
    code, run, _ = _night(_config(tmp_path, "compact = false\ncompact_after_parts = 2\n"))
    assert code == 0
    assert run["compaction"] == {
        "state": "off", "detail": "compaction is off (compact = false in [custody.nightly])",
        "parts_before": None, "parts_after": None, "most_small_parts": None,
        "compaction_id": None, "seconds": 0.0}
    assert _compactions(tmp_path) == 0


@pytest.mark.slow
def test_a_part_edited_since_its_commit_fails_the_compaction_not_the_nights_files(
    tmp_path: Path
) -> None:
    before = _night_one(tmp_path, 3)
    cat = Catalog(tmp_path / "catalog")
    edited = next(p for p in cat.parts.current().parts if p.table == "streams")
    path = tmp_path / "catalog" / edited.name
    # Same rows, other bytes (another codec): every view still reads it; the commit's
    # SHA-256 no longer matches, and compaction refuses to launder it into a new part.
    pq.write_table(pq.read_table(path), path, compression="snappy")
    _photos(tmp_path / "dock", 1, first=3)
    code, run, _ = _night(_config(tmp_path, "compact_after_parts = 2\n"))
    assert code == 2
    assert (run["archived"], run["failed"], run["error"]) == (1, 0, None)
    assert run["compaction"]["state"] == "failed"
    assert run["compaction"]["detail"] == (
        f"compaction failed, the catalog is as it was: {path.as_posix()}: not compacted: "
        f"the part no longer has the size and SHA-256 its commit recorded "
        f"({edited.size_bytes} bytes, {edited.sha256[:16]}...); run `custody verify`")
    assert _compactions(tmp_path) == 0
    assert not any((tmp_path / "catalog" / "staging").iterdir())
    after = _rows(tmp_path)
    assert len(after["recordings"]) == 4 and set(before["recordings"]) < set(
        after["recordings"])
    (rec,) = Catalog(tmp_path / "catalog").query(
        "SELECT compaction, exit_code FROM nightly_runs WHERE archived = 1").to_pylist()
    assert rec == {"compaction": "failed", "exit_code": 2}


@pytest.mark.slow
def test_rows_of_an_older_release_without_the_compaction_columns_read_as_null(
    tmp_path: Path
) -> None:
    """A nightly_runs part written before the compaction columns existed (the schema of
    the release before) is read beside the new rows; its columns are null."""
    from schemas.nightly import NightlyRunRecord
    from schemas.records import to_table

    cat = Catalog(tmp_path / "catalog")
    rec = NightlyRunRecord(
        run_id="old-run", started_at_utc=START, finished_at_utc=START, host="h",
        tool_version="0.9", executor="local:1", sources=["/srv/dock"], files_seen=5,
        archived=5, already_archived=0, skipped=0, failed=0, bytes_read=10, seconds=1.0,
        files_per_second=5.0, megabytes_per_second=0.0, findings=0, findings_by_rule="{}",
        late_uploads=0, rejects=[], verified=5, moved=5, left_in_place=[], store_uri="s",
        store_selftest=None, store_state="reachable", staging_removed=0,
        stale_uploads_aborted=0, exit_code=0)
    new = to_table(NightlyRunRecord, [rec])
    old = new.drop_columns(["compaction", "compaction_detail", "catalog_parts_before",
                            "catalog_parts_after"])  # the release before's schema
    assert new.num_columns - old.num_columns == 4
    cat.parts.write("old-batch", START.date(), {"nightly_runs": old})
    _photos(tmp_path / "dock", 1)
    code, _, err = _night(_config(tmp_path))
    assert code == 1, err
    rows = Catalog(tmp_path / "catalog").query(
        "SELECT run_id, archived, compaction, catalog_parts_after FROM nightly_runs "
        "ORDER BY archived DESC").to_pylist()
    assert [(r["run_id"] == "old-run", r["archived"], r["compaction"],
             r["catalog_parts_after"]) for r in rows] == [
        (True, 5, None, None), (False, 1, "not due", 9)]


@pytest.mark.parametrize(("extra", "message"), [
    ('compact = "yes"\n', "nightly.compact = 'yes': expected true or false"),
    ("compact_after_parts = 1\n", "nightly.compact_after_parts = 1: expected an integer "
     "of at least 2"),
    ("compact_after_parts = true\n", "nightly.compact_after_parts = True: expected an "
     "integer"),
])
def test_a_wrong_compaction_setting_is_exit_2_naming_it_and_the_file(
    tmp_path: Path, extra: str, message: str
) -> None:
    cfg = _config(tmp_path, extra)
    out, err = io.StringIO(), io.StringIO()
    assert main(["nightly", "--config", str(cfg)], env={}, out=out, err=err) == 2
    assert message in err.getvalue() and str(cfg) in err.getvalue()


@pytest.mark.slow
def test_an_s3_catalog_is_compacted_at_the_end_of_a_night_too(
    tmp_path: Path, s3_server: Any
) -> None:
    """The store and the catalog in SeaweedFS, its endpoint and keys only in the config
    file (the pool's workers get them from the driver): the compaction's parts are uploaded
    and committed by its manifest; the views (over S3) read the same rows."""
    from tests.contract._support import fresh_bucket, s3_config

    bucket = fresh_bucket(s3_config(s3_server).client())
    _photos(tmp_path / "dock", 3)
    cfg = tmp_path / "custody.toml"
    cfg.write_text(
        f'[custody]\nstore = "s3://{bucket}/evidence"\ncatalog = "s3://{bucket}/catalog"\n'
        f'catalog_cache = "{tmp_path / "cache"}"\n[custody.s3]\n'
        f'endpoint_url = "{s3_server.endpoint_url}"\nregion = "{s3_server.region}"\n'
        f'access_key_id = "{s3_server.access_key_id}"\n'
        f'secret_access_key = "{s3_server.secret_access_key}"\n[custody.nightly]\n'
        f'sources = [{{ path = "{tmp_path / "dock"}", done = "{tmp_path / "done"}" }}]\n'
        'compact_after_parts = 3\n', encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    code = main(["nightly", "--config", str(cfg), "--json", "--workers", "1",
                 "--batch-files", "1"], env={}, out=out, err=err)
    run = json.loads(out.getvalue())["run"]
    assert (code, run["archived"], run["error"]) == (1, 3, None), run["rejects"]
    # 3 parts of each photo table and 2 of ingest_runs (20), merged into one a table (7).
    assert {k: run["compaction"][k] for k in ("state", "parts_before", "parts_after")} == {
        "state": "compacted", "parts_before": 20, "parts_after": 7}
    cat = Catalog.open(f"s3://{bucket}/catalog", env=s3_server.env(),
                       cache_dir=tmp_path / "cache2")
    assert Counter(p.table for p in cat.parts.current().parts) == Counter(
        {**dict.fromkeys(VIEWS, 1), "nightly_runs": 1})
    assert cat.query("SELECT count(*) AS n FROM recordings").column("n")[0].as_py() == 3
    assert cat.query("SELECT compaction, catalog_parts_after FROM nightly_runs"
                     ).to_pylist() == [{"compaction": "compacted", "catalog_parts_after": 7}]


# --- the locks: nothing waits, a second start still exits at once -------------------------
def _many_batches(tmp: Path, n: int, rows: int = 1) -> None:
    """`n` nightly_runs batches of `rows` rows each, committed through the catalog: small
    parts for the compaction to merge."""
    from schemas.nightly import NightlyRunRecord

    cat = Catalog(tmp / "catalog")
    rec = NightlyRunRecord(
        run_id="r", started_at_utc=START, finished_at_utc=START, host="h", tool_version="v",
        executor="local:1", sources=[], files_seen=0, archived=0, already_archived=0,
        skipped=0, failed=0, bytes_read=0, seconds=1.0, files_per_second=0.0,
        megabytes_per_second=0.0, findings=0, findings_by_rule="{}", late_uploads=0,
        rejects=[], verified=0, moved=0, left_in_place=[], store_uri="s", store_selftest=None,
        store_state="reachable", staging_removed=0, stale_uploads_aborted=0, exit_code=0)
    for _ in range(n):
        batch = cat.batch()
        batch.add(NightlyRunRecord, [rec] * rows)
        batch.commit(START.date())


def test_a_held_ingest_lock_fails_the_run_at_once_and_nothing_is_compacted(
    tmp_path: Path
) -> None:
    """A hand-started ingest (or compaction) holds the catalog's ingest lock: the nightly
    run does not wait for it (exit 2, saying so) and does not compact."""
    import fcntl

    _many_batches(tmp_path, 3)
    _photos(tmp_path / "dock", 1)
    with open(tmp_path / "catalog" / "ingest.lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        code, run, _ = _night(_config(tmp_path, "compact_after_parts = 2\n"))
    assert code == 2
    assert run["error"] == (f"{tmp_path / 'catalog'}: an ingest or a compaction is running "
                            "on this catalog; try again later")
    assert run["compaction"]["state"] == "skipped"
    assert _compactions(tmp_path) == 0
    assert (tmp_path / "dock" / "P000.jpg").exists()


@pytest.mark.slow
def test_a_second_start_during_the_compaction_exits_2_at_once(tmp_path: Path) -> None:
    """The first run is stopped (SIGSTOP) once its compaction has begun, holding its locks,
    while the second starts: the second must end on its own, or it waited (a hang, not a
    pass). Without the stop the first could finish before the second did on a loaded
    machine (two test processes on two cores), which said nothing about the second."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.integration.test_nightly import _env, _go, _reap, _waiting

    _many_batches(tmp_path, 200, rows=2000)  # its compaction takes seconds
    _photos(tmp_path / "dock", 1)
    cfg = _config(tmp_path, "compact_after_parts = 2\n")
    cmd = [sys.executable, "-m", "pipeline.cli", "nightly", "--config", str(cfg),
           "--workers", "1", "--json"]
    second = subprocess.Popen(_waiting(cmd), env=_env(), text=True, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = subprocess.Popen(cmd, env=_env(), text=True, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    try:
        staging = tmp_path / "catalog" / "staging"
        deadline = time.monotonic() + 120
        while first.poll() is None and time.monotonic() < deadline and not any(
                p.name.startswith("compact-") for p in staging.iterdir()):
            time.sleep(0.002)
        assert first.poll() is None, "the run ended before its compaction was seen"
        os.kill(first.pid, signal.SIGSTOP)
        try:
            second_err = _go(second)
            still = first.poll() is None
        finally:
            os.kill(first.pid, signal.SIGCONT)
        first_out, first_err = first.communicate(timeout=300)
    finally:
        _reap(first, second)
    assert second.returncode == 2 and still, second_err
    assert f"another custody nightly is running on this catalog (pid {first.pid} on " \
        in second_err
    run = json.loads(first_out)["run"]
    assert first.returncode == 1, first_err  # the photo's finding (no recording time)
    # 200 nightly_runs parts, the photo's 6 and 1 of ingest_runs (one batch): 8 parts.
    assert {k: run["compaction"][k] for k in ("state", "parts_before", "parts_after")} == {
        "state": "compacted", "parts_before": 207, "parts_after": 8}
