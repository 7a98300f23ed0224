"""The AV-9 voice check: resume points and the speech-likeness level test."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from pipeline.analysis.timing import analyse
from tests.timelines import AAC, AUDIO_TB, FRAME, regular, result, stream


def test_av9_speech_like_needs_level_changes_above_the_floor() -> None:
    from pipeline.analysis.voice import speech_like

    rng = np.random.default_rng(1)
    syllables = -30 + 15 * (np.sin(np.arange(500) * 2 * np.pi * 4 / 50) > 0) + rng.normal(0, 1, 500)
    assert speech_like(syllables)[0]
    assert not speech_like(np.full(500, -29.0))[0]  # a steady tone
    assert not speech_like(np.full(500, -80.0) + rng.normal(0, 5, 500))[0]  # near silence
    assert not speech_like(np.full(5, -20.0))[0]  # too short to judge


def test_av9_resume_points_merge_video_and_audio_of_one_interruption() -> None:
    from pipeline.analysis.voice import resume_points

    v = regular(120)
    v[60:] += 5 * 90000
    a = regular(200, AAC)
    a[100:] += 5 * 48000
    r = result(stream(v), stream(a, index=1, kind="audio", tb=AUDIO_TB))
    (resume,) = resume_points(r, analyse(r))
    assert resume.abs_seconds == Fraction(60 * FRAME + 5 * 90000, 90000)
