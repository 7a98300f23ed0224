"""Every threshold of the file analysis, in one frozen record passed to each check.

One record for all concerns (timing, container, provenance, voice) because ingest, the
tests and later the nightly job choose them once per run; each check reads only its own
fields. Seconds are `Fraction`s and shares fractions of 1, so no decision compares floats.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

__all__ = ["Tolerances"]


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
    # the mode by more than this share plus the tick the times are rounded to (60 fps in
    # milliseconds: 1.7 + 1 ms of a 17 ms mode) to count; audio clocks are sample-exact
    # and keep the plain rounding. A stream-copy join (packets one tick apart) misses by
    # ~100%.
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
    # Impossible spacing (TS_REWRITTEN): at least `rewritten_min_run` spacings in a row
    # (runs fewer than that many ordinary spacings apart are one) below
    # `rewritten_share` of the stream's nominal spacing (judged where its other spacings
    # are regular), or below a physical ceiling: video above `rewritten_max_fps` frames a
    # second, audio packets shorter than the codec's smallest frame. Slow-motion phones
    # record 240 fps; no clock writes a quarter of its own frame time three times running.
    rewritten_min_run: int = 3
    rewritten_share: Fraction = Fraction(1, 4)
    rewritten_max_fps: int = 300
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
