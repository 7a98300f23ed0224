"""The audit log: append-only, hash-chained, sealed in batches into the WORM store.

Layout under `<catalog>/audit/`:
    segment-NNNNNN.jsonl   the open segment: one record per line, appended and fsynced
    seals.jsonl            one line per sealed segment (its store key, record range and
                           last record's hash), itself hash-chained like the records
    lock                   flock(2) target: one writer at a time, across processes

Appending is one `write(2)` of one short line and one `fdatasync(2)`; the previous record's
hash and number stay in memory and are re-read only when another process appended in
between (the file grew) or sealed (the segment was unlinked). Inside `group_commit()` the
fsync is done once at the end, for callers such as ingest that append per file and commit
per batch.

Every `seal_every` records (or when the open segment's first record is older than
`seal_after`) the segment's bytes are put into the WORM store under their BLAKE3 key, the
seal line is appended, and the local segment file is removed: from then on the store's
copy is the only one. `verify` reads sealed segments back from the store, recomputes every
link and names the FIRST break: which segment, which record, and whether a record was
edited, deleted or moved.

Limits (said in `verify`'s docs too): this is tamper-EVIDENT. Records after the last seal
are only as safe as the local disk: truncating the tail of the open segment leaves a
shorter, valid chain. Seal often (`custody audit seal` from a timer) to shorten that window.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import blake3

from pipeline.durable import fsync_dir
from pipeline.errors import CustodyError
from pipeline.storage.base import ObjectNotFound, StoreError, WormStore
from schemas.audit import GENESIS, RESULTS, AuditRecord, decode, encode

DEFAULT_SEAL_EVERY = 1000
DEFAULT_SEAL_AFTER = dt.timedelta(hours=1)
DEFAULT_SEAL_RETENTION = dt.timedelta(days=3653)  # ten years; retention only grows later

_SEGMENT_RE = re.compile(r"^segment-(\d{6})\.jsonl$")


class AuditError(CustodyError):
    """The audit log cannot be written or read."""


def _b3(data: bytes) -> str:
    return blake3.blake3(data).hexdigest()



@dataclass(frozen=True, slots=True)
class Seal:
    """One sealed segment: the WORM object holding its bytes and what it must contain."""

    segment: int
    key: str
    first_seq: int
    last_seq: int
    records: int
    last_blake3: str
    sealed_at_utc: dt.datetime
    prev_blake3: str  # BLAKE3 of the previous line of seals.jsonl

    def to_line(self) -> bytes:
        doc = {
            "segment": self.segment, "key": self.key, "first_seq": self.first_seq,
            "last_seq": self.last_seq, "records": self.records,
            "last_blake3": self.last_blake3,
            "sealed_at_utc": self.sealed_at_utc.astimezone(dt.UTC).isoformat(),
            "prev_blake3": self.prev_blake3,
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_line(cls, line: bytes) -> Seal:
        try:
            d: Any = json.loads(line)
            return cls(
                segment=int(d["segment"]), key=str(d["key"]), first_seq=int(d["first_seq"]),
                last_seq=int(d["last_seq"]), records=int(d["records"]),
                last_blake3=str(d["last_blake3"]),
                sealed_at_utc=dt.datetime.fromisoformat(str(d["sealed_at_utc"])),
                prev_blake3=str(d["prev_blake3"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"not a seal line ({exc})") from None


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """Where the chain first breaks. `kind`: edited | deleted | reordered | incomplete."""

    kind: str
    segment: int
    record_number: int | None  # 1-based line in the segment; None for a whole segment
    seq: int | None
    detail: str

    def __str__(self) -> str:
        where = f"segment {self.segment}"
        if self.record_number is not None:
            where += f", record {self.record_number}"
        if self.seq is not None:
            where += f" (seq {self.seq})"
        return f"{where}: {self.kind}: {self.detail}"

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "segment": self.segment,
                "record_number": self.record_number, "seq": self.seq, "detail": self.detail,
                "message": str(self)}


@dataclass(frozen=True, slots=True)
class VerifyReport:
    ok: bool
    segments: int
    sealed_segments: int
    records: int
    last_blake3: str
    first_break: ChainBreak | None

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "segments": self.segments,
                "sealed_segments": self.sealed_segments, "records": self.records,
                "last_blake3": self.last_blake3,
                "first_break": self.first_break.as_json() if self.first_break else None}


@dataclass(slots=True)
class _Entry:
    segment: int
    number: int  # 1-based line in its segment
    raw: bytes
    rec: AuditRecord | None
    error: str | None
    complete: bool = True  # False: the final line of the open segment lacks its newline


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
        self._last_hash = GENESIS
        self._first_at: dt.datetime | None = None
        self._defer = 0
        self._dirty = False

    @classmethod
    def for_catalog(
        cls, catalog_root: str | os.PathLike[str], *, store: WormStore,
        clock: Callable[[], dt.datetime], **kw: Any,
    ) -> AuditLog:
        """The log that lives beside a catalog's batches, in `<catalog>/audit/`."""
        return cls(Path(catalog_root) / "audit", store=store, clock=clock, **kw)

    def close(self) -> None:
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
        return self.root / f"segment-{n:06d}.jsonl"

    def _read_seals(self) -> list[tuple[bytes, Seal | None]]:
        out: list[tuple[bytes, Seal | None]] = []
        with open(self.root / "seals.jsonl", "rb") as fh:
            for line in fh:
                raw = line.rstrip(b"\n")
                if not raw:
                    continue
                try:
                    out.append((raw, Seal.from_line(raw)))
                except ValueError:
                    out.append((raw, None))
        return out

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
            (last_seal.last_seq, last_seal.last_blake3) if last_seal else (0, GENESIS)
        )
        self._drop_sealed_leftovers(seals)
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
            self._last_hash = _b3(lines[-1])
            try:
                self._last_seq = decode(lines[-1]).seq
            except ValueError:
                self._last_seq += len(lines)  # damaged tail: keep counting; verify will say
            with contextlib.suppress(ValueError):
                self._first_at = decode(lines[0]).at_utc
        self._fd = fd
        self._size = len(data)

    def _drop_sealed_leftovers(self, seals: list[tuple[bytes, Seal | None]]) -> None:
        """A crash between sealing and unlinking leaves a sealed segment's local copy."""
        for p in self.root.glob("segment-*.jsonl"):
            m = _SEGMENT_RE.match(p.name)
            if not m or int(m.group(1)) > len(seals):
                continue
            seal = seals[int(m.group(1)) - 1][1]
            if seal is not None and seal.key == f"b3/{_b3(p.read_bytes())}":
                p.unlink()

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
            rec = AuditRecord(
                seq=self._last_seq + 1, at_utc=self._clock(), actor_id=actor_id,
                action=action, object_id=object_id, result=result, reason=reason,
                prev_blake3=self._last_hash,
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
            self._last_hash = _b3(line)
            if self._first_at is None:
                self._first_at = rec.at_utc
            if self._count >= self.seal_every or rec.at_utc - self._first_at >= self.seal_after:
                self._seal_locked()
        return rec

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
        hexd = _b3(data)
        at = self._clock()
        try:
            staged = self.store.stage(len(data))
            try:
                staged.write(data)
                put = staged.commit(hexd, retain_until_utc=at + self.seal_retention)
            except BaseException:
                staged.abort()
                raise
        except StoreError as exc:
            # The segment stays open and local; the next seal tries again.
            raise AuditError(f"cannot seal audit segment {self._segment}: {exc}") from exc
        seals = self._read_seals()
        try:
            first_seq = decode(lines[0]).seq
        except ValueError:
            first_seq = self._last_seq - len(lines) + 1
        seal = Seal(
            segment=self._segment, key=put.key, first_seq=first_seq, last_seq=self._last_seq,
            records=len(lines), last_blake3=self._last_hash, sealed_at_utc=at,
            prev_blake3=_b3(seals[-1][0]) if seals else GENESIS,
        )
        with open(self.root / "seals.jsonl", "ab") as fh:
            fh.write(seal.to_line() + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
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
            yield from _parse_lines(data)
        yield from _parse_lines(open_data)

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
        """Recompute the whole chain (sealed segments read back from the store)."""
        seals, open_no, open_data = self._snapshot()
        entries: list[_Entry] = []
        # seal, index of its first entry, index after its last, whether its bytes differ
        seal_checks: list[tuple[Seal, int, int, bool]] = []
        brk = _check_seals(seals)
        if brk is None:
            for _, seal in seals:
                assert seal is not None
                try:
                    data = self._read_sealed(seal)
                except ObjectNotFound:
                    brk = ChainBreak(
                        "deleted", seal.segment, None, None,
                        f"sealed segment object {seal.key} (records seq {seal.first_seq}.."
                        f"{seal.last_seq}) is missing from the store {self.store.uri}",
                    )
                    break
                start = len(entries)
                entries.extend(_entries(seal.segment, data, sealed=True))
                differ = _b3(data) != seal.key.removeprefix("b3/")
                seal_checks.append((seal, start, len(entries), differ))
        open_entries = _entries(open_no, open_data, sealed=False)
        entries.extend(open_entries)
        if brk is None:
            brk = _walk(entries, seal_checks)
        last = _b3(entries[-1].raw) if entries else GENESIS
        return VerifyReport(
            ok=brk is None, segments=len(seals) + (1 if open_entries else 0),
            sealed_segments=len(seals), records=len(entries), last_blake3=last,
            first_break=brk,
        )


def _parse_lines(data: bytes) -> Iterator[AuditRecord]:
    for line in data.splitlines():
        with contextlib.suppress(ValueError):
            yield decode(line)


def _entries(segment: int, data: bytes, *, sealed: bool) -> list[_Entry]:
    lines = data.split(b"\n")
    complete_tail = lines[-1] == b""
    if complete_tail:
        lines.pop()
    out = []
    for i, raw in enumerate(lines, start=1):
        try:
            rec, error = decode(raw), None
        except ValueError as exc:
            rec, error = None, str(exc)
        out.append(_Entry(segment, i, raw, rec, error))
    if out and not complete_tail and not sealed:
        out[-1].complete = False
    return out


def _check_seals(seals: list[tuple[bytes, Seal | None]]) -> ChainBreak | None:
    prev = GENESIS
    for i, (raw, seal) in enumerate(seals, start=1):
        if seal is None:
            return ChainBreak("edited", i, None, None,
                              f"seals.jsonl line {i} is not a seal record")
        if seal.segment != i:
            kind = "reordered" if seal.segment > i and any(
                s is not None and s.segment == i for _, s in seals[i:]) else "deleted"
            if seal.segment < i:
                kind = "reordered"
            return ChainBreak(kind, i, None, None,
                              f"seals.jsonl line {i} seals segment {seal.segment}, "
                              f"expected segment {i}")
        if seal.prev_blake3 != prev:
            return ChainBreak("edited", i - 1 if i > 1 else i, None, None,
                              f"seals.jsonl line {i} links to {seal.prev_blake3[:16]}…, but "
                              f"the seal line before it hashes to {prev[:16]}…: a seal line "
                              "was changed")
        prev = _b3(raw)
    return None


def _walk(
    entries: list[_Entry], seal_checks: list[tuple[Seal, int, int, bool]]
) -> ChainBreak | None:
    """The first broken link of the record chain, classified."""
    position: dict[int, int] = {}
    for i, e in enumerate(entries):
        if e.rec is not None:
            position.setdefault(e.rec.seq, i)
    ends: dict[int, list[tuple[Seal, int, bool]]] = {}
    for seal, start, end, differ in seal_checks:
        ends.setdefault(end, []).append((seal, start, differ))
    exp_seq, exp_prev = 1, GENESIS
    for i, e in enumerate(entries):
        for seal, start, differ in ends.get(i, ()):
            brk = _seal_end(entries, i, exp_seq - 1, exp_prev, seal, start, differ)
            if brk:
                return brk
        rec = e.rec
        if rec is None:
            if not e.complete:
                return ChainBreak("incomplete", e.segment, e.number, None,
                                  "the last line of the open segment was never completely "
                                  "written (a crash during an append)")
            return ChainBreak("edited", e.segment, e.number, None,
                              f"the record no longer reads as an audit record: {e.error}")
        if rec.seq == exp_seq:
            if rec.prev_blake3 != exp_prev:
                return _edited_link(entries, i, exp_prev)
        elif rec.seq > exp_seq:
            later = [position[s] for s in range(exp_seq, rec.seq) if position.get(s, -1) > i]
            if later:
                m = entries[later[0]]
                assert m.rec is not None
                return ChainBreak(
                    "reordered", e.segment, e.number, rec.seq,
                    f"expected seq {exp_seq} here; seq {m.rec.seq} appears later, at segment "
                    f"{m.segment} record {m.number}: records were moved out of order",
                )
            if rec.prev_blake3 == exp_prev:
                return ChainBreak(
                    "edited", e.segment, e.number, rec.seq,
                    f"the record links correctly to its predecessor but says seq {rec.seq} "
                    f"instead of {exp_seq}: its number was changed",
                )
            gone = f"seq {exp_seq}" if rec.seq - 1 == exp_seq else \
                f"seq {exp_seq}..{rec.seq - 1}"
            return ChainBreak(
                "deleted", e.segment, e.number, rec.seq,
                f"record {gone} deleted: this record links to a predecessor "
                f"({rec.prev_blake3[:16]}…) that is no longer in the log",
            )
        else:
            again = position.get(rec.seq, i) < i
            return ChainBreak(
                "reordered", e.segment, e.number, rec.seq,
                f"expected seq {exp_seq} here, found seq {rec.seq}"
                + (" again (a record was copied or moved)" if again
                   else ": records were moved out of order"),
            )
        exp_seq, exp_prev = rec.seq + 1, _b3(e.raw)
    for seal, start, differ in ends.get(len(entries), ()):
        brk = _seal_end(entries, len(entries), exp_seq - 1, exp_prev, seal, start, differ)
        if brk:
            return brk
    return None


def _seal_end(entries: list[_Entry], end: int, last_seq: int, last_hash: str,
              seal: Seal, start: int, bytes_differ: bool) -> ChainBreak | None:
    """At the end of a sealed segment: does it end where its seal says?"""
    if last_seq < seal.last_seq:
        gone = f"seq {last_seq + 1}" if last_seq + 1 == seal.last_seq else \
            f"seq {last_seq + 1}..{seal.last_seq}"
        return ChainBreak("deleted", seal.segment, end - start + 1, None,
                          f"record {gone} deleted from the end of the sealed segment "
                          f"(its seal says it ends at seq {seal.last_seq})")
    if last_hash != seal.last_blake3:
        e = entries[end - 1]
        return ChainBreak("edited", seal.segment, e.number, last_seq,
                          f"the segment's last record hashes to {last_hash[:16]}…, but its "
                          f"seal recorded {seal.last_blake3[:16]}…: the record was changed")
    if bytes_differ:
        return ChainBreak("edited", seal.segment, None, None,
                          f"the sealed object's bytes no longer hash to its key {seal.key} "
                          "(a change outside the records, e.g. whitespace)")
    return None


def _edited_link(entries: list[_Entry], i: int, exp_prev: str) -> ChainBreak:
    """Record i's link does not match its predecessor: which of the two was changed?"""
    e = entries[i]
    assert e.rec is not None
    nxt = entries[i + 1] if i + 1 < len(entries) else None
    this_ok = nxt is not None and nxt.rec is not None and nxt.rec.prev_blake3 == _b3(e.raw)
    if i > 0 and (this_ok or nxt is None):
        p = entries[i - 1]
        assert p.rec is not None
        hedge = "" if this_ok else " (or the link field of the record after it)"
        return ChainBreak(
            "edited", p.segment, p.number, p.rec.seq,
            f"the record was changed after it was written{hedge}: it now hashes to "
            f"{exp_prev[:16]}…, but the next record recorded {e.rec.prev_blake3[:16]}…",
        )
    return ChainBreak(
        "edited", e.segment, e.number, e.rec.seq,
        f"the record's link to its predecessor was changed: it says "
        f"{e.rec.prev_blake3[:16]}…, the predecessor hashes to {exp_prev[:16]}…",
    )
