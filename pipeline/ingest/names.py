"""File names are bytes: the exact name, kept losslessly, and the form a person reads.

Linux hands us whatever bytes a file system holds. A FAT dock mounted with the wrong code
page, or a zip made on Chinese Windows, gives GBK bytes; Python turns them into lone
surrogates (`os.fsdecode`, surrogateescape), which no UTF-8 writer (the audit log, Arrow,
JSON, a terminal) accepts. So every name has two forms:

- the raw bytes (`os.fsencode(path)`), stored as they are (a binary catalog column,
  base64 in JSON): the name that opens the file and proves which file it was;
- the display form, per path component: UTF-8 if the bytes are UTF-8, else GB18030 (a
  superset of GBK) if they decode as that, else UTF-8 with each undecodable byte written
  `\\xNN`. Control characters are written `\\xNN` too (a newline in a name must not break a
  table or a log line). Labels files name files by this form.

Pure: no I/O.
"""

from __future__ import annotations

import base64
import os
import re

# Lone surrogates from surrogateescape: the undecodable bytes 0x80-0xFF of a str path.
_ESCAPED = re.compile("[\udc80-\udcff]+")
_CONTROL = re.compile("[\x00-\x1f\x7f]")


def _visible(text: str) -> str:
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def display_component(raw: bytes) -> str:
    """One path component's display form: UTF-8, else GB18030, else `\\xNN` escapes."""
    for encoding in ("utf-8", "gb18030"):
        try:
            return _visible(raw.decode(encoding))
        except UnicodeDecodeError:
            continue
    return _visible(raw.decode("utf-8", "backslashreplace"))


def display_bytes(raw: bytes) -> str:
    """A path's display form, decided component by component (a UTF-8 folder may hold a
    GBK file)."""
    return "/".join(display_component(part) for part in raw.split(b"/"))


def display_path(path: str | os.PathLike[str]) -> str:
    """The display form of a path as the OS gave it."""
    return display_bytes(os.fsencode(path))


def display_text(text: str) -> str:
    """A message that may quote a path with undecodable bytes (an exception's text): each
    run of escaped bytes shown as `display_component` shows it, so it can be written."""
    return _ESCAPED.sub(
        lambda m: display_component(m.group().encode("utf-8", "surrogateescape")), text
    )


def raw_bytes(path: str | os.PathLike[str]) -> bytes:
    """The exact bytes of a path (lossless: `os.fsdecode` of them gives the path back)."""
    return os.fsencode(path)


def b64(raw: bytes) -> str:
    """Raw name bytes for JSON."""
    return base64.b64encode(raw).decode("ascii")
