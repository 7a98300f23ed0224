"""Timing analysis on synthetic timelines: one behaviour per test."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.analysis.timeline import modal
from pipeline.analysis.timing import Tolerances, analyse
from schemas.media import NOPTS, Finding, StreamTimeline
from tests.timelines import AAC, AUDIO_TB, FRAME, audio, codes, regular, result, stream

# --- gaps -------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(min_value=6, max_value=400),
    jitter=st.lists(st.integers(min_value=-FRAME // 4, max_value=FRAME // 4), min_size=400),
)
def test_regular_timeline_with_jitter_has_no_gap(n: int, jitter: list[int]) -> None:
    pts = regular(n) + np.asarray(jitter[:n], dtype=np.int64)
    assert codes(analyse(result(stream(pts))), "GAP_IN_STREAM") == []


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(min_value=40, max_value=300),
    where=st.floats(min_value=0.0, max_value=1.0),
    k=st.integers(min_value=6, max_value=3000),
)
def test_gap_of_k_frames_gives_one_finding_at_its_start(n: int, where: float, k: int) -> None:
    """k frames missing after packet i: one GAP_IN_STREAM at packet i's pts."""
    i = min(n - 2, int(where * (n - 1)))
    pts = regular(n)
    pts[i + 1 :] += k * FRAME
    gaps = codes(analyse(result(stream(pts))), "GAP_IN_STREAM")
    assert [(g.stream_index, g.pts) for g in gaps] == [(0, int(pts[i]))]


def test_gap_below_floor_is_not_an_interruption() -> None:
    """Four frames missing (133 ms) is below the 0.2 s floor of a regular stream."""
    pts = regular(60)
    pts[30:] += 4 * FRAME
    assert codes(analyse(result(stream(pts))), "GAP_IN_STREAM") == []


def _varied(d: list[int]) -> bool:
    return len(set(d)) >= 20 and max(d.count(v) for v in set(d)) * 10 <= 3 * len(d)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=4, max_value=304), min_size=20, max_size=300).filter(_varied))
def test_variable_frame_rate_phone_has_no_gap(deltas_ms: list[int]) -> None:
    """Spacings of 4-304 ms with no dominant value (a 2004 phone, a webcam): no gap."""
    pts = np.concatenate([[0], np.cumsum(deltas_ms)]).astype(np.int64)
    s = stream(pts, tb=Fraction(1, 1000), duration=70)
    assert codes(analyse(result(s)), "GAP_IN_STREAM") == []


def test_variable_frame_rate_stream_with_five_second_hole_has_gap() -> None:
    rng = np.random.default_rng(1)
    deltas = rng.integers(70, 249, size=200)
    deltas[100] = 5000
    pts = np.concatenate([[0], np.cumsum(deltas)]).astype(np.int64)
    gaps = codes(analyse(result(stream(pts, tb=Fraction(1, 1000)))), "GAP_IN_STREAM")
    assert [g.pts for g in gaps] == [int(pts[100])]


def test_discarded_and_nopts_packets_are_ignored_for_gaps() -> None:
    pts = regular(40)
    pts[10] = NOPTS
    disc = np.zeros(40, dtype=bool)
    disc[20] = True
    pts[20] = 10**9  # far away, but discarded
    assert codes(analyse(result(stream(pts, discard=disc))), "GAP_IN_STREAM") == []


def test_gap_at_seconds_counts_from_earliest_stream_start() -> None:
    v = regular(60, start=9000)  # video starts 0.1 s after audio
    v[30:] += 150 * FRAME
    a = regular(100, AAC)
    f = codes(analyse(result(stream(v), stream(a, index=1, kind="audio", tb=AUDIO_TB))),
              "GAP_IN_STREAM")
    assert [(x.stream_index, x.pts) for x in f] == [(0, int(v[29]))]
    assert f[0].at_seconds is not None
    assert abs(f[0].at_seconds - (0.1 + 29 / 30)) < 1e-9


def test_data_streams_are_not_judged() -> None:
    d = stream([0, 0, 0, 5_000_000, 5_000_000], kind="data")
    assert analyse(result(d)) == []


# --- decode order -------------------------------------------------------------------------


def test_dts_going_backwards_is_reported() -> None:
    dts = regular(20)
    dts[10] = dts[8]
    f = codes(analyse(result(stream(regular(20), dts=dts))), "TS_BACKWARDS")
    assert [(x.stream_index, x.pts, x.at_seconds) for x in f] == [(0, int(dts[10]), 8 / 30)]


def test_repeated_dts_is_reported() -> None:
    dts = regular(20)
    dts[10] = dts[9]
    f = codes(analyse(result(stream(regular(20), dts=dts))), "TS_REPEATED")
    assert [(x.stream_index, x.pts, x.at_seconds) for x in f] == [(0, int(dts[9]), 9 / 30)]


def test_dts_after_pts_beyond_reorder_allowance_is_reported() -> None:
    pts = regular(20)
    dts = pts.copy()
    dts[5] = pts[5] + 10 * FRAME
    dts[6:] += 10 * FRAME
    f = codes(analyse(result(stream(pts, dts=dts))), "DTS_AFTER_PTS")
    assert [(x.stream_index, x.pts) for x in f] == [(0, int(p)) for p in pts[5:]]


def test_small_negative_composition_offset_is_normal() -> None:
    """Apple's reordered frames: dts two frames after pts, as in iPhone HEVC."""
    pts = np.array([0, 4, 2, 1, 3]) * FRAME
    dts = np.arange(5) * FRAME
    assert codes(analyse(result(stream(pts, dts=dts))), "DTS_AFTER_PTS") == []


# --- splices --------------------------------------------------------------------------------


def test_one_odd_audio_spacing_is_a_splice() -> None:
    pts = regular(200, AAC)
    pts[120:] -= 744  # GOPs removed and retimed: 280 ticks instead of 1024
    f = codes(analyse(result(audio(pts))), "SPLICE_IRREGULAR_DURATION")
    assert [(x.stream_index, x.pts) for x in f] == [(1, int(pts[119]))]


def test_packet_one_tick_apart_is_one_splice() -> None:
    pts = regular(200, AAC)
    pts = np.insert(pts, 100, pts[99] + 1)
    f = codes(analyse(result(audio(pts))), "SPLICE_IRREGULAR_DURATION")
    assert [(x.stream_index, x.pts) for x in f] == [(1, int(pts[99]))]
    assert f[0].detail.endswith("are spaced 1 ticks apart.")


def test_odd_first_and_last_spacing_are_priming_not_splices() -> None:
    pts = regular(50, AAC) + 221
    pts[0] = 0  # a 1245-sample first packet, as Samsung writes
    pts[-1] = pts[-2] + 300
    assert codes(analyse(result(audio(pts))), "SPLICE_IRREGULAR_DURATION") == []


def test_whole_missing_frame_is_not_a_splice() -> None:
    pts = regular(100)
    pts[50:] += FRAME  # one dropped frame: a multiple of the spacing
    assert codes(analyse(result(stream(pts)))) == []


def test_irregular_stream_has_no_splice() -> None:
    rng = np.random.default_rng(3)
    pts = np.cumsum(rng.integers(2900, 3100, size=100)).astype(np.int64)
    assert codes(analyse(result(stream(pts))), "SPLICE_IRREGULAR_DURATION") == []


# --- keyframes ----------------------------------------------------------------------------------


def test_short_gop_in_fixed_cadence_is_a_break() -> None:
    kf = np.zeros(200, dtype=bool)
    kf[[0, 30, 60, 75, 105, 135, 165, 195]] = True
    f = codes(analyse(result(stream(regular(200), keyframe=kf))), "KEYFRAME_INTERVAL_BREAK")
    assert [x.pts for x in f] == [60 * FRAME]


def test_scene_cut_keyframes_are_not_judged() -> None:
    kf = np.zeros(300, dtype=bool)
    kf[[0, 17, 30, 61, 90, 103, 140, 150, 199, 250]] = True
    f = codes(analyse(result(stream(regular(300), keyframe=kf))), "KEYFRAME_INTERVAL_BREAK")
    assert f == []


# --- audio vs video, thresholds ---------------------------------------------------------------


def test_audio_and_video_covering_different_spans_is_drift() -> None:
    v = stream(regular(300))  # 10 s
    a = audio(regular(int(8 * 48000 / AAC), AAC))  # 8 s
    assert [x.code for x in analyse(result(v, a))] == ["AV_DRIFT"]


def test_every_threshold_can_be_changed() -> None:
    pts = regular(60)
    pts[30:] += 4 * FRAME
    tol = Tolerances(gap_floor_regular=Fraction(1, 10))
    f = codes(analyse(result(stream(pts)), tol), "GAP_IN_STREAM")
    assert [(x.stream_index, x.pts) for x in f] == [(0, int(pts[29]))]


def test_av9_one_video_frame_five_percent_late_is_capture_jitter_not_a_splice() -> None:
    """A phone writes one frame 150 ticks late (seen in a real iPhone file); no edit."""
    pts = regular(120)
    pts[60:] += 150
    assert codes(analyse(result(stream(pts))), "SPLICE_IRREGULAR_DURATION") == []


def test_av9_one_audio_packet_five_percent_off_is_a_splice_sign() -> None:
    """Audio clocks are sample-exact: the same 5% oddity in AAC is what a retime leaves."""
    pts = regular(200, AAC)
    pts[100:] += 51
    found = codes(analyse(result(stream(pts, kind="audio", tb=AUDIO_TB))),
                  "SPLICE_IRREGULAR_DURATION")
    assert [(x.stream_index, x.pts) for x in found] == [(0, int(pts[99]))]


def test_names_other_stages_import_stay_importable_from_timing() -> None:
    """ingest imports these from `timing`; they live in the concern modules."""
    from pipeline.analysis import provenance, timing, tolerances, voice

    assert timing.Tolerances is tolerances.Tolerances
    assert timing.resume_points is voice.resume_points
    assert timing.speech_like is voice.speech_like
    assert timing.EDITING_TOOLS is provenance.EDITING_TOOLS


# --- properties: clean timelines of every kind, and one gap anywhere ---------------------
#
# The rules (README, "What the timestamps can and cannot prove"): a gap is a spacing of
# presentation times of more than 3 frames and 0.2 s in a constant-rate stream, more than
# 4x the 90th-percentile spacing and 1 s in a variable-rate one. A finding is at the last
# packet presented before the hole, in the stream's ticks and in seconds from the file's
# earliest presentation time.

RATES = [Fraction(5), Fraction(10), Fraction(15), Fraction(24), Fraction(25),
         Fraction(30000, 1001), Fraction(30), Fraction(50), Fraction(60)]
TIME_BASES = [Fraction(1, 90000), Fraction(1, 30000), Fraction(1, 15360), Fraction(1, 1000),
              Fraction(1, 600)]
JUDGED = ("interruption", "edit")


def _clock(n: int, rate: Fraction, tb: Fraction) -> np.ndarray:
    """n frames of a constant-rate clock, as a muxer stores them: floor(i / rate / tb)."""
    per = 1 / (rate * tb)
    return np.asarray([int(i * per) for i in range(n)], dtype=np.int64)


def _jittered(pts: np.ndarray, per: Fraction, rng: np.random.Generator) -> np.ndarray:
    """Capture jitter: up to a third of the frames written up to 10% of a frame early or
    late, never two neighbours (so no spacing misses the clock by more than 10%)."""
    out = pts.copy()
    limit = int(per / 10)
    for i in range(1, pts.size - 1, 2):  # odd frames only: neighbours never both move
        if rng.random() < 2 / 3:
            out[i] += int(rng.integers(-limit, limit + 1))
    return out


def _b_frames(n_groups: int, m: int, per: int) -> tuple[np.ndarray, np.ndarray]:
    """Groups of m frames in decode order (the group's anchor, then its m-1 B-frames),
    pts in display order, dts delayed by m-1 frames: pts and dts in decode order."""
    display: list[int] = []
    for g in range(n_groups):
        display += [g * m + m - 1, *range(g * m, g * m + m - 1)]
    pts = np.asarray(display, dtype=np.int64) * per
    dts = (np.arange(len(display), dtype=np.int64) - (m - 1)) * per
    return pts, dts


def _vfr(n: int, lo: int, hi: int, rng: np.random.Generator, scale: int) -> np.ndarray:
    """A variable-rate phone: spacings lo..hi ms (uniform), in 1/(1000*scale) ticks."""
    d = rng.integers(lo, hi + 1, size=n - 1) * scale
    return np.concatenate([[0], np.cumsum(d)]).astype(np.int64)


def _judged(fs: list[Finding]) -> list[tuple[str, int | None, int | None]]:
    return [(f.code, f.stream_index, f.pts) for f in fs if f.category in JUDGED]


def _audio_over(seconds: Fraction) -> StreamTimeline:
    return audio(regular(int(seconds * 48000 / AAC), AAC))


@settings(max_examples=80, deadline=None)
@given(rate=st.sampled_from(RATES), tb=st.sampled_from(TIME_BASES),
       n=st.integers(min_value=30, max_value=600), start=st.integers(0, 10**7))
def test_a_clean_constant_rate_recording_has_no_gap_or_edit(
    rate: Fraction, tb: Fraction, n: int, start: int
) -> None:
    v = stream(_clock(n, rate, tb) + start, tb=tb, duration=int(1 / (rate * tb)))
    a = _audio_over(n / rate)
    a = stream(a.pts + int(Fraction(start) * tb * 48000), index=1, kind="audio", tb=AUDIO_TB)
    assert _judged(analyse(result(v, a))) == []


@settings(max_examples=80, deadline=None)
@given(rate=st.sampled_from(RATES), tb=st.sampled_from(TIME_BASES),
       n=st.integers(min_value=30, max_value=600), seed=st.integers(0, 2**32 - 1))
def test_capture_jitter_up_to_a_tenth_of_a_frame_is_no_gap_or_edit(
    rate: Fraction, tb: Fraction, n: int, seed: int
) -> None:
    per = 1 / (rate * tb)
    pts = _jittered(_clock(n, rate, tb), per, np.random.default_rng(seed))
    assert _judged(analyse(result(stream(pts, tb=tb, duration=int(per))))) == []


@settings(max_examples=60, deadline=None)
@given(groups=st.integers(min_value=10, max_value=150), m=st.integers(min_value=2, max_value=4),
       gop=st.sampled_from([0, 1, 2]))
def test_b_frame_reordering_is_no_gap_or_edit(groups: int, m: int, gop: int) -> None:
    """Presentation order differs from decode order (IBBP...); dts rise steadily and never
    pass pts; keyframes at a fixed cadence of whole groups."""
    pts, dts = _b_frames(groups, m, FRAME)
    kf = (pts // FRAME) % (m * (gop + 1) * 5) == 0 if gop else None
    s = stream(pts, dts=dts, keyframe=kf)
    assert _judged(analyse(result(s))) == []


@settings(max_examples=60, deadline=None)
@given(n=st.integers(min_value=60, max_value=500), lo=st.integers(4, 150),
       width=st.integers(50, 154), scale=st.sampled_from([1, 90]),
       seed=st.integers(0, 2**32 - 1))
def test_a_clean_variable_rate_recording_has_no_gap_or_edit(
    n: int, lo: int, width: int, scale: int, seed: int
) -> None:
    hi = min(lo + width, 304)
    pts = _vfr(n, lo, hi, np.random.default_rng(seed), scale)
    s = stream(pts, tb=Fraction(1, 1000 * scale), duration=70 * scale)
    assert _judged(analyse(result(s))) == []


def _with_hole(pts: np.ndarray, after: int, spacing: int) -> np.ndarray:
    """pts (display order) with the frames after index `after` moved so that the spacing
    across the hole is exactly `spacing` ticks."""
    out = pts.copy()
    out[after + 1 :] += spacing - (pts[after + 1] - pts[after])
    return out


def _one_gap(fs: list[Finding], stream_index: int, pts: int) -> None:
    gaps = [(f.code, f.stream_index, f.pts) for f in fs if f.code == "GAP_IN_STREAM"]
    assert gaps == [("GAP_IN_STREAM", stream_index, pts)]
    assert _judged(fs) == gaps  # and no edit finding


@settings(max_examples=80, deadline=None)
@given(rate=st.sampled_from(RATES), tb=st.sampled_from(TIME_BASES),
       n=st.integers(min_value=40, max_value=400), where=st.floats(0, 1),
       longer=st.integers(min_value=1, max_value=10**6), jitter=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_a_gap_anywhere_in_a_constant_rate_recording_is_one_finding_at_its_pts(
    rate: Fraction, tb: Fraction, n: int, where: float, longer: int, jitter: bool, seed: int
) -> None:
    """Over a second missing (longer than either rule's threshold), after any frame: one
    GAP_IN_STREAM at that frame's pts, within a frame of its time on the clock."""
    per = 1 / (rate * tb)
    pts = _clock(n, rate, tb)
    if jitter:
        pts = _jittered(pts, per, np.random.default_rng(seed))
    i = min(n - 2, int(where * (n - 1)))
    holed = _with_hole(pts, i, int(1 / tb) + int(4 * per) + longer)
    fs = analyse(result(stream(holed, tb=tb, duration=int(per))))
    _one_gap(fs, 0, int(pts[i]))
    (gap,) = [f for f in fs if f.code == "GAP_IN_STREAM"]
    assert gap.at_seconds is not None
    assert abs(gap.at_seconds - float(i / rate)) <= float(1 / rate)


@settings(max_examples=50, deadline=None)
@given(groups=st.integers(min_value=10, max_value=100), m=st.integers(min_value=2, max_value=4),
       where=st.floats(0, 1), hole_frames=st.integers(min_value=7, max_value=3000))
def test_a_gap_between_groups_of_b_frames_is_one_finding_at_the_last_shown_frame(
    groups: int, m: int, where: float, hole_frames: int
) -> None:
    """The camera stopped after a group: every later packet (pts and dts) moves on by the
    hole; the finding is at the group's last frame in display order, not in decode order."""
    pts, dts = _b_frames(groups, m, FRAME)
    g = 1 + min(groups - 2, int(where * (groups - 1)))  # the first group after the hole
    later = np.arange(pts.size) >= g * m
    pts = pts + later * hole_frames * FRAME
    dts = dts + later * hole_frames * FRAME
    _one_gap(analyse(result(stream(pts, dts=dts))), 0, (g * m - 1) * FRAME)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(min_value=60, max_value=400), lo=st.integers(4, 150),
       width=st.integers(50, 154), where=st.floats(0, 1),
       longer=st.integers(min_value=1, max_value=10**5), seed=st.integers(0, 2**32 - 1))
def test_a_gap_anywhere_in_a_variable_rate_recording_is_one_finding_at_its_pts(
    n: int, lo: int, width: int, where: float, longer: int, seed: int
) -> None:
    hi = min(lo + width, 304)
    pts = _vfr(n, lo, hi, np.random.default_rng(seed), 1)
    i = min(n - 2, int(where * (n - 1)))
    holed = _with_hole(pts, i, 4 * hi + 1000 + longer)
    _one_gap(analyse(result(stream(holed, tb=Fraction(1, 1000), duration=70))), 0,
             int(pts[i]))


# --- the thresholds themselves, at their boundary --------------------------------------------


def _regular_threshold(d: np.ndarray, tb: Fraction) -> int:
    """README: more than 3 frames (the modal spacing) and 0.2 s."""
    return max(3 * modal(d[d > 0]), math.floor(Fraction(1, 5) / tb))


def _vfr_threshold(d: np.ndarray, tb: Fraction) -> int:
    """README: more than 4x the 90th-percentile spacing and 1 s (the hole itself counted
    among the spacings: as the largest one, whatever its size)."""
    q90 = int(np.percentile(d[d > 0], 90, method="higher"))
    return max(4 * q90, math.floor(Fraction(1) / tb))


@settings(max_examples=80, deadline=None)
@given(rate=st.sampled_from(RATES), tb=st.sampled_from(TIME_BASES),
       n=st.integers(min_value=40, max_value=300), where=st.floats(0, 1))
def test_a_constant_rate_hole_of_exactly_the_threshold_is_no_gap_and_one_tick_more_is(
    rate: Fraction, tb: Fraction, n: int, where: float
) -> None:
    pts = _clock(n, rate, tb)
    i = min(n - 2, int(where * (n - 1)))
    d = np.diff(_with_hole(pts, i, 10**9))
    limit = _regular_threshold(d, tb)
    s = lambda spacing: stream(_with_hole(pts, i, spacing), tb=tb)  # noqa: E731
    assert codes(analyse(result(s(limit))), "GAP_IN_STREAM") == []
    _one_gap(analyse(result(s(limit + 1))), 0, int(pts[i]))


@settings(max_examples=80, deadline=None)
@given(n=st.integers(min_value=60, max_value=400), lo=st.integers(4, 250),
       width=st.integers(50, 154), where=st.floats(0, 1), seed=st.integers(0, 2**32 - 1))
def test_a_variable_rate_hole_of_exactly_the_threshold_is_no_gap_and_one_tick_more_is(
    n: int, lo: int, width: int, where: float, seed: int
) -> None:
    """Spacings up to 304 ms, so 4x their 90th percentile is often above the 1 s floor."""
    hi = min(lo + width, 304)
    tb = Fraction(1, 1000)
    pts = _vfr(n, lo, hi, np.random.default_rng(seed), 1)
    i = min(n - 2, int(where * (n - 1)))
    limit = _vfr_threshold(np.diff(_with_hole(pts, i, 10**9)), tb)
    s = lambda spacing: stream(_with_hole(pts, i, spacing), tb=tb, duration=70)  # noqa: E731
    assert codes(analyse(result(s(limit))), "GAP_IN_STREAM") == []
    _one_gap(analyse(result(s(limit + 1))), 0, int(pts[i]))


def test_a_variable_rate_hole_just_over_four_times_the_90th_percentile_is_a_gap() -> None:
    """Frames 250-304 ms apart: 4x the 90th percentile (about 1.2 s) is the threshold, not
    the 1 s floor; a hole one tick longer is a gap (8x would call it none)."""
    pts = _vfr(200, 250, 304, np.random.default_rng(7), 1)
    limit = _vfr_threshold(np.diff(_with_hole(pts, 99, 10**9)), Fraction(1, 1000))
    assert limit > 1000
    holed = _with_hole(pts, 99, limit + 1)
    _one_gap(analyse(result(stream(holed, tb=Fraction(1, 1000)))), 0, int(pts[99]))


def test_a_gap_after_the_first_jittered_60fps_frame_in_ms_is_one_finding() -> None:
    """Found by Hypothesis: 60 fps in ms (16.7 ticks, mode 17) with capture jitter spaces
    two frames 15 ms apart, 2 ticks off the mode: a tenth of the frame (1.7) and the
    millisecond the times are rounded to (1), not a splice."""
    rate, tb = Fraction(60), Fraction(1, 1000)
    per = 1 / (rate * tb)
    pts = _jittered(_clock(40, rate, tb), per, np.random.default_rng(9))
    holed = _with_hole(pts, 0, int(1 / tb) + int(4 * per) + 1)
    _one_gap(analyse(result(stream(holed, tb=tb, duration=int(per)))), 0, int(pts[0]))
