"""Real speech for generated recordings: one Mandarin sentence spoken by espeak-ng.

AV-9 asks the officer to explain an interruption by voice, and the voice check runs a
speech detector, so generated media that must count as explained needs real speech, not
speech-like noise. The sentence ("设备电量不足，现在恢复录像，继续执法检查。", 4.4 s) is
checked in as `speech_zh.flac` (16 kHz mono, made by `make_clip` with Debian's espeak-ng
1.51): `make demo` runs on machines without espeak-ng, and every machine writes the same
bytes (espeak-ng's output differs between its versions). The tests that measure the
detector call `speak` for fresh speech instead, where espeak-ng is installed.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

__all__ = ["CLIP", "SENTENCE", "clip", "make_clip", "speak"]

SENTENCE = "设备电量不足，现在恢复录像，继续执法检查。"
CLIP = Path(__file__).with_name("speech_zh.flac")
_CLIP_RATE = 16000


def speak(
    text: str = SENTENCE, voice: str = "cmn", rate: int = 48000, speed: int = 200
) -> npt.NDArray[np.float32]:
    """`text` spoken by espeak-ng, mono float samples in [-1, 1] at `rate`.

    Raises FileNotFoundError when espeak-ng is not installed (a Debian package)."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise FileNotFoundError("espeak-ng is not installed (Debian package espeak-ng)")
    with tempfile.TemporaryDirectory() as tmp:
        wav = os.path.join(tmp, "speech.wav")
        subprocess.run([exe, "-v", voice, "-s", str(speed), "-w", wav, text], check=True,
                       capture_output=True)
        with wave.open(wav) as w:
            got = w.getframerate()
            pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return _resample((pcm / 32768).astype(np.float32), got, rate)


def _resample(x: npt.NDArray[np.float32], src: int, dst: int) -> npt.NDArray[np.float32]:
    """FFmpeg's resampler (swr), whole signal at once, flushed."""
    if src == dst:
        return x
    frame = av.AudioFrame.from_ndarray(x[None, :], format="flt", layout="mono")
    frame.sample_rate = src
    rs = av.AudioResampler(format="flt", layout="mono", rate=dst)
    parts = [f.to_ndarray().reshape(-1) for f in rs.resample(frame)]
    parts += [f.to_ndarray().reshape(-1) for f in rs.resample(None)]
    return np.concatenate(parts).astype(np.float32)


@functools.cache
def clip(rate: int = 48000) -> npt.NDArray[np.float32]:
    """The checked-in sentence at `rate` (read-only)."""
    rs = av.AudioResampler(format="flt", layout="mono", rate=rate)
    parts = []
    with av.open(os.fspath(CLIP)) as f:
        for fr in [*f.decode(audio=0), None]:
            parts += [r.to_ndarray().reshape(-1) for r in rs.resample(fr)]
    out = np.concatenate(parts).astype(np.float32)
    out.setflags(write=False)
    return out


def make_clip(path: str | os.PathLike[str] = CLIP) -> Path:
    """Write the sentence with espeak-ng as 16 kHz mono FLAC (how `speech_zh.flac` was made)."""
    samples = speak(SENTENCE, rate=_CLIP_RATE)
    pcm = np.clip(np.round(samples * 32767), -32768, 32767).astype(np.int16)
    with av.open(os.fspath(path), "w", format="flac") as out:
        st = out.add_stream("flac", rate=_CLIP_RATE, layout="mono")
        fr = av.AudioFrame.from_ndarray(pcm[None, :], format="s16", layout="mono")
        fr.sample_rate = _CLIP_RATE
        for p in st.encode(fr):
            out.mux(p)
        for p in st.encode(None):
            out.mux(p)
    return Path(path)


if __name__ == "__main__":
    print(make_clip())
