"""Timing analysis of one file's packet timelines, and `analyse`, every check of a file.

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
- Audio and video covering different spans (AV_DRIFT) shows one was cut or shifted, or
  a device started one late; it cannot say which.
- A re-encode leaves none of these: then only metadata and encoder signatures speak
  (`provenance`).

Times are first read as the container family stores them (`models`: MP4 sample tables
exact, Matroska/FLV whole milliseconds, MPEG-TS/PS 33-bit PES times not on every packet,
Ogg one time per page, AVI frame counters, raw streams counted frames), and Vorbis-like
codecs whose packets vary on their own are not judged for splices.

The other concerns have their own modules: `spacing` (impossible spacing, TS_REWRITTEN),
`container` (edit lists, hidden media, declared duration),
`provenance` (editing tools, encoder signatures, parameter sets), `damage` (unreadable,
truncated, corrupt) and `voice` (the AV-9 check after a resume); `analyse` here runs them
all in one fixed order. Pure: imports numpy and `schemas` only; no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction

import numpy as np
import numpy.typing as npt

from pipeline.analysis.container import find_duration_mismatch, find_edit_lists
from pipeline.analysis.damage import find_damage
from pipeline.analysis.models import (
    TimestampModel,
    clock_of,
    gap_times,
    model_for,
    variable_frames,
)
from pipeline.analysis.provenance import (
    EDITING_TOOLS,
    find_editing_tools,
    find_parameter_changes,
)
from pipeline.analysis.spacing import find_impossible_spacing
from pipeline.analysis.timeline import (
    I64,
    MEDIA_KINDS,
    Clock,
    cap,
    modal,
    nominal,
    presented,
    secs,
    span,
    stream_name,
    ticks_floor,
)
from pipeline.analysis.tolerances import Tolerances
from pipeline.analysis.voice import Resume, resume_points, speech_like
from schemas.media import NOPTS, Finding, ProbeResult, StreamTimeline

# `Tolerances`, `EDITING_TOOLS`, `Resume`, `resume_points` and `speech_like` are re-exported:
# callers import them from here (ingest, the tests); they live in the modules named above.
__all__ = [
    "EDITING_TOOLS",
    "Resume",
    "Tolerances",
    "analyse",
    "find_decode_order",
    "find_drift",
    "find_gaps_and_splices",
    "find_keyframe_breaks",
    "resume_points",
    "speech_like",
]

_DEFAULT = Tolerances()


# --- gaps and splices ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Spacing:
    """What a stream's presentation times say of its own clock."""

    mode: int
    rounding: int
    regular: bool
    gap_ticks: int  # a spacing above this is a gap
    jitter: int  # ticks the stored times are rounded to (the model's tick_jitter)


def _spacing(deltas: I64, tb: Fraction, tol: Tolerances, jitter: int) -> _Spacing | None:
    if deltas.size < tol.min_spacings:
        return None
    positive = deltas[deltas > 0]
    if positive.size == 0:
        return None
    mode = modal(positive)
    rounding = max(jitter, mode // tol.rounding_div)
    # One or two whole frames missing do not make a camera's clock irregular: spacings
    # near 2x or 3x the mode count as regular too. Longer holes count against regularity,
    # so a short stream with one long hole is judged by the variable-rate rule.
    k = np.clip(np.rint(deltas / mode), 1, tol.gap_frames_regular).astype(np.int64)
    near = int(np.count_nonzero(np.abs(deltas - k * mode) <= k * rounding))
    regular = near * tol.regular_share.denominator >= (
        tol.regular_share.numerator * int(deltas.size)
    )
    if regular:
        gap = max(tol.gap_frames_regular * mode, ticks_floor(tol.gap_floor_regular, tb))
    else:
        q = int(np.percentile(positive, tol.gap_quantile_vfr, method="higher"))
        gap = max(tol.gap_factor_vfr * q, ticks_floor(tol.gap_floor_vfr, tb))
    return _Spacing(mode, rounding, regular, gap, jitter)


def find_gaps_and_splices(
    t: StreamTimeline, clock: Clock, tol: Tolerances, model: TimestampModel | None = None
) -> list[Finding]:
    """Gaps judged on the times the family stores (decode times standing in for missing
    pts); splices on presentation times alone, in streams with a fixed frame size."""
    m = model or model_for(None)
    p = presented(t)
    d = np.diff(p)
    sp = _spacing(d, t.time_base, tol, m.tick_jitter)
    if sp is None:
        return []
    tb = t.time_base
    g = gap_times(t, m) if m.pts_may_be_missing else p
    gd = np.diff(g) if g is not p else d
    gaps: list[Finding] = []
    for j in np.flatnonzero(gd > sp.gap_ticks).tolist():
        a, b = int(g[j]), int(g[j + 1])
        gaps.append(
            clock.finding(
                "GAP_IN_STREAM",
                f"In {stream_name(t)} nothing is presented for "
                f"{secs(Fraction(b - a) * tb)} s after "
                f"{secs(clock.rel(a, tb))} s (pts {a}) until {secs(clock.rel(b, tb))} s "
                f"(pts {b}); its packets are normally {secs(Fraction(sp.mode) * tb)} s "
                f"({sp.mode} ticks) apart.",
                t,
                a,
            )
        )
    out = cap(gaps, tol, t)
    if sp.regular and d.size >= tol.splice_min_spacings and not variable_frames(t):
        out.extend(_splices(t, p, d, d > sp.gap_ticks, sp, clock, tol))
    return out


def _splices(
    t: StreamTimeline,
    p: I64,
    d: I64,
    is_gap: npt.NDArray[np.bool_],
    sp: _Spacing,
    clock: Clock,
    tol: Tolerances,
) -> list[Finding]:
    k = np.maximum(1, np.rint(d / sp.mode)).astype(np.int64)
    miss = np.abs(d - k * sp.mode)
    odd = miss > k * sp.rounding
    if t.kind == "video":
        # A capture clock's jitter is a share of the frame, and the stored times are then
        # rounded to whole ticks: at 60 fps in milliseconds (16.7 ms, mode 17) a frame a
        # tenth early and rounded down is 15 ms after its predecessor, 2 ticks off, where
        # a tenth of the mode alone (1.7) would call it odd. In integers:
        # miss > k * (jitter + mode * share).
        share = tol.splice_video_jitter
        odd &= miss * share.denominator > k * (
            sp.jitter * share.denominator + sp.mode * share.numerator
        )
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
                f"In {stream_name(t)}, perfectly regular at {sp.mode} ticks "
                f"({secs(Fraction(sp.mode) * tb)} s), the packets after "
                f"{secs(clock.rel(a, tb))} s (pts {a}) are spaced {spacings} ticks apart.",
                t,
                a,
            )
        )
    return out



# --- decode order -------------------------------------------------------------------------


def _page_ends(t: StreamTimeline) -> npt.NDArray[np.bool_]:
    """The packets that end an Ogg page (the next packet starts another page, by byte
    position): only their times are stored, the others are interpolated."""
    ends = np.ones(t.packet_count, dtype=np.bool_)
    ends[:-1] = (t.pos[1:] != t.pos[:-1]) | (t.pos[:-1] < 0)
    return ends


def find_decode_order(
    t: StreamTimeline, clock: Clock, tol: Tolerances, model: TimestampModel | None = None
) -> list[Finding]:
    """Decode times that run backwards or repeat; in Ogg only page times are judged."""
    tb = t.time_base
    has = t.dts != NOPTS
    if model is not None and model.page_times:
        has &= _page_ends(t)
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
                    f"In {stream_name(t)} packet {int(pos[j + 1])} is decoded at "
                    f"{secs(clock.rel(b, tb))} s (dts {b}), {secs(Fraction(a - b) * tb)} s "
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
                    f"In {stream_name(t)} packets {int(pos[j])} and {int(pos[j + 1])} share the "
                    f"decode time {secs(clock.rel(a, tb))} s (dts {a}).",
                    t,
                    a,
                )
            )
        out += cap(back, tol, t) + cap(rep, tol, t)
    both = has & (t.pts != NOPTS)
    if np.any(both):
        allowance = tol.dts_lead_spacings * nominal(t)
        lead = t.dts - t.pts
        late: list[Finding] = []
        for j in np.flatnonzero(both & (lead > allowance)).tolist():
            pt, dt_ = int(t.pts[j]), int(t.dts[j])
            late.append(
                clock.finding(
                    "DTS_AFTER_PTS",
                    f"In {stream_name(t)} packet {j} is decoded at dts {dt_}, "
                    f"{secs(Fraction(dt_ - pt) * tb)} s after it is due on screen at "
                    f"{secs(clock.rel(pt, tb))} s (pts {pt}).",
                    t,
                    pt,
                )
            )
        out += cap(late, tol, t)
    return out



# --- keyframes ------------------------------------------------------------------------------


def find_keyframe_breaks(t: StreamTimeline, clock: Clock, tol: Tolerances) -> list[Finding]:
    sel = t.keyframe & ~t.discard & (t.pts != NOPTS)
    k = np.sort(t.pts[sel])
    iv = np.diff(k)
    if iv.size < tol.keyframe_min_intervals:
        return []
    mode = modal(iv)
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
                f"In {stream_name(t)} keyframes come every {secs(Fraction(mode) * tb)} s, but the "
                f"one at {secs(clock.rel(a, tb))} s (pts {a}) is followed by the next after "
                f"only {secs(Fraction(b - a) * tb)} s (pts {b}).",
                t,
                a,
            )
        )
    return cap(out, tol, t)



# --- audio vs video ---------------------------------------------------------------------------


def _first_of(result: ProbeResult, kind: str) -> StreamTimeline | None:
    for t in result.streams:
        if t.kind == kind and int(np.count_nonzero((t.pts != NOPTS) & ~t.discard)) > 1:
            return t
    return None


def find_drift(result: ProbeResult, clock: Clock, tol: Tolerances) -> list[Finding]:
    v, a = _first_of(result, "video"), _first_of(result, "audio")
    if v is None or a is None:
        return []
    vs, a_s = span(v), span(a)
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
            f"Video stream {v.index} covers {secs(vs[0] - o)}-{secs(vs[1] - o)} s but audio "
            f"stream {a.index} covers {secs(a_s[0] - o)}-{secs(a_s[1] - o)} s (starts "
            f"{secs(d_start)} s apart, ends {secs(d_end)} s apart).",
            stream_index=a.index,
        )
    ]



# --- entry point ------------------------------------------------------------------------------


def analyse(result: ProbeResult, tol: Tolerances = _DEFAULT) -> list[Finding]:
    """Every timing, edit, damage and provenance finding of one probed file.

    Each stream is first read as its container family stores time (`models`: 33-bit PES
    times unwrapped, decode times standing in for missing pts, Ogg page times, Vorbis
    block sizes). Order: damage, per media stream (gaps and splices, impossible spacing,
    decode order, keyframes, coding parameters), edit lists and hidden media, container
    duration, audio/video span, editing-tool tags.
    Each finding carries the stream, its pts in that stream's ticks and seconds from the
    file's earliest presentation time. Pure; never raises for odd timelines.
    """
    out = find_damage(result)
    model = model_for(result.container)
    result = replace(result, streams=tuple(clock_of(t, model) for t in result.streams))
    clock = Clock(result.streams)
    for t in result.streams:
        if t.kind not in MEDIA_KINDS or t.packet_count == 0:
            continue
        out += find_gaps_and_splices(t, clock, tol, model)
        out += find_impossible_spacing(t, clock, tol)
        out += find_decode_order(t, clock, tol, model)
        if t.kind == "video":
            out += find_keyframe_breaks(t, clock, tol)
            out += find_parameter_changes(t, clock, tol)
    out += find_edit_lists(result, clock, tol)
    out += find_duration_mismatch(result, tol)
    out += find_drift(result, clock, tol)
    out += find_editing_tools(result)
    return out
