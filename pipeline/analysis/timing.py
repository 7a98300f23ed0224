"""Pure timing analysis: one file's packet timelines -> findings (AV-9, AV-3).

The probe hands over every packet's pts, dts, duration and flags as int64 arrays in each
stream's own time base. Everything here stays in those integer ticks; a threshold given
in seconds (a `Fraction`) is turned into ticks of the stream it is applied to, so no
decision compares floats. Floats appear only in `Finding.at_seconds` and in the English
`detail` sentence, for people.

Only video and audio streams carry a media clock. Data streams (timecode, GPS/telemetry,
SCTE-35 cues, timed metadata) mark events and may repeat or skip times by design, so
they count for the file's span and nothing else.

What each signal can prove, and what it cannot (the same words go into the findings):
- A gap in presentation times proves nothing was presented for that time: the camera
  stopped, or packets were removed without retiming. It cannot tell which.
- An odd spacing in an otherwise perfectly regular stream is what a stream-copy join
  leaves (`ffmpeg -c copy` concat: packets one tick apart; GOPs removed and retimed: one
  odd audio spacing, video stays regular). It cannot say what was removed or added.
- A short GOP inside a fixed keyframe cadence is what a join of two recordings leaves.
  Encoders that cut GOPs on scene changes make such GOPs too; only fixed-cadence streams
  are judged.
- A second encoder signature or changed parameter sets inside a stream proves two
  encodes were joined.
- A re-encode leaves none of these: then only metadata and encoder signatures speak.

Pure: imports numpy and `schemas` only; no I/O, no clock.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import numpy.typing as npt

from schemas.media import NOPTS, EditListEntry, Finding, ProbeResult, StreamTimeline

__all__ = ["EDITING_TOOLS", "Tolerances", "analyse"]

I64 = npt.NDArray[np.int64]
_MEDIA_KINDS = frozenset({"video", "audio"})


@dataclass(frozen=True, slots=True)
class Tolerances:
    """Every threshold of the analysis. Seconds are `Fraction`s; shares are fractions of 1.

    Spacing of a stream = differences of its sorted presentation times (packets the
    container marks as discarded and packets without pts left out).
    """

    # A stream is *regular* (constant frame rate, a camera's or an audio encoder's clock)
    # when at least this share of its spacings lies within rounding of a whole multiple
    # of the modal spacing (k x rounding for k frames).
    # Rounding = max(1 tick, mode / `rounding_div`): 29.97 fps in a 1/1000 time base
    # alternates 33 and 34 ticks; Apple's 1/600 writes 20 and 21.
    regular_share: Fraction = Fraction(9, 10)
    rounding_div: int = 50
    # Gap in a regular stream: spacing > max(gap_frames_regular x mode, gap_floor_regular).
    # Three spacings means at least two whole frames missing; the floor keeps one-packet
    # hiccups of audio (21 ms AAC frames) from being called an interruption of recording.
    gap_frames_regular: int = 3
    gap_floor_regular: Fraction = Fraction(1, 5)
    # Gap in an irregular (variable-frame-rate) stream: spacing > max(gap_factor_vfr x the
    # 90th percentile spacing, gap_floor_vfr). Phones and webcams space frames 4-304 ms
    # apart on their own; a second without a frame is more than any of them does.
    gap_factor_vfr: int = 4
    gap_quantile_vfr: int = 90
    gap_floor_vfr: Fraction = Fraction(1)
    # Fewer spacings than this: too little to learn the stream's own spacing.
    min_spacings: int = 4
    # Splice: at most this many odd spacings (not within rounding of a whole multiple of
    # the mode, and not gaps) in a regular stream, first and last spacing excepted (an
    # encoder's priming and last partial frame are odd on their own). More than this and
    # the stream is simply irregular, which proves nothing.
    splice_max_odd: int = 3
    splice_min_spacings: int = 8
    # Video capture clocks jitter: a phone writes one frame 5% late (3150 instead of 3000
    # ticks) with no edit anywhere. In video an odd spacing must miss every multiple of
    # the mode by more than this share to count; audio clocks are sample-exact and keep
    # the plain rounding. A stream-copy join (packets one tick apart) misses by ~100%.
    splice_video_jitter: Fraction = Fraction(1, 10)
    # Keyframe cadence: judged when at least `keyframe_min_intervals` keyframe intervals
    # exist and at least `keyframe_regular_share` of them equal the modal interval within
    # a tenth of it. A break is an interval shorter than the mode by more than a tenth
    # (x264 without fixed GOP moves a keyframe by a frame or so on its own).
    keyframe_min_intervals: int = 4
    keyframe_regular_share: Fraction = Fraction(3, 4)
    keyframe_slack_div: int = 10
    # dts may exceed pts by up to this many spacings: Apple writes negative composition
    # offsets (with a `cslg` shift FFmpeg does not apply) for reordered frames.
    dts_lead_spacings: int = 4
    # Edit lists: a single edit that hides at most this much stored media at the start, or
    # delays a track by at most this much, is what devices write (EDIT_LIST_OFFSET, info);
    # more, or more than one piece, or a hidden end longer than this, is EDIT_LIST.
    edit_offset_max: Fraction = Fraction(1, 2)
    # Audio hidden at the start up to this much is encoder priming (AAC: 1024 or 2112
    # samples), not content; it is not reported at all.
    priming_max: Fraction = Fraction(1, 10)
    # Declared container duration vs the span the packets cover.
    duration_tol: Fraction = Fraction(1, 2)
    # Audio vs video: starts or ends further apart than this.
    av_span_tol: Fraction = Fraction(1, 2)
    # At most this many findings of one code per stream; then one summary finding.
    max_per_stream: int = 20
    # AV-9 voice check: audio in the `voice_window` after a resume must look like speech:
    # 20 ms levels spreading at least `voice_range_db` between their 10th and 90th
    # percentile (syllables), loud enough (90th percentile over `voice_floor_dbfs`). A
    # steady tone, hum, wind or silence does not; this is not speech recognition.
    voice_window: Fraction = Fraction(10)
    voice_range_db: float = 8.0
    voice_floor_dbfs: float = -45.0
    # Resumes closer together than this (video and audio of one interruption) are one.
    voice_merge: Fraction = Fraction(1)


# --- small helpers ------------------------------------------------------------------------


def _s(x: Fraction) -> str:
    return f"{float(x):.3f}"


def _ticks_floor(seconds: Fraction, tb: Fraction) -> int:
    return math.floor(seconds / tb)


def _presented(t: StreamTimeline) -> I64:
    """Sorted presentation times of the packets that are shown."""
    keep = (t.pts != NOPTS) & ~t.discard
    return np.sort(t.pts[keep])


def _mode(values: I64) -> int:
    uniq, counts = np.unique(values, return_counts=True)
    return int(uniq[int(np.argmax(counts))])


@dataclass(frozen=True, slots=True)
class _Spacing:
    """What a stream's presentation times say of its own clock."""

    mode: int
    rounding: int
    regular: bool
    gap_ticks: int  # a spacing above this is a gap


def _spacing(deltas: I64, tb: Fraction, tol: Tolerances) -> _Spacing | None:
    if deltas.size < tol.min_spacings:
        return None
    positive = deltas[deltas > 0]
    if positive.size == 0:
        return None
    mode = _mode(positive)
    rounding = max(1, mode // tol.rounding_div)
    # One or two whole frames missing do not make a camera's clock irregular: spacings
    # near 2x or 3x the mode count as regular too. Longer holes count against regularity,
    # so a short stream with one long hole is judged by the variable-rate rule.
    k = np.clip(np.rint(deltas / mode), 1, tol.gap_frames_regular).astype(np.int64)
    near = int(np.count_nonzero(np.abs(deltas - k * mode) <= k * rounding))
    regular = near * tol.regular_share.denominator >= (
        tol.regular_share.numerator * int(deltas.size)
    )
    if regular:
        gap = max(tol.gap_frames_regular * mode, _ticks_floor(tol.gap_floor_regular, tb))
    else:
        q = int(np.percentile(positive, tol.gap_quantile_vfr, method="higher"))
        gap = max(tol.gap_factor_vfr * q, _ticks_floor(tol.gap_floor_vfr, tb))
    return _Spacing(mode, rounding, regular, gap)


def _nominal(t: StreamTimeline) -> int:
    """The most common positive spacing, else packet duration, else 0: a short stream's
    best guess at its frame spacing (no regularity judged)."""
    d = np.diff(_presented(t))
    d = d[d > 0]
    if d.size:
        return _mode(d)
    dur = t.duration[t.duration > 0]
    return _mode(dur) if dur.size else 0


class _Clock:
    """Converts a stream's ticks to seconds from the file's earliest presentation time."""

    def __init__(self, streams: Iterable[StreamTimeline]) -> None:
        starts = [Fraction(int(p[0])) * t.time_base for t in streams if (p := _presented(t)).size]
        self.origin = min(starts) if starts else Fraction(0)

    def rel(self, pts: int, tb: Fraction) -> Fraction:
        return Fraction(pts) * tb - self.origin

    def at(self, pts: int, tb: Fraction) -> float:
        return float(self.rel(pts, tb))

    def finding(self, code: str, detail: str, t: StreamTimeline, pts: int) -> Finding:
        """A finding at presentation time `pts` of stream `t`."""
        return Finding(code, detail, stream_index=t.index, pts=pts,
                       at_seconds=self.at(pts, t.time_base))


def _name(t: StreamTimeline) -> str:
    return f"{t.kind} stream {t.index}"


def _cap(found: list[Finding], tol: Tolerances, t: StreamTimeline) -> list[Finding]:
    if len(found) <= tol.max_per_stream:
        return found
    kept = found[: tol.max_per_stream]
    rest = len(found) - len(kept)
    kept.append(
        Finding(
            found[0].code,
            f"{_name(t).capitalize()} has {rest} more findings of this kind, not listed "
            "one by one.",
            stream_index=t.index,
        )
    )
    return kept


# --- gaps and splices ------------------------------------------------------------------


def _gaps_and_splices(t: StreamTimeline, clock: _Clock, tol: Tolerances) -> list[Finding]:
    p = _presented(t)
    d = np.diff(p)
    sp = _spacing(d, t.time_base, tol)
    if sp is None:
        return []
    tb = t.time_base
    gaps: list[Finding] = []
    is_gap = d > sp.gap_ticks
    for j in np.flatnonzero(is_gap).tolist():
        a, b = int(p[j]), int(p[j + 1])
        gaps.append(
            clock.finding(
                "GAP_IN_STREAM",
                f"In {_name(t)} nothing is presented for {_s(Fraction(b - a) * tb)} s after "
                f"{_s(clock.rel(a, tb))} s (pts {a}) until {_s(clock.rel(b, tb))} s "
                f"(pts {b}); its packets are normally {_s(Fraction(sp.mode) * tb)} s "
                f"({sp.mode} ticks) apart.",
                t,
                a,
            )
        )
    out = _cap(gaps, tol, t)
    if sp.regular and d.size >= tol.splice_min_spacings:
        out.extend(_splices(t, p, d, is_gap, sp, clock, tol))
    return out


def _splices(
    t: StreamTimeline,
    p: I64,
    d: I64,
    is_gap: npt.NDArray[np.bool_],
    sp: _Spacing,
    clock: _Clock,
    tol: Tolerances,
) -> list[Finding]:
    k = np.maximum(1, np.rint(d / sp.mode)).astype(np.int64)
    allow = sp.rounding
    if t.kind == "video":
        allow = max(allow, int(sp.mode * tol.splice_video_jitter))
    odd = np.abs(d - k * sp.mode) > k * allow
    odd &= ~is_gap
    odd[0] = False
    odd[-1] = False
    idx = np.flatnonzero(odd).tolist()
    if not idx or len(idx) > tol.splice_max_odd:
        return []
    # Neighbouring odd spacings (a packet one tick after its predecessor, then the rest
    # of the hole) are one join.
    runs: list[list[int]] = []
    for j in idx:
        if runs and j == runs[-1][-1] + 1:
            runs[-1].append(j)
        else:
            runs.append([j])
    tb = t.time_base
    out = []
    for run in runs:
        a = int(p[run[0]])
        spacings = ", ".join(f"{int(d[j])}" for j in run)
        out.append(
            clock.finding(
                "SPLICE_IRREGULAR_DURATION",
                f"In {_name(t)}, perfectly regular at {sp.mode} ticks "
                f"({_s(Fraction(sp.mode) * tb)} s), the packets after "
                f"{_s(clock.rel(a, tb))} s (pts {a}) are spaced {spacings} ticks apart.",
                t,
                a,
            )
        )
    return out


# --- decode order -------------------------------------------------------------------------


def _decode_order(t: StreamTimeline, clock: _Clock, tol: Tolerances) -> list[Finding]:
    tb = t.time_base
    has = t.dts != NOPTS
    dts = t.dts[has]
    pos = np.flatnonzero(has)
    out: list[Finding] = []
    if dts.size >= 2:
        dd = np.diff(dts)
        back: list[Finding] = []
        rep: list[Finding] = []
        for j in np.flatnonzero(dd < 0).tolist():
            a, b = int(dts[j]), int(dts[j + 1])
            back.append(
                clock.finding(
                    "TS_BACKWARDS",
                    f"In {_name(t)} packet {int(pos[j + 1])} is decoded at "
                    f"{_s(clock.rel(b, tb))} s (dts {b}), {_s(Fraction(a - b) * tb)} s "
                    f"before the packet ahead of it (dts {a}).",
                    t,
                    b,
                )
            )
        for j in np.flatnonzero(dd == 0).tolist():
            a = int(dts[j])
            rep.append(
                clock.finding(
                    "TS_REPEATED",
                    f"In {_name(t)} packets {int(pos[j])} and {int(pos[j + 1])} share the "
                    f"decode time {_s(clock.rel(a, tb))} s (dts {a}).",
                    t,
                    a,
                )
            )
        out += _cap(back, tol, t) + _cap(rep, tol, t)
    both = has & (t.pts != NOPTS)
    if np.any(both):
        allowance = tol.dts_lead_spacings * _nominal(t)
        lead = t.dts - t.pts
        late: list[Finding] = []
        for j in np.flatnonzero(both & (lead > allowance)).tolist():
            pt, dt_ = int(t.pts[j]), int(t.dts[j])
            late.append(
                clock.finding(
                    "DTS_AFTER_PTS",
                    f"In {_name(t)} packet {j} is decoded at dts {dt_}, "
                    f"{_s(Fraction(dt_ - pt) * tb)} s after it is due on screen at "
                    f"{_s(clock.rel(pt, tb))} s (pts {pt}).",
                    t,
                    pt,
                )
            )
        out += _cap(late, tol, t)
    return out


# --- keyframes and coding parameters ------------------------------------------------------


def _keyframes(t: StreamTimeline, clock: _Clock, tol: Tolerances) -> list[Finding]:
    sel = t.keyframe & ~t.discard & (t.pts != NOPTS)
    k = np.sort(t.pts[sel])
    iv = np.diff(k)
    if iv.size < tol.keyframe_min_intervals:
        return []
    mode = _mode(iv)
    slack = max(1, mode // tol.keyframe_slack_div)
    near = int(np.count_nonzero(np.abs(iv - mode) <= slack))
    share = tol.keyframe_regular_share
    if near * share.denominator < share.numerator * int(iv.size) or mode <= 0:
        return []
    tb = t.time_base
    out = []
    for j in np.flatnonzero(iv < mode - slack).tolist():
        a, b = int(k[j]), int(k[j + 1])
        out.append(
            clock.finding(
                "KEYFRAME_INTERVAL_BREAK",
                f"In {_name(t)} keyframes come every {_s(Fraction(mode) * tb)} s, but the "
                f"one at {_s(clock.rel(a, tb))} s (pts {a}) is followed by the next after "
                f"only {_s(Fraction(b - a) * tb)} s (pts {b}).",
                t,
                a,
            )
        )
    return _cap(out, tol, t)


def _pts_at(t: StreamTimeline, packet: int) -> int | None:
    if 0 <= packet < t.packet_count and int(t.pts[packet]) != NOPTS:
        return int(t.pts[packet])
    return None


def _params(t: StreamTimeline, clock: _Clock, tol: Tolerances) -> list[Finding]:
    tb = t.time_base
    out: list[Finding] = []

    def finding(packet: int, what: str) -> Finding:
        pts = _pts_at(t, packet)
        at = clock.at(pts, tb) if pts is not None else None
        when = f" at {_s(clock.rel(pts, tb))} s (pts {pts})" if pts is not None else ""
        return Finding(
            "CODEC_PARAMS_CHANGED",
            f"In {_name(t)} {what} at packet {packet}{when}.",
            stream_index=t.index,
            pts=pts,
            at_seconds=at,
        )

    for packet, _blob in t.param_sets[1:]:
        out.append(finding(packet, "the coding parameter sets change"))
    sigs = t.encoder_signatures
    keyframes = int(np.count_nonzero(t.keyframe))
    # Encoders that stamp every keyframe repeat their signature by design; then only a
    # different text means another encode. x264 and x265 stamp the first picture only.
    repeats = len(sigs) * 10 >= keyframes * 9 and keyframes > 1
    for (_p0, prev), (packet, text) in itertools.pairwise(sigs):
        if text != prev:
            out.append(finding(packet, f"a different encoder signature appears ({text[:60]!r})"))
        elif not repeats:
            out.append(finding(packet, f"the encoder signature appears again ({text[:60]!r})"))
    return _cap(out, tol, t)


# --- edit lists ------------------------------------------------------------------------------


def _edit_lists(result: ProbeResult, clock: _Clock, tol: Tolerances) -> list[Finding]:
    by_track: dict[int, list[EditListEntry]] = defaultdict(list)
    for e in result.edit_lists:
        by_track[e.track_index].append(e)
    streams = {t.index: t for t in result.streams}
    out: list[Finding] = []
    for track, entries in sorted(by_track.items()):
        t = streams.get(track)
        if t is None or t.kind not in _MEDIA_KINDS:
            continue
        f = _one_edit_list(t, entries, clock, tol)
        if f is not None:
            out.append(f)
    return out


def _one_edit_list(
    t: StreamTimeline, entries: list[EditListEntry], clock: _Clock, tol: Tolerances
) -> Finding | None:
    tb = t.time_base
    pieces = [e for e in entries if e.media_time >= 0]
    delay = sum(
        (Fraction(e.segment_duration, e.movie_timescale or 1) for e in entries
         if e.media_time < 0),
        Fraction(0),
    )  # fmt: skip
    # What the demuxer did with the edit: stored media before the presentation start
    # comes out with negative pts; media cut off at the end comes out discarded.
    has_pts = t.pts != NOPTS
    lead = Fraction(0)
    if np.any(has_pts):
        lowest = int(t.pts[has_pts].min())
        lead = Fraction(-lowest) * tb if lowest < 0 else Fraction(0)
    tail = Fraction(0)
    shown = has_pts & ~t.discard
    if np.any(shown):
        last_shown = int(t.pts[shown].max())
        late = has_pts & t.discard & (t.pts > last_shown)
        if np.any(late):
            dur = np.where(t.duration[late] > 0, t.duration[late], 0)
            tail = Fraction(int((t.pts[late] + dur).max()) - last_shown) * tb
    if t.kind == "audio" and lead <= tol.priming_max:
        lead = Fraction(0)  # encoder priming, not content
    parts = []
    if len(pieces) > 1:
        parts.append(f"plays {len(pieces)} separate pieces of the stored media")
    if delay:
        parts.append(f"delays it by {_s(delay)} s with an empty edit")
    if lead:
        parts.append(f"hides the first {_s(lead)} s of stored media")
    if tail > tol.edit_offset_max:
        parts.append(f"hides the last {_s(tail)} s of stored media")
    if not parts:
        return None
    big = (
        len(pieces) > 1
        or delay > tol.edit_offset_max
        or lead > tol.edit_offset_max
        or tail > tol.edit_offset_max
    )
    p = _presented(t)
    first = int(p[0]) if p.size else None
    raw = "; ".join(
        f"media_time {e.media_time} of {e.media_timescale}, "
        f"segment {e.segment_duration} of {e.movie_timescale}"
        for e in entries
    )
    return Finding(
        "EDIT_LIST" if big else "EDIT_LIST_OFFSET",
        f"The edit list of {_name(t)} " + " and ".join(parts) + f" (entries: {raw}).",
        stream_index=t.index,
        pts=first,
        at_seconds=clock.at(first, tb) if first is not None else None,
    )


# --- spans: container duration, audio vs video ------------------------------------------------


def _span(t: StreamTimeline) -> tuple[Fraction, Fraction] | None:
    keep = (t.pts != NOPTS) & ~t.discard
    if not np.any(keep):
        return None
    pts = t.pts[keep]
    dur = np.where(t.duration[keep] > 0, t.duration[keep], 0)
    return Fraction(int(pts.min())) * t.time_base, Fraction(int((pts + dur).max())) * t.time_base


def _duration(result: ProbeResult, tol: Tolerances) -> list[Finding]:
    if result.duration is None or result.truncated:
        return []
    spans = [s for t in result.streams if (s := _span(t)) is not None]
    if not spans:
        return []
    start = min(a for a, _ in spans)
    end = max(b for _, b in spans)
    covered = end - start
    if abs(result.duration - covered) <= tol.duration_tol:
        return []
    return [
        Finding(
            "DURATION_MISMATCH",
            f"The container declares {_s(result.duration)} s but its packets cover "
            f"{_s(covered)} s (from {_s(start)} s to {_s(end)} s).",
        )
    ]


def _first_of(result: ProbeResult, kind: str) -> StreamTimeline | None:
    for t in result.streams:
        if t.kind == kind and int(np.count_nonzero((t.pts != NOPTS) & ~t.discard)) > 1:
            return t
    return None


def _drift(result: ProbeResult, clock: _Clock, tol: Tolerances) -> list[Finding]:
    v, a = _first_of(result, "video"), _first_of(result, "audio")
    if v is None or a is None:
        return []
    vs, a_s = _span(v), _span(a)
    if vs is None or a_s is None:
        return []
    d_start = a_s[0] - vs[0]
    d_end = a_s[1] - vs[1]
    if abs(d_start) <= tol.av_span_tol and abs(d_end) <= tol.av_span_tol:
        return []
    o = clock.origin
    return [
        Finding(
            "AV_DRIFT",
            f"Video stream {v.index} covers {_s(vs[0] - o)}-{_s(vs[1] - o)} s but audio "
            f"stream {a.index} covers {_s(a_s[0] - o)}-{_s(a_s[1] - o)} s (starts "
            f"{_s(d_start)} s apart, ends {_s(d_end)} s apart).",
            stream_index=a.index,
        )
    ]


# --- damage -------------------------------------------------------------------------------


def _damage(result: ProbeResult) -> list[Finding]:
    out = []
    if result.error is not None:
        out.append(Finding("MEDIA_UNREADABLE", f"The file cannot be opened: {result.error}."))
    if result.truncated is not None:
        spans = [s for t in result.streams if (s := _span(t)) is not None]
        covered = (max(b for _, b in spans) - min(a for a, _ in spans)) if spans else Fraction(0)
        declared = (
            f"; it declares {_s(result.duration)} s and its packets cover {_s(covered)} s"
            if result.duration is not None
            else ""
        )
        out.append(
            Finding("MEDIA_TRUNCATED", f"The file is cut short: {result.truncated}{declared}.")
        )
    if result.demux_errors:
        shown = "; ".join(result.demux_errors[:3])
        more = f" (and {len(result.demux_errors) - 3} more)" if len(result.demux_errors) > 3 else ""
        out.append(
            Finding(
                "MEDIA_CORRUPT",
                f"The demuxer reported {len(result.demux_errors)} error(s) while reading "
                f"packets: {shown}{more}.",
            )
        )
    return out


# --- editing tools in tags --------------------------------------------------------------------

# Tag keys that name the software that wrote or handled a file.
_TOOL_KEYS = re.compile(
    r"encoder|handler_name|comment|software|encoded_by|encoding_tool|writing_application|"
    r"creation_tool|tool|description",
    re.IGNORECASE,
)
# Tools that edit, cut, convert or re-mux video. Cameras' own names (GoPro AVC encoder,
# Apple's "Core Media Video" handler, Android's "VideoHandle") are not here: those are
# what the recording device itself writes.
EDITING_TOOLS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(rx, re.IGNORECASE))
    for name, rx in (
        ("FFmpeg (libavformat re-mux)", r"\blavf\d"),
        ("FFmpeg (libavcodec encode)", r"\blavc\d"),
        ("FFmpeg", r"\bffmpeg\b"),
        ("HandBrake", r"handbrake"),
        ("Adobe Premiere / Media Encoder", r"premiere|adobe media encoder|after effects"),
        ("iMovie", r"imovie"),
        ("Final Cut", r"final ?cut"),
        ("CapCut / 剪映", r"capcut|剪映|jianying"),
        ("Kdenlive", r"kdenlive"),
        ("Shotcut", r"shotcut"),
        ("DaVinci Resolve", r"davinci|blackmagic design"),
        ("GPAC / MP4Box", r"\bgpac\b|mp4box"),
        ("mp4parser / isoparser", r"mp4parser|isoparser|isoviewer"),
        ("Avidemux", r"avidemux"),
        ("OpenShot", r"openshot"),
        ("Filmora / Wondershare", r"filmora|wondershare"),
        ("Movavi", r"movavi"),
        ("Camtasia", r"camtasia"),
        ("Vegas", r"vegas pro|sony vegas|magix vegas"),
        ("MKVToolNix", r"mkvmerge|mkvtoolnix"),
        ("L-SMASH", r"l-smash"),
        ("Bento4", r"bento4"),
        ("VLC", r"\bvlc\b|libvlc|videolan"),
        ("Clipchamp", r"clipchamp"),
        ("InShot", r"inshot"),
        ("GoPro Quik", r"\bquik\b"),
        ("Format Factory / 格式工厂", r"format ?factory|格式工厂"),
        ("爱剪辑 / 快剪辑 / 必剪", r"爱剪辑|快剪辑|必剪"),
        ("XMedia Recode", r"xmedia ?recode"),
    )
)


def _tools(result: ProbeResult) -> list[Finding]:
    scopes: list[tuple[str, int | None, dict[str, str]]] = [("container", None, result.tags)]
    scopes += [(_name(t), t.index, t.tags) for t in result.streams]
    out = []
    seen: set[tuple[str, str, str]] = set()
    for where, index, tags in scopes:
        for key, value in sorted(tags.items()):
            if not _TOOL_KEYS.search(key):
                continue
            for tool, rx in EDITING_TOOLS:
                if rx.search(value) and (tool, key, value) not in seen:
                    seen.add((tool, key, value))
                    out.append(
                        Finding(
                            "EDITING_TOOL",
                            f"The {where} tag {key}={value.strip()!r} names {tool}, software "
                            "that edits, converts or re-muxes video.",
                            stream_index=index,
                        )
                    )
                    break
    return out


# --- entry point ------------------------------------------------------------------------------


def analyse(result: ProbeResult, tol: Tolerances = Tolerances()) -> list[Finding]:
    """Every timing, edit, damage and provenance finding of one probed file.

    Order: damage, per media stream (gaps and splices, decode order, keyframes, coding
    parameters), edit lists, container duration, audio/video span, editing-tool tags.
    Each finding carries the stream, its pts in that stream's ticks and seconds from the
    file's earliest presentation time. Pure; never raises for odd timelines.
    """
    out = _damage(result)
    clock = _Clock(result.streams)
    for t in result.streams:
        if t.kind not in _MEDIA_KINDS or t.packet_count == 0:
            continue
        out += _gaps_and_splices(t, clock, tol)
        out += _decode_order(t, clock, tol)
        if t.kind == "video":
            out += _keyframes(t, clock, tol)
            out += _params(t, clock, tol)
    out += _edit_lists(result, clock, tol)
    out += _duration(result, tol)
    out += _drift(result, clock, tol)
    out += _tools(result)
    return out


# --- AV-9: spoken explanation after a resume ---------------------------------------------


@dataclass(frozen=True, slots=True)
class Resume:
    """Where recording resumed after an interruption."""

    abs_seconds: Fraction  # presentation time in the file (for seeking)
    at_seconds: float  # from the file's earliest presentation time (for people)


def resume_points(
    result: ProbeResult, findings: Sequence[Finding], tol: Tolerances = Tolerances()
) -> list[Resume]:
    """The resume after every GAP_IN_STREAM, one per interruption (streams merged). Pure."""
    clock = _Clock(result.streams)
    by_index = {t.index: t for t in result.streams}
    times: list[Fraction] = []
    for f in findings:
        if f.code != "GAP_IN_STREAM" or f.stream_index is None or f.pts is None:
            continue
        t = by_index.get(f.stream_index)
        if t is None:
            continue
        p = _presented(t)
        later = p[p > f.pts]
        if later.size:
            times.append(Fraction(int(later[0])) * t.time_base)
    out: list[Resume] = []
    for abs_s in sorted(times):
        if out and abs_s - out[-1].abs_seconds <= tol.voice_merge:
            continue
        out.append(Resume(abs_s, float(abs_s - clock.origin)))
    return out


def speech_like(dbfs: npt.NDArray[np.float64], tol: Tolerances = Tolerances()) -> tuple[bool, str]:
    """Whether short-time levels look like speech, and why, in words. Pure."""
    if dbfs.size < 10:
        return False, "less than 0.2 s of audio follows the resume"
    p10, p90 = (float(x) for x in np.percentile(dbfs, [10, 90]))
    spread = p90 - p10
    if p90 < tol.voice_floor_dbfs:
        return False, f"the audio is nearly silent (90th percentile {p90:.1f} dBFS)"
    if spread < tol.voice_range_db:
        return False, (
            f"the audio level is steady ({spread:.1f} dB between quiet and loud moments, "
            f"speech needs at least {tol.voice_range_db:.0f} dB): tone, hum or noise only"
        )
    return True, f"speech-like level changes of {spread:.1f} dB"
