"""PyAV adapter, audio: decode a few seconds of audio after a resume (the AV-9 voice check).

A targeted second pass, only where an interruption was found: decoding costs about a
hundred times a demux. The result is plain data (numpy), never a PyAV object.
"""

from __future__ import annotations

import dataclasses
import os
from fractions import Fraction

import av
import av.logging
import numpy as np

_LEVEL_RATE = 16000


@dataclasses.dataclass(frozen=True, slots=True)
class AudioLevels:
    """Short-time RMS levels (dBFS, mono, 16 kHz) of `seconds` of audio from `start`."""

    start_seconds: float
    frame_seconds: float
    dbfs: np.ndarray  # one value per frame; empty when there is no audio there
    has_audio: bool


def audio_levels(
    path: str | os.PathLike[str], start_seconds: Fraction, seconds: float = 10.0,
    frame_ms: int = 20,
) -> AudioLevels:
    """Decode the first audio stream from `start_seconds` (absolute presentation time) for
    `seconds` and return per-frame levels. A targeted second pass: only called where an
    interruption was found, since decoding costs ~100x demuxing."""
    spath = os.fspath(path)
    frame = _LEVEL_RATE * frame_ms // 1000
    empty = np.zeros(0, dtype=np.float64)
    prev_level = av.logging.get_level()
    av.logging.set_level(av.logging.PANIC)
    try:
        with av.open(spath) as container:
            streams = [s for s in container.streams if s.type == "audio"]
            if not streams:
                return AudioLevels(float(start_seconds), frame_ms / 1000, empty, False)
            stream = streams[0]
            tb = Fraction(stream.time_base) if stream.time_base else Fraction(1, _LEVEL_RATE)
            container.seek(max(0, int(start_seconds / tb)), stream=stream, backward=True)
            resampler = av.AudioResampler(format="flt", layout="mono", rate=_LEVEL_RATE)
            want = int(seconds * _LEVEL_RATE)
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
        return AudioLevels(float(start_seconds), frame_ms / 1000, empty, True)
    finally:
        av.logging.set_level(prev_level)
    samples = np.concatenate(chunks)[:want] if chunks else empty
    n = samples.size // frame
    if n == 0:
        return AudioLevels(float(start_seconds), frame_ms / 1000, empty, True)
    rms = np.sqrt(np.mean(samples[: n * frame].reshape(n, frame) ** 2, axis=1))
    dbfs = 20 * np.log10(np.maximum(rms, 1e-6))
    return AudioLevels(float(start_seconds), frame_ms / 1000, dbfs, True)
