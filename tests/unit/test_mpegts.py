"""pipeline.media.mpegts on small TS files from containergen, against PyAV's demux."""

from __future__ import annotations

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
        return {"ffmpeg": containergen.ts_ffmpeg(d)[0], "pyav": containergen.ts_pyav(d)[0],
                "wrap": containergen.ts_wrap_ffmpeg(d)[0]}
    except containergen.Unavailable as exc:
        pytest.skip(str(exc))


def _demux(path: Path) -> dict[int, list[tuple[int, int, int, int, bool]]]:
    """Per PID: (pos, size, pts, dts, key) of every packet PyAV returns."""
    out: dict[int, list[tuple[int, int, int, int, bool]]] = {}
    with av.open(str(path)) as c:
        pid = {s.index: s.id for s in c.streams}
        for p in c.demux():
            if p.size == 0 and p.pts is None:
                continue
            out.setdefault(pid[p.stream_index], []).append((
                NOPTS if p.pos is None else p.pos, p.size,
                NOPTS if p.pts is None else p.pts, NOPTS if p.dts is None else p.dts,
                bool(p.is_keyframe),
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
