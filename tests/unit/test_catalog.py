"""Catalog batches become visible atomically, and only when committed."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pyarrow as pa

from pipeline.catalog.commits import Manifest, link_of, register_recorder
from pipeline.catalog.core import Catalog
from pipeline.integrity.chain import verify_chain
from schemas.records import ChunkRecord, RetentionEventRecord, arrow_schema


def _chunk(b3: str) -> ChunkRecord:
    return ChunkRecord(recording_blake3=b3, chunk_index=0, offset_bytes=0, length_bytes=1,
                       blake3="f" * 64)


def test_new_catalog_has_every_view_empty(tmp_path: Path) -> None:
    cat = Catalog(tmp_path)
    for view in ("recordings", "streams", "chunks", "packets", "findings", "ingest_runs",
                 "ingest_files", "recordings_by_officer", "findings_summary", "late_ingests"):
        assert cat.query(f"SELECT count(*) AS n FROM {view}").column("n")[0].as_py() == 0


def test_a_local_catalog_keeps_no_copy_of_the_parts_it_reads(tmp_path: Path) -> None:
    """DuckDB's external file cache would hold the bytes of every part a connection has
    read (up to 80 % of RAM: a year's uncompacted report did not fit in 23 GB); local
    parts are read through the kernel's page cache instead."""
    cat = Catalog(tmp_path)
    for day in (27, 28):
        b = cat.batch()
        b.add(ChunkRecord, [_chunk(f"{day}{i}") for i in range(100)])
        b.commit(dt.date(2026, 11, day))
    con = cat.connect()
    try:
        assert con.execute("SELECT count(*) FROM chunks").fetchone() == (200,)
        assert con.execute("SELECT count(DISTINCT recording_blake3) FROM chunks"
                           ).fetchone() == (200,)
        cached = con.execute("SELECT memory_usage_bytes FROM duckdb_memory() "
                             "WHERE tag = 'EXTERNAL_FILE_CACHE'").fetchone()
        assert cached == (0,)
    finally:
        con.close()


def test_uncommitted_batch_is_invisible(tmp_path: Path) -> None:
    cat = Catalog(tmp_path)
    b = cat.batch()
    b.add(ChunkRecord, [_chunk("a")])
    assert cat.query("SELECT count(*) AS n FROM chunks").column("n")[0].as_py() == 0
    b.commit(dt.date(2026, 11, 27))
    assert cat.query("SELECT count(*) AS n FROM chunks").column("n")[0].as_py() == 1


def test_staging_left_by_a_crash_is_invisible_and_cleared(tmp_path: Path) -> None:
    cat = Catalog(tmp_path)
    dead = tmp_path / "staging" / "dead"
    dead.mkdir()
    (dead / "chunks.parquet").write_bytes(b"half written")
    assert cat.query("SELECT count(*) AS n FROM chunks").column("n")[0].as_py() == 0
    cat.clear_staging()
    assert not dead.exists()


def test_duckdb_file_opens_with_views(tmp_path: Path) -> None:
    import duckdb

    cat = Catalog(tmp_path)
    b = cat.batch()
    b.add(ChunkRecord, [_chunk("a"), _chunk("b")])
    b.commit(dt.date(2026, 11, 27))
    with duckdb.connect(str(cat.refresh_views()), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM chunks").fetchone() == (2,)


def test_a_table_added_after_the_catalog_was_made_has_an_empty_typed_view(tmp_path: Path) -> None:
    """A catalog from an older release lacks parts of newer tables; views still work.
    Made for real: a batch with a retention_events part, then that part and the commit
    list (both newer than such a catalog) removed."""
    cat = Catalog(tmp_path)
    b = cat.batch("old")
    b.add(ChunkRecord, [_chunk("a")])
    at = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)
    b.add(RetentionEventRecord, [RetentionEventRecord(
        "a", "one_year", at, False, None, None, None, "A-1", at, "file:///store")])
    b.commit(dt.date(2026, 11, 27))
    assert cat.query("SELECT count(*) AS n FROM retention_events").column("n")[0].as_py() == 1
    (part,) = tmp_path.glob("batches/*/*/retention_events.parquet")
    part.unlink()
    (tmp_path / "commits.jsonl").unlink()

    old = Catalog(tmp_path)
    assert old.query("SELECT count(*) AS n FROM retention_current").column("n")[0].as_py() == 0
    empty = old.query("SELECT * FROM retention_events")
    assert (empty.num_rows, empty.schema.names) == (0, arrow_schema(RetentionEventRecord).names)
    assert old.query("SELECT recording_blake3 FROM chunks").to_pylist() == [
        {"recording_blake3": "a"}]  # the older table keeps its rows
    (doc,) = [json.loads(x) for x in (tmp_path / "commits.jsonl").read_text().splitlines()]
    assert [p["table"] for p in doc["parts"]] == ["chunks"]


def test_read_table_gives_what_the_view_gives_across_batches(tmp_path: Path) -> None:
    """Ingest reads its state with Arrow, without SQL: the same rows as the view, a column
    missing from an older part as null, and a typed empty table before any batch."""
    cat = Catalog(tmp_path)
    assert cat.read_table(ChunkRecord).schema == arrow_schema(ChunkRecord)
    assert cat.read_table(ChunkRecord, ["blake3"]).num_rows == 0
    for day, names in ((27, ["a", "b"]), (28, ["c"])):
        b = cat.batch()
        b.add(ChunkRecord, [_chunk(n) for n in names])
        b.commit(dt.date(2026, 11, day))
    # A part committed before `length_bytes` existed (an older release). Committed: a part
    # merely put under batches/ is not read (test_a_part_put_under_batches_is_not_read).
    old = pa.table({"recording_blake3": ["d"], "chunk_index": [0], "offset_bytes": [0],
                    "blake3": ["e" * 64]})
    cat.parts.write("old", dt.date(2026, 11, 26), {"chunks": old})

    def rows(t: pa.Table) -> list[dict[str, object]]:
        return sorted(t.to_pylist(), key=lambda r: str(r["recording_blake3"]))

    via_view = cat.query(f"SELECT {', '.join(arrow_schema(ChunkRecord).names)} FROM chunks")
    assert rows(cat.read_table(ChunkRecord)) == rows(via_view)
    assert [r["length_bytes"] for r in rows(via_view)] == [1, 1, 1, None]
    assert rows(cat.read_table(ChunkRecord, ["recording_blake3", "blake3"])) == rows(
        cat.query("SELECT recording_blake3, blake3 FROM chunks")
    )


def test_a_part_put_under_batches_is_not_read(tmp_path: Path) -> None:
    """The views read the files the commit list names, never a glob of batches/."""
    cat = Catalog(tmp_path)
    b = cat.batch()
    b.add(ChunkRecord, [_chunk("a")])
    b.commit(dt.date(2026, 11, 27))
    committed = next(tmp_path.glob("batches/*/*/chunks.parquet"))
    forged = tmp_path / "batches" / "date=2026-11-28" / "batch=forged" / "chunks.parquet"
    forged.parent.mkdir(parents=True)
    forged.write_bytes(committed.read_bytes())
    assert cat.query("SELECT count(*) AS n FROM chunks").column("n")[0].as_py() == 1
    assert cat.read_table(ChunkRecord).num_rows == 1


def test_commits_are_chained_lines_naming_each_part_with_its_sha256(tmp_path: Path) -> None:
    cat = Catalog(tmp_path)
    for day in (27, 28):
        b = cat.batch(f"b{day}")
        b.add(ChunkRecord, [_chunk(str(day))])
        b.commit(dt.date(2026, 11, day))
    lines = (tmp_path / "commits.jsonl").read_bytes().splitlines()
    assert verify_chain(lines, link_of) is None
    docs = [json.loads(line) for line in lines]
    assert [d["batch_id"] for d in docs] == ["b27", "b28"]
    for d in docs:
        (part,) = [p for p in d["parts"] if p["table"] == "chunks"]
        data = (tmp_path / part["name"]).read_bytes()
        assert (part["size_bytes"], part["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())


def test_the_recorder_is_told_before_the_commit_is_visible(tmp_path: Path) -> None:
    cat = Catalog(tmp_path)
    seen: list[tuple[str, int]] = []

    def recorder(location: str, manifest: Manifest, digest: str) -> None:
        visible = cat.query("SELECT count(*) AS n FROM chunks").column("n")[0].as_py()
        seen.append((manifest.batch_id, visible))

    unregister = register_recorder(tmp_path, recorder)
    b = cat.batch("b1")
    b.add(ChunkRecord, [_chunk("a")])
    b.commit(dt.date(2026, 11, 27))
    unregister()
    b = cat.batch("b2")
    b.add(ChunkRecord, [_chunk("b")])
    b.commit(dt.date(2026, 11, 27))
    assert seen == [("b1", 0)]  # told first; nothing after it was unregistered


def test_a_catalog_made_before_commits_were_listed_keeps_its_rows(tmp_path: Path) -> None:
    """Its batches are adopted into the commit list on first open (verify names them)."""
    cat = Catalog(tmp_path)
    b = cat.batch("old")
    b.add(ChunkRecord, [_chunk("a")])
    b.commit(dt.date(2026, 11, 27))
    (tmp_path / "commits.jsonl").unlink()
    again = Catalog(tmp_path)
    assert again.query("SELECT count(*) AS n FROM chunks").column("n")[0].as_py() == 1
    (doc,) = [json.loads(x) for x in (tmp_path / "commits.jsonl").read_text().splitlines()]
    assert (doc["batch_id"], doc["adopted"]) == ("old", True)
