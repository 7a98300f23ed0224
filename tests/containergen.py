"""Small recordings in every container family, clean and stream-copy edited, with their truth.

Issue 9 items 5-7: each container has its own timestamp model (MP4 sample tables,
Matroska millisecond block times, MPEG-TS/PS PES times with a 33-bit wrap, Ogg granule
positions at page ends, AVI frame counters, raw audio streams), and the analysis must be
right on every one. This module writes the corpus that shows it: one CLEAN file per
family as a camera or recorder would make it, written by Debian's `ffmpeg` (subprocess,
`-f lavfi testsrc2/sine`, bit-exact) and, where PyAV has the encoders, by PyAV (through
`pipeline.demo.synth` for H.264+AAC, a small writer here for the other codecs); and the
EDITED cases: concat-demuxer joins (one inside a long GOP), a stream-copy trim that leaves
media an edit list hides, and an AAC file whose edit list hides only the encoder delay.

Files are 160x120, 30 fps, 3-5 s, so the whole corpus builds in a few seconds on two
cores (`build`, threads: the work is in the encoders). Every writer returns the path and a
`Truth`: the family, who wrote it, and what the analysis should conclude. A family whose
encoder is missing raises `Unavailable` with the reason (the tests skip it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from pathlib import Path

import av
import numpy as np

from pipeline.demo import synth

__all__ = [
    "CLEAN",
    "EDITED",
    "Made",
    "Truth",
    "Unavailable",
    "build",
]

FFMPEG = os.environ.get("CUSTODY_FFMPEG", "/usr/bin/ffmpeg")
SIZE = "160x120"
FPS = 30
SAMPLE_RATE = 48000
SECONDS = 4.0
# 2**33 ticks of 90 kHz: where MPEG-TS/PS presentation times wrap (about 26.5 hours).
TS_WRAP_S = Fraction(2**33, 90000)


class Unavailable(Exception):
    """This ffmpeg or PyAV cannot write the family (an encoder or muxer is missing)."""


@dataclass(frozen=True, slots=True)
class Truth:
    """What is true of a generated file.

    `expected` is "clean" (a continuous recording: no interruption or edit finding may be
    an error), "join" (two recordings joined by stream copy at `at_s` seconds of output
    presentation time), "hidden" (a stream-copy trim: the file keeps `hidden_s` seconds of
    video before `at_s` that its edit list hides) or "priming" (an edit list that hides
    only the audio encoder delay, `hidden_s` seconds: the negative control for hidden
    media)."""

    family: str  # mp4 mov fmp4 cmaf mkv webm ts ts-wrap ps ogg avi adts mp3 amr 3gp flv
    writer: str  # "ffmpeg" (Debian's command line) or "pyav"
    codecs: str  # e.g. "h264+aac"
    expected: str = "clean"
    at_s: float | None = None
    hidden_s: float | None = None
    note: str = ""


Made = tuple[Path, Truth]


# --- the writers' plumbing ---------------------------------------------------------------


@cache
def _ffmpeg_encoders() -> frozenset[str]:
    if shutil.which(FFMPEG) is None:
        return frozenset()
    out = subprocess.run(
        [FFMPEG, "-hide_banner", "-encoders"], capture_output=True, text=True, check=True
    ).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and len(parts[0]) == 6 and parts[0][0] in "VAS":
            names.add(parts[1])
    return frozenset(names)


def _need(*encoders: str) -> None:
    if shutil.which(FFMPEG) is None:
        raise Unavailable(f"{FFMPEG} not found (Debian package ffmpeg)")
    missing = [e for e in encoders if e not in _ffmpeg_encoders()]
    if missing:
        raise Unavailable(f"this ffmpeg has no {', '.join(missing)} encoder")


def _run(args: list[str], cwd: Path | None = None) -> None:
    cmd = [FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}\n{done.stderr.strip()}")


def _lavfi(
    seconds: float = SECONDS,
    *,
    video: bool = True,
    audio: bool = True,
    sample_rate: int = SAMPLE_RATE,
    size: str = SIZE,
) -> list[str]:
    args: list[str] = []
    if video:
        args += ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={FPS}:duration={seconds}"]
    if audio:
        args += [
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=440:sample_rate={sample_rate}:duration={seconds}",
        ]
    return args


def _opts(text: str) -> list[str]:
    """Command-line options written as one string (no option here has a space)."""
    return text.split()


_BITEXACT = ["-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact"]
# A camera's H.264: fixed 1 s GOP, never a keyframe on a scene cut, two B-frames, and no
# x264 SEI (a hardware encoder writes none; the bitstream filter drops every SEI unit), so
# the edited files show what the timestamps alone reveal.
_X264 = _opts(
    f"-c:v libx264 -preset veryfast -crf 28 -g {FPS} -keyint_min {FPS} -sc_threshold 0 "
    "-bf 2 -pix_fmt yuv420p -bsf:v filter_units=remove_types=6"
)
_AAC = _opts("-c:a aac -b:a 64k")


def _h264_aac(
    d: Path, name: str, family: str, *extra: str, seconds: float = SECONDS, note: str = ""
) -> Made:
    _need("libx264", "aac")
    path = d / name
    _run([*_lavfi(seconds), *_X264, *_AAC, *_BITEXACT, *extra, str(path)])
    return path, Truth(family, "ffmpeg", "h264+aac", note=note)


# --- clean recordings: Debian's ffmpeg -------------------------------------------------------


def mp4_ffmpeg(d: Path) -> Made:
    return _h264_aac(d, "ff.mp4", "mp4")


def mov_ffmpeg(d: Path) -> Made:
    return _h264_aac(d, "ff.mov", "mov")


def fmp4_ffmpeg(d: Path) -> Made:
    return _h264_aac(
        d,
        "ff-frag.mp4",
        "fmp4",
        "-movflags",
        "frag_keyframe+empty_moov",
        note="moof per keyframe, empty moov",
    )


def cmaf_ffmpeg(d: Path) -> Made:
    return _h264_aac(
        d,
        "ff-cmaf.mp4",
        "cmaf",
        "-movflags",
        "frag_keyframe+empty_moov+default_base_moof",
        note="CMAF-like: default-base-is-moof",
    )


def mkv_ffmpeg(d: Path) -> Made:
    return _h264_aac(d, "ff.mkv", "mkv")


def ts_ffmpeg(d: Path) -> Made:
    return _h264_aac(d, "ff.ts", "ts")


def ts_wrap_ffmpeg(d: Path) -> Made:
    """An MPEG-TS whose 33-bit PTS wraps about 2 s in: the offset puts the first
    presentation (the muxer adds its 1.4 s start delay) 2 s before 2**33 / 90 kHz."""
    offset = float(TS_WRAP_S) - 2.0 - 1.4
    path, truth = _h264_aac(
        d,
        "ff-wrap.ts",
        "ts-wrap",
        "-output_ts_offset",
        f"{offset:.3f}",
        note=f"PES times wrap past 2^33 about 2 s in (offset {offset:.3f} s)",
    )
    return path, truth


def webm_vp8_ffmpeg(d: Path) -> Made:
    _need("libvpx", "libvorbis")
    path = d / "ff-vp8.webm"
    vp8 = f"-c:v libvpx -deadline realtime -cpu-used 8 -b:v 200k -g {FPS} -auto-alt-ref 0"
    _run([*_lavfi(), *_opts(vp8), *_opts("-c:a libvorbis -q:a 3"), *_BITEXACT, str(path)])
    return path, Truth("webm", "ffmpeg", "vp8+vorbis")


def webm_vp9_ffmpeg(d: Path) -> Made:
    _need("libvpx-vp9", "libopus")
    path = d / "ff-vp9.webm"
    vp9 = f"-c:v libvpx-vp9 -deadline realtime -cpu-used 8 -b:v 200k -g {FPS}"
    _run([*_lavfi(), *_opts(vp9), *_opts("-c:a libopus -b:a 48k"), *_BITEXACT, str(path)])
    return path, Truth("webm", "ffmpeg", "vp9+opus")


def ps_ffmpeg(d: Path) -> Made:
    """A DVD-style program stream (`-f vob`): MPEG-2 video with B-frames and MP2 audio."""
    _need("mpeg2video", "mp2")
    path = d / "ff.vob"
    codecs = _opts("-c:v mpeg2video -g 15 -bf 2 -b:v 400k -c:a mp2 -b:a 128k")
    _run([*_lavfi(), *codecs, *_BITEXACT, "-f", "vob", str(path)])
    return path, Truth("ps", "ffmpeg", "mpeg2video+mp2")


def ogg_theora_ffmpeg(d: Path) -> Made:
    _need("libtheora", "libvorbis")
    path = d / "ff.ogv"
    codecs = _opts(f"-c:v libtheora -q:v 5 -g {FPS} -c:a libvorbis -q:a 3")
    _run([*_lavfi(), *codecs, *_BITEXACT, str(path)])
    return path, Truth("ogg", "ffmpeg", "theora+vorbis")


def ogg_vorbis_long_ffmpeg(d: Path) -> Made:
    """20 s of Theora and Vorbis whose sound comes in bursts (noise switched on and off
    three times a second, like syllables): the encoder switches between short and long
    blocks all the time, so packets of 128, 576, 1024 and 1472 samples follow each other
    on a clean recording, on many pages."""
    _need("libtheora", "libvorbis")
    path = d / "ff-long.ogv"
    seconds = 20.0
    bursts = (
        f"aevalsrc=0.4*(random(0)-0.5)*gt(sin(2*PI*3*t)\\,0):s={SAMPLE_RATE}:d={seconds}"
    )
    codecs = _opts(f"-c:v libtheora -q:v 3 -g {FPS} -c:a libvorbis -q:a 3")
    _run([*_lavfi(seconds, audio=False), "-f", "lavfi", "-i", bursts, *codecs, *_BITEXACT,
          str(path)])  # fmt: skip
    return path, Truth("ogg", "ffmpeg", "theora+vorbis", note="20 s, bursty sound")


def ogg_opus_ffmpeg(d: Path) -> Made:
    _need("libopus")
    path = d / "ff.opus"
    _run([*_lavfi(video=False), "-c:a", "libopus", "-b:a", "32k", *_BITEXACT, str(path)])
    return path, Truth("ogg", "ffmpeg", "opus")


def avi_mjpeg_ffmpeg(d: Path) -> Made:
    _need("mjpeg", "pcm_s16le")
    path = d / "ff-mjpeg.avi"
    codecs = _opts("-c:v mjpeg -q:v 5 -pix_fmt yuvj420p -c:a pcm_s16le")
    _run([*_lavfi(), *codecs, *_BITEXACT, str(path)])
    return path, Truth("avi", "ffmpeg", "mjpeg+pcm_s16le")


def avi_mpeg4_ffmpeg(d: Path) -> Made:
    """MPEG-4 part 2 with B-frames (no pts in AVI: frame counters) and MP3 audio."""
    _need("mpeg4", "libmp3lame")
    path = d / "ff-mpeg4.avi"
    codecs = _opts(f"-c:v mpeg4 -q:v 5 -g {FPS} -bf 2 -c:a libmp3lame -b:a 64k")
    _run([*_lavfi(), *codecs, *_BITEXACT, str(path)])
    return path, Truth("avi", "ffmpeg", "mpeg4+mp3")


def adts_ffmpeg(d: Path) -> Made:
    _need("aac")
    path = d / "ff.aac"
    _run([*_lavfi(video=False), *_AAC, *_BITEXACT, "-f", "adts", str(path)])
    return path, Truth("adts", "ffmpeg", "aac")


def mp3_ffmpeg(d: Path) -> Made:
    _need("libmp3lame")
    path = d / "ff.mp3"
    codecs = _opts("-c:a libmp3lame -b:a 64k -write_xing 0")
    _run([*_lavfi(video=False), *codecs, *_BITEXACT, str(path)])
    return path, Truth("mp3", "ffmpeg", "mp3")


def amr_ffmpeg(d: Path) -> Made:
    _need("libopencore_amrnb")
    path = d / "ff.amr"
    codecs = _opts("-c:a libopencore_amrnb -ac 1 -b:a 12.2k")
    _run([*_lavfi(video=False, sample_rate=8000), *codecs, *_BITEXACT, str(path)])
    return path, Truth("amr", "ffmpeg", "amr_nb")


def gp3_ffmpeg(d: Path) -> Made:
    return _h264_aac(d, "ff.3gp", "3gp")


def flv_ffmpeg(d: Path) -> Made:
    return _h264_aac(d, "ff.flv", "flv")


# --- clean recordings: PyAV -------------------------------------------------------------------

_SMALL = synth.Encoding(width=160, height=120, fps=FPS)


def _synth(d: Path, name: str, family: str) -> Made:
    """H.264+AAC from the demo's camera writer (closed 1 s GOP, device tags), muxed by
    PyAV's libavformat into the container the name says."""
    path = synth.write_clean(d / name, SECONDS, encoding=_SMALL)
    return path, Truth(family, "pyav", "h264+aac")


def mp4_pyav(d: Path) -> Made:
    return _synth(d, "py.mp4", "mp4")


def mov_pyav(d: Path) -> Made:
    return _synth(d, "py.mov", "mov")


def mkv_pyav(d: Path) -> Made:
    return _synth(d, "py.mkv", "mkv")


def ts_pyav(d: Path) -> Made:
    return _synth(d, "py.ts", "ts")


def flv_pyav(d: Path) -> Made:
    return _synth(d, "py.flv", "flv")


def gp3_pyav(d: Path) -> Made:
    return _synth(d, "py.3gp", "3gp")


def _pyav_audio(
    path: Path,
    fmt: str | None,
    codec: str,
    sample_rate: int,
    bit_rate: int | None = None,
    seconds: float = SECONDS,
) -> None:
    """`seconds` of a 440 Hz tone encoded by PyAV into `fmt`."""
    if codec not in av.codecs_available:
        raise Unavailable(f"PyAV's FFmpeg has no {codec} encoder")
    with av.open(os.fspath(path), "w", format=fmt) as out:
        s = out.add_stream(codec, rate=sample_rate, layout="mono")
        if bit_rate is not None:
            s.bit_rate = bit_rate
        s.codec_context.time_base = Fraction(1, sample_rate)
        total = int(seconds * sample_rate)
        n = 1024  # PyAV re-frames to the encoder's frame size and sample format
        for first in range(0, total, n):
            k = min(n, total - first)
            t = np.arange(first, first + k) / sample_rate
            data = (0.3 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
            fr = av.AudioFrame.from_ndarray(data[None, :], format="fltp", layout="mono")
            fr.sample_rate = sample_rate
            fr.pts = first
            fr.time_base = Fraction(1, sample_rate)
            for p in s.encode(fr):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)


def amr_pyav(d: Path) -> Made:
    """AMR-NB, as a voice recorder writes it (8 kHz mono, 20 ms frames)."""
    path = d / "py.amr"
    _pyav_audio(path, "amr", "libopencore_amrnb", 8000, 12200)
    return path, Truth("amr", "pyav", "amr_nb")


def adts_pyav(d: Path) -> Made:
    path = d / "py.aac"
    _pyav_audio(path, "adts", "aac", SAMPLE_RATE, 64000)
    return path, Truth("adts", "pyav", "aac")


def mp3_pyav(d: Path) -> Made:
    path = d / "py.mp3"
    _pyav_audio(path, "mp3", "libmp3lame", SAMPLE_RATE, 64000)
    return path, Truth("mp3", "pyav", "mp3")


def ogg_opus_pyav(d: Path) -> Made:
    path = d / "py.opus"
    _pyav_audio(path, "ogg", "libopus", SAMPLE_RATE, 32000)
    return path, Truth("ogg", "pyav", "opus")


# --- edited: joins, trims, encoder delay (ffmpeg stream copies) ---------------------------------


def _concat(d: Path, name: str, entries: list[tuple[Path, float | None, float | None]]) -> Path:
    """`ffmpeg -f concat -i list -c copy`: each entry is (file, inpoint, outpoint)."""
    lines = []
    for src, inpoint, outpoint in entries:
        lines.append(f"file '{src.name}'")
        if inpoint is not None:
            lines.append(f"inpoint {inpoint}")
        if outpoint is not None:
            lines.append(f"outpoint {outpoint}")
    listing = d / f"{name}.txt"
    listing.write_text("\n".join(lines) + "\n")
    path = d / name
    _run(
        ["-f", "concat", "-safe", "0", "-i", listing.name, "-c", "copy", *_BITEXACT, path.name],
        cwd=d,
    )
    return path


def concat_join(d: Path) -> Made:
    """The classic join: two clean recordings (3 s then 4 s) by the concat demuxer."""
    _need("libx264", "aac")
    a = d / "join-a.mp4"
    b = d / "join-b.mp4"
    _run([*_lavfi(3.0), *_X264, *_AAC, *_BITEXACT, str(a)])
    _run([*_lavfi(4.0), *_X264, *_AAC, *_BITEXACT, str(b)])
    path = _concat(d, "joined.mp4", [(a, None, None), (b, None, None)])
    return path, Truth(
        "mp4", "ffmpeg", "h264+aac", "join", at_s=3.0, note="concat demuxer, -c copy, no inpoint"
    )


def concat_inpoint_gop(d: Path) -> Made:
    """One recording with 2.0-3.3 s cut out by the concat demuxer (`outpoint 2.0`, then the
    same file from `inpoint 3.3`), where the recording has one keyframe every 250 frames.
    For the second part the demuxer sends the packets from the keyframe before the
    inpoint with times moved before the join; the muxer raises every decode time that
    does not increase to the previous one plus one tick, which leaves runs of packets one
    tick apart (about 100 video and 150 audio packets here) and no gap."""
    _need("libx264", "aac")
    src = d / "gop-src.mp4"
    long_gop = [*_X264]
    long_gop[long_gop.index("-g") + 1] = "250"
    long_gop[long_gop.index("-keyint_min") + 1] = "250"
    _run([*_lavfi(6.0), *long_gop, *_AAC, *_BITEXACT, str(src)])
    path = _concat(d, "joined-gop.mp4", [(src, None, 2.0), (src, 3.3, None)])
    return path, Truth(
        "mp4",
        "ffmpeg",
        "h264+aac",
        "join",
        at_s=2.0,
        note="concat demuxer: outpoint 2.0, then inpoint 3.3 inside a "
        "250-frame GOP of the same recording",
    )


def trim_copy(d: Path) -> Made:
    """`ffmpeg -ss 1.3 -i src -c copy` to MP4: the copy starts at the keyframe at 1.0 s and
    an edit list hides the 0.3 s of video before the cut."""
    _need("libx264", "aac")
    src = d / "trim-src.mp4"
    _run([*_lavfi(5.0), *_X264, *_AAC, *_BITEXACT, str(src)])
    path = d / "trimmed.mp4"
    _run(["-ss", "1.3", "-i", str(src), "-c", "copy", *_BITEXACT, str(path)])
    return path, Truth(
        "mp4",
        "ffmpeg",
        "h264+aac",
        "hidden",
        at_s=0.0,
        hidden_s=0.3,
        note="stream-copy trim -ss 1.3 from a 1 s GOP source",
    )


def priming_only(d: Path) -> Made:
    """An AAC recording (.m4a) whose edit list hides only the encoder's 1024 samples of
    priming: what every AAC encoder leaves, not an edit."""
    _need("aac")
    path = d / "priming.m4a"
    _run([*_lavfi(video=False), *_AAC, *_BITEXACT, str(path)])
    return path, Truth(
        "mp4",
        "ffmpeg",
        "aac",
        "priming",
        at_s=0.0,
        hidden_s=1024 / SAMPLE_RATE,
        note="edit list hides AAC priming only",
    )


CLEAN: dict[str, Callable[[Path], Made]] = {
    "mp4-ffmpeg": mp4_ffmpeg,
    "mp4-pyav": mp4_pyav,
    "mov-ffmpeg": mov_ffmpeg,
    "mov-pyav": mov_pyav,
    "fmp4-ffmpeg": fmp4_ffmpeg,
    "cmaf-ffmpeg": cmaf_ffmpeg,
    "mkv-ffmpeg": mkv_ffmpeg,
    "mkv-pyav": mkv_pyav,
    "webm-vp8-ffmpeg": webm_vp8_ffmpeg,
    "webm-vp9-ffmpeg": webm_vp9_ffmpeg,
    "ts-ffmpeg": ts_ffmpeg,
    "ts-pyav": ts_pyav,
    "ts-wrap-ffmpeg": ts_wrap_ffmpeg,
    "ps-ffmpeg": ps_ffmpeg,
    "ogg-theora-ffmpeg": ogg_theora_ffmpeg,
    "ogg-vorbis-long-ffmpeg": ogg_vorbis_long_ffmpeg,
    "ogg-opus-ffmpeg": ogg_opus_ffmpeg,
    "ogg-opus-pyav": ogg_opus_pyav,
    "avi-mjpeg-ffmpeg": avi_mjpeg_ffmpeg,
    "avi-mpeg4-ffmpeg": avi_mpeg4_ffmpeg,
    "adts-ffmpeg": adts_ffmpeg,
    "adts-pyav": adts_pyav,
    "mp3-ffmpeg": mp3_ffmpeg,
    "mp3-pyav": mp3_pyav,
    "amr-ffmpeg": amr_ffmpeg,
    "amr-pyav": amr_pyav,
    "3gp-ffmpeg": gp3_ffmpeg,
    "3gp-pyav": gp3_pyav,
    "flv-ffmpeg": flv_ffmpeg,
    "flv-pyav": flv_pyav,
}

EDITED: dict[str, Callable[[Path], Made]] = {
    "join-concat": concat_join,
    "join-inpoint-gop": concat_inpoint_gop,
    "trim-copy": trim_copy,
    "priming-only": priming_only,
}


def build(d: Path, names: list[str] | None = None, jobs: int = 2) -> dict[str, Made | Unavailable]:
    """Write the named cases (default: all) into `d`, `jobs` at a time; a family that
    cannot be written maps to its `Unavailable`."""
    table = {**CLEAN, **EDITED}
    wanted = names if names is not None else list(table)

    def one(name: str) -> Made | Unavailable:
        sub = d / name
        sub.mkdir(parents=True, exist_ok=True)
        try:
            return table[name](sub)
        except Unavailable as exc:
            return exc

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return dict(zip(wanted, pool.map(one, wanted), strict=True))
