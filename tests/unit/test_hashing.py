"""One read gives the whole-file BLAKE3, the chunk table and an identical copy."""

from __future__ import annotations

import io
import os
from pathlib import Path

import blake3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import InputError
from pipeline.hashing import digest_file, digest_stream


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
