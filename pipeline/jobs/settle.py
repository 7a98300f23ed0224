"""After the catalog commit: re-read each archived copy, then move its source out of the inbox.

A source file is touched only when all of these hold, in this order:
1. the file's rows are committed (the run's last batch is written before this runs);
2. its stored object, read back from the store, hashes to its BLAKE3 (the key it is
   stored under): the copy in the archive is whole, whatever the upload reported;
3. its source names a `done` folder, and the file is still the one that was read (the
   same size, not modified since the run started).
Then it is hard-linked into the done folder (keeping its path below the source) and only
then unlinked from the inbox, so a crash between the two leaves it in both places, never in
neither; the next run finds it archived, sees the same file in the done folder, and only
unlinks. A link never replaces anything: a different file of the same name in the done
folder leaves the source in place, with the reason. Nothing is ever deleted that was not
archived and verified; a file skipped or failed is never touched.
"""

from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import errno
import os
import stat
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import blake3

from pipeline.durable import fsync_dir
from pipeline.ingest.names import display_path
from pipeline.ingest.outcome import ALREADY, ARCHIVED, FileOutcome
from pipeline.jobs.config import NightlySource
from pipeline.storage.base import WormStore, key_for

_BLOCK = 8 << 20


@dataclass(slots=True)
class Settled:
    verified: int = 0
    moved: int = 0
    # Archived files not moved, each with why (a failed verification among them).
    left_in_place: list[str] = field(default_factory=list)
    # BLAKE3s whose stored copy did not verify (the run's exit is then 1 or worse).
    unverified: list[str] = field(default_factory=list)


def verify_copy(store: WormStore, blake3_hex: str, size_bytes: int | None) -> str | None:
    """None when the stored object hashes to `blake3_hex` (and has `size_bytes`); else why."""
    key = key_for(blake3_hex)
    hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
    got = 0
    try:
        with store.open(key, verify=False) as fh:
            while block := fh.read(_BLOCK):
                hasher.update(block)
                got += len(block)
    except Exception as exc:
        return f"{store.uri}/{key}: the stored copy could not be read back: {exc}"
    digest = hasher.hexdigest()
    if digest != blake3_hex:
        return f"{store.uri}/{key}: the stored copy hashes to {digest}, not its key"
    if size_bytes is not None and got != size_bytes:
        return f"{store.uri}/{key}: the stored copy has {got} bytes, the file {size_bytes}"
    return None


def source_of(path: str, sources: Sequence[NightlySource]) -> NightlySource | None:
    """The configured source a listed path lies below (the longest match)."""
    best: NightlySource | None = None
    for src in sources:
        root = os.path.abspath(src.path)
        if os.path.abspath(path).startswith(root.rstrip("/") + "/") and (
                best is None or len(src.path) > len(best.path)):
            best = src
    return best


def move_to_done(
    path: str, src: NightlySource, size_bytes: int | None, started: dt.datetime
) -> str | None:
    """Move a verified file to its source's done folder; None when moved, else why not."""
    assert src.done is not None
    shown = display_path(path)
    try:
        st = os.lstat(path)
    except OSError as exc:
        return f"{shown}: not moved: {exc.strerror}"
    if not stat.S_ISREG(st.st_mode) or (size_bytes is not None and st.st_size != size_bytes):
        return f"{shown}: not moved: it changed since it was read (now {st.st_size} bytes)"
    if st.st_mtime_ns > int(started.timestamp() * 1e9):
        return f"{shown}: not moved: modified after the run started; the next run reads it"
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(src.path))
    target = os.path.join(src.done, rel)
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.link(path, target, follow_symlinks=False)
    except FileExistsError:
        if not os.path.samefile(path, target):
            return (f"{shown}: not moved: {display_path(target)} exists and is another "
                    "file; nothing was replaced")
    except OSError as exc:
        if exc.errno == errno.EXDEV:
            return (f"{shown}: not moved: the done folder {display_path(src.done)} is on "
                    "another filesystem (a move there would be a copy)")
        return f"{shown}: not moved: {exc.strerror}"
    fsync_dir(os.path.dirname(target))
    try:
        os.unlink(path)
    except OSError as exc:
        return f"{shown}: linked into the done folder but not unlinked: {exc.strerror}"
    fsync_dir(os.path.dirname(os.path.abspath(path)))
    return None


# How a verified file of an S3 inbox's spool is marked archived there: (path, BLAKE3) ->
# None, or why not (`pipeline.jobs.inbox.Fetched.settle_one`).
Mark = Callable[[str, str], str | None]
# Where the read-backs run when not in this process: (BLAKE3, size) pairs -> for each, None
# or why its copy did not verify (a cluster's workers, `ClusterRemote.verify`).
Verifier = Callable[[Sequence[tuple[str, int | None]]], list[str | None]]


def _stored(outcome: FileOutcome) -> bool:
    """Whether the outcome names a copy in the store (archived now or before)."""
    return outcome.status in (ARCHIVED, ALREADY) and bool(outcome.blake3)


class ReadBacks:
    """Read-backs in this process, each started as soon as its file is archived (in the
    ingest's `on_outcome`), beside the ingest of the files after it: only the run's last
    few are then read back after the commit. `threads` at a time (reads and BLAKE3
    release the GIL). A read-back may run before its file's batch is committed, but no
    source is moved before both (`settle`)."""

    def __init__(self, store: WormStore, threads: int = 2) -> None:
        self.store = store
        self._pool = cf.ThreadPoolExecutor(max(1, threads), "verify-copy")
        self._started: dict[tuple[str, int | None], cf.Future[str | None]] = {}

    def start(self, outcome: FileOutcome) -> None:
        """Start the read-back of the outcome's stored copy, if it has one not yet started."""
        if _stored(outcome):
            key = (str(outcome.blake3), outcome.size_bytes)
            if key not in self._started:
                self._started[key] = self._pool.submit(verify_copy, self.store, *key)

    def result(self, outcome: FileOutcome) -> str | None:
        """None when the outcome's stored copy (started) verified, else why not."""
        return self._started[(str(outcome.blake3), outcome.size_bytes)].result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> ReadBacks:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def settle(
    outcomes: Sequence[FileOutcome], sources: Sequence[NightlySource], started: dt.datetime,
    *, readbacks: ReadBacks, marks: Mapping[str, Mark] | None = None,
    verifier: Verifier | None = None,
) -> Settled:
    """Verify the stored copy of every archived file (by `verifier` where given, else by
    `readbacks`, most of them started during the ingest), then move those whose source
    has a done folder, and mark those of an S3 inbox archived there (`marks`, by spool
    path)."""
    done = [o for o in outcomes if _stored(o)]
    out = Settled()
    if verifier is not None:
        checks: Iterable[str | None] = verifier([(str(o.blake3), o.size_bytes) for o in done])
    else:
        for o in done:
            readbacks.start(o)
        checks = (readbacks.result(o) for o in done)
    for o, trouble in zip(done, checks, strict=True):
        if trouble is not None:
            out.unverified.append(str(o.blake3))
            out.left_in_place.append(f"{o.display_path}: not moved: {trouble}")
            continue
        out.verified += 1
        mark = (marks or {}).get(o.path)
        if mark is not None:
            why = mark(o.path, str(o.blake3))
            if why is None:
                out.moved += 1
            else:
                out.left_in_place.append(why)
            continue
        src = source_of(o.path, sources)
        if src is None or src.done is None:
            continue
        why = move_to_done(o.path, src, o.size_bytes, started)
        if why is None:
            out.moved += 1
        else:
            out.left_in_place.append(why)
    return out
