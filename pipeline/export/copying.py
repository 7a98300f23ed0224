"""One read of a stored original: each chunk checked against the catalog's BLAKE3, the
manifest digests (SHA-512, SHA-256, SM3) computed and the bytes written, in one pass.

The reader (this thread) reads one chunk at a time from the store; the chunk check, each
digest and the write each run in their own thread (blake3, hashlib/OpenSSL and write(2)
release the GIL), chunk by chunk in order, with a few chunks in flight. A chunk whose
BLAKE3 differs stops the copy with `ChunkMismatch` naming the file, the chunk, its offset
and length; the caller removes what was written.
"""

from __future__ import annotations

import collections
import hashlib
import mmap
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import blake3

from pipeline.errors import CustodyError

_IN_FLIGHT = 8  # chunks read ahead of the slowest lane


class ChunkMismatch(CustodyError):
    """A stored chunk does not match the catalog: the export stops, nothing is released."""


class _Hash(Protocol):
    def update(self, data: bytes | memoryview, /) -> None: ...
    def hexdigest(self) -> str: ...


class _CryptographySM3:
    """SM3 from the `cryptography` package, where OpenSSL's hashlib has none."""

    def __init__(self) -> None:
        from cryptography.hazmat.primitives import hashes

        self._h = hashes.Hash(hashes.SM3())
        self._hex: str | None = None

    def update(self, data: bytes | memoryview, /) -> None:
        self._h.update(bytes(data))

    def hexdigest(self) -> str:
        if self._hex is None:
            self._hex = self._h.finalize().hex()
        return self._hex


def new_hash(algorithm: str) -> _Hash:
    """A hash object for a manifest algorithm (sha512, sha256, sm3)."""
    if algorithm == "sm3":
        try:
            h: _Hash = hashlib.new("sm3")
        except ValueError:
            return _CryptographySM3()
        return h
    return hashlib.new(algorithm)


@dataclass(frozen=True, slots=True)
class CopyResult:
    size_bytes: int
    digests: dict[str, str]  # algorithm -> hex


def copy_checked(
    src: BinaryIO, dest: Path, *, name: str, key: str, chunk_size: int,
    chunks: Sequence[str], size_bytes: int, algorithms: Sequence[str], fsync: bool = True,
) -> CopyResult:
    """Copy `src` to `dest` (created; fsynced unless the caller does it behind, `fsync`
    false), checking chunk i against `chunks[i]`."""
    hashes = {a: new_hash(a) for a in algorithms}
    lanes = {a: ThreadPoolExecutor(1, f"export-{a}") for a in algorithms}
    check_lane = ThreadPoolExecutor(1, "export-b3")
    write_lane = ThreadPoolExecutor(1, "export-write")
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    pending: collections.deque[list[Future[Any]]] = collections.deque()
    done = 0

    def check(index: int, data: bytes) -> None:
        offset = index * chunk_size
        if index >= len(chunks):
            raise ChunkMismatch(f"{name} ({key}): bytes past the catalog's {size_bytes} "
                                f"(chunk {index} at byte offset {offset}): not the original")
        if blake3.blake3(data, max_threads=1).hexdigest() != chunks[index]:
            raise ChunkMismatch(
                f"{name} ({key}): chunk {index} at byte offset {offset}, length {len(data)}, "
                "does not match the BLAKE3 recorded at ingest; the export stops")

    def write(data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]

    def settle(limit: int) -> None:
        while len(pending) > limit:
            for fut in pending.popleft():
                fut.result()

    def read() -> bytes:
        # A stream may answer short reads before its end (an HTTP body): fill the chunk.
        data = src.read(chunk_size)
        while data and len(data) < chunk_size:
            more = src.read(chunk_size - len(data))
            if not more:
                break
            data += more
        return data

    try:
        index = 0
        while data := read():
            futs: list[Future[Any]] = [check_lane.submit(check, index, data)]
            futs += [lanes[a].submit(hashes[a].update, data) for a in algorithms]
            futs.append(write_lane.submit(write, data))
            pending.append(futs)
            done += len(data)
            index += 1
            settle(_IN_FLIGHT)
        settle(0)
        if done != size_bytes or index != len(chunks):
            raise ChunkMismatch(f"{name} ({key}): the store gave {done} bytes in {index} "
                                f"chunks; the catalog says {size_bytes} bytes in "
                                f"{len(chunks)} chunks (chunk {min(index, len(chunks))} "
                                "is missing or short); the export stops")
        if fsync:
            os.fsync(fd)
    finally:
        for lane in (*lanes.values(), check_lane, write_lane):
            lane.shutdown(wait=True, cancel_futures=True)
        os.close(fd)
    return CopyResult(done, {a: h.hexdigest() for a, h in hashes.items()})


def digest_bytes(data: bytes, algorithms: Sequence[str]) -> dict[str, str]:
    out = {}
    for a in algorithms:
        h = new_hash(a)
        h.update(data)
        out[a] = h.hexdigest()
    return out


def digest_views(view: memoryview, algorithms: Sequence[str],
                 block: int = 8 << 20) -> dict[str, str]:
    """Digests of a (mapped) file, each algorithm in its own thread."""
    def run(a: str) -> str:
        h = new_hash(a)
        for start in range(0, len(view), block):
            h.update(view[start:start + block])
        return h.hexdigest()

    with ThreadPoolExecutor(max(1, len(algorithms))) as pool:
        futs: dict[str, Future[str]] = {a: pool.submit(run, a) for a in algorithms}
        return {a: f.result() for a, f in futs.items()}


@contextmanager
def mapped(path: Path) -> Iterator[memoryview]:
    """A read-only view of a whole file (an empty one for an empty file)."""
    if not path.stat().st_size:
        yield memoryview(b"")
        return
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        view = memoryview(mm)
        try:
            yield view
        finally:
            view.release()
