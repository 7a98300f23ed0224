"""The WORM store interface: put once, read, inspect, extend retention, hold. No delete.

Keys are content addressed (`b3/<hex BLAKE3>`), so putting the same bytes twice is
harmless and a key names exactly one content. There is deliberately no delete, no
overwrite and no way to shorten retention in this interface: an implementation that
could do them would not be an evidence store.

`put_stream` is how ingest writes: the caller streams the bytes once, hashing them as they
pass, and only learns the key at the end; the store commits the object under that key
(or finds it already there) atomically, so a crash never leaves a half-stored object
visible under a key.
"""

from __future__ import annotations

import datetime as dt
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from pipeline.errors import CustodyError
from pipeline.integrity.hashing import FileDigest, digest_file


class StoreError(CustodyError):
    """The store could not do what was asked."""


class StoreUnavailable(StoreError):
    """The store cannot be reached or used at all."""

    words: str | None = None  # what went wrong, without the request ("connection refused")


class ObjectNotFound(StoreError):
    pass


class RetentionRefused(StoreError):
    """A request would shorten retention, lower a tier or lift a hold it may not."""


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size_bytes: int
    version: str | None
    retain_until_utc: dt.datetime | None
    legal_hold: bool
    stored_at_utc: dt.datetime | None


@dataclass(frozen=True, slots=True)
class PutResult:
    key: str
    size_bytes: int
    version: str | None
    created: bool  # False when the same content was already stored


def key_for(blake3_hex: str) -> str:
    """The content address of bytes whose BLAKE3 is `blake3_hex`."""
    if len(blake3_hex) != 64 or any(c not in "0123456789abcdef" for c in blake3_hex):
        raise ValueError(f"not a BLAKE3 hex digest: {blake3_hex!r}")
    return f"b3/{blake3_hex}"


class StagedObject(ABC):
    """Bytes being written; `commit` files them under their content key, `abort` drops them."""

    @abstractmethod
    def write(self, data: memoryview | bytes) -> None: ...

    def fill(self, path: str | os.PathLike[str], *, chunk_size: int) -> FileDigest:
        """Read `path` once into this object and hash it. InputError if it cannot be read;
        OSError if it cannot be written. A store may copy faster than `write` allows."""
        return digest_file(path, chunk_size=chunk_size, sink=self.write)

    @abstractmethod
    def commit(
        self, blake3_hex: str, *, retain_until_utc: dt.datetime, durable: bool = True
    ) -> PutResult:
        """File the bytes under their content key, locked until `retain_until_utc`.
        `durable=False`: the bytes are durable on return, the object's name and retention
        record only at the store's next `sync()` (a caller that commits many objects and
        then one catalog batch syncs once, before the batch); a store whose commits are
        durable anyway (S3: when acknowledged) ignores it."""

    @abstractmethod
    def abort(self) -> None: ...


class WormStore(ABC):
    """A write-once store. Implementations: `LocalStore` (default) and `S3Store`."""

    uri: str
    # True: ingest streams its single read into `stage()` (a local disk). False: ingest
    # hashes first and hands the file to `put_file`, which re-reads it from the page cache
    # and refuses a mismatch (S3 needs the key before an upload starts).
    streams_puts: bool = True
    # The first StoreUnavailable this store raised in this process: the store itself failed
    # (down, unreachable, credentials refused), not one file. A run that saw it ends with
    # exit 2 (`RunResult.store_failed`). None: it never did.
    unavailable: StoreUnavailable | None = None

    @abstractmethod
    def stage(self, size_hint: int | None = None) -> StagedObject:
        """Start writing a new object whose key is known only once its bytes are."""

    def put_file(
        self, path: str, blake3_hex: str, *, retain_until_utc: dt.datetime
    ) -> PutResult:
        """Store a file whose BLAKE3 is already known; the store re-checks it while copying.

        Implementations must never make visible an object whose bytes do not hash to
        `blake3_hex` (the source may change between hashing and copying).
        """
        import blake3

        hasher = blake3.blake3()
        staged = self.stage()
        try:
            with open(path, "rb") as fh:
                while data := fh.read(8 << 20):
                    hasher.update(data)
                    staged.write(data)
            got = hasher.hexdigest()
            if got != blake3_hex:
                raise StoreError(
                    f"{path}: changed while being stored (BLAKE3 {got} != {blake3_hex})"
                )
            return staged.commit(blake3_hex, retain_until_utc=retain_until_utc)
        except BaseException:
            staged.abort()
            raise

    def sync(self) -> None:
        """Every object committed so far, by any process of this machine, is durable
        (`StagedObject.commit(durable=False)`); OSError or StoreError if it cannot be made
        so. Nothing to do for a store whose commits are durable when they return."""
        return None

    def abort_stale_uploads(self, older_than: dt.timedelta) -> int:
        """Abort what killed runs left half-written in the store itself, started more than
        `older_than` ago (a concurrent run's live writes are younger); how many. A store
        that leaves nothing there (the local one) aborts nothing."""
        if older_than < dt.timedelta(0):
            raise ValueError(f"older_than must not be negative, got {older_than}")
        return 0

    @abstractmethod
    def open(
        self, key: str, start: int = 0, end: int | None = None, *, verify: bool = True
    ) -> BinaryIO:
        """Read bytes [start, end) of an object (the whole object by default).

        A whole-object read checks the bytes against the key's BLAKE3 as they stream
        where the store can (`verify=False`: the caller checks, e.g. chunk by chunk)."""

    def iter_range(
        self, key: str, start: int = 0, end: int | None = None, block: int = 8 << 20
    ) -> Iterator[bytes]:
        with self.open(key, start, end) as fh:
            while chunk := fh.read(block):
                yield chunk

    @abstractmethod
    def head(self, key: str) -> ObjectInfo:
        """What the store knows of an object; ObjectNotFound if it has none."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def extend_retention(self, key: str, retain_until_utc: dt.datetime) -> ObjectInfo:
        """Move retain-until later; RetentionRefused if it would move earlier."""

    @abstractmethod
    def set_legal_hold(self, key: str, on: bool) -> ObjectInfo:
        """Place or lift a legal hold. Who may lift is decided above the store."""
