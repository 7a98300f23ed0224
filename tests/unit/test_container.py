"""Container findings on synthetic timelines: edit lists and the declared duration."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from pipeline.analysis.timing import analyse
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


# --- declared duration ----------------------------------------------------------------------


def test_declared_duration_far_from_packets_is_reported() -> None:
    f = analyse(result(stream(regular(90)), duration=Fraction(143165)))
    assert [x.code for x in f] == ["DURATION_MISMATCH"]
