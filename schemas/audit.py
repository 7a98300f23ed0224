"""The audit record (AV-15, AV-16, AUX-10) and its one byte encoding.

Every action, allowed or refused, is one `AuditRecord`: who (`actor_id`), what
(`action`), which object (`object_id`), when (`at_utc`), the `result`, the `reason`, and
the operating-system account the command ran as (`os_account`; absent from lines written
before it existed, which read back as None and encode to the same bytes).
Records form a hash chain: `prev_blake3` is the BLAKE3 of the previous record's encoded
line, so editing, deleting or reordering any record breaks the link after it. `seq`
numbers records over the whole log from 1, which is what lets `verify` tell a deleted
record (a gap) from a reordered one (the number turns up later) and from an edit (the
number is right, the hash is not).

The encoding is one JSON object per line, keys sorted, no spaces, UTF-8: the hash is taken
over exactly those bytes, so the encoding must never change for existing logs.

A `Seal` is one line of `seals.jsonl`: a segment of records put into the WORM store, with
the record range and last record hash it must contain; seal lines are chained the same way.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, ClassVar

# The first record's link; the same value as `pipeline.integrity.chain.GENESIS` (a test
# keeps them equal: `schemas` imports nothing from `pipeline`).
GENESIS = "0" * 64
ALLOWED = "allowed"
REFUSED = "refused"
RESULTS: tuple[str, ...] = (ALLOWED, REFUSED)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    TABLE: ClassVar[str] = "audit_log"
    seq: int
    at_utc: dt.datetime
    actor_id: str
    action: str
    object_id: str
    result: str  # allowed | refused
    reason: str
    prev_blake3: str
    # The operating-system account the command ran as ("wang (uid 1003)"), written on every
    # record since issue 10; None for records written before (their lines have no key).
    os_account: str | None = None


_FIELDS = ("seq", "at_utc", "actor_id", "action", "object_id", "result", "reason",
           "prev_blake3")
_OPTIONAL = ("os_account",)


def encode(rec: AuditRecord) -> bytes:
    """The record's line, without the newline. The chain hashes exactly these bytes."""
    doc = {
        "seq": rec.seq,
        "at_utc": rec.at_utc.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        "actor_id": rec.actor_id,
        "action": rec.action,
        "object_id": rec.object_id,
        "result": rec.result,
        "reason": rec.reason,
        "prev_blake3": rec.prev_blake3,
    }
    if rec.os_account is not None:  # absent, not null, so older lines encode as they were
        doc["os_account"] = rec.os_account
    return json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def decode(line: bytes) -> AuditRecord:
    """A record from its line; ValueError if the line is not a whole, well-formed record."""
    try:
        doc: Any = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"not a JSON record ({exc})") from None
    if not isinstance(doc, dict) or not set(_FIELDS) <= set(doc) <= {*_FIELDS, *_OPTIONAL}:
        raise ValueError("not an audit record (fields missing or extra)")
    os_account = doc.get("os_account")
    if "os_account" in doc and not isinstance(os_account, str):  # absent, never null
        raise ValueError("malformed audit record (os_account is not a string)")
    try:
        return AuditRecord(
            seq=int(doc["seq"]),
            at_utc=dt.datetime.fromisoformat(str(doc["at_utc"])),
            actor_id=str(doc["actor_id"]),
            action=str(doc["action"]),
            object_id=str(doc["object_id"]),
            result=str(doc["result"]),
            reason=str(doc["reason"]),
            prev_blake3=str(doc["prev_blake3"]),
            os_account=os_account,
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(f"malformed audit record ({exc})") from None


@dataclass(frozen=True, slots=True)
class Seal:
    """One sealed segment: the WORM object holding its bytes and what it must contain."""

    segment: int
    key: str
    first_seq: int
    last_seq: int
    records: int
    last_blake3: str
    sealed_at_utc: dt.datetime
    prev_blake3: str  # BLAKE3 of the previous line of seals.jsonl

    def to_line(self) -> bytes:
        """The seal's line, without the newline (the seal chain hashes these bytes)."""
        doc = {
            "segment": self.segment, "key": self.key, "first_seq": self.first_seq,
            "last_seq": self.last_seq, "records": self.records,
            "last_blake3": self.last_blake3,
            "sealed_at_utc": self.sealed_at_utc.astimezone(dt.UTC).isoformat(),
            "prev_blake3": self.prev_blake3,
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_line(cls, line: bytes) -> Seal:
        """A seal from its line; ValueError if the line is not one."""
        try:
            d: Any = json.loads(line)
            return cls(
                segment=int(d["segment"]), key=str(d["key"]), first_seq=int(d["first_seq"]),
                last_seq=int(d["last_seq"]), records=int(d["records"]),
                last_blake3=str(d["last_blake3"]),
                sealed_at_utc=dt.datetime.fromisoformat(str(d["sealed_at_utc"])),
                prev_blake3=str(d["prev_blake3"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"not a seal line ({exc})") from None
