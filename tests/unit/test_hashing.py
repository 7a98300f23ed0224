"""One read gives the whole-file BLAKE3, the chunk table and an identical copy."""

from __future__ import annotations

import datetime as dt
import io
import os
import tempfile
import threading
import time
from pathlib import Path

import blake3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import InputError
from pipeline.integrity.hashing import (
    CopyUnsupported,
    FileDigest,
    _preallocate,
    digest_copy,
    digest_file,
    digest_stream,
)
from pipeline.storage.local import LocalStore


def _expected_chunks(data: bytes, size: int) -> tuple[str, ...]:
    return tuple(blake3.blake3(data[i : i + size]).hexdigest() for i in range(0, len(data), size))


@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=40_000), chunk_kib=st.sampled_from([1, 2, 4]))
def test_digest_matches_reference_hashes_and_copies_every_byte(data: bytes, chunk_kib: int) -> None:
    copy = bytearray()
    d = digest_stream(io.BytesIO(data).readinto, chunk_size=chunk_kib * 1024,
                      sink=lambda v: copy.extend(v))
    assert d.blake3 == blake3.blake3(data).hexdigest()
    assert d.chunks == _expected_chunks(data, chunk_kib * 1024)
    assert bytes(copy) == data
    assert d.size_bytes == len(data)


def test_digest_of_file_larger_than_buffers_matches_reference(tmp_path: Path) -> None:
    data = os.urandom(37 * 1024 * 1024 + 123)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    d = digest_file(path)
    assert d.blake3 == blake3.blake3(data).hexdigest()
    assert len(d.chunks) == 38
    assert d.chunk_span(37) == (37 * 1024 * 1024, 123)


def test_missing_file_is_an_input_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope\.mp4"):
        digest_file(tmp_path / "nope.mp4")


def test_chunk_size_must_be_a_multiple_of_1024() -> None:
    with pytest.raises(ValueError, match="multiple of 1024"):
        digest_stream(io.BytesIO(b"x").readinto, chunk_size=1000)


# --- the kernel-copy path of the local store ------------------------------------------------


def _copy_into(tmp_path: Path, src: Path, chunk_size: int = 1 << 20) -> tuple[FileDigest, bytes]:
    dst = tmp_path / "copy.part"
    fd = os.open(dst, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        d = digest_copy(src, fd, chunk_size=chunk_size)
    finally:
        os.close(fd)
    return d, dst.read_bytes()


@pytest.mark.parametrize(
    ("size", "chunk_kib"),
    [(37 * 1024 * 1024 + 123, 1024), (3 * 8 * 1024 * 1024, 1024), (5_000_000, 3), (1, 1),
     (2 << 20, 1024), ((2 << 20) + 1, 1024), (1_273_662, 3)],
)
def test_kernel_copy_digest_equals_the_reference_and_the_copy_is_identical(
    tmp_path: Path, size: int, chunk_kib: int
) -> None:
    """Pieces of 8 MiB (and of 12 KiB multiples for a 3 KiB chunk): whole pieces, a last
    partial one, a file of exactly three pieces, one byte; a file of one piece is hashed
    in the caller's thread up to 2 MiB (exactly 2 MiB, a five-second clip's 1,273,662
    bytes in 3 KiB chunks) and in the two lanes above (2 MiB + 1)."""
    data = os.urandom(size)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    d, copy = _copy_into(tmp_path, src, chunk_kib * 1024)
    assert copy == data
    assert d == digest_file(src, chunk_size=chunk_kib * 1024)
    assert d.blake3 == blake3.blake3(data).hexdigest()
    assert d.chunks == _expected_chunks(data, chunk_kib * 1024)


def test_kernel_copy_refused_before_anything_is_written(tmp_path: Path) -> None:
    """/dev/zero is not a regular file: the kernel refuses to copy from it (EINVAL), the
    refusal is CopyUnsupported and the destination is untouched."""
    with pytest.raises(CopyUnsupported, match="/dev/zero"):
        _copy_into(tmp_path, Path("/dev/zero"))
    assert (tmp_path / "copy.part").stat().st_size == 0


def test_kernel_copy_of_a_missing_file_is_an_input_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"gone\.mp4: cannot read"):
        _copy_into(tmp_path, tmp_path / "gone.mp4")


def test_local_store_fills_from_another_filesystem_by_reading(tmp_path: Path) -> None:
    """A file on tmpfs copied into a store on another filesystem: whichever way the kernel
    allows (copy or, refused, read and write), the same digest and the same bytes."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on a filesystem other than the test's temporary directory")
    data = os.urandom(9 * 1024 * 1024 + 7)
    with tempfile.NamedTemporaryFile(dir=shm) as fh:
        fh.write(data)
        fh.flush()
        store = LocalStore(tmp_path / "store")
        staged = store.stage()
        d = staged.fill(fh.name, chunk_size=1 << 20)
        put = staged.commit(d.blake3, retain_until_utc=dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
    assert d.blake3 == blake3.blake3(data).hexdigest()
    assert store.object_path(put.key).read_bytes() == data


# --- a file that changes while it is read ---------------------------------------------------


def test_a_file_growing_while_it_is_read_is_an_input_error(tmp_path: Path) -> None:
    """The copy's first write appends to the source (a recorder still writing): the reader
    is at most 8 buffers (16 MiB) ahead of the copy, so it reads the new bytes too."""
    src = tmp_path / "growing.mp4"
    src.write_bytes(os.urandom(40 * 1024 * 1024))
    appended = []

    def sink(view: memoryview) -> None:
        if not appended:
            with open(src, "ab") as fh:
                fh.write(b"more")
            appended.append(True)

    with pytest.raises(InputError, match=r"growing\.mp4: changed while it was read "
                       r"\(41943040 bytes when opened, 41943044 read, 41943044 now\)"):
        digest_file(src, sink=sink)


def test_a_file_growing_while_the_kernel_copies_it_is_an_input_error(tmp_path: Path) -> None:
    """512 MiB (sparse) copied by the kernel; once the copy holds its first piece, the
    source grows."""
    src = tmp_path / "growing.mp4"
    with open(src, "wb") as fh:
        fh.truncate(512 * 1024 * 1024)
    dst = tmp_path / "copy.part"
    fd = os.open(dst, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    stop = threading.Event()

    def grow_once_the_copy_runs() -> None:
        while not stop.is_set():
            if os.stat(dst).st_size >= 8 * 1024 * 1024:
                with open(src, "ab") as fh:
                    fh.write(b"more")
                return
            time.sleep(0.0005)

    grower = threading.Thread(target=grow_once_the_copy_runs)
    grower.start()
    try:
        with pytest.raises(InputError, match=r"growing\.mp4: changed while it was read "
                           r"\(536870912 bytes when opened"):
            digest_copy(src, fd)
    finally:
        stop.set()
        grower.join()
        os.close(fd)


def test_the_copy_s_blocks_are_reserved_without_changing_its_size(tmp_path: Path) -> None:
    fd = os.open(tmp_path / "copy.part", os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        _preallocate(fd, 10 * 1024 * 1024)
        st = os.fstat(fd)
    finally:
        os.close(fd)
    if st.st_blocks == 0:
        pytest.skip("this filesystem does not preallocate (fallocate unsupported)")
    assert st.st_size == 0
    assert st.st_blocks * 512 >= 10 * 1024 * 1024
