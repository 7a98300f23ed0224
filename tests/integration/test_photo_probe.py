"""Photos through the probe and the sniffer: capture time and device of every format.

The files are those of tests/unit/test_exif.py (real images by PyAV's encoders with EXIF
where each format keeps it; HEIC by hand). What EXIF says must reach the ProbeResult.
"""

from __future__ import annotations

import datetime as dt
import os
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.demo import synth
from pipeline.media.probe import probe
from pipeline.media.sniff import sniff
from tests.unit.test_exif import (
    heic,
    picture,
    sample,
    tiff_image,
    with_png_exif,
    with_webp_exif,
)

GOOGLE = ("Google", "Pixel 4 XL", "SN123", dt.datetime(2020, 12, 17, 10, 3, 0, 250000,
                                                          tzinfo=dt.UTC))
HUAWEI = ("Huawei", "DSJ-X9", "HW-7788", dt.datetime(2024, 5, 1, 8, 0, 0, tzinfo=dt.UTC))


def jpeg(tmp_path: Path) -> bytes:
    """synth's JPEG still with an APP1 Exif segment right after SOI."""
    still = synth.write_still(tmp_path / "still.jpg").read_bytes()
    t = sample("<")
    app1 = b"\xff\xe1" + struct.pack(">H", len(t) + 8) + b"Exif\0\0" + t
    return still[:2] + app1 + still[2:]


PHOTOS: dict[str, tuple[Callable[[Path], bytes], tuple[object, ...]]] = {
    "photo.jpg": (jpeg, GOOGLE),
    "photo.png": (lambda _: with_png_exif(picture("png", "image2pipe", "rgb24"), sample(">")),
                  GOOGLE),
    "photo.webp": (lambda _: with_webp_exif(picture("libwebp", "webp", "yuv420p"),
                                            sample("<")), GOOGLE),
    "photo.tif": (lambda _: tiff_image(">"), HUAWEI),
    "photo.heic": (lambda _: heic(sample(">")), GOOGLE),
}
# The probe (pipeline/media/probe/demux.py) reads EXIF of every format that can hold it
# (exif.has_exif_container).
@pytest.mark.parametrize("name", PHOTOS)
def test_photo_capture_time_and_device_reach_the_probe_result(
    tmp_path: Path, name: str
) -> None:
    make, want = PHOTOS[name]
    p = tmp_path / name
    p.write_bytes(make(tmp_path))
    r = probe(p)
    assert (r.make, r.model, r.serial, r.creation_time_utc) == want


@pytest.mark.parametrize(
    "name",
    PHOTOS,
)
def test_every_photo_format_is_sniffed_as_an_image(tmp_path: Path, name: str) -> None:
    p = tmp_path / name
    p.write_bytes(PHOTOS[name][0](tmp_path))
    assert sniff(p).media_hint == "image"


def test_a_jpeg_probed_through_its_descriptor_is_the_jpeg_pipe_demuxer_s(tmp_path: Path) -> None:
    """Ingest probes `/proc/self/fd/<n>`, a path without an extension: the JPEG demuxer is
    named up front there (FFmpeg would reach the same one by probing every demuxer on
    ever larger buffers); with its `.jpg` name FFmpeg picks `image2` by the extension."""
    p = tmp_path / "photo.jpg"
    p.write_bytes(jpeg(tmp_path))
    fd = os.open(p, os.O_RDONLY)
    try:
        by_fd = probe(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)
    by_name = probe(p)
    assert (by_fd.container, by_name.container) == ("jpeg_pipe", "image2")
    assert (by_fd.make, by_fd.model, by_fd.serial, by_fd.creation_time_utc) == GOOGLE
    (stream,) = by_fd.streams
    assert (stream.codec, stream.packet_count, list(stream.size), list(stream.pos)) == (
        "mjpeg", 1, [p.stat().st_size], [0])
