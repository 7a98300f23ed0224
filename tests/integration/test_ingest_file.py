"""ingest_file: the per-file unit runs in another process from a pickled job (what a Dask
worker will do), and the one committer turns its records into a catalog batch."""

from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import multiprocessing
import pickle
from pathlib import Path

from pipeline.analysis.sessions import SessionTolerances
from pipeline.catalog.core import Catalog
from pipeline.ingest.batch import Committer
from pipeline.ingest.file import FileJob, FileRecords, ingest_file
from pipeline.ingest.outcome import ALREADY, ARCHIVED
from pipeline.people.permissions import open_authority
from pipeline.rules import Context
from pipeline.storage.local import LocalStore
from tests.mediagen import START, Generated

NOW = START + dt.timedelta(hours=2)


def _job(path: Path, store: LocalStore) -> FileJob:
    return FileJob(path=str(path), root=str(path.parent), labels=None, run_id="r1",
                   store_uri=store.uri, rules=Context(now_utc=NOW))


def test_a_pickled_job_is_ingested_in_another_process_and_committed_here(
    tmp_path: Path, interrupted_recording: Generated
) -> None:
    store = LocalStore(tmp_path / "store")
    job = _job(interrupted_recording.path, store)
    with cf.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        rec = pool.submit(ingest_file, job).result()
    assert isinstance(rec, FileRecords) and rec.status == ARCHIVED
    assert pickle.loads(pickle.dumps(rec)).blake3 == rec.blake3
    assert store.head(f"b3/{rec.blake3}").size_bytes == interrupted_recording.path.stat().st_size
    assert "LABEL_MISSING" in {f.code for f in rec.findings}

    catalog = Catalog(tmp_path / "catalog")
    with open_authority(catalog, store, lambda: NOW) as auth:
        committer = Committer(catalog, run_id="r1", store_uri=store.uri, now=lambda: NOW,
                              batch_files=16, sessions=SessionTolerances(), auth=auth,
                              actor=auth.acting(None, os_user="test"))
        first = committer.add(rec)
        again = committer.add(rec)  # a worker retried elsewhere: harmless
        committer.commit(final=True)
    assert (first.status, again.status) == (ARCHIVED, ALREADY)
    rows = catalog.query(
        "SELECT DISTINCT recording_blake3, subject_kind FROM findings").to_pylist()
    assert rows and {r["recording_blake3"] for r in rows} == {rec.blake3}
    n = catalog.query("SELECT count(*) AS n FROM recordings").column("n")[0].as_py()
    assert n == 1


def test_records_travel_between_processes_whole(
    tmp_path: Path, interrupted_recording: Generated
) -> None:
    """The tables go as Arrow IPC streams (FileRecords.__getstate__): every field and
    every table (schema and rows) comes back equal."""
    store = LocalStore(tmp_path / "store")
    rec = ingest_file(_job(interrupted_recording.path, store))
    back = pickle.loads(pickle.dumps(rec))
    assert back == rec
    assert [(cls, t.schema, t.num_rows) for cls, t in back.tables] == [
        (cls, t.schema, t.num_rows) for cls, t in rec.tables]
    assert [cls.__name__ for cls, _ in back.tables] == [
        "StreamRecord", "ChunkRecord", "PacketRecord", "PacketRecord"]
