"""Stream-copy edits of a recording, as a careful forger makes them, and the muxer they share.

`drop_packets`, `drop_and_retime` and `splice` copy packets without re-encoding and keep
the source's tags, writing no tool tag of their own, so the tests show what the
timestamps alone reveal (see `pipeline.analysis.timing`). Each is deterministic. The
muxer settings (`open_output`: bit-exact, MP4 `mdta` keys) and the packet helpers are
used by `synth`'s writers too, so every file from the demo is muxed the same way. May
import av (a driver-layer media writer).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

__all__ = ["drop_and_retime", "drop_packets", "splice"]

PathLike = str | os.PathLike[str]

MUXER_OPTIONS = {"movflags": "use_metadata_tags", "fflags": "+bitexact"}


def open_output(path: PathLike, tags: dict[str, str], fmt: str | None = None) -> Any:
    """An output container muxed bit-exact, with `tags` written as MP4 `mdta` keys."""
    out = av.open(os.fspath(path), "w", format=fmt, container_options=dict(MUXER_OPTIONS))
    for k, v in tags.items():
        out.metadata[k] = v
    return out


def as_seconds(value: float | Fraction | int) -> Fraction:
    """A non-negative duration given in seconds, as an exact `Fraction`."""
    f = Fraction(value).limit_denominator(1_000_000)
    if f < 0:
        raise ValueError(f"negative duration {value}")
    return f


def packets(inp: Any) -> Iterator[Any]:
    """Every packet of `inp` in file order, without the flush packets."""
    for p in inp.demux():
        if p.dts is None and p.pts is None:
            continue  # PyAV's empty flush packet at the end of each stream
        yield p


def copy_tags(inp: Any) -> dict[str, str]:
    """The source's container tags for a copy, without FFmpeg's `encoder` tag."""
    return {str(k): str(v) for k, v in inp.metadata.items() if k != "encoder"}


def _time(p: Any) -> Fraction:
    return Fraction(p.pts if p.pts is not None else p.dts) * Fraction(p.time_base)


# --- the edits ------------------------------------------------------------------------


def drop_packets(src: PathLike, dst: PathLike, from_s: float, to_s: float) -> Path:
    """Stream-copy `src` to `dst` without the packets presented in [from_s, to_s) of
    every stream, and without retiming: the timestamps keep a hole where they were.
    (Video after the hole up to the next keyframe no longer decodes cleanly.)"""
    lo, hi = as_seconds(from_s), as_seconds(to_s)
    with av.open(os.fspath(src)) as inp:
        out = open_output(dst, copy_tags(inp))
        try:
            omap = {s.index: out.add_stream_from_template(s) for s in inp.streams}
            for p in packets(inp):
                if lo <= _time(p) < hi:
                    continue
                p.stream = omap[p.stream_index]
                out.mux(p)
        finally:
            out.close()
    return Path(dst)


def drop_and_retime(src: PathLike, dst: PathLike, from_s: float, to_s: float) -> Path:
    """Remove whole GOPs and close the hole, as a careful stream-copy editor does.

    The video packets from the first keyframe at or after `from_s` up to (not including)
    the first keyframe at or after `to_s` go; audio packets presented in the same span
    go; everything later moves back by exactly that span. Video then stays perfectly
    regular (whole frames removed, keyframe cadence kept when the span is whole GOPs);
    audio packets sit on their own 1024-sample grid, which the span rarely matches, so
    one audio spacing at the cut is odd. A re-encode would leave neither trace."""
    lo, hi = as_seconds(from_s), as_seconds(to_s)
    with av.open(os.fspath(src)) as inp:
        vstreams = [s for s in inp.streams if s.type == "video"]
        if not vstreams:
            raise ValueError(f"{src}: no video stream to cut GOPs from")
        vi = vstreams[0].index
        keys = sorted(_time(p) for p in packets(inp) if p.stream_index == vi and p.is_keyframe)
    k1 = next((k for k in keys if k >= lo), None)
    k2 = next((k for k in keys if k >= hi), None)
    if k1 is None or k2 is None or k2 <= k1:
        raise ValueError(f"{src}: no whole GOP between {from_s} s and {to_s} s")
    span = k2 - k1
    with av.open(os.fspath(src)) as inp:
        out = open_output(dst, copy_tags(inp))
        try:
            omap = {s.index: out.add_stream_from_template(s) for s in inp.streams}
            for p in packets(inp):
                t = _time(p)
                if k1 <= t < k2:
                    continue
                if t >= k2:
                    ticks = span / Fraction(p.time_base)
                    d = math.floor(ticks + Fraction(1, 2))
                    if p.pts is not None:
                        p.pts -= d
                    if p.dts is not None:
                        p.dts -= d
                p.stream = omap[p.stream_index]
                out.mux(p)
        finally:
            out.close()
    return Path(dst)


def splice(srcs: Sequence[PathLike], dst: PathLike) -> Path:
    """Join recordings by stream copy the way `ffmpeg -f concat -i list -c copy` does.

    Each file's timestamps are moved by the sum of the declared durations of the files
    before it (as the concat demuxer does), and a decode timestamp that would not
    increase is set to the previous one plus one tick, presentation time raised to
    match (as the ffmpeg command line does). That fix-up is what leaves packets one
    tick apart at the join; the short last GOP of each file stays where it was. Every
    source must have the same streams in the same order; the first one's tags are kept."""
    if len(srcs) < 2:
        raise ValueError("splice needs at least two recordings")
    with av.open(os.fspath(srcs[0])) as first:
        out = open_output(dst, copy_tags(first))
        templates = list(first.streams)
        try:
            omap = {s.index: out.add_stream_from_template(s) for s in templates}
            last_dts: dict[int, int] = {}
            offset = Fraction(0)
            for k, src in enumerate(srcs):
                with av.open(os.fspath(src)) if k else _Borrowed(first) as inp:
                    if [s.type for s in inp.streams] != [s.type for s in templates]:
                        raise ValueError(f"{src}: streams differ from {srcs[0]}")
                    start = Fraction(inp.start_time or 0, av.time_base)
                    for p in packets(inp):
                        tb = Fraction(p.time_base)
                        d = math.floor((offset - start) / tb + Fraction(1, 2))
                        if p.pts is not None:
                            p.pts += d
                        if p.dts is not None:
                            p.dts += d
                            prev = last_dts.get(p.stream_index)
                            if prev is not None and p.dts <= prev:
                                p.dts = prev + 1
                                if p.pts is not None and p.pts < p.dts:
                                    p.pts = p.dts
                            last_dts[p.stream_index] = p.dts
                        p.stream = omap[p.stream_index]
                        out.mux(p)
                    offset += Fraction(inp.duration or 0, av.time_base)
        finally:
            out.close()
    return Path(dst)


class _Borrowed:
    """Lets the first, already open input be used in the same `with` as the others."""

    def __init__(self, c: Any) -> None:
        self.c = c

    def __enter__(self) -> Any:
        return self.c

    def __exit__(self, *exc: object) -> None:
        return None
