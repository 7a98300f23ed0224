"""Files are classified by content, not by extension."""

from __future__ import annotations

import pytest

from pipeline.media.sniff import Sniffed, sniff_bytes


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"\x00\x00\x00\x18ftypisom" + b"\x00" * 16, "isobmff"),
        (b"\x1a\x45\xdf\xa3" + b"\x00" * 20, "matroska"),
        (bytes([0x47] + [0] * 187) * 3, "mpegts"),
        (b"\xff\xd8\xff\xe1" + b"\x00" * 20, "jpeg"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 8, "png"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "riff"),
        (b"#!AMR\n", "amr"),
        (b"ID3\x04\x00", "mpeg-audio"),
    ],
)
def test_known_signatures_are_media(head: bytes, kind: str) -> None:
    assert sniff_bytes(head).kind == kind


def test_text_is_not_media_and_says_why() -> None:
    s = sniff_bytes(b"case,entity\n1,2\n")
    assert s.kind is None
    assert "not a media file" in s.reason


def test_empty_file_is_not_media_and_says_empty() -> None:
    assert sniff_bytes(b"").reason == "empty file (0 bytes)"


def test_m4a_brand_hints_audio_only() -> None:
    assert sniff_bytes(b"\x00\x00\x00\x18ftypM4A " + b"\x00" * 8).media_hint == "audio"


def test_webp_is_an_image() -> None:
    head = b"RIFF" + (1234).to_bytes(4, "little") + b"WEBPVP8 " + bytes(20)
    assert sniff_bytes(head) == Sniffed("webp", "image", "WebP")
