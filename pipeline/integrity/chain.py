"""The one hash chain: each line carries the BLAKE3 of the line before it.

Used by the audit log's records and its `seals.jsonl`, by the local store's
`ledger.jsonl`, and later by court-export manifests. A line's link (the `prev_blake3`
field of the formats so far) is the BLAKE3 hex of exactly the bytes of the previous line,
without its newline; the first line links to `GENESIS`. Changing, removing or moving any
line therefore breaks the link of the line after it.

Decision: the link is the hash of the previous *line*, not `H(prev_hash || payload)`.
That is what every log and ledger written so far does, and they must verify for ever; it
also lets a reader check one link knowing only two adjacent lines. Where the link sits in
a line (a JSON field, today) is the format's business: `verify_chain` takes a function
that reads it.

Pure: bytes in, digests and positions out. No file is opened here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import blake3

GENESIS = "0" * 64  # the link of a chain's first line


def digest(line: bytes) -> str:
    """The BLAKE3 hex of one line (without its newline): what the next line links to."""
    return blake3.blake3(line).hexdigest()


def link(prev_line: bytes | None) -> str:
    """The link a new line carries after `prev_line` (None or empty: the chain's first)."""
    return digest(prev_line) if prev_line else GENESIS


@dataclass(frozen=True, slots=True)
class BrokenLink:
    """The first line whose link does not match its predecessor.

    `index` counts the lines given, from 0; `found` is None when the line's link could
    not be read at all (not the format's line)."""

    index: int
    expected: str
    found: str | None


def verify_chain(
    lines: Iterable[bytes],
    link_of: Callable[[bytes], str | None],
    *,
    start: str = GENESIS,
) -> BrokenLink | None:
    """The first broken link of `lines` (each without its newline), or None if whole.

    `link_of` reads a line's link (None if it has none); `start` is what the first line
    must link to (GENESIS, or the last digest of an earlier part of the same chain)."""
    expected = start
    for index, line in enumerate(lines):
        found = link_of(line)
        if found != expected:
            return BrokenLink(index, expected, found)
        expected = digest(line)
    return None


def head(lines: Iterable[bytes], *, start: str = GENESIS) -> str:
    """What the next line of a chain ending with `lines` links to."""
    last = start
    for line in lines:
        last = digest(line)
    return last
