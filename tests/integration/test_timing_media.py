"""Timing analysis on real files: generated recordings (always) and the shared corpus."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from pipeline.analysis.timing import analyse
from pipeline.media.probe import probe
from schemas.media import Finding
from tests.conftest import require_tool
from tests.mediagen import Generated

FRAME_S = 1 / 30


def findings(path: Path) -> list[Finding]:
    return analyse(probe(path))


def of(fs: list[Finding], code: str) -> list[Finding]:
    return [f for f in fs if f.code == code]


def judged(fs: list[Finding]) -> list[Finding]:
    """Findings that say the recording was interrupted or edited."""
    return [f for f in fs if f.category in ("interruption", "edit")]


def hole(g: Finding) -> tuple[float, float]:
    """A GAP_IN_STREAM's (last shown, next shown) seconds, as its detail states them; the
    detail's first pts is the finding's own."""
    m = re.search(r"after ([\d.]+) s \(pts (\d+)\) until ([\d.]+) s \(pts (\d+)\)", g.detail)
    assert m, g.detail
    assert int(m.group(2)) == g.pts
    return float(m.group(1)), float(m.group(3))


def assert_one_gap_per_stream(fs: list[Finding], cut_at_s: float, cut_s: float) -> None:
    """One GAP_IN_STREAM in the video (0) and one in the audio (1), each at its stream's
    last packet before the cut (at most a frame before it), the next packet shown at the
    end of the cut (within a frame)."""
    gaps = of(fs, "GAP_IN_STREAM")
    assert [g.stream_index for g in gaps] == [0, 1]
    for g in gaps:
        assert g.at_seconds is not None and g.pts is not None
        assert 0 < cut_at_s - g.at_seconds <= FRAME_S + 1e-9, g.detail
        last, resumed = hole(g)
        assert abs(last - g.at_seconds) < 0.0005
        assert abs(resumed - (cut_at_s + cut_s)) <= FRAME_S, g.detail


# --- generated media ----------------------------------------------------------------------


def test_clean_recording_has_no_findings(clean_recording: Generated) -> None:
    assert findings(clean_recording.path) == []


def test_five_second_interruption_found_within_one_frame(
    interrupted_recording: Generated,
) -> None:
    g = interrupted_recording
    assert g.cut_at_s is not None and g.cut_s is not None
    assert_one_gap_per_stream(findings(g.path), g.cut_at_s, g.cut_s)


def test_interruption_is_the_only_finding(interrupted_recording: Generated) -> None:
    assert [(f.code, f.stream_index) for f in findings(interrupted_recording.path)] == [
        ("GAP_IN_STREAM", 0), ("GAP_IN_STREAM", 1)]


def test_packets_dropped_without_retiming_leave_a_gap(dropped_recording: Generated) -> None:
    g = dropped_recording
    assert g.cut_at_s is not None and g.cut_s is not None
    fs = findings(g.path)
    assert_one_gap_per_stream(fs, g.cut_at_s, g.cut_s)
    assert [(f.code, f.stream_index) for f in judged(fs)] == [
        ("GAP_IN_STREAM", 0), ("GAP_IN_STREAM", 1)]


def test_gops_dropped_and_retimed_leave_one_odd_audio_spacing(
    retimed_recording: Generated,
) -> None:
    fs = findings(retimed_recording.path)
    (splice,) = judged(fs)
    assert (splice.code, splice.stream_index) == ("SPLICE_IRREGULAR_DURATION", 1)
    assert splice.at_seconds is not None
    assert 0 < 2.0 - splice.at_seconds <= FRAME_S  # the last audio packet before the cut


def test_pyav_splice_is_found(spliced_recording: Generated) -> None:
    """2.5 s + 6 s, 1 s GOPs: the first file's last GOP (2.0-2.5 s) is short, the second
    file's encoder signature appears at the join, and the audio spacing there is odd."""
    fs = findings(spliced_recording.path)
    join = spliced_recording.cut_at_s
    assert join == 2.5
    got = [(f.code, f.stream_index, f.at_seconds) for f in judged(fs)]
    assert [(c, s) for c, s, _ in got] == [
        ("KEYFRAME_INTERVAL_BREAK", 0), ("CODEC_PARAMS_CHANGED", 0),
        ("SPLICE_IRREGULAR_DURATION", 1)]
    expected_at = [join - 0.5, join, join]  # the short GOP starts half a second before
    for (code, _, at), want in zip(got, expected_at, strict=True):
        assert at is not None and abs(at - want) <= FRAME_S, code


def test_audio_only_recording_is_clean(audio_recording: Generated) -> None:
    assert findings(audio_recording.path) == []


def test_still_photo_is_clean(still_photo: Generated) -> None:
    assert findings(still_photo.path) == []


def test_generated_files_carry_device_tags_not_tool_tags(clean_recording: Generated) -> None:
    r = probe(clean_recording.path)
    assert (r.make, r.model, r.serial) == ("Custody", "SYNTH-BC1", "SYN0000001")
    assert r.creation_time_utc is not None
    assert of(analyse(r), "EDITING_TOOL") == []


# --- ffmpeg concat of the shared samples ---------------------------------------------------


@pytest.mark.shared_media
def test_ffmpeg_concat_of_append_samples_is_found(shared_media: Path, tmp_path: Path) -> None:
    ffmpeg = require_tool("ffmpeg")
    lst = tmp_path / "list.txt"
    lst.write_text(
        "".join(f"file '{shared_media / n}'\n" for n in ("append_v1.mp4", "append_v2.mp4"))
    )
    out = tmp_path / "concat.mp4"
    subprocess.run(
        [ffmpeg, "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(lst),
         "-c", "copy", str(out)],
        check=True,
    )  # fmt: skip
    fs = findings(out)
    join, frame = 2.04, 0.04  # append_v1 lasts 2.04 s at 25 fps
    got = [(f.code, f.stream_index, f.at_seconds) for f in judged(fs)]
    assert [(c, s) for c, s, _ in got] == [
        ("KEYFRAME_INTERVAL_BREAK", 0),  # the keyframe at 2.0 s, next one at the join
        ("CODEC_PARAMS_CHANGED", 0),  # parameter sets
        ("CODEC_PARAMS_CHANGED", 0),  # encoder signature
        ("SPLICE_IRREGULAR_DURATION", 1),
    ]
    for code, _, at in got[:3]:
        assert at is not None and abs(at - join) <= frame + 1e-9, code
    # The audio splice is at the first file's last audio packet, which starts less than
    # two AAC packets (1024 samples at 44.1 kHz) before the join.
    at = got[3][2]
    assert at is not None and 0 < join - at < 2 * 1024 / 44100


# --- the shared corpus ---------------------------------------------------------------------

PHONES = (
    "phone2004_MOV00006.3gp",
    "webcam_count-video.mp4",
    "gopro_karma.mp4",
    "iphone_sample_edit_list.mp4",
    "iphone14pro_dolbyVision-hdr.MOV",
    "samsung_sef_slow_motion.mp4",
)

DAMAGED = {
    "sample_malformed_free_box.mp4": {"MEDIA_UNREADABLE"},
    "sample_mdat_too_long.mp4": {"MEDIA_TRUNCATED"},
    "mp4parse_invalid_userdata.mp4": {"MEDIA_TRUNCATED", "MEDIA_CORRUPT"},
    "mp4parse_zero_empty_stsc.mp4": {"MEDIA_TRUNCATED", "MEDIA_CORRUPT"},
}


@pytest.mark.shared_media
@pytest.mark.parametrize("name", PHONES)
def test_device_recording_has_no_gap_or_edit(shared_media: Path, name: str) -> None:
    assert judged(findings(shared_media / name)) == []


@pytest.mark.shared_media
@pytest.mark.parametrize("name", sorted(DAMAGED))
def test_damaged_file_gives_its_damage_codes(shared_media: Path, name: str) -> None:
    damage = {f.code for f in findings(shared_media / name) if f.category == "damage"}
    assert damage == DAMAGED[name]


@pytest.mark.shared_media
def test_iphone_trim_is_recorded_as_offset(shared_media: Path) -> None:
    fs = findings(shared_media / "iphone_sample_edit_list.mp4")
    assert [f.code for f in fs] == ["EDIT_LIST_OFFSET"]


@pytest.mark.shared_media
def test_one_second_empty_edit_is_an_edit(shared_media: Path) -> None:
    fs = findings(shared_media / "edit_list_positive_shift.mp4")
    assert [(f.stream_index, f.at_seconds) for f in of(fs, "EDIT_LIST")] == [(0, 1.0)]
    (drift,) = of(fs, "AV_DRIFT")
    assert drift.stream_index == 1
    assert "covers 1.000-10.000 s but audio stream 1 covers 0.000-10.005 s" in drift.detail


@pytest.mark.shared_media
def test_ffmpeg_written_samples_name_ffmpeg(shared_media: Path) -> None:
    fs = findings(shared_media / "append_v1.mp4")
    assert [(f.code, f.stream_index) for f in fs] == [("EDITING_TOOL", None)]
    assert "encoder='Lavf53.24.0' names FFmpeg" in fs[0].detail
