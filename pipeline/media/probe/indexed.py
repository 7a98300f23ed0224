"""Timelines from a container's own index instead of a packet-by-packet demux.

A demux costs per-packet Python (PyAV builds a packet object for each) and reads every byte
of media; for the containers that describe their packets somewhere, that description gives
the same columns in a fraction of the time: the sample tables of a plain MP4/MOV (with
FFmpeg's index), the `moof`/`trun` boxes of a fragmented MP4 (`fragments`). Each path
models what FFmpeg's demuxer does, proves it by demuxing every stream's first packets and
comparing field by field, and returns None on any doubt: the caller then demuxes. PyAV
objects stay inside the probe package.
"""

from __future__ import annotations

from array import array
from typing import Any

import numpy as np

from pipeline.media import fragments, isobmff
from pipeline.media.nal import HEAD_BYTES, ParamInspector
from schemas.media import NOPTS

__all__ = ["Attempt", "Collector", "from_fragments", "from_sample_tables"]


class Attempt:
    """Whether a fast path demuxed packets to prove itself: a demux after a failed proof
    must start from a freshly opened file, not where the proof stopped."""

    __slots__ = ("demuxed",)

    def __init__(self) -> None:
        self.demuxed = False


class Collector:
    """Growing int64 columns for all packets of a file, split per stream at the end."""

    __slots__ = ("dts", "dur", "flags", "pos", "pts", "sidx", "size")

    def __init__(self) -> None:
        self.sidx = array("q")
        self.pts = array("q")
        self.dts = array("q")
        self.dur = array("q")
        self.flags = array("q")
        self.size = array("q")
        self.pos = array("q")



# --- timestamps from the sample tables (plain MP4/MOV) --------------------------------------

_CHECK_PACKETS = 12  # per stream, demuxed to prove the sample tables give the same packets
_CHECK_BUDGET = 4000  # packets demuxed at most for that proof


def _expand(rows: list[tuple[int, int]]) -> np.ndarray:
    if not rows:
        return np.zeros(0, dtype=np.int64)
    arr = np.asarray(rows, dtype=np.int64)
    return np.repeat(arr[:, 1], arr[:, 0])


_INDEX_ROW = np.dtype(
    [("ts", np.int64), ("pos", np.int64), ("size", np.int64), ("flags", np.int64)]
)


def from_sample_tables(
    spath: str,
    container: Any,
    streams: list[Any],
    boxes: isobmff.MovieInfo | None,
    inspectors: dict[int, ParamInspector],
    attempt: Attempt,
) -> Collector | None:
    """Every packet's timing from FFmpeg's index and the MP4 sample tables, without reading
    the media data; None where that is not exactly what a demux gives (then we demux).

    A non-fragmented ISO BMFF file with one sample description per track and at most one
    edit per track: FFmpeg's index (`index_entries`, edit list applied) gives dts, byte
    position, size, keyframe and discard flags; `ctts` gives pts - dts; `stts` the last
    duration (the others are the gap to the next dts, as FFmpeg sets them). The first
    packets of every stream are then demuxed and must agree field by field (a constant
    pts shift, FFmpeg's for negative composition offsets, is learnt from them). About 10x
    faster than a demux, which reads every byte of media and costs per-packet Python.
    """
    if boxes is None or boxes.fragmented or len(boxes.sample_tables) != len(streams):
        return None
    fmt = container.format.name if container.format is not None else ""
    if "mov" not in fmt.split(","):
        return None
    edits: dict[int, int] = {}
    for e in boxes.edit_lists:
        if e.media_time != -1:
            edits[e.track_index] = edits.get(e.track_index, 0) + 1
    per: dict[int, tuple[np.ndarray, ...]] = {}
    for s, tab in zip(streams, boxes.sample_tables, strict=True):
        if int(s.discard) >= 48:  # AVDISCARD_ALL: the demuxer returns no packet of it
            continue
        if tab.stsd_entries > 1 or edits.get(s.index, 0) > 1:
            return None
        entries = s.index_entries
        n = len(entries)
        deltas = _expand(tab.deltas())
        offsets = _expand(tab.offsets())
        if n == 0 or deltas.size != n or offsets.size not in (0, n):
            return None
        # One pass over the entries (each access builds a Python object): 4x faster
        # than one pass per field.
        rows = np.fromiter(
            ((e.timestamp, e.pos, e.size, e.flags) for e in entries), dtype=_INDEX_ROW, count=n
        )
        ts, pos, size, flags = (rows[f].astype(np.int64) for f in _INDEX_ROW.names or ())
        key = (flags & 1).astype(np.int64)  # AVINDEX_KEYFRAME
        discard = ((flags & 4) >> 2).astype(np.int64)  # AVINDEX_DISCARD_FRAME
        dur = np.empty(n, dtype=np.int64)
        dur[:-1] = np.diff(ts)
        dur[-1] = deltas[-1]
        pts = ts + offsets if offsets.size else ts.copy()
        per[s.index] = (ts, pts, dur, key | (discard << 1), size, pos)
    attempt.demuxed = bool(per)
    if not per or not _agrees_with_demux(container, per):
        return None
    return _collect(spath, per, inspectors)


def _collect(
    spath: str, per: dict[int, tuple[np.ndarray, ...]], inspectors: dict[int, ParamInspector]
) -> Collector:
    """The proved columns as one Collector; keyframes' first bytes read for `nal`."""
    col = Collector()
    with open(spath, "rb") as fh:
        for si, (dts, pts, dur, fl, size, pos) in per.items():
            n = dts.size
            col.sidx.extend(array("q", [si]) * n)
            col.pts.frombytes(pts.tobytes())
            col.dts.frombytes(dts.tobytes())
            col.dur.frombytes(dur.tobytes())
            col.flags.frombytes(fl.tobytes())
            col.size.frombytes(size.tobytes())
            col.pos.frombytes(pos.tobytes())
            insp = inspectors.get(si)
            if insp is None:
                continue
            # No side data here: files with several sample descriptions are demuxed.
            for i in np.flatnonzero(fl & 1).tolist():
                fh.seek(int(pos[i]))
                insp.inspect(fh.read(min(int(size[i]), HEAD_BYTES)), i)
    return col


def _agrees_with_demux(
    container: Any, per: dict[int, tuple[np.ndarray, ...]], *, shift_dts: bool = False
) -> bool:
    """Demux the first packets of every stream and compare them with the tables; learn
    each stream's constant pts shift on the way (applied to `per` in place). With
    `shift_dts` the shift is learnt from dts and moves pts and dts alike (FFmpeg's
    edit-list offset of a fragmented track)."""
    want = {si: min(_CHECK_PACKETS, cols[0].size) for si, cols in per.items()}
    seen = dict.fromkeys(per, 0)
    shift: dict[int, int] = {}
    budget = _CHECK_BUDGET
    for pkt in container.demux():
        budget -= 1
        if budget < 0:
            return False
        si = pkt.stream_index
        if pkt.size == 0 and pkt.pts is None and pkt.dts is None:
            continue  # the flush packet at the end
        if si not in per:
            return False  # a stream the tables skipped gave packets
        i = seen[si]
        seen[si] = i + 1
        if i >= want[si]:
            if all(seen[k] >= want[k] for k in want):
                break
            continue
        dts, pts, dur, fl, size, pos = per[si]
        p_pts = NOPTS if pkt.pts is None else pkt.pts
        p_dts = NOPTS if pkt.dts is None else pkt.dts
        if si not in shift:
            shift[si] = (p_dts - int(dts[i])) if shift_dts else (p_pts - int(pts[i]))
        if shift_dts:
            p_dts -= shift[si]
        got = (p_dts, p_pts - shift[si],
               NOPTS if pkt.duration is None else pkt.duration,
               int(pkt.is_keyframe) | (int(pkt.is_discard) << 1), pkt.size,
               NOPTS if pkt.pos is None else pkt.pos)
        exp = (int(dts[i]), int(pts[i]), int(dur[i]), int(fl[i]), int(size[i]), int(pos[i]))
        if got != exp:
            return False
        if all(seen[k] >= want[k] for k in want):
            break
    if any(seen[k] < want[k] for k in want):
        return False
    for si, d in shift.items():
        if d:
            per[si][1][:] += d
            if shift_dts:
                per[si][0][:] += d
    return True


# --- timestamps from movie fragments (fragmented MP4) ----------------------------------------

_NON_SYNC = 0x00010000 | 0x01000000  # sample_is_non_sync_sample, sample_depends_on = 1


def from_fragments(
    spath: str,
    container: Any,
    streams: list[Any],
    boxes: isobmff.MovieInfo | None,
    inspectors: dict[int, ParamInspector],
    attempt: Attempt,
) -> Collector | None:
    """Every packet's timing from the `moof`/`trun` boxes (`fragments`), without reading
    the media data; None where that may not be exactly what a demux gives.

    As FFmpeg's mov demuxer indexes fragments: dts from `tfdt` (else where the track's
    last run ended) less a constant edit-list offset, learnt from the first packet;
    pts = dts + composition offset + the shift that makes the most negative offset zero;
    the duration is the `trun` one (a zero duration, which FFmpeg replaces by a guess,
    is a doubt); keyframe: every audio sample, else a sample neither non-sync nor
    depending on others; discard: a sample not after the last one of the runs before.
    Proved by a demux of every stream's first packets, and against the last entry of
    FFmpeg's own index, which its header read fills from every `moof`.
    """
    if boxes is None or not boxes.fragmented or len(boxes.sample_tables) != len(streams):
        return None
    fmt = container.format.name if container.format is not None else ""
    if "mov" not in fmt.split(","):
        return None
    edits: dict[int, int] = {}
    for e in boxes.edit_lists:
        edits[e.track_index] = edits.get(e.track_index, 0) + 1
    if any(n > 1 for n in edits.values()):
        return None
    found = fragments.read_fragments(spath, boxes)
    if found.doubt is not None:
        return None
    per: dict[int, tuple[np.ndarray, ...]] = {}
    for s in streams:
        if int(s.discard) >= 48:  # AVDISCARD_ALL: the demuxer returns no packet of it
            continue
        t = found.tracks.get(int(s.id))
        if t is None or t.dts.size == 0:
            return None
        if not t.duration.all():
            return None
        if s.type == "audio":
            key = np.ones(t.dts.size, dtype=np.int64)
        else:
            key = ((t.flags & _NON_SYNC) == 0).astype(np.int64)
        shift = max(0, -int(t.cts.min()))
        per[s.index] = (t.dts.copy(), t.dts + t.cts + shift, t.duration.copy(),
                        key | (t.discard.astype(np.int64) << 1), t.size.copy(), t.pos.copy())
    if not per or len(per) != len(found.tracks):
        return None
    attempt.demuxed = True
    if not _agrees_with_demux(container, per, shift_dts=True):
        return None
    if not _last_index_entry_agrees(streams, per):
        return None
    return _collect(spath, per, inspectors)


def _last_index_entry_agrees(streams: list[Any], per: dict[int, tuple[np.ndarray, ...]]) -> bool:
    """FFmpeg's index (read at open from every `moof`, or from those read so far where a
    complete `sidx` let it stop early) ends where ours does at that entry."""
    for s in streams:
        if s.index not in per:
            continue
        dts, _pts, _dur, fl, size, pos = per[s.index]
        entries = s.index_entries
        n = len(entries)
        if n > dts.size:
            return False
        if n == 0:
            continue
        e = entries[n - 1]
        got = (e.timestamp, e.pos, e.size, e.flags & 1, (e.flags & 4) >> 2)
        exp = (int(dts[n - 1]), int(pos[n - 1]), int(size[n - 1]), int(fl[n - 1] & 1),
               int(fl[n - 1] >> 1))
        if got != exp:
            return False
    return True
