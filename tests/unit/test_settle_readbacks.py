"""The nightly's read-backs (`pipeline.jobs.settle.ReadBacks`): started as files are
archived, collected by `settle`, which moves only what verified. A real local store; one
object's bytes changed on disk behind the store's back (as root, past its 0444)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import blake3

from pipeline.ingest.outcome import ALREADY, ARCHIVED, FAILED, FileOutcome
from pipeline.jobs.config import NightlySource
from pipeline.jobs.settle import ReadBacks, settle
from pipeline.storage.local import LocalStore

T = dt.datetime(2027, 12, 1, tzinfo=dt.UTC)
STARTED = dt.datetime(2099, 1, 1, tzinfo=dt.UTC)  # every source is older than the run


def _archive(store: LocalStore, inbox: Path, name: str, data: bytes) -> FileOutcome:
    path = inbox / name
    path.write_bytes(data)
    digest = blake3.blake3(data).hexdigest()
    staged = store.stage()
    staged.write(data)
    staged.commit(digest, retain_until_utc=T)
    return FileOutcome(str(path), ARCHIVED, blake3=digest, size_bytes=len(data))


def test_only_copies_that_read_back_whole_are_moved(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    inbox, done = tmp_path / "inbox", tmp_path / "done"
    inbox.mkdir()
    good = _archive(store, inbox, "good.mp4", b"good bytes " * 1000)
    bad = _archive(store, inbox, "bad.mp4", b"bad bytes " * 1000)
    twice = FileOutcome(str(inbox / "again.mp4"), ALREADY, blake3=good.blake3,
                        size_bytes=good.size_bytes)
    (inbox / "again.mp4").write_bytes(b"good bytes " * 1000)
    failed = FileOutcome(str(inbox / "broken.mp4"), FAILED, reason="not media")
    (inbox / "broken.mp4").write_bytes(b"x")
    damaged = store.object_path(f"b3/{bad.blake3}")
    os.chmod(damaged, 0o644)
    with open(damaged, "r+b") as fh:
        fh.seek(5)
        fh.write(b"X")
    wrong = blake3.blake3(damaged.read_bytes()).hexdigest()

    with ReadBacks(store, threads=2) as readbacks:
        for o in (good, bad, twice, failed):
            readbacks.start(o)  # as the ingest's on_outcome does
        settled = settle([good, bad, twice, failed], [NightlySource(str(inbox), done=str(done))],
                         STARTED, readbacks=readbacks)

    assert (settled.verified, settled.moved) == (2, 2)
    assert settled.unverified == [bad.blake3]
    assert settled.left_in_place == [
        f"{inbox}/bad.mp4: not moved: {store.uri}/b3/{bad.blake3}: the stored copy hashes "
        f"to {wrong}, not its key"]
    assert sorted(p.name for p in inbox.iterdir()) == ["bad.mp4", "broken.mp4"]
    assert sorted(p.name for p in done.iterdir()) == ["again.mp4", "good.mp4"]


def test_a_read_back_not_started_during_the_ingest_is_made_by_settle(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    outcomes = [_archive(store, inbox, f"{i}.mp4", f"clip {i}".encode() * 500)
                for i in range(5)]
    with ReadBacks(store, threads=1) as readbacks:
        settled = settle(outcomes, [NightlySource(str(inbox))], STARTED, readbacks=readbacks)
    assert (settled.verified, settled.moved, settled.unverified) == (5, 0, [])
    assert settled.left_in_place == []
