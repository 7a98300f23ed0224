"""The AV-9 voice check: resume points, the verdict on speech probabilities, and the
level test it replaced (still re-exported by analysis.timing)."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from pipeline.analysis.timing import analyse
from pipeline.analysis.voice import Resume
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


@dataclass(frozen=True)
class Heard:
    """What the probe would return after a resume: probabilities per 32 ms chunk."""

    speech_p: np.ndarray
    dbfs: np.ndarray = field(default_factory=lambda: np.full(500, -30.0))
    has_audio: bool = True
    frame_seconds: float = 0.02
    chunk_seconds: float = 0.032
    tones_hz: tuple[float, ...] = ()
    tone_share: float = 0.0


def chunks(*runs: tuple[float, int]) -> np.ndarray:
    """Probabilities: `(p, n)` runs of n chunks at p."""
    return np.concatenate([np.full(n, p) for p, n in runs])


RESUME = Resume(Fraction(8), 8.0)


def test_av9_one_second_of_speech_explains_a_resume() -> None:
    from pipeline.analysis.voice import hear

    heard = hear(Heard(chunks((0.1, 25), (0.9, 32), (0.1, 255))))
    assert heard.explained
    assert heard.detail == "1.0 s of speech from 0.8 s after the resume"


def test_av9_less_than_a_second_of_speech_does_not() -> None:
    from pipeline.analysis.voice import judge_resume

    f = judge_resume(RESUME, Heard(chunks((0.1, 25), (0.9, 20), (0.1, 267))))
    assert f is not None and f.code == "UNEXPLAINED_INTERRUPTION" and f.at_seconds == 8.0
    assert f.detail == (
        "Recording resumed at 8.000 s after an interruption, but in the next 10 s only 0.6 s "
        "of speech from 0.8 s after it (1 s needed) in 10 s of steady noise at -30 dBFS."
    )


def test_av9_probabilities_under_one_half_are_not_speech() -> None:
    from pipeline.analysis.voice import judge_resume

    assert judge_resume(RESUME, Heard(chunks((0.49, 312)))) is not None
    assert judge_resume(RESUME, Heard(chunks((0.5, 32), (0.0, 280)))) is None


def test_av9_no_speech_names_hum_tone_silence_or_noise() -> None:
    from pipeline.analysis.voice import hear

    quiet = chunks((0.01, 312))
    hum = Heard(quiet, tones_hz=(50.0, 150.0), tone_share=0.99)
    tone = Heard(quiet, tones_hz=(1000.0,), tone_share=0.9)
    silence = Heard(quiet, dbfs=np.full(500, -110.0))
    rng = np.random.default_rng(2)
    varying = Heard(quiet, dbfs=-30 + 15 * (rng.random(500) > 0.5))
    assert hear(hum).detail == "no speech: 10 s of a steady mains hum (50, 150 Hz) at -30 dBFS"
    assert hear(tone).detail == "no speech: 10 s of a steady tone (1000 Hz) at -30 dBFS"
    assert hear(silence).detail == "no speech: 10 s of near silence (90% of it under -110 dBFS)"
    assert hear(varying).detail.startswith("no speech: 10 s of sound at ")
    assert hear(varying).detail.endswith("varying by 15 dB, not speech")


def test_av9_no_audio_or_undecodable_audio_is_unexplained() -> None:
    from pipeline.analysis.voice import judge_resume

    none = judge_resume(RESUME, Heard(np.zeros(0), has_audio=False))
    bad = judge_resume(RESUME, None)
    assert none is not None and "the file has no audio track" in none.detail
    assert bad is not None and "could not be decoded" in bad.detail


def test_av9_thresholds_are_arguments() -> None:
    from pipeline.analysis.voice import VoiceTolerances, hear

    half = Heard(chunks((0.9, 16), (0.0, 296)))
    assert not hear(half).explained
    assert hear(half, VoiceTolerances(min_speech=Fraction(1, 2))).explained
    assert not hear(half, VoiceTolerances(speech_p=0.95, min_speech=Fraction(1, 2))).explained
