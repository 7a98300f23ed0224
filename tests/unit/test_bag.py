"""The court-export package's pieces, pure: BagIt lines, payload names, the audit excerpt's
checks, the checked copy (issue 13)."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import blake3
import pytest

from pipeline.export import bag
from pipeline.export.copying import ChunkMismatch, copy_checked, new_hash
from pipeline.export.excerpt import build_excerpt, check_excerpt
from pipeline.integrity import chain
from schemas.audit import Seal


def test_payload_names_keep_the_display_name_and_never_collide() -> None:
    assert bag.payload_paths(["BC0007_0001.mp4", "录音.m4a"]) == [
        "data/BC0007_0001.mp4", "data/录音.m4a"]
    # equal ignoring case: both numbered, so a Windows or macOS receiver keeps both
    assert bag.payload_paths(["A.MP4", "a.mp4", "b.mp4"]) == [
        "data/001/A.MP4", "data/002/a.mp4", "data/b.mp4"]
    assert bag.payload_paths(["x\ny/z.mp4", ".."]) == ["data/x_y_z.mp4", "data/_.."]


def test_manifest_lines_are_what_sha256sum_reads_and_round_trip() -> None:
    data = bag.manifest([("data/a b.mp4", "ab" * 32), ("data/100%.mp4", "cd" * 32)])
    assert data.decode().splitlines() == [f"{'ab' * 32}  data/a b.mp4",
                                          f"{'cd' * 32}  data/100%25.mp4"]
    assert bag.parse_manifest(data) == [("data/a b.mp4", "ab" * 32),
                                        ("data/100%.mp4", "cd" * 32)]
    with pytest.raises(ValueError, match="line 1"):
        bag.parse_manifest(b"nodigest\n")


def test_bag_info_names_the_organization_oxum_and_request() -> None:
    import datetime as dt

    info = bag.parse_bag_info(bag.bag_info(
        export_id="EXP-1", bagging_date=dt.date(2026, 12, 1), payload_bytes=10,
        payload_files=2, case_number="遂大综执罚〔2026〕7号", recipient="法院", tool="custody 0"))
    assert info["Source-Organization"] == "大柘镇人民政府"
    assert info["Payload-Oxum"] == "10.2" and info["External-Identifier"] == "EXP-1"
    assert info["Bagging-Date"] == "2026-12-01"
    assert info["Bag-Group-Identifier"] == "遂大综执罚〔2026〕7号"


def test_sm3_is_the_standard_one() -> None:
    h = new_hash("sm3")
    h.update(b"abc")  # GB/T 32905-2016 example 1
    assert h.hexdigest() == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"


def _chunks(data: bytes, size: int) -> list[str]:
    return [blake3.blake3(data[i:i + size]).hexdigest() for i in range(0, len(data), size)]


def test_the_checked_copy_hashes_and_copies_in_one_pass(tmp_path: Path) -> None:
    data = bytes(range(256)) * 41  # 10496 bytes: 10 whole chunks and a short one
    res = copy_checked(io.BytesIO(data), tmp_path / "out", name="a.mp4", key="b3/x",
                       chunk_size=1024, chunks=_chunks(data, 1024), size_bytes=len(data),
                       algorithms=["sha512", "sha256", "sm3"])
    assert (tmp_path / "out").read_bytes() == data
    assert res.digests["sha512"] == hashlib.sha512(data).hexdigest()
    assert res.digests["sha256"] == hashlib.sha256(data).hexdigest()


def test_a_chunk_that_differs_stops_the_copy_naming_it(tmp_path: Path) -> None:
    data = bytes(4096)
    bad = data[:2500] + b"\x01" + data[2501:]
    with pytest.raises(ChunkMismatch, match=r"a\.mp4 \(b3/x\): chunk 2 at byte offset 2048, "
                                            r"length 1024"):
        copy_checked(io.BytesIO(bad), tmp_path / "out", name="a.mp4", key="b3/x",
                     chunk_size=1024, chunks=_chunks(data, 1024), size_bytes=4096,
                     algorithms=["sha256"])
    with pytest.raises(ChunkMismatch, match="3072 bytes in 3 chunks; the catalog says 4096"):
        copy_checked(io.BytesIO(data[:3072]), tmp_path / "out2", name="a.mp4", key="b3/x",
                     chunk_size=1024, chunks=_chunks(data, 1024), size_bytes=4096,
                     algorithms=["sha256"])


def _log(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    """An audit root with two sealed segments of records, the segments by key."""
    import datetime as dt

    from schemas.audit import AuditRecord, encode

    root = tmp_path / "audit"
    root.mkdir()
    at = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    prev, seal_prev, seq = chain.GENESIS, chain.GENESIS, 0
    segments: dict[str, bytes] = {}
    seal_lines = []
    for n, objects in enumerate((["b3/a", "x", "b3/a"], ["b3/b", "EXP-1", "y"]), 1):
        lines = []
        for obj in objects:
            seq += 1
            line = encode(AuditRecord(seq, at, "L-1", "ingest", obj, "allowed", "ok", prev))
            prev = chain.digest(line)
            lines.append(line)
        data = b"".join(x + b"\n" for x in lines)
        key = f"b3/{blake3.blake3(data).hexdigest()}"
        segments[key] = data
        seal = Seal(n, key, seq - len(lines) + 1, seq, len(lines), prev, at, seal_prev)
        seal_prev = chain.digest(seal.to_line())
        seal_lines.append(seal.to_line())
    (root / "seals.jsonl").write_bytes(b"".join(x + b"\n" for x in seal_lines))
    return root, segments


def test_the_excerpt_holds_the_items_records_and_checks_alone(tmp_path: Path) -> None:
    root, segments = _log(tmp_path)
    data, n = build_excerpt(root, lambda s: segments[s.key], {"b3/a", "b3/b", "EXP-1"})
    assert n == 4
    assert check_excerpt(data) == (4, [])
    lines = data.splitlines()
    assert [json.loads(x)["type"] for x in lines] == ["seal", "seal"] + ["record"] * 4


def test_an_edited_record_or_seal_of_the_excerpt_is_named(tmp_path: Path) -> None:
    root, segments = _log(tmp_path)
    data, _ = build_excerpt(root, lambda s: segments[s.key], {"b3/a", "b3/b", "EXP-1"})
    lines = data.splitlines()
    edited = lines[3].replace(b'\\"reason\\":\\"ok\\"', b'\\"reason\\":\\"no\\"')
    assert edited != lines[3]
    _, problems = check_excerpt(b"\n".join([*lines[:3], edited, *lines[4:]]))
    # record #3 is also its segment's last: the seal's last chain hash no longer matches
    assert {p.line for p in problems} == {4}
    assert ["the record was edited" in p.detail for p in problems] == [True, False]
    seal = json.loads(lines[0])  # the first seal edited: the second no longer links to it
    seal["line"] = seal["line"].replace('"records":3', '"records":4')
    _, problems = check_excerpt(b"\n".join([json.dumps(seal).encode(), *lines[1:]]))
    assert [p.line for p in problems] == [2] and "seal chain" in problems[0].detail
    # the record chained after another in the excerpt: its link is checked too
    rec = json.loads(lines[5])  # EXP-1, #5, right after #4 (b3/b) in the excerpt
    inner = json.loads(rec["line"])
    inner["prev_blake3"] = "0" * 64
    rec["line"] = json.dumps(inner, sort_keys=True, separators=(",", ":"))
    rec["chain_hash"] = chain.digest(rec["line"].encode())
    _, problems = check_excerpt(b"\n".join([*lines[:5], json.dumps(rec).encode(), *lines[6:]]))
    assert {p.line for p in problems} == {6}
