"""The audit log: append-only, hash-chained, sealed in batches into the WORM store.

Layout under `<catalog>/audit/`:
    segment-NNNNNN.jsonl   the open segment: one record per line, appended and fsynced
    seals.jsonl            one line per sealed segment (its store key, record range and
                           last record's hash), itself hash-chained like the records
    lock                   flock(2) target: one writer at a time, across processes

This module appends. Appending is one `write(2)` of one short line and one `fdatasync(2)`;
the previous record's hash and number stay in memory and are re-read only when another
process appended in between (the file grew) or sealed (the segment was unlinked). Inside
`group_commit()` the fsync is done once at the end, for callers such as ingest that append
per file and commit per batch. Each record links to the one before it through
`pipeline.integrity.chain`.

Every `seal_every` records (or when the open segment's first record is older than
`seal_after`) the segment is sealed into the WORM store (`seal.py`). If the store refuses
the put to this command's credentials (an error whose `access_denied` is true: the
analyst's read-only keys), the segment stays open and local, nothing of the seal is
recorded, and the command goes on; the next command with write rights (`custody audit
seal` on the service's timer) seals it. `seal()` itself still raises on a refusal.
`verify` reads sealed segments back from the store and hands the bytes to the pure
checker (`verify.py`), which names the FIRST break.

Catalog commits. An `AuditLog.for_catalog` registers itself as the recorder of that
catalog's commits (`pipeline.catalog.commits.register_recorder`) until it is closed: each
batch committed meanwhile, by whichever service, is appended here (`catalog_commit`, its
manifest and digest, made durable at once) before the batch becomes visible, as the
person last allowed to act through this log (or `catalog`).

Limits (said in `verify`'s docs too): this is tamper-EVIDENT. Records after the last seal
are only as safe as the local disk: truncating the tail of the open segment leaves a
shorter, valid chain. Seal often (`custody audit seal` from a timer) to shorten that window.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pipeline.audit import seal as sealing
from pipeline.audit.verify import ChainBreak, SegmentMissing, VerifyReport, parse_lines, verify_log
from pipeline.catalog.commits import (
    CATALOG_COMMIT,
    Manifest,
    audit_object,
    audit_reason,
    register_recorder,
)
from pipeline.durable import fsync_dir
from pipeline.errors import CustodyError
from pipeline.integrity import chain
from pipeline.storage.base import ObjectNotFound, StoreError, WormStore
from schemas.audit import ALLOWED, RESULTS, AuditRecord, Seal, decode, encode

__all__ = ["AuditError", "AuditLog", "ChainBreak", "Seal", "VerifyReport"]

DEFAULT_SEAL_EVERY = 1000
DEFAULT_SEAL_AFTER = dt.timedelta(hours=1)
DEFAULT_SEAL_RETENTION = dt.timedelta(days=3653)  # ten years; retention only grows later

class AuditError(CustodyError):
    """The audit log cannot be written or read."""


class AuditLog:
    """The audit log of one catalog. `clock` gives record times (only the CLI reads a clock)."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        store: WormStore,
        clock: Callable[[], dt.datetime],
        seal_every: int = DEFAULT_SEAL_EVERY,
        seal_after: dt.timedelta = DEFAULT_SEAL_AFTER,
        seal_retention: dt.timedelta = DEFAULT_SEAL_RETENTION,
    ) -> None:
        self.root = Path(root).resolve()
        self.store = store
        self._clock = clock
        self.seal_every = seal_every
        self.seal_after = seal_after
        self.seal_retention = seal_retention
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            (self.root / "seals.jsonl").touch(exist_ok=True)
            self._lock_fd = os.open(self.root / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise AuditError(f"{self.root}: cannot use as an audit log: {exc.strerror}") from exc
        self._fd: int | None = None
        self._segment = 0
        self._size = -1
        self._count = 0
        self._last_seq = 0
        self._last_hash = chain.GENESIS
        self._first_at: dt.datetime | None = None
        self._defer = 0
        self._dirty = False
        self._last_actor = ""
        self._unregister: Callable[[], None] | None = None
        # The operating-system account of this command ("wang (uid 1003)"), written on every
        # record; set once by `Authority.acting` (None: records carry no account).
        self.os_account: str | None = None
        self.seal_deferred: str | None = None  # why a seal that fell due was left open

    @classmethod
    def for_catalog(
        cls, catalog_root: str | os.PathLike[str], *, store: WormStore,
        clock: Callable[[], dt.datetime], **kw: Any,
    ) -> AuditLog:
        """The log that lives beside a catalog's batches, in `<catalog>/audit/`; it records
        that catalog's commits while it is open (module doc)."""
        log = cls(Path(catalog_root) / "audit", store=store, clock=clock, **kw)
        log._unregister = register_recorder(Path(catalog_root), log.record_commit)
        return log

    def now(self) -> dt.datetime:
        """The log's clock (what record times come from)."""
        return self._clock()

    def record_commit(self, location: str, manifest: Manifest, digest: str) -> AuditRecord:
        """Record one catalog commit (its manifest), durable on return."""
        rec = self.append(self._last_actor or "catalog", CATALOG_COMMIT,
                          audit_object(manifest), ALLOWED,
                          audit_reason(location, manifest, digest))
        self.sync()
        return rec

    def close(self) -> None:
        if self._unregister is not None:
            self._unregister()
            self._unregister = None
        if self._fd is not None:
            if self._dirty:
                os.fdatasync(self._fd)
                self._dirty = False
            os.close(self._fd)
            self._fd = None
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- locking and state ----------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        if self._lock_fd < 0:
            raise AuditError(f"{self.root}: audit log used after close")
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _segment_path(self, n: int) -> Path:
        return sealing.segment_path(self.root, n)

    def _read_seals(self) -> list[tuple[bytes, Seal | None]]:
        return sealing.read_seals(self.root)

    def _stale(self) -> bool:
        """True when another process appended or sealed since this one last looked."""
        if self._fd is None:
            return True
        st = os.fstat(self._fd)
        return st.st_nlink == 0 or st.st_size != self._size

    def _reload(self) -> None:
        """Re-read where the chain ends: the open segment's tail, or the last seal. Locked."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        seals = self._read_seals()
        last_seal = seals[-1][1] if seals else None
        self._segment = len(seals) + 1
        self._last_seq, self._last_hash = (
            (last_seal.last_seq, last_seal.last_blake3) if last_seal else (0, chain.GENESIS)
        )
        sealing.drop_sealed_leftovers(self.root, seals)
        path = self._segment_path(self._segment)
        created = not path.exists()
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        if created:
            fsync_dir(self.root)
        data = os.pread(fd, os.fstat(fd).st_size, 0)
        if data and not data.endswith(b"\n"):
            # A write that never finished was never acknowledged (its fsync never returned):
            # drop the torn fragment, or the next record would be glued onto it.
            keep = data.rfind(b"\n") + 1
            os.ftruncate(fd, keep)
            os.fsync(fd)
            data = data[:keep]
        lines = data.splitlines()
        self._count = len(lines)
        self._first_at = None
        if lines:
            self._last_hash = chain.digest(lines[-1])
            try:
                self._last_seq = decode(lines[-1]).seq
            except ValueError:
                self._last_seq += len(lines)  # damaged tail: keep counting; verify will say
            with contextlib.suppress(ValueError):
                self._first_at = decode(lines[0]).at_utc
        self._fd = fd
        self._size = len(data)

    # --- writing --------------------------------------------------------------------------
    def append(
        self, actor_id: str, action: str, object_id: str, result: str, reason: str
    ) -> AuditRecord:
        """Append one record (durable on return, unless inside `group_commit`)."""
        if result not in RESULTS:
            raise ValueError(f"audit result must be one of {RESULTS}, not {result!r}")
        with self._locked():
            if self._stale():
                self._reload()
            assert self._fd is not None
            if action != CATALOG_COMMIT and result == ALLOWED:
                self._last_actor = actor_id
            rec = AuditRecord(
                seq=self._last_seq + 1, at_utc=self._clock(), actor_id=actor_id,
                action=action, object_id=object_id, result=result, reason=reason,
                prev_blake3=self._last_hash, os_account=self.os_account,
            )
            line = encode(rec)
            try:
                os.write(self._fd, line + b"\n")
                if self._defer:
                    self._dirty = True
                else:
                    os.fdatasync(self._fd)
            except OSError as exc:
                raise AuditError(f"{self.root}: cannot append to the audit log: "
                                 f"{exc.strerror}") from exc
            self._size += len(line) + 1
            self._count += 1
            self._last_seq = rec.seq
            self._last_hash = chain.digest(line)
            if self._first_at is None:
                self._first_at = rec.at_utc
            due = self._count >= self.seal_every or rec.at_utc - self._first_at >= self.seal_after
            if due and self.seal_deferred is None:
                self._seal_due_locked()
        return rec

    def _seal_due_locked(self) -> None:
        """A seal that fell due in this command. When the store refuses this command's
        credentials the put (the analyst's read-only keys, an auxiliary's put-only ones),
        the segment stays open and local, nothing is recorded, and this log stops trying:
        the next command with write rights (`custody audit seal`, the service's timer)
        seals it. Any other failure raises, as before."""
        try:
            self._seal_locked()
        except AuditError as exc:
            if not getattr(exc.__cause__, "access_denied", False):
                raise
            self.seal_deferred = str(exc)

    @contextlib.contextmanager
    def group_commit(self) -> Iterator[AuditLog]:
        """Appends inside are fsynced once, at the end (ingest: once per catalog batch)."""
        self._defer += 1
        try:
            yield self
        finally:
            self._defer -= 1
            if not self._defer:
                self.sync()

    def sync(self) -> None:
        """Make every record appended so far durable."""
        if self._fd is not None and self._dirty:
            os.fdatasync(self._fd)
            self._dirty = False

    def seal(self) -> Seal | None:
        """Seal the open segment now (None if it is empty)."""
        with self._locked():
            if self._stale():
                self._reload()
            return self._seal_locked()

    def _seal_locked(self) -> Seal | None:
        if self._count == 0 or self._fd is None:
            return None
        os.fdatasync(self._fd)
        self._dirty = False
        data = os.pread(self._fd, self._size, 0)
        lines = data.splitlines()
        at = self._clock()
        try:
            put = sealing.put_segment(self.store, data, retain_until_utc=at + self.seal_retention)
        except StoreError as exc:
            # The segment stays open and local, seals.jsonl untouched; the next seal tries
            # again (`exc.access_denied`: the store refused these credentials the put).
            raise AuditError(f"cannot seal audit segment {self._segment}: {exc}") from exc
        seals = self._read_seals()
        try:
            first_seq = decode(lines[0]).seq
        except ValueError:
            first_seq = self._last_seq - len(lines) + 1
        seal = Seal(
            segment=self._segment, key=put.key, first_seq=first_seq, last_seq=self._last_seq,
            records=len(lines), last_blake3=self._last_hash, sealed_at_utc=at,
            prev_blake3=sealing.next_seal_link(seals),
        )
        sealing.append_seal(self.root, seal)
        self._segment_path(self._segment).unlink()
        fsync_dir(self.root)
        os.close(self._fd)
        self._fd = None  # the next append opens the next segment
        self._size = -1
        self._count = 0
        self._first_at = None
        return seal

    # --- reading --------------------------------------------------------------------------
    def _snapshot(self) -> tuple[list[tuple[bytes, Seal | None]], int, bytes]:
        """The seals, the open segment's number and its bytes, read under the lock."""
        with self._locked():
            if self._dirty:
                self.sync()
            seals = self._read_seals()
            n = len(seals) + 1
            try:
                data = self._segment_path(n).read_bytes()
            except FileNotFoundError:
                data = b""
        return seals, n, data

    def _read_sealed(self, seal: Seal) -> bytes:
        with self.store.open(seal.key) as fh:
            return fh.read()

    def records(self) -> Iterator[AuditRecord]:
        """Every readable record, oldest first (sealed segments from the store). Damaged
        lines are skipped here; `verify` is what reports them."""
        seals, _, open_data = self._snapshot()
        for _, seal in seals:
            if seal is None:
                continue
            try:
                data = self._read_sealed(seal)
            except ObjectNotFound:
                continue
            yield from parse_lines(data)
        yield from parse_lines(open_data)

    def show(
        self,
        *,
        actor_id: str | None = None,
        object_id: str | None = None,
        action: str | None = None,
        result: str | None = None,
        since_utc: dt.datetime | None = None,
        until_utc: dt.datetime | None = None,
    ) -> list[AuditRecord]:
        """Records matching every given filter; `object_id` also matches a prefix."""
        out = []
        for r in self.records():
            if actor_id is not None and r.actor_id != actor_id:
                continue
            if object_id is not None and not r.object_id.startswith(object_id):
                continue
            if action is not None and r.action != action:
                continue
            if result is not None and r.result != result:
                continue
            if since_utc is not None and r.at_utc < since_utc:
                continue
            if until_utc is not None and r.at_utc >= until_utc:
                continue
            out.append(r)
        return out

    def verify(self) -> VerifyReport:
        """Recompute the whole chain (sealed segments read back from the store). The
        report's `verification` is the shape every kind of check shares."""
        seals, open_no, open_data = self._snapshot()

        def read_sealed(seal: Seal) -> bytes:
            try:
                return self._read_sealed(seal)
            except ObjectNotFound:
                raise SegmentMissing(seal.key) from None

        return verify_log(seals, read_sealed, open_no, open_data,
                          log=str(self.root), store_uri=self.store.uri)
