"""Timing analysis on synthetic timelines: one behaviour per test."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.analysis.timing import Tolerances, analyse
from schemas.media import NOPTS
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
    f = codes(analyse(result(stream(v), stream(a, index=1, kind="audio", tb=AUDIO_TB))))
    gap = next(x for x in f if x.code == "GAP_IN_STREAM")
    assert gap.at_seconds is not None
    assert abs(gap.at_seconds - (0.1 + 29 / 30)) < 1e-9


def test_data_streams_are_not_judged() -> None:
    d = stream([0, 0, 0, 5_000_000, 5_000_000], kind="data")
    assert analyse(result(d)) == []


# --- decode order -------------------------------------------------------------------------


def test_dts_going_backwards_is_reported() -> None:
    dts = regular(20)
    dts[10] = dts[8]
    f = codes(analyse(result(stream(regular(20), dts=dts))), "TS_BACKWARDS")
    assert [x.pts for x in f] == [int(dts[10])]


def test_repeated_dts_is_reported() -> None:
    dts = regular(20)
    dts[10] = dts[9]
    f = codes(analyse(result(stream(regular(20), dts=dts))), "TS_REPEATED")
    assert len(f) == 1


def test_dts_after_pts_beyond_reorder_allowance_is_reported() -> None:
    pts = regular(20)
    dts = pts.copy()
    dts[5] = pts[5] + 10 * FRAME
    dts[6:] += 10 * FRAME
    assert len(codes(analyse(result(stream(pts, dts=dts))), "DTS_AFTER_PTS")) >= 1


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
    assert len(f) == 1
    assert "spaced 1 ticks" in f[0].detail


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
    assert len(codes(analyse(result(stream(pts)), tol), "GAP_IN_STREAM")) == 1


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
    assert len(found) == 1


def test_names_other_stages_import_stay_importable_from_timing() -> None:
    """ingest imports these from `timing`; they live in the concern modules."""
    from pipeline.analysis import provenance, timing, tolerances, voice

    assert timing.Tolerances is tolerances.Tolerances
    assert timing.resume_points is voice.resume_points
    assert timing.speech_like is voice.speech_like
    assert timing.EDITING_TOOLS is provenance.EDITING_TOOLS
