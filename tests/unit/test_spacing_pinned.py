"""Impossible spacing (TS_REWRITTEN) pinned for mutation testing (issue 11 items 1, 4):
the run's first pts, its packet count, its sentence, and each threshold on both sides.
"""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import numpy as np

from pipeline.analysis.spacing import find_impossible_spacing
from pipeline.analysis.timeline import Clock
from pipeline.analysis.tolerances import Tolerances
from schemas.media import Finding, StreamTimeline
from tests.timelines import AAC, FRAME, audio, regular, stream

TOL = Tolerances()


def _find(t: StreamTimeline, tol: Tolerances = TOL) -> list[Finding]:
    return find_impossible_spacing(t, Clock([t]), tol)


def _f(f: Finding) -> tuple[str, str, int | None, int | None, float | None]:
    return (f.code, f.detail, f.stream_index, f.pts, f.at_seconds)


def run_of(step: int, *, n: int = 60, at: int = 20, run: int = 5,
           base: int = FRAME) -> np.ndarray:
    """n times `base` apart, except `run` packets `step` apart after packet `at`."""
    head = regular(at + 1, base)
    mid = head[-1] + step * np.arange(1, run + 1, dtype=np.int64)
    tail = mid[-1] + base + regular(n - at - 1 - run, base)
    return np.concatenate([head, mid, tail])


def test_a_run_far_below_the_streams_own_spacing_is_rewritten_with_its_sentence() -> None:
    assert [_f(f) for f in _find(stream(run_of(749)))] == [(
        "TS_REWRITTEN",
        "In video stream 0 6 packets from 0.667 s (pts 60000) to 0.708 s (pts 63745) are "
        "presented within 0.042 s, each closer to the one before than any capture clock "
        "spaces them (its packets are otherwise 0.033 s (3000 ticks) apart): the times were "
        "written by a muxer.",
        0, 60000, 0.6666666666666666)]


def test_a_quarter_of_the_nominal_spacing_exactly_is_not_rewritten() -> None:
    assert _find(stream(run_of(750))) == []


def test_the_share_of_the_nominal_spacing_can_be_changed() -> None:
    assert len(_find(stream(run_of(1400)), Tolerances(rewritten_share=Fraction(1, 2)))) == 1
    assert _find(stream(run_of(1500)), Tolerances(rewritten_share=Fraction(1, 2))) == []


def test_below_the_frame_rate_ceiling_is_rewritten_even_near_the_own_spacing() -> None:
    """At 240 fps (375 ticks) a quarter is 93 ticks; 300 fps is 300 ticks: 299 is below."""
    (f,) = _find(stream(run_of(299, base=375)))
    assert (f.pts, f.detail.split(" are ")[0]) == (
        7500, "In video stream 0 6 packets from 0.083 s (pts 7500) to 0.100 s (pts 8995)")
    assert _find(stream(run_of(300, base=375))) == []
    assert _find(stream(run_of(299, base=375)), Tolerances(rewritten_max_fps=400)) == []


def test_a_run_must_be_three_spacings_long() -> None:
    (f,) = _find(stream(run_of(1, run=3)))
    assert f.detail.startswith("In video stream 0 4 packets from 0.667 s (pts 60000) to "
                               "0.667 s (pts 60003) are presented within 0.033 ms")
    assert _find(stream(run_of(1, run=2))) == []
    assert _find(stream(run_of(1, run=3)), Tolerances(rewritten_min_run=4)) == []


def test_a_span_below_a_millisecond_is_shown_in_milliseconds() -> None:
    """Three decimals of a second would show 76 ticks of 1/90000 s as 0.001 s and 3 ticks
    as 0.000 s; from exactly 1 ms on, seconds."""
    for step, run, within in ((1, 3, "0.033 ms"), (19, 4, "0.84 ms"), (30, 3, "0.001 s")):
        (f,) = _find(stream(run_of(step, run=run)))
        assert f.detail.split(" are presented within ")[1].startswith(within + ", "), step
    # 9995 ticks of 100 ns (ASF's unit): just under a millisecond, above 1/1001 s
    (f,) = _find(stream(run_of(1999, run=5, base=333333), tb=Fraction(1, 10**7)))
    assert " are presented within 1.0 ms, " in f.detail


def test_two_runs_are_two_findings_in_order() -> None:
    p = np.concatenate([run_of(1, n=40, at=10), 40 * FRAME + 1000 + run_of(1, n=40, at=10)])
    assert [f.pts for f in _find(stream(p))] == [10 * FRAME, 40 * FRAME + 1000 + 10 * FRAME]


def test_a_stream_of_fewer_than_three_spacings_is_not_judged() -> None:
    assert _find(stream([0, 1, 2])) == []
    assert [f.pts for f in _find(stream([0, 1, 2, 3]))] == [0]


def test_irregular_video_is_judged_by_the_ceiling_alone_and_says_so() -> None:
    """A phone's variable rate has no nominal spacing: only 300 fps bounds it."""
    ms = [33, 41, 27, 60, 35, 52, 31, 45, 29, 38] * 4
    pts = np.concatenate([[0], np.cumsum(ms)]).astype(np.int64)
    at = 15
    pts = np.concatenate([pts[:at + 1], pts[at] + np.arange(1, 5), pts[at + 1:] + 10])
    (f,) = _find(stream(pts, tb=Fraction(1, 1000), duration=30))
    assert f.detail == (
        f"In video stream 0 5 packets from {pts[at] / 1000:.3f} s (pts {pts[at]}) to "
        f"{(pts[at] + 4) / 1000:.3f} s (pts {pts[at] + 4}) are presented within 0.004 s, "
        "each closer to the one before than any capture clock spaces them (no video clock "
        "spaces packets less than 0.003 s apart): the times were written by a muxer.")


def test_audio_of_a_known_codec_is_judged_against_a_quarter_of_its_shortest_frame() -> None:
    """AAC's shortest frame is 480 samples: a quarter, 120 ticks at 48 kHz, is the floor."""
    ms = [1024, 1500, 1300, 1800, 1100, 1700] * 5  # irregular: no nominal spacing
    base = np.concatenate([[0], np.cumsum(ms)]).astype(np.int64)
    for step, found in ((119, 1), (120, 0)):
        pts = np.concatenate([base[:6], base[5] + step * np.arange(1, 5),
                              base[6:] + 4 * step])
        a = replace(audio(pts), sample_rate=48000)
        assert len(_find(a)) == found, step


def test_variable_block_audio_has_no_nominal_spacing_only_its_codec_floor() -> None:
    d = [1024] * 20 + [1] * 5 + [1024] * 20
    pts = np.concatenate([[0], np.cumsum(d)]).astype(np.int64)
    a = replace(audio(pts, index=0), codec="vorbis", sample_rate=48000)
    (f,) = _find(a)
    # a quarter of Vorbis's 32-sample block at 48 kHz: 1/6000 s, shown in milliseconds
    assert f.detail.endswith("(no audio clock spaces packets less than 0.17 ms apart): the "
                             "times were written by a muxer.")
    assert "are presented within 0.10 ms" in f.detail  # 5 ticks of 1/48000 s
    # Vorbis's own short blocks (128 of 1024 samples) are not judged against the mode
    d = ([1024] * 20 + [576] + [128] * 30 + [576]) * 2
    pts = np.concatenate([[0], np.cumsum(d)[:-1]]).astype(np.int64)
    assert _find(replace(audio(pts, index=0), codec="vorbis", sample_rate=48000)) == []


def test_audio_without_a_sample_rate_is_judged_by_its_own_spacing_only() -> None:
    a = regular(60, AAC)
    a = np.concatenate([a[:21], a[20] + np.arange(1, 6), a[21:] + 5])
    (f,) = _find(audio(a))
    assert f.detail.endswith("(its packets are otherwise 0.021 s (1024 ticks) apart): the "
                             "times were written by a muxer.")


def test_a_stream_too_short_for_a_nominal_spacing_uses_the_ceiling() -> None:
    v = stream(np.array([0, 1, 2, 3, 3003]))  # four spacings, three of them tiny
    (f,) = _find(v, Tolerances(min_spacings=5))
    assert "(no video clock spaces packets less than 0.003 s apart)" in f.detail


def test_a_mostly_irregular_stream_has_no_nominal_spacing() -> None:
    """Below `regular_share` near the mode: judged by the ceiling alone, which 700-tick
    spacings are above; with a lower share the mode (3000) judges them, and finds them."""
    ms = [3000, 4100, 2600, 5200, 3000, 3900, 2500, 3000, 4700, 3300] * 4
    pts = np.concatenate([[0], np.cumsum(ms)]).astype(np.int64)
    pts = np.concatenate([pts[:11], pts[10] + 700 * np.arange(1, 5), pts[11:] + 2800])
    assert _find(stream(pts)) == []
    assert len(_find(stream(pts), Tolerances(regular_share=Fraction(1, 10)))) == 1


# --- the stream's own spacing: when it is regular enough to judge by ------------------------


def _from(spacings: list[int], **kw: object) -> StreamTimeline:
    pts = np.concatenate([[0], np.cumsum(spacings)]).astype(np.int64)
    return stream(pts, **kw)  # type: ignore[arg-type]


def _aac(spacings: list[int], tb: Fraction = Fraction(1, 48000)) -> StreamTimeline:
    """Audio of no known sample rate: no codec floor, judged by its own spacing alone."""
    return _from(spacings, index=1, kind="audio", tb=tb)


RUN = [500, 500, 500]  # above the 300 fps ceiling, below a quarter of 3000


def test_four_spacings_above_the_ceiling_are_enough_for_a_nominal_spacing() -> None:
    (f,) = _find(_from([3000] * 4 + [1, 1, 1]))
    assert "(its packets are otherwise 0.033 s (3000 ticks) apart)" in f.detail


def test_spacings_of_exactly_a_quarter_count_against_regularity() -> None:
    """30 regular spacings and 4 of exactly 750: 30/34 are near the mode, under 9/10."""
    assert _find(_from([3000] * 15 + [750] * 4 + [3000] * 15 + RUN + [3000] * 5)) == []
    assert len(_find(_from([3000] * 30 + RUN + [3000] * 5))) == 1


def test_a_larger_share_judges_spacings_against_that_share_of_the_mode() -> None:
    tol = Tolerances(rewritten_share=Fraction(3, 4))  # 2250 of 3000
    (f,) = _find(_from([3000] * 30 + [1500] * 4 + [3000] * 5), tol)
    assert f.pts == 30 * 3000
    assert _find(_from([3000] * 30 + [2250] * 4 + [3000] * 5), tol) == []


def test_video_is_regular_within_a_tenth_of_a_frame() -> None:
    jitter = [3000, 3200, 2800, 3000, 3000] * 8  # 40% off by 200 ticks: within 300
    assert [f.pts for f in _find(_from(jitter + RUN + [3000] * 5))] == [sum(jitter)]
    beyond = [3000, 3400, 2600, 3000, 3000] * 8  # off by 400: irregular, mode unused
    assert _find(_from(beyond + RUN + [3000] * 5)) == []


def test_audio_is_regular_only_within_its_rounding() -> None:
    """1024 // 50 = 20 ticks: audio 60 ticks off is irregular (a tenth would allow it)."""
    jitter = [1024, 1084, 964, 1024, 1024] * 8
    assert _find(_aac(jitter + [100, 100, 100] + [1024] * 5)) == []
    steady = [1024, 1044, 1004, 1024, 1024] * 8
    assert len(_find(_aac(steady + [100, 100, 100] + [1024] * 5))) == 1


def test_a_deviation_of_exactly_the_allowance_is_near() -> None:
    jitter = [3000, 3300, 3000, 3000, 3000] * 8  # 20% exactly 300 off
    assert len(_find(_from(jitter + RUN + [3000] * 5))) == 1


def test_exactly_nine_in_ten_near_the_mode_is_regular() -> None:
    spacings = [3000] * 9 + [3900]  # 3900: one frame, 900 off
    assert len(_find(_from(spacings * 3 + RUN))) == 1  # 27 near of 30
    assert _find(_from(spacings * 3 + [3900] + RUN)) == []  # 27 of 31


def test_the_rounding_is_at_least_one_tick() -> None:
    """A 40-tick mode rounds to 40 // 50 = 0, so one tick: 2 ticks off is irregular."""
    ms = Fraction(1, 1000)
    jitter = [40, 42, 38, 40, 40] * 8
    assert _find(_aac(jitter + [5, 5, 5] + [40] * 5, ms)) == []
    steady = [40, 41, 39, 40, 40] * 8
    assert len(_find(_aac(steady + [5, 5, 5] + [40] * 5, ms))) == 1


def test_the_rounding_is_whole_ticks() -> None:
    """149 // 50 = 2 ticks a frame: two frames 5 off (303) is irregular, not 5.96 allowed."""
    jitter = [149, 149, 303, 149, 149] * 8
    assert _find(_aac(jitter + [20, 20, 20] + [149] * 5)) == []
    steady = [149, 149, 302, 149, 149] * 8
    assert len(_find(_aac(steady + [20, 20, 20] + [149] * 5))) == 1


def test_repeated_times_are_a_run_of_zero_spacings_not_the_mode() -> None:
    """Times that do not advance (0 apart) are left out of the own spacing, even when they
    outnumber the rest; a run of them in a stream otherwise 1024 apart is rewritten."""
    (f,) = _find(_aac([1024] * 10 + [0] * 24 + [1024] * 5))
    assert f.detail.startswith("In audio stream 1 25 packets from 0.213 s (pts 10240) to "
                               "0.213 s (pts 10240) are presented within 0.000 s")
