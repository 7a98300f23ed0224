"""Verifying the audit log's chain: pure, over the bytes of its seals and segments.

`verify_log` recomputes every link of the record chain across sealed segments (as read
back from the WORM store) and the open one, checks each sealed segment against its seal
(its last record, its record range, its bytes against its key) and the seal lines' own
chain, and names the FIRST break: which segment, which record, and whether a record was
edited, deleted, moved, or never completely written. Links are `pipeline.integrity.chain`
digests, so a log written before the helper existed verifies the same.

Limits: tamper-EVIDENT. Records after the last seal are only as safe as the local disk:
truncating the tail of the open segment leaves a shorter, valid chain.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.errors import CustodyError
from pipeline.integrity import chain
from schemas.audit import AuditRecord, Seal, decode
from schemas.media import Finding, Subject
from schemas.verification import Verification

NOTE = (
    "audit log: tamper-EVIDENT; sealed segments are read back from the WORM store, records "
    "after the last seal are only as safe as the local disk (cutting them off leaves a "
    "shorter, valid chain)"
)


class SegmentMissing(CustodyError):
    """`read_sealed` raises this when a sealed segment's object is gone from the store."""


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """Where the chain first breaks. `kind`: edited | deleted | reordered | incomplete."""

    kind: str
    segment: int
    record_number: int | None  # 1-based line in the segment; None for a whole segment
    seq: int | None
    detail: str

    def __str__(self) -> str:
        where = f"segment {self.segment}"
        if self.record_number is not None:
            where += f", record {self.record_number}"
        if self.seq is not None:
            where += f" (seq {self.seq})"
        return f"{where}: {self.kind}: {self.detail}"

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "segment": self.segment,
                "record_number": self.record_number, "seq": self.seq, "detail": self.detail,
                "message": str(self)}


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The audit chain's own report; `verification` is the shape every check shares."""

    ok: bool
    segments: int
    sealed_segments: int
    records: int
    last_blake3: str
    first_break: ChainBreak | None
    log: str = ""  # where the log is (its directory)

    @property
    def verification(self) -> Verification:
        about = Subject("audit_log", self.log or None)
        findings = () if self.first_break is None else (
            Finding("AUDIT_CHAIN_BROKEN", f"first break at {self.first_break}", subject=about),)
        return Verification("audit_chain", about, self.records, findings, NOTE)

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "segments": self.segments,
                "sealed_segments": self.sealed_segments, "records": self.records,
                "last_blake3": self.last_blake3,
                "first_break": self.first_break.as_json() if self.first_break else None}


def verify_log(
    seals: Sequence[tuple[bytes, Seal | None]],
    read_sealed: Callable[[Seal], bytes],
    open_segment: int,
    open_data: bytes,
    *,
    log: str = "",
    store_uri: str = "",
) -> VerifyReport:
    """The whole chain: `seals` as read from seals.jsonl (raw line, parsed or None),
    `read_sealed` gives a sealed segment's bytes from the store (SegmentMissing if gone),
    then the open segment's number and bytes."""
    items: list[Entry] = []
    # seal, index of its first entry, index after its last, whether its bytes differ
    seal_checks: list[tuple[Seal, int, int, bool]] = []
    brk = _check_seals(seals)
    if brk is None:
        for _, seal in seals:
            assert seal is not None
            try:
                data = read_sealed(seal)
            except SegmentMissing:
                brk = ChainBreak(
                    "deleted", seal.segment, None, None,
                    f"sealed segment object {seal.key} (records seq {seal.first_seq}.."
                    f"{seal.last_seq}) is missing from the store {store_uri}",
                )
                break
            start = len(items)
            items.extend(read_entries(seal.segment, data, sealed=True))
            differ = chain.digest(data) != seal.key.removeprefix("b3/")
            seal_checks.append((seal, start, len(items), differ))
    open_entries = read_entries(open_segment, open_data, sealed=False)
    items.extend(open_entries)
    if brk is None:
        brk = walk(items, seal_checks)
    last = chain.digest(items[-1].raw) if items else chain.GENESIS
    return VerifyReport(
        ok=brk is None, segments=len(seals) + (1 if open_entries else 0),
        sealed_segments=len(seals), records=len(items), last_blake3=last,
        first_break=brk, log=log,
    )


@dataclass(slots=True)
class Entry:
    """One line of a segment, read as a record if it is one."""

    segment: int
    number: int  # 1-based line in its segment
    raw: bytes
    rec: AuditRecord | None
    error: str | None
    complete: bool = True  # False: the final line of the open segment lacks its newline


def parse_lines(data: bytes) -> Iterator[AuditRecord]:
    """Every line of `data` that reads as a record; damaged lines are `verify_log`'s."""
    for line in data.splitlines():
        with contextlib.suppress(ValueError):
            yield decode(line)


def read_entries(segment: int, data: bytes, *, sealed: bool) -> list[Entry]:
    """The lines of one segment; the open segment's last may lack its newline (a crash)."""
    lines = data.split(b"\n")
    complete_tail = lines[-1] == b""
    if complete_tail:
        lines.pop()
    out = []
    for i, raw in enumerate(lines, start=1):
        try:
            rec, error = decode(raw), None
        except ValueError as exc:
            rec, error = None, str(exc)
        out.append(Entry(segment, i, raw, rec, error))
    if out and not complete_tail and not sealed:
        out[-1].complete = False
    return out


def _check_seals(seals: Sequence[tuple[bytes, Seal | None]]) -> ChainBreak | None:
    """The first break of seals.jsonl: a line that is no seal, seals the wrong segment, or
    does not link to the seal line before it."""
    link = chain.verify_chain((raw for raw, _ in seals), _seal_link)
    for i, (_, seal) in enumerate(seals, start=1):
        if seal is None:
            return ChainBreak("edited", i, None, None,
                              f"seals.jsonl line {i} is not a seal record")
        if seal.segment != i:
            kind = "reordered" if seal.segment > i and any(
                s is not None and s.segment == i for _, s in seals[i:]) else "deleted"
            if seal.segment < i:
                kind = "reordered"
            return ChainBreak(kind, i, None, None,
                              f"seals.jsonl line {i} seals segment {seal.segment}, "
                              f"expected segment {i}")
        if link is not None and link.index == i - 1:
            return ChainBreak("edited", i - 1 if i > 1 else i, None, None,
                              f"seals.jsonl line {i} links to {seal.prev_blake3[:16]}…, but "
                              f"the seal line before it hashes to {link.expected[:16]}…: a "
                              "seal line was changed")
    return None


def _seal_link(raw: bytes) -> str | None:
    try:
        return Seal.from_line(raw).prev_blake3
    except ValueError:
        return None


def walk(
    entries: list[Entry], seal_checks: list[tuple[Seal, int, int, bool]]
) -> ChainBreak | None:
    """The first broken link of the record chain, classified."""
    position: dict[int, int] = {}
    for i, e in enumerate(entries):
        if e.rec is not None:
            position.setdefault(e.rec.seq, i)
    ends: dict[int, list[tuple[Seal, int, bool]]] = {}
    for seal, start, end, differ in seal_checks:
        ends.setdefault(end, []).append((seal, start, differ))
    exp_seq, exp_prev = 1, chain.GENESIS
    for i, e in enumerate(entries):
        for seal, start, differ in ends.get(i, ()):
            brk = _seal_end(entries, i, exp_seq - 1, exp_prev, seal, start, differ)
            if brk:
                return brk
        rec = e.rec
        if rec is None:
            if not e.complete:
                return ChainBreak("incomplete", e.segment, e.number, None,
                                  "the last line of the open segment was never completely "
                                  "written (a crash during an append)")
            return ChainBreak("edited", e.segment, e.number, None,
                              f"the record no longer reads as an audit record: {e.error}")
        if rec.seq == exp_seq:
            if rec.prev_blake3 != exp_prev:
                return _edited_link(entries, i, exp_prev)
        elif rec.seq > exp_seq:
            later = [position[s] for s in range(exp_seq, rec.seq) if position.get(s, -1) > i]
            if later:
                m = entries[later[0]]
                assert m.rec is not None
                return ChainBreak(
                    "reordered", e.segment, e.number, rec.seq,
                    f"expected seq {exp_seq} here; seq {m.rec.seq} appears later, at segment "
                    f"{m.segment} record {m.number}: records were moved out of order",
                )
            if rec.prev_blake3 == exp_prev:
                return ChainBreak(
                    "edited", e.segment, e.number, rec.seq,
                    f"the record links correctly to its predecessor but says seq {rec.seq} "
                    f"instead of {exp_seq}: its number was changed",
                )
            gone = f"seq {exp_seq}" if rec.seq - 1 == exp_seq else \
                f"seq {exp_seq}..{rec.seq - 1}"
            return ChainBreak(
                "deleted", e.segment, e.number, rec.seq,
                f"record {gone} deleted: this record links to a predecessor "
                f"({rec.prev_blake3[:16]}…) that is no longer in the log",
            )
        else:
            again = position.get(rec.seq, i) < i
            return ChainBreak(
                "reordered", e.segment, e.number, rec.seq,
                f"expected seq {exp_seq} here, found seq {rec.seq}"
                + (" again (a record was copied or moved)" if again
                   else ": records were moved out of order"),
            )
        exp_seq, exp_prev = rec.seq + 1, chain.digest(e.raw)
    for seal, start, differ in ends.get(len(entries), ()):
        brk = _seal_end(entries, len(entries), exp_seq - 1, exp_prev, seal, start, differ)
        if brk:
            return brk
    return None


def _seal_end(entries: list[Entry], end: int, last_seq: int, last_hash: str,
              seal: Seal, start: int, bytes_differ: bool) -> ChainBreak | None:
    """At the end of a sealed segment: does it end where its seal says?"""
    if last_seq < seal.last_seq:
        gone = f"seq {last_seq + 1}" if last_seq + 1 == seal.last_seq else \
            f"seq {last_seq + 1}..{seal.last_seq}"
        return ChainBreak("deleted", seal.segment, end - start + 1, None,
                          f"record {gone} deleted from the end of the sealed segment "
                          f"(its seal says it ends at seq {seal.last_seq})")
    if last_hash != seal.last_blake3:
        e = entries[end - 1]
        return ChainBreak("edited", seal.segment, e.number, last_seq,
                          f"the segment's last record hashes to {last_hash[:16]}…, but its "
                          f"seal recorded {seal.last_blake3[:16]}…: the record was changed")
    if bytes_differ:
        return ChainBreak("edited", seal.segment, None, None,
                          f"the sealed object's bytes no longer hash to its key {seal.key} "
                          "(a change outside the records, e.g. whitespace)")
    return None


def _edited_link(entries: list[Entry], i: int, exp_prev: str) -> ChainBreak:
    """Record i's link does not match its predecessor: which of the two was changed?"""
    e = entries[i]
    assert e.rec is not None
    nxt = entries[i + 1] if i + 1 < len(entries) else None
    this_ok = nxt is not None and nxt.rec is not None and nxt.rec.prev_blake3 == chain.digest(e.raw)
    if i > 0 and (this_ok or nxt is None):
        p = entries[i - 1]
        assert p.rec is not None
        hedge = "" if this_ok else " (or the link field of the record after it)"
        return ChainBreak(
            "edited", p.segment, p.number, p.rec.seq,
            f"the record was changed after it was written{hedge}: it now hashes to "
            f"{exp_prev[:16]}…, but the next record recorded {e.rec.prev_blake3[:16]}…",
        )
    return ChainBreak(
        "edited", e.segment, e.number, e.rec.seq,
        f"the record's link to its predecessor was changed: it says "
        f"{e.rec.prev_blake3[:16]}…, the predecessor hashes to {exp_prev[:16]}…",
    )
