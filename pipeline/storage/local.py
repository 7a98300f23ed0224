"""The embedded default store: a directory on one machine, no server.

Objects are files under `objects/b3/<2 hex>/<64 hex>`, written to `tmp/`, fsynced, then
linked into place (a link never replaces an existing name, so two writers of the same
content cannot clobber each other) and made read-only. Retention and legal holds live in
`ledger.jsonl`, an append-only log chained by `pipeline.integrity.chain`: each line
carries the BLAKE3 of the line before it (`check_ledger` names the first break).

Tamper-EVIDENT, not tamper-proof: anyone with root on the machine can change a file or
the ledger. `custody verify` re-hashes objects against the catalog and the ledger's chain
shows edits to it; only the S3 Object Lock store refuses such changes outright.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import io
import json
import mmap
import os
import stat
import time
import uuid
from pathlib import Path
from typing import Any, BinaryIO

from pipeline.durable import fsync_dir, sync_filesystem
from pipeline.integrity import chain
from pipeline.integrity.hashing import CopyUnsupported, FileDigest, digest_copy
from pipeline.storage.base import (
    ObjectInfo,
    ObjectNotFound,
    PutResult,
    RetentionRefused,
    StagedObject,
    StoreError,
    StoreUnavailable,
    WormStore,
    key_for,
)
from schemas.media import Finding, Subject
from schemas.verification import Verification

LEDGER_NOTE = (
    "local store ledger: tamper-EVIDENT, not tamper-proof; the hash chain shows a changed, "
    "removed or moved line, but the owner of the directory or root can rewrite it whole"
)
# Writeback is started per MiB written. Measured on this project's benchmark disk (ext4 on
# virtio): 1 MiB pieces write 456 MB durably in 0.22-0.27 s, as fast as `cp` + `sync`;
# 2-8 MiB pieces stall now and then for 1-2 s (the writer is throttled as dirty pages pile
# up), so their median is 0.4-1.2 s.
_WRITEBACK_PIECE = 1 << 20



def _line(record: dict[str, Any]) -> bytes:
    """A ledger line: its JSON with sorted keys (so `"key"` comes just before `"op"`)."""
    return json.dumps(record, ensure_ascii=False, sort_keys=True).encode() + b"\n"


def _last_line(fh: BinaryIO) -> bytes:
    """The last line with something in it, without its newline, read from the end (a put
    must not read the whole ledger of a store holding millions of objects)."""
    pos = fh.seek(0, os.SEEK_END)
    tail = b""
    while pos > 0:
        step = min(4096, pos)
        pos -= step
        fh.seek(pos)
        tail = fh.read(step) + tail
        lines = tail.split(b"\n")
        for line in reversed(lines if pos == 0 else lines[1:]):  # [0] may be cut
            if line.strip():
                return line
    return b""


def _ledger_link(line: bytes) -> str | None:
    try:
        link = json.loads(line).get("prev_blake3")
    except (ValueError, AttributeError):
        return None
    return link if isinstance(link, str) else None


class _RangeReader(io.RawIOBase):
    """A read-only view of bytes [start, end) of an open file."""

    def __init__(self, fh: BinaryIO, start: int, end: int) -> None:
        super().__init__()
        self._fh = fh
        self._left = max(0, end - start)
        fh.seek(start)

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        n = min(len(view), self._left)
        if n == 0:
            return 0
        got = self._fh.readinto(view[:n])  # type: ignore[attr-defined]
        self._left -= got
        return int(got)

    def close(self) -> None:
        self._fh.close()
        super().close()


def _abandoned(part: Path, *, settle_s: float = 0.0) -> bool:
    """Whether no live process holds this staged copy (its writer died)."""
    try:
        fd = os.open(part, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        if time.time() - os.fstat(fd).st_ctime < settle_s:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # its writer holds it
        return True
    finally:
        os.close(fd)


class _LocalStaged(StagedObject):
    def __init__(self, store: LocalStore) -> None:
        self._store = store
        self._path = store.root / "tmp" / f"{uuid.uuid4().hex}.part"
        # Read and write: `fill` maps the copy to hash it.
        try:
            self._fd: int | None = os.open(
                self._path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600
            )
        except OSError as exc:
            raise StoreError(
                f"{self._path.parent}: the store cannot stage an object: {exc.strerror}"
            ) from exc
        # Held until the copy is committed or aborted, and by the kernel only while this
        # process lives: `clear_staging` removes only copies nobody holds.
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._size = 0

    def fill(self, path: str | os.PathLike[str], *, chunk_size: int) -> FileDigest:
        """The kernel copies `path` here and the copy is hashed (`digest_copy`); where it
        cannot (another filesystem), the bytes are read and written (`write`)."""
        assert self._fd is not None and self._size == 0, "fill of a used staged object"
        try:
            digest = digest_copy(path, self._fd, chunk_size=chunk_size)
        except CopyUnsupported:
            return super().fill(path, chunk_size=chunk_size)
        self._size = digest.size_bytes
        return digest

    def write(self, data: memoryview | bytes) -> None:
        assert self._fd is not None, "write after commit or abort"
        view = memoryview(data)
        for start in range(0, len(view), _WRITEBACK_PIECE):
            piece = view[start : start + _WRITEBACK_PIECE]
            while piece:
                n = os.write(self._fd, piece)
                # Start writeback of what was just written (Linux: DONTNEED on dirty pages
                # queues them for the disk), so the fsync at commit finds little to flush.
                with contextlib.suppress(AttributeError, OSError):
                    os.posix_fadvise(self._fd, self._size, n, os.POSIX_FADV_DONTNEED)
                self._size += n
                piece = piece[n:]

    def commit(
        self, blake3_hex: str, *, retain_until_utc: dt.datetime, durable: bool = True
    ) -> PutResult:
        """The bytes are fsynced before the object gets its name, so a name never stands
        for bytes that are not on disk. Then the name and the ledger's `put` line: fsynced
        here, or with `durable=False` left to the next `LocalStore.sync()` (one syncfs for
        a batch of objects instead of two fsyncs each). A crash before that sync may lose
        either, never bytes under a name: a lost name is stored again by the next run (the
        catalog batch that would have named it is committed only after the sync); a lost
        `put` line is written again when the same content is committed (`created=False`
        below)."""
        assert self._fd is not None, "commit after commit or abort"
        key = key_for(blake3_hex)
        final = self._store.object_path(key)
        try:
            os.fsync(self._fd)
            os.fchmod(self._fd, 0o444)
        finally:
            os.close(self._fd)
            self._fd = None
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(self._path, final)
            created = True
        except FileExistsError:
            created = False
            if final.stat().st_size != self._size:
                raise StoreError(
                    f"{final}: an object with key {key} exists with another size; "
                    "the store is damaged, run `custody verify`"
                ) from None
        self._path.unlink()
        if created and durable:
            fsync_dir(final.parent)
        if created or not self._store._has_put(key):
            self._store._append(
                {"op": "put", "key": key, "size_bytes": self._size,
                 "retain_until_utc": retain_until_utc.isoformat()}, sync=durable,
            )
        return PutResult(key=key, size_bytes=self._size, version=None, created=created)

    def abort(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        with contextlib.suppress(FileNotFoundError):
            self._path.unlink()


class LocalStore(WormStore):
    def __init__(self, root: str | os.PathLike[str], *, clock: Any = None) -> None:
        self.root = Path(root).resolve()
        self.uri = self.root.as_uri()
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        try:
            (self.root / "objects").mkdir(parents=True, exist_ok=True)
            (self.root / "tmp").mkdir(exist_ok=True)
            (self.root / "ledger.jsonl").touch(exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(f"{self.root}: cannot use as a store: {exc.strerror}") from exc
        self._clean_tmp()

    def _clean_tmp(self) -> None:
        """Drop staging files of writers that died: they were never committed under a key."""
        for part in (self.root / "tmp").glob("*.part"):
            # A live writer touches its file continuously; an hour of silence means it died.
            with contextlib.suppress(FileNotFoundError):
                age = self._clock() - dt.datetime.fromtimestamp(part.stat().st_mtime, dt.UTC)
                if age > dt.timedelta(hours=1) and _abandoned(part):
                    part.unlink()

    def clear_staging(self) -> int:
        """Remove every staged copy no live writer holds (a killed ingest's `*.part`); how
        many. A live writer holds an exclusive flock on its copy from the moment it exists
        until commit or abort; a copy changed in the last second is left alone (its writer
        may be between creating and locking it)."""
        removed = 0
        for part in (self.root / "tmp").glob("*.part"):
            with contextlib.suppress(FileNotFoundError):
                if _abandoned(part, settle_s=1.0):
                    part.unlink()
                    removed += 1
        return removed

    def abort_stale_uploads(self, older_than: dt.timedelta) -> int:
        """Nothing to abort: a local put is one temp file, renamed when complete, and a
        killed writer's `*.part` is removed by `clear_staging` (when no writer holds it)."""
        return super().abort_stale_uploads(older_than)

    # --- paths and ledger --------------------------------------------------------------
    def object_path(self, key: str) -> Path:
        if not key.startswith("b3/"):
            raise ObjectNotFound(f"{key}: not a content key of this store")
        hexd = key[3:]
        key_for(hexd)
        return self.root / "objects" / "b3" / hexd[:2] / hexd

    def _ledger_lines(self) -> list[dict[str, Any]]:
        out = []
        with open(self.root / "ledger.jsonl", encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    out.append(json.loads(line))
        return out

    def _append(self, entry: dict[str, Any], *, sync: bool = True) -> None:
        """One chained line; fsynced unless `sync=False` (then the next `sync()` does)."""
        path = self.root / "ledger.jsonl"
        with open(path, "a+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            prev = chain.link(_last_line(fh))
            record = {"at_utc": self._clock().isoformat(), **entry, "prev_blake3": prev}
            fh.write(_line(record))
            fh.flush()
            if sync:
                os.fsync(fh.fileno())

    def _has_put(self, key: str) -> bool:
        """Whether the ledger records the `put` of `key` (one scan of its bytes: asked only
        when content already stored is committed again, after a crash)."""
        probe = _line({"key": key, "op": "put"})[1:-2]  # `"key": "b3/...", "op": "put"`
        with open(self.root / "ledger.jsonl", "rb") as fh:
            if os.fstat(fh.fileno()).st_size == 0:
                return False
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                return mapped.find(probe) >= 0

    def sync(self) -> None:
        """One syncfs(2) of the store's filesystem: every object committed with
        `durable=False` until now, by any process here, keeps its name and ledger line."""
        try:
            sync_filesystem(self.root)
        except OSError as exc:
            raise StoreUnavailable(f"{self.root}: the store cannot make its objects "
                                   f"durable: {exc.strerror}") from exc

    def check_ledger(self) -> Verification:
        """The ledger's hash chain, every line checked; a break is LEDGER_CHAIN_BROKEN
        naming the first line whose link does not match."""
        numbered: list[tuple[int, bytes]] = []
        with open(self.root / "ledger.jsonl", "rb") as fh:
            for n, line in enumerate(fh, start=1):
                raw = line.rstrip(b"\n")
                if raw:
                    numbered.append((n, raw))
        brk = chain.verify_chain((raw for _, raw in numbered), _ledger_link)
        findings: tuple[Finding, ...] = ()
        if brk is not None:
            n = numbered[brk.index][0]
            why = ("chain broken (entry or its predecessor changed)" if brk.found is not None
                   else "chain broken (not a ledger entry)")
            findings = (Finding("LEDGER_CHAIN_BROKEN", f"ledger.jsonl line {n}: {why}",
                                subject=Subject("store", self.uri)),)
        return Verification("ledger", Subject("store", self.uri), len(numbered), findings,
                            LEDGER_NOTE)

    def verify_ledger(self) -> str | None:
        """None if the ledger's hash chain is whole, else where it first breaks (the
        detail of `check_ledger`'s finding)."""
        result = self.check_ledger()
        return result.findings[0].detail if result.findings else None

    def _state(self, key: str) -> tuple[dt.datetime | None, bool, dt.datetime | None]:
        retain: dt.datetime | None = None
        hold = False
        stored: dt.datetime | None = None
        for e in self._ledger_lines():
            if e.get("key") != key:
                continue
            if e["op"] == "put":
                stored = dt.datetime.fromisoformat(e["at_utc"])
            if "retain_until_utc" in e:
                t = dt.datetime.fromisoformat(e["retain_until_utc"])
                retain = t if retain is None or t > retain else retain
            if e["op"] == "hold":
                hold = bool(e["on"])
        return retain, hold, stored

    # --- the interface --------------------------------------------------------------------
    def stage(self, size_hint: int | None = None) -> StagedObject:
        return _LocalStaged(self)

    def open(
        self, key: str, start: int = 0, end: int | None = None, *, verify: bool = True
    ) -> BinaryIO:
        # `verify` is accepted for the interface; a local read is checked by
        # `custody verify`, chunk by chunk, not here.
        path = self.object_path(key)
        try:
            fh = open(path, "rb", buffering=0)  # noqa: SIM115 - handed to the caller
        except FileNotFoundError:
            raise ObjectNotFound(f"{key}: not in store {self.uri}") from None
        size = os.fstat(fh.fileno()).st_size
        stop = size if end is None else min(end, size)
        return io.BufferedReader(_RangeReader(fh, start, stop), buffer_size=1 << 20)

    def exists(self, key: str) -> bool:
        return self.object_path(key).exists()

    def head(self, key: str) -> ObjectInfo:
        path = self.object_path(key)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise ObjectNotFound(f"{key}: not in store {self.uri}") from None
        retain, hold, stored = self._state(key)
        return ObjectInfo(
            key=key, size_bytes=st.st_size, version=None, retain_until_utc=retain,
            legal_hold=hold, stored_at_utc=stored,
        )

    def extend_retention(self, key: str, retain_until_utc: dt.datetime) -> ObjectInfo:
        info = self.head(key)
        if info.retain_until_utc is not None and retain_until_utc < info.retain_until_utc:
            raise RetentionRefused(
                f"{key}: retain-until {retain_until_utc.isoformat()} is earlier than the "
                f"current {info.retain_until_utc.isoformat()}; retention only grows"
            )
        if info.retain_until_utc != retain_until_utc:
            self._append(
                {"op": "retention", "key": key, "retain_until_utc": retain_until_utc.isoformat()}
            )
        return self.head(key)

    def set_legal_hold(self, key: str, on: bool) -> ObjectInfo:
        self.head(key)
        self._append({"op": "hold", "key": key, "on": on})
        return self.head(key)

    def is_read_only(self, key: str) -> bool:
        return not (self.object_path(key).stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP))
