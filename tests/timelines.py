"""Synthetic packet timelines for the analysis unit tests: streams of known truth.

`stream` builds a `StreamTimeline` from presentation times (dts, durations, sizes and
positions filled in plainly), `result` wraps streams in a `ProbeResult`. Video is 30 fps
in a 1/90000 time base (3000 ticks a frame), audio AAC at 48 kHz (1024 samples a packet).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from schemas.media import EditListEntry, Finding, ProbeResult, StreamTimeline

VIDEO_TB = Fraction(1, 90000)
FRAME = 3000  # 30 fps in 1/90000
AUDIO_TB = Fraction(1, 48000)
AAC = 1024


def stream(
    pts: list[int] | np.ndarray,
    *,
    index: int = 0,
    kind: str = "video",
    tb: Fraction = VIDEO_TB,
    dts: list[int] | np.ndarray | None = None,
    keyframe: list[bool] | np.ndarray | None = None,
    discard: list[bool] | np.ndarray | None = None,
    duration: int | None = None,
    **kw: object,
) -> StreamTimeline:
    p = np.asarray(pts, dtype=np.int64)
    n = p.size
    step = duration if duration is not None else (FRAME if kind == "video" else AAC)
    return StreamTimeline(
        index=index,
        kind=kind,
        codec="h264" if kind == "video" else "aac",
        time_base=tb,
        pts=p,
        dts=np.asarray(dts if dts is not None else p, dtype=np.int64),
        duration=np.full(n, step, dtype=np.int64),
        keyframe=np.asarray(keyframe if keyframe is not None else np.zeros(n), dtype=np.bool_),
        discard=np.asarray(discard if discard is not None else np.zeros(n), dtype=np.bool_),
        size=np.full(n, 1000, dtype=np.int64),
        pos=np.arange(n, dtype=np.int64) * 1000,
        **kw,  # type: ignore[arg-type]
    )


def result(*streams: StreamTimeline, **kw: object) -> ProbeResult:
    fields: dict[str, object] = {
        "path": "x.mp4",
        "media_kind": "video",
        "container": "mov,mp4,m4a,3gp,3g2,mj2",
        "duration": None,
        "start_time": Fraction(0),
        "streams": streams,
        "tags": {},
    }
    fields.update(kw)
    return ProbeResult(**fields)  # type: ignore[arg-type]


def codes(findings: list[Finding], code: str | None = None) -> list[Finding]:
    return [f for f in findings if code is None or f.code == code]


def regular(n: int, step: int = FRAME, start: int = 0) -> np.ndarray:
    return start + np.arange(n, dtype=np.int64) * step


def audio(pts: np.ndarray, index: int = 1) -> StreamTimeline:
    return stream(pts, index=index, kind="audio", tb=AUDIO_TB)


def elst(track: int, media_time: int, seg: int = 10_000, ts: int = 90000) -> EditListEntry:
    return EditListEntry(track, seg, media_time, 1000, ts)
