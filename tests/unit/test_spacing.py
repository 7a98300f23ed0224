"""Impossible spacing (TS_REWRITTEN) on synthetic timelines: one behaviour per test."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.analysis.timing import analyse
from tests.timelines import AAC, FRAME, audio, codes, regular, result, stream


def one_tick_run(n: int, at: int, run: int, step: int = FRAME) -> np.ndarray:
    """n regular times with `run` packets one tick after each other from packet `at`."""
    head = regular(at + 1, step)
    ticks = head[-1] + np.arange(1, run + 1, dtype=np.int64)
    tail = ticks[-1] + step + regular(n - at - 1 - run, step)
    return np.concatenate([head, ticks, tail])


def test_run_of_one_tick_spacings_is_rewritten_at_its_start() -> None:
    pts = one_tick_run(200, 60, 100)
    fs = codes(analyse(result(stream(pts))), "TS_REWRITTEN")
    assert [(f.stream_index, f.pts) for f in fs] == [(0, 60 * FRAME)]
    assert fs[0].severity == "error" and fs[0].category == "edit"
    assert "101 packets from 2.000 s" in fs[0].detail
    assert "within 0.001 s" in fs[0].detail


def test_two_packets_a_tick_apart_are_not_a_run() -> None:
    """A single stray spacing is a splice's business, not a rewritten run."""
    assert codes(analyse(result(stream(one_tick_run(200, 60, 2)))), "TS_REWRITTEN") == []


def test_stream_mostly_a_tick_apart_is_caught_by_the_frame_rate_ceiling() -> None:
    """When the one-tick packets outnumber the real ones, the mode is no guide; 1/90000 s
    apart is still far above 300 frames a second."""
    pts = one_tick_run(300, 20, 250)
    fs = codes(analyse(result(stream(pts))), "TS_REWRITTEN")
    assert [f.pts for f in fs] == [20 * FRAME]


def test_audio_run_a_tick_apart_is_rewritten() -> None:
    a = replace(audio(one_tick_run(300, 95, 156, AAC)), sample_rate=48000)
    fs = codes(analyse(result(a)), "TS_REWRITTEN")
    assert [(f.stream_index, f.pts) for f in fs] == [(1, 95 * AAC)]


def test_slow_motion_240_fps_is_no_rewrite() -> None:
    pts = regular(480, 375)  # 240 fps in 1/90000
    assert codes(analyse(result(stream(pts, duration=375))), "TS_REWRITTEN") == []


def test_vorbis_short_blocks_are_no_rewrite() -> None:
    """Runs of 128-sample Vorbis packets among 1024-sample ones: the encoder's choice."""
    d = ([1024] * 20 + [576] + [128] * 30 + [576]) * 5
    pts = np.concatenate([[0], np.cumsum(d)[:-1]]).astype(np.int64)
    a = replace(audio(pts, index=0), codec="vorbis", sample_rate=48000,
                duration=np.asarray(d, dtype=np.int64))  # fmt: skip
    assert analyse(result(a, container="ogg")) == []


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=4, max_value=304), min_size=20, max_size=300))
def test_variable_frame_rate_phone_is_no_rewrite(deltas_ms: list[int]) -> None:
    """Phones and webcams space frames 4-304 ms apart on their own: never a rewrite."""
    pts = np.concatenate([[0], np.cumsum(deltas_ms)]).astype(np.int64)
    s = stream(pts, tb=Fraction(1, 1000), duration=70)
    assert codes(analyse(result(s)), "TS_REWRITTEN") == []
