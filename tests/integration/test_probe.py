"""pipeline.media.probe on the shared corpus and on media generated in the test.

The shared corpus lives beside the repository (`../shared/media`, or $CUSTODY_SHARED_MEDIA);
tests that need it skip where it is absent. Timestamps are checked packet by packet against
the system's ffprobe, a second, independent FFmpeg build.
"""

from __future__ import annotations

import datetime as dt
import os
import pickle
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from pipeline.errors import InputError
from pipeline.media.probe import probe
from schemas.media import NOPTS, ProbeResult

SHARED_MEDIA = Path(
    os.environ.get("CUSTODY_SHARED_MEDIA")
    or Path(__file__).resolve().parents[2].parent / "shared" / "media"
)
CORPUS = (
    sorted(p.name for p in SHARED_MEDIA.glob("*") if p.is_file() and p.suffix.lower() != ".tsv")
    if SHARED_MEDIA.is_dir()
    else []
)

needs_media = pytest.mark.skipif(
    not SHARED_MEDIA.is_dir(), reason=f"shared media corpus not found at {SHARED_MEDIA}"
)
needs_ffprobe = pytest.mark.skipif(shutil.which("ffprobe") is None, reason="ffprobe not on PATH")


def media(name: str) -> Path:
    return SHARED_MEDIA / name


# --- agreement with ffprobe -------------------------------------------------------------

# Real differences between Debian's ffprobe (FFmpeg 5.1) and PyAV's bundled FFmpeg 8, each
# checked precisely instead of loosening the comparison for every file.
#
# Packet durations of MP4/MOV samples: FFmpeg 8's mov demuxer sets each packet's duration
# from the time-to-sample table (stts, or trun in fragments), i.e. the spacing to the next
# sample's dts. FFmpeg 5.1 reported something else for these streams: 0/N/A (webcam), a
# constant from the frame-rate guess (3003 or 3000 for VFR or trimmed video), or the last
# packet cut to the edit-list end. For the listed (file, stream) pairs the test checks that
# every duration but the last equals the dts spacing, and all other fields exactly.
DURATION_FROM_SAMPLE_TABLE: dict[str, frozenset[int]] = {
    "coremedia_edit_no_sync_before_edit.mp4": frozenset({0, 1}),
    "edit_list_positive_shift.mp4": frozenset({1}),
    "gopro_karma.mp4": frozenset({3}),
    "iphone14pro_dolbyVision-hdr.MOV": frozenset({1}),
    "iphone_sample_edit_list.mp4": frozenset({0, 1, 2, 3}),
    "sample_fragmented.mp4": frozenset({1}),
    "sample_mdat_too_long.mp4": frozenset({1}),
    "samsung_sef_slow_motion.mp4": frozenset({1}),
    "webcam_count-video.mp4": frozenset({0}),
}
# GoPro's 'fdsc' track (handler "GoPro SOS", file-repair data): FFmpeg 8's mov demuxer
# marks it AVDISCARD_ALL and yields no packets; FFmpeg 5.1 reads its 943 samples.
DEMUXER_DISCARDED: dict[str, frozenset[int]] = {"gopro_karma.mp4": frozenset({4})}


def _ffprobe_packets(path: Path) -> dict[int, list[dict[str, str]]] | None:
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-show_entries",
            "packet=stream_index,pts,dts,duration,flags,size,pos",
            "-of",
            "compact=p=0",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        return None
    per_stream: dict[int, list[dict[str, str]]] = {}
    for line in out.stdout.splitlines():
        row: dict[str, str] = {}
        for item in line.split("|"):  # packet side data follows as extra key=value items
            key, sep, value = item.partition("=")
            if sep:
                row.setdefault(key, value)
        if "stream_index" in row:
            per_stream.setdefault(int(row["stream_index"]), []).append(row)
    return per_stream


def _column(rows: list[dict[str, str]], key: str) -> np.ndarray:
    return np.array([NOPTS if r[key] == "N/A" else int(r[key]) for r in rows], dtype=np.int64)


@needs_media
@needs_ffprobe
@pytest.mark.shared_media
@pytest.mark.parametrize("name", CORPUS)
def test_packets_equal_ffprobe(name: str) -> None:
    """Every packet's pts, dts, duration, flags, size and pos equal ffprobe's."""
    path = media(name)
    expected = _ffprobe_packets(path)
    result = probe(path)
    if expected is None:
        assert result.error is not None, "ffprobe cannot open it, so neither should we"
        return
    assert set(expected) <= {s.index for s in result.streams}
    for s in result.streams:
        rows = expected.get(s.index, [])
        if s.index in DEMUXER_DISCARDED.get(name, frozenset()):
            assert s.packet_count == 0 and rows
            continue
        assert s.packet_count == len(rows), f"stream {s.index}"
        for field in ("pts", "dts", "size", "pos"):
            np.testing.assert_array_equal(
                getattr(s, field), _column(rows, field), err_msg=f"stream {s.index} {field}"
            )
        np.testing.assert_array_equal(s.keyframe, [("K" in r["flags"]) for r in rows])
        np.testing.assert_array_equal(s.discard, [("D" in r["flags"]) for r in rows])
        if s.index in DURATION_FROM_SAMPLE_TABLE.get(name, frozenset()):
            np.testing.assert_array_equal(s.duration[:-1], np.diff(s.dts))
        else:
            ff = _column(rows, "duration")
            ff[ff == NOPTS] = 0  # ffprobe prints an unknown duration as N/A, FFmpeg holds 0
            np.testing.assert_array_equal(s.duration, ff, err_msg=f"stream {s.index}")


# --- damaged files -----------------------------------------------------------------------


@needs_media
def test_malformed_free_box_is_unopenable() -> None:
    r = probe(media("sample_malformed_free_box.mp4"))
    assert r.error is not None and "moov atom not found" in r.error
    assert r.streams == () and r.media_kind is None


@needs_media
def test_mdat_too_long_is_truncated_but_read() -> None:
    r = probe(media("sample_mdat_too_long.mp4"))
    assert r.error is None
    assert r.truncated is not None and "mdat" in r.truncated
    assert [s.packet_count for s in r.streams] == [30, 45]


@needs_media
def test_invalid_userdata_is_truncated_with_no_packets() -> None:
    r = probe(media("mp4parse_invalid_userdata.mp4"))
    assert r.error is None
    assert r.truncated is not None and "past the end of the file" in r.truncated
    assert r.demux_errors and "partial file" in r.demux_errors[0]
    assert sum(s.packet_count for s in r.streams) == 0
    assert r.duration is not None and r.duration > 200  # the moov claims 231 s


@needs_media
def test_zero_empty_stsc_reports_demux_errors() -> None:
    r = probe(media("mp4parse_zero_empty_stsc.mp4"))
    assert r.error is None
    assert r.demux_errors and r.truncated is not None
    assert sum(s.packet_count for s in r.streams) < 5


# --- metadata ------------------------------------------------------------------------------


@needs_media
def test_iphone_make_model_gps_and_time() -> None:
    r = probe(media("iphone14pro_dolbyVision-hdr.MOV"))
    assert (r.make, r.model) == ("Apple", "iPhone 14 Pro")
    assert r.gps_iso6709 == "+51.5334-000.1255+026.756/"
    # com.apple.quicktime.creationdate 2023-05-09T12:41:46+0100
    assert r.creation_time_utc == dt.datetime(2023, 5, 9, 11, 41, 46, tzinfo=dt.UTC)
    assert r.media_kind == "video"


@needs_media
def test_iphone_stream_properties() -> None:
    r = probe(media("iphone14pro_dolbyVision-hdr.MOV"))
    video, audio = r.streams[0], r.streams[1]
    assert (video.codec, video.profile, video.width, video.height) == ("hevc", "Main 10", 1280, 720)
    assert video.frame_rate == Fraction(30)
    assert (audio.codec, audio.sample_rate, audio.channels) == ("aac", 44100, 2)
    assert r.duration == Fraction(106667, 1_000_000)
    assert [s.kind for s in r.streams[2:]] == ["data", "data", "data"]  # 3 mebx tracks


@needs_media
def test_gopro_make_and_firmware() -> None:
    r = probe(media("gopro_karma.mp4"))
    assert r.make == "GoPro"
    assert r.tags["firmware"] == "HD5.02.02.00.00"
    assert r.creation_time_utc == dt.datetime(2017, 4, 17, 19, 27, 57, tzinfo=dt.UTC)


@needs_media
def test_edit_list_trimmed_iphone() -> None:
    r = probe(media("iphone_sample_edit_list.mp4"))
    rows = {(e.track_index, e.media_time) for e in r.edit_lists}
    assert (0, 273) in rows and (1, 1698) in rows
    assert all(e.media_time != 0 for e in r.edit_lists)


@needs_media
def test_edit_list_webcam_media_time() -> None:
    (entry,) = probe(media("webcam_count-video.mp4")).edit_lists
    assert (entry.track_index, entry.media_time, entry.media_timescale) == (0, 351, 1000)
    assert (entry.segment_duration, entry.movie_timescale) == (14674, 600)


@needs_media
def test_edit_list_no_sync_before_edit() -> None:
    r = probe(media("coremedia_edit_no_sync_before_edit.mp4"))
    assert [(e.track_index, e.media_time) for e in r.edit_lists] == [(0, 26642), (1, 829)]
    assert r.streams[0].discard.any()  # FFmpeg flags the packets before the edit


@needs_media
def test_edit_list_positive_shift_has_empty_edit() -> None:
    r = probe(media("edit_list_positive_shift.mp4"))
    video = [e for e in r.edit_lists if e.track_index == 0]
    assert video[0].media_time == -1 and video[0].segment_duration == 1000
    assert video[1].media_time == 0


@needs_media
def test_plain_full_edit_is_still_reported() -> None:
    r = probe(media("gopro_karma.mp4"))
    assert [(e.track_index, e.media_time) for e in r.edit_lists] == [(0, 0)]


@needs_media
def test_edit_list_uses_stream_index_when_not_first_trak() -> None:
    r = probe(media("samsung_sef_slow_motion.mp4"))
    (entry,) = r.edit_lists
    assert r.streams[entry.track_index].kind == "video"


@needs_media
def test_motion_photo_is_an_image_with_exif() -> None:
    r = probe(media("pixel4xl_motion_photo.jpg"))
    assert r.media_kind == "image"
    assert (r.make, r.model) == ("Google", "Pixel 4 XL")
    assert r.creation_time_utc == dt.datetime(2020, 12, 17, 10, 3, 0, 546073, tzinfo=dt.UTC)
    assert r.tags["exif:OffsetTimeOriginal"] == "+00:00"


@needs_media
def test_x264_signature_found_in_concat_input() -> None:
    (video, _audio) = probe(media("append_v1.mp4")).streams
    assert video.encoder_signatures[0][0] == 0
    assert video.encoder_signatures[0][1].startswith("x264 - core 120")


@needs_media
@pytest.mark.parametrize("name", CORPUS)
def test_result_pickles(name: str) -> None:
    r = probe(media(name))
    back: ProbeResult = pickle.loads(pickle.dumps(r))
    assert back.path == r.path and len(back.streams) == len(r.streams)


# --- generated media -----------------------------------------------------------------------


def _make_mp4(path: Path, seconds: int = 2, *, gop: int = 25, crf: str = "23") -> Path:
    """A small H.264 (25 fps, libx264) + AAC (48 kHz) MP4 written with PyAV."""
    with av.open(str(path), "w") as out:
        v = out.add_stream(
            "libx264", rate=25, options={"crf": crf, "g": str(gop), "sc_threshold": "0"}
        )
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = out.add_stream("aac", rate=48000)
        a.layout = "mono"
        for i in range(25 * seconds):
            img = np.full((48, 64, 3), i % 255, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            out.mux(v.encode(frame))
        out.mux(v.encode(None))
        samples = 1024
        for k in range(48000 * seconds // samples):
            t = (np.arange(samples) + k * samples) / 48000
            pcm = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
            af = av.AudioFrame.from_ndarray(pcm, format="fltp", layout="mono")
            af.sample_rate = 48000
            af.pts = k * samples
            out.mux(a.encode(af))
        out.mux(a.encode(None))
    return path


@pytest.fixture(scope="module")
def two_second_mp4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _make_mp4(tmp_path_factory.mktemp("gen") / "two.mp4")


def test_generated_packet_counts(two_second_mp4: Path) -> None:
    r = probe(two_second_mp4)
    video, audio = r.streams
    assert (video.kind, video.codec, video.packet_count) == ("video", "h264", 50)
    assert audio.kind == "audio" and audio.codec == "aac"
    assert 90 <= audio.packet_count <= 96  # 93 frames of 1024 plus encoder priming
    assert r.media_kind == "video" and r.error is None and r.truncated is None


def test_generated_keyframes_every_gop(two_second_mp4: Path) -> None:
    video = probe(two_second_mp4).streams[0]
    order = np.argsort(video.pts)
    assert np.flatnonzero(video.keyframe[order]).tolist() == [0, 25]


def test_generated_timelines_are_int64_arrays(two_second_mp4: Path) -> None:
    video = probe(two_second_mp4).streams[0]
    for arr in (video.pts, video.dts, video.duration, video.size, video.pos):
        assert arr.dtype == np.int64 and arr.shape == (50,)
    assert video.time_base == Fraction(1, 12800)


def test_generated_param_sets_at_packet_zero(two_second_mp4: Path) -> None:
    video = probe(two_second_mp4).streams[0]
    ((index, blob),) = video.param_sets
    assert index == 0
    assert blob.startswith(b"\x00\x00\x00\x01\x67")  # Annex B SPS first, then PPS
    assert b"\x00\x00\x00\x01\x68" in blob


def test_generated_x264_signature(two_second_mp4: Path) -> None:
    video = probe(two_second_mp4).streams[0]
    assert [i for i, _ in video.encoder_signatures] == [0]
    assert video.encoder_signatures[0][1].startswith("x264 - core")


@pytest.fixture(scope="module")
def joined_copies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two x264 files (crf 20, crf 30) joined with `-c copy`, as MPEG-TS and as MP4."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg not on PATH")
    d = tmp_path_factory.mktemp("concat")
    first = _make_mp4(d / "a.mp4", crf="20")
    second = _make_mp4(d / "b.mp4", crf="30")
    ffmpeg = ["ffmpeg", "-v", "error", "-y"]
    for src in (first, second):
        ts = str(src.with_suffix(".ts"))
        subprocess.run([*ffmpeg, "-i", str(src), "-c", "copy", ts], check=True)
    joined_ts = d / "joined.ts"
    concat = f"concat:{first.with_suffix('.ts')}|{second.with_suffix('.ts')}"
    subprocess.run([*ffmpeg, "-i", concat, "-c", "copy", str(joined_ts)], check=True)
    listing = d / "list.txt"
    listing.write_text(f"file '{first}'\nfile '{second}'\n")
    joined_mp4 = d / "joined.mp4"
    subprocess.run(
        [*ffmpeg, "-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", str(joined_mp4)],
        check=True,
    )
    return {"ts": joined_ts, "mp4": joined_mp4}


@pytest.mark.parametrize("kind", ["ts", "mp4"])
def test_concat_copy_shows_second_encoder_signature(
    joined_copies: dict[str, Path], kind: str
) -> None:
    """A `-c copy` join of two x264 files carries the second file's SEI mid-stream."""
    video = next(s for s in probe(joined_copies[kind]).streams if s.kind == "video")
    sigs = video.encoder_signatures
    assert [i for i, _ in sigs] == [0, 50]
    assert "crf=20" in sigs[0][1] and "crf=30" in sigs[1][1]


@pytest.mark.parametrize("kind", ["ts", "mp4"])
def test_concat_copy_shows_parameter_set_change(joined_copies: dict[str, Path], kind: str) -> None:
    """The second file's PPS (another initial QP) is recorded at its first packet."""
    video = next(s for s in probe(joined_copies[kind]).streams if s.kind == "video")
    assert [i for i, _ in video.param_sets] == [0, 50]
    assert video.param_sets[0][1] != video.param_sets[1][1]


def test_text_file_sets_error(tmp_path: Path) -> None:
    """A text file is not media, though FFmpeg's tty demuxer would open it."""
    p = tmp_path / "notes.txt"
    p.write_text("this is not a video\n" * 50)
    r = probe(p)
    assert r.error is not None and r.streams == ()


def test_random_bytes_set_error(tmp_path: Path) -> None:
    p = tmp_path / "blob.mp4"
    p.write_bytes(np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    r = probe(p)
    assert r.error is not None and r.streams == ()


def test_empty_file_sets_error(tmp_path: Path) -> None:
    p = tmp_path / "empty.mp4"
    p.write_bytes(b"")
    r = probe(p)
    assert r.error is not None and r.streams == ()


def test_cut_off_file_is_truncated(tmp_path: Path, two_second_mp4: Path) -> None:
    data = two_second_mp4.read_bytes()
    p = tmp_path / "cut.mp4"
    p.write_bytes(data[: len(data) * 2 // 3])
    r = probe(p)
    assert r.truncated is not None or r.error is not None


def test_missing_file_raises_input_error_naming_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.mp4"
    with pytest.raises(InputError) as info:
        probe(missing)
    assert str(missing) in str(info.value)


def test_directory_raises_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a regular file"):
        probe(tmp_path)


# --- the sample-table fast path equals a full demux ------------------------------------


def _same_timelines(a: Any, b: Any) -> None:
    assert len(a.streams) == len(b.streams)
    for x, y in zip(a.streams, b.streams, strict=True):
        for field in ("pts", "dts", "duration", "keyframe", "discard", "size", "pos"):
            assert np.array_equal(getattr(x, field), getattr(y, field)), (x.index, field)
        assert x.param_sets == y.param_sets
        assert x.encoder_signatures == y.encoder_signatures
    assert a.demux_errors == b.demux_errors


def test_sample_table_timing_equals_a_full_demux_on_generated_media(
    clean_recording: Any, interrupted_recording: Any, dropped_recording: Any,
    retimed_recording: Any, spliced_recording: Any, audio_recording: Any,
) -> None:
    for g in (clean_recording, interrupted_recording, dropped_recording, retimed_recording,
              spliced_recording, audio_recording):
        _same_timelines(probe(g.path), probe(g.path, full_demux=True))


def test_sample_table_timing_equals_a_full_demux_on_the_shared_corpus(
    shared_media: Path,
) -> None:
    for path in sorted(shared_media.iterdir()):
        if path.suffix.lower() in (".mp4", ".mov", ".3gp"):
            _same_timelines(probe(path), probe(path, full_demux=True))


# --- the movie-fragment fast path equals a full demux ------------------------------------

FRAGMENTED_VARIANTS = (
    "frag_keyframe+empty_moov",
    "frag_keyframe+empty_moov+default_base_moof",
    "frag_keyframe+empty_moov+negative_cts_offsets",
    "frag_keyframe+empty_moov+separate_moof",
    "frag_keyframe+empty_moov+omit_tfhd_offset",
    "frag_keyframe+empty_moov+global_sidx",  # FFmpeg reads it otherwise: demuxed
    "empty_moov+frag_every_frame",  # zero trun durations: demuxed
    "frag_keyframe",  # samples in moov too: demuxed
)


@pytest.fixture(scope="module")
def fragmented_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """containergen's fMP4 and CMAF writers, and an ffmpeg mp4 stream-copied with each
    variant of `-movflags` (Debian's ffmpeg)."""
    from tests import containergen

    d = tmp_path_factory.mktemp("fragmented")
    try:
        out = {"fmp4-ffmpeg": containergen.fmp4_ffmpeg(d)[0],
               "cmaf-ffmpeg": containergen.cmaf_ffmpeg(d)[0]}
        src = containergen.mp4_ffmpeg(d)[0]
    except containergen.Unavailable as exc:
        pytest.skip(str(exc))
    for i, flags in enumerate(FRAGMENTED_VARIANTS):
        dst = d / f"variant{i}.mp4"
        subprocess.run(
            [containergen.FFMPEG, "-hide_banner", "-loglevel", "error", "-y", "-i", str(src),
             "-c", "copy", "-movflags", flags, str(dst)],
            check=True, capture_output=True,
        )
        out[flags] = dst
    return out


def _timed_from_fragments(path: Path) -> tuple[ProbeResult, bool]:
    """The probe's result and whether the fragment path gave it (not a demux)."""
    from pipeline.media.probe import demux, indexed

    used: list[bool] = []
    real = indexed.from_fragments

    def spy(*args: Any) -> Any:
        got = real(*args)
        used.append(got is not None)
        return got

    demux.from_fragments = spy  # type: ignore[assignment]
    try:
        result = probe(path)
    finally:
        demux.from_fragments = real  # type: ignore[assignment]
    return result, any(used)


@pytest.mark.parametrize("name", ["fmp4-ffmpeg", "cmaf-ffmpeg", *FRAGMENTED_VARIANTS])
def test_fragment_timing_equals_a_full_demux(fragmented_files: dict[str, Path], name: str) -> None:
    """pts, dts, duration, flags, size, pos, parameter sets and errors equal a demux's,
    whether the fragments gave them or a failed proof fell back to the demux."""
    result, fast = _timed_from_fragments(fragmented_files[name])
    _same_timelines(result, probe(fragmented_files[name], full_demux=True))
    assert all(s.packet_count > 0 for s in result.streams)
    demuxed = {"frag_keyframe+empty_moov+global_sidx", "empty_moov+frag_every_frame",
               "frag_keyframe"}
    assert fast == (name not in demuxed)


def test_fragment_timing_with_negative_composition_offsets(
    fragmented_files: dict[str, Path],
) -> None:
    """A version-1 trun's negative offsets: pts shifted so the most negative is zero."""
    result, fast = _timed_from_fragments(
        fragmented_files["frag_keyframe+empty_moov+negative_cts_offsets"]
    )
    video = result.streams[0]
    assert fast and int((video.pts - video.dts).min()) == 0


def test_full_demux_flag_skips_the_fragment_path(fragmented_files: dict[str, Path]) -> None:
    from pipeline.media.probe import demux, indexed

    called: list[bool] = []
    real = indexed.from_fragments
    demux.from_fragments = lambda *a: called.append(True)  # type: ignore[assignment]
    try:
        result = probe(fragmented_files["fmp4-ffmpeg"], full_demux=True)
    finally:
        demux.from_fragments = real  # type: ignore[assignment]
    assert called == [] and result.streams[0].packet_count == 120


def test_fragment_timing_on_the_shared_fragmented_file(shared_media: Path) -> None:
    path = shared_media / "sample_fragmented.mp4"
    if not path.exists():
        pytest.skip(f"{path} not in the shared corpus")
    result, fast = _timed_from_fragments(path)
    assert fast
    _same_timelines(result, probe(path, full_demux=True))


def test_cut_off_fragmented_file_is_demuxed(
    fragmented_files: dict[str, Path], tmp_path: Path
) -> None:
    """A fragmented file cut inside its last mdat: the index path does not claim it."""
    data = fragmented_files["fmp4-ffmpeg"].read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) - 5000])
    result, fast = _timed_from_fragments(cut)
    assert not fast
    _same_timelines(result, probe(cut, full_demux=True))


# --- the PES-header fast path for MPEG-TS equals a full demux ------------------------------

# Debian's ffmpeg muxing what the scan models and what it leaves to the demux: x264 with
# a pic_timing SEI on every frame and its banner, open GOPs (recovery point SEI on
# non-IDR keyframes), AAC at 44.1 kHz (interpolated pts step 2089 or 2090 ticks); and,
# demuxed: B-frames without a DTS in their PES (FFmpeg guesses it from a reorder
# buffer), HEVC, MPEG-2 video with MP2 audio.
TS_VARIANTS = {
    "sei": "-c:v libx264 -preset veryfast -g 30 -bf 2 -x264-params pic-struct=1 -c:a aac",
    "open-gop": "-c:v libx264 -preset veryfast -bf 2 "
                "-x264-params open-gop=1:keyint=30:min-keyint=30:scenecut=0 -c:a aac",
    "no-b-frames": "-c:v libx264 -preset veryfast -g 30 -bf 0 -c:a aac",
    "aac-44k": "-vn -c:a aac -ar 44100",
    "intra-refresh": "-c:v libx264 -preset veryfast -x264-params intra-refresh=1:keyint=30 "
                     "-c:a aac",
    "one-b-frame": "-c:v libx264 -preset veryfast -g 30 -bf 1 -c:a aac",
    "hevc": "-c:v libx265 -preset veryfast -g 30 -x265-params log-level=error -c:a aac",
    "mpeg2-mp2": "-c:v mpeg2video -g 15 -c:a mp2",
}
TS_DEMUXED = {"intra-refresh", "one-b-frame", "hevc", "mpeg2-mp2"}


@pytest.fixture(scope="module")
def ts_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """containergen's ffmpeg, PyAV and wrapping TS, and the variants above."""
    from tests import containergen

    d = tmp_path_factory.mktemp("ts")
    try:
        out = {"ffmpeg": containergen.ts_ffmpeg(d)[0], "pyav": containergen.ts_pyav(d)[0],
               "wrap": containergen.ts_wrap_ffmpeg(d)[0]}
    except containergen.Unavailable as exc:
        pytest.skip(str(exc))
    lavfi = ["-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30:duration=4", "-f", "lavfi",
             "-i", "sine=frequency=440:sample_rate=48000:duration=4"]
    for name, codecs in TS_VARIANTS.items():
        dst = d / f"{name}.ts"
        subprocess.run([containergen.FFMPEG, "-hide_banner", "-loglevel", "error", "-y",
                        *lavfi, *codecs.split(), str(dst)], check=True, capture_output=True)
        out[name] = dst
    # Two programs of two streams each (the wrap reference is FFmpeg's per program).
    out["two-programs"] = d / "two-programs.ts"
    subprocess.run([containergen.FFMPEG, "-hide_banner", "-loglevel", "error", "-y", "-i",
                    str(out["sei"]), "-i", str(out["open-gop"]), "-map", "0", "-map", "1",
                    "-c", "copy", "-program", "title=A:st=0:st=1", "-program",
                    "title=B:st=2:st=3", str(out["two-programs"])],
                   check=True, capture_output=True)
    return out


def _timed_from_pes(path: Path) -> tuple[ProbeResult, bool]:
    """The probe's result and whether the TS path gave it (not a demux)."""
    from pipeline.media.probe import demux, indexed

    used: list[bool] = []
    real = indexed.from_mpegts

    def spy(*args: Any) -> Any:
        got = real(*args)
        used.append(got is not None)
        return got

    demux.from_mpegts = spy  # type: ignore[assignment]
    try:
        result = probe(path)
    finally:
        demux.from_mpegts = real  # type: ignore[assignment]
    return result, any(used)


@pytest.mark.parametrize("name", ["ffmpeg", "pyav", "wrap", *TS_VARIANTS, "two-programs"])
def test_ts_timing_equals_a_full_demux(ts_files: dict[str, Path], name: str) -> None:
    """pts, dts, duration, flags, size, pos, parameter sets, encoder SEI and errors equal a
    demux's, whether the PES headers gave them or the file was demuxed."""
    result, fast = _timed_from_pes(ts_files[name])
    _same_timelines(result, probe(ts_files[name], full_demux=True))
    assert all(s.packet_count > 0 for s in result.streams)
    assert fast == (name not in TS_DEMUXED)


def test_ts_wrap_shifts_early_times_negative(ts_files: dict[str, Path]) -> None:
    """FFmpeg's reference is the first packet, 2 s before 2**33: the times before the wrap
    come out negative, the later ones small and positive."""
    result, fast = _timed_from_pes(ts_files["wrap"])
    video = result.streams[0]
    assert fast and int(video.pts[0]) < 0 < int(video.pts[-1]) < 2**32


def test_ts_keyframes_of_open_gops_are_the_recovery_points(ts_files: dict[str, Path]) -> None:
    """One IDR, then I-frames with a recovery point SEI, each a keyframe to FFmpeg."""
    result, fast = _timed_from_pes(ts_files["open-gop"])
    assert fast and int(result.streams[0].keyframe.sum()) == 4


def test_ts_joined_copy_equals_a_full_demux(joined_copies: dict[str, Path]) -> None:
    """The concat join (its B-frames' PES carry no DTS, so it is demuxed) still has the
    second encoder's SPS/PPS at its first packet."""
    result, fast = _timed_from_pes(joined_copies["ts"])
    _same_timelines(result, probe(joined_copies["ts"], full_demux=True))
    assert not fast and [i for i, _ in result.streams[0].param_sets] == [0, 50]


def _ts_packet_of(data: bytes, pid: int, after: int) -> int:
    return next(i for i in range(after, len(data) // 188)
                if ((data[i * 188 + 1] & 0x1F) << 8 | data[i * 188 + 2]) == pid)


def test_ts_doubts_fall_back_to_a_fresh_demux(ts_files: dict[str, Path], tmp_path: Path) -> None:
    """A broken continuity counter, a set discontinuity indicator, a cut mid-packet: the
    scan doubts, the file is demuxed from the start, errors included."""
    data = ts_files["ffmpeg"].read_bytes()
    cc = bytearray(data)
    k = _ts_packet_of(data, 256, 200)
    cc[k * 188 + 3] = (cc[k * 188 + 3] & 0xF0) | ((cc[k * 188 + 3] + 5) & 0x0F)
    disc = bytearray(data)
    k = next(i for i in range(200, len(data) // 188)
             if _ts_packet_of(data, 256, i) == i and data[i * 188 + 3] & 0x20
             and data[i * 188 + 4] > 0)
    disc[k * 188 + 5] |= 0x80
    for name, bad in (("cc", bytes(cc)), ("disc", bytes(disc)), ("cut", data[:-100])):
        path = tmp_path / f"{name}.ts"
        path.write_bytes(bad)
        result, fast = _timed_from_pes(path)
        assert not fast, name
        _same_timelines(result, probe(path, full_demux=True))


def test_ts_cut_at_a_packet_boundary_equals_a_full_demux(
    ts_files: dict[str, Path], tmp_path: Path
) -> None:
    """Cut between TS packets: the last PES is shorter; FFmpeg flushes it as it is."""
    data = ts_files["ffmpeg"].read_bytes()
    path = tmp_path / "cut.ts"
    path.write_bytes(data[: (len(data) // 188 * 2 // 3) * 188])
    result, _fast = _timed_from_pes(path)
    _same_timelines(result, probe(path, full_demux=True))


def test_full_demux_flag_skips_the_ts_path(ts_files: dict[str, Path]) -> None:
    from pipeline.media.probe import demux, indexed

    called: list[bool] = []
    real = indexed.from_mpegts
    demux.from_mpegts = lambda *a: called.append(True)  # type: ignore[assignment]
    try:
        result = probe(ts_files["ffmpeg"], full_demux=True)
    finally:
        demux.from_mpegts = real  # type: ignore[assignment]
    assert called == [] and result.streams[0].packet_count == 120


def test_ts_timing_on_the_shared_scte35_file(shared_media: Path) -> None:
    """Its SCTE-35 cue stream has no parser the scan models: the whole file is demuxed."""
    path = shared_media / "sample_scte35.ts"
    if not path.exists():
        pytest.skip(f"{path} not in the shared corpus")
    result, fast = _timed_from_pes(path)
    assert not fast
    _same_timelines(result, probe(path, full_demux=True))
