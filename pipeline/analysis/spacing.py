"""Impossible spacing: packets presented closer together than any capture clock makes them.

A camera delivers frames at its frame rate and an audio encoder packets of its frame
size; neither can deliver a run of them a tick apart. A muxer can: FFmpeg's concat
demuxer, joining with an `inpoint` inside a long GOP, sends the frames from the keyframe
before the cut with times before the join, and the muxer raises each decode time that
does not increase to the previous one plus one tick, which leaves a hundred frames
within a few milliseconds. So a run of spacings far below the stream's own nominal
spacing (a quarter of it, in a stream whose other spacings are regular), or below a
physical ceiling (video above 300 frames a second; audio packets shorter than the
codec's smallest frame), is TS_REWRITTEN, placed at the run's first packet, with the span
it covers.

What it proves: the timestamps of that run were written by software, not by the device's
clock (a join, a cut, a re-mux that fixed up times). It cannot say what the frames show
or what was removed. Variable-block audio (Vorbis, FLAC, PCM) has no nominal spacing:
only the codec's smallest frame is judged there. Pure: numpy and `schemas` only.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import numpy.typing as npt

from pipeline.analysis.models import shortest_frame, variable_frames
from pipeline.analysis.timeline import I64, Clock, modal, presented, secs, stream_name
from pipeline.analysis.tolerances import Tolerances
from schemas.media import Finding, StreamTimeline

__all__ = ["find_impossible_spacing"]


def _below(d: I64, seconds: Fraction, tb: Fraction) -> npt.NDArray[np.bool_]:
    """d ticks of `tb` shorter than `seconds`, in integers: d * tb < seconds."""
    q = seconds / tb
    return d * q.denominator < q.numerator


def _length(x: Fraction) -> str:
    """A duration for people: seconds to three decimals, or, below a millisecond (which
    three decimals of a second show as 0.000), milliseconds to two significant digits."""
    if 0 < x < Fraction(1, 1000):
        return f"{float(x * 1000):#.2g} ms"
    return f"{secs(x)} s"


def _floor(t: StreamTimeline, tol: Tolerances) -> Fraction | None:
    """Spacing below which no capture clock delivers packets of this stream, if known:
    the video frame-rate ceiling, or `rewritten_share` of the codec's smallest audio frame
    (a 90 kHz PES time rounds a 1152-sample MP2 frame to a hair under its length)."""
    if t.kind == "video":
        return Fraction(1, tol.rewritten_max_fps)
    frame = shortest_frame(t)
    return frame * tol.rewritten_share if frame is not None else None


def _nominal(d: I64, floor: Fraction | None, t: StreamTimeline, tol: Tolerances) -> int | None:
    """The stream's own spacing, where its clock is regular: the mode of the spacings a
    clock can make, if at least `regular_share` of those lie near a whole multiple."""
    if variable_frames(t):
        return None
    ok = d[d > 0]
    if floor is not None:
        ok = ok[~_below(ok, floor, t.time_base)]
    if ok.size < tol.min_spacings:
        return None
    mode = modal(ok)
    ok = ok[ok * tol.rewritten_share.denominator >= mode * tol.rewritten_share.numerator]
    rounding = max(1, mode // tol.rounding_div)
    allow = max(rounding, int(mode * tol.splice_video_jitter)) if t.kind == "video" else rounding
    k = np.maximum(1, np.rint(ok / mode)).astype(np.int64)
    near = int(np.count_nonzero(np.abs(ok - k * mode) <= k * allow))
    share = tol.regular_share
    return mode if near * share.denominator >= share.numerator * int(ok.size) else None


def _runs(tiny: npt.NDArray[np.bool_], min_run: int) -> list[tuple[int, int]]:
    """(first, last) spacing index of each run of at least `min_run` tiny spacings in a row."""
    edges = np.diff(np.concatenate([[0], tiny.astype(np.int8), [0]]))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1) - 1
    return [
        (int(a), int(b))
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True)
        if b - a + 1 >= min_run
    ]


def find_impossible_spacing(t: StreamTimeline, clock: Clock, tol: Tolerances) -> list[Finding]:
    p = presented(t)
    d = np.diff(p)
    if d.size < tol.rewritten_min_run:
        return []
    tb = t.time_base
    floor = _floor(t, tol)
    tiny = np.zeros(d.size, dtype=np.bool_)
    if floor is not None:
        tiny |= _below(d, floor, tb)
    mode = _nominal(d, floor, t, tol)
    if mode is not None:
        tiny |= d * tol.rewritten_share.denominator < mode * tol.rewritten_share.numerator
    out = []
    for first, last in _runs(tiny, tol.rewritten_min_run):
        a, b = int(p[first]), int(p[last + 1])
        packets = last + 2 - first
        if mode is not None:
            normal = f"its packets are otherwise {_length(Fraction(mode) * tb)} ({mode} ticks) "
            normal += "apart"
        else:
            limit = _length(floor or Fraction(0))
            normal = f"no {t.kind} clock spaces packets less than {limit} apart"
        out.append(
            clock.finding(
                "TS_REWRITTEN",
                f"In {stream_name(t)} {packets} packets from {secs(clock.rel(a, tb))} s "
                f"(pts {a}) to {secs(clock.rel(b, tb))} s (pts {b}) are presented within "
                f"{_length(Fraction(b - a) * tb)}, each closer to the one before than any "
                f"capture clock spaces them ({normal}): the times were written by a muxer.",
                t,
                a,
            )
        )
    return out
