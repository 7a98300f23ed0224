"""PyAV adapter that writes body-camera-like recordings, and the edits made to them.

`make demo`, the tests and the benchmarks need recordings whose truth is known: a clean
file, one with a real interruption, and the same footage after the edits a forger can make
without re-encoding (packets dropped, whole GOPs dropped and retimed, files spliced). Each
writer is deterministic (fixed seeds, no clock) so a test names the exact second an
interruption must be found at.

What a file from here looks like:
- H.264 (libx264, closed GOP, a keyframe every `gop_s` seconds and never on a scene cut,
  as body cameras do) of a moving test picture with a burned-in wall clock and frame
  counter; AAC audio of a quiet tone plus real Mandarin speech (`speech`: one sentence by
  espeak-ng, checked in), which starts again after a resume unless the resume is silent.
- Container tags like a device writes: make, model, serial and creation_time (MP4 `mdta`
  keys, which the probe reads).
- No "Lavf"/"Lavc" tags: the muxer and the AAC encoder run bit-exact. What cannot be
  removed is x264's own SEI (its version and options in the first IDR picture): libx264
  has no switch for it. A real body camera's hardware encoder writes no such SEI, so a
  file from here carries one encoder signature a camera file would not.

Edits (`drop_packets`, `drop_and_retime`, `splice`, in `edits`, re-exported here) are
stream copies that behave like a careful forger: they keep the source's tags and write no
tool tag either, so tests show what the timestamps alone reveal. Only `pipeline.demo`
and the probe import `av`.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt

# The edits are re-exported: tests, the demo and the benchmarks call them as `synth.*`.
from pipeline.demo.edits import (
    as_seconds,
    copy_tags,
    drop_and_retime,
    drop_packets,
    open_output,
    packets,
    splice,
)
from pipeline.demo.speech import clip as speech_clip

__all__ = [
    "Camera",
    "Encoding",
    "drop_and_retime",
    "drop_packets",
    "splice",
    "write_audio_only",
    "write_clean",
    "write_long",
    "write_still",
    "write_with_interruption",
]

PathLike = str | os.PathLike[str]
U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]

_AAC_FRAME = 1024  # samples per AAC-LC packet
_DEFAULT_START = dt.datetime(2024, 5, 1, 8, 0, 0, tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class Camera:
    """What the device says of itself in the container tags."""

    make: str = "Custody"
    model: str = "SYNTH-BC1"
    serial: str = "SYN0000001"


@dataclass(frozen=True, slots=True)
class Encoding:
    """Coding parameters. The defaults make a small file quickly; see `write_long`."""

    width: int = 320
    height: int = 240
    fps: int = 30
    gop_s: int = 1  # seconds between keyframes, fixed (scene-cut keyframes are off)
    bframes: int = 2
    preset: str = "veryfast"
    video_bit_rate: int | None = None  # None: constant quality (crf 28)
    sample_rate: int = 48000
    audio_bit_rate: int = 64000
    seed: int = 20240501


# --- pictures and sound -------------------------------------------------------------

# 3x5 bitmap digits and the few signs the clock needs.
_GLYPHS = {
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111",
    "3": "111001111001111", "4": "101101111001001", "5": "111100111001111",
    "6": "111100111101111", "7": "111001010010010", "8": "111101111101111",
    "9": "111101111001111", ":": "000010000010000", "-": "000000111000000",
    ".": "000000000000010", " ": "000000000000000", "#": "101111101111101",
}  # fmt: skip


def _draw_text(img: U8, text: str, x: int, y: int, scale: int) -> None:
    """Burn `text` into `img` (white on black box) at (x, y), each pixel `scale` wide."""
    h, w = img.shape[:2]
    box_w = len(text) * 4 * scale + scale
    img[max(y - scale, 0) : min(y + 6 * scale, h), max(x - scale, 0) : min(x + box_w, w)] = 0
    for k, ch in enumerate(text):
        bits = _GLYPHS.get(ch, _GLYPHS[" "])
        gx = x + k * 4 * scale
        for r in range(5):
            for c in range(3):
                if bits[r * 3 + c] == "1":
                    y0, x0 = y + r * scale, gx + c * scale
                    img[y0 : min(y0 + scale, h), x0 : min(x0 + scale, w)] = 255


class _Picture:
    """A moving test picture: colour bars drifting sideways, a bouncing box, a clock."""

    def __init__(self, enc: Encoding) -> None:
        self.enc = enc
        w, h = enc.width, enc.height
        bars = np.array(
            [[192, 192, 192], [192, 192, 0], [0, 192, 192], [0, 192, 0],
             [192, 0, 192], [192, 0, 0], [0, 0, 192], [16, 16, 16]], dtype=np.uint8,
        )  # fmt: skip
        cols = (np.arange(2 * w) * 8 // w) % 8
        self.base = np.broadcast_to(bars[cols][None, :, :], (h, 2 * w, 3))
        self.scale = max(1, h // 60)

    def frame(self, wall: dt.datetime, counter: int, t: float) -> U8:
        enc = self.enc
        w, h = enc.width, enc.height
        shift = int(t * w / 4) % w
        img = np.ascontiguousarray(self.base[:, shift : shift + w, :])
        bs = max(8, h // 8)
        bx = int((0.5 + 0.45 * math.sin(t * 1.3)) * (w - bs))
        by = int((0.5 + 0.45 * math.sin(t * 0.7 + 1.0)) * (h - bs))
        img[by : by + bs, bx : bx + bs] = (255, 255, 255)
        s = self.scale
        clock = wall.strftime("%Y-%m-%d %H:%M:%S") + f".{wall.microsecond // 1000:03d}"
        _draw_text(img, clock, 2 * s, 2 * s, s)
        _draw_text(img, f"#{counter:07d}", 2 * s, h - 7 * s, s)
        return img


_SPEECH_LEAD = 0.5  # s: the officer starts speaking this long after recording starts
_SPEECH_PAUSE = 1.5  # s between repetitions of the sentence


def _sound(enc: Encoding, first: int, n: int, speech_from: int | None) -> F32:
    """`n` mono samples from sample `first`: a quiet 1 kHz tone plus, unless `speech_from`
    is None, real speech (the checked-in espeak-ng sentence, `speech.clip`) repeated with
    pauses from sample `speech_from` on. Deterministic: a pure function of the indices."""
    sr = enc.sample_rate
    idx = np.arange(first, first + n, dtype=np.int64)
    out = 0.05 * np.sin(2 * np.pi * 1000.0 * (idx / sr))
    if speech_from is not None:
        voice = speech_clip(sr)
        period = voice.size + round(_SPEECH_PAUSE * sr)
        k = idx - speech_from
        at = np.where(k >= 0, k % period, period)
        said = at < voice.size
        out[said] += 0.5 * voice[at[said]]
    return np.clip(out, -1.0, 1.0).astype(np.float32)


# --- writing ------------------------------------------------------------------------


def _iso(t: dt.datetime) -> str:
    if t.tzinfo is None:
        raise ValueError("start must be timezone-aware (body cameras are read as UTC)")
    u = t.astimezone(dt.UTC)
    return u.strftime("%Y-%m-%dT%H:%M:%S.") + f"{u.microsecond:06d}Z"


def _device_tags(camera: Camera, start: dt.datetime) -> dict[str, str]:
    return {
        "make": camera.make,
        "model": camera.model,
        "serial": camera.serial,
        "creation_time": _iso(start),
    }


def _video_stream(out: Any, enc: Encoding) -> Any:
    opts = {
        "preset": enc.preset,
        "g": str(enc.gop_s * enc.fps),
        "keyint_min": str(enc.gop_s * enc.fps),
        "sc_threshold": "0",
        "bf": str(enc.bframes),
        "flags": "+bitexact",
    }
    if enc.video_bit_rate is None:
        opts["crf"] = "28"
    else:
        # A test picture is easy to code; constant bit rate with filler keeps the file as
        # large as a camera's at that rate (benchmarks measure bytes).
        rate = str(enc.video_bit_rate)
        opts.update(
            {"x264-params": "nal-hrd=cbr", "minrate": rate, "maxrate": rate, "bufsize": rate}
        )
    vs = out.add_stream("libx264", rate=enc.fps, options=opts)
    vs.width = enc.width
    vs.height = enc.height
    vs.pix_fmt = "yuv420p"
    if enc.video_bit_rate is not None:
        vs.bit_rate = enc.video_bit_rate
    vs.codec_context.time_base = Fraction(1, enc.fps)
    return vs


def _audio_stream(out: Any, enc: Encoding) -> Any:
    a = out.add_stream("aac", rate=enc.sample_rate, layout="mono", options={"flags": "+bitexact"})
    a.bit_rate = enc.audio_bit_rate
    a.codec_context.time_base = Fraction(1, enc.sample_rate)
    return a


@dataclass(frozen=True, slots=True)
class _Cut:
    """The recording stops after `at_frame` frames and resumes `gap_s` seconds later."""

    at_frame: int
    gap_frames: int
    at_sample: int
    gap_samples: int
    silent_after: bool
    after: F32 | None = None  # the sound after the resume, replacing tone and speech


def _given(sound: F32, first: int, n: int) -> F32:
    """Samples `first`..`first + n` of `sound`, silence past its end."""
    out = np.zeros(n, dtype=np.float32)
    part = sound[first : first + n]
    out[: part.size] = np.clip(part, -1.0, 1.0)
    return out


def _speech_from(enc: Encoding, cut: _Cut | None, sample: int) -> int | None:
    """Where the speech heard at `sample` began: `_SPEECH_LEAD` after the recording
    started, and again `_SPEECH_LEAD` after a resume (the officer explains it); None
    after a resume made `silent_after`."""
    lead = round(_SPEECH_LEAD * enc.sample_rate)
    if cut is None or sample < cut.at_sample:
        return lead
    return None if cut.silent_after else cut.at_sample + lead


def _encode(
    path: PathLike,
    seconds: Fraction,
    start: dt.datetime,
    camera: Camera,
    enc: Encoding,
    cut: _Cut | None = None,
    video: bool = True,
) -> None:
    """Encode `seconds` of recorded media; with `cut`, timestamps after the cut jump.

    The encoders run without a break; packets after the cut are shifted by the gap before
    muxing, and the first picture after the cut is forced to be a keyframe (a camera
    restarts its GOP when it resumes). The burned-in clock shows the wall time of each
    picture, so it jumps by the gap too."""
    n_frames = int(seconds * enc.fps)
    n_samples = int(seconds * enc.sample_rate)
    out = open_output(path, _device_tags(camera, start), fmt="ipod" if not video else None)
    try:
        vs = _video_stream(out, enc) if video else None
        aus = _audio_stream(out, enc)
        pic = _Picture(enc) if video else None
        sample = 0  # next audio sample to encode

        def shift_v(p: Any) -> Any:
            if cut is not None and p.pts is not None and p.pts >= cut.at_frame:
                p.pts += cut.gap_frames
                if p.dts is not None:
                    p.dts += cut.gap_frames
            return p

        def shift_a(p: Any) -> Any:
            if cut is not None and p.pts is not None and p.pts >= cut.at_sample:
                p.pts += cut.gap_samples
                if p.dts is not None:
                    p.dts += cut.gap_samples
            return p

        def audio_until(limit: int, final: bool = False) -> None:
            # The AAC encoder takes whole 1024-sample frames; only the last may be short.
            nonlocal sample
            while sample + (1 if final else _AAC_FRAME) <= limit:
                n = min(_AAC_FRAME, limit - sample)
                if cut is not None and cut.after is not None and sample >= cut.at_sample:
                    data = _given(cut.after, sample - cut.at_sample, n)
                else:
                    data = _sound(enc, sample, n, _speech_from(enc, cut, sample))
                fr = av.AudioFrame.from_ndarray(data[None, :], format="fltp", layout="mono")
                fr.sample_rate = enc.sample_rate
                fr.pts = sample
                fr.time_base = Fraction(1, enc.sample_rate)
                for p in aus.encode(fr):
                    out.mux(shift_a(p))
                sample += n

        for i in range(n_frames if video else 0):
            assert vs is not None and pic is not None
            shown = i + (cut.gap_frames if cut is not None and i >= cut.at_frame else 0)
            t = Fraction(shown, enc.fps)
            wall = start + dt.timedelta(seconds=float(t))
            fr = av.VideoFrame.from_ndarray(pic.frame(wall, i, float(t)), format="rgb24")
            fr.pts = i
            fr.time_base = Fraction(1, enc.fps)
            if cut is not None and i == cut.at_frame:
                fr.pict_type = av.video.frame.PictureType.I
            for p in vs.encode(fr):
                out.mux(shift_v(p))
            audio_until(min(n_samples, (i + 1) * enc.sample_rate // enc.fps))
        audio_until(n_samples, final=True)
        if vs is not None:
            for p in vs.encode(None):
                out.mux(shift_v(p))
        for p in aus.encode(None):
            out.mux(shift_a(p))
    finally:
        out.close()


def write_clean(
    path: PathLike,
    seconds: float = 5.0,
    start: dt.datetime = _DEFAULT_START,
    *,
    camera: Camera = Camera(),
    encoding: Encoding = Encoding(),
) -> Path:
    """A continuous recording of `seconds` that began at `start` (timezone-aware)."""
    _encode(path, as_seconds(seconds), start, camera, encoding)
    return Path(path)


def write_with_interruption(
    path: PathLike,
    seconds: float = 10.0,
    start: dt.datetime = _DEFAULT_START,
    *,
    gap_at_s: float = 4.0,
    gap_s: float = 5.0,
    silent_after_resume: bool = False,
    after_resume: F32 | None = None,
    camera: Camera = Camera(),
    encoding: Encoding = Encoding(),
) -> Path:
    """`seconds` of recorded media; the camera stops `gap_at_s` seconds in and resumes
    `gap_s` seconds later, so presentation times of video AND audio jump by `gap_s`.

    The last picture before the stop is shown at `gap_at_s - 1/fps`; the first after the
    resume at `gap_at_s + gap_s` (both rounded to whole frames; audio to whole AAC frames,
    since a camera's audio encoder stops between packets). With `silent_after_resume` the
    audio after the resume holds only the tone, no speech (for the AV-9 voice check);
    `after_resume` (mono samples at the encoding's rate) is the sound after the resume
    instead, silence once it ends."""
    enc = encoding
    at = as_seconds(gap_at_s)
    gap = as_seconds(gap_s)
    at_frame = round(at * enc.fps)
    gap_frames = round(gap * enc.fps)
    at_sample = round(at * enc.sample_rate / _AAC_FRAME) * _AAC_FRAME
    gap_samples = round(gap * enc.sample_rate)
    cut = _Cut(at_frame, gap_frames, at_sample, gap_samples, silent_after_resume, after_resume)
    _encode(path, as_seconds(seconds), start, camera, enc, cut)
    return Path(path)


def write_audio_only(
    path: PathLike,
    seconds: float = 5.0,
    start: dt.datetime = _DEFAULT_START,
    *,
    camera: Camera = Camera(),
    encoding: Encoding = Encoding(),
) -> Path:
    """An AAC voice recording in an .m4a (MP4 audio) container."""
    _encode(path, as_seconds(seconds), start, camera, encoding, video=False)
    return Path(path)


def write_still(
    path: PathLike,
    start: dt.datetime = _DEFAULT_START,
    *,
    width: int = 320,
    height: int = 240,
) -> Path:
    """One JPEG photo of the test picture (PyAV's mjpeg encoder, no EXIF)."""
    enc = Encoding(width=width, height=height)
    out = av.open(os.fspath(path), "w", format="mjpeg")
    try:
        vs = out.add_stream("mjpeg", rate=1, options={"flags": "+bitexact"})
        vs.width = width
        vs.height = height
        vs.pix_fmt = "yuvj420p"
        fr = av.VideoFrame.from_ndarray(_Picture(enc).frame(start, 0, 0.0), format="rgb24")
        fr.pts = 0
        for p in vs.encode(fr):
            out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
    finally:
        out.close()
    return Path(path)


def write_long(
    path: PathLike,
    minutes: int = 10,
    start: dt.datetime = _DEFAULT_START,
    *,
    camera: Camera = Camera(),
    encoding: Encoding | None = None,
    one_minute: PathLike | None = None,
) -> Path:
    """A long recording for benchmarks: one minute encoded once, then copied end to end.

    Default encoding: 1920x1080, 30 fps, about 6 Mbit/s H.264 (1 s GOP) and AAC at
    32 kHz. The minute is encoded to `one_minute` (or a temporary file) and remuxed
    `minutes` times with timestamps continuing exactly where the previous copy ended.

    What the copying leaves, honestly: every copy repeats the first one's x264 SEI and
    parameter sets (identical bytes) at its first keyframe, and the audio decoder sees
    an AAC frame boundary with no overlap at each join. The timestamps show nothing: 60 s
    is 1800 frames (60 whole GOPs) and, at 32 kHz, exactly 1875 AAC frames, so the
    spacing stays perfectly regular. At 48 kHz a minute is 2812.5 AAC frames and each
    join would leave one 512-sample spacing (a SPLICE_IRREGULAR_DURATION per join). The
    copies' encoder priming packets (pts < 0) are dropped after the first copy."""
    enc = encoding or Encoding(
        width=1920, height=1080, fps=30, gop_s=1, video_bit_rate=6_000_000,
        preset="ultrafast", sample_rate=32000, audio_bit_rate=96000,
    )  # fmt: skip
    if minutes < 1:
        raise ValueError("minutes must be at least 1")
    tmpdir = None
    if one_minute is None:
        tmpdir = tempfile.mkdtemp(prefix="custody-synth-")
        one_minute = Path(tmpdir) / "minute.mp4"
    try:
        if not Path(one_minute).exists():
            _encode(one_minute, Fraction(60), start, camera, enc)
        _repeat(one_minute, path, minutes, Fraction(60))
    finally:
        if tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)
    return Path(path)


def _repeat(src: PathLike, dst: PathLike, times: int, period: Fraction) -> None:
    with av.open(os.fspath(src)) as inp:
        out = open_output(dst, copy_tags(inp))
        try:
            omap = {s.index: out.add_stream_from_template(s) for s in inp.streams}
            for k in range(times):
                inp.seek(0)
                for p in packets(inp):
                    tb = Fraction(p.time_base)
                    period_ticks = period / tb
                    pts = p.pts if p.pts is not None else p.dts
                    if k and pts is not None and pts < 0:
                        continue  # encoder priming: only the first copy keeps it
                    if pts is not None and pts >= period_ticks:
                        continue  # the tail past the minute overlaps the next copy
                    d = int(k * period_ticks)
                    if p.pts is not None:
                        p.pts += d
                    if p.dts is not None:
                        p.dts += d
                    p.stream = omap[p.stream_index]
                    out.mux(p)
        finally:
            out.close()

