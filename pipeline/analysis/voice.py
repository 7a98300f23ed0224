"""AV-9 voice check: where recording resumed, and whether the audio after it sounds spoken.

After an interruption the officer must say why on the recording. `resume_points` finds
the resume after every GAP_IN_STREAM (video and audio of one interruption merged); the
probe decodes a few seconds of audio there (`pipeline.media.probe.audio_levels`, the
only decode of an ingest) and `speech_like` judges the short-time levels. A steady tone,
hum, wind or silence does not pass; this is a level test, not speech recognition. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import numpy.typing as npt

from pipeline.analysis.timeline import Clock, presented
from pipeline.analysis.tolerances import Tolerances
from schemas.media import Finding, ProbeResult

__all__ = ["Resume", "resume_points", "speech_like"]

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
