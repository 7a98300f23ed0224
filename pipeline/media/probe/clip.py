"""Stream-copy clips and packet digests (PyAV): the two demux jobs of a court export's clips.

`remux` copies a contiguous run of packets of each chosen stream from a source into a new
file of the same container format, moving every timestamp of a stream back by the same
number of ticks and re-encoding nothing; `packet_digests` demuxes a file and hashes each
packet's bytes (BLAKE3), per stream in decode order. A packet's bytes are what the
demuxer gives: the same for the original and for a clip only when the muxer copied them
unchanged, which is what `pipeline.export.clips` proves after each remux and what
`custody verify` proves again at the receiver. PyAV objects never leave this module.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import blake3

from pipeline.errors import InputError

Digest = tuple[int | None, int | None, int, str]  # pts, dts, size, BLAKE3 of the bytes


@dataclass(frozen=True, slots=True)
class StreamDigests:
    index: int
    kind: str
    codec: str | None
    time_base: Fraction
    packets: list[Digest]


def _digest(p: Any) -> Digest:
    return (p.pts, p.dts, p.size, blake3.blake3(memoryview(p)).hexdigest())


def _packets(inp: Any) -> Iterator[Any]:
    for p in inp.demux():
        if p.dts is None and p.pts is None and not p.size:
            continue  # PyAV's empty flush packet at the end of each stream
        yield p


def _open(path: str | os.PathLike[str]) -> Any:
    try:
        return av.open(os.fspath(path), metadata_errors="replace")
    except (av.FFmpegError, OSError) as exc:
        raise InputError(f"{os.fspath(path)}: cannot be demuxed: {exc}") from exc


def packet_digests(path: str | os.PathLike[str]) -> dict[int, StreamDigests]:
    """Every packet of every stream of `path`: (pts, dts, size, BLAKE3), by stream."""
    with _open(path) as inp:
        out = {s.index: StreamDigests(s.index, s.type, s.codec_context.name,
                                      Fraction(s.time_base or 1), []) for s in inp.streams}
        try:
            for p in _packets(inp):
                out[p.stream_index].packets.append(_digest(p))
        except av.FFmpegError as exc:
            raise InputError(f"{os.fspath(path)}: demux failed: {exc}") from exc
    return out


def remux(
    src: str | os.PathLike[str], dest: str | os.PathLike[str],
    ranges: Mapping[int, tuple[int, int]], shift: Mapping[int, int],
) -> dict[int, list[Digest]]:
    """Copy packets `ranges[s]` (first, last packet index, inclusive, in decode order) of
    each stream `s` of `src` into `dest` (format from its name), each timestamp of `s`
    less `shift[s]` ticks; the source packets copied, as digests, by source stream."""
    copied: dict[int, list[Digest]] = {s: [] for s in ranges}
    with _open(src) as inp:
        ext = os.path.splitext(os.fspath(dest))[1].lower()
        opts = {"fflags": "+bitexact"}
        if ext in (".mp4", ".mov", ".m4a", ".m4v", ".3gp"):
            opts["movflags"] = "use_metadata_tags"
        out = av.open(os.fspath(dest), "w", container_options=opts)
        try:
            omap = {s: out.add_stream_from_template(inp.streams[s]) for s in sorted(ranges)}
            seen = dict.fromkeys(ranges, -1)
            for p in _packets(inp):
                s = p.stream_index
                if s not in ranges:
                    continue
                seen[s] += 1
                first, last = ranges[s]
                if first <= seen[s] <= last:
                    copied[s].append(_digest(p))
                    if p.pts is not None:
                        p.pts -= shift[s]
                    if p.dts is not None:
                        p.dts -= shift[s]
                    p.stream = omap[s]
                    out.mux(p)
                if all(seen[t] >= ranges[t][1] for t in ranges):
                    break
        except av.FFmpegError as exc:
            raise InputError(f"{os.fspath(src)}: stream copy to {os.fspath(dest)} failed: "
                             f"{exc}") from exc
        finally:
            out.close()
    return copied


def versions() -> str:
    """PyAV's and FFmpeg's versions, for the record of how a clip was made."""
    libs = getattr(av, "library_versions", {})
    fmt = libs.get("libavformat")
    return f"PyAV {av.__version__}" + (f", libavformat {'.'.join(map(str, fmt))}" if fmt else "")
