"""The hash chain's exact values, pinned for mutation testing (issue 11 item 1).

Every digest here is BLAKE3 computed independently (`b3sum` agrees); the chain helper
must give these bytes for ever, since logs and ledgers written today verify against them.
"""

from __future__ import annotations

import json

from pipeline.integrity import chain

# BLAKE3 of b"" and b"abc" (the BLAKE3 paper's test vectors).
B3_EMPTY = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
B3_ABC = "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"


def _link_of(line: bytes) -> str | None:
    v = json.loads(line).get("prev")
    return v if isinstance(v, str) else None


def _lines(*payloads: str) -> list[bytes]:
    out: list[bytes] = []
    for p in payloads:
        out.append(json.dumps({"p": p, "prev": chain.link(out[-1] if out else None)}).encode())
    return out


def test_genesis_is_sixty_four_zeros() -> None:
    assert chain.GENESIS == "0" * 64


def test_digest_is_the_blake3_hex_of_the_line() -> None:
    assert chain.digest(b"abc") == B3_ABC
    assert chain.digest(b"") == B3_EMPTY


def test_link_after_a_line_is_its_digest_and_after_nothing_is_genesis() -> None:
    assert chain.link(b"abc") == B3_ABC
    assert chain.link(None) == chain.GENESIS
    assert chain.link(b"") == chain.GENESIS


def test_a_broken_link_names_its_index_what_was_expected_and_what_was_found() -> None:
    lines = _lines("a", "b", "c")
    forged = json.dumps({"p": "c", "prev": "f" * 64}).encode()
    broken = chain.verify_chain([lines[0], lines[1], forged], _link_of)
    assert broken == chain.BrokenLink(2, chain.digest(lines[1]), "f" * 64)


def test_the_first_line_must_link_to_the_start_given() -> None:
    lines = _lines("a")
    assert chain.verify_chain(lines, _link_of) is None
    broken = chain.verify_chain(lines, _link_of, start=B3_ABC)
    assert broken == chain.BrokenLink(0, B3_ABC, chain.GENESIS)


def test_an_empty_chain_is_whole() -> None:
    assert chain.verify_chain([], _link_of) is None


def test_head_is_the_digest_of_the_last_line_or_the_start() -> None:
    lines = _lines("a", "b")
    assert chain.head(lines) == chain.digest(lines[1])
    assert chain.head([]) == chain.GENESIS
    assert chain.head([], start=B3_ABC) == B3_ABC
