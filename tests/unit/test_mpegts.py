"""pipeline.media.mpegts on small TS files from containergen, against PyAV's demux."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from pipeline.media import mpegts
from schemas.media import NOPTS


@pytest.fixture(scope="module")
def ts_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from tests import containergen

    d = tmp_path_factory.mktemp("ts")
    try:
        out = {"ffmpeg": containergen.ts_ffmpeg(d)[0], "pyav": containergen.ts_pyav(d)[0],
               "wrap": containergen.ts_wrap_ffmpeg(d)[0]}
    except containergen.Unavailable as exc:
        pytest.skip(str(exc))
    # x264 with its banner and a pic_timing SEI on every frame; open GOPs (recovery points).
    for name, params in (("sei", "pic-struct=1"),
                         ("open-gop", "open-gop=1:keyint=30:min-keyint=30:scenecut=0")):
        out[name] = d / f"{name}.ts"
        subprocess.run([containergen.FFMPEG, "-hide_banner", "-loglevel", "error", "-y", "-f",
                        "lavfi", "-i", "testsrc2=size=160x120:rate=30:duration=4", "-c:v",
                        "libx264", "-preset", "veryfast", "-g", "30", "-bf", "2",
                        "-x264-params", params, str(out[name])], check=True)
    return out


def _demux(path: Path) -> dict[int, list[tuple[int, int, int, int, bool, bytes]]]:
    """Per PID: (pos, size, pts, dts, key, first 4096 bytes) of every packet PyAV returns."""
    out: dict[int, list[tuple[int, int, int, int, bool, bytes]]] = {}
    with av.open(str(path)) as c:
        pid = {s.index: s.id for s in c.streams}
        for p in c.demux():
            if p.size == 0 and p.pts is None:
                continue
            out.setdefault(pid[p.stream_index], []).append((
                NOPTS if p.pos is None else p.pos, p.size,
                NOPTS if p.pts is None else p.pts, NOPTS if p.dts is None else p.dts,
                bool(p.is_keyframe), bytes(p)[:4096],
            ))
    return out


@pytest.mark.parametrize("name", ["ffmpeg", "pyav", "wrap"])
def test_video_pes_equal_the_demuxed_packets(ts_files: dict[str, Path], name: str) -> None:
    """One access unit per PES: position, payload size and keyframes equal the demux's,
    and the raw 33-bit times equal its times modulo 2**33."""
    got = mpegts.scan(ts_files[name], [256, 257], payload_of=[257])
    assert got.doubt is None
    want = _demux(ts_files[name])[256]
    v = got.streams[256]
    assert v.pos.tolist() == [w[0] for w in want]
    assert v.size.tolist() == [w[1] for w in want]
    assert v.pts.tolist() == [w[2] % 2**33 for w in want]
    assert v.dts.tolist() == [w[3] % 2**33 for w in want]
    assert v.rai.tolist() == [w[4] for w in want]


@pytest.mark.parametrize("name", ["ffmpeg", "pyav", "wrap"])
def test_adts_frames_equal_the_aac_parser(ts_files: dict[str, Path], name: str) -> None:
    """FFmpeg's AAC parser splits each PES into its ADTS frames; the first frame of a PES
    carries the PES's position and pts, the others none (pos) and an interpolated pts."""
    got = mpegts.scan(ts_files[name], [256, 257], payload_of=[257])
    a = got.streams[257]
    assert a.payload is not None
    frames = mpegts.adts_frames(a.payload, a.size)
    assert frames is not None
    pes_of, sizes = frames
    want = _demux(ts_files[name])[257]
    assert sizes.tolist() == [w[1] for w in want]
    first = np.concatenate(([True], pes_of[1:] != pes_of[:-1]))
    assert [w[0] for w in want] == [int(a.pos[k]) if f else NOPTS
                                    for k, f in zip(pes_of.tolist(), first, strict=True)]
    assert [w[2] % 2**33 for w, f in zip(want, first, strict=True) if f] == a.pts.tolist()


def test_a_broken_continuity_counter_is_a_doubt(ts_files: dict[str, Path], tmp_path: Path) -> None:
    data = bytearray(ts_files["ffmpeg"].read_bytes())
    k = next(i for i in range(20, len(data) // 188)
             if ((data[i * 188 + 1] & 0x1F) << 8 | data[i * 188 + 2]) == 256)
    data[k * 188 + 3] = (data[k * 188 + 3] & 0xF0) | ((data[k * 188 + 3] + 5) & 0x0F)
    bad = tmp_path / "cc.ts"
    bad.write_bytes(bytes(data))
    got = mpegts.scan(bad, [256])
    assert got.streams == {} and got.doubt is not None and "continuity" in got.doubt


def test_a_file_of_partial_packets_is_a_doubt(ts_files: dict[str, Path], tmp_path: Path) -> None:
    bad = tmp_path / "short.ts"
    bad.write_bytes(ts_files["ffmpeg"].read_bytes()[:-5])
    assert mpegts.scan(bad, [256]).doubt is not None


def test_sizes_do_not_depend_on_the_chunking(ts_files: dict[str, Path]) -> None:
    """A PES spanning chunks of the scan is counted whole (the nine sizes off at the
    remux's 48 MiB chunk boundaries were PES split by the old scan's chunks)."""
    whole = mpegts.scan(ts_files["ffmpeg"], [256, 257])
    for chunk in (7, 100, 1001):
        part = mpegts.scan(ts_files["ffmpeg"], [256, 257], chunk_packets=chunk)
        for pid in (256, 257):
            a, b = whole.streams[pid], part.streams[pid]
            for field in ("pos", "size", "pts", "dts", "rai", "head", "head_len", "hlen"):
                assert np.array_equal(getattr(a, field), getattr(b, field)), (chunk, field)


@pytest.mark.parametrize("name", ["ffmpeg", "pyav", "sei", "open-gop"])
def test_h264_keys_are_the_parsers(ts_files: dict[str, Path], name: str) -> None:
    """Keyframes as PyAV reports them (FFmpeg's H.264 parser): from the heads where they
    tell (x264's per-frame pic_timing SEI included), else from more of the PES."""
    with mpegts.TsFile(ts_files[name]) as ts:
        v = ts.scan([256]).streams[256]
        keys = mpegts.h264_keys(v.head, v.head_len)
        assert (keys >= 0).sum() > keys.size * 0.9
        full = [mpegts.h264_key(ts.prefix(v, k, int(v.size[k]))) for k in range(v.size.size)]
    want = [int(w[4]) for w in _demux(ts_files[name])[256]]
    assert full == want
    assert [k for k in keys.tolist() if k >= 0] == [w for k, w in zip(keys, want, strict=True)
                                                    if k >= 0]
    if name == "open-gop":
        assert sum(want) == 4  # one IDR, three recovery points


@pytest.mark.parametrize("name", ["ffmpeg", "sei"])
def test_prefixes_are_the_packets_first_bytes(ts_files: dict[str, Path], name: str) -> None:
    with mpegts.TsFile(ts_files[name]) as ts:
        v = ts.scan([256]).streams[256]
        got = ts.prefixes(v, np.arange(v.size.size), 4096)
    assert got == [w[5] for w in _demux(ts_files[name])[256]]


def test_wrap_adds_below_a_low_reference_and_subtracts_near_the_top() -> None:
    m = 60 * 90000
    ts = np.array([0, 5, 100 * 90000, NOPTS], dtype=np.int64)
    # A first timestamp of 100 s: 60 s before it is the reference; what lies below it
    # came after a wrap and gets 2**33 added.
    assert mpegts.wrap(ts, 100 * 90000, m).tolist() == [2**33, 2**33 + 5, 100 * 90000, NOPTS]
    # Of 2 s: the reference is -58 s, below any timestamp; none moves.
    assert mpegts.wrap(ts, 2 * 90000, m).tolist() == ts.tolist()
    # 2 s before the wrap: from 60 s before it on, 2**33 taken off (early times negative).
    top = 2**33 - 2 * 90000
    got = mpegts.wrap(np.array([top, top - m, top - m - 1, 90000, NOPTS]), top, m).tolist()
    assert got == [top - 2**33, top - m - 2**33, top - m - 1, 90000, NOPTS]


def test_add_stable_steps_on_the_frame_grid() -> None:
    """1024 samples at 44.1 kHz are 2089.8 ticks: FFmpeg steps 2090, 2089, 2090 from
    126000 (as PyAV's demux of a 44.1 kHz ADTS-in-TS shows); at 48 kHz exactly 1920."""
    tb = Fraction(1, 90000)
    p = np.array([126000], dtype=np.int64)
    seq = []
    for _ in range(3):
        p = mpegts.add_stable(p, tb, Fraction(1024, 44100))
        seq.append(int(p[0]))
    assert seq == [128090, 130179, 132269]
    assert mpegts.add_stable(np.array([-7]), tb, Fraction(1024, 48000)).tolist() == [1913]


def _doubt_of(data: bytearray, tmp_path: Path) -> str | None:
    bad = tmp_path / "bad.ts"
    bad.write_bytes(bytes(data))
    return mpegts.scan(bad, [256, 257]).doubt


def test_header_flags_are_doubts(ts_files: dict[str, Path], tmp_path: Path) -> None:
    data = ts_files["ffmpeg"].read_bytes()
    k = next(i for i in range(20, len(data) // 188)
             if ((data[i * 188 + 1] & 0x1F) << 8 | data[i * 188 + 2]) == 256
             and data[i * 188 + 3] & 0x20 and data[i * 188 + 4] > 0)
    for offset, bit, word in ((1, 0x80, "transport error"), (3, 0x80, "scrambled"),
                              (5, 0x80, "discontinuity")):
        bad = bytearray(data)
        bad[k * 188 + offset] |= bit
        doubt = _doubt_of(bad, tmp_path)
        assert doubt is not None and word in doubt
    start = next(i for i in range(20, len(data) // 188)
                 if ((data[i * 188 + 1] & 0x1F) << 8 | data[i * 188 + 2]) == 256
                 and data[i * 188 + 1] & 0x40)
    off = 4 + (1 + data[start * 188 + 4] if data[start * 188 + 3] & 0x20 else 0)
    bad = bytearray(data)
    bad[start * 188 + off + 2] = 0x02  # no PES start code
    doubt = _doubt_of(bad, tmp_path)
    assert doubt is not None and "start code" in doubt
    bad = bytearray(data)
    bad[300 * 188] = 0x46
    doubt = _doubt_of(bad, tmp_path)
    assert doubt is not None and "sync" in doubt


def test_h264_keys_leave_an_escaped_sei_to_the_full_parser() -> None:
    """Heads of AUD + units: an IDR slice is a keyframe, a non-IDR slice is not unless a
    recovery point SEI of one message comes before it; an SEI with an emulation-prevention
    byte (00 00 03), a data partition or no slice at all is undecided (-1), and
    `h264_key`, which unescapes, decides the escaped one."""
    aud, to_slice = bytes.fromhex("0000000109f0"), bytes.fromhex("000141e1")
    units = [
        aud + bytes.fromhex("00000165b8"),  # IDR slice
        aud + bytes.fromhex("00000141e1"),  # non-IDR slice
        aud + bytes.fromhex("0000010606018080") + bytes.fromhex("00") + to_slice,  # recovery
        aud + bytes.fromhex("000001060604000003008080") + bytes.fromhex("00") + to_slice,
        aud + bytes.fromhex("00000106010301014080") + bytes.fromhex("00") + to_slice,  # timing
        aud + bytes.fromhex("00000102aa") + bytes.fromhex("00") + to_slice,  # data partition A
        aud,
    ]
    head = np.zeros((len(units), mpegts.HEAD), dtype=np.uint8)
    for i, u in enumerate(units):
        head[i, : len(u)] = np.frombuffer(u, dtype=np.uint8)
    lens = np.array([len(u) for u in units], dtype=np.int64)
    assert mpegts.h264_keys(head, lens).tolist() == [1, 0, 1, -1, 0, -1, -1]
    assert [mpegts.h264_key(u) for u in units] == [1, 0, 1, 1, 0, -1, -1]
    # The same units 40 bytes on: their slices lie past the 48 bytes read of a head.
    late = np.zeros_like(head)
    late[:, 40 : 40 + 24] = head[:, :24]
    assert mpegts.h264_keys(late, lens + 40).tolist() == [-1] * len(units)
