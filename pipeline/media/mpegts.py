"""MPEG-TS without a demux: the PES headers of every stream, from a numpy scan of the file.

An MPEG transport stream has no index: its timing lives in the PES headers at the start of
each elementary-stream packet, spread over 188-byte TS packets. FFmpeg's demuxer walks
every TS packet in C and its parsers re-frame the payload (about 0.45 s for a 10-minute,
470 MB file even for one stream), which is most of an ingest. This module reads the same
headers with numpy over a memory mapping, 2**18 TS packets at a time: the first four
bytes of each as one big-endian word (sync, PID, payload_unit_start, scrambling,
adaptation field control, continuity counter), the only read of most pages; per wanted
PID its words compressed out, checked and counted as columns; only the packets that start
a payload unit or carry an adaptation field (a few per PES) are read further, from the
chunk: the adaptation field's length and flags, and each PES's first TS packet, copied
once. No per-packet row numbers, no other copies. A PES's payload size is the difference
of the running payload count at consecutive starts, so chunk boundaries do not matter.
Per PES: the byte position of its first TS packet, the payload size after the PES header,
the raw 33-bit PTS/DTS, the random_access_indicator, and the first payload bytes of its
first TS packet (`head`).

Its floor is the file's pages: every 188 bytes hold a header, so every page is mapped and
read once. On the 10-minute, 475 MB benchmark remux, in a fresh process (2 shared CPUs,
load 8-14): 0.10-0.13 CPU-s for the scan, 0.06-0.08 once mapped; of it 0.03 faulting the
mapping in and 0.03 the strided read of the header words, then 0.02 to unmap it at
`close`. Reading the file by `readinto` a reused buffer costs more (the copy of every
byte: 0.15-0.24 CPU-s against 0.12-0.17, side by side), and `MADV_POPULATE_READ`,
`MADV_WILLNEED` or no `MADV_SEQUENTIAL` change nothing measurable.

`TsFile.prefix(es)` read a PES's first payload bytes across its TS packets (keyframes'
parameter sets, SEI). `adts_frames`/`one_adts_frame_each` split AAC payloads into the
ADTS frames FFmpeg's parser returns, `add_stable` steps their pts as FFmpeg interpolates
them; `h264_keys` (vectorised over the heads) and `h264_key` (one access unit) tell which
access units FFmpeg's H.264 parser flags as keyframes (an IDR slice, or a recovery point
SEI before the first slice); `wrap` is FFmpeg's 33-bit wrap correction. The probe's use
of all this, and its proof against a demux, is `probe/indexed.py:from_mpegts`.

Anything this reader does not model (another packet size, lost sync, transport errors,
scrambling, continuity or discontinuity breaks, PES headers split across TS packets, PES
lengths that disagree with the data) is a `doubt`; the probe then demuxes. Pure: bytes
and numpy, the file read through `mmap`.
"""

from __future__ import annotations

import contextlib
import mmap
import os
from collections.abc import Callable, Collection
from dataclasses import dataclass
from fractions import Fraction
from types import TracebackType

import numpy as np
import numpy.typing as npt

from pipeline.media.nal import unescape
from schemas.media import NOPTS

__all__ = ["PesScan", "PesStream", "TsFile", "add_stable", "adts_frames", "h264_key", "h264_keys",
           "one_adts_frame_each", "scan", "wrap"]

TS = 188
HEAD = 64  # payload bytes kept of each PES's first TS packet (what follows its header)
CHUNK_PACKETS = 1 << 18  # TS packets per numpy pass (1 MiB of header words)
_NO_OPTIONAL_HEADER = frozenset({0xBC, 0xBE, 0xBF, 0xF0, 0xF1, 0xF2, 0xF8, 0xFF})
WRAP_BITS = 33

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
    want: I64  # the payload size the PES header announces (0: unbounded)
    hlen: I64  # per PES, its header's length
    stream_id: int = 0
    payload: bytes | None = None  # the whole elementary stream, when asked for


@dataclass(frozen=True, slots=True)
class PesScan:
    streams: dict[int, PesStream]
    doubt: str | None = None


class _Doubt(Exception):
    pass


class _Pid:
    """One PID's running state and its per-chunk columns."""

    __slots__ = ("base", "cc", "cols", "rows", "starts")

    def __init__(self) -> None:
        self.base = 0  # payload bytes of this PID before the current chunk
        self.cc = -1  # last continuity counter
        self.rows: list[I64] = []  # its TS packets' file indices (payload_of PIDs only)
        self.cols: list[tuple[np.ndarray, ...]] = []
        self.starts: list[npt.NDArray[np.uint8]] = []  # (k, 188): each PES's first packet


class TsFile:
    """A TS file mapped read-only; `scan` its PES headers, `prefix` a PES's first bytes."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        size = os.path.getsize(path)
        self.n = size // TS
        self._mm: mmap.mmap | None = None
        self.flat = np.zeros(0, dtype=np.uint8)
        self.doubt: str | None = None
        if self.n == 0 or size % TS:
            self.doubt = f"{size} bytes is not a whole number of 188-byte TS packets"
            return
        with open(path, "rb") as fh:
            self._mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        if hasattr(self._mm, "madvise"):
            self._mm.madvise(mmap.MADV_SEQUENTIAL)
        self.flat = np.frombuffer(self._mm, dtype=np.uint8, count=self.n * TS)

    def __enter__(self) -> TsFile:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Unmap (every array handed out is a copy, so nothing refers into the mapping)."""
        self.flat = np.zeros(0, dtype=np.uint8)
        if self._mm is not None:
            with contextlib.suppress(BufferError):  # a view still alive: the GC unmaps it
                self._mm.close()
            self._mm = None

    def scan(self, pids: Collection[int], *, payload_of: Collection[int] = (),
             chunk_packets: int = CHUNK_PACKETS) -> PesScan:
        """The PES packets of `pids`; the elementary stream bytes too for the PIDs in
        `payload_of` (keep those small: audio). Never raises on bad data."""
        if self.doubt is not None:
            return PesScan({}, self.doubt)
        try:
            return PesScan(self._scan(frozenset(pids), frozenset(payload_of), chunk_packets))
        except _Doubt as exc:
            return PesScan({}, str(exc))

    def _scan(self, pids: frozenset[int], payload_of: frozenset[int],
              chunk_packets: int) -> dict[int, PesStream]:
        state = {p: _Pid() for p in pids}
        for a in range(0, self.n, chunk_packets):
            b = min(self.n, a + chunk_packets)
            _chunk(self.flat[a * TS : b * TS].reshape(b - a, TS), a, state, payload_of)
        return {pid: self._stream(pid, state[pid], pid in payload_of) for pid in pids}

    def _stream(self, pid: int, st: _Pid, keep: bool) -> PesStream:
        if not st.cols:
            raise _Doubt(f"PID {pid} has no PES packet")
        srow, soff, before, rai = (np.concatenate(c) for c in zip(*st.cols, strict=True))
        splen = TS - soff
        if (splen < 9).any():
            raise _Doubt(f"PID {pid}: a PES header continues in the next TS packet")
        win = _windows(st.starts)
        hdr = win(soff)[:, :19]
        if not ((hdr[:, 0] == 0) & (hdr[:, 1] == 0) & (hdr[:, 2] == 1)).all():
            raise _Doubt(f"PID {pid}: a payload_unit_start without a PES start code")
        sids = hdr[:, 3].astype(np.int64)
        if np.isin(sids, list(_NO_OPTIONAL_HEADER)).any():
            raise _Doubt(f"PID {pid}: PES without the optional header")
        if len(set(sids.tolist())) != 1:
            raise _Doubt(f"PID {pid} carries PES of stream ids {sorted(set(sids.tolist()))}")
        if ((hdr[:, 6] & 0xC0) != 0x80).any() or (hdr[:, 6] & 0x30).any():
            raise _Doubt(f"PID {pid}: not an MPEG-2 PES header, or a scrambled PES")
        pes_len = (hdr[:, 4].astype(np.int64) << 8) | hdr[:, 5]
        flags = hdr[:, 7] >> 6
        if (flags == 1).any():
            raise _Doubt(f"PID {pid}: PES with a DTS but no PTS")
        hlen = 9 + hdr[:, 8].astype(np.int64)
        if (hlen > splen).any() or ((flags >= 2) & (hlen < 14)).any() or (
            (flags == 3) & (hlen < 19)
        ).any():
            raise _Doubt(f"PID {pid}: a PES header continues in the next TS packet")
        pts = np.where(flags >= 2, _timestamp(hdr[:, 9:14]), NOPTS)
        dts = np.where(flags == 3, _timestamp(hdr[:, 14:19]), NOPTS)
        # The last PES ends at the end of the file (FFmpeg flushes it).
        sizes = np.diff(np.concatenate((before, [st.base]))) - hlen
        want = np.where(pes_len > 0, pes_len + 6 - hlen, 0)
        bad = (want > 0) & (sizes != want)
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            # FFmpeg cuts a longer one and flags a shorter one as corrupt: demux it.
            raise _Doubt(f"PID {pid}: a PES holds {int(sizes[k])} payload bytes, its "
                         f"header says {int(want[k])}")
        if (sizes < 0).any():
            raise _Doubt(f"PID {pid}: a PES shorter than its header")
        head_len = np.minimum(splen - hlen, HEAD)
        head = win(soff + hlen)
        payload = None
        if keep:
            rows = np.concatenate(st.rows)
            payload = self._payload(rows[np.searchsorted(rows, srow[0]):], srow, soff + hlen)
        return PesStream(pid, srow * TS, sizes, pts, dts, rai, head, head_len, want, hlen,
                         int(sids[0]), payload)

    def _offsets(self, rows: I64) -> I64:
        """Where each TS packet's payload starts (TS for a packet without payload)."""
        b3 = self.flat[rows * TS + 3].astype(np.int64)
        af = (b3 & 0x20) != 0
        off = 4 + np.where(af, 1 + self.flat[rows * TS + 4].astype(np.int64), 0)
        return np.where((b3 & 0x10) != 0, np.minimum(off, TS), TS)

    def _payload(self, rows: I64, starts: I64, body: I64) -> bytes:
        """The payloads of TS packets `rows`, less each PES header (a start row's payload
        begins at `body`)."""
        off = self._offsets(rows)
        off[np.searchsorted(rows, starts)] = body
        mask = np.arange(TS) >= off[:, None]
        return self.flat.reshape(self.n, TS)[rows][mask].tobytes()

    def prefix(self, s: PesStream, k: int, nbytes: int) -> bytes:
        """The first `nbytes` of PES `k`'s payload (fewer where the PES is shorter): its
        PID's TS packets from its start on, found by reading their PIDs."""
        return self.prefixes(s, np.array([k], dtype=np.int64), nbytes)[0]

    def prefixes(self, s: PesStream, ks: I64, nbytes: int) -> list[bytes]:
        """`prefix` of each PES in `ks`: a window of TS packets after each start read at
        once (their PIDs and payload offsets), then the payload slices joined."""
        out: list[bytes] = []
        if ks.size == 0:
            return out
        assert self._mm is not None
        mm = self._mm
        want = np.minimum(int(nbytes), s.size[ks])
        a = s.pos[ks] // TS
        nxt = np.append(s.pos, self.n * TS)[ks + 1] // TS
        width = int(min(max(4 + int(want.max()) // 90, 2), self.n))
        rows = a[:, None] + np.arange(width)
        inside = rows < nxt[:, None]
        rows = np.minimum(rows, self.n - 1)
        at = rows * TS
        pid = ((self.flat[at + 1].astype(np.int64) & 0x1F) << 8) | self.flat[at + 2]
        mine = inside & (pid == s.pid)
        off = self._offsets(rows.reshape(-1)).reshape(rows.shape)
        off[:, 0] += s.hlen[ks]
        for i in range(ks.size):
            n_i = int(want[i])
            got = bytearray()
            for r, o in zip(at[i][mine[i]].tolist(), off[i][mine[i]].tolist(), strict=True):
                got += mm[r + o : r + TS]
                if len(got) >= n_i:
                    break
            if len(got) >= n_i or not inside[i, -1]:
                out.append(bytes(got[:n_i]))
            else:  # the window was short of the PID's packets: a wider one for this PES
                out.append(self._prefix_wide(s, int(ks[i]), n_i))
        return out

    def _prefix_wide(self, s: PesStream, k: int, nbytes: int) -> bytes:
        a = int(s.pos[k]) // TS
        end = int(s.pos[k + 1]) // TS if k + 1 < s.pos.size else self.n
        m = a + 8 + nbytes // 45
        while True:
            b = min(end, m)
            w = _words(self.flat[a * TS : b * TS].reshape(b - a, TS))
            rows = a + np.flatnonzero(((w >> 8) & 0x1FFF) == s.pid)
            off = self._offsets(rows)
            off[0] += int(s.hlen[k])
            got = self.flat.reshape(self.n, TS)[rows][np.arange(TS) >= off[:, None]]
            if got.size >= nbytes or b >= end:
                return got[:nbytes].tobytes()
            m = a + 2 * (m - a)


def _words(packets: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint32]:
    """The first four bytes of each of (n, 188) TS packets as native integers."""
    return packets[:, :4].view(">u4")[:, 0].astype(np.uint32)


def _chunk(packets: npt.NDArray[np.uint8], a: int, state: dict[int, _Pid],
           payload_of: frozenset[int]) -> None:
    """TS packets a.. (`packets`, (n, 188)) for the PIDs in `state`: their header words
    read once, then per PID its packets' words (`_packets`)."""
    words = _words(packets)
    sync = (words & 0xFF000000) != 0x47000000
    if sync.any():
        raise _Doubt(f"TS packet {a + int(np.flatnonzero(sync)[0])} has no sync byte")
    # A payload_unit_start or an adaptation field: the few packets read further.
    event = (words & 0x00400020) != 0
    for pid, st in state.items():
        mine = (words & 0x001FFF00) == (pid << 8)
        w = words[mine]
        if w.size:
            _packets(pid, w, a, mine, event, packets, st, pid in payload_of)


def _packets(pid: int, w: npt.NDArray[np.uint32], a: int, mine: npt.NDArray[np.bool_],
             event: npt.NDArray[np.bool_], packets: npt.NDArray[np.uint8], st: _Pid,
             keep: bool) -> None:
    """One chunk's TS packets of `pid`: `w` their header words, `mine` where they are
    among the chunk's packets (from TS packet `a` on), `event` which of those start a
    payload unit or have an adaptation field, `packets` the chunk's. Only those (a few
    per PES) are read further, from the chunk: adaptation field length and flags, and
    each PES's starting packet, copied; a PES's payload is counted as 184 bytes a
    packet less what adaptation fields take."""
    # Sync is 0x47 here: the word is 0x47______, so comparisons read the high bits.
    if (w >= 0x47800000).any():
        raise _Doubt(f"PID {pid}: transport error indicator set")
    b3 = w.astype(np.uint8)  # scrambling, adaptation field control, continuity
    # Comparisons, not masks: boolean arrays are what numpy counts and finds fastest.
    if (b3 >= 0x40).any():
        raise _Doubt(f"PID {pid}: scrambled TS packets")
    if (b3 < 0x10).any():  # scrambling bits clear: adaptation_field_control 0
        raise _Doubt(f"PID {pid}: TS packet with reserved adaptation_field_control")
    cc = b3 & 0xF
    hp = (b3 >> 4) & 1
    # FFmpeg's continuity check: +1 on a packet with payload, unchanged without.
    step = ((cc[1:] - cc[:-1] - hp[1:]) & 0xF) != 0
    first = st.cc >= 0 and (int(cc[0]) - st.cc - int(hp[0])) & 0xF
    if first or step.any():
        k = 0 if first else 1 + int(np.flatnonzero(step)[0])
        row = a + int(np.flatnonzero(mine)[k])
        raise _Doubt(f"PID {pid}: continuity counter break at TS packet {row}")
    st.cc = int(cc[-1])
    ev = np.flatnonzero((w & 0x00400020) != 0)  # indices among this PID's packets
    ev_rows = np.flatnonzero(mine & event)  # the same packets' indices in the chunk
    ev_b3 = b3[ev]
    with_af = ev_b3 >= 0x20  # an adaptation field (b3 < 0x40 here)
    afi = ev[with_af]
    af_rows = ev_rows[with_af]
    af_len = packets[af_rows, 4].astype(np.int64)
    af_flags = np.where(af_len > 0, packets[af_rows, 5], 0)
    af_hp = hp[afi].astype(bool)
    if (af_len[af_hp] > 182).any() or (af_len > 183).any():
        raise _Doubt(f"PID {pid}: adaptation field longer than its TS packet")
    if (af_flags & 0x80).any():
        raise _Doubt(f"PID {pid}: discontinuity indicator set")
    # Payload an adaptation field takes from its packet's 184 bytes (all without payload).
    loss = np.where(af_hp, 1 + af_len, TS - 4)
    cum_loss = np.concatenate(([0], np.cumsum(loss)))
    starts = ((w[ev] & 0x00400000) != 0) & ((ev_b3 & 0x10) != 0)  # with a payload
    si = ev[starts]
    if si.size:
        srows = ev_rows[starts]
        st.starts.append(packets[srows])
        at = np.searchsorted(afi, si)  # adaptation fields before each start
        before = st.base + (TS - 4) * si - cum_loss[at]
        at_af = np.append(afi, -1)[at] == si  # the start has one itself
        off = 4 + np.where(at_af, 1 + np.append(af_len, 0)[at], 0)
        rai = at_af & ((np.append(af_flags, 0)[at] & 0x40) != 0)
        st.cols.append((a + srows, off, before, rai))
    st.base += (TS - 4) * w.size - int(cum_loss[-1])
    if keep:
        st.rows.append(a + np.flatnonzero(mine))


def scan(
    path: str | os.PathLike[str], pids: Collection[int], *, payload_of: Collection[int] = (),
    chunk_packets: int = CHUNK_PACKETS,
) -> PesScan:
    """The PES packets of `pids` in the TS file at `path` (`TsFile.scan`)."""
    with TsFile(path) as ts:
        return ts.scan(pids, payload_of=payload_of, chunk_packets=chunk_packets)


def _windows(parts: list[npt.NDArray[np.uint8]]) -> Callable[[I64], npt.NDArray[np.uint8]]:
    """Of TS packets ((n, 188) arrays, joined): the function that gives bytes
    off[i] : off[i] + HEAD of each, zero past the packet's end."""
    n = sum(p.shape[0] for p in parts)
    pad = np.zeros((n, TS + HEAD), dtype=np.uint8)
    np.concatenate(parts, out=pad[:, :TS])
    win = np.lib.stride_tricks.sliding_window_view(pad.reshape(-1), HEAD)
    base = np.arange(n) * (TS + HEAD)

    def at(off: I64) -> npt.NDArray[np.uint8]:
        got: npt.NDArray[np.uint8] = win[base + off]
        return got

    return at


def _timestamp(b: np.ndarray) -> I64:
    b = b.astype(np.int64)
    return (((b[:, 0] >> 1) & 7) << 30) | (b[:, 1] << 22) | ((b[:, 2] >> 1) << 15) | (
        b[:, 3] << 7
    ) | (b[:, 4] >> 1)


# --- what FFmpeg makes of the PES -------------------------------------------------------------


def wrap(ts: I64, ref: int, ticks_60s: int) -> I64:
    """FFmpeg's 33-bit wrap correction (`update_wrap_reference`, `wrap_timestamp`): the
    reference is 60 s before the first packet's timestamp `ref`; a reference in the
    first 7/8 of the range adds 2**33 to timestamps below it, one in the last 1/8 (and
    60 s) takes 2**33 from those at or above it (early timestamps go negative)."""
    span = 1 << WRAP_BITS
    ref &= span - 1
    lim = ref - ticks_60s
    add = ref < span - (span >> 3) or ref < span - ticks_60s
    out = ts.copy()
    ok = ts != NOPTS
    if add:
        out[ok & (ts < lim)] += span
    else:
        out[ok & (ts >= lim)] -= span
    return out


def _rescale(a: I64, b: int, c: int) -> I64:
    """a * b / c rounded half away from zero (`av_rescale_rnd`, AV_ROUND_NEAR_INF)."""
    q = (np.abs(a) * b + c // 2) // c
    out: I64 = np.where(a < 0, -q, q)
    return out


def add_stable(ts: I64, tb: Fraction, inc: Fraction) -> I64:
    """FFmpeg's `av_add_stable(tb, ts, inc, 1)`: `ts` (in `tb`) plus the duration `inc`
    seconds, on the grid of multiples of `inc` so that rounding does not accumulate."""
    m = inc.numerator * tb.denominator
    d = inc.denominator * tb.numerator
    if m % d == 0:
        out: I64 = ts + m // d
        return out
    if m < d:
        return ts.copy()
    # av_rescale_q(ts, tb, inc), back, and one step on: old + 1 in tb, plus the remainder.
    old = _rescale(ts, tb.numerator * inc.denominator, tb.denominator * inc.numerator)
    old_ts = _rescale(old, inc.numerator * tb.denominator, inc.denominator * tb.numerator)
    nxt: I64 = _rescale(old + 1, inc.numerator * tb.denominator,
                        inc.denominator * tb.numerator) + (ts - old_ts)
    return nxt


def adts_frames(payload: bytes, pes_sizes: I64) -> tuple[I64, I64] | None:
    """The ADTS frames of an AAC elementary stream as FFmpeg's parser cuts them: (index of
    the PES each frame starts in, frame size). None where a PES does not start with a
    frame, a frame crosses into the next PES, a header is not ADTS, or a frame holds more
    than one raw data block (1024 samples each is the model)."""
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
        if p + 7 > total or mv[p] != 0xFF or (mv[p + 1] & 0xF6) != 0xF0 or mv[p + 6] & 3:
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


def one_adts_frame_each(s: PesStream) -> bool:
    """Whether every PES is exactly one ADTS frame of one raw data block (read from the
    heads alone, so the payload need not be read)."""
    h = s.head[:, :7].astype(np.int64)
    if (s.head_len < 7).any():
        return False
    flen = ((h[:, 3] & 3) << 11) | (h[:, 4] << 3) | (h[:, 5] >> 5)
    return bool(((h[:, 0] == 0xFF) & ((h[:, 1] & 0xF6) == 0xF0) & ((h[:, 6] & 3) == 0)
                 & (flen == s.size)).all())


# Head bytes `h264_keys` reads: an AUD, a short SEI and the slice NAL of most access units;
# an IDR's SPS and PPS push its slice further (those go to `h264_key` with their prefix,
# which the probe reads for keyframes anyway).
KEY_WIDTH = 48
_PLAIN_NAL = np.isin(np.arange(32), [7, 8, 9, 10, 11, 12, 13, 15])


def h264_keys(head: np.ndarray, head_len: I64) -> npt.NDArray[np.int8]:
    """Per access unit (one per PES), FFmpeg's H.264 parser keyframe flag from its first
    bytes: 1 when the first slice is an IDR slice or an SEI before it holds a recovery
    point, 0 for another slice, -1 when the head cannot tell (no slice in it, an SEI
    that is not one plain message, data partitioning: `h264_key` then reads more). The
    parser reads NAL units up to the first slice only (`parse_nal_units`), its SEI state
    reset per access unit."""
    n = head.shape[0]
    width = min(head.shape[1], KEY_WIDTH)
    h = np.ascontiguousarray(head[:, :width])
    hl = np.minimum(head_len, width)
    sc = (h[:, :-3] == 0) & (h[:, 1:-2] == 0) & (h[:, 2:-1] == 1)
    sc &= np.arange(width - 3) + 4 <= hl[:, None]  # the NAL header byte is in the head
    r, c = np.divmod(np.flatnonzero(sc), width - 3)  # (2-D nonzero is several times slower)
    hv = h.reshape(-1)

    def at(col: I64) -> I64:
        got: I64 = hv[r * width + np.minimum(col, width - 1)].astype(np.int64)
        return got

    t = at(c + 3) & 0x1F
    out = np.full(n, -1, dtype=np.int8)
    is_slice = (t == 1) | (t == 5)
    sr, first = np.unique(r[is_slice], return_index=True)
    first_c = np.full(n, width, dtype=np.int64)
    first_c[sr] = c[is_slice][first]
    first_t = np.full(n, -1, dtype=np.int64)
    first_t[sr] = t[is_slice][first]
    before = c < first_c[r]
    # Units before the first slice: AUD, SPS, PPS, end of sequence/stream, filler, SPS
    # extension, subset SPS are plain; data partitions and unknown ones: undecided.
    plain = _PLAIN_NAL[t]
    last = np.concatenate((r[1:] != r[:-1], [True]))
    nxt = np.where(last, width, np.concatenate((c[1:], [width])))
    # An SEI of one message: type and size under 255, the rbsp stop bit right after its
    # payload, the next start code right after that, no emulation-prevention byte.
    ptype, psize = at(c + 4), at(c + 5)
    stop = c + 6 + psize
    clean = _no_escape(h, r, c + 3, np.minimum(nxt, width))
    single = ((t == 6) & (ptype != 0xFF) & (psize != 0xFF) & (stop < nxt) & clean
              & (at(stop) == 0x80)
              & ((stop + 1 == nxt) | ((stop + 2 == nxt) & (at(stop + 1) == 0))))
    undecided = np.zeros(n, dtype=bool)
    undecided[r[before & ~plain & ~single]] = True
    has_recovery = np.zeros(n, dtype=bool)
    has_recovery[r[before & single & (ptype == 6)]] = True
    decided = (first_t >= 0) & ~undecided
    out[decided] = ((first_t[decided] == 5) | has_recovery[decided]).astype(np.int8)
    return out


def _no_escape(h: npt.NDArray[np.uint8], r: I64, a: I64, b: I64) -> npt.NDArray[np.bool_]:
    """Per (r, a, b): whether no emulation-prevention sequence 00 00 03 of row `r` of `h`
    ends at a byte in a..b-1. Counted only in the rows that have one at all (few do)."""
    width = h.shape[1]
    epb = (h[:, :-2] == 0) & (h[:, 1:-1] == 0) & (h[:, 2:] == 3)
    clean = np.ones(r.size, dtype=bool)
    hits = np.flatnonzero(epb)
    if hits.size:
        dirty = np.unique(hits // (width - 2))
        e3 = np.zeros((dirty.size, width + 1), dtype=np.int16)
        e3[:, 3:] = np.cumsum(epb[dirty], axis=1)  # e3[., x]: sequences ending before x
        slot = np.full(h.shape[0], -1, dtype=np.int64)
        slot[dirty] = np.arange(dirty.size)
        d = slot[r] >= 0
        base = slot[r[d]] * (width + 1)
        e3v = e3.reshape(-1)
        clean[d] = e3v[base + b[d]] == e3v[base + a[d]]
    return clean


def h264_key(data: bytes) -> int:
    """`h264_keys` for one access unit's first bytes, parsing its SEI: 1/0, -1 when no
    slice is in `data` or a unit is one the model does not know."""
    recovery = False
    p = data.find(b"\x00\x00\x01")
    while p >= 0 and p + 3 < len(data):
        t = data[p + 3] & 0x1F
        if t in (1, 5):
            return 1 if t == 5 or recovery else 0
        q = data.find(b"\x00\x00\x01", p + 3)
        if t == 6:
            if q < 0:
                return -1  # the SEI goes on past `data`
            body = unescape(data[p + 4 : q])
            i = 0
            while i < len(body) and body[i] != 0x80:
                ptype, i = _sei_number(body, i)
                psize, i = _sei_number(body, i)
                if i > len(body):
                    return -1
                recovery |= ptype == 6
                i += psize
        elif t not in (7, 8, 9, 10, 11, 12, 13, 15):
            return -1
        p = q
    return -1


def _sei_number(body: bytes, p: int) -> tuple[int, int]:
    value = 0
    while p < len(body) and body[p] == 0xFF:
        value += 255
        p += 1
    if p >= len(body):
        return value, len(body) + 1
    return value + body[p], p + 1
