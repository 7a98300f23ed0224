"""Container timestamp models: each family's clean timelines give no finding, and the
model's facts (33-bit wrap, missing pts, Ogg page times, Vorbis blocks) are applied."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.analysis.models import clock_of, encoder_delay, model_for, variable_frames
from pipeline.analysis.timing import analyse
from schemas.media import NOPTS, StreamTimeline
from tests.timelines import codes, result, stream

MS = Fraction(1, 1000)
PES = Fraction(1, 90000)
WRAP = 2**33


def vorbis(durations: list[int], *, tb: Fraction = Fraction(1, 48000), index: int = 1,
           per_page: int = 1) -> StreamTimeline:  # fmt: skip
    """A Vorbis stream with the given packet durations (samples), `per_page` packets a page."""
    d = np.asarray(durations, dtype=np.int64)
    pts = np.concatenate([[0], np.cumsum(d)[:-1]])
    s = stream(pts, index=index, kind="audio", tb=tb)
    pos = (np.arange(d.size) // per_page) * 4096
    return replace(s, codec="vorbis", duration=d, pos=pos.astype(np.int64), sample_rate=48000)


def test_family_comes_from_the_ffmpeg_format_name() -> None:
    assert model_for("mov,mp4,m4a,3gp,3g2,mj2").family == "isobmff"
    assert model_for("matroska,webm").family == "matroska"
    assert model_for("mpegts").wrap_bits == 33
    assert model_for("mpeg").family == "mpegps"
    assert model_for("ogg").page_times
    assert model_for("avi").pts_may_be_missing
    assert not model_for("aac").stored_times
    assert model_for(None).family == "isobmff"  # unknown: the strictest model


def test_wrapped_pes_times_are_unwrapped() -> None:
    """A TS whose 33-bit times wrap and were not unwrapped by the demuxer is continuous
    once read by its model."""
    raw = (WRAP - 30 * 3000 + np.arange(90, dtype=np.int64) * 3000) % WRAP
    t = clock_of(stream(raw, tb=PES), model_for("mpegts"))
    assert np.all(np.diff(t.pts) == 3000)
    assert np.all(np.diff(t.dts) == 3000)


def test_wrapped_ts_gives_no_finding() -> None:
    raw = (WRAP - 30 * 3000 + np.arange(90, dtype=np.int64) * 3000) % WRAP
    assert analyse(result(stream(raw, tb=PES), container="mpegts")) == []


def test_same_wrap_in_an_mp4_is_judged_as_stored() -> None:
    """Sample tables do not wrap: the same jump in an MP4 is timestamps going backwards."""
    raw = (WRAP - 30 * 3000 + np.arange(90, dtype=np.int64) * 3000) % WRAP
    back = codes(analyse(result(stream(raw, tb=PES))), "TS_BACKWARDS")
    assert [(f.stream_index, f.pts) for f in back] == [(0, 0)]  # where the times wrap


def test_missing_pts_in_ts_do_not_make_a_gap() -> None:
    """PES headers without PTS on 10 frames in a row: the decode times show no hole."""
    pts = np.arange(120, dtype=np.int64) * 3000
    pts[40:50] = NOPTS
    s = stream(pts, tb=PES, dts=np.arange(120, dtype=np.int64) * 3000)
    assert analyse(result(s, container="mpegts")) == []
    gaps = codes(analyse(result(s)), "GAP_IN_STREAM")  # an MP4 never lacks them
    assert [(f.stream_index, f.pts) for f in gaps] == [(0, 39 * 3000)]


def test_vorbis_block_sizes_are_no_splice() -> None:
    d = [128, 576] + [1024] * 100 + [576, 128, 128, 576] + [1024] * 80
    assert analyse(result(vorbis(d, index=0), container="ogg")) == []


def test_vorbis_is_a_variable_frame_codec_and_aac_delay_is_its_priming() -> None:
    assert variable_frames(vorbis([1024] * 4))
    a = replace(stream([0, 1024], kind="audio"), sample_rate=48000)
    assert not variable_frames(a)
    assert encoder_delay(a) == Fraction(2112, 48000)


def test_ogg_packets_inside_a_page_are_not_judged_for_order() -> None:
    """Interpolated times inside a page repeat; page times increase: no finding."""
    d = [1024] * 120
    s = vorbis(d, index=0, per_page=6)
    dts = s.dts.copy()
    dts[1::6] = dts[0::6]  # the second packet of each page repeats the first's time
    s = replace(s, dts=dts)
    assert codes(analyse(result(s, container="ogg")), "TS_REPEATED") == []
    rep = codes(analyse(result(s)), "TS_REPEATED")  # judged packet by packet elsewhere
    assert [(f.stream_index, f.pts) for f in rep] == [(0, int(t)) for t in dts[0::6]]


# --- clean timelines of every family: no finding ------------------------------------------


def _family_timelines(
    family: str, n: int, start: int, seed: int
) -> tuple[str, list[StreamTimeline]]:
    """n video frames at 30 fps from frame `start`, and AAC-sized audio over the same span
    (25 packets of 1024 samples at 48 kHz per 16 frames)."""
    rng = np.random.default_rng(seed)
    i = np.arange(n, dtype=np.int64)
    j = np.arange(n * 25 // 16, dtype=np.int64)
    a0 = start * 1600  # the video start in samples
    if family == "isobmff":
        v = stream((start + i) * 512, tb=Fraction(1, 15360), duration=512)
        a = stream(a0 + j * 1024, index=1, kind="audio", tb=Fraction(1, 48000))
        return "mov,mp4,m4a,3gp,3g2,mj2", [v, a]
    if family == "matroska":  # ms block times: 30 fps and AAC rounded to whole ms
        v = stream((start + i) * 1000 // 30, tb=MS, duration=33)
        a = stream((a0 + j * 1024) * 1000 // 48000, index=1, kind="audio", tb=MS, duration=21)
        return "matroska,webm", [v, a]
    if family == "mpegts":  # 90 kHz, wrapping, some PES without PTS
        base = WRAP - (start % 200) * 3000
        vp = (base + i * 3000) % WRAP
        vd = vp.copy()
        vp[rng.random(n) < 0.1] = NOPTS
        v = stream(vp, tb=PES, dts=vd)
        a = stream((base + j * 1920) % WRAP, index=1, kind="audio", tb=PES, duration=1920)
        return "mpegts", [v, a]
    if family == "ogg":  # Theora frame numbers, Vorbis blocks, several packets a page
        v = stream(start + i, tb=Fraction(1, 30), duration=1)
        blocks = rng.choice([128, 576, 1024, 1472], size=4 * n).tolist()
        a = vorbis(blocks, per_page=int(rng.integers(1, 17)))
        total = np.cumsum(a.duration)
        keep = int(np.searchsorted(total, n * 1600)) + 1
        a = replace(a, pts=a.pts[:keep] + a0, dts=a.dts[:keep] + a0, duration=a.duration[:keep],
                    keyframe=a.keyframe[:keep], discard=a.discard[:keep], size=a.size[:keep],
                    pos=a.pos[:keep])  # fmt: skip
        return "ogg", [v, a]
    if family == "avi":  # frame counters; reference frames without pts
        vp = start + i
        vd = vp.copy()
        vp = np.where(rng.random(n) < 0.3, NOPTS, vp)
        v = stream(vp, tb=Fraction(1, 30), dts=vd, duration=1)
        a = stream(a0 + j * 1024, index=1, kind="audio", tb=Fraction(1, 48000))
        return "avi", [v, a]
    # raw ADTS: frame counts in FFmpeg's fine time base
    a = stream(i * 602112, index=0, kind="audio", tb=Fraction(1, 28224000), duration=602112)
    return "aac", [a]


@settings(max_examples=80, deadline=None)
@given(
    family=st.sampled_from(["isobmff", "matroska", "mpegts", "ogg", "avi", "raw"]),
    n=st.integers(min_value=12, max_value=400),
    start=st.integers(min_value=0, max_value=10_000),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_clean_timeline_of_every_family_gives_no_finding(
    family: str, n: int, start: int, seed: int
) -> None:
    container, streams = _family_timelines(family, n, start, seed)
    fs = analyse(result(*streams, container=container))
    assert [(f.code, f.stream_index, f.detail) for f in fs] == []
