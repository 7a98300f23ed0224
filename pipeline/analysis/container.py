"""Container evidence: edit lists, and the declared duration against the packets.

An ISO BMFF edit list decides which stored media is presented: it can hide the start
or the end, delay a track, or play pieces in another order, without touching a packet.
Devices write one small edit (a start offset, encoder priming); more is EDIT_LIST. The
probe hands over the `elst` rows (renumbered to stream indexes) and the demuxer's result
(negative pts before the presentation start, discarded packets past its end); both are
read here. A container duration far from what the packets cover is DURATION_MISMATCH.

Hidden media (HIDDEN_MEDIA): the packets an edit list hides are still in the file. A
stream-copy trim (`ffmpeg -ss 1.3 -c copy`) must start at the keyframe before the cut, so
it keeps the frames up to the cut and hides them, and hides the audio before the cut too.
An encoder's delay explains some hidden audio (AAC priming, 1024 or 2112 samples; Opus
pre-skip), and phones hide up to about half a second of video on their own (iPhones:
0.467 s, with only the priming hidden in the audio). Audio hidden beyond the encoder's
delay is recorded sound nobody is shown: then every stream's hidden packets are counted
and reported, and the edit is no longer called device-like (EDIT_LIST_OFFSET). Video
hidden alone stays EDIT_LIST_OFFSET up to `edit_offset_max`, EDIT_LIST beyond it, each
naming the packets it hides. Pure: numpy and `schemas` only.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from pipeline.analysis.models import encoder_delay
from pipeline.analysis.timeline import (
    MEDIA_KINDS,
    Clock,
    modal,
    presented,
    secs,
    span,
    stream_name,
)
from pipeline.analysis.tolerances import Tolerances
from schemas.media import NOPTS, EditListEntry, Finding, ProbeResult, StreamTimeline

__all__ = ["Hidden", "find_duration_mismatch", "find_edit_lists", "hidden_media"]


@dataclass(frozen=True, slots=True)
class Hidden:
    """What a stream keeps but never shows, before its presentation start and after its end.

    `head_ticks` runs from the earliest stored pts to the presentation start (partly
    hidden packets count with the part hidden); `head_packets` counts the packets hidden
    whole; `first_pts` is the earliest stored pts."""

    head_packets: int
    head_partial: int  # packets straddling the presentation start
    head_ticks: int
    first_pts: int | None
    start_pts: int | None
    tail_packets: int
    tail_ticks: int


def hidden_media(t: StreamTimeline, edited: bool) -> Hidden:
    """The packets `t` keeps but does not show. With an edit list (`edited`) FFmpeg puts
    the presentation start at pts 0 and what lies before it is hidden; otherwise only
    packets the container marks as discarded are (negative times elsewhere, such as
    MPEG-TS times before a 33-bit wrap or Opus pre-skip, are shown or codec business)."""
    has = t.pts != NOPTS
    shown = has & ~t.discard
    if not np.any(shown):
        return Hidden(0, 0, 0, None, None, 0, 0)
    dur = np.where(t.duration > 0, t.duration, 0)
    first_shown = int(t.pts[shown].min())
    start = max(0, first_shown) if edited else first_shown
    before = has & (t.pts < start)
    head = before & (t.discard | (t.pts + dur <= start))
    first = int(t.pts[before].min()) if np.any(before) else None
    last_shown = int(t.pts[shown].max())
    late = has & t.discard & (t.pts > last_shown)
    tail_ticks = int((t.pts[late] + dur[late]).max()) - last_shown if np.any(late) else 0
    return Hidden(
        int(np.count_nonzero(head)),
        int(np.count_nonzero(before & ~head)),
        start - first if first is not None else 0,
        first,
        start,
        int(np.count_nonzero(late)),
        tail_ticks,
    )


def _explained(t: StreamTimeline, tol: Tolerances) -> Fraction:
    """Seconds of hidden audio at the start an encoder's delay explains, plus one packet
    (an edit starts inside a packet); `priming_max` for a codec not in the table."""
    delay = encoder_delay(t)
    if not delay:
        return tol.priming_max
    dur = t.duration[t.duration > 0]
    return delay + (Fraction(modal(dur)) * t.time_base if dur.size else Fraction(0))


def find_edit_lists(result: ProbeResult, clock: Clock, tol: Tolerances) -> list[Finding]:
    """Edit lists (EDIT_LIST, EDIT_LIST_OFFSET) and the media they hide (HIDDEN_MEDIA)."""
    by_track: dict[int, list[EditListEntry]] = defaultdict(list)
    for e in result.edit_lists:
        by_track[e.track_index].append(e)
    media = [t for t in result.streams if t.kind in MEDIA_KINDS and t.packet_count]
    hidden = {t.index: hidden_media(t, t.index in by_track) for t in media}
    # Recorded sound hidden beyond the encoder's delay: the file was trimmed.
    trimmed = any(
        t.kind == "audio" and Fraction(hidden[t.index].head_ticks) * t.time_base
        > _explained(t, tol)
        for t in media
    )  # fmt: skip
    out: list[Finding] = []
    for t in media:
        h = hidden[t.index]
        report = trimmed and (h.head_packets > 0 or h.tail_packets > 0)
        entries = by_track.get(t.index)
        if entries:
            f = _one_edit_list(t, entries, h, clock, tol)
            if f is not None and not (report and f.code == "EDIT_LIST_OFFSET"):
                out.append(f)
        if report:
            out.append(_hidden_finding(t, h, entries or [], clock, tol))
    return out


def _hidden_finding(
    t: StreamTimeline, h: Hidden, entries: list[EditListEntry], clock: Clock, tol: Tolerances
) -> Finding:
    tb = t.time_base
    parts = []
    if h.head_packets and h.first_pts is not None and h.start_pts is not None:
        partly = f" and part of {h.head_partial} more" if h.head_partial else ""
        parts.append(
            f"{h.head_packets} packets{partly} before its presentation start "
            f"({secs(Fraction(h.head_ticks) * tb)} s, pts {h.first_pts} to {h.start_pts})"
        )
    if h.tail_packets:
        parts.append(
            f"{h.tail_packets} packets after its end ({secs(Fraction(h.tail_ticks) * tb)} s)"
        )
    if t.kind == "audio":
        delay = encoder_delay(t)
        why = (
            f"the {t.codec} encoder's delay explains at most {secs(delay)} s of it"
            if delay
            else f"encoder priming explains at most {secs(tol.priming_max)} s of it"
        )
    else:
        why = (
            "a video encoder's delay shifts times and hides no frame, and the audio hides "
            "recorded sound as well"
        )
    how = "its edit list" if entries else "the container's discard marks"
    at = h.start_pts if h.start_pts is not None else 0
    return clock.finding(
        "HIDDEN_MEDIA",
        f"{stream_name(t).capitalize()} keeps " + " and ".join(parts) + f" that {how} "
        f"hides: {why}. The hidden packets are still in the file.",
        t,
        at,
    )


def _one_edit_list(
    t: StreamTimeline, entries: list[EditListEntry], h: Hidden, clock: Clock, tol: Tolerances
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
        kept = f", {h.head_packets} packets kept in the file" if h.head_packets else ""
        parts.append(f"hides the first {secs(lead)} s of stored media{kept}")
    if tail > tol.edit_offset_max:
        kept = f", {h.tail_packets} packets kept in the file" if h.tail_packets else ""
        parts.append(f"hides the last {secs(tail)} s of stored media{kept}")
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
