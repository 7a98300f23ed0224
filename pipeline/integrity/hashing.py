"""One read of a file: BLAKE3 of the whole and of fixed-size chunks, and a copy.

Two ways, the same digest:
- `digest_copy` (the local store): the kernel copies the file into the store's staged
  object (`copy_file_range`, no byte passes through this process), and the copy is hashed
  from a read-only mapping of it, a piece at a time: the digest is of exactly the bytes
  stored. Writeback of each piece starts once it is hashed. Where the kernel cannot copy
  between the two files (another filesystem, an old kernel), it says so before copying
  anything and the caller falls back to:
- `digest_stream`/`digest_file`: the file is read once into page-aligned buffers (an
  anonymous `mmap`, several times faster to `readinto` than a bytearray), and each buffer
  goes to the hashes and to a sink (the staged object of a store, or nothing).

Either way the whole-file hash and the chunk hashes run in two threads beside the reader
or copier (blake3 and the copy release the GIL), a buffer or piece at a time, in order.
Both passes are needed: blake3-py cannot combine chunk chaining values. Measured on the
456 MB benchmark file on 2 cores (benchmarks/README.md): read + hash + copy + fsync
0.27 s by `digest_copy`, as fast as `cp` + `sync`; 0.3-0.6 s by a user-space copy,
whose writeback this VM's disk serves unevenly.

The chunk table lets `custody verify` name the exact damaged byte range of an object.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import errno
import functools
import math
import mmap
import os
import sys
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import blake3

from pipeline.errors import InputError

DEFAULT_CHUNK_SIZE = 1 << 20  # 1 MiB: fine enough to locate damage, small enough as a table
_BUFFER_BYTES = 2 << 20  # read path: small buffers keep every lane busy from the first read
_BUFFERS = 8
_PIECE_BYTES = 8 << 20  # copy path: one copy, one mapping, one writeback per piece
_PIECES_IN_FLIGHT = 4
_INLINE_BYTES = 2 << 20  # a whole input up to this size is hashed without the two lanes
# What copy_file_range answers, before copying anything, when it cannot copy these files.
_NO_KERNEL_COPY = frozenset({errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL})


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


class CopyUnsupported(Exception):
    """The kernel cannot copy between these two files; nothing was copied."""


def _unchanged(path: str, size_at_open: int, digest: FileDigest, size_now: int) -> FileDigest:
    """The digest, if the file kept one size while it was read; else InputError (a file
    still being written, or cut, must not be archived as if it were whole)."""
    if digest.size_bytes == size_at_open == size_now:
        return digest
    raise InputError(
        f"{path}: changed while it was read ({size_at_open} bytes when opened, "
        f"{digest.size_bytes} read, {size_now} now); ingest it again once it is complete"
    )


def _check_chunk_size(chunk_size: int) -> None:
    if chunk_size <= 0 or chunk_size % 1024:
        raise ValueError(f"chunk size must be a positive multiple of 1024, not {chunk_size}")


class _Hashes:
    """The whole-file hash and the chunk hashes, each in its own thread. Views are hashed
    in the order given; each must start on a chunk boundary. A small input given whole
    (`submit(..., last=True)` first) is hashed at once in the caller's thread: for a photo
    two threads cost more to start and join than its hashing (a nightly run's 1,000 photos
    and 1,000 five-second clips: about 0.5 ms of CPU a file)."""

    def __init__(self, chunk_size: int) -> None:
        self.chunk_size = chunk_size
        self.whole = blake3.blake3()
        self.chunks: list[str] = []
        self.size = 0
        self._lanes: tuple[ThreadPoolExecutor, ThreadPoolExecutor] | None = None

    def _hash_chunks(self, view: memoryview) -> None:
        for start in range(0, len(view), self.chunk_size):
            self.chunks.append(blake3.blake3(view[start : start + self.chunk_size]).hexdigest())

    def _hash_whole(self, view: memoryview) -> None:
        self.whole.update(view)

    def submit(self, view: memoryview, *, last: bool = False) -> list[Future[None]]:
        """Hash `view` behind the caller (futures to wait on), or at once when it is the
        whole input and small (no futures)."""
        whole_now = last and self.size == 0 and len(view) <= _INLINE_BYTES
        self.size += len(view)
        if whole_now:
            self._hash_whole(view)
            self._hash_chunks(view)
            return []
        if self._lanes is None:
            self._lanes = (ThreadPoolExecutor(1, "b3-whole"), ThreadPoolExecutor(1, "b3-chunks"))
        return [self._lanes[0].submit(self._hash_whole, view),
                self._lanes[1].submit(self._hash_chunks, view)]

    def close(self) -> None:
        if self._lanes is not None:
            for lane in self._lanes:
                lane.shutdown()

    def digest(self) -> FileDigest:
        return FileDigest(blake3=self.whole.hexdigest(), size_bytes=self.size,
                          chunk_size_bytes=self.chunk_size, chunks=tuple(self.chunks))


def _buffer_size(chunk_size: int) -> int:
    per = max(1, _BUFFER_BYTES // chunk_size)
    return per * chunk_size


def digest_stream(
    readinto: Callable[[memoryview], int],
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    sink: Sink | None = None,
) -> FileDigest:
    """Hash everything `readinto` yields (until it returns 0), passing each byte to `sink`."""
    _check_chunk_size(chunk_size)
    bufsize = _buffer_size(chunk_size)
    buffers = [mmap.mmap(-1, bufsize) for _ in range(_BUFFERS)]
    pending: list[list[Future[None]]] = [[] for _ in range(_BUFFERS)]
    hashes = _Hashes(chunk_size)
    # The buffers are freed by the garbage collector once the last memoryview slice of
    # them is gone; closing them here would fail while a slice is still referenced.
    try:
        with ThreadPoolExecutor(1, "sink") as writer:
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
                pending[slot] = hashes.submit(view, last=filled < bufsize)
                if sink is not None:
                    pending[slot].append(writer.submit(sink, view))
                slot = (slot + 1) % _BUFFERS
                if filled < bufsize:
                    break
            for futs in pending:
                for fut in futs:
                    fut.result()
    finally:
        hashes.close()
    return hashes.digest()


def digest_file(
    path: str | os.PathLike[str],
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    sink: Sink | None = None,
) -> FileDigest:
    """Read `path` once, hashing it and copying it to `sink`. InputError if it cannot be
    read, or if it changes size while it is read (still being written, or cut)."""
    try:
        fh = open(path, "rb", buffering=0)  # noqa: SIM115 - closed below
    except OSError as exc:
        raise InputError(f"{os.fspath(path)}: cannot read: {exc.strerror}") from exc
    with fh:
        with contextlib.suppress(AttributeError, OSError):
            os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
        try:
            size_at_open = os.fstat(fh.fileno()).st_size
            digest = digest_stream(fh.readinto, chunk_size=chunk_size, sink=sink)
            return _unchanged(os.fspath(path), size_at_open, digest,
                              os.fstat(fh.fileno()).st_size)
        except OSError as exc:
            raise InputError(f"{os.fspath(path)}: read failed: {exc.strerror or exc}") from exc


def _piece_size(chunk_size: int) -> int:
    """A multiple of the chunk size (pieces hash whole chunks) and of the mapping
    granularity (each piece is mapped at its own offset)."""
    unit = math.lcm(chunk_size, mmap.ALLOCATIONGRANULARITY)
    return unit * max(1, _PIECE_BYTES // unit)


_FALLOC_FL_KEEP_SIZE = 1


@functools.cache
def _fallocate() -> Callable[..., int] | None:
    """Linux fallocate(2), without glibc's emulation by writing zeros where a filesystem
    lacks it (that would write the file twice); None where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).fallocate
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    fn.restype = ctypes.c_int
    return fn


def _preallocate(fd: int, size: int) -> None:
    """Reserve the copy's blocks before it is written, keeping the file's size: the
    filesystem allocates once instead of at each piece's writeback (ext4: 0.03 s of CPU
    less for the 456 MB benchmark file). A hint; where it fails, nothing changes."""
    fallocate = _fallocate()
    if fallocate is not None and size > 0:
        fallocate(fd, _FALLOC_FL_KEEP_SIZE, 0, size)


def _copy_piece(path: str, src: int, dst: int, offset: int, length: int) -> int:
    """Copy up to `length` bytes at `offset` from src to dst; fewer only at the end of src."""
    done = 0
    while done < length:
        try:
            n = os.copy_file_range(src, dst, length - done, offset + done, offset + done)
        except OSError as exc:
            if offset + done == 0 and exc.errno in _NO_KERNEL_COPY:
                raise CopyUnsupported(f"{path}: {exc.strerror}") from exc
            try:  # whose fault: the file's (unreadable there) or the store's (full, ...)
                os.pread(src, 1, offset + done)
            except OSError as read_exc:
                raise InputError(f"{path}: read failed: {read_exc.strerror}") from read_exc
            raise
        if n == 0:
            break
        done += n
    return done


def digest_copy(
    path: str | os.PathLike[str], dst_fd: int, *, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> FileDigest:
    """Copy `path` into `dst_fd` (an empty regular file open for reading and writing) in
    the kernel, hashing the copy. InputError if `path` cannot be read or changes size
    while it is read (the kernel copies to the end of the file), OSError if the copy
    cannot be written (a full disk), CopyUnsupported (nothing written) if the kernel
    cannot copy between the two. A mapping of the copy is read while it is hashed: the
    copy must not be truncated meanwhile (it is the store's own staged file)."""
    _check_chunk_size(chunk_size)
    if not hasattr(os, "copy_file_range"):
        raise CopyUnsupported(f"{os.fspath(path)}: no copy_file_range on this system")
    spath = os.fspath(path)
    try:
        src = os.open(spath, os.O_RDONLY)
    except OSError as exc:
        raise InputError(f"{spath}: cannot read: {exc.strerror}") from exc
    piece = _piece_size(chunk_size)
    hashes = _Hashes(chunk_size)
    pending: collections.deque[tuple[mmap.mmap, memoryview, int, int, list[Future[None]]]]
    pending = collections.deque()

    def retire() -> None:
        mapping, view, offset, length, futs = pending.popleft()
        try:
            for fut in futs:
                fut.result()
        finally:
            for fut in futs:  # on an error, let the other lane finish with the mapping too
                fut.exception()
            view.release()
            mapping.close()
        with contextlib.suppress(AttributeError, OSError):  # start writeback of the piece
            os.posix_fadvise(dst_fd, offset, length, os.POSIX_FADV_DONTNEED)

    try:
        size_at_open = os.fstat(src).st_size
        with contextlib.suppress(AttributeError, OSError):
            os.posix_fadvise(src, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        _preallocate(dst_fd, size_at_open)
        offset = 0
        while True:
            n = _copy_piece(spath, src, dst_fd, offset, piece)
            if n:
                mapping = mmap.mmap(dst_fd, n, offset=offset, access=mmap.ACCESS_READ)
                view = memoryview(mapping)
                pending.append((mapping, view, offset, n, hashes.submit(view, last=n < piece)))
                offset += n
            # Retire hashed pieces at once (their writeback starts), and wait for the
            # oldest when too many are in flight.
            while pending and (
                len(pending) > _PIECES_IN_FLIGHT or n < piece
                or all(f.done() for f in pending[0][4])
            ):
                retire()
            if n < piece:
                break
        size_now = os.fstat(src).st_size
    except BaseException:
        while pending:
            with contextlib.suppress(Exception):
                retire()
        raise
    finally:
        hashes.close()
        os.close(src)
    return _unchanged(spath, size_at_open, hashes.digest(), size_now)
