"""A small JPEG EXIF reader: capture time, device and GPS of a still photo.

FFmpeg opens a JPEG as a one-frame video and exposes none of its EXIF, and the project
does not take Pillow for a handful of tags. This reads the APP1 `Exif` segment of a JPEG
(TIFF structure, either byte order) and returns the few tags evidence handling needs.
Pure Python; malformed data yields empty fields, never an exception.
"""

from __future__ import annotations

import datetime as dt
import os
import struct
from dataclasses import dataclass, field
from fractions import Fraction

__all__ = ["ExifInfo", "parse_exif", "read_exif"]

_MAX_SCAN = 1024 * 1024  # EXIF sits in the first 64 KiB; never read the whole image

# TIFF tag numbers (EXIF 2.32).
_MAKE, _MODEL = 0x010F, 0x0110
_DATETIME = 0x0132
_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_DT_ORIGINAL, _OFFSET_ORIGINAL, _SUBSEC_ORIGINAL = 0x9003, 0x9011, 0x9291
_BODY_SERIAL = 0xA431
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 7: 1, 9: 4, 10: 8}


@dataclass(frozen=True, slots=True)
class ExifInfo:
    """The EXIF fields Custody uses. Times are as written unless marked UTC."""

    make: str | None = None
    model: str | None = None
    serial: str | None = None
    datetime_original: str | None = None  # "YYYY:MM:DD HH:MM:SS", camera local time
    offset_time_original: str | None = None  # "+HH:MM"
    datetime_original_utc: dt.datetime | None = None  # only when the offset is known
    gps_iso6709: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


def read_exif(path: str | os.PathLike[str]) -> ExifInfo | None:
    """EXIF of the JPEG at `path`, or None if it has none (or is not a JPEG)."""
    with open(path, "rb") as fh:
        head = fh.read(_MAX_SCAN)
    tiff = find_exif_segment(head)
    return None if tiff is None else parse_exif(tiff)


def find_exif_segment(jpeg: bytes) -> bytes | None:
    """The TIFF bytes of the first APP1 `Exif` segment of a JPEG, if any."""
    if jpeg[:2] != b"\xff\xd8":
        return None
    p = 2
    n = len(jpeg)
    while p + 4 <= n:
        if jpeg[p] != 0xFF:
            return None
        marker = jpeg[p + 1]
        if marker == 0xFF:  # fill byte
            p += 1
            continue
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no more metadata
            return None
        (length,) = struct.unpack_from(">H", jpeg, p + 2)
        seg = jpeg[p + 4 : p + 2 + length]
        if marker == 0xE1 and seg[:6] == b"Exif\x00\x00":
            return seg[6:]
        p += 2 + length
    return None


def parse_exif(tiff: bytes) -> ExifInfo:
    """The fields of `ExifInfo` from TIFF-structured EXIF bytes."""
    try:
        return _parse(tiff)
    except (struct.error, ValueError, IndexError):
        return ExifInfo()


def _parse(tiff: bytes) -> ExifInfo:
    if tiff[:2] == b"II":
        bo = "<"
    elif tiff[:2] == b"MM":
        bo = ">"
    else:
        return ExifInfo()
    (ifd0,) = struct.unpack_from(bo + "I", tiff, 4)
    main = _read_ifd(tiff, bo, ifd0)
    exif = _read_ifd(tiff, bo, _int(main.get(_EXIF_IFD))) if _EXIF_IFD in main else {}
    gps = _read_ifd(tiff, bo, _int(main.get(_GPS_IFD))) if _GPS_IFD in main else {}

    make = _str(main.get(_MAKE))
    model = _str(main.get(_MODEL))
    serial = _str(exif.get(_BODY_SERIAL))
    dto = _str(exif.get(_DT_ORIGINAL)) or _str(main.get(_DATETIME))
    offset = _str(exif.get(_OFFSET_ORIGINAL))
    subsec = _str(exif.get(_SUBSEC_ORIGINAL))
    tags: dict[str, str] = {}
    for name, value in (
        ("Make", make),
        ("Model", model),
        ("BodySerialNumber", serial),
        ("DateTimeOriginal", dto),
        ("OffsetTimeOriginal", offset),
        ("SubSecTimeOriginal", subsec),
    ):
        if value:
            tags[name] = value
    gps_text = _gps_iso6709(gps)
    if gps_text:
        tags["GPS"] = gps_text
    return ExifInfo(
        make=make,
        model=model,
        serial=serial,
        datetime_original=dto,
        offset_time_original=offset,
        datetime_original_utc=_utc(dto, offset, subsec),
        gps_iso6709=gps_text,
        tags=tags,
    )


_Value = str | bytes | tuple[int, ...] | tuple[Fraction, ...]


def _read_ifd(tiff: bytes, bo: str, offset: int) -> dict[int, _Value]:
    out: dict[int, _Value] = {}
    if offset <= 0 or offset + 2 > len(tiff):
        return out
    (count,) = struct.unpack_from(bo + "H", tiff, offset)
    for i in range(count):
        e = offset + 2 + 12 * i
        if e + 12 > len(tiff):
            break
        tag, typ, n = struct.unpack_from(bo + "HHI", tiff, e)
        size = _TYPE_SIZES.get(typ)
        if size is None or n > 1 << 20:
            continue
        total = size * n
        if total <= 4:
            data = tiff[e + 8 : e + 8 + total]
        else:
            (vo,) = struct.unpack_from(bo + "I", tiff, e + 8)
            data = tiff[vo : vo + total]
            if len(data) < total:
                continue
        out[tag] = _decode(bo, typ, n, data)
    return out


def _decode(bo: str, typ: int, n: int, data: bytes) -> _Value:
    if typ == 2:
        return data.split(b"\x00", 1)[0].decode("utf-8", "replace")
    if typ in (1, 7):
        return bytes(data)
    if typ == 3:
        return tuple(struct.unpack_from(f"{bo}{n}H", data))
    if typ in (4, 9):
        return tuple(struct.unpack_from(f"{bo}{n}{'I' if typ == 4 else 'i'}", data))
    fmt = f"{bo}{2 * n}{'I' if typ == 5 else 'i'}"
    raw = struct.unpack_from(fmt, data)
    return tuple(
        Fraction(raw[2 * k], raw[2 * k + 1]) if raw[2 * k + 1] else Fraction(0) for k in range(n)
    )


def _int(v: _Value | None) -> int:
    if isinstance(v, tuple) and v and isinstance(v[0], int):
        return int(v[0])
    return 0


def _str(v: _Value | None) -> str | None:
    if isinstance(v, str):
        s = v.strip()
        return s or None
    return None


def _utc(dto: str | None, offset: str | None, subsec: str | None) -> dt.datetime | None:
    if not dto or not offset:
        return None
    try:
        local = dt.datetime.strptime(dto, "%Y:%m:%d %H:%M:%S")
        sign = -1 if offset.startswith("-") else 1
        hh, mm = offset.lstrip("+-").split(":")
        tz = dt.timezone(sign * dt.timedelta(hours=int(hh), minutes=int(mm)))
    except ValueError:
        return None
    if subsec and subsec.isdigit():
        local = local.replace(microsecond=int((subsec + "000000")[:6]))
    return local.replace(tzinfo=tz).astimezone(dt.UTC)


def _gps_iso6709(gps: dict[int, _Value]) -> str | None:
    lat = _degrees(gps.get(2), _str(gps.get(1)), "S")
    lon = _degrees(gps.get(4), _str(gps.get(3)), "W")
    if lat is None or lon is None:
        return None
    text = f"{lat:+09.5f}{lon:+010.5f}"
    alt = gps.get(6)
    if isinstance(alt, tuple) and alt and isinstance(alt[0], Fraction):
        ref = gps.get(5)
        below = isinstance(ref, bytes) and ref[:1] == b"\x01"
        text += f"{-float(alt[0]) if below else float(alt[0]):+.3f}"
    return text + "/"


def _degrees(v: _Value | None, ref: str | None, negative: str) -> float | None:
    if not isinstance(v, tuple) or len(v) != 3 or not isinstance(v[0], Fraction):
        return None
    d, m, s = (float(x) for x in v)
    deg = d + m / 60 + s / 3600
    return -deg if ref == negative else deg
