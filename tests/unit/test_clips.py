"""Clip specs and plans (pipeline.export.clips): pure, on packet rows written out by hand."""

from __future__ import annotations

from fractions import Fraction

import pytest

from pipeline.errors import InputError
from pipeline.export.clips import (
    StreamPackets,
    match_item,
    parse_clip,
    parse_time,
    plan_clip,
    show_time,
)


@pytest.mark.parametrize(("text", "seconds"), [
    ("00:01:20", Fraction(80)), ("01:20", Fraction(80)), ("80", Fraction(80)),
    ("1:02:03.25", Fraction(3723) + Fraction(1, 4)), ("0.5", Fraction(1, 2)),
    ("00:00:59.999", Fraction(59999, 1000)),
])
def test_times_are_exact_seconds(text: str, seconds: Fraction) -> None:
    assert parse_time(text) == seconds


@pytest.mark.parametrize("text", ["", "1:2:3:4", "-1", "1e3", "00:60:00", "00:00:60", "1,5"])
def test_a_time_that_is_not_one_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_time(text)


def test_a_file_name_may_hold_an_at_sign() -> None:
    spec = parse_clip("a@b.mp4@00:01:20-00:03:05")
    assert (spec.file, spec.start, spec.end) == ("a@b.mp4", 80, 185)


def test_show_time_keeps_milliseconds_only_when_there_are_some() -> None:
    assert show_time(Fraction(185)) == "00:03:05"
    assert show_time(Fraction(3723) + Fraction(1, 4)) == "01:02:03.250"


ITEMS = [(1, "data/a.mp4", "a.mp4", "ab" * 32), (2, "data/002/B.mp4", "B.mp4", "cd" * 32),
         (3, "data/003/b.mp4", "b.mp4", "ce" * 32)]


def test_a_clip_names_its_file_by_name_path_or_blake3_prefix() -> None:
    assert match_item(parse_clip("a.mp4@0-1"), ITEMS) == 1
    assert match_item(parse_clip("data/002/B.mp4@0-1"), ITEMS) == 2
    assert match_item(parse_clip("cecececece@0-1"), ITEMS) == 3
    with pytest.raises(InputError, match="names 2 files of this export"):
        match_item(parse_clip("cdcdcdcd@0-1"), [*ITEMS, (4, "data/x", "x", "cd" * 32)])
    with pytest.raises(InputError, match=r"c\.mp4 is not a file of this export"):
        match_item(parse_clip("c.mp4@0-1"), ITEMS)


def _video_with_bframes(gops: int) -> StreamPackets:
    """30 fps in 1/90000, GOPs of 6 frames in decode order I P B B P B (pts in frames:
    0 3 1 2 5 4), pts starting at 2 frames (an encoder delay)."""
    order = [0, 3, 1, 2, 5, 4]
    pts = [(g * 6 + f + 2) * 3000 for g in range(gops) for f in order]
    keys = [f == 0 for _ in range(gops) for f in order]
    n = len(pts)
    return StreamPackets(0, "video", Fraction(1, 90000), list(pts), [3000] * n, keys,
                         [False] * n)


def _audio(n: int, first: int) -> StreamPackets:
    pts = [first + i * 1024 for i in range(n)]
    return StreamPackets(1, "audio", Fraction(1, 48000), list(pts), [1024] * n, [True] * n,
                         [i == 0 for i in range(n)])


def test_a_plan_starts_at_the_keyframe_at_or_before_the_start_in_decode_order() -> None:
    v, a = _video_with_bframes(5), _audio(160, -1024)
    # origin 0: audio's packet 1 (its packet 0 is discarded priming); keyframes are shown at
    # frames 2, 8, 14, ...: the last at or before 0.3 s (frame 9) is frame 8, packet 6
    spec = parse_clip("x.mp4@0.3-0.5")
    plan = plan_clip(spec, 1, 1, "data/x.mp4", "ab" * 32, [v, a])
    assert plan.keyframe == (0, 6) and plan.window_start == Fraction(8, 30)
    # decode order from packet 6: GOP 1 shows 8 11 9 10 13 12 (6-11), GOP 2 14 17 15 ... :
    # the last packet shown before 0.5 s (frame 15) is packet 12 (frame 14); packet 13
    # (frame 17) and 14 (frame 15) are not before it
    assert plan.ranges[0] == (6, 12)
    # audio: packet i (i * 1024 - 1024 samples) sounds in [8/30 s, 0.5 s) for i in 13..24
    assert plan.ranges[1] == (13, 24)
    assert plan.shift == {0: 24000, 1: 12800}  # 8/30 s in each time base
    assert plan.path == "data/clips/C01_x_000000.300-000000.500.mp4"


def test_a_span_outside_the_media_is_refused_with_its_length() -> None:
    v = _video_with_bframes(2)  # 12 frames shown from frame 2: 0.4 s of media
    with pytest.raises(InputError, match=r"outside x.mp4, whose media lasts 00:00:00.400"):
        plan_clip(parse_clip("x.mp4@0.3-0.5"), 1, 1, "data/x.mp4", "ab" * 32, [v])
    with pytest.raises(InputError, match=r"00:00:00.400-00:00:00.401 is outside x.mp4"):
        plan_clip(parse_clip("x.mp4@0.4-0.401"), 1, 1, "data/x.mp4", "ab" * 32, [v])
    plan = plan_clip(parse_clip("x.mp4@0.3-0.4"), 1, 1, "data/x.mp4", "ab" * 32, [v])
    assert plan.ranges == {0: (6, 11)} and plan.keyframe == (0, 6)


def test_a_file_without_audio_or_video_packets_has_nothing_to_cut() -> None:
    data = StreamPackets(0, "data", Fraction(1, 1000), [0, 1], [1, 1], [True, True],
                         [False, False])
    with pytest.raises(InputError, match="has no audio or video packets"):
        plan_clip(parse_clip("x.mp4@0-1"), 1, 1, "data/x.mp4", "ab" * 32, [data])
