"""MPEG-TS without a demux: the PES headers of every stream, from a numpy scan of the file.

An MPEG transport stream has no index: its timing lives in the PES headers at the start of
each elementary-stream packet, spread over 188-byte TS packets. FFmpeg's demuxer walks
every TS packet in C and its parsers re-frame the payload (about 0.45 s for a 10-minute,
470 MB file even for one stream), which is most of an ingest. This module reads the same
headers with numpy over a memory mapping, in chunks of TS packets (memory stays bounded
for multi-GB files): PID, payload_unit_start, adaptation field (random access and
discontinuity indicators), continuity counter, and at each PES start its PTS/DTS and
the TS packet's byte offset. It gives per PES what FFmpeg's demuxer hands its parser:
the byte position of the TS packet that starts it, the payload size after the PES header,
the raw 33-bit PTS and DTS. `adts_frames` splits AAC PES payloads into the ADTS frames
FFmpeg's parser returns; `h264_parser_keys`/`hevc_parser_keys` tell which access units
FFmpeg's parsers flag as keyframes from the first bytes of each PES.

Not yet used by the probe (issue 9): on the 10-minute benchmark remux the scan takes
0.46-1.2 s (a copy of every selected row per PID; it must read header columns only), nine
video PES sizes differ from the parser's access units at the joins of the remuxed minutes,
and x264's per-frame pic_timing SEI makes `h264_parser_keys` undecided on every frame.

Anything this reader does not model (another packet size, lost sync, transport errors,
scrambling, continuity or discontinuity breaks, PES headers split across TS packets, PES
lengths that disagree with the data) is a `doubt`; the probe then demuxes. Pure: bytes
and numpy, the file read through `mmap`.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from schemas.media import NOPTS

__all__ = ["PesScan", "PesStream", "adts_frames", "h264_parser_keys", "hevc_parser_keys",
           "scan"]

TS = 188
HEAD = 40  # payload bytes kept of each PES's first TS packet (PES header + first NALs)
CHUNK_PACKETS = 1 << 18  # 48 MiB of TS packets per numpy pass
_NO_OPTIONAL_HEADER = frozenset({0xBC, 0xBE, 0xBF, 0xF0, 0xF1, 0xF2, 0xF8, 0xFF})

I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True, eq=False)
class PesStream:
    """The PES packets of one PID in file order (a PES counts from its starting TS packet)."""

    pid: int
    pos: I64  # byte offset of the TS packet whose payload starts the PES
    size: I64  # payload bytes after the PES header
    pts: I64  # raw 33-bit PTS, NOPTS where the header has none
    dts: I64  # raw 33-bit DTS, NOPTS where the header has none
    rai: npt.NDArray[np.bool_]  # random_access_indicator on the starting TS packet
    head: npt.NDArray[np.uint8]  # (n, HEAD): the payload's first bytes (0 past the packet)
    head_len: I64  # how many of `head` are payload of the first TS packet
    stream_id: int = 0
    payload: bytes | None = None  # the whole elementary stream, when asked for


@dataclass(frozen=True, slots=True)
class PesScan:
    streams: dict[int, PesStream]
    doubt: str | None = None


class _Doubt(Exception):
    pass


class _Open:
    """A PID's PES still collecting payload at the end of a chunk."""

    __slots__ = ("parts", "size", "want")

    def __init__(self) -> None:
        self.size = -1  # payload bytes so far of the open PES (-1: none open yet)
        self.want = 0  # the payload bytes its header announces (0: unbounded)
        self.parts: list[bytes] = []


def scan(
    path: str | os.PathLike[str], pids: Collection[int], *, payload_of: Collection[int] = (),
    chunk_packets: int = CHUNK_PACKETS,
) -> PesScan:
    """The PES packets of `pids` in the TS file at `path`; the elementary stream bytes too
    for the PIDs in `payload_of` (keep those small: audio). Never raises on bad data."""
    try:
        return PesScan(_scan(path, frozenset(pids), frozenset(payload_of), chunk_packets))
    except _Doubt as exc:
        return PesScan({}, str(exc))


def _scan(
    path: str | os.PathLike[str], pids: frozenset[int], payload_of: frozenset[int],
    chunk_packets: int,
) -> dict[int, PesStream]:
    size = os.path.getsize(path)
    n = size // TS
    if n == 0 or size % TS:
        raise _Doubt(f"{size} bytes is not a whole number of 188-byte TS packets")
    recs: dict[int, list[tuple[np.ndarray, ...]]] = {p: [] for p in pids}
    open_: dict[int, _Open] = {p: _Open() for p in pids}
    last_cc = dict.fromkeys(pids, -1)
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        if hasattr(mm, "madvise"):
            mm.madvise(mmap.MADV_SEQUENTIAL)
        doubt = _walk(mm, n, chunk_packets, pids, payload_of, recs, open_, last_cc)
    if doubt is not None:
        raise _Doubt(doubt)
    out = {}
    for pid in pids:
        o = open_[pid]
        if not recs[pid]:
            raise _Doubt(f"PID {pid} has no PES packet")
        cols = [np.concatenate(c) for c in zip(*recs[pid], strict=True)]
        pos, sizes, pts, dts, rai, head, head_len, sid = cols
        sizes[-1] = o.size  # the last PES ends at the end of the file (FFmpeg flushes it)
        _close(pid, o.size, o.want)
        ids = set(sid.tolist())
        if len(ids) != 1:
            raise _Doubt(f"PID {pid} carries PES of stream ids {sorted(ids)}")
        payload = b"".join(o.parts) if pid in payload_of else None
        out[pid] = PesStream(pid, pos, sizes, pts, dts, rai.astype(bool), head, head_len,
                             int(sid[0]), payload)
    return out


def _walk(
    mm: mmap.mmap, n: int, chunk_packets: int, pids: frozenset[int], payload_of: frozenset[int],
    recs: dict[int, list[tuple[np.ndarray, ...]]], open_: dict[int, _Open],
    last_cc: dict[int, int],
) -> str | None:
    """Every chunk of TS packets in turn; the doubt, if any. The mapping's views end with
    this call (a doubt is returned, not raised, so no traceback keeps one alive), and
    the mapping can close: nothing kept refers into it, every column is a copy."""
    whole = np.frombuffer(mm, dtype=np.uint8, count=n * TS)
    try:
        for a in range(0, n, chunk_packets):
            b = min(n, a + chunk_packets)
            _chunk(whole[a * TS : b * TS].reshape(b - a, TS), a, pids, payload_of, recs,
                   open_, last_cc)
    except _Doubt as exc:
        return str(exc)
    return None


def _chunk(
    pk: np.ndarray, first: int, pids: frozenset[int], payload_of: frozenset[int],
    recs: dict[int, list[tuple[np.ndarray, ...]]], open_: dict[int, _Open],
    last_cc: dict[int, int],
) -> None:
    if not (pk[:, 0] == 0x47).all():
        bad = first + int(np.flatnonzero(pk[:, 0] != 0x47)[0])
        raise _Doubt(f"TS packet {bad} has no sync byte")
    b1 = pk[:, 1].astype(np.int64)
    pid_all = ((b1 & 0x1F) << 8) | pk[:, 2]
    for pid in pids:
        sel = np.flatnonzero(pid_all == pid)
        if sel.size == 0:
            continue
        rows = pk[sel]
        h1, h3 = rows[:, 1], rows[:, 3]
        if (h1 & 0x80).any():
            raise _Doubt(f"PID {pid}: transport error indicator set")
        if (h3 & 0xC0).any():
            raise _Doubt(f"PID {pid}: scrambled TS packets")
        afc = (h3 >> 4) & 3
        if (afc == 0).any():
            raise _Doubt(f"PID {pid}: TS packet with reserved adaptation_field_control")
        cc = (h3 & 0xF).astype(np.int64)
        has_payload = (afc & 1).astype(bool)
        # FFmpeg's continuity check: +1 on a packet with payload, unchanged without.
        prev = np.concatenate(([last_cc[pid]], cc[:-1]))
        expected = np.where(has_payload, (prev + 1) & 0xF, prev)
        expected[0] = cc[0] if last_cc[pid] < 0 else expected[0]
        if (cc != expected).any():
            at = first + int(sel[np.flatnonzero(cc != expected)[0]])
            raise _Doubt(f"PID {pid}: continuity counter break at TS packet {at}")
        last_cc[pid] = int(cc[-1])
        has_af = (afc & 2).astype(bool)
        af_len = np.where(has_af, rows[:, 4], 0).astype(np.int64)
        if (af_len[has_af & has_payload] > 182).any() or (af_len > 183).any():
            raise _Doubt(f"PID {pid}: adaptation field longer than its TS packet")
        af_flags = np.where(has_af & (af_len > 0), rows[:, 5], 0)
        if (af_flags & 0x80).any():
            raise _Doubt(f"PID {pid}: discontinuity indicator set")
        off = 4 + np.where(has_af, 1 + af_len, 0)
        plen = np.where(has_payload, TS - off, 0)
        start = has_payload & ((h1 & 0x40) != 0)
        _pes(pid, rows, sel, first, off, plen, start, (af_flags & 0x40) != 0,
             pid in payload_of, recs[pid], open_[pid])


def _pes(
    pid: int, rows: np.ndarray, sel: np.ndarray, first: int, off: I64, plen: I64,
    start: np.ndarray, rai: np.ndarray, keep: bool, recs: list[tuple[np.ndarray, ...]],
    o: _Open,
) -> None:
    si = np.flatnonzero(start)
    # Payload before this chunk's first PES start belongs to the open PES (or, before the
    # PID's first start, is skipped as FFmpeg skips it).
    lead = int(si[0]) if si.size else rows.shape[0]
    if o.size >= 0 and lead:
        o.size += int(plen[:lead].sum())
        if keep:
            o.parts.append(_payload(rows[:lead], plen[:lead]))
    if si.size == 0:
        return
    # PES headers: they must lie within their first TS packet.
    srow = rows[si]
    soff = off[si]
    if (plen[si] < 19).any():
        need = 9 + _gather(srow, soff, 9)[:, 8].astype(np.int64)
        if (plen[si] < need).any():
            raise _Doubt(f"PID {pid}: a PES header continues in the next TS packet")
    hdr = _gather(srow, soff, 19)
    if not ((hdr[:, 0] == 0) & (hdr[:, 1] == 0) & (hdr[:, 2] == 1)).all():
        raise _Doubt(f"PID {pid}: a payload_unit_start without a PES start code")
    sid = hdr[:, 3].astype(np.int64)
    if np.isin(sid, list(_NO_OPTIONAL_HEADER)).any():
        raise _Doubt(f"PID {pid}: PES without the optional header")
    if ((hdr[:, 6] & 0xC0) != 0x80).any() or (hdr[:, 6] & 0x30).any():
        raise _Doubt(f"PID {pid}: not an MPEG-2 PES header, or a scrambled PES")
    pes_len = (hdr[:, 4].astype(np.int64) << 8) | hdr[:, 5]
    flags = hdr[:, 7] >> 6
    if (flags == 1).any():
        raise _Doubt(f"PID {pid}: PES with a DTS but no PTS")
    hlen = 9 + hdr[:, 8].astype(np.int64)
    if (hlen > plen[si]).any() or ((flags >= 2) & (hlen < 14)).any() or (
        (flags == 3) & (hlen < 19)
    ).any():
        raise _Doubt(f"PID {pid}: PES header longer than its TS packet or its fields")
    pts = np.where(flags >= 2, _timestamp(hdr[:, 9:14]), NOPTS)
    dts = np.where(flags == 3, _timestamp(hdr[:, 14:19]), NOPTS)
    # Each PES's payload bytes: its packets' payloads, less its header.
    csum = np.concatenate(([0], np.cumsum(plen)))
    ends = np.concatenate((si[1:], [rows.shape[0]]))
    sizes = csum[ends] - csum[si] - hlen
    want = np.where(pes_len > 0, pes_len + 6 - hlen, 0)
    # The PES left open by the previous chunk closes at this chunk's first start.
    if o.size >= 0:
        _close(pid, o.size, o.want)
    bad = (want[:-1] > 0) & (sizes[:-1] != want[:-1])
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        _close(pid, int(sizes[k]), int(want[k]))
    head = _gather(srow, soff + hlen, HEAD)
    head_len = np.minimum(plen[si] - hlen, HEAD)
    head = np.where(np.arange(HEAD) < head_len[:, None], head, 0).astype(np.uint8)
    pos = (first + sel[si]).astype(np.int64) * TS
    recs.append((pos, sizes, pts, dts, rai[si], head, head_len, sid))
    o.size = int(sizes[-1])
    o.want = int(want[-1])
    if keep:
        # The payload of the PES packets that start here, each without its header.
        body_len = plen.copy()
        body_len[si] -= hlen
        o.parts.append(_payload(rows[si[0]:], body_len[si[0]:]))


def _close(pid: int, size: int, want: int) -> None:
    """A PES whose header gave its length must hold exactly that many bytes (FFmpeg cuts
    a longer one and flags a shorter one as corrupt: either way, demux it)."""
    if want and size != want:
        raise _Doubt(f"PID {pid}: a PES holds {size} payload bytes, its header says {want}")


def _gather(rows: np.ndarray, off: I64, k: int) -> np.ndarray:
    """rows[i, off[i] : off[i] + k], zero past the end of the TS packet."""
    cols = off[:, None] + np.arange(k)
    inside = cols < TS
    got = np.take_along_axis(rows, np.minimum(cols, TS - 1), axis=1)
    return np.where(inside, got, 0)


def _payload(rows: np.ndarray, plen: I64) -> bytes:
    """The last `plen[i]` bytes of each row, in order: a TS packet's payload ends it."""
    mask = (np.arange(TS) >= (TS - plen)[:, None]) & (plen[:, None] > 0)
    return rows[mask].tobytes()


def _timestamp(b: np.ndarray) -> I64:
    b = b.astype(np.int64)
    return (((b[:, 0] >> 1) & 7) << 30) | (b[:, 1] << 22) | ((b[:, 2] >> 1) << 15) | (
        b[:, 3] << 7
    ) | (b[:, 4] >> 1)


# --- what FFmpeg's parsers make of the payloads ---------------------------------------------


def adts_frames(payload: bytes, pes_sizes: I64) -> tuple[I64, I64] | None:
    """The ADTS frames of an AAC elementary stream as FFmpeg's parser cuts them: (index of
    the PES each frame starts in, frame size). None where a PES does not start with a
    frame, a frame crosses into the next PES, or a header is not ADTS."""
    bounds = np.concatenate(([0], np.cumsum(pes_sizes)))
    if int(bounds[-1]) != len(payload):
        return None
    starts = set(bounds[:-1].tolist())
    ends: list[int] = []
    pes_of: list[int] = []
    sizes: list[int] = []
    k = 0
    p = 0
    total = len(payload)
    mv = payload
    while p < total:
        if p + 7 > total or mv[p] != 0xFF or (mv[p + 1] & 0xF6) != 0xF0:
            return None
        flen = ((mv[p + 3] & 3) << 11) | (mv[p + 4] << 3) | (mv[p + 5] >> 5)
        if flen < 7 or p + flen > total:
            return None
        while bounds[k + 1] <= p:
            k += 1
        if p + flen > bounds[k + 1]:
            return None  # a frame continues in the next PES
        pes_of.append(k)
        sizes.append(flen)
        p += flen
        ends.append(p)
    if not starts <= {0, *ends}:
        return None
    return np.asarray(pes_of, dtype=np.int64), np.asarray(sizes, dtype=np.int64)


def _nal_types(head: np.ndarray, head_len: I64, type_of: int, shift: int) -> np.ndarray:
    """(n, HEAD) NAL unit types at each start code in the heads (-1 elsewhere)."""
    h = head.astype(np.int16)
    sc = (h[:, :-3] == 0) & (h[:, 1:-2] == 0) & (h[:, 2:-1] == 1)
    sc &= (np.arange(HEAD - 3) + 3 < head_len[:, None])
    types = np.where(sc, (h[:, 3:] >> shift) & type_of, -1)
    return types


def h264_parser_keys(head: np.ndarray, head_len: I64) -> npt.NDArray[np.int8] | None:
    """Per PES, whether FFmpeg's H.264 parser calls its access unit a keyframe: 1 when the
    first slice NAL in the head is an IDR slice, 0 when it is another slice with no SEI
    before it, -1 when the head cannot tell (SEI first, or no slice in the head)."""
    types = _nal_types(head, head_len, 0x1F, 0)
    slice_mask = (types == 1) | (types == 5) | (types == 2)
    has_slice = slice_mask.any(axis=1)
    first = np.argmax(slice_mask, axis=1)
    ftype = types[np.arange(types.shape[0]), first]
    col = np.arange(types.shape[1])
    sei_before = ((types == 6) & (col < first[:, None])).any(axis=1)
    out = np.where(ftype == 5, 1, 0).astype(np.int8)
    out[~has_slice | (sei_before & (ftype != 5))] = -1
    return out


def hevc_parser_keys(head: np.ndarray, head_len: I64) -> npt.NDArray[np.int8] | None:
    """Per PES, FFmpeg's HEVC parser keyframe (an IRAP slice, NAL types 16-23, first):
    1/0, or -1 when no slice NAL is in the head."""
    types = _nal_types(head, head_len, 0x3F, 1)
    slice_mask = (types >= 0) & (types <= 31)
    has_slice = slice_mask.any(axis=1)
    first = np.argmax(slice_mask, axis=1)
    ftype = types[np.arange(types.shape[0]), first]
    out: npt.NDArray[np.int8] = ((ftype >= 16) & (ftype <= 23)).astype(np.int8)
    out[~has_slice] = -1
    return out
