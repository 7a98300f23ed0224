"""The audit chain's verifier, pinned for mutation testing (issue 11 item 1).

Pure: the log's bytes are built here (records, segments, seals) and given straight to
`verify_log`; every break is asserted whole (kind, segment, record, seq and the exact
sentence a court would read), so a changed number or word in the verifier fails a test.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from pipeline.audit import verify as v
from pipeline.integrity import chain
from schemas.audit import GENESIS, AuditRecord, Seal, encode

T0 = dt.datetime(2025, 3, 1, 8, 0, tzinfo=dt.UTC)


def _records(n: int, *, first: int = 1, prev: str = GENESIS) -> list[bytes]:
    out: list[bytes] = []
    for seq in range(first, first + n):
        line = encode(AuditRecord(seq, T0 + dt.timedelta(seconds=seq), f"S-{seq % 3}",
                                  "view", f"b3/{seq:064x}", "allowed", f"reason {seq}",
                                  prev))
        out.append(line)
        prev = chain.digest(line)
    return out


def _data(lines: list[bytes]) -> bytes:
    return b"".join(line + b"\n" for line in lines)


class Log:
    """Sealed segments of `per` records each, then an open segment of the rest."""

    def __init__(self, n: int, per: int = 0, sealed: int = 0) -> None:
        self.lines = _records(n)
        self.segments: list[list[bytes]] = [
            self.lines[i * per:(i + 1) * per] for i in range(sealed)]
        self.open = self.lines[sealed * per:]
        self.objects: dict[str, bytes] = {}
        self.seals: list[tuple[bytes, Seal | None]] = []
        prev = GENESIS
        for n_seg, seg in enumerate(self.segments, start=1):
            data = _data(seg)
            key = "b3/" + chain.digest(data)
            self.objects[key] = data
            first = json.loads(seg[0])["seq"]
            seal = Seal(n_seg, key, first, first + len(seg) - 1, len(seg),
                        chain.digest(seg[-1]), T0, prev)
            raw = seal.to_line()
            self.seals.append((raw, seal))
            prev = chain.digest(raw)

    def read(self, seal: Seal) -> bytes:
        try:
            return self.objects[seal.key]
        except KeyError:
            raise v.SegmentMissing(seal.key) from None

    def verify(self, open_data: bytes | None = None) -> v.VerifyReport:
        data = _data(self.open) if open_data is None else open_data
        return v.verify_log(self.seals, self.read, len(self.segments) + 1, data,
                            log="/var/audit", store_uri="file:///store")


def _brk(report: v.VerifyReport) -> v.ChainBreak:
    assert report.ok is False
    assert report.first_break is not None
    return report.first_break


def _h(line: bytes) -> str:
    return chain.digest(line)[:16]


# --- a whole log -------------------------------------------------------------------------


def test_a_whole_log_counts_its_segments_records_and_last_digest() -> None:
    log = Log(7, per=3, sealed=2)
    r = log.verify()
    assert r == v.VerifyReport(ok=True, segments=3, sealed_segments=2, records=7,
                               last_blake3=chain.digest(log.lines[-1]), first_break=None,
                               log="/var/audit")


def test_an_empty_log_is_whole_with_the_genesis_digest() -> None:
    r = v.verify_log([], lambda s: b"", 1, b"")
    assert (r.ok, r.segments, r.sealed_segments, r.records, r.last_blake3) == (
        True, 0, 0, 0, GENESIS)


def test_a_log_sealed_to_its_end_has_no_open_segment_counted() -> None:
    r = Log(6, per=3, sealed=2).verify()
    assert (r.ok, r.segments, r.records) == (True, 2, 6)


def test_the_report_as_json_and_as_a_verification() -> None:
    r = Log(2).verify()
    assert r.as_json() == {"ok": True, "segments": 1, "sealed_segments": 0, "records": 2,
                           "last_blake3": r.last_blake3, "first_break": None}
    ver = r.verification
    assert (ver.kind, ver.target.kind, ver.target.id, ver.checked, ver.findings, ver.note) == (
        "audit_chain", "audit_log", "/var/audit", 2, (), v.NOTE)


def test_a_report_without_a_log_path_has_no_subject_id() -> None:
    r = v.verify_log([], lambda s: b"", 1, _data(_records(1)))
    assert r.verification.target.id is None


def test_a_broken_report_is_one_audit_chain_broken_finding() -> None:
    log = Log(3)
    r = log.verify(_data([log.lines[0], log.lines[2]]))
    (f,) = r.verification.findings
    assert (f.code, f.subject.kind, f.subject.id) == ("AUDIT_CHAIN_BROKEN", "audit_log",
                                                      "/var/audit")
    assert f.detail == f"first break at {r.first_break}"
    assert r.as_json()["first_break"] == {
        "kind": "deleted", "segment": 1, "record_number": 2, "seq": 3,
        "detail": r.first_break.detail if r.first_break else None,
        "message": str(r.first_break)}


# --- ChainBreak's sentence ----------------------------------------------------------------


def test_a_break_reads_segment_record_and_seq() -> None:
    assert str(v.ChainBreak("edited", 2, 5, 9, "why")) == "segment 2, record 5 (seq 9): edited: why"
    assert str(v.ChainBreak("deleted", 1, None, None, "gone")) == "segment 1: deleted: gone"
    assert str(v.ChainBreak("edited", 3, 4, None, "x")) == "segment 3, record 4: edited: x"


# --- the open segment ----------------------------------------------------------------------


def test_an_edited_record_blames_itself_when_the_next_still_links_to_it() -> None:
    """The next record's link no longer matches the edited one: the edited one is named."""
    log = Log(4)
    edited = log.lines[1].replace(b"reason 2", b"reason X")
    brk = _brk(log.verify(_data([log.lines[0], edited, *log.lines[2:]])))
    assert brk == v.ChainBreak(
        "edited", 1, 2, 2,
        f"the record was changed after it was written: it now hashes to {_h(edited)}…, but "
        f"the next record recorded {_h(log.lines[1])}…")


def test_an_edited_last_record_is_hedged() -> None:
    """Nothing follows the edited record; its successor's link field may be the change."""
    log = Log(3)
    edited = log.lines[1].replace(b"reason 2", b"reason X")
    lines = [log.lines[0], edited, log.lines[2]]
    brk = _brk(log.verify(_data(lines)))
    assert (brk.kind, brk.segment, brk.record_number, brk.seq) == ("edited", 1, 2, 2)
    assert brk.detail == (
        "the record was changed after it was written (or the link field of the record "
        f"after it): it now hashes to {_h(edited)}…, but the next record recorded "
        f"{_h(log.lines[1])}…")


def test_a_changed_link_field_blames_its_own_record() -> None:
    log = Log(4)
    doc = json.loads(log.lines[2])
    doc["prev_blake3"] = "f" * 64
    relinked = json.dumps(doc, ensure_ascii=False, sort_keys=True,
                          separators=(",", ":")).encode()
    brk = _brk(log.verify(_data([*log.lines[:2], relinked, log.lines[3]])))
    assert brk == v.ChainBreak(
        "edited", 1, 3, 3,
        f"the record's link to its predecessor was changed: it says {'f' * 16}…, the "
        f"predecessor hashes to {_h(log.lines[1])}…")


def test_a_changed_first_link_blames_the_first_record() -> None:
    log = Log(2)
    doc = json.loads(log.lines[0])
    doc["prev_blake3"] = "a" * 64
    first = json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
    brk = _brk(log.verify(_data([first, log.lines[1]])))
    assert (brk.kind, brk.segment, brk.record_number, brk.seq) == ("edited", 1, 1, 1)
    assert brk.detail.endswith(f"the predecessor hashes to {GENESIS[:16]}…")


def test_a_deleted_record_names_its_seq() -> None:
    log = Log(5)
    brk = _brk(log.verify(_data([*log.lines[:2], *log.lines[3:]])))
    assert brk == v.ChainBreak(
        "deleted", 1, 3, 4,
        "record seq 3 deleted: this record links to a predecessor "
        f"({_h(log.lines[2])}…) that is no longer in the log")


def test_several_deleted_records_name_their_range() -> None:
    log = Log(6)
    brk = _brk(log.verify(_data([log.lines[0], *log.lines[4:]])))
    assert (brk.kind, brk.record_number, brk.seq) == ("deleted", 2, 5)
    assert brk.detail.startswith("record seq 2..4 deleted: ")


def test_a_deleted_first_record_is_named() -> None:
    log = Log(3)
    brk = _brk(log.verify(_data(log.lines[1:])))
    assert (brk.kind, brk.record_number, brk.seq) == ("deleted", 1, 2)
    assert brk.detail.startswith("record seq 1 deleted: ")


def test_swapped_records_are_reordered_naming_where_the_missing_one_is() -> None:
    log = Log(5)
    brk = _brk(log.verify(_data([*log.lines[:2], log.lines[3], log.lines[2], log.lines[4]])))
    assert brk == v.ChainBreak(
        "reordered", 1, 3, 4,
        "expected seq 3 here; seq 3 appears later, at segment 1 record 4: records were "
        "moved out of order")


def test_a_record_moved_forward_is_reordered_naming_the_one_it_skipped() -> None:
    log = Log(4)
    brk = _brk(log.verify(_data([log.lines[0], log.lines[3], *log.lines[1:3]])))
    assert (brk.kind, brk.segment, brk.record_number, brk.seq) == ("reordered", 1, 2, 4)
    assert brk.detail.startswith("expected seq 2 here; seq 2 appears later, at segment 1 "
                                 "record 3")


def test_a_copied_record_is_reordered_again() -> None:
    log = Log(3)
    brk = _brk(log.verify(_data([*log.lines[:2], log.lines[0], log.lines[2]])))
    assert brk == v.ChainBreak(
        "reordered", 1, 3, 1,
        "expected seq 3 here, found seq 1 again (a record was copied or moved)")


def test_a_renumbered_record_that_still_links_is_edited() -> None:
    log = Log(3)
    renumbered = log.lines[2].replace(b'"seq":3', b'"seq":7')
    brk = _brk(log.verify(_data([*log.lines[:2], renumbered])))
    assert brk == v.ChainBreak(
        "edited", 1, 3, 7,
        "the record links correctly to its predecessor but says seq 7 instead of 3: its "
        "number was changed")


def test_a_line_that_is_no_record_is_edited_with_the_reason() -> None:
    log = Log(3)
    brk = _brk(log.verify(_data([log.lines[0], b"garbage", log.lines[2]])))
    assert (brk.kind, brk.segment, brk.record_number, brk.seq) == ("edited", 1, 2, None)
    assert brk.detail.startswith(
        "the record no longer reads as an audit record: not a JSON record (")


def test_a_torn_last_line_of_the_open_segment_is_incomplete() -> None:
    log = Log(3)
    brk = _brk(log.verify(_data(log.lines[:2]) + log.lines[2][:20]))
    assert brk == v.ChainBreak(
        "incomplete", 1, 3, None,
        "the last line of the open segment was never completely written (a crash during "
        "an append)")


def test_a_whole_last_line_without_its_newline_still_verifies() -> None:
    log = Log(3)
    r = log.verify(_data(log.lines[:2]) + log.lines[2])
    assert (r.ok, r.records) == (True, 3)


# --- sealed segments ---------------------------------------------------------------------


def test_a_missing_sealed_segment_names_its_key_records_and_store() -> None:
    log = Log(7, per=3, sealed=2)
    key = log.seals[1][1].key  # type: ignore[union-attr]
    del log.objects[key]
    brk = _brk(log.verify())
    assert brk == v.ChainBreak(
        "deleted", 2, None, None,
        f"sealed segment object {key} (records seq 4..6) is missing from the store "
        "file:///store")


def test_a_record_deleted_from_the_end_of_a_sealed_segment() -> None:
    log = Log(7, per=3, sealed=2)
    key = log.seals[0][1].key  # type: ignore[union-attr]
    log.objects[key] = _data(log.segments[0][:2])
    brk = _brk(log.verify())
    assert brk == v.ChainBreak(
        "deleted", 1, 3, None,
        "record seq 3 deleted from the end of the sealed segment (its seal says it ends at "
        "seq 3)")


def test_records_deleted_from_the_end_of_a_sealed_segment_name_their_range() -> None:
    log = Log(8, per=4, sealed=1)
    log.objects[log.seals[0][1].key] = _data(log.segments[0][:1])  # type: ignore[union-attr]
    brk = _brk(log.verify())
    assert (brk.kind, brk.segment, brk.record_number) == ("deleted", 1, 2)
    assert brk.detail.startswith("record seq 2..4 deleted from the end of the sealed segment")


def test_a_records_deleted_from_the_end_of_the_last_sealed_segment() -> None:
    log = Log(6, per=3, sealed=2)
    log.objects[log.seals[1][1].key] = _data(log.segments[1][:2])  # type: ignore[union-attr]
    brk = _brk(log.verify())
    assert (brk.kind, brk.segment, brk.record_number) == ("deleted", 2, 3)


def test_a_changed_last_record_of_a_sealed_segment_is_edited() -> None:
    """The last record of a segment has no successor inside it: its seal catches it."""
    log = Log(6, per=3, sealed=2)
    seal = log.seals[1][1]
    assert seal is not None
    seg = log.segments[1]
    edited = seg[2].replace(b"reason 6", b"reason X")
    log.objects[seal.key] = _data([*seg[:2], edited])
    brk = _brk(log.verify())
    assert brk == v.ChainBreak(
        "edited", 2, 3, 6,
        f"the segment's last record hashes to {_h(edited)}…, but its seal recorded "
        f"{seal.last_blake3[:16]}…: the record was changed")


def test_a_sealed_segment_changed_outside_its_records_is_edited() -> None:
    log = Log(6, per=3, sealed=1)
    seal = log.seals[0][1]
    assert seal is not None
    log.objects[seal.key] = log.objects[seal.key].removesuffix(b"\n")  # every record intact
    brk = _brk(log.verify())
    assert brk == v.ChainBreak(
        "edited", 1, None, None,
        f"the sealed object's bytes no longer hash to its key {seal.key} (a change outside "
        "the records, e.g. whitespace)")


def test_a_sealed_segment_with_a_changed_byte_at_its_end_is_edited() -> None:
    log = Log(3, per=3, sealed=1)
    seal = log.seals[0][1]
    assert seal is not None
    log.objects[seal.key] = log.objects[seal.key][:-1] + b" "
    assert _brk(log.verify()).kind == "edited"


# --- seals.jsonl ---------------------------------------------------------------------------


def test_a_seal_line_that_is_no_seal_is_edited() -> None:
    log = Log(6, per=3, sealed=2)
    log.seals[1] = (b"not a seal", None)
    assert _brk(log.verify()) == v.ChainBreak(
        "edited", 2, None, None, "seals.jsonl line 2 is not a seal record")


def test_a_changed_seal_line_is_edited_naming_both_links() -> None:
    log = Log(9, per=3, sealed=3)
    raw, seal = log.seals[0]
    assert seal is not None
    changed = raw.replace(b'"records":3', b'"records":2')
    log.seals[0] = (changed, seal)
    nxt = log.seals[1][1]
    assert nxt is not None
    assert _brk(log.verify()) == v.ChainBreak(
        "edited", 1, None, None,
        f"seals.jsonl line 2 links to {nxt.prev_blake3[:16]}…, but the seal line before it "
        f"hashes to {_h(changed)}…: a seal line was changed")


def test_a_changed_link_of_the_first_seal_line_is_edited_at_line_one() -> None:
    log = Log(6, per=3, sealed=2)
    seal = log.seals[0][1]
    assert seal is not None
    forged = Seal(seal.segment, seal.key, seal.first_seq, seal.last_seq, seal.records,
                  seal.last_blake3, seal.sealed_at_utc, "c" * 64)
    log.seals[0] = (forged.to_line(), forged)
    brk = _brk(log.verify())
    assert (brk.kind, brk.segment) == ("edited", 1)
    assert brk.detail.startswith(f"seals.jsonl line 1 links to {'c' * 16}…, but the seal "
                                 f"line before it hashes to {GENESIS[:16]}…")


def test_a_deleted_seal_line_is_deleted() -> None:
    log = Log(9, per=3, sealed=3)
    del log.seals[1]
    assert _brk(log.verify()) == v.ChainBreak(
        "deleted", 2, None, None, "seals.jsonl line 2 seals segment 3, expected segment 2")


def test_swapped_seal_lines_are_reordered() -> None:
    log = Log(9, per=3, sealed=3)
    log.seals[0], log.seals[1] = log.seals[1], log.seals[0]
    brk = _brk(log.verify())
    assert brk == v.ChainBreak(
        "reordered", 1, None, None, "seals.jsonl line 1 seals segment 2, expected segment 1")


def test_a_seal_line_repeated_is_reordered() -> None:
    log = Log(9, per=3, sealed=3)
    log.seals[2] = log.seals[0]
    brk = _brk(log.verify())
    assert (brk.kind, brk.segment) == ("reordered", 3)
    assert brk.detail == "seals.jsonl line 3 seals segment 1, expected segment 3"


# --- reading lines -------------------------------------------------------------------------


def test_read_entries_numbers_lines_and_marks_only_an_open_torn_tail() -> None:
    lines = _records(2)
    data = lines[0] + b"\n" + lines[1]
    open_entries = v.read_entries(4, data, sealed=False)
    assert [(e.segment, e.number, e.raw, e.complete) for e in open_entries] == [
        (4, 1, lines[0], True), (4, 2, lines[1], False)]
    assert [e.complete for e in v.read_entries(4, data, sealed=True)] == [True, True]
    assert v.read_entries(1, b"", sealed=False) == []
    bad = v.read_entries(1, b"x\n", sealed=False)
    assert (bad[0].rec, bad[0].error is not None, bad[0].complete) == (None, True, True)


def test_parse_lines_skips_what_is_not_a_record() -> None:
    lines = _records(3)
    data = lines[0] + b"\nbroken\n" + lines[2] + b"\n"
    assert [r.seq for r in v.parse_lines(data)] == [1, 3]


@pytest.mark.parametrize("n", [1, 2])
def test_the_open_segment_after_seals_continues_the_chain(n: int) -> None:
    log = Log(3 + n, per=3, sealed=1)
    assert log.verify().ok


def test_a_deleted_seal_line_with_seals_after_it_is_deleted_not_reordered() -> None:
    log = Log(12, per=3, sealed=4)
    del log.seals[1]
    assert _brk(log.verify()) == v.ChainBreak(
        "deleted", 2, None, None, "seals.jsonl line 2 seals segment 3, expected segment 2")


def test_the_only_records_changed_link_blames_that_record() -> None:
    log = Log(1)
    doc = json.loads(log.lines[0])
    doc["prev_blake3"] = "b" * 64
    only = json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
    assert _brk(log.verify(_data([only]))) == v.ChainBreak(
        "edited", 1, 1, 1,
        f"the record's link to its predecessor was changed: it says {'b' * 16}…, the "
        f"predecessor hashes to {GENESIS[:16]}…")


def test_an_edited_first_record_is_blamed_when_the_second_no_longer_links() -> None:
    log = Log(3)
    edited = log.lines[0].replace(b"reason 1", b"reason X")
    assert _brk(log.verify(_data([edited, *log.lines[1:]]))) == v.ChainBreak(
        "edited", 1, 1, 1,
        f"the record was changed after it was written: it now hashes to {_h(edited)}…, but "
        f"the next record recorded {_h(log.lines[0])}…")


def test_a_record_numbered_below_one_is_moved_out_of_order() -> None:
    """A seq never seen before yet lower than expected (0): not a copy."""
    log = Log(3)
    zero = log.lines[2].replace(b'"seq":3', b'"seq":0')
    assert _brk(log.verify(_data([*log.lines[:2], zero]))) == v.ChainBreak(
        "reordered", 1, 3, 0, "expected seq 3 here, found seq 0: records were moved out of order")


def test_a_missing_segment_without_a_store_named_ends_the_sentence_there() -> None:
    log = Log(4, per=3, sealed=1)
    key = log.seals[0][1].key  # type: ignore[union-attr]
    del log.objects[key]
    brk = _brk(v.verify_log(log.seals, log.read, 2, _data(log.open)))
    assert brk.detail == (f"sealed segment object {key} (records seq 1..3) is missing from "
                          "the store ")


def test_a_torn_last_line_of_a_sealed_segment_is_edited_not_incomplete() -> None:
    """Only the open segment's last line may be a crash's half-written append."""
    log = Log(6, per=3, sealed=1)
    seal = log.seals[0][1]
    assert seal is not None
    log.objects[seal.key] = _data(log.segments[0])[:-10]
    brk = _brk(log.verify())
    assert (brk.kind, brk.segment, brk.record_number, brk.seq) == ("edited", 1, 3, None)
    assert brk.detail.startswith("the record no longer reads as an audit record: ")


def test_the_last_sealed_segment_changed_outside_its_records_is_edited() -> None:
    log = Log(6, per=3, sealed=2)  # sealed to the end: no open segment
    seal = log.seals[1][1]
    assert seal is not None
    log.objects[seal.key] = log.objects[seal.key].removesuffix(b"\n")
    assert _brk(log.verify()) == v.ChainBreak(
        "edited", 2, None, None,
        f"the sealed object's bytes no longer hash to its key {seal.key} (a change outside "
        "the records, e.g. whitespace)")


def test_a_changed_last_record_of_an_earlier_sealed_segment_is_edited() -> None:
    log = Log(7, per=3, sealed=2)
    seal = log.seals[0][1]
    assert seal is not None
    seg = log.segments[0]
    edited = seg[2].replace(b"reason 3", b"reason X")
    log.objects[seal.key] = _data([*seg[:2], edited])
    assert _brk(log.verify()) == v.ChainBreak(
        "edited", 1, 3, 3,
        f"the segment's last record hashes to {_h(edited)}…, but its seal recorded "
        f"{seal.last_blake3[:16]}…: the record was changed")


def test_a_gap_is_a_deletion_even_with_a_record_numbered_zero_after_it() -> None:
    """Only the seqs missing between expected and found are looked for later."""
    log = Log(3)
    zero = log.lines[0].replace(b'"seq":1', b'"seq":0')
    brk = _brk(log.verify(_data([log.lines[0], log.lines[2], zero])))
    assert (brk.kind, brk.record_number, brk.seq) == ("deleted", 2, 3)
