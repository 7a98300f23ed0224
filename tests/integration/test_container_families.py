"""Every container family, clean and stream-copy edited (issue 9 items 5-7).

The corpus (`tests.containergen`) is built once per session. For every file the probe's
pts/dts of each stream must equal `ffprobe -show_packets` exactly (the external
validator: another build of FFmpeg, read by another program). A clean recording must give
no AV-9 error (an interruption or edit finding of severity error); the edited ones must
give the finding that tells what was done: TS_REWRITTEN where the concat demuxer left
packets a tick apart, HIDDEN_MEDIA where a stream-copy trim kept media its edit list
hides. Where the analysis is wrong on a family the test is a strict xfail naming the
issue item (`WRONG_TODAY`), so it flips when the analysis is fixed.
"""

from __future__ import annotations

import json
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from pipeline.analysis.timing import analyse
from pipeline.media.probe import probe
from schemas.media import NOPTS, Finding, ProbeResult, StreamTimeline
from tests import containergen
from tests.conftest import require_tool
from tests.containergen import Made, Unavailable

# Clean files today's analysis wrongly calls interrupted or edited, and why (none left:
# Vorbis block sizes were judged as a splice until the container models of item 5).
WRONG_TODAY: dict[str, str] = {}
FRAME_S = 1 / 30

CLEAN = sorted(containergen.CLEAN)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Made | Unavailable]:
    require_tool("ffmpeg")
    return containergen.build(tmp_path_factory.mktemp("containers"))


def made(corpus: dict[str, Made | Unavailable], name: str) -> Made:
    got = corpus[name]
    if isinstance(got, Unavailable):
        pytest.skip(f"{name}: {got}")
    return got


_probed: dict[Path, ProbeResult] = {}


def probed(path: Path) -> ProbeResult:
    if path not in _probed:
        _probed[path] = probe(path)
    return _probed[path]


def av9_errors(fs: list[Finding]) -> list[Finding]:
    """Findings that say the recording was interrupted or edited, at severity error."""
    return [f for f in fs if f.category in ("interruption", "edit") and f.severity == "error"]


# --- the external validator ---------------------------------------------------------------------


_ffprobed: dict[Path, dict[int, tuple[Fraction, np.ndarray, np.ndarray]]] = {}


def ffprobe_packets(path: Path) -> dict[int, tuple[Fraction, np.ndarray, np.ndarray]]:
    """Per stream: time base, pts and dts of every packet by ffprobe (NOPTS where N/A)."""
    if path in _ffprobed:
        return _ffprobed[path]
    ffprobe = require_tool("ffprobe")
    out = subprocess.run(
        [
            ffprobe,
            "-v",
            "error",
            "-show_entries",
            "stream=index,time_base",
            "-show_entries",
            "packet=stream_index,pts,dts",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    doc = json.loads(out)
    cols: dict[int, tuple[list[int], list[int]]] = {}
    for p in doc.get("packets", []):
        pts, dts = cols.setdefault(int(p["stream_index"]), ([], []))
        pts.append(int(p.get("pts", NOPTS)))
        dts.append(int(p.get("dts", NOPTS)))
    _ffprobed[path] = {
        int(s["index"]): (
            Fraction(s["time_base"]),
            np.asarray(cols.get(int(s["index"]), ([], []))[0], dtype=np.int64),
            np.asarray(cols.get(int(s["index"]), ([], []))[1], dtype=np.int64),
        )
        for s in doc["streams"]
    }
    return _ffprobed[path]


def disagreements(path: Path) -> list[str]:
    """Where the probe and ffprobe differ on a stream's time base, packet count, pts or dts.

    Exact where both give a value, and the probe must give every value ffprobe gives.
    The reverse is allowed: PyAV's newer libavformat guesses the pts of reference frames
    that AVI and MPEG-PS do not carry, where Debian's ffprobe says N/A (`filled_in`)."""
    ours = {t.index: t for t in probed(path).streams}
    theirs = ffprobe_packets(path)
    out = []
    if set(ours) != set(theirs):
        out.append(f"streams: ours {sorted(ours)}, ffprobe {sorted(theirs)}")
    for i in sorted(set(ours) & set(theirs)):
        t = ours[i]
        tb, pts, dts = theirs[i]
        if t.time_base != tb:
            out.append(f"stream {i}: time base {t.time_base} vs {tb}")
            continue
        if t.pts.shape != pts.shape:
            out.append(f"stream {i}: {t.pts.size} packets vs {pts.size}")
            continue
        for name, a, b in (("pts", t.pts, pts), ("dts", t.dts, dts)):
            bad = np.flatnonzero((a != b) & (b != NOPTS))
            if bad.size:
                k = int(bad[0])
                out.append(
                    f"stream {i}: {name} differs at {bad.size} packets, first #{k} "
                    f"({int(a[k])} vs {int(b[k])})"
                )
    return out


def filled_in(path: Path) -> dict[int, int]:
    """Per stream, packets with a pts from the probe where ffprobe has none."""
    ours = {t.index: t for t in probed(path).streams}
    out = {}
    for i, (_tb, pts, _dts) in ffprobe_packets(path).items():
        if i in ours and ours[i].pts.shape == pts.shape:
            n = int(((pts == NOPTS) & (ours[i].pts != NOPTS)).sum())
            if n:
                out[i] = n
    return out


ALL = sorted({**containergen.CLEAN, **containergen.EDITED})


@pytest.mark.parametrize("name", ALL)
def test_timestamps_equal_ffprobe(corpus: dict[str, Made | Unavailable], name: str) -> None:
    """Our pts and dts of every stream are ffprobe's, packet for packet."""
    path, _ = made(corpus, name)
    assert disagreements(path) == []


# --- item 5: clean recordings in every family ----------------------------------------------------


def _clean_params() -> list[object]:
    return [
        pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=WRONG_TODAY[n]))
        if n in WRONG_TODAY
        else n
        for n in CLEAN
    ]


@pytest.mark.parametrize("name", _clean_params())
def test_clean_recording_has_no_av9_error(corpus: dict[str, Made | Unavailable], name: str) -> None:
    path, truth = made(corpus, name)
    assert truth.expected == "clean"
    errors = av9_errors(analyse(probed(path)))
    assert [(f.code, f.stream_index, f.at_seconds) for f in errors] == []


@pytest.mark.parametrize("name", CLEAN)
def test_clean_recording_has_no_rewritten_or_hidden_media(
    corpus: dict[str, Made | Unavailable], name: str
) -> None:
    """No clean file of any family has packets closer than a clock or media kept hidden."""
    path, _ = made(corpus, name)
    got = [f for f in analyse(probed(path)) if f.code in ("TS_REWRITTEN", "HIDDEN_MEDIA")]
    assert [(f.code, f.stream_index, f.at_seconds) for f in got] == []


@pytest.mark.shared_media
def test_shared_corpus_has_no_rewritten_or_hidden_media(shared_media: Path) -> None:
    """Real devices' files (phones, a GoPro, a webcam, a 2004 phone) are neither."""
    hits = []
    for path in sorted(shared_media.iterdir()):
        if path.suffix.lower() in (".tsv", ".jpg"):
            continue
        hits += [
            (path.name, f.code)
            for f in analyse(probe(path))
            if f.code in ("TS_REWRITTEN", "HIDDEN_MEDIA")
        ]
    assert hits == []


def test_pts_wrap_is_in_the_file(corpus: dict[str, Made | Unavailable]) -> None:
    """The wrapping TS crosses 2**33 mid-file: FFmpeg unwraps it, showing the times before
    the wrap as negative, continuous with the ones after."""
    path, _ = made(corpus, "ts-wrap-ffmpeg")
    video = next(t for t in probed(path).streams if t.kind == "video")
    shown = video.pts[video.pts != NOPTS]
    assert video.time_base == Fraction(1, 90000)
    assert shown.min() < 0 < shown.max()
    assert shown.min() > -(2**33) // 2


# --- item 6: joins -----------------------------------------------------------------------------


def _join_found(corpus: dict[str, Made | Unavailable], name: str) -> None:
    path, truth = made(corpus, name)
    assert truth.expected == "join" and truth.at_s is not None
    at = [f.at_seconds for f in av9_errors(analyse(probed(path))) if f.at_seconds is not None]
    assert any(abs(a - truth.at_s) <= 0.1 for a in at), at


def test_classic_concat_join_is_found(corpus: dict[str, Made | Unavailable]) -> None:
    """Two clean recordings joined by `-c copy`: an edit error within 0.1 s of the join."""
    _join_found(corpus, "join-concat")


def test_concat_inpoint_inside_gop_leaves_packets_one_tick_apart(
    corpus: dict[str, Made | Unavailable],
) -> None:
    """What the muxer's fix-up leaves: runs of decode times one tick apart, video and audio."""
    path, _ = made(corpus, "join-inpoint-gop")
    for t in probed(path).streams:
        assert int((np.diff(t.dts) == 1).sum()) >= 50, t.kind


def test_concat_inpoint_inside_gop_is_found(corpus: dict[str, Made | Unavailable]) -> None:
    _join_found(corpus, "join-inpoint-gop")


def test_concat_inpoint_inside_gop_is_timestamps_rewritten(
    corpus: dict[str, Made | Unavailable],
) -> None:
    """One TS_REWRITTEN per stream at the start of its one-tick run: video from the last
    frame before the join (1.988 s: 100 packets within 6.5 ms), audio from 2.005 s."""
    path, truth = made(corpus, "join-inpoint-gop")
    assert truth.at_s is not None
    r = probed(path)
    video = next(t for t in r.streams if t.kind == "video")
    audio = next(t for t in r.streams if t.kind == "audio")
    got = [f for f in analyse(r) if f.code == "TS_REWRITTEN"]
    assert [f.stream_index for f in got] == [video.index, audio.index]
    v, a = got
    assert v.severity == "error" and v.category == "edit"
    assert v.pts == 30531 and v.at_seconds is not None
    assert abs(v.at_seconds - (truth.at_s - FRAME_S / 3)) <= FRAME_S
    assert "100 packets from 1.988 s (pts 30531) to 1.994 s (pts 30631)" in v.detail
    assert "within 0.007 s" in v.detail
    assert a.pts == 96256 and a.at_seconds is not None
    assert abs(a.at_seconds - 2.005) <= FRAME_S
    assert "157 packets from 2.005 s (pts 96256) to 2.009 s" in a.detail


def test_classic_concat_join_has_no_rewritten_times(
    corpus: dict[str, Made | Unavailable],
) -> None:
    """A join of whole recordings leaves one odd audio spacing, not a run: no TS_REWRITTEN."""
    path, _ = made(corpus, "join-concat")
    assert [f for f in analyse(probed(path)) if f.code == "TS_REWRITTEN"] == []


# --- item 7: media an edit list hides ------------------------------------------------------------


def hidden_packets(t: StreamTimeline) -> int:
    """Packets presented wholly before the stream's presentation start (pts 0 after
    FFmpeg applies the edit list)."""
    ok = (t.pts != NOPTS) & (t.duration != NOPTS)
    return int(((t.pts + t.duration <= 0) & ok).sum())


def test_stream_copy_trim_keeps_media_the_edit_list_hides(
    corpus: dict[str, Made | Unavailable],
) -> None:
    """`-ss 1.3 -c copy` from a 1 s GOP: nine video frames (0.3 s) kept but hidden."""
    path, truth = made(corpus, "trim-copy")
    video = next(t for t in probed(path).streams if t.kind == "video")
    assert truth.hidden_s is not None
    assert hidden_packets(video) == round(truth.hidden_s * 30)
    assert probed(path).edit_lists


def test_stream_copy_trim_hidden_media_is_reported(
    corpus: dict[str, Made | Unavailable],
) -> None:
    path, _ = made(corpus, "trim-copy")
    video = next(t for t in probed(path).streams if t.kind == "video")
    reported = [
        f
        for f in analyse(probed(path))
        if f.category == "edit"
        and f.severity in ("warning", "error")
        and f.stream_index == video.index
        and str(hidden_packets(video)) in f.detail
    ]
    assert reported


def test_stream_copy_trim_gives_hidden_media_with_count_and_span(
    corpus: dict[str, Made | Unavailable],
) -> None:
    """HIDDEN_MEDIA (warning) on both streams, in place of the device-like offset: 9 video
    frames (0.300 s) and 0.383 s of audio, of which AAC's delay explains 0.044 s at most."""
    path, _ = made(corpus, "trim-copy")
    r = probed(path)
    fs = analyse(r)
    assert [f.code for f in fs] == ["HIDDEN_MEDIA", "HIDDEN_MEDIA"]
    v, a = fs
    assert (v.stream_index, a.stream_index) == (0, 1)
    assert v.severity == "warning" and v.pts == 0
    assert "keeps 9 packets before its presentation start (0.300 s, pts -4608 to 0)" in v.detail
    assert (
        "keeps 17 packets and part of 1 more before its presentation start "
        "(0.383 s, pts -18368 to 0)"
    ) in a.detail
    assert "explains at most 0.044 s" in a.detail


def test_edit_list_hiding_only_encoder_delay_is_no_edit(
    corpus: dict[str, Made | Unavailable],
) -> None:
    """The negative control: an AAC file whose edit list hides the 1024 priming samples."""
    path, truth = made(corpus, "priming-only")
    assert truth.expected == "priming"
    assert len(probed(path).edit_lists) == 1
    edits = [
        f
        for f in analyse(probed(path))
        if f.category in ("edit", "interruption") and f.severity != "info"
    ]
    assert edits == []
