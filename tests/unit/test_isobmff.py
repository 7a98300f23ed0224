"""pipeline.media.isobmff on box bytes built in the test."""

from __future__ import annotations

import struct
from pathlib import Path

from pipeline.media.isobmff import (
    MovieInfo,
    iter_boxes,
    looks_like_isobmff,
    parse_elst,
    parse_moov,
    read_movie_info,
)
from schemas.media import EditListEntry


def box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(body), kind) + body


def full(kind: bytes, version: int, body: bytes) -> bytes:
    return box(kind, bytes([version, 0, 0, 0]) + body)


def mvhd(timescale: int) -> bytes:
    return full(b"mvhd", 0, struct.pack(">III", 0, 0, timescale) + bytes(88))


def tkhd(track_id: int) -> bytes:
    return full(b"tkhd", 0, struct.pack(">III", 0, 0, track_id) + bytes(68))


def mdhd(timescale: int) -> bytes:
    return full(b"mdhd", 0, struct.pack(">III", 0, 0, timescale) + bytes(8))


def elst(rows: list[tuple[int, int]], version: int = 0) -> bytes:
    fmt = ">Qqhh" if version == 1 else ">Iihh"
    body = struct.pack(">I", len(rows)) + b"".join(struct.pack(fmt, d, m, 1, 0) for d, m in rows)
    return full(b"elst", version, body)


def trak(track_id: int, timescale: int, rows: list[tuple[int, int]] | None) -> bytes:
    parts = tkhd(track_id)
    if rows is not None:
        parts += box(b"edts", elst(rows))
    return box(b"trak", parts + box(b"mdia", mdhd(timescale)))


def moov(*traks: bytes) -> bytes:
    return box(b"moov", mvhd(1000) + b"".join(traks))


def test_iter_boxes_reads_headers_in_order() -> None:
    data = box(b"ftyp", b"isom") + box(b"free", b"") + box(b"mdat", b"xyz")
    assert [(b.type, b.offset, b.size) for b in iter_boxes(data)] == [
        (b"ftyp", 0, 12),
        (b"free", 12, 8),
        (b"mdat", 20, 11),
    ]


def test_iter_boxes_reads_64_bit_size() -> None:
    data = struct.pack(">I4sQ", 1, b"mdat", 20) + b"abcd"
    (b,) = iter_boxes(data)
    assert (b.type, b.header_size, b.size) == (b"mdat", 16, 20)


def test_looks_like_isobmff() -> None:
    assert looks_like_isobmff(box(b"ftyp", b"isom"))
    assert not looks_like_isobmff(b"\xff\xd8\xff\xe1" + bytes(8))


def test_parse_elst_version_0_and_1() -> None:
    assert parse_elst(elst([(1000, -1), (9000, 0)])[8:]) == [(1000, -1), (9000, 0)]
    assert parse_elst(elst([(2**33, 5)], version=1)[8:]) == [(2**33, 5)]


def test_parse_elst_stops_at_short_body() -> None:
    body = elst([(1000, 2), (2000, 3)])[8:-6]
    assert parse_elst(body) == [(1000, 2)]


def test_parse_moov_edit_lists_with_timescales() -> None:
    info = parse_moov(moov(trak(1, 90000, [(500, 3003)]), trak(2, 48000, None)))
    (e,) = info.edit_lists
    assert (e.track_index, e.segment_duration, e.media_time) == (0, 500, 3003)
    assert (e.movie_timescale, e.media_timescale) == (1000, 90000)
    assert info.track_ids == (1, 2)


def test_parse_moov_gopro_firmware_means_gopro() -> None:
    udta = box(b"udta", box(b"FIRM", b"HD5.02.02.00.00") + box(b"CAME", bytes(16)))
    info = parse_moov(box(b"moov", mvhd(600) + udta))
    assert (info.make, info.firmware, info.serial) == ("GoPro", "HD5.02.02.00.00", None)


def write_file(tmp_path: Path, data: bytes) -> Path:
    p = tmp_path / "f.mp4"
    p.write_bytes(data)
    return p


def test_read_movie_info_mdat_past_eof_is_truncated(tmp_path: Path) -> None:
    mdat = struct.pack(">I4s", 1000, b"mdat") + bytes(100)
    info = read_movie_info(write_file(tmp_path, box(b"ftyp", b"isom") + moov() + mdat))
    assert info.truncated is not None and "'mdat'" in info.truncated


def test_read_movie_info_chunk_offset_past_eof_is_truncated(tmp_path: Path) -> None:
    stco = full(b"stco", 0, struct.pack(">II", 1, 10_000_000))
    stbl = box(b"stbl", stco)
    t = box(b"trak", tkhd(1) + box(b"mdia", mdhd(90000) + box(b"minf", stbl)))
    info = read_movie_info(write_file(tmp_path, box(b"ftyp", b"isom") + moov(t)))
    assert info.truncated is not None and "chunk offset 10000000" in info.truncated


def test_read_movie_info_complete_file_is_not_truncated(tmp_path: Path) -> None:
    data = box(b"ftyp", b"isom") + moov(trak(1, 600, [(64, 0)])) + box(b"mdat", bytes(32))
    info = read_movie_info(write_file(tmp_path, data))
    assert info.truncated is None and len(info.edit_lists) == 1


def test_read_movie_info_without_moov(tmp_path: Path) -> None:
    info = read_movie_info(write_file(tmp_path, box(b"ftyp", b"isom") + box(b"mdat", b"x")))
    assert info.edit_lists == () and info.truncated is None


def test_edit_lists_are_renumbered_to_stream_indexes_by_track_id() -> None:
    """`trak` order is not stream order: rows follow their track ID; unknown IDs stay put."""
    rows = tuple(EditListEntry(i, 1000, 0, 600, 90000) for i in range(3))
    info = MovieInfo(edit_lists=rows, track_ids=(7, 3))
    assert [e.track_index for e in info.edit_lists_by_stream({3: 0, 7: 1})] == [1, 0, 2]
    assert info.edit_lists_by_stream({}) == rows


# --- movie fragments -------------------------------------------------------------------


def _fragmented_file(tmp_path: Path, traf_extra: bytes = b"") -> Path:
    """ftyp, a moov with one empty track and trex defaults (duration 512, size 100,
    non-sync flags), and one moof: tfhd default-base-is-moof, tfdt v1 = 9000, a v1 trun
    with a data offset, first-sample flags (sync) and signed composition offsets."""
    stbl = box(b"stbl", full(b"stsd", 0, struct.pack(">I", 1)) + full(b"stts", 0, bytes(4)))
    trak_ = box(b"trak", tkhd(7) + box(b"mdia", mdhd(90000) + box(b"minf", stbl)))
    trex = full(b"trex", 0, struct.pack(">5I", 7, 1, 512, 100, 0x00010000))
    head = box(b"ftyp", b"isom" + bytes(4)) + box(b"moov", mvhd(1000) + trak_ +
                                                  box(b"mvex", trex))
    tfhd = full(b"tfhd", 0, struct.pack(">I", 7))
    tfhd = tfhd[:9] + b"\x02\x00\x00" + tfhd[12:]  # flags 0x020000: default-base-is-moof
    tfdt = full(b"tfdt", 1, struct.pack(">Q", 9000))
    rows = [(100, -512), (120, 1024), (90, 0)]  # sample size, composition offset
    # count, data offset (from the moof's start to the mdat payload), first-sample flags;
    # the trun is 12 + 12 + 8 * 3 bytes, the moof 8 + mfhd 16 + traf.
    traf_len = 8 + len(tfhd) + len(tfdt) + len(traf_extra) + 12 + 12 + 8 * len(rows)
    moof_len = 8 + 16 + traf_len
    body = struct.pack(">Iii", len(rows), moof_len + 8, 0x02000000)
    body += b"".join(struct.pack(">Ii", s, c) for s, c in rows)
    trun = box(b"trun", bytes([1]) + (0x000A05).to_bytes(3, "big") + body)  # size, cts
    moof = box(b"moof", full(b"mfhd", 0, struct.pack(">I", 1)) +
               box(b"traf", tfhd + tfdt + traf_extra + trun))
    mdat = box(b"mdat", bytes(sum(s for s, _ in rows)))
    path = tmp_path / "frag.mp4"
    path.write_bytes(head + moof + mdat)
    return path


def test_read_fragments_gives_every_sample(tmp_path: Path) -> None:
    from pipeline.media.fragments import read_fragments

    path = _fragmented_file(tmp_path)
    info = read_movie_info(path)
    assert info.fragmented and [t.track_id for t in info.trex] == [7]
    got = read_fragments(path, info)
    assert got.doubt is None
    t = got.tracks[7]
    assert t.dts.tolist() == [9000, 9512, 10024]  # tfdt, then the trex default duration
    assert t.duration.tolist() == [512, 512, 512]
    assert t.size.tolist() == [100, 120, 90]
    first = _moof_offset(path) + _moof_size(path) + 8  # the mdat's payload
    assert t.pos.tolist() == [first, first + 100, first + 220]
    assert t.cts.tolist() == [-512, 1024, 0]  # signed, as FFmpeg reads both versions
    assert t.flags.tolist() == [0x02000000, 0x00010000, 0x00010000]
    assert t.discard.tolist() == [False, False, False]


def _moof_offset(path: Path) -> int:
    return next(b.offset for b in iter_boxes(path.read_bytes()) if b.type == b"moof")


def _moof_size(path: Path) -> int:
    return next(b.size for b in iter_boxes(path.read_bytes()) if b.type == b"moof")


def test_read_fragments_doubts_encrypted_fragments(tmp_path: Path) -> None:
    from pipeline.media.fragments import read_fragments

    path = _fragmented_file(tmp_path, traf_extra=full(b"senc", 0, bytes(4)))
    got = read_fragments(path, read_movie_info(path))
    assert got.tracks == {} and got.doubt is not None and "senc" in got.doubt


def test_read_fragments_doubts_a_sample_past_the_end(tmp_path: Path) -> None:
    from pipeline.media.fragments import read_fragments

    path = _fragmented_file(tmp_path)
    data = path.read_bytes()
    # Shrink the mdat's declared size and the file with it: the last sample is cut.
    path.write_bytes(data[:-50])
    got = read_fragments(path, read_movie_info(path))
    assert got.tracks == {} and got.doubt is not None
