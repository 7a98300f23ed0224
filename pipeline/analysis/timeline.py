"""What every check reads from a stream's packets: presented times, spans, the file's clock.

Shared by the timing, container, provenance and voice checks so they agree on what is
"presented" (pts known, not discarded), on a stream's span, and on where the file's
time zero is (its earliest presentation time), and so every finding names a stream and
states seconds the same way. Pure: numpy and `schemas` only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from fractions import Fraction

import numpy as np
import numpy.typing as npt

from pipeline.analysis.tolerances import Tolerances
from schemas.media import NOPTS, Finding, StreamTimeline

__all__ = [
    "I64", "MEDIA_KINDS", "Clock", "cap", "modal", "nominal", "presented", "secs", "span",
    "stream_name", "ticks_floor",
]  # fmt: skip

I64 = npt.NDArray[np.int64]
# Only video and audio carry a media clock; data streams mark events (see `timing`).
MEDIA_KINDS = frozenset({"video", "audio"})


def secs(x: Fraction) -> str:
    """Seconds for people: three decimals (findings' `detail` sentences)."""
    return f"{float(x):.3f}"


def ticks_floor(seconds: Fraction, tb: Fraction) -> int:
    return math.floor(seconds / tb)


def presented(t: StreamTimeline) -> I64:
    """Sorted presentation times of the packets that are shown."""
    keep = (t.pts != NOPTS) & ~t.discard
    return np.sort(t.pts[keep])


def modal(values: I64) -> int:
    uniq, counts = np.unique(values, return_counts=True)
    return int(uniq[int(np.argmax(counts))])


def nominal(t: StreamTimeline) -> int:
    """The most common positive spacing, else packet duration, else 0: a short stream's
    best guess at its frame spacing (no regularity judged)."""
    d = np.diff(presented(t))
    d = d[d > 0]
    if d.size:
        return modal(d)
    dur = t.duration[t.duration > 0]
    return modal(dur) if dur.size else 0


class Clock:
    """Converts a stream's ticks to seconds from the file's earliest presentation time."""

    def __init__(self, streams: Iterable[StreamTimeline]) -> None:
        starts = [Fraction(int(p[0])) * t.time_base for t in streams if (p := presented(t)).size]
        self.origin = min(starts) if starts else Fraction(0)

    def rel(self, pts: int, tb: Fraction) -> Fraction:
        return Fraction(pts) * tb - self.origin

    def at(self, pts: int, tb: Fraction) -> float:
        return float(self.rel(pts, tb))

    def finding(self, code: str, detail: str, t: StreamTimeline, pts: int) -> Finding:
        """A finding at presentation time `pts` of stream `t`."""
        return Finding(code, detail, stream_index=t.index, pts=pts,
                       at_seconds=self.at(pts, t.time_base))


def stream_name(t: StreamTimeline) -> str:
    return f"{t.kind} stream {t.index}"


def cap(found: list[Finding], tol: Tolerances, t: StreamTimeline) -> list[Finding]:
    """At most `max_per_stream` findings of one kind, then one that counts the rest."""
    if len(found) <= tol.max_per_stream:
        return found
    kept = found[: tol.max_per_stream]
    rest = len(found) - len(kept)
    kept.append(
        Finding(
            found[0].code,
            f"{stream_name(t).capitalize()} has {rest} more findings of this kind, not listed "
            "one by one.",
            stream_index=t.index,
        )
    )
    return kept


def span(t: StreamTimeline) -> tuple[Fraction, Fraction] | None:
    """Seconds from the first presented packet's start to the last one's end (its pts
    plus its duration), in the stream's own time; None when nothing is presented."""
    keep = (t.pts != NOPTS) & ~t.discard
    if not np.any(keep):
        return None
    pts = t.pts[keep]
    dur = np.where(t.duration[keep] > 0, t.duration[keep], 0)
    return Fraction(int(pts.min())) * t.time_base, Fraction(int((pts + dur).max())) * t.time_base
