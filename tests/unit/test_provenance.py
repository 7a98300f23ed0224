"""Provenance findings on synthetic timelines: parameter sets, encoder signatures, tool tags."""

from __future__ import annotations

import numpy as np

from pipeline.analysis.timing import analyse
from tests.timelines import FRAME, codes, regular, result, stream


def test_new_parameter_sets_mid_stream_are_reported() -> None:
    s = stream(regular(100), param_sets=((0, b"sps-a"), (60, b"sps-b")))
    f = codes(analyse(result(s)), "CODEC_PARAMS_CHANGED")
    assert [x.pts for x in f] == [60 * FRAME]


def test_second_encoder_signature_is_reported() -> None:
    kf = np.zeros(100, dtype=bool)
    kf[::30] = True
    s = stream(regular(100), keyframe=kf, encoder_signatures=((0, "x264 a"), (60, "x264 a")))
    assert len(codes(analyse(result(s)), "CODEC_PARAMS_CHANGED")) == 1


def test_editing_tool_tags_are_reported() -> None:
    r = result(stream(regular(10), tags={"handler_name": "GPAC ISO Video Handler"}),
               tags={"encoder": "Lavf61.7.100", "comment": "剪映"})  # fmt: skip
    details = " ".join(x.detail for x in analyse(r) if x.code == "EDITING_TOOL")
    assert "FFmpeg" in details and "GPAC" in details and "剪映" in details


def test_camera_handlers_are_not_editing_tools() -> None:
    v = stream(regular(10), tags={"handler_name": "Core Media Video", "encoder": "HEVC"})
    g = stream(regular(10), index=1, tags={"handler_name": "\tGoPro AVC",
                                           "encoder": "GoPro AVC encoder"})  # fmt: skip
    r = result(v, g, tags={"com.apple.quicktime.software": "16.4.1"})
    assert codes(analyse(r), "EDITING_TOOL") == []
