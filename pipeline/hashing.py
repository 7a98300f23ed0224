"""One sequential read of a file: BLAKE3 of the whole and of fixed-size chunks, and a copy.

The file is read once into page-aligned buffers (an anonymous `mmap`, several times faster
to `readinto` than a bytearray). Each buffer goes, in order, to two single-thread lanes
that run beside the reader: one updates the whole-file hasher and hashes the buffer's
chunks, the other hands the bytes to a sink (the WORM store's staged object). blake3 and
`os.write` release the GIL, so the three overlap on two cores. A buffer is reused only
once both lanes are done with it.

The chunk table lets `custody verify` name the exact damaged byte range of an object.
"""

from __future__ import annotations

import contextlib
import mmap
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import blake3

from pipeline.errors import InputError

DEFAULT_CHUNK_SIZE = 1 << 20  # 1 MiB: fine enough to locate damage, small enough as a table
_BUFFERS = 4


@dataclass(frozen=True, slots=True)
class FileDigest:
    blake3: str
    size_bytes: int
    chunk_size_bytes: int
    chunks: tuple[str, ...]  # BLAKE3 hex of each chunk, in order

    def chunk_span(self, index: int) -> tuple[int, int]:
        """(offset, length) of chunk `index`."""
        offset = index * self.chunk_size_bytes
        return offset, min(self.chunk_size_bytes, self.size_bytes - offset)


Sink = Callable[[memoryview], None]


def _buffer_size(chunk_size: int) -> int:
    per = max(1, (8 << 20) // chunk_size)
    return per * chunk_size


def digest_stream(
    readinto: Callable[[memoryview], int],
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    sink: Sink | None = None,
) -> FileDigest:
    """Hash everything `readinto` yields (until it returns 0), passing each byte to `sink`."""
    if chunk_size <= 0 or chunk_size % 1024:
        raise ValueError(f"chunk size must be a positive multiple of 1024, not {chunk_size}")
    bufsize = _buffer_size(chunk_size)
    buffers = [mmap.mmap(-1, bufsize) for _ in range(_BUFFERS)]
    pending: list[list[Future[None]]] = [[] for _ in range(_BUFFERS)]
    whole = blake3.blake3()
    chunk_hashes: list[str] = []
    size = 0

    def hash_lane(view: memoryview) -> None:
        whole.update(view)
        for start in range(0, len(view), chunk_size):
            chunk_hashes.append(blake3.blake3(view[start : start + chunk_size]).hexdigest())

    # The buffers are freed by the garbage collector once the last memoryview slice of
    # them is gone; closing them here would fail while a slice is still referenced.
    with ThreadPoolExecutor(1, "b3") as hasher, ThreadPoolExecutor(1, "sink") as writer:
        slot = 0
        while True:
            for fut in pending[slot]:
                fut.result()
            buf = memoryview(buffers[slot])
            filled = 0
            while filled < bufsize:
                n = readinto(buf[filled:])
                if not n:
                    break
                filled += n
            if not filled:
                break
            view = buf[:filled]
            size += filled
            pending[slot] = [hasher.submit(hash_lane, view)]
            if sink is not None:
                pending[slot].append(writer.submit(sink, view))
            slot = (slot + 1) % _BUFFERS
            if filled < bufsize:
                break
        for futs in pending:
            for fut in futs:
                fut.result()
    return FileDigest(
        blake3=whole.hexdigest(),
        size_bytes=size,
        chunk_size_bytes=chunk_size,
        chunks=tuple(chunk_hashes),
    )


def digest_file(
    path: str | os.PathLike[str],
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    sink: Sink | None = None,
) -> FileDigest:
    """Read `path` once, hashing it and copying it to `sink`. InputError if it cannot be read."""
    try:
        fh = open(path, "rb", buffering=0)  # noqa: SIM115 - closed below
    except OSError as exc:
        raise InputError(f"{os.fspath(path)}: cannot read: {exc.strerror}") from exc
    with fh:
        with contextlib.suppress(AttributeError, OSError):
            os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
        try:
            return digest_stream(fh.readinto, chunk_size=chunk_size, sink=sink)
        except OSError as exc:
            raise InputError(f"{os.fspath(path)}: read failed: {exc.strerror or exc}") from exc
