"""AV-9 voice check: where recording resumed, and whether anybody spoke after it.

After an interruption the officer must say why on the recording. `resume_points` finds
the resume after every GAP_IN_STREAM (video and audio of one interruption merged); the
probe decodes the window after it (`pipeline.media.probe.audio_levels`, the only decode of
an ingest), removes steady tones, normalises the level and runs a voice activity detector
(Silero VAD) on it: one speech probability per 32 ms chunk. `judge_resume` decides from
those probabilities alone: the interruption is explained when at least `min_speech` of
the window is speech with probability >= `speech_p`. The finding says what was heard
instead. A detector, not speech recognition: it hears that somebody spoke, not what. Pure.

`speech_like` is the level-spread test this replaced (syllable-rate modulated noise passed
it, speech over mains hum failed it); nothing here uses it, `analysis.timing` still
re-exports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol

import numpy as np
import numpy.typing as npt

from pipeline.analysis.timeline import Clock, presented
from pipeline.analysis.tolerances import Tolerances
from schemas.media import Finding, ProbeResult

__all__ = [
    "Heard", "Resume", "ResumeAudio", "VoiceTolerances", "hear", "judge_resume",
    "resume_points", "speech_like",
]

_DEFAULT = Tolerances()


@dataclass(frozen=True, slots=True)
class Resume:
    """Where recording resumed after an interruption."""

    abs_seconds: Fraction  # presentation time in the file (for seeking)
    at_seconds: float  # from the file's earliest presentation time (for people)


def resume_points(
    result: ProbeResult, findings: Sequence[Finding], tol: Tolerances = _DEFAULT
) -> list[Resume]:
    """The resume after every GAP_IN_STREAM, one per interruption (streams merged). Pure."""
    clock = Clock(result.streams)
    by_index = {t.index: t for t in result.streams}
    times: list[Fraction] = []
    for f in findings:
        if f.code != "GAP_IN_STREAM" or f.stream_index is None or f.pts is None:
            continue
        t = by_index.get(f.stream_index)
        if t is None:
            continue
        p = presented(t)
        later = p[p > f.pts]
        if later.size:
            times.append(Fraction(int(later[0])) * t.time_base)
    out: list[Resume] = []
    for abs_s in sorted(times):
        if out and abs_s - out[-1].abs_seconds <= tol.voice_merge:
            continue
        out.append(Resume(abs_s, float(abs_s - clock.origin)))
    return out


def speech_like(dbfs: npt.NDArray[np.float64], tol: Tolerances = _DEFAULT) -> tuple[bool, str]:
    """Whether short-time levels look like speech, and why, in words. Pure."""
    if dbfs.size < 10:
        return False, "less than 0.2 s of audio follows the resume"
    p10, p90 = (float(x) for x in np.percentile(dbfs, [10, 90]))
    spread = p90 - p10
    if p90 < tol.voice_floor_dbfs:
        return False, f"the audio is nearly silent (90th percentile {p90:.1f} dBFS)"
    if spread < tol.voice_range_db:
        return False, (
            f"the audio level is steady ({spread:.1f} dB between quiet and loud moments, "
            f"speech needs at least {tol.voice_range_db:.0f} dB): tone, hum or noise only"
        )
    return True, f"speech-like level changes of {spread:.1f} dB"


@dataclass(frozen=True, slots=True)
class VoiceTolerances:
    """Thresholds of the voice check beyond `Tolerances.voice_window`.

    Measured on espeak-ng Mandarin (one sentence of 6.6 s: 6.5 s of chunks at 0.5 or more,
    quiet, noisy or under hum alike) and on non-speech (syllable-rate modulated noise,
    hum, a tone, room noise, silence: no chunk over 0.05). One second is a short sentence;
    a cough or a single word stays under it."""

    speech_p: float = 0.5  # a chunk is speech at this probability or more
    min_speech: Fraction = Fraction(1)  # seconds of speech chunks that explain a resume
    silent_dbfs: float = -60.0  # 90% of the 20 ms levels below this: near silence


_VOICE = VoiceTolerances()


class ResumeAudio(Protocol):
    """What the probe heard after a resume (`pipeline.media.probe.AudioLevels`)."""

    @property
    def has_audio(self) -> bool: ...
    @property
    def dbfs(self) -> npt.NDArray[np.float64]: ...
    @property
    def frame_seconds(self) -> float: ...
    @property
    def speech_p(self) -> npt.NDArray[np.float64]: ...
    @property
    def chunk_seconds(self) -> float: ...
    @property
    def tones_hz(self) -> tuple[float, ...]: ...
    @property
    def tone_share(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Heard:
    """The verdict on one window: whether speech explains the resume, and what was heard."""

    explained: bool
    speech_seconds: float
    first_speech_seconds: float | None  # after the resume
    detail: str


def hear(audio: ResumeAudio, voice: VoiceTolerances = _VOICE) -> Heard:
    """Whether the window holds enough speech, and what it holds, in words. Pure."""
    chunk = audio.chunk_seconds
    p = audio.speech_p
    window = p.size * chunk
    speaking = np.flatnonzero(p >= voice.speech_p)
    speech_s = speaking.size * chunk
    first = float(speaking[0] * chunk) if speaking.size else None
    if speech_s >= float(voice.min_speech) - 1e-9 and first is not None:
        return Heard(True, speech_s, first,
                     f"{speech_s:.1f} s of speech from {first:.1f} s after the resume")
    if p.size == 0:
        return Heard(False, 0.0, None, "less than 0.1 s of audio follows it")
    heard = f"{round(window, 1):g} s of {_sound(audio, voice)}"
    if speaking.size:
        return Heard(False, speech_s, first, (
            f"only {speech_s:.1f} s of speech from {first:.1f} s after it "
            f"({float(voice.min_speech):g} s needed) in {heard}"
        ))
    return Heard(False, 0.0, None, f"no speech: {heard}")


def _sound(audio: ResumeAudio, voice: VoiceTolerances) -> str:
    """What a non-speech window sounds like, from its levels and the tones removed."""
    d = audio.dbfs
    if d.size == 0:
        return "near silence"
    p10, p50, p90 = (float(x) for x in np.percentile(d, [10, 50, 90]))
    if p90 < voice.silent_dbfs:  # a percentile: the codec's overlap at the cut is loud
        return f"near silence (90% of it under {p90:.0f} dBFS)"
    tones = ", ".join(f"{t:g}" for t in audio.tones_hz)
    if audio.tone_share >= 0.5 and tones:
        kind = "mains hum" if all(_mains(t) for t in audio.tones_hz) else "tone"
        return f"a steady {kind} ({tones} Hz) at {p50:.0f} dBFS"
    if p90 - p10 < 8.0:
        return f"steady noise at {p50:.0f} dBFS"
    return f"sound at {p50:.0f} dBFS varying by {p90 - p10:.0f} dB, not speech"


def _mains(hz: float) -> bool:
    return any(abs(hz - k * base) <= 2 for base in (50, 60) for k in range(1, 11))


def judge_resume(
    resume: Resume, audio: ResumeAudio | None, tol: Tolerances = _DEFAULT,
    voice: VoiceTolerances = _VOICE,
) -> Finding | None:
    """UNEXPLAINED_INTERRUPTION for a resume whose audio holds no speech; None if spoken
    to. `audio` None: the window could not be decoded. Pure."""
    window = float(tol.voice_window)
    if audio is None:
        why = "the audio after it could not be decoded"
    elif not audio.has_audio:
        why = "the file has no audio track, so nothing can have been said"
    else:
        heard = hear(audio, voice)
        if heard.explained:
            return None
        why = f"in the next {window:g} s {heard.detail}"
    return Finding(
        "UNEXPLAINED_INTERRUPTION",
        f"Recording resumed at {resume.at_seconds:.3f} s after an interruption, but {why}.",
        at_seconds=resume.at_seconds,
    )
