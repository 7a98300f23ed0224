"""Sealing: a segment of the audit log put into the WORM store, and `seals.jsonl`.

A seal puts the segment's exact bytes into the store under their BLAKE3 key (retention
`seal_retention` from the sealing time, growing later like any object's), then appends one
line to `seals.jsonl` (the segment's key, record range and last record hash, chained to
the seal line before it) and fsyncs it. Only then is the local segment file removed: from
then on the store's copy is the only one. A crash between the seal line and the unlink
leaves the local copy, which `drop_sealed_leftovers` removes when it matches its seal.

These functions work on paths and a store; the lock and the open segment's state belong
to `AuditLog`, which calls them with the lock held.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import blake3

from pipeline.integrity import chain
from pipeline.storage.base import PutResult, WormStore
from schemas.audit import Seal

SEALS = "seals.jsonl"
_SEGMENT_RE = re.compile(r"^segment-(\d{6})\.jsonl$")


def segment_path(root: Path, n: int) -> Path:
    return root / f"segment-{n:06d}.jsonl"


def read_seals(root: Path) -> list[tuple[bytes, Seal | None]]:
    """Every line of seals.jsonl: its bytes and the seal it holds (None if it holds none)."""
    out: list[tuple[bytes, Seal | None]] = []
    with open(root / SEALS, "rb") as fh:
        for line in fh:
            raw = line.rstrip(b"\n")
            if not raw:
                continue
            try:
                out.append((raw, Seal.from_line(raw)))
            except ValueError:
                out.append((raw, None))
    return out


def put_segment(
    store: WormStore, data: bytes, *, retain_until_utc: dt.datetime
) -> PutResult:
    """The segment's bytes into the store under their content key (StoreError if not)."""
    staged = store.stage(len(data))
    try:
        staged.write(data)
        return staged.commit(blake3.blake3(data).hexdigest(), retain_until_utc=retain_until_utc)
    except BaseException:
        staged.abort()
        raise


def append_seal(root: Path, seal: Seal) -> None:
    """One durable line in seals.jsonl."""
    with open(root / SEALS, "ab") as fh:
        fh.write(seal.to_line() + b"\n")
        fh.flush()
        os.fsync(fh.fileno())


def next_seal_link(seals: list[tuple[bytes, Seal | None]]) -> str:
    """What the next seal line links to: the digest of the last one (GENESIS if none)."""
    return chain.link(seals[-1][0] if seals else None)


def drop_sealed_leftovers(root: Path, seals: list[tuple[bytes, Seal | None]]) -> None:
    """A crash between sealing and unlinking leaves a sealed segment's local copy."""
    for p in root.glob("segment-*.jsonl"):
        m = _SEGMENT_RE.match(p.name)
        if not m or int(m.group(1)) > len(seals):
            continue
        seal = seals[int(m.group(1)) - 1][1]
        if seal is not None and seal.key == f"b3/{blake3.blake3(p.read_bytes()).hexdigest()}":
            p.unlink()
