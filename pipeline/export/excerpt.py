"""custody/chain-of-custody.jsonl: the audit records of a package's items, checkable alone.

The audit log is sealed first (`make` does), so every record of the items is in a sealed
segment. The excerpt then holds, one JSON object per line:

- `{"type": "seal", "line": ...}` for every line of `seals.jsonl` up to the last segment
  the excerpt draws on: each seal names its segment's WORM key (the BLAKE3 of the
  segment's bytes), its record range and its last record's chain hash, and the seal lines
  chain to one another from GENESIS (`pipeline.integrity.chain`);
- `{"type": "record", "segment": n, "line": ..., "chain_hash": ...}` for each record about
  one of the items (object `b3/<BLAKE3>`) or the export itself: the record's exact line
  (what the chain hashes) and its chain hash (the BLAKE3 of that line).

`check_excerpt` (the receiver's side, no store) names each line that does not hold: a
record whose line no longer hashes to its chain hash, whose link to the record before it
(when that one is in the excerpt too) or to its seal (a segment's last record, or the
first one after the previous seal) is broken, whose number is outside its seal's range, or
a broken seal chain. What it cannot prove alone: that no record was left out; the office
can, against the sealed segments in WORM (`custody audit verify`) and the kept copy of
this package's tag files.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.audit import seal as sealing
from pipeline.integrity import chain
from schemas.audit import Seal, decode

EXCERPT = "custody/chain-of-custody.jsonl"


def _line(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def build_excerpt(
    audit_root: Path, read_sealed: Callable[[Seal], bytes], objects: Collection[str]
) -> tuple[bytes, int]:
    """The excerpt's bytes and how many records it holds (records about `objects`)."""
    seals = sealing.read_seals(audit_root)
    records: list[bytes] = []
    last_used = 0
    for _raw, seal in seals:
        if seal is None:
            continue
        for line in read_sealed(seal).splitlines():
            try:
                rec = decode(line)
            except ValueError:
                continue
            if rec.object_id in objects:
                records.append(_line({"type": "record", "segment": seal.segment,
                                      "line": line.decode(), "chain_hash": chain.digest(line)}))
                last_used = seal.segment
    head = [_line({"type": "seal", "line": raw.decode()}) for raw, _ in seals[:last_used]]
    return b"".join(x + b"\n" for x in [*head, *records]), len(records)


@dataclass(frozen=True, slots=True)
class ExcerptProblem:
    line: int  # 1-based line of the excerpt
    detail: str


def check_excerpt(data: bytes) -> tuple[int, list[ExcerptProblem]]:
    """(records checked, problems) of an excerpt's bytes."""
    problems: list[ExcerptProblem] = []
    seals: dict[int, Seal] = {}
    prev_seal_hash = chain.GENESIS
    prev_rec: tuple[int, str] | None = None  # (seq, chain hash) of the record line before
    checked = 0
    for n, raw in enumerate(data.splitlines(), 1):
        try:
            doc = json.loads(raw)
            kind = doc["type"]
            line = str(doc["line"]).encode()
        except (ValueError, KeyError, TypeError):
            problems.append(ExcerptProblem(n, "not an excerpt line"))
            continue
        if kind == "seal":
            try:
                seal = Seal.from_line(line)
            except ValueError:
                problems.append(ExcerptProblem(n, "not a seal line"))
                continue
            if seal.prev_blake3 != prev_seal_hash:
                problems.append(ExcerptProblem(
                    n, f"seal of segment {seal.segment} does not link to the seal before it "
                    "(the seal chain was edited)"))
            prev_seal_hash = chain.digest(line)
            seals[seal.segment] = seal
            continue
        checked += 1
        try:
            rec = decode(line)
        except ValueError as exc:
            problems.append(ExcerptProblem(n, f"not an audit record ({exc})"))
            continue
        what = f"audit record #{rec.seq} ({rec.action} {rec.object_id})"
        got = chain.digest(line)
        if got != doc.get("chain_hash"):
            problems.append(ExcerptProblem(
                n, f"{what}: its line hashes to {got[:16]}…, not the chain hash "
                f"{str(doc.get('chain_hash'))[:16]}… it was sealed with: the record was edited"))
        sealed = seals.get(int(doc.get("segment", 0)))
        if sealed is None:
            problems.append(ExcerptProblem(n, f"{what}: no seal for segment "
                                              f"{doc.get('segment')} in the excerpt"))
        else:
            seal = sealed
            if not seal.first_seq <= rec.seq <= seal.last_seq:
                problems.append(ExcerptProblem(
                    n, f"{what}: outside its sealed segment's records "
                    f"#{seal.first_seq}-#{seal.last_seq}"))
            if rec.seq == seal.last_seq and got != seal.last_blake3:
                problems.append(ExcerptProblem(
                    n, f"{what}: is its segment's last record but does not hash to the "
                    "sealed last chain hash"))
            before = seals.get(seal.segment - 1)
            if rec.seq == seal.first_seq and rec.prev_blake3 != (
                    before.last_blake3 if before else chain.GENESIS):
                problems.append(ExcerptProblem(
                    n, f"{what}: does not link to the end of the segment sealed before it"))
        if prev_rec is not None and prev_rec[0] + 1 == rec.seq and rec.prev_blake3 != prev_rec[1]:
            problems.append(ExcerptProblem(
                n, f"{what}: does not link to record #{prev_rec[0]} before it"))
        prev_rec = (rec.seq, str(doc.get("chain_hash")))
    return checked, problems
