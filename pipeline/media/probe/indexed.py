"""Timelines from a container's own index instead of a packet-by-packet demux.

A demux costs per-packet Python (PyAV builds a packet object for each) and reads every byte
of media; for the containers that describe their packets somewhere, that description gives
the same columns in a fraction of the time: the sample tables of a plain MP4/MOV (with
FFmpeg's index), the `moof`/`trun` boxes of a fragmented MP4 (`fragments`), the PES
headers of an MPEG-TS (`mpegts`). Each path
models what FFmpeg's demuxer does, proves it by demuxing every stream's first packets and
comparing field by field, and returns None on any doubt: the caller then demuxes. PyAV
objects stay inside the probe package.
"""

from __future__ import annotations

from array import array
from fractions import Fraction
from typing import Any

import numpy as np

from pipeline.media import fragments, isobmff, mpegts
from pipeline.media.nal import HEAD_BYTES, ParamInspector
from schemas.media import NOPTS

__all__ = ["Attempt", "Collector", "from_fragments", "from_mpegts", "from_sample_tables"]


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
    container: Any, per: dict[int, tuple[np.ndarray, ...]], *, shift_dts: bool = False,
    shift: bool = True, learn_duration: frozenset[int] = frozenset(),
) -> bool:
    """Demux the first packets of every stream and compare them with the tables; learn
    each stream's constant pts shift on the way (applied to `per` in place). With
    `shift_dts` the shift is learnt from dts and moves pts and dts alike (FFmpeg's
    edit-list offset of a fragmented track); without `shift` none is learnt. The streams
    in `learn_duration` take the first packet's duration for all their packets."""
    want = {si: min(_CHECK_PACKETS, cols[0].size) for si, cols in per.items()}
    seen = dict.fromkeys(per, 0)
    shifts: dict[int, int] = {}
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
        p_dur = NOPTS if pkt.duration is None else pkt.duration
        if i == 0 and si in learn_duration:
            dur[:] = p_dur
        if si not in shifts:
            shifts[si] = 0 if not shift else (
                (p_dts - int(dts[i])) if shift_dts else (p_pts - int(pts[i])))
        if shift_dts:
            p_dts -= shifts[si]
        got = (p_dts, p_pts - shifts[si], p_dur,
               int(pkt.is_keyframe) | (int(pkt.is_discard) << 1), pkt.size,
               NOPTS if pkt.pos is None else pkt.pos)
        exp = (int(dts[i]), int(pts[i]), int(dur[i]), int(fl[i]), int(size[i]), int(pos[i]))
        if got != exp:
            return False
        if all(seen[k] >= want[k] for k in want):
            break
    if any(seen[k] < want[k] for k in want):
        return False
    for si, d in shifts.items():
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


# --- timestamps from PES headers (MPEG-TS) ---------------------------------------------------

_TAIL_PACKETS = 12  # per stream, the last packets compared with a demux after a seek
_TAIL_SECONDS = 4  # the seek for them goes this far before the shortest stream's end


def from_mpegts(
    spath: str,
    container: Any,
    streams: list[Any],
    inspectors: dict[int, ParamInspector],
    attempt: Attempt,
) -> Collector | None:
    """Every packet's timing from a numpy scan of the PES headers (`mpegts`), without a
    demux; None where that may not be exactly what a demux gives.

    H.264 video and ADTS AAC audio only, as FFmpeg's mpegts demuxer and parsers make
    packets of them: one video access unit per PES (each starts with an access unit
    delimiter, and dts advances by exactly one frame duration from PES to PES, so no PES
    holds two), its keyframe flag the H.264 parser's (an IDR slice or a recovery point
    SEI before the first slice); AAC cut into its ADTS frames of 1024 samples, the first
    frame of a PES with the PES's pts and position, the others with the pts interpolated
    as FFmpeg's `av_add_stable` steps by 1024 / sample rate, and no position (the
    duration is that step rounded down to the time base); times
    corrected for the 33-bit wrap against the first packet the demuxer returns. The
    video frame duration is the demux's first one. Proved by a demux of every stream's
    first packets, then of the last ones after a seek near the end.
    """
    fmt = container.format.name if container.format is not None else ""
    if fmt != "mpegts" or not streams:
        return None
    video: set[int] = set()
    rate: dict[int, int] = {}
    for s in streams:
        cc = s.codec_context
        name = cc.name if cc is not None else None
        if int(s.discard) >= 48 or s.time_base is None:
            return None
        if s.type == "video" and name == "h264":
            video.add(s.index)
        elif s.type == "audio" and name == "aac" and cc.sample_rate:
            rate[s.index] = int(cc.sample_rate)
        else:
            return None  # a codec whose parser this does not model: demux the file
    pid_of = {s.index: int(s.id) for s in streams}
    if len(set(pid_of.values())) != len(streams):
        return None
    per: dict[int, tuple[np.ndarray, ...]] = {}
    heads: dict[int, list[tuple[int, bytes]]] = {}
    with mpegts.TsFile(spath) as ts:
        found = ts.scan(pid_of.values())
        if found.doubt is not None:
            return None
        pes = found.streams
        two = [pes[p] for p in pid_of.values()]
        for s in streams:
            p = pes[pid_of[s.index]]
            if s.index in video:
                got = _h264_columns(ts, p, bool(s.codec_context.has_b_frames))
                if got is None:
                    return None
                per[s.index], read = got
                if s.index in inspectors:
                    ks = [k for k in np.flatnonzero(got[0][3] & 1).tolist() if k not in read]
                    more = ts.prefixes(p, np.asarray(ks, dtype=np.int64), HEAD_BYTES)
                    read.update(zip(ks, more, strict=True))
                    heads[s.index] = sorted((k, read[k]) for k in np.flatnonzero(
                        got[0][3] & 1).tolist())
            else:
                audio = _aac_columns(ts, p, rate[s.index], s.time_base)
                if audio is None:
                    return None
                per[s.index] = audio
    if not _wrapped(per, two, {s.index: pid_of[s.index] for s in streams}, streams):
        return None
    for si in video:
        dts = per[si][0]
        if dts.size > 2 and not (np.diff(dts) == dts[1] - dts[0]).all():
            return None  # not one frame per PES at a constant rate: demux to be sure
    attempt.demuxed = True
    if not _agrees_with_demux(container, per, shift=False, learn_duration=frozenset(video)):
        return None
    for si in video:
        d = per[si][2]
        if per[si][0].size > 1 and int(d[0]) != int(per[si][0][1] - per[si][0][0]):
            return None
    if not _tail_agrees(container, streams, per):
        return None
    col = Collector()
    for si, (dts, pts, dur, fl, size, pos) in per.items():
        col.sidx.extend(array("q", [si]) * dts.size)
        col.pts.frombytes(pts.tobytes())
        col.dts.frombytes(dts.tobytes())
        col.dur.frombytes(dur.tobytes())
        col.flags.frombytes(fl.tobytes())
        col.size.frombytes(size.tobytes())
        col.pos.frombytes(pos.tobytes())
    for si, found_heads in heads.items():
        for k, head in found_heads:
            inspectors[si].inspect(head, k)
    return col


def _h264_columns(
    ts: mpegts.TsFile, p: mpegts.PesStream, b_frames: bool
) -> tuple[tuple[np.ndarray, ...], dict[int, bytes]] | None:
    """(dts, pts, duration 0 for now, flags, size, pos) of an H.264 PID's access units,
    raw 33-bit times, and the first bytes of those it read to tell keyframes; None where
    the PES are not one access unit each as modelled."""
    n = p.pos.size
    if (p.head_len < 6).any() or (p.pts == NOPTS).any():
        return None
    h = p.head
    aud3 = (h[:, 0] == 0) & (h[:, 1] == 0) & (h[:, 2] == 1) & ((h[:, 3] & 0x1F) == 9)
    aud4 = (h[:, 0] == 0) & (h[:, 1] == 0) & (h[:, 2] == 0) & (h[:, 3] == 1) & (
        (h[:, 4] & 0x1F) == 9)
    if not (aud3 | aud4).all():
        return None  # the parser would cut access units elsewhere than at PES starts
    has_dts = p.dts != NOPTS
    if has_dts.any() and not has_dts.all():
        return None
    dts = p.dts.copy() if has_dts.all() else p.pts.copy()
    if b_frames and (p.pts == dts).any():
        return None  # FFmpeg may drop such a dts ("invalid dts/pts combination")
    keys = mpegts.h264_keys(p.head, p.head_len).astype(np.int64)
    unsure = np.flatnonzero(keys < 0)
    heads = dict(zip(unsure.tolist(), ts.prefixes(p, unsure, HEAD_BYTES), strict=True))
    for k, head in heads.items():
        keys[k] = mpegts.h264_key(head)
        if keys[k] < 0 and p.size[k] > len(head):
            keys[k] = mpegts.h264_key(ts.prefix(p, k, int(p.size[k])))
        if keys[k] < 0:
            return None
    return (dts, p.pts.copy(), np.zeros(n, dtype=np.int64), keys, p.size.copy(),
            p.pos.copy()), heads


def _aac_columns(
    ts: mpegts.TsFile, p: mpegts.PesStream, sample_rate: int, time_base: Any
) -> tuple[np.ndarray, ...] | None:
    """(dts, pts, duration, flags, size, pos) of an AAC PID's ADTS frames, raw times."""
    tb = Fraction(time_base.numerator, time_base.denominator)
    dur = (1024 * tb.denominator) // (sample_rate * tb.numerator)
    if mpegts.one_adts_frame_each(p):
        pes_of = np.arange(p.pos.size)
        size = p.size.copy()
    else:
        again = ts.scan([p.pid], payload_of=[p.pid])
        if again.doubt is not None or again.streams[p.pid].payload is None:
            return None
        frames = mpegts.adts_frames(again.streams[p.pid].payload or b"", p.size)
        if frames is None:
            return None
        pes_of, size = frames
    n = pes_of.size
    first = np.ones(n, dtype=bool)
    first[1:] = pes_of[1:] != pes_of[:-1]
    pts = np.where(first, p.pts[pes_of], NOPTS)
    known = pts != NOPTS
    if n == 0 or not known[0]:
        return None
    # Interpolated: from the last frame with a pts on, one frame duration at a time.
    since = np.arange(n) - np.maximum.accumulate(np.where(known, np.arange(n), 0))
    if int(since.max()) > 256:
        return None
    step = Fraction(1024, sample_rate)
    for j in range(1, int(since.max()) + 1):
        at = np.flatnonzero(since == j)
        pts[at] = mpegts.add_stable(pts[at - 1], tb, step)
    pos = np.where(first, p.pos[pes_of], NOPTS)
    return (pts.copy(), pts, np.full(n, dur, dtype=np.int64), np.ones(n, dtype=np.int64),
            size, pos)


def _wrapped(
    per: dict[int, tuple[np.ndarray, ...]], pes: list[mpegts.PesStream],
    pid_of: dict[int, int], streams: list[Any],
) -> bool:
    """Unwrap every stream's 33-bit times in place as FFmpeg does against the first
    packet its demuxer returns (per program: this does not know the programs). Each
    stream's first timestamp is tried as that reference, and all must give the same
    times (they do unless a timestamp lies near 60 s before the start); False when not."""
    by_pid = {p.pid: p for p in pes}
    refs = set()
    for pid in pid_of.values():
        p = by_pid[pid]
        refs.add(int(p.dts[0]) if p.dts[0] != NOPTS else int(p.pts[0]))
    tb = {s.index: s.time_base for s in streams}
    results = []
    for ref in sorted(refs):
        res = {}
        for si, cols in per.items():
            t = tb[si]
            ticks = (60 * t.denominator) // t.numerator
            dts = mpegts.wrap(cols[0], ref, ticks)
            pts = mpegts.wrap(cols[1], ref, ticks)
            both = (dts != NOPTS) & (pts != NOPTS)
            if (both & (dts - (1 << 32) > pts)).any():
                return False  # FFmpeg moves dts or pts by 2**33 there, as its cur_dts says
            res[si] = (dts, pts)
        results.append(res)
    for res in results[1:]:
        if any(not (np.array_equal(res[si][0], results[0][si][0])
                    and np.array_equal(res[si][1], results[0][si][1])) for si in per):
            return False
    for si, (dts, pts) in results[0].items():
        per[si][0][:] = dts
        per[si][1][:] = pts
    return True


def _tail_agrees(container: Any, streams: list[Any], per: dict[int, tuple[np.ndarray, ...]]
                 ) -> bool:
    """Seek a few seconds before the end and demux to it: each stream's last packets
    equal ours field by field (the wrap reference stays the one of the first packet)."""
    sv = next((s for s in streams if s.index in per), None)
    if sv is None:
        return False
    t = sv.time_base
    end = min(int(cols[1].max()) for cols in per.values())
    ticks = (_TAIL_SECONDS * t.denominator) // t.numerator
    try:
        container.seek(max(0, end - ticks), stream=sv)
    except Exception:
        return False
    tail: dict[int, list[tuple[int, ...]]] = {}
    budget = 20 * _CHECK_BUDGET
    for pkt in container.demux():
        budget -= 1
        if budget < 0:
            return False
        if pkt.size == 0 and pkt.pts is None and pkt.dts is None:
            continue
        if pkt.stream_index not in per:
            return False  # a stream the scan does not know (a later PMT added it)
        tail.setdefault(pkt.stream_index, []).append((
            NOPTS if pkt.dts is None else pkt.dts, NOPTS if pkt.pts is None else pkt.pts,
            NOPTS if pkt.duration is None else pkt.duration,
            int(pkt.is_keyframe) | (int(pkt.is_discard) << 1), pkt.size,
            NOPTS if pkt.pos is None else pkt.pos))
    if len(container.streams) != len(streams):
        return False
    for si, cols in per.items():
        k = min(_TAIL_PACKETS, cols[0].size)
        got = tail.get(si, [])[-k:]
        exp = list(zip(*(c[-k:].tolist() for c in cols), strict=True))
        if len(got) != k or got != exp:
            return False
    return True
