"""AV-9 voice check on real media: espeak-ng Mandarin and non-speech after a resume.

Each file is a generated recording (H.264 + AAC in MP4) that stops 2 s in and resumes 5 s
later (at 7.0 s); what follows the resume is built here and encoded as AAC. The whole
path runs: the probe demuxes, the timing analysis finds the gap, the probe decodes and
hears the window after the resume, `analysis.voice` judges it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from pipeline.analysis.timing import Tolerances, analyse
from pipeline.analysis.voice import hear
from pipeline.demo import synth
from pipeline.demo.speech import speak
from pipeline.ingest.file import voice_check
from pipeline.media.probe import audio_levels, probe
from schemas.media import Finding
from tests.conftest import require_tool

START = dt.datetime(2024, 5, 1, 8, 0, 0, tzinfo=dt.UTC)
RATE = 48000
AFTER_S = 6.0  # seconds of media after the resume
RESUME_AT_S = 7.0  # 2 s recorded, 5 s interruption
FRAME_S = 1 / 30
SMALL = synth.Encoding(width=160, height=120)
F32 = npt.NDArray[np.float32]


@pytest.fixture(scope="module")
def mandarin() -> F32:
    """The sentence spoken by espeak-ng now, at 48 kHz."""
    require_tool("espeak-ng")
    return speak(rate=RATE)


def t() -> npt.NDArray[np.float64]:
    return np.arange(int(AFTER_S * RATE)) / RATE


def voiced(speech: F32, gain: float, lead_s: float = 0.4) -> npt.NDArray[np.float64]:
    """`speech` at `gain`, starting `lead_s` after the resume, in the after-resume window."""
    out = np.zeros(int(AFTER_S * RATE))
    lead = int(lead_s * RATE)
    part = speech[: out.size - lead]
    out[lead : lead + part.size] = gain * part
    return out


def hum(hz: float = 50.0) -> npt.NDArray[np.float64]:
    return 0.3 * np.sin(2 * np.pi * hz * t()) + 0.1 * np.sin(2 * np.pi * 3 * hz * t())


def room(sigma: float = 0.02) -> npt.NDArray[np.float64]:
    return np.random.default_rng(7).normal(0, sigma, t().size)


def modulated_noise() -> npt.NDArray[np.float64]:
    """Noise opened and closed at a syllable rate (4 Hz), voiced-band: traffic, wind."""
    noise = np.convolve(np.random.default_rng(8).normal(0, 0.5, t().size), np.ones(8) / 8, "same")
    return noise * 0.5 * (1 - np.cos(2 * np.pi * 4 * t())) * ((t() % 3) < 2)


def recording(tmp_path: Path, name: str, after: npt.NDArray[np.float64]) -> Path:
    return synth.write_with_interruption(
        tmp_path / f"{name}.mp4", 2.0 + AFTER_S, START, gap_at_s=2.0, gap_s=5.0,
        after_resume=after.astype(np.float32), encoding=SMALL,
    )


def av9(path: Path) -> list[Finding]:
    result = probe(path)
    found = analyse(result)
    return voice_check(str(path), result, list(found), Tolerances(), audio_levels)


SPOKEN: dict[str, Callable[[F32], npt.NDArray[np.float64]]] = {
    "speech over room noise": lambda s: voiced(s, 0.3) + room(),
    "quiet speech (2%)": lambda s: voiced(s, 0.02),
    "speech under 50 Hz mains hum": lambda s: voiced(s, 0.2) + hum(50),
    "quiet speech under 60 Hz mains hum": lambda s: voiced(s, 0.05) + hum(60),
}


@pytest.mark.parametrize("case", sorted(SPOKEN))
def test_av9_mandarin_after_the_resume_explains_it(
    tmp_path: Path, mandarin: F32, case: str
) -> None:
    assert av9(recording(tmp_path, "spoken", SPOKEN[case](mandarin))) == []


def test_av9_heard_speech_is_named_with_its_start(tmp_path: Path, mandarin: F32) -> None:
    path = recording(tmp_path, "hum", voiced(mandarin, 0.2) + hum(50))
    got = audio_levels(path, probe_resume(path), 10.0)
    heard = hear(got)
    assert heard.explained
    assert heard.first_speech_seconds is not None
    assert abs(heard.first_speech_seconds - 0.4) <= 0.1
    assert heard.speech_seconds >= 4.0
    assert got.tones_hz[0] == 50.0
    assert heard.detail.startswith(f"{heard.speech_seconds:.1f} s of speech from 0.")


def probe_resume(path: Path) -> object:
    from pipeline.analysis.voice import resume_points

    result = probe(path)
    (r,) = resume_points(result, analyse(result))
    return r.abs_seconds


SILENT: dict[str, tuple[Callable[[], npt.NDArray[np.float64]], str]] = {
    "syllable-rate modulated noise": (modulated_noise, "no speech: 6 s of sound at"),
    "mains hum": (hum, "no speech: 6 s of a steady mains hum (50, 150 Hz) at"),
    "room noise": (room, "no speech: 6 s of steady noise at"),
    "silence": (lambda: np.zeros(t().size), "no speech: 6 s of near silence"),
}


@pytest.mark.parametrize("case", sorted(SILENT))
def test_av9_no_speech_after_the_resume_is_unexplained(tmp_path: Path, case: str) -> None:
    make, heard = SILENT[case]
    (f,) = av9(recording(tmp_path, "silent", make()))
    assert f.code == "UNEXPLAINED_INTERRUPTION" and f.rule == "AV-9"
    assert f.at_seconds is not None and abs(f.at_seconds - RESUME_AT_S) <= FRAME_S
    assert f"but in the next 10 s {heard}" in f.detail, f.detail


def test_the_detector_stops_once_enough_speech_is_heard(tmp_path: Path, mandarin: F32) -> None:
    """The opening check asks only "is there 1 s of speech?": the detector stops at the
    32nd chunk (32 ms each) at p >= 0.5, with the same answer as the whole window."""
    path = recording(tmp_path, "spoken", voiced(mandarin, 0.3) + room())
    start = probe_resume(path)
    whole = audio_levels(path, start, 10.0)
    early = audio_levels(path, start, 10.0, enough_speech=(0.5, 1.0))
    speaking = np.flatnonzero(whole.speech_p >= 0.5)
    assert speaking.size > 32  # the sentence is longer than a second
    assert early.speech_p.size == speaking[31] + 1 < whole.speech_p.size
    assert np.array_equal(early.speech_p, whole.speech_p[: early.speech_p.size])
    assert np.array_equal(early.dbfs, whole.dbfs)  # the levels cover the window
    assert hear(early).explained and hear(whole).explained


def test_the_detector_hears_the_whole_window_when_there_is_no_speech(tmp_path: Path) -> None:
    path = recording(tmp_path, "silent", room())
    start = probe_resume(path)
    early = audio_levels(path, start, 10.0, enough_speech=(0.5, 1.0))
    assert early.speech_p.size == int(AFTER_S * 16000) // 512  # 187 chunks: all of it
    assert not hear(early).explained
