"""EXIF of a still photo: capture time, device and GPS, from JPEG, HEIC, PNG, WebP or TIFF.

FFmpeg opens a photo as a one-frame video and exposes none of its EXIF. `exifread`
(BSD-3-Clause, pure Python, no Pillow) finds the EXIF wherever each format keeps it: a
JPEG's APP1 segment, a HEIC/AVIF `meta` box's `Exif` item, a PNG `eXIf` chunk, a WebP
`EXIF` chunk, a TIFF's own IFDs. It replaced a JPEG-only reader of our own. This module
keeps only the few tags evidence handling needs and what they mean together (the capture
time in UTC when the camera wrote its offset, GPS as ISO 6709). It reads the file's
metadata, never the whole image; malformed data yields empty fields, never an exception.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, BinaryIO

import exifread

__all__ = ["ExifInfo", "has_exif_container", "parse_exif", "read_exif"]

# exifread logs "File format not recognized" and the like as warnings; they are answers
# here (no EXIF), not problems, so they must not reach stderr through logging's last
# resort. An application that configures logging still sees them.
logging.getLogger("exifread").addHandler(logging.NullHandler())

# ISO BMFF brands of still images (HEIF: HEVC, AVC or AV1 items; image sequences).
_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1",
                b"avif", b"avis")


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


def has_exif_container(head: bytes) -> bool:
    """Whether the first 16 bytes are those of a photo format that can hold EXIF. Pure."""
    return (
        head[:2] == b"\xff\xd8"
        or head[:4] in (b"II*\x00", b"MM\x00*")
        or head[:8] == b"\x89PNG\r\n\x1a\n"
        or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
        or (head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS)
    )


def read_exif(path: str | os.PathLike[str]) -> ExifInfo | None:
    """EXIF of the photo at `path`, or None if it has none (or is no photo format)."""
    with open(path, "rb") as fh:
        if not has_exif_container(fh.read(16)):
            return None
        tags = _tags(fh)
    return _info(tags) if tags else None


def parse_exif(tiff: bytes) -> ExifInfo:
    """The fields of `ExifInfo` from TIFF-structured EXIF bytes (what every format holds)."""
    return _info(_tags(io.BytesIO(tiff)))


def _tags(fh: BinaryIO) -> Mapping[str, Any]:
    try:
        return exifread.process_file(fh, details=False, extract_thumbnail=False)
    except Exception:  # exifread raises many kinds on hostile bytes; none is ours to stop on
        return {}


def _info(tags: Mapping[str, Any]) -> ExifInfo:
    make = _str(tags, "Image Make")
    model = _str(tags, "Image Model")
    serial = _str(tags, "EXIF BodySerialNumber")
    dto = _str(tags, "EXIF DateTimeOriginal") or _str(tags, "Image DateTime")
    offset = _str(tags, "EXIF OffsetTimeOriginal")
    subsec = _str(tags, "EXIF SubSecTimeOriginal")
    named: dict[str, str] = {}
    for name, value in (
        ("Make", make),
        ("Model", model),
        ("BodySerialNumber", serial),
        ("DateTimeOriginal", dto),
        ("OffsetTimeOriginal", offset),
        ("SubSecTimeOriginal", subsec),
    ):
        if value:
            named[name] = value
    gps = _gps_iso6709(tags)
    if gps:
        named["GPS"] = gps
    return ExifInfo(
        make=make,
        model=model,
        serial=serial,
        datetime_original=dto,
        offset_time_original=offset,
        datetime_original_utc=_utc(dto, offset, subsec),
        gps_iso6709=gps,
        tags=named,
    )


def _values(tags: Mapping[str, Any], key: str) -> Any:
    tag = tags.get(key)
    return getattr(tag, "values", None)


def _str(tags: Mapping[str, Any], key: str) -> str | None:
    v = _values(tags, key)
    if isinstance(v, bytes):
        v = v.split(b"\x00", 1)[0].decode("utf-8", "replace")
    if isinstance(v, str):
        s = v.split("\x00", 1)[0].strip()
        return s or None
    return None


def _rationals(tags: Mapping[str, Any], key: str) -> list[Fraction] | None:
    v = _values(tags, key)
    if not isinstance(v, list) or not all(isinstance(x, Fraction) for x in v):
        return None
    # A zero denominator (exifread keeps it) means an unknown value, read as 0.
    return [Fraction(x.numerator, x.denominator) if x.denominator else Fraction(0) for x in v]


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


def _gps_iso6709(tags: Mapping[str, Any]) -> str | None:
    lat = _degrees(_rationals(tags, "GPS GPSLatitude"), _str(tags, "GPS GPSLatitudeRef"), "S")
    lon = _degrees(_rationals(tags, "GPS GPSLongitude"), _str(tags, "GPS GPSLongitudeRef"), "W")
    if lat is None or lon is None:
        return None
    text = f"{lat:+09.5f}{lon:+010.5f}"
    alt = _rationals(tags, "GPS GPSAltitude")
    if alt:
        ref = _values(tags, "GPS GPSAltitudeRef")
        below = isinstance(ref, list) and ref[:1] == [1]
        text += f"{-float(alt[0]) if below else float(alt[0]):+.3f}"
    return text + "/"


def _degrees(v: list[Fraction] | None, ref: str | None, negative: str) -> float | None:
    if v is None or len(v) != 3:
        return None
    d, m, s = (float(x) for x in v)
    deg = d + m / 60 + s / 3600
    return -deg if ref == negative else deg
