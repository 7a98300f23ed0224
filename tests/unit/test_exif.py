"""pipeline.media.exif on EXIF bytes built in the test."""

from __future__ import annotations

import datetime as dt
import struct
from pathlib import Path

import pytest

from pipeline.media.exif import find_exif_segment, parse_exif, read_exif


def tiff(
    bo: str,
    ifd0: list[tuple[int, int, bytes]],
    exif: list[tuple[int, int, bytes]],
    gps: list[tuple[int, int, bytes]],
) -> bytes:
    """A TIFF block with IFD0 -> Exif IFD and GPS IFD; entries are (tag, type, raw value)."""
    magic = b"II" if bo == "<" else b"MM"

    def ifd_size(entries: list[tuple[int, int, bytes]]) -> int:
        return 2 + 12 * len(entries) + 4

    n0 = len(ifd0) + 2
    off0 = 8
    off_exif = off0 + 2 + 12 * n0 + 4
    off_gps = off_exif + ifd_size(exif)
    data_off = off_gps + ifd_size(gps)
    blobs = bytearray()

    def pack_ifd(entries: list[tuple[int, int, bytes]]) -> bytes:
        nonlocal blobs
        out = struct.pack(bo + "H", len(entries))
        for tag, typ, raw in sorted(entries):
            size = {2: 1, 3: 2, 4: 4, 5: 8, 1: 1}[typ]
            count = len(raw) // size
            if len(raw) <= 4:
                out += struct.pack(bo + "HHI", tag, typ, count) + raw.ljust(4, b"\0")
            else:
                out += struct.pack(bo + "HHII", tag, typ, count, data_off + len(blobs))
                blobs += raw
        return out + struct.pack(bo + "I", 0)

    main = [
        *ifd0,
        (0x8769, 4, struct.pack(bo + "I", off_exif)),
        (0x8825, 4, struct.pack(bo + "I", off_gps)),
    ]
    body = pack_ifd(main) + pack_ifd(exif) + pack_ifd(gps)
    return magic + struct.pack(bo + "HI", 42, off0) + body + bytes(blobs)


def text(s: str) -> bytes:
    return s.encode() + b"\0"


def rationals(bo: str, *pairs: tuple[int, int]) -> bytes:
    return b"".join(struct.pack(bo + "II", n, d) for n, d in pairs)


def sample(bo: str) -> bytes:
    return tiff(
        bo,
        [(0x010F, 2, text("Google")), (0x0110, 2, text("Pixel 4 XL"))],
        [
            (0x9003, 2, text("2020:12:17 18:03:00")),
            (0x9011, 2, text("+08:00")),
            (0x9291, 2, text("25")),
            (0xA431, 2, text("SN123")),
        ],
        [
            (1, 2, b"N\0"),
            (2, 5, rationals(bo, (28, 1), (35, 1), (1800, 100))),
            (3, 2, b"E\0"),
            (4, 5, rationals(bo, (119, 1), (6, 1), (0, 1))),
            (5, 1, b"\0"),
            (6, 5, rationals(bo, (2505, 10))),
        ],
    )


@pytest.mark.parametrize("bo", ["<", ">"])
def test_make_model_serial_both_byte_orders(bo: str) -> None:
    info = parse_exif(sample(bo))
    assert (info.make, info.model, info.serial) == ("Google", "Pixel 4 XL", "SN123")


def test_datetime_original_with_offset_is_utc() -> None:
    info = parse_exif(sample("<"))
    assert info.datetime_original == "2020:12:17 18:03:00"
    assert info.datetime_original_utc == dt.datetime(2020, 12, 17, 10, 3, 0, 250000, tzinfo=dt.UTC)


def test_datetime_without_offset_is_not_made_utc() -> None:
    info = parse_exif(tiff("<", [], [(0x9003, 2, text("2020:12:17 18:03:00"))], []))
    assert info.datetime_original == "2020:12:17 18:03:00"
    assert info.datetime_original_utc is None


def test_gps_as_iso6709() -> None:
    assert parse_exif(sample(">")).gps_iso6709 == "+28.58833+119.10000+250.500/"


def test_southern_western_gps_is_negative() -> None:
    bo = "<"
    gps = [
        (1, 2, b"S\0"),
        (2, 5, rationals(bo, (33, 1), (30, 1), (0, 1))),
        (3, 2, b"W\0"),
        (4, 5, rationals(bo, (70, 1), (15, 1), (0, 1))),
    ]
    assert parse_exif(tiff(bo, [], [], gps)).gps_iso6709 == "-33.50000-070.25000/"


def test_garbage_gives_empty_info() -> None:
    assert parse_exif(b"II*\0\xff\xff\xff\x7f").make is None
    assert parse_exif(b"nonsense").make is None


def test_find_exif_segment_in_jpeg() -> None:
    t = sample("<")
    app1 = b"\xff\xe1" + struct.pack(">H", len(t) + 8) + b"Exif\0\0" + t
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\0" + bytes(9)
    jpeg = b"\xff\xd8" + app0 + app1 + b"\xff\xda\x00\x02" + b"\x00" * 10
    assert find_exif_segment(jpeg) == t


def test_read_exif_of_non_jpeg_is_none(tmp_path: Path) -> None:
    p = tmp_path / "x.bin"
    p.write_bytes(b"\x00\x00\x00\x18ftypisom")
    assert read_exif(p) is None
