"""`custody export make --clip FILE@START-END` and `custody verify` of clips (issue 13 item 5).

A real case on the local store (the S3 path is the same copy code, tested in
test_export_package); each clip's packets cross-checked with ffprobe -show_packets (its
own packet data hashes of the clip and of the original), a clip cut from another file
(ffmpeg -c copy of a copy with a second of packets dropped) named by `custody verify`,
and bad specs refused with exit 2 and nothing made.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import bagit
import pytest

from tests.integration.test_export_package import (
    Custody,
    _request,
    _run,
    _setup,
    verify_package,
)
from tests.mediagen import Generated

pytestmark = pytest.mark.skipif(shutil.which("ffprobe") is None or shutil.which("ffmpeg") is None,
                                reason="ffprobe/ffmpeg (the peer tools) are not installed")


def ffprobe_packets(path: Path, stream: str) -> list[dict[str, str]]:
    """ffprobe's own list of a stream's packets (pts, dts, size, flags, SHA-256 of data)."""
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", stream, "-show_packets",
         "-show_data_hash", "sha256", "-show_entries", "packet=pts,dts,size,flags,data_hash",
         "-of", "json", str(path)], capture_output=True, text=True, check=True)
    packets: list[dict[str, str]] = json.loads(done.stdout)["packets"]
    return packets


@pytest.fixture
def custody(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_recording: Generated,
            audio_recording: Generated) -> Custody:
    monkeypatch.chdir(tmp_path)
    c = Custody(tmp_path, str(tmp_path / "store"), {})
    _setup(c, tmp_path, [clean_recording, audio_recording])
    return c


@pytest.mark.slow
def test_a_clip_is_the_originals_packets_from_the_keyframe_at_or_before_its_start(
    custody: Custody, tmp_path: Path, clean_recording: Generated
) -> None:
    c = custody
    export_id = _request(c)
    pkg = tmp_path / "pkg"
    made = c.json("export", "make", export_id, "--out", str(pkg), "--clip",
                  "clean.mp4@00:00:01.5-00:00:03", "--clip", "voice.m4a@1-2", who="L-1")
    video_clip = "data/clips/C01_clean_000001.500-000003.mp4"
    assert made["clips"] == [video_clip, "data/clips/C02_voice_000001-000002.m4a"]
    lineage = json.loads((pkg / "integrity/clips/C01.json").read_bytes())
    assert lineage["derivative"] is True and lineage["path"] == video_clip
    assert lineage["source"]["path"] == "data/clean.mp4"
    assert lineage["starts_at"] == {"time": "00:00:01", "seconds": "1", "keyframe_stream": 0,
                                    "keyframe_packet": 30}  # 1 s GOPs at 30 fps
    v, a = lineage["streams"]
    # video: decode order from the keyframe at 1.0 s to the last frame shown before 3.0 s
    assert (v["kind"], v["first_packet"], v["last_packet"], v["packet_count"]) == (
        "video", 30, 89, 60)
    # audio (1024 samples at 48 kHz, one priming packet at -1024): every packet sounding in
    # [1.0 s, 3.0 s): packet j starts at (j - 1) * 1024 samples, so 47 (47104) to 141
    assert (a["kind"], a["first_packet"], a["last_packet"], a["packet_count"]) == (
        "audio", 47, 141, 95)
    assert (v["pts_shift"], a["pts_shift"]) == (15360, 48000)  # 1 s in each time base

    # ffprobe, knowing nothing of Custody: the clip holds exactly those packets, each
    # the original's bytes, and its times are the original's less one second
    clip = pkg / video_clip
    for stream, lin, tb in (("v:0", v, 15360), ("a:0", a, 48000)):
        mine = ffprobe_packets(clip, stream)
        theirs = ffprobe_packets(clean_recording.path, stream)
        first, last = lin["first_packet"], lin["last_packet"]
        assert len(mine) == lin["packet_count"]
        assert [p["data_hash"] for p in mine] == [p["data_hash"] for p in theirs[first:last + 1]]
        assert [int(p["pts"]) for p in mine] == [int(p["pts"]) - tb
                                                 for p in theirs[first:last + 1]]
        assert [p[0] for p in lin["packets"]] == list(range(first, last + 1))
    assert ffprobe_packets(clip, "v:0")[0]["flags"].startswith("K")
    assert int(ffprobe_packets(clip, "v:0")[0]["pts"]) == 0
    audio_only = json.loads((pkg / "integrity/clips/C02.json").read_bytes())
    (s,) = audio_only["streams"]
    # an audio-only file: every AAC packet is a keyframe; 1.0 s is packet 47's start + 896
    assert (s["first_packet"], s["last_packet"]) == (47, 94)
    assert len(ffprobe_packets(pkg / made["clips"][1], "a:0")) == 48

    # the bag: clips in the payload manifests, lineages in the tag manifest
    bagit.Bag(str(pkg)).validate()
    assert _run("sha256sum", "-c", "manifest-sha256.txt", cwd=pkg).returncode == 0
    assert f"  {video_clip}\n" in (pkg / "manifest-sha512.txt").read_text("utf-8")
    assert "  integrity/clips/C01.json\n" in (pkg / "tagmanifest-sha512.txt").read_text("utf-8")
    info = (pkg / "bag-info.txt").read_text("utf-8")
    size = sum(p.stat().st_size for p in (pkg / "data").rglob("*") if p.is_file())
    assert f"Payload-Oxum: {size}.4\n" in info
    inventory = list(csv.reader(io.StringIO((pkg / "电子数据清单.csv").read_text("utf-8-sig"))))
    assert [r[0] for r in inventory[1:]] == ["1", "2", "C01", "C02"]
    assert inventory[3][2] == "派生片段（非原始）/ derived clip (not an original)"
    assert inventory[3][1] == video_clip.removeprefix("data/") and inventory[3][5] == "2.000"
    cover = (pkg / "cover.html").read_text("utf-8")
    assert "派生片段（非原始文件）/ Derived clips (not originals)" in cover
    assert "视频 video #0: 30–89 (60)；音频 audio #1: 47–141 (95)" in cover
    listed = c.json("export", "list", who="L-1")
    assert listed[0]["packages"] == [made["bag_sha512"]]

    # the receiver: a moved copy verifies, clips included
    moved = tmp_path / "elsewhere"
    shutil.move(pkg, moved)
    code, out = verify_package(moved)
    assert code == 0, out


@pytest.mark.slow
def test_a_clip_cut_from_another_file_is_refused_naming_the_clip_and_packet(
    custody: Custody, tmp_path: Path, dropped_recording: Generated
) -> None:
    c = custody
    export_id = _request(c)
    pkg = tmp_path / "pkg"
    assert c("export", "make", export_id, "--out", str(pkg), "--clip",
             "clean.mp4@00:00:01-00:00:03", who="L-1") == 0, c.err
    clip = pkg / "data/clips/C01_clean_000001-000003.mp4"
    # the same span stream-copied by ffmpeg from a copy missing 2.0-3.0 s: its first 30
    # video packets (1.0-2.0 s) are the original's, the 31st is the one shown at 3.0 s
    forged = tmp_path / "forged.mp4"
    done = _run("ffmpeg", "-v", "error", "-ss", "1", "-i", str(dropped_recording.path),
                "-t", "2", "-c", "copy", "-y", str(forged))
    assert done.returncode == 0, done.stderr
    theirs = ffprobe_packets(forged, "v:0")
    mine = ffprobe_packets(clip, "v:0")
    assert [p["data_hash"] for p in theirs[:30]] == [p["data_hash"] for p in mine[:30]]
    assert theirs[30]["data_hash"] != mine[30]["data_hash"]
    clip.chmod(0o644)
    shutil.copyfile(forged, clip)
    code, out = verify_package(pkg)
    assert code == 1
    name = "data/clips/C01_clean_000001-000003.mp4"
    assert f"{name}: clip C01 stream 0 packet 30 (pts " in out
    assert "is not its lineage's: source packet 60 of stream 0 of data/clean.mp4" in out
    assert f"{name}: SHA-256 " in out  # the manifests say so too
    assert "data/clean.mp4:" not in out  # the original itself is intact

    # and a lineage rewritten to describe the forged clip is refused against the original
    from pipeline.media.probe.clip import packet_digests

    lp = pkg / "integrity/clips/C01.json"
    doc = json.loads(lp.read_bytes())
    got = packet_digests(clip)
    for st in doc["streams"]:
        have = got[st["clip_stream"]].packets
        st["packets"] = [[st["first_packet"] + k, d[0] + st["pts_shift"] if d[0] is not None
                          else None, d[1] + st["pts_shift"] if d[1] is not None else None,
                          d[2], d[3]] for k, d in enumerate(have)]
        st["last_packet"] = st["first_packet"] + len(have) - 1
    lp.write_text(json.dumps(doc), "utf-8")
    code, out = verify_package(pkg)
    assert code == 1
    assert (f"{name}: clip C01 stream 0 packet 30: source packet 60 of stream 0 of "
            "data/clean.mp4 is ") in out and "the clip is not cut from this original" in out
    assert f"{name}: clip C01 stream 0 packet 0 (pts" not in out  # matches its lineage now

    # a clip without a lineage cannot be checked: named
    lp.unlink()
    code, out = verify_package(pkg)
    assert code == 1
    assert f"{name}: a clip without a lineage file: its origin cannot be checked" in out


BAD_SPECS = [
    ("clean.mp4@00:00:05-00:00:07", "00:00:05-00:00:07 is outside clean.mp4, whose media "
                                    "lasts 00:00:06"),
    ("clean.mp4@00:00:07-00:00:08", "is outside clean.mp4"),
    ("other.mp4@00:00:01-00:00:02", "other.mp4 is not a file of this export (clean.mp4, "
                                    "voice.m4a)"),
    ("clean.mp4@00:00:03-00:00:02", "the end 00:00:02 is not after the start 00:00:03"),
    ("clean.mp4@00:00:01", "expected FILE@START-END"),
    ("clean.mp4", "expected FILE@START-END"),
    ("clean.mp4@00:01:75-00:02:00", "seconds of 60 or more after the minutes"),
    ("clean.mp4@1h-2h", "'1h' is not a time"),
]


@pytest.mark.slow
def test_a_bad_clip_spec_is_exit_2_with_nothing_made(custody: Custody, tmp_path: Path) -> None:
    """Each bad spec beside a good one: exit 2 naming the spec, no package, no partial, no
    made event."""
    c = custody
    export_id = _request(c)
    out_dir = tmp_path / "exports"
    out_dir.mkdir()
    for spec, message in BAD_SPECS:
        code = c("export", "make", export_id, "--out", str(out_dir / "pkg"), "--clip",
                 "clean.mp4@0-1", "--clip", spec, who="L-1")
        assert code == 2, spec
        assert message in c.err and f"--clip {spec}" in c.err, (spec, c.err)
        assert list(out_dir.iterdir()) == []
    assert c.json("export", "list", who="L-1")[0]["status"] == "approved"
    stopped = c.json("audit", "show", "--who", "L-1", "--action", "export.request",
                     "--result", "refused", who="L-1")
    # audited once authorized: the two spans outside clean.mp4 and the file not in the
    # export (a malformed spec stops before the request is read)
    assert [r["reason"].split(": ")[1] for r in stopped] == [
        "--clip clean.mp4@00:00:05-00:00:07", "--clip clean.mp4@00:00:07-00:00:08",
        "--clip other.mp4@00:00:01-00:00:02"]


@pytest.mark.slow
def test_an_mpegts_clip_is_checked_against_a_demux_of_its_original(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MPEG-TS: packets.csv hashes the file's bytes at pos (TS headers between PES
    pieces), not the demuxer's packets, so verify demuxes the original instead."""
    from tests import containergen

    (tmp_path / "media").mkdir()
    ts, _truth = containergen.ts_ffmpeg(tmp_path / "media")
    monkeypatch.chdir(tmp_path)
    c = Custody(tmp_path, str(tmp_path / "store"), {})
    _setup(c, tmp_path, [Generated(ts)])
    export_id = _request(c)
    pkg = tmp_path / "pkg"
    made = c.json("export", "make", export_id, "--out", str(pkg), "--clip", "ff.ts@1.1-2.5",
                  who="L-1")
    assert made["clips"] == ["data/clips/C01_ff_000001.100-000002.500.ts"]
    doc = json.loads((pkg / "integrity/clips/C01.json").read_bytes())
    v = doc["streams"][0]
    # times from the first shown (audio at pts 130080 of 90 kHz): 1.1 s is 229080, after
    # the keyframe at 222000 (packet 30; packet 0's 132000 is the one before it); 2.5 s is
    # 355080: the last packet shown before it in decode order is 75 (B-frame at 354000)
    assert (v["kind"], v["first_packet"], v["last_packet"], v["packet_count"]) == (
        "video", 30, 75, 46)
    assert doc["starts_at"]["seconds"] == str(Fraction(222000 - 130080, 90000))
    mine = ffprobe_packets(pkg / made["clips"][0], "v:0")
    theirs = ffprobe_packets(ts, "v:0")
    assert [int(p["pts"]) for p in theirs[28:34]] == [213000, 219000, 222000, 231000, 225000,
                                                      228000]
    assert [p["data_hash"] for p in mine] == [p["data_hash"] for p in theirs[30:76]]
    listed = {(int(r["stream"]), int(r["packet"])): r["blake3"] for r in csv.DictReader(
        io.StringIO((pkg / "integrity/001/packets.csv").read_text("utf-8")))}
    assert listed[(0, 30)] != v["packets"][0][4]  # file bytes at pos are not the packet
    code, out = verify_package(pkg)
    assert code == 0, out
    # one byte of the original's packet 40 flipped: the clip is no longer its original's
    pos = int(next(r["pos"] for r in csv.DictReader(io.StringIO(
        (pkg / "integrity/001/packets.csv").read_text("utf-8")))
        if r["stream"] == "0" and r["packet"] == "40"))
    original = pkg / "data" / "ff.ts"
    original.chmod(0o644)
    with open(original, "r+b") as fh:
        fh.seek(pos + 100)
        b = fh.read(1)
        fh.seek(pos + 100)
        fh.write(bytes([b[0] ^ 0xFF]))
    code, out = verify_package(pkg)
    assert code == 1
    assert (f"{made['clips'][0]}: clip C01 stream 0 packet 10: source packet 40 of stream 0 "
            "of data/ff.ts is ") in out
