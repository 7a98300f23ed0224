"""The local store's ledger: a hash chain appended to from its end."""

from __future__ import annotations

import datetime as dt
import io
import shutil
from pathlib import Path

import blake3
import pytest

from pipeline.storage.base import StoreUnavailable
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


def _commit(store: LocalStore, data: bytes, *, durable: bool) -> tuple[str, bool]:
    staged = store.stage()
    staged.write(data)
    put = staged.commit(blake3.blake3(data).hexdigest(), retain_until_utc=T, durable=durable)
    return put.key, put.created


def test_a_deferred_commit_is_named_and_recorded_before_the_sync(tmp_path: Path) -> None:
    """`durable=False` defers only the fsyncs: the name and the ledger line are there."""
    store = LocalStore(tmp_path / "store")
    key, created = _commit(store, b"deferred", durable=False)
    assert created is True
    assert store.head(key).retain_until_utc == T
    assert store.open(key).read() == b"deferred"
    ledger = (tmp_path / "store" / "ledger.jsonl").read_bytes()
    assert ledger.count(b'"op": "put"') == 1
    store.sync()
    assert store.verify_ledger() is None


def test_a_put_line_lost_before_the_sync_is_written_again(tmp_path: Path) -> None:
    """A crash after an object's name reached the disk but before its ledger line did
    (the store's sync had not run): the next commit of the same bytes finds the object
    (`created` False) and records its retention again, once."""
    store = LocalStore(tmp_path / "store")
    _commit(store, b"earlier", durable=True)
    ledger = tmp_path / "store" / "ledger.jsonl"
    before = ledger.read_bytes()
    key, _ = _commit(store, b"lost line", durable=False)
    ledger.write_bytes(before)  # what the disk kept: the name, not the line
    assert store.head(key).retain_until_utc is None

    again, created = _commit(store, b"lost line", durable=False)
    assert (again, created) == (key, False)
    assert store.head(key).retain_until_utc == T
    assert ledger.read_bytes().count(b'"op": "put"') == 2
    _commit(store, b"lost line", durable=True)  # recorded now: no third line
    assert ledger.read_bytes().count(b'"op": "put"') == 2
    assert store.verify_ledger() is None


def test_a_store_that_cannot_sync_says_which_and_why(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    shutil.rmtree(tmp_path / "store")
    with pytest.raises(StoreUnavailable) as err:
        store.sync()
    assert str(err.value) == (f"{tmp_path / 'store'}: the store cannot make its objects "
                              "durable: No such file or directory")
