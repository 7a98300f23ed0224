"""The one hash-chain helper, and that logs and ledgers written before it still verify.

The fixed bytes below were written by the code before `pipeline.integrity.chain` existed
(commit 42702ed: an audit log with one sealed segment and an open one, and a local store's
ledger with a put, a retention extension and a legal hold). They must verify for ever: an
archive keeps its audit log and ledger longer than any version of this code.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import blake3
import pytest

from pipeline.audit.log import AuditLog
from pipeline.integrity import chain
from pipeline.storage.local import LocalStore
from schemas import audit

T0 = dt.datetime(2025, 3, 1, 8, 0, tzinfo=dt.UTC)

OLD_SEALED_SEGMENT = (
    b'{"action":"view","actor_id":"S-1","at_utc":"2025-03-01T08:00:01.000000+00:00","objec'
    b't_id":"b3/0000000000000000000000000000000000000000000000000000000000000000","prev_bl'
    b'ake3":"0000000000000000000000000000000000000000000000000000000000000000","reason":"'
    b'\xe5\x8e\x9f\xe5\x9b\xa0 0","result":"allowed","seq":1}\n'
    b'{"action":"view","actor_id":"S-2","at_utc":"2025-03-01T08:00:02.000000+00:00","objec'
    b't_id":"b3/0000000000000000000000000000000000000000000000000000000000000001","prev_bl'
    b'ake3":"9b57107c55696d860510c1e29eaa107ed573673f365de30e94249375858caa29","reason":"'
    b'\xe5\x8e\x9f\xe5\x9b\xa0 1","result":"refused","seq":2}\n'
    b'{"action":"view","actor_id":"S-1","at_utc":"2025-03-01T08:00:03.000000+00:00","objec'
    b't_id":"b3/0000000000000000000000000000000000000000000000000000000000000002","prev_bl'
    b'ake3":"0ba57a559d723431889781ca5853e42ecdf9680c960b8359eb600c69ac693b65","reason":"'
    b'\xe5\x8e\x9f\xe5\x9b\xa0 2","result":"allowed","seq":3}\n'
)
OLD_SEALS = (
    b'{"first_seq":1,"key":"b3/067d8a6ab7a282204516714690a2cc434cd26f7aaef3e06858dbce53563'
    b'c719b","last_blake3":"a4ed3d55d2b50aa78cdebf19b10bcc15b95ed204f929fa466463601799c320'
    b'3a","last_seq":3,"prev_blake3":"0000000000000000000000000000000000000000000000000000'
    b'000000000000","records":3,"sealed_at_utc":"2025-03-01T08:00:04+00:00","segment":1}\n'
)
OLD_OPEN_SEGMENT = (
    b'{"action":"view","actor_id":"S-3","at_utc":"2025-03-01T08:00:05.000000+00:00","objec'
    b't_id":"b3/0000000000000000000000000000000000000000000000000000000000000003","prev_bl'
    b'ake3":"a4ed3d55d2b50aa78cdebf19b10bcc15b95ed204f929fa466463601799c3203a","reason":"'
    b'\xe5\x8e\x9f\xe5\x9b\xa0 3","result":"refused","seq":4}\n'
    b'{"action":"view","actor_id":"S-2","at_utc":"2025-03-01T08:00:06.000000+00:00","objec'
    b't_id":"b3/0000000000000000000000000000000000000000000000000000000000000004","prev_bl'
    b'ake3":"e01bf0e8aee50cf7cbf8d32c18262b314787d232d7a3636c18d4330a977a84fa","reason":"'
    b'\xe5\x8e\x9f\xe5\x9b\xa0 4","result":"allowed","seq":5}\n'
)
OLD_LEDGER = (
    b'{"at_utc": "2025-03-01T08:00:01+00:00", "key": "b3/067d8a6ab7a282204516714690a2cc434'
    b'cd26f7aaef3e06858dbce53563c719b", "op": "put", "prev_blake3": "000000000000000000000'
    b'0000000000000000000000000000000000000000000", "retain_until_utc": "2035-03-02T08:00:'
    b'04+00:00", "size_bytes": 867}\n'
    b'{"at_utc": "2025-03-01T08:00:02+00:00", "key": "b3/dba2e427e2576f6d64c88d62958547d38'
    b'5057b089c669fd36b215e17febeebff", "op": "put", "prev_blake3": "67fc7352d9fc6715a8721'
    b'551c5957a00716010dde628d5be5e90c2e674a28932", "retain_until_utc": "2026-03-01T08:00:'
    b'00+00:00", "size_bytes": 22}\n'
    b'{"at_utc": "2025-03-01T08:00:03+00:00", "key": "b3/dba2e427e2576f6d64c88d62958547d38'
    b'5057b089c669fd36b215e17febeebff", "op": "retention", "prev_blake3": "00011f113e45fbc'
    b'a5e122e8f9619c327afb540f85c7125c14ce0090cddcf5773", "retain_until_utc": "2027-05-10T'
    b'08:00:00+00:00"}\n'
    b'{"at_utc": "2025-03-01T08:00:04+00:00", "key": "b3/dba2e427e2576f6d64c88d62958547d38'
    b'5057b089c669fd36b215e17febeebff", "on": true, "op": "hold", "prev_blake3": "df393a70'
    b'78376b4b9ac5ac16008550ea93e6464d6def036de614bd39a45de9a1"}\n'
)


def _old_audit_log(tmp_path: Path) -> tuple[LocalStore, Path]:
    store = LocalStore(tmp_path / "store")
    staged = store.stage()
    staged.write(OLD_SEALED_SEGMENT)
    key = staged.commit(blake3.blake3(OLD_SEALED_SEGMENT).hexdigest(),
                        retain_until_utc=T0 + dt.timedelta(days=3653)).key
    assert key == "b3/067d8a6ab7a282204516714690a2cc434cd26f7aaef3e06858dbce53563c719b"
    audit = tmp_path / "audit"
    audit.mkdir()
    (audit / "seals.jsonl").write_bytes(OLD_SEALS)
    (audit / "segment-000002.jsonl").write_bytes(OLD_OPEN_SEGMENT)
    return store, audit


def test_an_audit_log_written_before_the_chain_helper_still_verifies(tmp_path: Path) -> None:
    store, audit = _old_audit_log(tmp_path)
    with AuditLog(audit, store=store, clock=lambda: T0) as log:
        report = log.verify()
    assert report.ok, report.first_break
    assert (report.records, report.segments, report.sealed_segments) == (5, 2, 1)


def test_an_old_audit_log_goes_on_as_one_chain(tmp_path: Path) -> None:
    """A record appended now links to the last record the old code wrote."""
    store, audit = _old_audit_log(tmp_path)
    with AuditLog(audit, store=store, clock=lambda: T0 + dt.timedelta(minutes=1)) as log:
        rec = log.append("S-1", "view", "b3/" + "f" * 64, "allowed", "after the change")
        report = log.verify()
    assert rec.seq == 6
    assert rec.prev_blake3 == blake3.blake3(OLD_OPEN_SEGMENT.splitlines()[-1]).hexdigest()
    assert report.ok and report.records == 6


def test_a_ledger_written_before_the_chain_helper_still_verifies(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    (tmp_path / "store" / "ledger.jsonl").write_bytes(OLD_LEDGER)
    assert store.verify_ledger() is None
    staged = store.stage()
    staged.write(b"a new object")
    staged.commit(blake3.blake3(b"a new object").hexdigest(), retain_until_utc=T0)
    assert store.verify_ledger() is None
    lines = (tmp_path / "store" / "ledger.jsonl").read_bytes().splitlines()
    assert len(lines) == 5
    assert blake3.blake3(lines[3]).hexdigest() in lines[4].decode()


# --- the helper -------------------------------------------------------------------------------
def _lines(n: int) -> list[bytes]:
    out: list[bytes] = []
    for i in range(n):
        out.append(json.dumps({"n": i, "prev": chain.link(out[-1] if out else None)}).encode())
    return out


def _prev(line: bytes) -> str | None:
    value = json.loads(line).get("prev")
    return value if isinstance(value, str) else None


def test_the_first_line_links_to_genesis_and_each_next_to_the_digest_of_the_last() -> None:
    assert chain.link(None) == chain.link(b"") == chain.GENESIS == "0" * 64
    assert chain.link(b"a line") == blake3.blake3(b"a line").hexdigest() == chain.digest(b"a line")


def test_the_audit_schema_and_the_chain_start_from_the_same_genesis() -> None:
    assert audit.GENESIS == chain.GENESIS


def test_a_whole_chain_has_no_broken_link() -> None:
    lines = _lines(5)
    assert chain.verify_chain(lines, _prev) is None
    assert chain.head(lines) == chain.digest(lines[-1])
    assert chain.verify_chain([], _prev) is None and chain.head([]) == chain.GENESIS


@pytest.mark.parametrize("change", ["edit", "delete", "swap"])
def test_an_edit_a_deletion_or_a_move_breaks_the_link_after_it(change: str) -> None:
    lines = _lines(6)
    if change == "edit":
        lines[2] = lines[2].replace(b'"n": 2', b'"n": 7')
        want = 3
    elif change == "delete":
        del lines[2]
        want = 2
    else:
        lines[2], lines[3] = lines[3], lines[2]
        want = 2
    brk = chain.verify_chain(lines, _prev)
    assert brk is not None and brk.index == want


def test_a_line_without_a_readable_link_is_a_break_with_nothing_found() -> None:
    lines = _lines(3)
    lines[1] = b"not json"
    brk = chain.verify_chain(lines, lambda raw: _prev(raw) if raw.startswith(b"{") else None)
    assert brk == chain.BrokenLink(1, chain.digest(lines[0]), None)


def test_a_chain_may_continue_from_an_earlier_part() -> None:
    lines = _lines(4)
    assert chain.verify_chain(lines[2:], _prev, start=chain.digest(lines[1])) is None
    assert chain.verify_chain(lines[2:], _prev) is not None


# --- the shared result shape ------------------------------------------------------------------
def test_a_whole_audit_chain_is_an_ok_verification(tmp_path: Path) -> None:
    store, audit_dir = _old_audit_log(tmp_path)
    with AuditLog(audit_dir, store=store, clock=lambda: T0) as log:
        v = log.verify().verification
    assert (v.kind, v.target.kind, v.checked, v.ok, v.findings) == (
        "audit_chain", "audit_log", 5, True, ())
    assert "tamper-EVIDENT" in v.note


def test_a_broken_audit_chain_is_one_audit_chain_broken_finding(tmp_path: Path) -> None:
    store, audit_dir = _old_audit_log(tmp_path)
    seg = audit_dir / "segment-000002.jsonl"
    seg.write_bytes(seg.read_bytes().replace(b"S-3", b"S-9"))
    with AuditLog(audit_dir, store=store, clock=lambda: T0) as log:
        report = log.verify()
    (f,) = report.verification.findings
    assert not report.ok and not report.verification.ok
    assert (f.code, f.rule, f.subject.kind) == ("AUDIT_CHAIN_BROKEN", "AV-16", "audit_log")
    assert str(report.first_break) in f.detail and "segment 2, record 1 (seq 4)" in f.detail


def test_a_broken_ledger_is_one_ledger_chain_broken_finding(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    (tmp_path / "store" / "ledger.jsonl").write_bytes(OLD_LEDGER.replace(b"true", b"false"))
    # The limit of any such chain: nothing links to the last line, so its change is unseen.
    assert store.check_ledger().ok
    (tmp_path / "store" / "ledger.jsonl").write_bytes(OLD_LEDGER.replace(b"2027", b"2026"))
    v = store.check_ledger()
    (f,) = v.findings
    assert (v.kind, v.checked, f.code, f.rule) == ("ledger", 4, "LEDGER_CHAIN_BROKEN", "AV-15")
    assert f.subject.kind == "store" and f.subject.id == store.uri
    assert f.detail == store.verify_ledger() == (
        "ledger.jsonl line 4: chain broken (entry or its predecessor changed)")


def test_a_ledger_line_that_is_not_json_is_a_break_not_a_crash(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    (tmp_path / "store" / "ledger.jsonl").write_bytes(OLD_LEDGER + b"garbage\n")
    assert store.verify_ledger() == "ledger.jsonl line 5: chain broken (not a ledger entry)"
