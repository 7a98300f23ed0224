"""Timing analysis on real files: generated recordings (always) and the shared corpus."""

from __future__ import annotations

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


# --- generated media ----------------------------------------------------------------------


def test_clean_recording_has_no_findings(clean_recording: Generated) -> None:
    assert findings(clean_recording.path) == []


def test_five_second_interruption_found_within_one_frame(
    interrupted_recording: Generated,
) -> None:
    gaps = of(findings(interrupted_recording.path), "GAP_IN_STREAM")
    assert {g.stream_index for g in gaps} == {0, 1}  # video and audio
    assert interrupted_recording.cut_at_s is not None
    for g in gaps:
        assert g.at_seconds is not None
        assert abs(g.at_seconds - interrupted_recording.cut_at_s) <= FRAME_S
        assert "5.0" in g.detail


def test_interruption_is_the_only_finding(interrupted_recording: Generated) -> None:
    assert {f.code for f in findings(interrupted_recording.path)} == {"GAP_IN_STREAM"}


def test_packets_dropped_without_retiming_leave_a_gap(dropped_recording: Generated) -> None:
    gaps = of(findings(dropped_recording.path), "GAP_IN_STREAM")
    assert dropped_recording.cut_at_s is not None
    assert gaps and all(
        g.at_seconds is not None and abs(g.at_seconds - dropped_recording.cut_at_s) <= 0.05
        for g in gaps
    )


def test_gops_dropped_and_retimed_leave_one_odd_audio_spacing(
    retimed_recording: Generated,
) -> None:
    fs = findings(retimed_recording.path)
    assert of(fs, "GAP_IN_STREAM") == []
    splices = of(fs, "SPLICE_IRREGULAR_DURATION")
    assert [(f.stream_index, round(f.at_seconds or 0, 1)) for f in splices] == [(1, 2.0)]


def test_pyav_splice_is_found(spliced_recording: Generated) -> None:
    fs = findings(spliced_recording.path)
    assert of(fs, "SPLICE_IRREGULAR_DURATION")
    assert of(fs, "KEYFRAME_INTERVAL_BREAK")
    assert spliced_recording.cut_at_s is not None
    for f in judged(fs):
        assert f.at_seconds is not None
        assert abs(f.at_seconds - spliced_recording.cut_at_s) <= 0.6


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
    join = 2.04  # append_v1 lasts 2.04 s
    for code in ("SPLICE_IRREGULAR_DURATION", "KEYFRAME_INTERVAL_BREAK"):
        hits = of(fs, code)
        assert hits, code
        assert all(abs((f.at_seconds or 0) - join) < 0.1 for f in hits)


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
    assert [f.stream_index for f in of(fs, "EDIT_LIST")] == [0]
    assert of(fs, "AV_DRIFT")


@pytest.mark.shared_media
def test_ffmpeg_written_samples_name_ffmpeg(shared_media: Path) -> None:
    assert of(findings(shared_media / "append_v1.mp4"), "EDITING_TOOL")
