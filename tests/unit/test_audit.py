"""The audit log: hash chain, sealing into the WORM store, and naming the first break."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
from pathlib import Path

import blake3
import pytest

from pipeline.audit.log import AuditLog
from pipeline.storage.local import LocalStore
from schemas.audit import GENESIS, decode

T0 = dt.datetime(2025, 3, 1, 8, 0, tzinfo=dt.UTC)


class Clock:
    """A clock that moves one second per reading."""

    def __init__(self, start: dt.datetime = T0) -> None:
        self.t = start

    def __call__(self) -> dt.datetime:
        self.t += dt.timedelta(seconds=1)
        return self.t


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


def make_log(tmp_path: Path, store: LocalStore, **kw: object) -> AuditLog:
    return AuditLog(tmp_path / "audit", store=store, clock=Clock(), **kw)  # type: ignore[arg-type]


def fill(log: AuditLog, n: int) -> None:
    for i in range(n):
        log.append(f"S-{i % 3}", "view", f"b3/{i:064x}", "allowed" if i % 4 else "refused",
                   f"reason {i}")


def open_segment(tmp_path: Path) -> Path:
    (seg,) = sorted((tmp_path / "audit").glob("segment-*.jsonl"))
    return seg


def rewrite_lines(path: Path, change: object) -> None:
    lines = path.read_bytes().splitlines(keepends=True)
    new = change(lines)  # type: ignore[operator]
    os.chmod(path, 0o644)
    path.write_bytes(b"".join(new))


def test_each_record_carries_the_blake3_of_the_previous_line(tmp_path, store):
    with make_log(tmp_path, store) as log:
        fill(log, 5)
    lines = open_segment(tmp_path).read_bytes().splitlines()
    assert decode(lines[0]).prev_blake3 == GENESIS
    for before, line in itertools.pairwise(lines):
        assert decode(line).prev_blake3 == blake3.blake3(before).hexdigest()
    assert [decode(x).seq for x in lines] == [1, 2, 3, 4, 5]


def test_a_whole_log_verifies(tmp_path, store):
    with make_log(tmp_path, store, seal_every=4) as log:
        fill(log, 10)
        report = log.verify()
    assert report.ok and report.first_break is None
    assert (report.records, report.sealed_segments, report.segments) == (10, 2, 3)


def test_sealing_puts_the_segment_in_the_store_under_its_blake3(tmp_path, store):
    with make_log(tmp_path, store, seal_every=1000) as log:
        fill(log, 3)
        data = open_segment(tmp_path).read_bytes()
        seal = log.seal()
    assert seal is not None
    assert seal.key == f"b3/{blake3.blake3(data).hexdigest()}"
    assert (seal.first_seq, seal.last_seq, seal.records) == (1, 3, 3)
    assert seal.last_blake3 == blake3.blake3(data.splitlines()[-1]).hexdigest()
    assert store.open(seal.key).read() == data
    assert store.is_read_only(seal.key)
    assert not list((tmp_path / "audit").glob("segment-*.jsonl"))


def test_a_segment_seals_itself_every_n_records(tmp_path, store):
    with make_log(tmp_path, store, seal_every=5) as log:
        fill(log, 12)
    seals = (tmp_path / "audit" / "seals.jsonl").read_bytes().splitlines()
    assert [json.loads(s)["last_seq"] for s in seals] == [5, 10]
    assert len(open_segment(tmp_path).read_bytes().splitlines()) == 2


def test_a_segment_seals_itself_when_its_first_record_is_old(tmp_path, store):
    with make_log(tmp_path, store, seal_after=dt.timedelta(seconds=3)) as log:
        fill(log, 4)
    assert len((tmp_path / "audit" / "seals.jsonl").read_bytes().splitlines()) == 1


def test_the_chain_continues_across_seals(tmp_path, store):
    with make_log(tmp_path, store, seal_every=3) as log:
        fill(log, 4)
    seal = json.loads((tmp_path / "audit" / "seals.jsonl").read_bytes().splitlines()[0])
    first_open = decode(open_segment(tmp_path).read_bytes().splitlines()[0])
    assert first_open.seq == 4
    assert first_open.prev_blake3 == seal["last_blake3"]


def test_an_edited_record_is_named(tmp_path, store):
    with make_log(tmp_path, store) as log:
        fill(log, 8)
        rewrite_lines(open_segment(tmp_path), lambda ls: [
            ls[i].replace(b'"refused"', b'"allowed"') if i == 4 else ls[i]
            for i in range(len(ls))])
        brk = log.verify().first_break
    assert brk is not None
    assert (brk.kind, brk.segment, brk.record_number, brk.seq) == ("edited", 1, 5, 5)


def test_a_deleted_record_is_named(tmp_path, store):
    with make_log(tmp_path, store) as log:
        fill(log, 8)
        rewrite_lines(open_segment(tmp_path), lambda ls: ls[:3] + ls[4:])
        brk = log.verify().first_break
    assert brk is not None
    assert (brk.kind, brk.segment, brk.record_number) == ("deleted", 1, 4)
    assert "seq 4 deleted" in brk.detail


def test_reordered_records_are_named(tmp_path, store):
    with make_log(tmp_path, store) as log:
        fill(log, 8)
        rewrite_lines(open_segment(tmp_path), lambda ls: [*ls[:2], ls[3], ls[2], *ls[4:]])
        brk = log.verify().first_break
    assert brk is not None
    assert (brk.kind, brk.record_number, brk.seq) == ("reordered", 3, 4)


def test_a_changed_link_field_blames_its_own_record(tmp_path, store):
    with make_log(tmp_path, store) as log:
        fill(log, 6)

        def relink(ls: list[bytes]) -> list[bytes]:
            doc = json.loads(ls[2])
            doc["prev_blake3"] = "f" * 64
            ls[2] = json.dumps(doc, ensure_ascii=False, sort_keys=True,
                               separators=(",", ":")).encode() + b"\n"
            return ls

        rewrite_lines(open_segment(tmp_path), relink)
        brk = log.verify().first_break
    assert brk is not None
    assert (brk.kind, brk.record_number) == ("edited", 3)


def test_an_edit_inside_a_sealed_segment_is_named(tmp_path, store):
    with make_log(tmp_path, store, seal_every=5) as log:
        fill(log, 12)
        key = json.loads((tmp_path / "audit" / "seals.jsonl").read_bytes().splitlines()[1])["key"]
        rewrite_lines(store.object_path(key), lambda ls: [
            ls[i].replace(b"reason 6", b"reason X") if i == 1 else ls[i] for i in range(len(ls))])
        brk = log.verify().first_break
    assert brk is not None
    assert (brk.kind, brk.segment, brk.record_number, brk.seq) == ("edited", 2, 2, 7)


def test_a_record_deleted_from_the_end_of_a_sealed_segment_is_named(tmp_path, store):
    with make_log(tmp_path, store, seal_every=5) as log:
        fill(log, 7)
        key = json.loads((tmp_path / "audit" / "seals.jsonl").read_bytes().splitlines()[0])["key"]
        rewrite_lines(store.object_path(key), lambda ls: ls[:-1])
        brk = log.verify().first_break
    assert brk is not None
    assert (brk.kind, brk.segment) == ("deleted", 1)
    assert "seq 5 deleted" in brk.detail


def test_a_missing_sealed_segment_is_named(tmp_path, store):
    with make_log(tmp_path, store, seal_every=5) as log:
        fill(log, 7)
        key = json.loads((tmp_path / "audit" / "seals.jsonl").read_bytes().splitlines()[0])["key"]
        store.object_path(key).unlink()
        brk = log.verify().first_break
    assert brk is not None
    assert (brk.kind, brk.segment, brk.record_number) == ("deleted", 1, None)


def test_an_edited_seal_line_is_named(tmp_path, store):
    with make_log(tmp_path, store, seal_every=3) as log:
        fill(log, 10)
        seals = tmp_path / "audit" / "seals.jsonl"
        rewrite_lines(seals, lambda ls: [ls[0].replace(b'"records":3', b'"records":2'), *ls[1:]])
        brk = log.verify().first_break
    assert brk is not None
    assert (brk.kind, brk.segment) == ("edited", 1)


def test_a_torn_last_line_is_dropped_on_the_next_append(tmp_path, store):
    with make_log(tmp_path, store) as log:
        fill(log, 3)
    seg = open_segment(tmp_path)
    with open(seg, "ab") as fh:
        fh.write(b'{"seq":4,"act')
    with make_log(tmp_path, store) as log:
        assert log.verify().first_break.kind == "incomplete"  # type: ignore[union-attr]
        rec = log.append("S-1", "view", "x", "allowed", "")
        assert rec.seq == 4
        assert log.verify().ok


def test_two_writers_keep_one_chain(tmp_path, store):
    a = make_log(tmp_path, store, seal_every=7)
    b = make_log(tmp_path, store, seal_every=7)
    with a, b:
        for i in range(20):
            (a if i % 3 else b).append("S-1", "view", str(i), "allowed", "")
        report = a.verify()
    assert report.ok, report.first_break
    assert report.records == 20


def test_group_commit_appends_the_same_chain(tmp_path, store):
    with make_log(tmp_path, store, seal_every=50) as log:
        with log.group_commit():
            fill(log, 120)
        report = log.verify()
    assert report.ok and report.records == 120


def test_show_filters_by_person_object_and_period(tmp_path, store):
    with make_log(tmp_path, store, seal_every=4) as log:
        fill(log, 12)
        assert {r.actor_id for r in log.show(actor_id="S-1")} == {"S-1"}
        assert [r.seq for r in log.show(object_id=f"b3/{5:064x}")] == [6]
        every = log.show()
        assert [r.seq for r in every] == list(range(1, 13))  # sealed segments read back
        since, until = every[2].at_utc, every[5].at_utc
        assert [r.seq for r in log.show(since_utc=since, until_utc=until)] == [3, 4, 5]
        assert all(r.result == "refused" for r in log.show(result="refused"))


def test_append_refuses_an_unknown_result(tmp_path, store):
    with make_log(tmp_path, store) as log, pytest.raises(ValueError, match="allowed"):
        log.append("S-1", "view", "x", "maybe", "")


# --- the OS account on every record (issue 10) ----------------------------------------------
OLD_LINE = (b'{"action":"ingest","actor_id":"X-1","at_utc":"2025-03-01T08:00:01.000000+00:00",'
            b'"object_id":"b3/aa","prev_blake3":"' + b"0" * 64 + b'","reason":"ok",'
            b'"result":"allowed","seq":1}')


def test_a_record_written_before_os_account_reads_as_none_and_encodes_to_its_bytes():
    from schemas.audit import encode

    rec = decode(OLD_LINE)
    assert rec.os_account is None
    assert encode(rec) == OLD_LINE  # the chain links over these bytes


def test_the_os_account_is_written_on_every_record_allowed_or_refused(tmp_path, store):
    from schemas.audit import encode

    log = make_log(tmp_path, store)
    log.append("X-1", "ingest", "b3/aa", "allowed", "before acting")
    log.os_account = "wang (uid 1003)"
    log.append("X-1", "ingest", "b3/aa", "allowed", "ok")
    log.append("X-1", "export.approve", "e", "refused", "no")
    log.close()
    lines = (tmp_path / "audit" / "segment-000001.jsonl").read_bytes().splitlines()
    docs = [json.loads(x) for x in lines]
    assert "os_account" not in docs[0]
    assert [d["os_account"] for d in docs[1:]] == ["wang (uid 1003)"] * 2
    assert [decode(x).os_account for x in lines] == [None, "wang (uid 1003)", "wang (uid 1003)"]
    assert all(encode(decode(x)) == x for x in lines)
    assert make_log(tmp_path, store).verify().ok


@pytest.mark.parametrize("extra", [{"os_account": 7}, {"os_account": None}, {"who": "x"}])
def test_a_record_with_a_wrong_os_account_or_an_unknown_field_is_not_a_record(extra):
    doc = {**json.loads(OLD_LINE), **extra}
    with pytest.raises(ValueError, match="audit record"):
        decode(json.dumps(doc).encode())
