"""Movie fragments: the sample tables of a fragmented ISO BMFF file, from its `moof` boxes.

A fragmented MP4 (CMAF, DASH, a camera's crash-safe recording) keeps an empty sample table
in `moov` and describes its samples in `moof/traf` boxes: `tfhd` (track, base offset and
defaults, else `moov/mvex/trex`'s), `tfdt` (the fragment's base decode time) and `trun`
rows (duration, size, flags, composition offset; each present or defaulted). This module
reads those boxes only, seeking over `mdat`, and gives every sample as FFmpeg's mov
demuxer indexes it (its rules are cited where they are not the specification's). Whatever
it does not model is a `doubt`, and the probe then demuxes. Pure: bytes and numpy.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pipeline.media.isobmff import MAX_BOX_READ, Box, MovieInfo, TrackExtends, iter_boxes, top_level

__all__ = ["Fragments", "TrackFragments", "read_fragments"]


# tfhd flags
_TFHD_BASE_DATA_OFFSET = 0x1
_TFHD_STSD_ID = 0x2
_TFHD_DEFAULT_DURATION = 0x8
_TFHD_DEFAULT_SIZE = 0x10
_TFHD_DEFAULT_FLAGS = 0x20
_TFHD_DEFAULT_BASE_IS_MOOF = 0x20000
# trun flags; the per-sample fields come in this order
_TRUN_DATA_OFFSET = 0x1
_TRUN_FIRST_SAMPLE_FLAGS = 0x4
_TRUN_SAMPLE_FIELDS = (0x100, 0x200, 0x400, 0x800)  # duration, size, flags, composition
# Boxes of a `traf` that change what the samples are (encryption) or that FFmpeg reads
# into its index in ways modelled nowhere here.
_TRAF_DOUBT = frozenset({b"senc", b"saiz", b"saio", b"uuid"})


@dataclass(frozen=True, slots=True, eq=False)
class TrackFragments:
    """Every sample of one track's fragments, in file order, as FFmpeg's mov demuxer
    indexes them: decode times before its edit-list offset (`tfdt`, else where the track's
    previous run ended), byte positions (`tfhd` base + `trun` data offset), sizes, sample
    flags, signed composition offsets, and the overlap rule that sets the discard flag (a
    sample not after the last sample of the runs before its own)."""

    track_id: int
    dts: npt.NDArray[np.int64]
    duration: npt.NDArray[np.int64]
    size: npt.NDArray[np.int64]
    pos: npt.NDArray[np.int64]
    flags: npt.NDArray[np.int64]
    cts: npt.NDArray[np.int64]
    discard: npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Fragments:
    """The samples of every track found in `moof` boxes; `doubt` says why FFmpeg may
    read them otherwise (then `tracks` is empty)."""

    tracks: Mapping[int, TrackFragments]
    doubt: str | None = None


class _Doubt(Exception):
    """A fragment this reader cannot say FFmpeg reads as it does."""


@dataclass(frozen=True, slots=True)
class _Run:
    """One `trun` as read: its per-sample table (big-endian words as int64, the fields of
    `_TRUN_SAMPLE_FIELDS` it has) and what the absent fields default to."""

    table: np.ndarray
    fields: tuple[int, ...]
    defaults: tuple[int, int, int]  # duration, size, flags
    first_flags: int | None  # trun first_sample_flags (or the default), if flags absent
    start_dts: int
    start_pos: int


class _TrackState:
    __slots__ = ("end", "runs")

    def __init__(self) -> None:
        self.end = 0  # decode time where the track's last run ended (FFmpeg's track_end)
        self.runs: list[_Run] = []


def read_fragments(path: str | os.PathLike[str], movie: MovieInfo) -> Fragments:
    """Read the `moof` boxes of a fragmented file (seeking over `mdat`, never reading
    media data) into per-track sample arrays. Never raises on bad boxes: anything this
    reader does not model (encryption, several sample descriptions, a sample in `moov`,
    cut-off or inconsistent runs) is a `doubt`."""
    try:
        return Fragments(_read_fragments(path, movie))
    except _Doubt as exc:
        return Fragments({}, str(exc))


def _read_fragments(path: str | os.PathLike[str], movie: MovieInfo) -> dict[int, TrackFragments]:
    trex = {t.track_id: t for t in movie.trex}
    for tid, tab in zip(movie.track_ids, movie.sample_tables, strict=False):
        if tab.stsd_entries != 1:
            raise _Doubt(f"track {tid} has {tab.stsd_entries} sample descriptions")
        if sum(n for n, _ in tab.deltas()):
            raise _Doubt(f"track {tid} has samples in moov as well as in fragments")
    file_size = os.path.getsize(path)
    state = {tid: _TrackState() for tid in movie.track_ids}
    with open(path, "rb") as fh:
        top, truncated = top_level(fh, file_size)
        if truncated:
            raise _Doubt(truncated)
        has_sidx = any(b.type == b"sidx" for b in top)
        for box in top:
            if box.type != b"moof":
                continue
            if box.size > MAX_BOX_READ:
                raise _Doubt(f"moof at byte {box.offset} is {box.size} bytes")
            fh.seek(box.offset)
            data = fh.read(box.size)
            # FFmpeg takes the position after the header minus 8 as the moof's offset.
            _parse_moof(data, box, box.offset + box.header_size - 8, trex, state, has_sidx)
    out = {}
    for tid, st in state.items():
        if st.runs:
            out[tid] = _samples(tid, st.runs, file_size)
    return out


def _samples(tid: int, runs: list[_Run], file_size: int) -> TrackFragments:
    """One track's runs as sample columns, computed once over all of them."""
    counts = np.fromiter((r.table.shape[0] for r in runs), dtype=np.int64, count=len(runs))
    first = np.concatenate(([0], np.cumsum(counts)[:-1]))
    same = all(r.fields == runs[0].fields for r in runs)
    big = np.concatenate([r.table for r in runs]) if same else None
    cols = []
    for k, field in enumerate(_TRUN_SAMPLE_FIELDS):
        if big is not None and field in runs[0].fields:
            cols.append(big[:, runs[0].fields.index(field)])
            continue
        dflt = [r.defaults[k] if k < 3 else 0 for r in runs]
        col = np.repeat(np.asarray(dflt, dtype=np.int64), counts)
        for r, a in zip(runs, first.tolist(), strict=True):
            if field in r.fields:
                col[a : a + r.table.shape[0]] = r.table[:, r.fields.index(field)]
        cols.append(col)
    dur, size, flags, cts = (np.ascontiguousarray(c) for c in cols)
    lacks = np.fromiter((r.first_flags is not None for r in runs), dtype=bool, count=len(runs))
    if lacks.any():
        flags = flags.copy()
        firsts = [r.first_flags for r in runs if r.first_flags is not None]
        flags[first[lacks]] = np.asarray(firsts, dtype=np.int64)
    # FFmpeg reads the composition offset as a signed 32-bit value in both trun versions.
    cts = np.where(cts >= 1 << 31, cts - (1 << 32), cts)
    if not size.all():
        raise _Doubt(f"track {tid}: a sample of size 0 in a trun")
    starts = np.fromiter((r.start_dts for r in runs), dtype=np.int64, count=len(runs))
    ex = np.cumsum(dur) - dur
    dts = ex + np.repeat(starts - ex[first], counts)
    pos0 = np.fromiter((r.start_pos for r in runs), dtype=np.int64, count=len(runs))
    ex = np.cumsum(size) - size
    pos = ex + np.repeat(pos0 - ex[first], counts)
    if int((pos + size).max()) > file_size:
        raise _Doubt(f"track {tid}: a sample reaches past the end of the file")
    # FFmpeg's overlap rule: a sample not after the last sample of the runs before its own.
    prev = np.empty(len(runs), dtype=np.int64)
    prev[0] = np.iinfo(np.int64).min
    prev[1:] = dts[first[1:] - 1]
    discard = dts <= np.repeat(prev, counts)
    discard[: counts[0]] = False
    return TrackFragments(tid, dts, dur, size, pos, flags, cts, discard)


def _parse_moof(
    data: bytes, moof: Box, moof_offset: int, trex: Mapping[int, TrackExtends],
    state: Mapping[int, _TrackState], has_sidx: bool,
) -> None:
    implicit = moof_offset
    seen: set[int] = set()
    for traf in iter_boxes(data, moof.header_size, moof.size):
        if traf.type != b"traf":
            continue
        tid = -1
        base = dflt_dur = dflt_size = dflt_flags = 0
        tfdt: int | None = None
        next_dts: int | None = None
        for b in iter_boxes(data, traf.offset + traf.header_size, traf.end):
            p = b.offset + b.header_size
            if b.type in _TRAF_DOUBT:
                raise _Doubt(f"'{b.type.decode('latin-1')}' box in a traf")
            if b.type == b"tfhd":
                flags, tid = _full_header(data, b, 8)
                if tid in seen:
                    raise _Doubt(f"track {tid} has two traf boxes in one moof")
                seen.add(tid)
                ext = trex.get(tid)
                if ext is None or tid not in state:
                    raise _Doubt(f"fragment of track {tid}, which has no trex or trak")
                q = p + 8
                base, q = _opt(data, b, q, flags & _TFHD_BASE_DATA_OFFSET, ">Q", 0)
                if not flags & _TFHD_BASE_DATA_OFFSET:
                    base = moof_offset if flags & _TFHD_DEFAULT_BASE_IS_MOOF else implicit
                stsd, q = _opt(data, b, q, flags & _TFHD_STSD_ID, ">I",
                               ext.sample_description_index)
                if stsd != 1:
                    raise _Doubt(f"track {tid}: fragment uses sample description {stsd}")
                dflt_dur, q = _opt(data, b, q, flags & _TFHD_DEFAULT_DURATION, ">I", ext.duration)
                dflt_size, q = _opt(data, b, q, flags & _TFHD_DEFAULT_SIZE, ">I", ext.size)
                dflt_flags, q = _opt(data, b, q, flags & _TFHD_DEFAULT_FLAGS, ">I", ext.flags)
            elif b.type == b"tfdt":
                if tid < 0:
                    raise _Doubt("tfdt before tfhd")
                version = data[p] if p < b.end else 0
                fmt = ">Q" if version == 1 else ">I"
                if p + 4 + struct.calcsize(fmt) > b.end:
                    raise _Doubt("tfdt box is cut off")
                (tfdt,) = struct.unpack_from(fmt, data, p + 4)
                state[tid].end = tfdt
            elif b.type == b"trun":
                if tid < 0:
                    raise _Doubt("trun before tfhd")
                if tfdt is None and has_sidx:
                    raise _Doubt(f"track {tid}: a fragment without tfdt in a file with sidx")
                st = state[tid]
                start = next_dts if next_dts is not None else (
                    tfdt if tfdt is not None else st.end
                )
                got = _trun(data, b, start, base, dflt_dur, dflt_size, dflt_flags)
                if got is None:
                    continue  # an empty run changes nothing in FFmpeg's state
                run, next_dts, implicit = got
                st.runs.append(run)
                st.end = next_dts


def _full_header(data: bytes, b: Box, need: int) -> tuple[int, int]:
    """(flags, the first 32-bit field) of a full box with at least `need` body bytes."""
    p = b.offset + b.header_size
    if p + need > b.end:
        raise _Doubt(f"'{b.type.decode('latin-1')}' box is cut off")
    head, value = struct.unpack_from(">II", data, p)
    return head & 0xFFFFFF, value


def _opt(data: bytes, b: Box, q: int, present: int, fmt: str, default: int) -> tuple[int, int]:
    if not present:
        return default, q
    n = struct.calcsize(fmt)
    if q + n > b.end:
        raise _Doubt(f"'{b.type.decode('latin-1')}' box is cut off")
    return int(struct.unpack_from(fmt, data, q)[0]), q + n


def _trun(
    data: bytes, b: Box, start: int, base: int, dflt_dur: int, dflt_size: int, dflt_flags: int,
) -> tuple[_Run, int, int] | None:
    """One `trun`: the run, the decode time after it and the byte after its data; None
    for a run without samples (FFmpeg's state stays as it was)."""
    flags, count = _full_header(data, b, 8)
    q = b.offset + b.header_size + 8
    data_offset, q = _opt(data, b, q, flags & _TRUN_DATA_OFFSET, ">i", 0)
    first_flags, q = _opt(data, b, q, flags & _TRUN_FIRST_SAMPLE_FLAGS, ">I", dflt_flags)
    if count == 0:
        return None
    fields = tuple(f for f in _TRUN_SAMPLE_FIELDS if flags & f)
    width = len(fields)
    if q + 4 * width * count > b.end:
        raise _Doubt(f"trun at byte {b.offset} of its moof is cut off")
    table = np.frombuffer(data, dtype=">u4", count=width * count, offset=q)
    table = table.reshape(count, width).astype(np.int64)
    sums = table.sum(axis=0)
    dur_sum = int(sums[fields.index(0x100)]) if 0x100 in fields else dflt_dur * count
    size_sum = int(sums[fields.index(0x200)]) if 0x200 in fields else dflt_size * count
    run = _Run(table, fields, (dflt_dur, dflt_size, dflt_flags),
               None if 0x400 in fields else first_flags, start, base + data_offset)
    return run, start + dur_sum, base + data_offset + size_sum
