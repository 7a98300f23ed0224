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
                               "0.667 s (pts 60003) are presented within 0.000 s")
    assert _find(stream(run_of(1, run=2))) == []
    assert _find(stream(run_of(1, run=3)), Tolerances(rewritten_min_run=4)) == []


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
    assert f.detail.endswith("(no audio clock spaces packets less than 0.000 s apart): the "
                             "times were written by a muxer.")
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
