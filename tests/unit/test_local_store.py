"""The local store's ledger: a hash chain appended to from its end."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import blake3
import pytest

from pipeline.storage.local import LocalStore, _last_line

T = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("data", "last"),
    [
        (b"", b""),
        (b"\n\n", b""),
        (b"a\n", b"a"),
        (b"a\nb\n", b"b"),
        (b"a\nb", b"b"),
        (b"a\n\n \n", b"a"),
        (b"a\nb \n", b"b "),
        (b"x" * 5000 + b"\n" + b"y" * 9000 + b"\n", b"y" * 9000),
        (b"x" * 5000 + b"\n" + b"\n" * 9000, b"x" * 5000),
    ],
)
def test_last_line_read_from_the_end(data: bytes, last: bytes) -> None:
    assert _last_line(io.BytesIO(data)) == last


def test_a_long_ledger_stays_one_chain_and_an_edit_is_found(tmp_path: Path) -> None:
    """Enough puts and holds that the ledger spans many 4 KiB blocks."""
    store = LocalStore(tmp_path / "store")
    keys = []
    for i in range(60):
        staged = store.stage()
        staged.write(f"object {i}".encode())
        keys.append(staged.commit(blake3.blake3(f"object {i}".encode()).hexdigest(),
                                  retain_until_utc=T).key)
        store.set_legal_hold(keys[-1], True)
    ledger = tmp_path / "store" / "ledger.jsonl"
    assert ledger.stat().st_size > 5 * 4096
    assert store.verify_ledger() is None
    lines = ledger.read_bytes().split(b"\n")
    assert b'"op": "hold"' in lines[31] and b'"on": true' in lines[31]
    lines[31] = lines[31].replace(b'"on": true', b'"on": false')  # line 32: a hold lifted
    ledger.write_bytes(b"\n".join(lines))
    assert store.verify_ledger() == (
        "ledger.jsonl line 33: chain broken (entry or its predecessor changed)"
    )
