"""pipeline.media.exif (exifread) on EXIF bytes built in the test, and on photos of every
format it reads: JPEG, PNG, WebP, TIFF and HEIC."""

from __future__ import annotations

import datetime as dt
import struct
import zlib
from pathlib import Path

import pytest

from pipeline.media.exif import parse_exif, read_exif


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


def test_read_exif_of_jpeg_app1(tmp_path: Path) -> None:
    t = sample("<")
    app1 = b"\xff\xe1" + struct.pack(">H", len(t) + 8) + b"Exif\0\0" + t
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\0" + bytes(9)
    p = tmp_path / "x.jpg"
    p.write_bytes(b"\xff\xd8" + app0 + app1 + b"\xff\xda\x00\x02" + b"\x00" * 10)
    info = read_exif(p)
    assert info == parse_exif(t)
    assert info is not None and info.serial == "SN123"


def test_read_exif_of_non_jpeg_is_none(tmp_path: Path) -> None:
    p = tmp_path / "x.bin"
    p.write_bytes(b"\x00\x00\x00\x18ftypisom")
    assert read_exif(p) is None


# --- photo formats: real images (PyAV's encoders, or by hand) with EXIF where each keeps it


def picture(codec: str, fmt: str, pix_fmt: str) -> bytes:
    """A 16x16 grey picture encoded by PyAV (FFmpeg's encoders)."""
    import io

    import av
    import numpy as np

    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        s = out.add_stream(codec, rate=1)
        s.width = s.height = 16
        s.pix_fmt = pix_fmt
        fr = av.VideoFrame.from_ndarray(np.full((16, 16, 3), 128, np.uint8), format="rgb24")
        fr.pts = 0
        for p in [*s.encode(fr), *s.encode(None)]:
            out.mux(p)
    return buf.getvalue()


def decodes(path: Path) -> bool:
    """FFmpeg decodes one 16x16 picture from it: the EXIF did not break the image."""
    import av

    with av.open(str(path)) as f:
        (fr,) = list(f.decode(video=0))
        return (fr.width, fr.height) == (16, 16)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def with_png_exif(png: bytes, exif: bytes) -> bytes:
    """An `eXIf` chunk (PNG 1.5) right after IHDR."""
    ihdr_end = 8 + 8 + 13 + 4
    return png[:ihdr_end] + png_chunk(b"eXIf", exif) + png[ihdr_end:]


def riff_chunk(kind: bytes, data: bytes) -> bytes:
    return kind + struct.pack("<I", len(data)) + data + b"\0" * (len(data) % 2)


def with_webp_exif(webp: bytes, exif: bytes) -> bytes:
    """The extended format: VP8X (EXIF flag) + the picture + an `EXIF` chunk. The chunk
    holds the APP1 form ("Exif\\0\\0" + TIFF), what exifread reads and Pillow writes."""
    vp8x = bytes([0x08, 0, 0, 0]) + (15).to_bytes(3, "little") + (15).to_bytes(3, "little")
    body = riff_chunk(b"VP8X", vp8x) + webp[12:] + riff_chunk(b"EXIF", b"Exif\0\0" + exif)
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


def tiff_image(bo: str) -> bytes:
    """A baseline TIFF: a 16x16 grey strip, with the sample's device tags and EXIF/GPS IFDs."""
    pixels = bytes([128]) * 256
    ifd0 = [
        (256, 3, struct.pack(bo + "H", 16)), (257, 3, struct.pack(bo + "H", 16)),
        (258, 3, struct.pack(bo + "H", 8)), (259, 3, struct.pack(bo + "H", 1)),
        (262, 3, struct.pack(bo + "H", 1)), (277, 3, struct.pack(bo + "H", 1)),
        (278, 3, struct.pack(bo + "H", 16)), (279, 4, struct.pack(bo + "I", 256)),
        (0x010F, 2, text("Huawei")), (0x0110, 2, text("DSJ-X9")),
    ]  # fmt: skip
    exif = [(0x9003, 2, text("2024:05:01 16:00:00")), (0x9011, 2, text("+08:00")),
            (0xA431, 2, text("HW-7788"))]
    gps = [(1, 2, b"N\0"), (2, 5, rationals(bo, (30, 1), (15, 1), (0, 1))),
           (3, 2, b"E\0"), (4, 5, rationals(bo, (120, 1), (9, 1), (36, 1)))]

    def build(strip_at: int) -> bytes:
        return tiff(bo, [*ifd0, (273, 4, struct.pack(bo + "I", strip_at))], exif, gps)

    head = build(0)
    return build(len(head)) + pixels


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def full_box(kind: bytes, version: int, payload: bytes) -> bytes:
    return box(kind, bytes([version, 0, 0, 0]) + payload)


def heic(exif: bytes, prefix: bytes = b"Exif\0\0") -> bytes:
    """A HEIF file as a phone writes one: ftyp `heic`, a `meta` box naming a primary
    `hvc1` item and an `Exif` item describing it, both located by `iloc` in `mdat`. The
    Exif item is the offset of the TIFF header past `prefix`, then the TIFF (ISO/IEC
    23008-12 A.2.1; iPhones write "Exif\0\0", some Nokias nothing). The picture item's
    bytes are a stand-in (no decodable HEVC; FFmpeg writes no HEIF): exifread reads only
    the meta box, as every EXIF reader of HEIC does."""
    picture = b"\0" * 32
    exif_item = struct.pack(">I", len(prefix)) + prefix + exif
    ftyp = box(b"ftyp", b"heic" + struct.pack(">I", 0) + b"mif1heic")
    hdlr = full_box(b"hdlr", 0, b"\0" * 4 + b"pict" + b"\0" * 12 + b"\0")
    pitm = full_box(b"pitm", 0, struct.pack(">H", 1))
    infe1 = full_box(b"infe", 2, struct.pack(">HH", 1, 0) + b"hvc1" + b"\0")
    infe2 = full_box(b"infe", 2, struct.pack(">HH", 2, 0) + b"Exif" + b"\0")
    iinf = full_box(b"iinf", 0, struct.pack(">H", 2) + infe1 + infe2)
    iref = full_box(b"iref", 0, box(b"cdsc", struct.pack(">HHH", 2, 1, 1)))

    def iloc(mdat_data: int) -> bytes:
        entries = b""
        for item, at, size in ((1, mdat_data, len(picture)),
                               (2, mdat_data + len(picture), len(exif_item))):
            entries += struct.pack(">HHHII", item, 0, 1, at, size)
        return full_box(b"iloc", 0, bytes([0x44, 0x00]) + struct.pack(">H", 2) + entries)

    def meta(mdat_data: int) -> bytes:
        return full_box(b"meta", 0, hdlr + pitm + iloc(mdat_data) + iinf + iref)

    data_at = len(ftyp) + len(meta(0)) + 8
    return ftyp + meta(data_at) + box(b"mdat", picture + exif_item)


def test_png_exif_chunk(tmp_path: Path) -> None:
    p = tmp_path / "photo.png"
    p.write_bytes(with_png_exif(picture("png", "image2pipe", "rgb24"), sample(">")))
    info = read_exif(p)
    assert decodes(p)
    assert info is not None
    assert (info.make, info.model, info.serial) == ("Google", "Pixel 4 XL", "SN123")
    assert info.datetime_original_utc == dt.datetime(2020, 12, 17, 10, 3, 0, 250000, tzinfo=dt.UTC)
    assert info.gps_iso6709 == "+28.58833+119.10000+250.500/"


def test_webp_exif_chunk(tmp_path: Path) -> None:
    p = tmp_path / "photo.webp"
    p.write_bytes(with_webp_exif(picture("libwebp", "webp", "yuv420p"), sample("<")))
    info = read_exif(p)
    assert decodes(p)
    assert info is not None
    assert (info.make, info.model, info.serial) == ("Google", "Pixel 4 XL", "SN123")
    assert info.datetime_original == "2020:12:17 18:03:00"
    assert info.offset_time_original == "+08:00"
    assert info.gps_iso6709 == "+28.58833+119.10000+250.500/"


@pytest.mark.parametrize("bo", ["<", ">"])
def test_tiff_photo_ifds(tmp_path: Path, bo: str) -> None:
    p = tmp_path / "photo.tif"
    p.write_bytes(tiff_image(bo))
    info = read_exif(p)
    assert decodes(p)
    assert info is not None
    assert (info.make, info.model, info.serial) == ("Huawei", "DSJ-X9", "HW-7788")
    assert info.datetime_original_utc == dt.datetime(2024, 5, 1, 8, 0, 0, tzinfo=dt.UTC)
    assert info.gps_iso6709 == "+30.25000+120.16000/"


@pytest.mark.parametrize(("bo", "prefix"), [(">", b"Exif\0\0"), ("<", b"")])
def test_heic_exif_item(tmp_path: Path, bo: str, prefix: bytes) -> None:
    """exifread 3.5.1 misses a big-endian TIFF without the prefix (it checks `II*\0` only)."""
    p = tmp_path / "photo.heic"
    p.write_bytes(heic(sample(bo), prefix))
    info = read_exif(p)
    assert info is not None
    assert (info.make, info.model, info.serial) == ("Google", "Pixel 4 XL", "SN123")
    assert info.datetime_original_utc == dt.datetime(2020, 12, 17, 10, 3, 0, 250000, tzinfo=dt.UTC)
    assert info.gps_iso6709 == "+28.58833+119.10000+250.500/"
    assert info.tags["OffsetTimeOriginal"] == "+08:00"


def test_photo_formats_without_exif_give_none(tmp_path: Path) -> None:
    for name, data in (
        ("plain.png", picture("png", "image2pipe", "rgb24")),
        ("plain.webp", picture("libwebp", "webp", "yuv420p")),
    ):
        (tmp_path / name).write_bytes(data)
        assert read_exif(tmp_path / name) is None
