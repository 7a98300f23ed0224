"""The local store's staging leftovers: a killed writer's `*.part` is removed, a live
writer's copy is kept (it holds a flock on it)."""

from __future__ import annotations

import time
from pathlib import Path

from pipeline.storage.local import LocalStore


def test_clear_staging_removes_abandoned_copies_and_keeps_live_ones(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    live = store.stage()
    live.write(b"being written")
    dead = tmp_path / "store" / "tmp" / "0123456789abcdef.part"
    dead.write_bytes(b"a killed run's copy")  # nobody holds it
    time.sleep(1.1)  # a copy changed in the last second is left alone
    assert store.clear_staging() == 1
    assert not dead.exists()
    assert len(list((tmp_path / "store" / "tmp").glob("*.part"))) == 1
    live.abort()
    assert store.clear_staging() == 0
