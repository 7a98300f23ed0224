"""A small ISO BMFF / QuickTime box reader: edit lists, device boxes and truncation.

FFmpeg applies edit lists while demuxing and does not hand them over, and it says nothing
when a top-level box claims more bytes than the file has. This module walks the top-level
boxes by their headers (seeking past `mdat`, never reading media data), reads only `moov`,
and returns the `elst` rows of each track, the GoPro `udta` device boxes and any sign that
the file ends before its boxes do; `fragments` reads the `moof` boxes of a fragmented file.
"""

from __future__ import annotations

import dataclasses
import os
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import BinaryIO

from schemas.media import EditListEntry

__all__ = [
    "Box",
    "MovieInfo",
    "TrackExtends",
    "iter_boxes",
    "looks_like_isobmff",
    "parse_moov",
    "read_movie_info",
    "top_level",
]

# Top-level box types a real ISO BMFF / QuickTime file starts with.
_FIRST_TYPES = frozenset(
    {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"styp", b"sidx", b"uuid"}
)
_CONTAINERS = frozenset({b"moov", b"trak", b"mdia", b"edts", b"udta", b"minf", b"stbl"})
MAX_BOX_READ = 256 * 1024 * 1024  # a moov larger than this is not read (no sane file has one)


@dataclass(frozen=True, slots=True)
class Box:
    """One box header: where it starts, its type, header length and declared total size."""

    offset: int
    type: bytes
    header_size: int
    size: int  # declared size including the header; to end of file when the box said 0

    @property
    def end(self) -> int:
        return self.offset + self.size


@dataclass(frozen=True, slots=True)
class MovieInfo:
    """What the boxes of one file say that FFmpeg does not pass on."""

    edit_lists: tuple[EditListEntry, ...] = ()
    truncated: str | None = None
    make: str | None = None
    model: str | None = None
    serial: str | None = None
    firmware: str | None = None
    track_ids: tuple[int, ...] = ()
    # Per `trak`, in order: the raw `stts` and `ctts` bodies and the `stsd` entry count,
    # for reading timestamps from the sample tables instead of demuxing.
    sample_tables: tuple[SampleTables, ...] = ()
    fragmented: bool = False  # an `mvex` box: samples live in `moof` fragments
    # `mvex/trex` of a fragmented file: the per-track defaults its `tfhd` boxes inherit.
    trex: tuple[TrackExtends, ...] = ()

    def edit_lists_by_stream(
        self, stream_of_track: Mapping[int, int]
    ) -> tuple[EditListEntry, ...]:
        """Edit-list rows renumbered from `trak` order to the demuxer's stream index, found
        by track ID in `stream_of_track` (track ID -> stream index); unknown IDs keep
        their `trak` position."""
        out = []
        for e in self.edit_lists:
            tid = self.track_ids[e.track_index] if e.track_index < len(self.track_ids) else -1
            index = stream_of_track.get(tid, e.track_index)
            out.append(dataclasses.replace(e, track_index=index))
        return tuple(out)


@dataclass(frozen=True, slots=True)
class TrackExtends:
    """One `trex` box: the sample defaults of a track's fragments."""

    track_id: int
    sample_description_index: int
    duration: int
    size: int
    flags: int


@dataclass(frozen=True, slots=True)
class SampleTables:
    stts: bytes = b""
    ctts: bytes = b""
    stsd_entries: int = 0

    def deltas(self) -> list[tuple[int, int]]:
        """(sample_count, sample_delta) rows of `stts`."""
        return _count_value_rows(self.stts, signed=False)

    def offsets(self) -> list[tuple[int, int]]:
        """(sample_count, composition offset) rows of `ctts`, offsets signed (as FFmpeg
        reads them: version 0 files from Apple write negative offsets too)."""
        return _count_value_rows(self.ctts, signed=True)


def _count_value_rows(body: bytes, *, signed: bool) -> list[tuple[int, int]]:
    if len(body) < 8:
        return []
    (count,) = struct.unpack_from(">I", body, 4)
    count = min(count, (len(body) - 8) // 8)
    fmt = ">Ii" if signed else ">II"
    return [
        (int(a), int(b)) for a, b in struct.iter_unpack(fmt, body[8 : 8 + 8 * count])
    ]


def looks_like_isobmff(head: bytes) -> bool:
    """True if the first box header names a known top-level ISO BMFF/QuickTime box."""
    return len(head) >= 8 and head[4:8] in _FIRST_TYPES


def iter_boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[Box]:
    """Box headers in `data[start:end]`; stops at the first header that does not fit."""
    stop = len(data) if end is None else min(end, len(data))
    p = start
    while p + 8 <= stop:
        size, btype = struct.unpack_from(">I4s", data, p)
        header = 8
        if size == 1:
            if p + 16 > stop:
                return
            (size,) = struct.unpack_from(">Q", data, p + 8)
            header = 16
        elif size == 0:
            size = stop - p
        if size < header:
            return
        yield Box(p, btype, header, size)
        p += size


def top_level(fh: BinaryIO, file_size: int) -> tuple[list[Box], str | None]:
    """Headers of the top-level boxes, read by seeking; and a truncation reason, if any."""
    boxes: list[Box] = []
    p = 0
    while p + 8 <= file_size:
        fh.seek(p)
        hdr = fh.read(16)
        if len(hdr) < 8:
            break
        size, btype = struct.unpack_from(">I4s", hdr, 0)
        header = 8
        if size == 1:
            if len(hdr) < 16:
                return boxes, f"box header at byte {p} is cut off by the end of the file"
            (size,) = struct.unpack_from(">Q", hdr, 8)
            header = 16
        elif size == 0:
            size = file_size - p
        if size < header or not _printable_type(btype):
            break  # not a box: trailing garbage is not truncation
        box = Box(p, btype, header, size)
        boxes.append(box)
        if box.end > file_size:
            name = btype.decode("latin-1")
            return boxes, (
                f"'{name}' box at byte {p} declares {size} bytes, "
                f"but the file ends {box.end - file_size} bytes early (size {file_size})"
            )
        p = box.end
    return boxes, None


def _printable_type(btype: bytes) -> bool:
    return all(0x20 <= c < 0x7F or c == 0xA9 for c in btype)


def read_movie_info(path: str | os.PathLike[str]) -> MovieInfo:
    """Read top-level headers and the `moov` box of `path`; never raises on bad boxes."""
    file_size = os.path.getsize(path)
    with open(path, "rb") as fh:
        boxes, truncated = top_level(fh, file_size)
        moov = next((b for b in boxes if b.type == b"moov"), None)
        if moov is None:
            return MovieInfo(truncated=truncated)
        fh.seek(moov.offset)
        data = fh.read(min(moov.size, MAX_BOX_READ))
    info = parse_moov(data, moov.header_size)
    sample_past_eof = _chunk_offsets_past_eof(data, moov.header_size, file_size)
    return MovieInfo(
        edit_lists=info.edit_lists,
        truncated=truncated or sample_past_eof,
        make=info.make,
        model=info.model,
        serial=info.serial,
        firmware=info.firmware,
        track_ids=info.track_ids,
        sample_tables=info.sample_tables,
        fragmented=info.fragmented,
        trex=info.trex,
    )


def parse_moov(moov: bytes, header_size: int = 8) -> MovieInfo:
    """Edit lists and GoPro device boxes of a whole `moov` box (`moov` is its bytes).

    `track_index` of each edit-list row is the track's position among the `trak` boxes,
    which is the stream index FFmpeg gives it. Malformed boxes end the walk quietly.
    """
    movie_timescale = 0
    entries: list[EditListEntry] = []
    track_ids: list[int] = []
    firmware = serial = make = model = None
    track_no = 0
    tables: list[SampleTables] = []
    fragmented = False
    trex: list[TrackExtends] = []
    for box in iter_boxes(moov, header_size):
        body = moov[box.offset + box.header_size : box.end]
        if box.type == b"mvhd":
            movie_timescale = _mvhd_timescale(body)
        elif box.type == b"mvex":
            fragmented = True
            for xb in iter_boxes(body):
                if xb.type == b"trex" and xb.size >= 32:
                    tid, stsd, dur, size, flags = struct.unpack_from(
                        ">5I", body, xb.offset + xb.header_size + 4
                    )
                    trex.append(TrackExtends(tid, stsd, dur, size, flags))
        elif box.type == b"trak":
            tid, elst, media_ts = _read_trak(body)
            tables.append(_sample_tables(body))
            track_ids.append(tid)
            for seg, mt in elst:
                entries.append(EditListEntry(track_no, seg, mt, movie_timescale, media_ts))
            track_no += 1
        elif box.type == b"udta":
            for ub in iter_boxes(body):
                ubody = body[ub.offset + ub.header_size : ub.end]
                if ub.type == b"FIRM":
                    firmware = _text(ubody)
                elif ub.type == b"CAME" and ubody.strip(b"\x00"):
                    serial = ubody.hex()  # GoPro's camera ID; all zeros when unset
    if firmware:
        make = "GoPro"
    return MovieInfo(
        edit_lists=tuple(entries),
        make=make,
        model=model,
        serial=serial,
        firmware=firmware,
        track_ids=tuple(track_ids),
        sample_tables=tuple(tables),
        fragmented=fragmented,
        trex=tuple(trex),
    )


def _sample_tables(trak: bytes) -> SampleTables:
    """`stts`, `ctts` and the `stsd` entry count of one `trak` body (mdia/minf/stbl)."""
    found: dict[bytes, bytes] = {}
    for box in _walk(trak, 0):
        if box.type in (b"stts", b"ctts", b"stsd") and box.type not in found:
            found[box.type] = trak[box.offset + box.header_size : box.end]
    stsd = found.get(b"stsd", b"")
    entries = int(struct.unpack_from(">I", stsd, 4)[0]) if len(stsd) >= 8 else 0
    return SampleTables(found.get(b"stts", b""), found.get(b"ctts", b""), entries)


def _text(b: bytes) -> str | None:
    t = b.split(b"\x00", 1)[0].decode("latin-1").strip()
    return t or None


def _mvhd_timescale(body: bytes) -> int:
    if len(body) < 4:
        return 0
    version = body[0]
    off = 4 + (16 if version == 1 else 8)
    if len(body) < off + 4:
        return 0
    return int(struct.unpack_from(">I", body, off)[0])


def _read_trak(trak: bytes) -> tuple[int, list[tuple[int, int]], int]:
    """(track_ID, [(segment_duration, media_time)], media timescale) of one `trak` body."""
    track_id = 0
    elst: list[tuple[int, int]] = []
    media_ts = 0
    for box in iter_boxes(trak):
        body = trak[box.offset + box.header_size : box.end]
        if box.type == b"tkhd" and len(body) >= 4:
            off = 4 + (16 if body[0] == 1 else 8)
            if len(body) >= off + 4:
                track_id = int(struct.unpack_from(">I", body, off)[0])
        elif box.type == b"edts":
            for eb in iter_boxes(body):
                if eb.type == b"elst":
                    elst.extend(parse_elst(body[eb.offset + eb.header_size : eb.end]))
        elif box.type == b"mdia":
            for mb in iter_boxes(body):
                if mb.type == b"mdhd":
                    media_ts = _mvhd_timescale(body[mb.offset + mb.header_size : mb.end])
    return track_id, elst, media_ts


def parse_elst(body: bytes) -> list[tuple[int, int]]:
    """(segment_duration, media_time) rows of an `elst` body (after the box header)."""
    if len(body) < 8:
        return []
    version = body[0]
    (count,) = struct.unpack_from(">I", body, 4)
    rows: list[tuple[int, int]] = []
    p = 8
    fmt, step = (">Qq", 16) if version == 1 else (">Ii", 8)
    for _ in range(count):
        if p + step + 4 > len(body):
            break
        seg, mt = struct.unpack_from(fmt, body, p)
        rows.append((int(seg), int(mt)))
        p += step + 4  # media_rate_integer, media_rate_fraction
    return rows


def _chunk_offsets_past_eof(moov: bytes, header_size: int, file_size: int) -> str | None:
    """A sample table (`stco`/`co64`) chunk offset at or past the end of the file."""
    worst = -1
    for box in _walk(moov, header_size):
        if box.type not in (b"stco", b"co64"):
            continue
        body = moov[box.offset + box.header_size : box.end]
        if len(body) < 8:
            continue
        (count,) = struct.unpack_from(">I", body, 4)
        width = 8 if box.type == b"co64" else 4
        n = min(count, (len(body) - 8) // width)
        if n == 0:
            continue
        fmt = f">{n}{'Q' if width == 8 else 'I'}"
        offsets = struct.unpack_from(fmt, body, 8)
        worst = max(worst, max(offsets))
    if worst >= file_size:
        return f"sample table chunk offset {worst} is past the end of the file (size {file_size})"
    return None


def _walk(data: bytes, start: int) -> Iterator[Box]:
    for box in iter_boxes(data, start):
        yield box
        if box.type in _CONTAINERS:
            yield from _walk_inner(data, box)


def _walk_inner(data: bytes, parent: Box) -> Iterator[Box]:
    for box in iter_boxes(data, parent.offset + parent.header_size, parent.end):
        yield box
        if box.type in _CONTAINERS:
            yield from _walk_inner(data, box)

