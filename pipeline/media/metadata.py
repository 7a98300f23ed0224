"""What a file says of itself: device make, model, serial, creation time and GPS from tags. Pure.

Devices put these in different places: Apple in `com.apple.quicktime.*` keys, Android in
`com.android.*`, others in plain `make`/`model`/`creation_time` tags, some only in the
ISO BMFF user-data boxes (`isobmff.MovieInfo`), photos (JPEG, HEIC, PNG, WebP, TIFF) in
EXIF (`exif.ExifInfo`, read by exifread). One order of preference is kept here, so every
caller reads a file's claims the same way: container tags first, then the boxes for
make/model/serial, then EXIF for whatever is still missing. Times become timezone-aware
UTC; a time without a zone is read as UTC (what body cameras write); a value that parses
as no time is ignored, never guessed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from pipeline.media import exif, isobmff

__all__ = ["device_fields", "exif_fields", "merged_tags", "parse_time"]

# Preference order of tag keys for each claim.
CREATION_KEYS = ("com.apple.quicktime.creationdate", "creation_time", "date")
MAKE_KEYS = ("com.apple.quicktime.make", "com.android.manufacturer", "make")
MODEL_KEYS = ("com.apple.quicktime.model", "com.android.model", "model")
SERIAL_KEYS = ("com.apple.quicktime.serial", "serial", "serial_number")
GPS_KEYS = ("com.apple.quicktime.location.ISO6709", "location", "location-eng")


def parse_time(value: str) -> dt.datetime | None:
    """An ISO 8601 tag value (`Z`, an offset or none) as UTC; None if it is no time."""
    v = value.strip()
    if not v:
        return None
    if v.endswith("Z"):
        v = v[:-1] + "+00:00"
    try:
        t = dt.datetime.fromisoformat(v)
    except ValueError:
        try:
            t = dt.datetime.strptime(v, "%Y-%m-%dT%H:%M:%S%z")
        except ValueError:
            return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return t.astimezone(dt.UTC)


def _first(tags: Mapping[str, str], *keys: str) -> str | None:
    for k in keys:
        v = tags.get(k)
        if v and v.strip():
            return v.strip()
    return None


def merged_tags(container_tags: Mapping[str, str], info: exif.ExifInfo | None) -> dict[str, str]:
    """The container's tags, with EXIF tags added as `exif:<name>` where not already set."""
    tags = dict(container_tags)
    if info is not None:
        for k, v in info.tags.items():
            tags.setdefault(f"exif:{k}", v)
    return tags


def device_fields(
    tags: Mapping[str, str],
    boxes: isobmff.MovieInfo | None,
    exif_info: exif.ExifInfo | None,
) -> dict[str, Any]:
    """`ProbeResult`'s creation_time_utc, make, model, serial and gps_iso6709."""
    created = None
    for key in CREATION_KEYS:
        v = tags.get(key)
        if v:
            created = parse_time(v)
            if created is not None:
                break
    make = _first(tags, *MAKE_KEYS)
    model = _first(tags, *MODEL_KEYS)
    serial = _first(tags, *SERIAL_KEYS)
    gps = _first(tags, *GPS_KEYS)
    if boxes is not None:
        make = make or boxes.make
        model = model or boxes.model
        serial = serial or boxes.serial
    fields: dict[str, Any] = {
        "creation_time_utc": created,
        "make": make,
        "model": model,
        "serial": serial,
        "gps_iso6709": gps,
    }
    ex = exif_fields(exif_info)
    for k, v in ex.items():
        if fields.get(k) is None:
            fields[k] = v
    return fields


def exif_fields(info: exif.ExifInfo | None) -> dict[str, Any]:
    """The same fields from EXIF alone (a photo, or a file FFmpeg cannot open)."""
    if info is None:
        return {}
    return {
        "creation_time_utc": info.datetime_original_utc,
        "make": info.make,
        "model": info.model,
        "serial": info.serial,
        "gps_iso6709": info.gps_iso6709,
    }
