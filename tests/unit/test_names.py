"""File names are bytes: the display form (UTF-8, else GB18030, else \\xNN) and the exact
bytes (pipeline.ingest.names)."""

from __future__ import annotations

import os

from pipeline.ingest.names import display_bytes, display_path, display_text, raw_bytes


def test_utf8_names_show_as_themselves() -> None:
    assert display_bytes("执法记录/BC0007_0001.mp4".encode()) == "执法记录/BC0007_0001.mp4"


def test_gbk_names_show_in_chinese() -> None:
    assert display_bytes(b"\xb2\xe2\xca\xd4.mp4") == "测试.mp4"


def test_bytes_neither_utf8_nor_gb18030_are_escaped() -> None:
    assert display_bytes(b"bad\xff\xfe.mp4") == "bad\\xff\\xfe.mp4"


def test_each_component_is_decoded_on_its_own() -> None:
    """A UTF-8 folder holding a GBK file (a FAT dock mounted inside a UTF-8 tree)."""
    assert display_bytes("/mnt/大柘/".encode() + b"\xb2\xe2\xca\xd4.mp4") == "/mnt/大柘/测试.mp4"


def test_control_characters_are_escaped() -> None:
    assert display_bytes(b"a\nb\x1b.mp4") == "a\\x0ab\\x1b.mp4"


def test_a_path_from_the_os_round_trips_to_its_exact_bytes() -> None:
    raw = b"/in/\xb2\xe2\xca\xd4.mp4"
    path = os.fsdecode(raw)
    assert raw_bytes(path) == raw
    assert display_path(path) == "/in/测试.mp4"


def test_a_message_quoting_a_byte_name_becomes_writable_text() -> None:
    msg = os.fsdecode(b"/in/bad\xff.mp4") + ": changed while it was read"
    shown = display_text(msg)
    assert shown == "/in/bad\\xff.mp4: changed while it was read"
    shown.encode("utf-8")  # no lone surrogates left
