"""PyAV adapter, audio: decode the audio after a resume and hear it (the AV-9 voice check).

A targeted second pass, only where an interruption was found: decoding costs about a
hundred times a demux. The window is decoded to 16 kHz mono, its short-time levels are
measured, and `speech` cleans it and runs the voice activity detector on it. The result
is plain data (numpy), never a PyAV object; `pipeline.analysis.voice` judges it.
"""

from __future__ import annotations

import dataclasses
import math
import os
from fractions import Fraction

import av
import av.logging
import numpy as np

from pipeline.media.probe.speech import CHUNK, RATE, clean, speech_probabilities

_RATE = RATE


def _empty() -> np.ndarray:
    return np.zeros(0, dtype=np.float64)


@dataclasses.dataclass(frozen=True, slots=True)
class AudioLevels:
    """What `seconds` of audio from `start` hold (mono, 16 kHz): short-time RMS levels
    (dBFS, one per `frame_seconds`), the detector's speech probability per `chunk_seconds`
    (after steady tones were removed and the level normalised), and the tones removed."""

    start_seconds: float
    frame_seconds: float
    dbfs: np.ndarray  # one value per frame; empty when there is no audio there
    has_audio: bool
    chunk_seconds: float = CHUNK / _RATE
    speech_p: np.ndarray = dataclasses.field(default_factory=_empty)  # one per chunk
    tones_hz: tuple[float, ...] = ()  # loudest first
    tone_share: float = 0.0  # of the window's energy


def audio_levels(
    path: str | os.PathLike[str], start_seconds: Fraction, seconds: float = 10.0,
    frame_ms: int = 20, *, enough_speech: tuple[float, float] | None = None,
) -> AudioLevels:
    """Decode the first audio stream from `start_seconds` (absolute presentation time) for
    `seconds`; its levels and speech probabilities. A targeted second pass: only called
    where an interruption was found, since decoding costs ~100x demuxing. `enough_speech`
    (probability, seconds): the detector stops once that much speech was heard (a yes/no
    question: the speech probabilities then end there; the levels cover the window)."""
    spath = os.fspath(path)
    frame = _RATE * frame_ms // 1000
    empty = _empty()
    start = float(start_seconds)
    prev_level = av.logging.get_level()
    av.logging.set_level(av.logging.PANIC)
    try:
        with av.open(spath) as container:
            streams = [s for s in container.streams if s.type == "audio"]
            if not streams:
                return AudioLevels(start, frame_ms / 1000, empty, False)
            stream = streams[0]
            tb = Fraction(stream.time_base) if stream.time_base else Fraction(1, _RATE)
            container.seek(max(0, int(start_seconds / tb)), stream=stream, backward=True)
            resampler = av.AudioResampler(format="flt", layout="mono", rate=_RATE)
            want = int(seconds * _RATE)
            chunks: list[np.ndarray] = []
            got = 0
            for decoded in container.decode(stream):
                if not isinstance(decoded, av.AudioFrame):
                    continue
                if decoded.pts is not None and Fraction(decoded.pts) * tb + Fraction(
                    decoded.samples, decoded.sample_rate or 1
                ) <= start_seconds:
                    continue
                for out in resampler.resample(decoded):
                    arr = out.to_ndarray().reshape(-1).astype(np.float64)
                    chunks.append(arr)
                    got += arr.size
                if got >= want:
                    break
    except (av.error.FFmpegError, OSError, ValueError):
        return AudioLevels(start, frame_ms / 1000, empty, True)
    finally:
        av.logging.set_level(prev_level)
    samples = np.concatenate(chunks)[:want] if chunks else empty
    n = samples.size // frame
    if n == 0:
        return AudioLevels(start, frame_ms / 1000, empty, True)
    rms = np.sqrt(np.mean(samples[: n * frame].reshape(n, frame) ** 2, axis=1))
    dbfs = 20 * np.log10(np.maximum(rms, 1e-6))
    heard = clean(samples, _RATE)
    return AudioLevels(
        start, frame_ms / 1000, dbfs, True,
        speech_p=speech_probabilities(heard.samples, enough=None if enough_speech is None else (
            enough_speech[0], math.ceil(enough_speech[1] * _RATE / CHUNK - 1e-9))),
        tones_hz=heard.tones_hz, tone_share=heard.tone_share,
    )
