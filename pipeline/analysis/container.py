"""Container evidence: edit lists, and the declared duration against the packets.

An ISO BMFF edit list decides which stored media is presented: it can hide the start
or the end, delay a track, or play pieces in another order, without touching a packet.
Devices write one small edit (a start offset, encoder priming); more is EDIT_LIST. The
probe hands over the `elst` rows (renumbered to stream indexes) and the demuxer's result
(negative pts before the presentation start, discarded packets past its end); both are
read here. A container duration far from what the packets cover is DURATION_MISMATCH.
Pure: numpy and `schemas` only.
"""

from __future__ import annotations

from collections import defaultdict
from fractions import Fraction

import numpy as np

from pipeline.analysis.timeline import MEDIA_KINDS, Clock, presented, secs, span, stream_name
from pipeline.analysis.tolerances import Tolerances
from schemas.media import NOPTS, EditListEntry, Finding, ProbeResult, StreamTimeline

__all__ = ["find_duration_mismatch", "find_edit_lists"]


def find_edit_lists(result: ProbeResult, clock: Clock, tol: Tolerances) -> list[Finding]:
    by_track: dict[int, list[EditListEntry]] = defaultdict(list)
    for e in result.edit_lists:
        by_track[e.track_index].append(e)
    streams = {t.index: t for t in result.streams}
    out: list[Finding] = []
    for track, entries in sorted(by_track.items()):
        t = streams.get(track)
        if t is None or t.kind not in MEDIA_KINDS:
            continue
        f = _one_edit_list(t, entries, clock, tol)
        if f is not None:
            out.append(f)
    return out


def _one_edit_list(
    t: StreamTimeline, entries: list[EditListEntry], clock: Clock, tol: Tolerances
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
        parts.append(f"delays it by {secs(delay)} s with an empty edit")
    if lead:
        parts.append(f"hides the first {secs(lead)} s of stored media")
    if tail > tol.edit_offset_max:
        parts.append(f"hides the last {secs(tail)} s of stored media")
    if not parts:
        return None
    big = (
        len(pieces) > 1
        or delay > tol.edit_offset_max
        or lead > tol.edit_offset_max
        or tail > tol.edit_offset_max
    )
    p = presented(t)
    first = int(p[0]) if p.size else None
    raw = "; ".join(
        f"media_time {e.media_time} of {e.media_timescale}, "
        f"segment {e.segment_duration} of {e.movie_timescale}"
        for e in entries
    )
    return Finding(
        "EDIT_LIST" if big else "EDIT_LIST_OFFSET",
        f"The edit list of {stream_name(t)} " + " and ".join(parts) + f" (entries: {raw}).",
        stream_index=t.index,
        pts=first,
        at_seconds=clock.at(first, tb) if first is not None else None,
    )


def find_duration_mismatch(result: ProbeResult, tol: Tolerances) -> list[Finding]:
    if result.duration is None or result.truncated:
        return []
    spans = [s for t in result.streams if (s := span(t)) is not None]
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
            f"The container declares {secs(result.duration)} s but its packets cover "
            f"{secs(covered)} s (from {secs(start)} s to {secs(end)} s).",
        )
    ]
