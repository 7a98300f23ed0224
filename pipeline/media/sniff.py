"""What kind of file this is, from its first bytes: video, audio, image, or not media.

The extension is only a hint; body cameras and phones name files in many ways, and a
renamed file must neither slip in nor be dropped. Containers that can hold video or only
audio (ISO BMFF, Matroska, Ogg, RIFF) are told apart later by the probe, from their
streams.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

_HEAD = 4096


@dataclass(frozen=True, slots=True)
class Sniffed:
    kind: str | None  # container family, e.g. "isobmff"; None: not a media file we know
    media_hint: str | None  # video | audio | image | av (audio or video, probe decides)
    reason: str  # why, in words, for a skipped file


def _is_mpegts(head: bytes) -> bool:
    for packet in (188, 192):
        offset = 4 if packet == 192 else 0
        if len(head) >= offset + 3 * packet and all(
            head[offset + i * packet] == 0x47 for i in range(3)
        ):
            return True
    return False


def sniff_bytes(head: bytes) -> Sniffed:
    """Classify by magic numbers. Pure."""
    if not head:
        return Sniffed(None, None, "empty file (0 bytes)")
    box = head[4:8]
    if box in (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot", b"uuid"):
        brand = head[8:12] if box == b"ftyp" else b""
        hint = "audio" if brand in (b"M4A ", b"M4B ", b"F4A ") else "av"
        # HEIF/AVIF still images (phones: heic, heix, mif1; bursts and sequences: msf1,
        # heim, heis, hevc, hevx, avis stay video-capable, so the probe decides).
        if brand in (b"heic", b"heix", b"mif1", b"avif"):
            hint = "image"
        return Sniffed("isobmff", hint, "ISO BMFF / QuickTime")
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return Sniffed("matroska", "av", "Matroska / WebM")
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return Sniffed("webp", "image", "WebP")
    if head.startswith(b"RIFF") and head[8:12] in (b"AVI ", b"WAVE"):
        return Sniffed("riff", "av" if head[8:12] == b"AVI " else "audio", "RIFF")
    if _is_mpegts(head):
        return Sniffed("mpegts", "av", "MPEG transport stream")
    if head.startswith(b"\x00\x00\x01\xba"):
        return Sniffed("mpegps", "av", "MPEG program stream")
    if head.startswith(b"FLV"):
        return Sniffed("flv", "av", "Flash video")
    if head.startswith(b"OggS"):
        return Sniffed("ogg", "av", "Ogg")
    if head.startswith(b"\xff\xd8\xff"):
        return Sniffed("jpeg", "image", "JPEG")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Sniffed("png", "image", "PNG")
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return Sniffed("tiff", "image", "TIFF")
    if head.startswith(b"#!AMR"):
        return Sniffed("amr", "audio", "AMR")
    if head.startswith(b"fLaC"):
        return Sniffed("flac", "audio", "FLAC")
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return Sniffed("mpeg-audio", "audio", "MPEG audio")
    if head.startswith(b"0&\xb2u\x8ef\xcf\x11"):
        return Sniffed("asf", "av", "ASF / WMV")
    return Sniffed(None, None, "not a media file (no known audio, video or image signature)")


def sniff(path: str | os.PathLike[str]) -> Sniffed:
    """Classify a file by its first bytes. OSError propagates to the caller."""
    with open(path, "rb") as fh:
        return sniff_bytes(fh.read(_HEAD))


def sniff_fd(fd: int) -> Sniffed:
    """Classify an open file by its first bytes (read at offset 0; the descriptor's own
    position is left alone). OSError propagates to the caller."""
    return sniff_bytes(os.pread(fd, _HEAD, 0))
