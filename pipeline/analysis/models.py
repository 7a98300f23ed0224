"""How each container family makes its timestamps, and what a codec's packets can be.

Every check judges packet spacing, and spacing means something different in each family:
an MP4 sample table stores every duration exactly; Matroska and FLV store block times
rounded to whole milliseconds; MPEG-TS/PS store PES times (90 kHz, 33 bits, not on every
packet); Ogg stores one granule position per page and FFmpeg interpolates the packets in
between; AVI stores no times at all, only a frame counter; a raw ADTS, MP3 or AMR stream
is a sequence of frames whose times FFmpeg counts. `model_for` picks the family from the
FFmpeg format name (`ProbeResult.container`); `clock` turns a stream's timeline into the
times that family really stores (unwrapping 33-bit PES times FFmpeg left wrapped), and
the checks read the model's facts (`tick_jitter`, `pts_may_be_missing`, `page_times`).

Codec facts sit beside them: a Vorbis encoder switches between short and long blocks, so
its packets last 128, 576 or 1024 samples with no edit anywhere; no codec makes packets
shorter than its smallest frame; an encoder's delay (AAC priming, Opus pre-skip) is
hidden at the start by design. Data, and small functions over it. Pure: numpy and
`schemas` only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction

import numpy as np

from pipeline.analysis.timeline import I64
from schemas.media import NOPTS, StreamTimeline

__all__ = [
    "MODELS",
    "TimestampModel",
    "clock_of",
    "encoder_delay",
    "gap_times",
    "model_for",
    "shortest_frame",
    "variable_frames",
]


@dataclass(frozen=True, slots=True)
class TimestampModel:
    """One container family's timestamps: where they come from and how exact they are."""

    family: str
    formats: frozenset[str]  # FFmpeg demuxer names (`ProbeResult.container`, split on ",")
    source: str  # how the demuxer makes pts and dts, in one sentence
    # Stored times are rounded to whole ticks of this many (1 ms in Matroska and FLV):
    # spacing may miss a whole number of frames by this much on a clean file.
    tick_jitter: int = 1
    # Some packets carry no pts (PES headers without PTS, AVI reference frames); the
    # decode time stands in for them when gaps are judged.
    pts_may_be_missing: bool = False
    # PES times are 33-bit counters; FFmpeg unwraps them, `clock` does if it did not.
    wrap_bits: int | None = None
    # Only the last packet of each page carries a stored time (Ogg granule positions);
    # packets of one page share the page's byte position. Decode order is judged per page.
    page_times: bool = False
    # False when the container stores no times at all: FFmpeg counts frames, so timestamps
    # cannot show an interruption (raw ADTS, MP3, AMR).
    stored_times: bool = True


MODELS: tuple[TimestampModel, ...] = (
    TimestampModel(
        "isobmff", frozenset({"mov", "mp4", "m4a", "3gp", "3g2", "mj2"}),
        "sample tables (stts/ctts, or trun in fragments): every duration stored exactly, "
        "pts = dts + composition offset; edit lists shift and hide media",
    ),
    TimestampModel(
        "matroska", frozenset({"matroska", "webm"}),
        "block times in the track's timestamp scale (1 ms by default): 30 fps is 33/34 ms "
        "alternating; H.264 with B-frames has no dts on its first packets",
    ),
    TimestampModel(
        "flv", frozenset({"flv", "live_flv"}),
        "tag times in whole milliseconds, composition offsets for B-frames",
    ),
    TimestampModel(
        "mpegts", frozenset({"mpegts", "mpegtsraw"}),
        "PES header times at 90 kHz, 33 bits (wrap after 26.5 h), not on every packet; "
        "FFmpeg unwraps and guesses the missing ones",
        pts_may_be_missing=True, wrap_bits=33,
    ),
    TimestampModel(
        "mpegps", frozenset({"mpeg", "vob", "mpegvideo"}),
        "PES header times at 90 kHz, 33 bits, only where a PES starts a frame",
        pts_may_be_missing=True, wrap_bits=33,
    ),
    TimestampModel(
        "ogg", frozenset({"ogg"}),
        "granule positions at page ends; FFmpeg interpolates the other packets from "
        "codec durations (Vorbis block sizes, Opus frames)",
        page_times=True,
    ),
    TimestampModel(
        "avi", frozenset({"avi"}),
        "frame counters (video) and chunk/sample counters (audio), no pts: reference "
        "frames of a B-frame stream have only a decode time",
        pts_may_be_missing=True,
    ),
    TimestampModel(
        "raw", frozenset({"aac", "mp3", "amr", "amrnb", "amrwb", "ac3", "eac3", "flac",
                          "wav", "w64", "h264", "hevc", "m4v"}),
        "no stored times: FFmpeg counts frames (samples per frame / sample rate)",
        stored_times=False,
    ),
)  # fmt: skip

_BY_FORMAT = {f: m for m in MODELS for f in m.formats}
# An unknown container is judged as exactly as a sample table: the strictest model.
_DEFAULT = MODELS[0]


def model_for(container: str | None) -> TimestampModel:
    """The family of an FFmpeg format name such as "mov,mp4,m4a,3gp,3g2,mj2"."""
    for name in (container or "").split(","):
        if (m := _BY_FORMAT.get(name.strip())) is not None:
            return m
    return _DEFAULT


def _unwrap(x: I64, bits: int) -> I64:
    """Undo a wrap of a `bits`-bit counter in demux order (values without time stay)."""
    has = x != NOPTS
    if int(np.count_nonzero(has)) < 2:
        return x
    period = 1 << bits
    v = x[has]
    d = np.diff(v)
    step = np.where(d < -(period >> 1), period, np.where(d > (period >> 1), -period, 0))
    if not np.any(step):
        return x
    out = x.copy()
    out[has] = v + np.concatenate([[0], np.cumsum(step)]).astype(np.int64)
    return out


def _near(x: I64, ref: I64, bits: int) -> I64:
    """Each known value of `x` moved by whole periods to lie near `ref` (a packet's pts
    is within a few frames of its decode time)."""
    has = (x != NOPTS) & (ref != NOPTS)
    period = 1 << bits
    k = np.zeros(x.shape, dtype=np.int64)
    k[has] = np.floor_divide(ref[has] - x[has] + (period >> 1), period)
    return np.where(has, x + k * period, x)


def clock_of(t: StreamTimeline, m: TimestampModel) -> StreamTimeline:
    """The stream with the times its family stores, continuous (33-bit wraps undone).

    One reference per packet (its dts, else its pts) is unwrapped in demux order; pts and
    dts are then each put within half a period of it, so both are unwrapped alike even
    where one of them is missing."""
    if m.wrap_bits is None:
        return t
    ref = np.where(t.dts != NOPTS, t.dts, t.pts)
    ref_u = _unwrap(ref, m.wrap_bits)
    if ref_u is ref:
        return t
    return replace(t, pts=_near(t.pts, ref_u, m.wrap_bits), dts=_near(t.dts, ref_u, m.wrap_bits))


def gap_times(t: StreamTimeline, m: TimestampModel) -> I64:
    """Sorted times of the packets that are shown, for judging gaps. Where the family
    leaves pts out, a packet's decode time stands in: the packet exists, so nothing is
    missing there (a reordered frame's dts is a frame or two early, far below a gap)."""
    times = t.pts
    if m.pts_may_be_missing:
        times = np.where(t.pts != NOPTS, t.pts, t.dts)
    keep = (times != NOPTS) & ~t.discard
    return np.sort(times[keep])


# --- codecs ----------------------------------------------------------------------------------

# Audio codecs whose packets vary in length on a clean recording: Vorbis switches between
# short and long blocks (packets of 128, 576 and 1024 samples at 48 kHz), FLAC and PCM
# carry blocks of whatever size the writer chose. An odd spacing there is no splice.
_VARIABLE = ("vorbis", "flac", "pcm_", "speex", "alac")

# The fewest samples one packet of the codec can hold: spacing below it is no encoder's.
_SHORTEST_SAMPLES = {
    "aac": 480, "mp3": 576, "mp2": 1152, "mp1": 384, "ac3": 1536, "eac3": 256,
    "opus": 120, "vorbis": 32, "amrnb": 160, "amr_nb": 160, "amrwb": 320, "amr_wb": 320,
}  # fmt: skip

# The delay an encoder puts before the first real sample, hidden at the start by design:
# AAC priming (1024 samples, 2112 by Apple's encoder), Opus pre-skip (up to 80 ms at
# 48 kHz), MP3 encoder + decoder delay (LAME: 576 + 529), Vorbis' first pre-roll packet.
_DELAY_SAMPLES = {
    "aac": 2112, "opus": 3840, "mp3": 2304, "mp2": 1152, "vorbis": 2048, "ac3": 1536,
    "eac3": 1536,
}  # fmt: skip


def _family(codec: str | None) -> str:
    c = (codec or "").lower()
    for suffix in ("float", "_fixed", "_at"):
        c = c.removesuffix(suffix)
    return c


def variable_frames(t: StreamTimeline) -> bool:
    """Whether the codec's packets vary in duration on their own."""
    c = _family(t.codec)
    return t.kind == "audio" and any(c.startswith(v) for v in _VARIABLE)


def shortest_frame(t: StreamTimeline) -> Fraction | None:
    """Seconds of the shortest packet the audio codec can make, None when unknown."""
    n = _SHORTEST_SAMPLES.get(_family(t.codec))
    if t.kind != "audio" or n is None or not t.sample_rate:
        return None
    return Fraction(n, t.sample_rate)


def encoder_delay(t: StreamTimeline) -> Fraction:
    """Seconds at the start an audio encoder's delay explains (0 for video: its
    reordering delay shifts times, it hides no packet)."""
    n = _DELAY_SAMPLES.get(_family(t.codec))
    if t.kind != "audio" or n is None or not t.sample_rate:
        return Fraction(0)
    return Fraction(n, t.sample_rate)
