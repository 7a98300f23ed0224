"""Container findings on synthetic timelines: edit lists and the declared duration."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import numpy as np

from pipeline.analysis.timing import analyse
from schemas.media import Finding
from tests.timelines import AAC, AUDIO_TB, FRAME, elst, regular, result, stream


def test_phone_sized_start_offset_is_info_not_edit() -> None:
    s = stream(regular(100, start=-14 * FRAME), discard=np.arange(100) < 14)
    f = analyse(result(s, edit_lists=(elst(0, 14 * FRAME),)))
    assert [x.code for x in f] == ["EDIT_LIST_OFFSET"]
    assert f[0].severity == "info"


def test_large_hidden_start_is_an_edit() -> None:
    s = stream(regular(200, start=-60 * FRAME), discard=np.arange(200) < 60)
    f = analyse(result(s, edit_lists=(elst(0, 60 * FRAME),)))
    assert [x.code for x in f] == ["EDIT_LIST"]
    assert "2.000 s" in f[0].detail


def test_two_pieces_are_an_edit() -> None:
    s = stream(regular(100))
    f = analyse(result(s, edit_lists=(elst(0, 0, 1000), elst(0, 60 * FRAME, 1000))))
    assert [x.code for x in f] == ["EDIT_LIST"]


def test_composition_delay_edit_is_silent() -> None:
    """ffmpeg's edit for B-frames: presentation starts at the first shown frame."""
    s = stream(regular(100), dts=regular(100, start=-2 * FRAME))
    assert analyse(result(s, edit_lists=(elst(0, 2 * FRAME),))) == []


def test_audio_priming_edit_is_silent() -> None:
    a = stream(regular(100, AAC, -AAC), index=0, kind="audio", tb=AUDIO_TB,
               discard=np.arange(100) < 1)  # fmt: skip
    assert analyse(result(a, edit_lists=(elst(0, AAC, ts=48000),))) == []


# --- hidden media ----------------------------------------------------------------------------


def _trim(video_hidden: int, audio_hidden: int, sr: int = 48000) -> list[Finding]:
    """A stream-copy trim: the edit lists hide `video_hidden` frames and `audio_hidden`
    samples that the file still keeps."""
    v = stream(regular(150, start=-video_hidden * FRAME), discard=np.arange(150) < video_hidden)
    first = -audio_hidden
    n_hidden = audio_hidden // AAC
    n = 5 * sr // AAC  # 5 s, as the video
    a = stream(first + np.arange(n, dtype=np.int64) * AAC, index=1, kind="audio",
               tb=Fraction(1, sr), discard=np.arange(n) < n_hidden)  # fmt: skip
    a = replace(a, sample_rate=sr)
    edits = (elst(0, video_hidden * FRAME), elst(1, audio_hidden, ts=sr))
    return analyse(result(v, a, edit_lists=edits))


def test_stream_copy_trim_hidden_media_is_counted_in_both_streams() -> None:
    f = _trim(9, 18368)
    assert [(x.code, x.stream_index) for x in f] == [("HIDDEN_MEDIA", 0), ("HIDDEN_MEDIA", 1)]
    assert "9 packets before its presentation start (0.300 s, pts -27000 to 0)" in f[0].detail
    assert "17 packets and part of 1 more" in f[1].detail
    assert all(x.severity == "warning" for x in f)


def test_phone_hiding_video_with_only_priming_in_the_audio_is_an_offset() -> None:
    """An iPhone hides 0.467 s of video and only the AAC priming: no hidden-media finding."""
    f = _trim(14, 1698, sr=44100)
    assert [x.code for x in f] == ["EDIT_LIST_OFFSET"]
    assert "14 packets kept in the file" in f[0].detail


def test_audio_hiding_only_apple_priming_is_silent() -> None:
    assert _trim(0, 2112) == []


# --- declared duration ----------------------------------------------------------------------


def test_declared_duration_far_from_packets_is_reported() -> None:
    f = analyse(result(stream(regular(90)), duration=Fraction(143165)))
    assert [x.code for x in f] == ["DURATION_MISMATCH"]
