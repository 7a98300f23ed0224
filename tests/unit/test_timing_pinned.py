"""Timing findings pinned for mutation testing (issue 11 items 1 and 4): each finding's
code, count, stream, pts, time and sentence, and each threshold on both of its sides.

Timelines are built in the test (`tests.timelines`): 30 fps video in 1/90000 (3000 ticks
a frame), AAC audio at 48 kHz (1024 ticks a packet).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from pipeline.analysis import timing as tm
from pipeline.analysis.timeline import Clock
from pipeline.analysis.tolerances import Tolerances
from schemas.media import Finding, StreamTimeline
from tests.timelines import AAC, AUDIO_TB, FRAME, audio, regular, result, stream

TOL = Tolerances()


def _f(f: Finding) -> tuple[str, str, int | None, int | None, float | None]:
    return (f.code, f.detail, f.stream_index, f.pts, f.at_seconds)


def _gaps(t: StreamTimeline, tol: Tolerances = TOL) -> list[Finding]:
    return tm.find_gaps_and_splices(t, Clock([t]), tol)


# --- gaps ------------------------------------------------------------------------------------


def test_a_regular_gap_is_one_finding_with_its_exact_sentence() -> None:
    v = stream(np.concatenate([regular(10), regular(20, start=20 * FRAME)]))
    assert [_f(f) for f in _gaps(v)] == [(
        "GAP_IN_STREAM",
        "In video stream 0 nothing is presented for 0.367 s after 0.300 s (pts 27000) until "
        "0.667 s (pts 60000); its packets are normally 0.033 s (3000 ticks) apart.",
        0, 27000, 0.3)]


def test_the_regular_gap_threshold_is_the_larger_of_three_frames_and_the_floor() -> None:
    """3 frames = 9000 ticks; the 0.2 s floor = 18000 ticks wins: 18000 is no gap."""
    at = 10 * FRAME
    for hole, found in ((18000, 0), (18001, 1)):
        v = stream(np.concatenate([regular(11), at + hole + regular(20)]))
        assert len(_gaps(v)) == found, hole
    # with no floor, three frames is the threshold
    tol = Tolerances(gap_floor_regular=Fraction(0))
    for hole, found in ((3 * FRAME, 0), (3 * FRAME + 1, 1)):
        v = stream(np.concatenate([regular(11), at + hole + regular(20)]))
        assert len(_gaps(v, tol)) == found, hole


def test_gap_frames_regular_sets_the_multiple_of_the_mode() -> None:
    tol = Tolerances(gap_floor_regular=Fraction(0), gap_frames_regular=2)
    at = 10 * FRAME
    for hole, found in ((2 * FRAME, 0), (2 * FRAME + 1, 1)):
        v = stream(np.concatenate([regular(11), at + hole + regular(20)]))
        assert len(_gaps(v, tol)) == found, hole


def test_a_variable_rate_gap_is_found_at_its_pts() -> None:
    d = [33, 34, 30, 40, 35, 33, 31, 36, 33, 29, 38, 34] * 3
    first = np.cumsum([0, *d]) * 90
    pts = np.concatenate([first, first[-1] + 90 * 5000 + np.cumsum([0, *d]) * 90])
    assert [_f(f) for f in _gaps(stream(pts))] == [(
        "GAP_IN_STREAM",
        "In video stream 0 nothing is presented for 5.000 s after 1.218 s (pts 109620) "
        "until 6.218 s (pts 559620); its packets are normally 0.033 s (2970 ticks) apart.",
        0, 109620, 1.218)]


def _vfr(hole: int) -> StreamTimeline:
    """An irregular 37-packet stream whose 90th-percentile spacing is 40 ms (3600 ticks),
    then a hole of `hole` ticks."""
    d = [33, 34, 30, 40, 35, 33, 31, 36, 33, 29, 38, 34] * 3
    first = np.cumsum([0, *d]) * 90
    return stream(np.concatenate([first, first[-1] + hole + np.cumsum([0, *d]) * 90]))


def test_the_variable_rate_threshold_is_the_larger_of_four_p90_and_one_second() -> None:
    assert [len(_gaps(_vfr(h))) for h in (90000, 90001)] == [0, 1]
    tol = Tolerances(gap_floor_vfr=Fraction(0))
    p90 = 38 * 90  # the higher-method 90th percentile of the spacings above (incl. the hole)
    assert [len(_gaps(_vfr(h), tol)) for h in (4 * p90 + 90, 4 * p90 - 90 + 3000)] == [1, 1]


def test_doubling_the_variable_rate_factor_hides_a_gap_of_five_p90() -> None:
    tol = Tolerances(gap_floor_vfr=Fraction(0))
    assert len(_gaps(_vfr(int(4.5 * 3420)), tol)) == 1
    assert len(_gaps(_vfr(int(4.5 * 3420)), Tolerances(gap_floor_vfr=Fraction(0),
                                                       gap_factor_vfr=8))) == 0


def test_too_few_spacings_are_not_judged() -> None:
    """Four spacings are judged, three are not (a 9100-tick hole is a gap over three
    frames when there is no floor, and still "near" 3 frames for regularity)."""
    tol = Tolerances(gap_floor_regular=Fraction(0))
    v = stream([0, FRAME, 2 * FRAME, 3 * FRAME, 3 * FRAME + 9100])
    assert [f.pts for f in _gaps(v, tol)] == [9000]
    v = stream([0, FRAME, 2 * FRAME, 2 * FRAME + 9100])
    assert _gaps(v, tol) == []


def test_a_stream_whose_times_never_advance_is_not_judged() -> None:
    assert _gaps(stream([5, 5, 5, 5, 5, 5])) == []


def test_gaps_past_the_cap_are_counted_in_one_more_finding() -> None:
    p = np.concatenate([regular(20, start=i * 36 * FRAME) for i in range(25)])
    found = _gaps(stream(p))
    assert len(found) == 21
    assert [f.pts for f in found[:2]] == [19 * FRAME, 55 * FRAME]
    last = found[-1]
    assert (last.code, last.detail, last.stream_index, last.pts) == (
        "GAP_IN_STREAM",
        "Video stream 0 has 4 more findings of this kind, not listed one by one.", 0, None)


def test_repeated_times_count_against_a_regular_clock() -> None:
    """Spacings of 0 (a time repeated) are near no multiple of the mode: 60 frames with 7
    more at frame 9's time leave 58 of 66 spacings near it, under nine in ten, so a
    half-second hole (15 frames, over the 0.2 s floor) is judged by the variable-rate rule
    (1 s) and is no gap; with 5 (58 of 64) the clock is regular and the hole is a gap."""
    def with_repeats(n: int) -> StreamTimeline:
        p = regular(60)
        p[40:] += 15 * FRAME - FRAME  # 45000 ticks after frame 39
        return stream(np.insert(p, 10, [p[9]] * n))

    assert _gaps(with_repeats(7)) == []
    assert [(f.code, f.pts) for f in _gaps(with_repeats(5))] == [("GAP_IN_STREAM", 39 * FRAME)]


def test_a_stream_timed_in_frames_has_a_mode_of_one_tick() -> None:
    """Time base 1/30 at 30 fps: every frame 1 tick after the last. The mode is 1 tick,
    so a 1 s hole (30 ticks) is over the 0.2 s floor (6 ticks): a gap after frame 19."""
    p = np.arange(60, dtype=np.int64)
    p[20:] += 29
    (f,) = _gaps(stream(p, tb=Fraction(1, 30), duration=1))
    assert (f.code, f.pts, f.at_seconds) == ("GAP_IN_STREAM", 19, 19 / 30)
    assert f.detail.endswith("its packets are normally 0.033 s (1 ticks) apart.")


def test_the_rounding_is_whole_ticks_times_the_frames_spanned() -> None:
    """AAC, 1024 ticks: the rounding is 1024 // 50 = 20 ticks a packet. Two packets
    missing and 60 more is 3 x 20 off: regular; 61 is a splice (20.48 a packet would
    allow it)."""
    for extra, found in ((60, []), (61, [("SPLICE_IRREGULAR_DURATION", 19 * AAC)])):
        a = regular(40, AAC)
        a[20:] += 2 * AAC + extra
        assert [(f.code, f.pts) for f in _gaps(audio(a))] == found, extra


def test_the_models_tick_rounding_is_allowed_on_top_of_the_video_jitter() -> None:
    """A family whose times are rounded to 2 ticks: 300 + 2 off is jitter there; in the
    sample-table model (1 tick) it is a splice."""
    from dataclasses import replace

    from pipeline.analysis.models import model_for

    coarse = replace(model_for(None), tick_jitter=2)
    for shift, model, found in ((302, coarse, 0), (303, coarse, 1), (302, None, 1)):
        p = regular(40)
        p[20:] -= shift
        t = stream(p)
        got = tm.find_gaps_and_splices(t, Clock([t]), TOL, model)
        assert [(f.code, f.pts) for f in got] == [
            ("SPLICE_IRREGULAR_DURATION", 19 * FRAME)] * found, (shift, model)


# --- splices -------------------------------------------------------------------------------


def _spliced(shift: int, n: int = 40, at: int = 20) -> StreamTimeline:
    a = regular(n, AAC)
    a[at:] -= shift
    return audio(a)


def test_one_odd_audio_spacing_is_a_splice_with_its_sentence() -> None:
    assert [_f(f) for f in _gaps(_spliced(24))] == [(
        "SPLICE_IRREGULAR_DURATION",
        "In audio stream 1, perfectly regular at 1024 ticks (0.021 s), the packets after "
        "0.405 s (pts 19456) are spaced 1000 ticks apart.",
        1, 19456, 0.4053333333333333)]


def test_audio_is_allowed_only_its_rounding_not_the_video_jitter() -> None:
    """1024 // 50 = 20 ticks: 20 off is regular, 21 off is a splice."""
    assert _gaps(_spliced(20)) == []
    assert [f.code for f in _gaps(_spliced(21))] == ["SPLICE_IRREGULAR_DURATION"]


def test_video_is_allowed_a_tenth_of_a_frame_and_the_tick_times_are_rounded_to() -> None:
    """3000 ticks a frame: 300 (a tenth) + 1 (the sample table's tick) off is jitter, 302
    is a splice."""
    for shift, found in ((301, 0), (302, 1)):
        p = regular(40)
        p[20:] -= shift
        assert len(_gaps(stream(p))) == found, shift


def test_video_with_no_jitter_allowed_keeps_its_rounding() -> None:
    """splice_video_jitter 0: a video spacing is odd past its rounding, 3000 // 50 = 60
    ticks, as audio's is (the tick of the times alone would allow only 1)."""
    tol = Tolerances(splice_video_jitter=Fraction(0))
    for shift, found in ((60, 0), (61, 1)):
        p = regular(40)
        p[20:] -= shift
        assert [f.pts for f in _gaps(stream(p), tol)] == [19 * FRAME] * found, shift


def test_adjacent_odd_spacings_are_one_splice_listing_both() -> None:
    a = regular(40, AAC)
    a[20] -= 500  # 524 after its predecessor, 1524 before the next
    (f,) = _gaps(audio(a))
    assert f.detail.endswith("the packets after 0.405 s (pts 19456) are spaced 524, 1524 "
                             "ticks apart.")
    assert f.pts == 19456


def test_two_separate_odd_spacings_are_two_splices() -> None:
    a = regular(40, AAC)
    a[10:] -= 30
    a[30:] -= 30
    assert [f.pts for f in _gaps(audio(a))] == [9 * AAC, 29 * AAC - 30]


def test_more_odd_spacings_than_the_limit_are_not_splices() -> None:
    a = regular(60, AAC)
    for at in (10, 20, 30, 40):
        a[at:] -= 30
    assert _gaps(audio(a)) == []
    assert len(_gaps(audio(a), Tolerances(splice_max_odd=4))) == 4


def test_a_stream_of_fewer_than_eight_spacings_has_no_splice() -> None:
    tol = Tolerances(regular_share=Fraction(3, 4))  # one odd spacing in 7 or 8 is regular
    a = regular(8, AAC)
    a[4:] -= 30
    assert _gaps(audio(a), tol) == []
    a = regular(9, AAC)
    a[4:] -= 30
    assert [f.pts for f in _gaps(audio(a), tol)] == [3 * AAC]


def test_the_first_and_last_spacings_are_never_splices() -> None:
    a = regular(40, AAC)
    a[1:] -= 30
    a[39] -= 30
    assert _gaps(audio(a)) == []


def test_a_gap_is_not_also_a_splice() -> None:
    a = regular(40, AAC)
    a[20:] += 48000 + 17
    assert [f.code for f in _gaps(audio(a))] == ["GAP_IN_STREAM"]


# --- decode order ---------------------------------------------------------------------------


def _order(t: StreamTimeline, model: object = None) -> list[Finding]:
    return tm.find_decode_order(t, Clock([t]), TOL, model)  # type: ignore[arg-type]


def test_a_decode_time_running_back_is_ts_backwards() -> None:
    dts = regular(10)
    dts[5] = dts[3]
    findings = _order(stream(regular(10), dts=dts))
    assert [_f(f) for f in findings] == [(
        "TS_BACKWARDS",
        "In video stream 0 packet 5 is decoded at 0.100 s (dts 9000), 0.033 s before the "
        "packet ahead of it (dts 12000).", 0, 9000, 0.1)]


def test_a_repeated_decode_time_is_ts_repeated() -> None:
    dts = regular(10)
    dts[6] = dts[5]
    assert [_f(f) for f in _order(stream(regular(10), dts=dts))] == [(
        "TS_REPEATED",
        "In video stream 0 packets 5 and 6 share the decode time 0.167 s (dts 15000).",
        0, 15000, 0.16666666666666666)]


def test_a_decode_far_after_its_presentation_is_dts_after_pts() -> None:
    """The allowance is four spacings (12000 ticks): 12000 late is fine, 13000 is not."""
    for lead, found in ((12000, []), (13000, [(
        "DTS_AFTER_PTS",
        "In video stream 0 packet 9 is decoded at dts 27000, 0.144 s after it is due on "
        "screen at 0.156 s (pts 14000).", 0, 14000, 0.15555555555555556)])):
        p = regular(10)
        p[9] = 27000 - lead
        assert [_f(f) for f in _order(stream(p, dts=regular(10)))] == found, lead


def test_packets_without_a_decode_time_are_left_out() -> None:
    from schemas.media import NOPTS

    dts = regular(10)
    dts[5] = NOPTS
    assert _order(stream(regular(10), dts=dts)) == []
    assert _order(stream([0], dts=[0])) == []


def test_in_ogg_only_page_times_are_judged() -> None:
    from pipeline.analysis.models import model_for

    ogg = model_for("ogg")
    dts = regular(10)
    dts[4] = dts[3]  # packet 3 does not end its page (same byte position as packet 4)
    t = stream(regular(10), dts=dts)
    t.pos[3] = t.pos[4]
    assert _order(t, ogg) == []
    assert [f.code for f in _order(t)] == ["TS_REPEATED"]


# --- keyframes -------------------------------------------------------------------------------


def test_a_short_gop_in_a_fixed_cadence_is_a_keyframe_break() -> None:
    kf = np.zeros(200, dtype=np.bool_)
    kf[::15] = True
    kf[50] = True
    found = tm.find_keyframe_breaks(stream(regular(200), keyframe=kf),
                                    Clock([stream(regular(200))]), TOL)
    assert [_f(f) for f in found] == [
        ("KEYFRAME_INTERVAL_BREAK",
         "In video stream 0 keyframes come every 0.500 s, but the one at 1.500 s (pts 135000) "
         "is followed by the next after only 0.167 s (pts 150000).", 0, 135000, 1.5),
        ("KEYFRAME_INTERVAL_BREAK",
         "In video stream 0 keyframes come every 0.500 s, but the one at 1.667 s (pts 150000) "
         "is followed by the next after only 0.333 s (pts 180000).", 0, 150000,
         1.6666666666666667),
    ]


def test_a_gop_shorter_by_the_slack_only_is_no_break() -> None:
    """Slack is a tenth of the cadence: 15 frames = 45000 ticks, slack 4500."""
    pts = regular(200)
    kf = np.zeros(200, dtype=np.bool_)
    kf[::15] = True
    t = stream(pts, keyframe=kf)  # dts is the same array as pts here
    t.pts[75:] -= 4500
    assert tm.find_keyframe_breaks(t, Clock([t]), TOL) == []
    t.pts[75:] -= 1
    assert [f.pts for f in tm.find_keyframe_breaks(t, Clock([t]), TOL)] == [60 * FRAME]


def test_too_few_keyframe_intervals_are_not_judged() -> None:
    kf = np.zeros(70, dtype=np.bool_)
    kf[[0, 15, 30, 35, 50]] = True  # 4 intervals, 3 of them the cadence: judged
    t = stream(regular(70), keyframe=kf)
    assert [f.pts for f in tm.find_keyframe_breaks(t, Clock([t]), TOL)] == [30 * FRAME]
    assert tm.find_keyframe_breaks(t, Clock([t]), Tolerances(keyframe_min_intervals=5)) == []


def test_discarded_keyframes_do_not_count() -> None:
    kf = np.zeros(200, dtype=np.bool_)
    kf[::15] = True
    kf[50] = True
    discard = np.zeros(200, dtype=np.bool_)
    discard[50] = True
    t = stream(regular(200), keyframe=kf, discard=discard)
    assert tm.find_keyframe_breaks(t, Clock([t]), TOL) == []


def _cadence(intervals: list[int], tb: Fraction = Fraction(1, 90000)) -> StreamTimeline:
    """Keyframes only, the given ticks apart."""
    pts = np.concatenate([[0], np.cumsum(intervals)]).astype(np.int64)
    return stream(pts, tb=tb, keyframe=np.ones(pts.size, dtype=np.bool_))


def test_an_interval_exactly_the_slack_off_counts_for_the_cadence() -> None:
    """45000-tick GOPs, slack 4500: 5 of 8 intervals the mode and one 49500 (the slack off)
    make 6 of 8, three quarters exactly: judged, so the 30000 one is a break."""
    t = _cadence([45000] * 5 + [49500, 30000, 60000])
    assert [(f.code, f.pts) for f in tm.find_keyframe_breaks(t, Clock([t]), TOL)] == [
        ("KEYFRAME_INTERVAL_BREAK", 5 * 45000 + 49500)]
    t = _cadence([45000] * 5 + [49501, 30000, 60000])  # 5 of 8: not a fixed cadence
    assert tm.find_keyframe_breaks(t, Clock([t]), TOL) == []


def test_the_keyframe_slack_is_at_least_one_tick() -> None:
    """A keyframe every 15 ticks (time base 1/30, a tick a frame): 15 // 10 = 1 tick of
    slack. A GOP of 14 is within it; 13 is a break."""
    tb = Fraction(1, 30)
    t = _cadence([15] * 6 + [14] + [15] * 2, tb)
    assert tm.find_keyframe_breaks(t, Clock([t]), TOL) == []
    t = _cadence([15] * 6 + [13] + [15] * 2, tb)
    assert [(f.pts, f.at_seconds) for f in tm.find_keyframe_breaks(t, Clock([t]), TOL)] == [
        (90, 3.0)]


# --- audio against video -----------------------------------------------------------------


def test_audio_and_video_covering_different_spans_is_av_drift() -> None:
    v = stream(regular(90))
    a = audio(regular(200, AAC, start=48000))
    (f,) = tm.find_drift(result(v, a), Clock([v, a]), TOL)
    assert _f(f) == (
        "AV_DRIFT",
        "Video stream 0 covers 0.000-3.000 s but audio stream 1 covers 1.000-5.267 s (starts "
        "1.000 s apart, ends 2.267 s apart).", 1, None, None)


def _audio_ending(end_ticks: int, start: int = 0) -> StreamTimeline:
    """AAC packets from `start`, the last one's duration stretched to end at `end_ticks`."""
    pts = regular(164, AAC, start=start)
    t = stream(pts, index=1, kind="audio", tb=AUDIO_TB)
    t.duration[-1] = end_ticks - int(pts[-1])
    return t


def test_drift_of_exactly_the_tolerance_at_either_end_is_none() -> None:
    v = stream(regular(90))  # 0 .. 3 s
    for a, found in ((_audio_ending(168000), 0),  # ends 3.5 s: 0.5 s after the video
                     (_audio_ending(168001), 1),
                     (_audio_ending(190000, start=24000), 1),  # starts 0.5 s late, ends late
                     ):
        assert len(tm.find_drift(result(v, a), Clock([v, a]), TOL)) == found
    late = audio(regular(117, AAC, start=24000))  # starts 0.5 s late, ends 2.996 s
    assert tm.find_drift(result(v, late), Clock([v, late]), TOL) == []
    later = audio(regular(117, AAC, start=24001))
    assert len(tm.find_drift(result(v, later), Clock([v, later]), TOL)) == 1


def test_drift_needs_both_a_video_and_an_audio_stream_with_two_packets() -> None:
    v = stream(regular(90))
    assert tm.find_drift(result(v), Clock([v]), TOL) == []
    one = audio(np.array([0]))
    assert tm.find_drift(result(v, one), Clock([v, one]), TOL) == []


# --- analyse ------------------------------------------------------------------------------


def test_analyse_runs_every_check_per_media_stream_in_order() -> None:
    p = np.concatenate([regular(10), regular(30, start=20 * FRAME)])
    dts = p.copy()
    dts[25] = dts[24]
    v = stream(p, dts=dts)
    a = _spliced(24)
    codes = [(f.code, f.stream_index) for f in tm.analyse(result(v, a))]
    assert codes == [("GAP_IN_STREAM", 0), ("TS_REPEATED", 0),
                     ("SPLICE_IRREGULAR_DURATION", 1), ("AV_DRIFT", 1)]


def test_analyse_skips_data_and_empty_streams() -> None:
    data = stream(np.array([0, 90000 * 10, 3]), kind="data")
    empty = stream(np.array([], dtype=np.int64), index=1)
    assert tm.analyse(result(data, empty)) == []


@pytest.mark.parametrize("hole", [18001, 90000])
def test_analyse_places_a_gap_at_the_last_frame_before_it(hole: int) -> None:
    v = stream(np.concatenate([regular(11), 10 * FRAME + hole + regular(20)]))
    (f,) = tm.analyse(result(v))
    assert (f.code, f.pts, f.at_seconds) == ("GAP_IN_STREAM", 10 * FRAME, 10 * FRAME / 90000)


# --- more than the cap, the origin, which streams are compared ----------------------------


def _capped(found: list[Finding], code: str, more: int) -> None:
    assert len(found) == 21
    assert {f.code for f in found} == {code}
    last = found[-1]
    assert (last.detail, last.stream_index, last.pts) == (
        f"Video stream 0 has {more} more findings of this kind, not listed one by one.", 0,
        None)


def test_repeated_decode_times_past_the_cap_are_counted() -> None:
    dts = np.repeat(regular(25), 2)
    _capped(_order(stream(np.sort(dts), dts=dts)), "TS_REPEATED", 5)


def test_backward_decode_times_past_the_cap_are_counted() -> None:
    dts = regular(50)
    dts[1::2] -= 2 * FRAME  # every other packet decoded before the one ahead of it
    found = [f for f in _order(stream(regular(50), dts=dts)) if f.code == "TS_BACKWARDS"]
    _capped(found, "TS_BACKWARDS", 5)


def test_late_decode_times_past_the_cap_are_counted() -> None:
    p = regular(60)
    p[10:35] -= 13000
    found = [f for f in _order(stream(p, dts=regular(60))) if f.code == "DTS_AFTER_PTS"]
    _capped(found, "DTS_AFTER_PTS", 5)


def test_keyframe_breaks_past_the_cap_are_counted() -> None:
    kf = np.zeros(1500, dtype=np.bool_)
    kf[::15] = True
    kf[[15 * g + 5 for g in range(0, 65, 5)]] = True  # 13 GOPs split: 26 short intervals
    t = stream(regular(1500), keyframe=kf)
    _capped(tm.find_keyframe_breaks(t, Clock([t]), TOL), "KEYFRAME_INTERVAL_BREAK", 6)


def test_drift_is_told_in_seconds_from_the_files_earliest_time() -> None:
    v = stream(regular(90, start=2 * 90000))  # 2 .. 5 s
    a = audio(regular(200, AAC, start=3 * 48000))  # 3 .. 7.267 s
    (f,) = tm.find_drift(result(v, a), Clock([v, a]), TOL)
    assert f.detail == (
        "Video stream 0 covers 0.000-3.000 s but audio stream 1 covers 1.000-5.267 s (starts "
        "1.000 s apart, ends 2.267 s apart).")


def test_drift_compares_the_first_streams_with_two_shown_packets() -> None:
    hidden = stream(regular(90), discard=np.ones(90, dtype=np.bool_))  # nothing shown
    v = stream(regular(90), index=2)
    pair = audio(np.array([0, 48000 * 2]), index=3)  # two packets: enough
    (f,) = tm.find_drift(result(hidden, v, pair), Clock([v, pair]), TOL)
    assert f.detail.startswith("Video stream 2 covers 0.000-3.000 s but audio stream 3 covers")


def _pages(dts: np.ndarray, pos: list[int]) -> StreamTimeline:
    t = stream(regular(dts.size), dts=dts)
    t.pos[:] = pos
    return t


def test_in_ogg_the_times_of_page_ends_are_judged_and_the_rest_not() -> None:
    from pipeline.analysis.models import model_for

    ogg = model_for("ogg")
    dts = regular(10)
    dts[0] = dts[3] = dts[1]  # packets 1 and 3 end their pages (two packets a page)
    dts[2] = dts[4] = 0  # packets 0, 2 and 4 do not: their times are interpolated
    pages = [0, 0, 1000, 1000, 2000, 2000, 3000, 3000, 4000, 4000]
    assert [_f(f)[:2] for f in _order(_pages(dts, pages), ogg)] == [(
        "TS_REPEATED",
        "In video stream 0 packets 1 and 3 share the decode time 0.033 s (dts 3000).")]
    # a packet of unknown position (-1) counts as ending its page
    unknown = [-1, -1, *pages[2:]]
    assert [f.detail.split(" share ")[0] for f in _order(_pages(dts, unknown), ogg)] == [
        "In video stream 0 packets 0 and 1", "In video stream 0 packets 1 and 3"]


def test_in_ogg_a_page_end_without_a_decode_time_is_left_out() -> None:
    """Packet 3 ends its page but has no dts: left out, as anywhere else; the repeat of
    packets 5 and 7 (both page ends) is the one finding."""
    from pipeline.analysis.models import model_for
    from schemas.media import NOPTS

    dts = regular(10)
    dts[3] = NOPTS
    dts[7] = dts[5]
    pages = [0, 0, 1000, 1000, 2000, 2000, 3000, 3000, 4000, 4000]
    assert [_f(f)[:4] for f in _order(_pages(dts, pages), model_for("ogg"))] == [(
        "TS_REPEATED",
        "In video stream 0 packets 5 and 7 share the decode time 0.167 s (dts 15000).",
        0, 15000)]


def test_analyse_goes_on_past_a_data_stream_to_the_media_after_it() -> None:
    data = stream(np.array([0, 900000, 3]), kind="data")
    v = stream(np.concatenate([regular(11), 10 * FRAME + 90000 + regular(20)]), index=1)
    assert [(f.code, f.stream_index) for f in tm.analyse(result(data, v))] == [
        ("GAP_IN_STREAM", 1)]


def test_analyse_reports_rewritten_times_with_their_clock() -> None:
    p = regular(60)
    p = np.concatenate([p[:21], p[20] + np.arange(1, 6), p[21:] + 5])
    (f,) = [f for f in tm.analyse(result(stream(p))) if f.code == "TS_REWRITTEN"]
    assert (f.pts, f.at_seconds) == (20 * FRAME, 20 * FRAME / 90000)


def test_analyse_reads_ogg_times_as_ogg_stores_them() -> None:
    """Only page ends carry a time in Ogg: analyse judges those alone."""
    dts = regular(10)
    dts[0] = dts[3] = dts[1]
    dts[2] = dts[4] = 0
    t = _pages(dts, [0, 0, 1000, 1000, 2000, 2000, 3000, 3000, 4000, 4000])
    found = [f for f in tm.analyse(result(t, container="ogg")) if f.code.startswith("TS_")]
    assert [(f.code, f.pts) for f in found] == [("TS_REPEATED", 3000)]


def test_in_mpeg_ts_a_packet_without_pts_is_timed_by_its_dts_for_gaps() -> None:
    """30 frames whose PES headers carry no pts are no gap: their decode times stand in."""
    from pipeline.analysis.models import model_for
    from schemas.media import NOPTS

    ts = model_for("mpegts")
    p = regular(90)
    p[30:60] = NOPTS
    t = stream(p, dts=regular(90))
    assert tm.find_gaps_and_splices(t, Clock([t]), TOL, ts) == []
    (f,) = tm.find_gaps_and_splices(t, Clock([t]), TOL)  # judged on pts alone: a gap
    assert (f.code, f.pts) == ("GAP_IN_STREAM", 29 * FRAME)


def test_a_spacing_of_exactly_the_gap_threshold_can_still_be_a_splice() -> None:
    """Audio at 1024 ticks: the 0.2 s floor is 9600 ticks, not a whole number of packets;
    9600 is no gap, and as 9.375 packets it is an odd spacing."""
    a = regular(40, AAC)
    a[20:] += 9600 - AAC
    assert [(f.code, f.pts) for f in _gaps(audio(a))] == [
        ("SPLICE_IRREGULAR_DURATION", 19 * AAC)]


def test_exactly_nine_in_ten_near_the_mode_is_a_regular_clock() -> None:
    """27 of 30 spacings near 3000: regular, so a 20000-tick hole is a gap (over 0.2 s)."""
    spacings = [3000] * 27 + [4500, 4500, 20000]
    p = np.concatenate([[0], np.cumsum(spacings)]).astype(np.int64)
    assert [(f.code, f.pts) for f in _gaps(stream(p))] == [
        ("GAP_IN_STREAM", 90000), ("SPLICE_IRREGULAR_DURATION", 81000)]
    spacings = [3000] * 26 + [4500, 4500, 4500, 20000]  # 26 of 30: variable-rate rule
    p = np.concatenate([[0], np.cumsum(spacings)]).astype(np.int64)
    assert _gaps(stream(p)) == []


def test_two_decode_times_are_enough_to_run_backwards() -> None:
    assert [f.code for f in _order(stream([0, 3000], dts=[3000, 0]))] == ["TS_BACKWARDS"]


def test_a_backward_decode_names_the_packet_after_it() -> None:
    dts = regular(10)
    dts[5] = dts[3] + 1
    (f,) = _order(stream(regular(10), dts=dts))
    assert f.detail == ("In video stream 0 packet 5 is decoded at 0.100 s (dts 9001), 0.033 s "
                        "before the packet ahead of it (dts 12000).")


def test_a_stream_of_one_packet_is_still_judged() -> None:
    """Its decode time 5 frames after its presentation is DTS_AFTER_PTS (4 are allowed)."""
    t = stream(np.array([0]), dts=np.array([5 * FRAME]))
    assert [(f.code, f.pts) for f in tm.analyse(result(t))] == [("DTS_AFTER_PTS", 0)]


# --- analyse: the family's model, and the file's clock for every check --------------------


def _wrapped(n: int, before: int) -> np.ndarray:
    """n frames whose 33-bit PES times wrap to 0 after `before` frames (FFmpeg left them
    wrapped), and a 1 s hole after frame 60."""
    p = (1 << 33) - before * FRAME + regular(n)
    p[61:] += 90000
    return p % (1 << 33)


def test_analyse_undoes_a_33_bit_wrap_in_mpeg_ts() -> None:
    """Read as MPEG-TS the times run on past 2**33: one gap, after frame 60, at its
    unwrapped pts, 2 s into the file."""
    t = stream(_wrapped(90, 45))
    (f,) = tm.analyse(result(t, container="mpegts"))
    assert (f.code, f.pts, f.at_seconds) == ("GAP_IN_STREAM", (1 << 33) + 15 * FRAME, 2.0)


def test_analyse_judges_mpeg_ts_gaps_with_decode_times_standing_in() -> None:
    """PES headers without pts for frames 30-59 are no gap in MPEG-TS (their dts stand in);
    the 1 s hole after frame 70 is the one gap."""
    from schemas.media import NOPTS

    p = regular(100)
    p[71:] += 90000
    dts = p.copy()
    p[30:60] = NOPTS
    found = tm.analyse(result(stream(p, dts=dts), container="mpegts"))
    assert [(f.code, f.pts) for f in found] == [("GAP_IN_STREAM", 70 * FRAME)]


def _video_after_audio(**kw: object) -> tuple[StreamTimeline, StreamTimeline]:
    """Video from 0.1 s (pts 9000), audio from 0: the file's clock starts with the audio."""
    v = stream(regular(90, start=9000), **kw)
    a = audio(regular(145, AAC))
    return v, a


def test_analyse_tells_a_parameter_change_on_the_files_clock() -> None:
    v, a = _video_after_audio(param_sets=((0, b"sps-a"), (30, b"sps-b")))
    assert [_f(f) for f in tm.analyse(result(v, a))] == [(
        "CODEC_PARAMS_CHANGED",
        "In video stream 0 the coding parameter sets change at packet 30 at 1.100 s "
        "(pts 99000).", 0, 99000, 1.1)]


def test_analyse_tells_an_edit_list_on_the_files_clock() -> None:
    from schemas.media import EditListEntry

    v, a = _video_after_audio()
    edits = (EditListEntry(0, 1000, -1, 1000, 90000), EditListEntry(0, 3000, 0, 1000, 90000))
    found = tm.analyse(result(v, a, edit_lists=edits))
    assert [(f.code, f.stream_index, f.pts, f.at_seconds) for f in found] == [
        ("EDIT_LIST", 0, 9000, 0.1)]
    assert found[0].detail.startswith("The edit list of video stream 0 delays it by 1.000 s")


def test_analyse_compares_the_declared_duration_with_its_tolerances() -> None:
    """Packets cover 3.1 s: 3.6 declared is within half a second, 3.7 is not, and a
    tolerance of 0.7 s allows it."""
    v, a = _video_after_audio()
    assert tm.analyse(result(v, a, duration=Fraction(36, 10))) == []
    (f,) = tm.analyse(result(v, a, duration=Fraction(37, 10)))
    assert (f.code, f.detail) == (
        "DURATION_MISMATCH",
        "The container declares 3.700 s but its packets cover 3.100 s (from 0.000 s to "
        "3.100 s).")
    assert tm.analyse(result(v, a, duration=Fraction(37, 10)),
                      Tolerances(duration_tol=Fraction(7, 10))) == []
