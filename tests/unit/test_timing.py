"""Timing analysis on synthetic timelines: one behaviour per test."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.analysis.timing import Tolerances, analyse
from schemas.media import NOPTS, EditListEntry, Finding, ProbeResult, StreamTimeline

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


def audio(pts: np.ndarray, index: int = 1) -> StreamTimeline:
    return stream(pts, index=index, kind="audio", tb=AUDIO_TB)


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


# --- keyframes and parameters ---------------------------------------------------------------


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


def test_new_parameter_sets_mid_stream_are_reported() -> None:
    s = stream(regular(100), param_sets=((0, b"sps-a"), (60, b"sps-b")))
    f = codes(analyse(result(s)), "CODEC_PARAMS_CHANGED")
    assert [x.pts for x in f] == [60 * FRAME]


def test_second_encoder_signature_is_reported() -> None:
    kf = np.zeros(100, dtype=bool)
    kf[::30] = True
    s = stream(regular(100), keyframe=kf, encoder_signatures=((0, "x264 a"), (60, "x264 a")))
    assert len(codes(analyse(result(s)), "CODEC_PARAMS_CHANGED")) == 1


# --- edit lists -----------------------------------------------------------------------------


def elst(track: int, media_time: int, seg: int = 10_000, ts: int = 90000) -> EditListEntry:
    return EditListEntry(track, seg, media_time, 1000, ts)


def test_phone_sized_start_offset_is_info_not_edit() -> None:
    s = stream(regular(100, start=-14 * FRAME), discard=np.arange(100) < 14)
    f = analyse(result(s, edit_lists=(elst(0, 14 * FRAME),)))
    assert [x.code for x in f] == ["EDIT_LIST_OFFSET"]
    assert f[0].severity == "info"


def test_large_hidden_start_is_an_edit() -> None:
    s = stream(regular(200, start=-60 * FRAME), discard=np.arange(200) < 60)
    f = analyse(result(s, edit_lists=(elst(0, 60 * FRAME),)))
    assert [x.code for x in f] == ["EDIT_LIST"]
    assert "2.000 s" in f[0].detail


def test_two_pieces_are_an_edit() -> None:
    s = stream(regular(100))
    f = analyse(result(s, edit_lists=(elst(0, 0, 1000), elst(0, 60 * FRAME, 1000))))
    assert [x.code for x in f] == ["EDIT_LIST"]


def test_composition_delay_edit_is_silent() -> None:
    """ffmpeg's edit for B-frames: presentation starts at the first shown frame."""
    s = stream(regular(100), dts=regular(100, start=-2 * FRAME))
    assert analyse(result(s, edit_lists=(elst(0, 2 * FRAME),))) == []


def test_audio_priming_edit_is_silent() -> None:
    a = stream(regular(100, AAC, -AAC), index=0, kind="audio", tb=AUDIO_TB,
               discard=np.arange(100) < 1)  # fmt: skip
    assert analyse(result(a, edit_lists=(elst(0, AAC, ts=48000),))) == []


# --- spans, damage, tags --------------------------------------------------------------------


def test_declared_duration_far_from_packets_is_reported() -> None:
    f = analyse(result(stream(regular(90)), duration=Fraction(143165)))
    assert [x.code for x in f] == ["DURATION_MISMATCH"]


def test_audio_and_video_covering_different_spans_is_drift() -> None:
    v = stream(regular(300))  # 10 s
    a = audio(regular(int(8 * 48000 / AAC), AAC))  # 8 s
    assert [x.code for x in analyse(result(v, a))] == ["AV_DRIFT"]


def test_damage_codes_come_from_probe_fields() -> None:
    r = result(error="moov atom not found", truncated="mdat runs past EOF",
               demux_errors=("partial file",))  # fmt: skip
    assert [x.code for x in analyse(r)] == ["MEDIA_UNREADABLE", "MEDIA_TRUNCATED", "MEDIA_CORRUPT"]


def test_editing_tool_tags_are_reported() -> None:
    r = result(stream(regular(10), tags={"handler_name": "GPAC ISO Video Handler"}),
               tags={"encoder": "Lavf61.7.100", "comment": "剪映"})  # fmt: skip
    details = " ".join(x.detail for x in analyse(r) if x.code == "EDITING_TOOL")
    assert "FFmpeg" in details and "GPAC" in details and "剪映" in details


def test_camera_handlers_are_not_editing_tools() -> None:
    v = stream(regular(10), tags={"handler_name": "Core Media Video", "encoder": "HEVC"})
    g = stream(regular(10), index=1, tags={"handler_name": "\tGoPro AVC",
                                           "encoder": "GoPro AVC encoder"})  # fmt: skip
    r = result(v, g, tags={"com.apple.quicktime.software": "16.4.1"})
    assert codes(analyse(r), "EDITING_TOOL") == []


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


def test_av9_speech_like_needs_level_changes_above_the_floor() -> None:
    from pipeline.analysis.timing import speech_like

    rng = np.random.default_rng(1)
    syllables = -30 + 15 * (np.sin(np.arange(500) * 2 * np.pi * 4 / 50) > 0) + rng.normal(0, 1, 500)
    assert speech_like(syllables)[0]
    assert not speech_like(np.full(500, -29.0))[0]  # a steady tone
    assert not speech_like(np.full(500, -80.0) + rng.normal(0, 5, 500))[0]  # near silence
    assert not speech_like(np.full(5, -20.0))[0]  # too short to judge


def test_av9_resume_points_merge_video_and_audio_of_one_interruption() -> None:
    from pipeline.analysis.timing import resume_points

    v = regular(120)
    v[60:] += 5 * 90000
    a = regular(200, AAC)
    a[100:] += 5 * 48000
    r = result(stream(v), stream(a, index=1, kind="audio", tb=AUDIO_TB))
    (resume,) = resume_points(r, analyse(r))
    assert resume.abs_seconds == Fraction(60 * FRAME + 5 * 90000, 90000)
