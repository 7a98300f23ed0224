"""PyAV adapter: one media file -> per-stream packet timelines (numpy) and its own claims.

The probe demuxes every packet of every stream and decodes nothing: timing analysis needs
pts, dts, duration, key/discard flags, size and byte position, and a demux costs about a
hundredth of a decode. Per-packet Python work is kept to a handful of attribute reads into
`array.array` buffers; only keyframes of video streams have their first bytes handed to
`nal` (parameter sets, encoder SEI). Tags are read by `metadata`, the boxes by `isobmff`.
PyAV objects never leave this module; the result is plain data that pickles back.

Bad media never raises: an unopenable file sets `error`, read errors mid-demux go to
`demux_errors`, a file that ends before its index says sets `truncated`. Only a file that
cannot be read from disk at all raises `InputError`.
"""

from __future__ import annotations

import os
import stat
from array import array
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import av
import av.logging
import numpy as np

from pipeline.errors import InputError
from pipeline.media import exif, isobmff
from pipeline.media.metadata import device_fields, exif_fields, merged_tags
from pipeline.media.nal import HEAD_BYTES, ParamInspector
from pipeline.media.probe.indexed import (
    Attempt,
    Collector,
    from_fragments,
    from_mpegts,
    from_sample_tables,
)
from pipeline.media.sniff import sniff_bytes
from schemas.media import NOPTS, EditListEntry, ProbeResult, StreamTimeline

__all__ = ["probe"]

# Demuxers that accept any bytes: `tty` renders any text file as a video of ANSI art.
_NOT_MEDIA_FORMATS = frozenset({"tty"})
# The demuxer FFmpeg picks by content for a file of this family, named up front when the
# path has no extension (ingest probes `/proc/self/fd/<n>`): there FFmpeg's probe of a
# JPEG finds its start-of-scan only in a large enough buffer, and retries every demuxer's
# probe on buffers doubling up to 1 MB: 3.0 ms of CPU a 1080p photo, against 0.14 ms
# named (the same demuxer it ends with, the same streams and packets). With an extension
# FFmpeg picks by it (`image2` for `.jpg`), as before. Other families probe as fast.
_DEMUXER_OF = {"jpeg": "jpeg_pipe"}


def _demuxer_for(spath: str, head: bytes) -> str | None:
    if os.path.splitext(os.path.basename(spath))[1]:
        return None
    return _DEMUXER_OF.get(sniff_bytes(head).kind or "")


def probe(path: str | os.PathLike[str], *, full_demux: bool = False) -> ProbeResult:
    """Demux every stream of `path` and return its timelines and declared metadata.

    A plain MP4/MOV is timed from its sample tables, a fragmented one from its `moof`
    boxes, an MPEG-TS from its PES headers (each proved against a demux of its first
    packets, `probe/indexed.py`); `full_demux` reads every packet instead.

    Raises `InputError` only when the file cannot be read from disk (missing, not a
    regular file, no permission). Anything wrong with the media itself is reported in
    the result (`error`, `demux_errors`, `truncated`).
    """
    spath = os.fspath(path)
    file_size = _check_readable(spath)
    head = _read_head(spath)

    boxes: isobmff.MovieInfo | None = None
    if isobmff.looks_like_isobmff(head):
        boxes = isobmff.read_movie_info(spath)
    exif_info: exif.ExifInfo | None = None
    if exif.has_exif_container(head):
        exif_info = exif.read_exif(spath)

    # FFmpeg logs go to a thread-local capture, never to stderr or Python logging: the
    # ERROR lines become `error`/`demux_errors`. Repeats are kept, or a second probe of
    # the same bad file would lose its message to PyAV's repeat filter.
    prev_level = av.logging.get_level()
    prev_skip = av.logging.get_skip_repeated()
    av.logging.set_level(av.logging.ERROR)
    av.logging.set_skip_repeated(False)
    try:
        with av.logging.Capture(local=True) as logs:
            return _probe_container(spath, file_size, boxes, exif_info, logs, full_demux,
                                    demuxer=_demuxer_for(spath, head))
    finally:
        av.logging.set_skip_repeated(prev_skip)
        av.logging.set_level(prev_level)


# --- disk access -----------------------------------------------------------------------


def _check_readable(spath: str) -> int:
    try:
        st = os.stat(spath)
    except OSError as exc:
        raise InputError(f"{spath}: cannot read file: {exc.strerror or exc}") from exc
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{spath}: not a regular file")
    try:
        with open(spath, "rb") as fh:
            fh.read(1)
    except OSError as exc:
        raise InputError(f"{spath}: cannot read file: {exc.strerror or exc}") from exc
    return st.st_size


def _read_head(spath: str) -> bytes:
    with open(spath, "rb") as fh:
        return fh.read(64)


# --- container -------------------------------------------------------------------------


def _ffmpeg_message(exc: Exception, logs: list[tuple[int, str, str]]) -> str:
    """One line: FFmpeg's own last error log if it said more than the error code."""
    base = getattr(exc, "strerror", None) or str(exc)
    detail = ""
    for level, _name, message in reversed(logs):
        if level <= av.logging.ERROR and message.strip():
            detail = message.strip()
            break
    if detail and detail != base:
        return f"{detail} ({base})"
    return str(base)


def _probe_container(
    spath: str,
    file_size: int,
    boxes: isobmff.MovieInfo | None,
    exif_info: exif.ExifInfo | None,
    logs: list[tuple[int, str, str]],
    full_demux: bool = False,
    demuxer: str | None = None,
) -> ProbeResult:
    edit_lists = boxes.edit_lists if boxes is not None else ()
    truncated = boxes.truncated if boxes is not None else None
    error: str | None = None
    container: Any = None
    try:
        container = av.open(spath, format=demuxer, metadata_errors="replace")
    except Exception as exc:  # FFmpegError, and anything odd a demuxer raises on open
        error = _ffmpeg_message(exc, logs)
    else:
        fmt = container.format.name if container.format is not None else ""
        if fmt in _NOT_MEDIA_FORMATS:
            container.close()
            error = f"not a media file (FFmpeg only offers its '{fmt}' demuxer)"
    if error is not None:
        return ProbeResult(
            path=spath,
            media_kind=None,
            container=None,
            duration=None,
            start_time=None,
            streams=(),
            tags={},
            edit_lists=edit_lists,
            error=error,
            truncated=truncated,
            **exif_fields(exif_info),
        )
    with container:
        return _demux(spath, file_size, container, boxes, exif_info, logs, truncated,
                      full_demux)


def _demux(
    spath: str,
    file_size: int,
    container: Any,
    boxes: isobmff.MovieInfo | None,
    exif_info: exif.ExifInfo | None,
    logs: list[tuple[int, str, str]],
    truncated: str | None,
    full_demux: bool = False,
) -> ProbeResult:
    streams = list(container.streams)
    nstreams = len(streams)
    col = Collector()
    demux_errors: list[str] = []

    inspectors: dict[int, ParamInspector] = {}
    for s in streams:
        if s.type == "video" and s.codec_context is not None:
            inspectors[s.index] = ParamInspector(s.codec_context.name, s.codec_context.extradata)
    counts = [0] * max(nstreams, 1)

    a_sidx = col.sidx.append
    a_pts = col.pts.append
    a_dts = col.dts.append
    a_dur = col.dur.append
    a_flags = col.flags.append
    a_size = col.size.append
    a_pos = col.pos.append
    nopts = NOPTS

    n_logs_before = len(logs)
    indexed = None
    attempt = Attempt()
    if truncated is None and not full_demux:
        indexed = from_sample_tables(spath, container, streams, boxes, inspectors, attempt)
        if indexed is None:
            indexed = from_fragments(spath, container, streams, boxes, inspectors, attempt)
        if indexed is None and boxes is None:
            indexed = from_mpegts(spath, container, streams, inspectors, attempt)
    fresh: Any = None
    if indexed is not None:
        col = indexed
    else:
        if attempt.demuxed:  # a failed proof read packets: demux from the start again
            fresh = av.open(spath, metadata_errors="replace")
            n_logs_before = len(logs)  # what the proof and this open logged comes again
        it: Iterator[Any] = (container if fresh is None else fresh).demux()
        ended = False
        try:
            for pkt in it:
                si = pkt.stream_index
                a_sidx(si)
                v = pkt.pts
                a_pts(nopts if v is None else v)
                v = pkt.dts
                a_dts(nopts if v is None else v)
                v = pkt.duration
                a_dur(nopts if v is None else v)
                key = pkt.is_keyframe
                a_flags(key | (pkt.is_discard << 1))
                a_size(pkt.size)
                v = pkt.pos
                a_pos(nopts if v is None else v)
                if key and si in inspectors:
                    _inspect(inspectors[si], pkt, counts[si])
                counts[si] += 1
            ended = True
        except Exception as exc:  # a read error ends the demux; keep what was read
            demux_errors.append(_ffmpeg_message(exc, logs[n_logs_before:]))
        finally:
            if fresh is not None:
                fresh.close()

        if ended:
            # PyAV ends a clean demux with one empty flush packet per stream; drop them.
            _drop_flush_packets(col, nstreams)

    for _level, name, message in logs[n_logs_before:]:
        line = f"{name}: {message.strip()}" if name else message.strip()
        if line and line not in demux_errors:
            demux_errors.append(line)

    timelines = _timelines(streams, col, inspectors)

    if truncated is None:
        truncated = _index_past_eof(streams, file_size)

    tags = merged_tags({str(k): str(v) for k, v in container.metadata.items()}, exif_info)
    meta = device_fields(tags, boxes, exif_info)
    duration = container.duration
    start = container.start_time
    return ProbeResult(
        path=spath,
        media_kind=_media_kind(timelines),
        container=container.format.name if container.format is not None else None,
        duration=None if duration is None else Fraction(duration, av.time_base),
        start_time=None if start is None else Fraction(start, av.time_base),
        streams=timelines,
        tags=tags,
        edit_lists=_edit_lists_by_stream(boxes, streams),
        demux_errors=tuple(demux_errors),
        truncated=truncated,
        **meta,
    )


def _inspect(insp: ParamInspector, pkt: Any, index: int) -> None:
    """Hand a keyframe's first bytes and any new extradata to `nal` as plain bytes."""
    ed = bytes(pkt.get_sidedata("new_extradata")) if pkt.has_sidedata("new_extradata") else None
    head = memoryview(pkt)[:HEAD_BYTES].tobytes() if insp.parses_nals else b""
    insp.inspect(head, index, ed)


def _edit_lists_by_stream(
    boxes: isobmff.MovieInfo | None, streams: list[Any]
) -> tuple[EditListEntry, ...]:
    if boxes is None or not boxes.edit_lists:
        return ()
    return boxes.edit_lists_by_stream({int(s.id): int(s.index) for s in streams})


def _drop_flush_packets(col: Collector, n: int) -> None:
    """Remove up to `n` trailing packets that are PyAV's empty flush packets."""
    k = 0
    last = len(col.sidx) - 1
    while (
        k < n
        and last - k >= 0
        and col.size[last - k] == 0
        and col.pts[last - k] == NOPTS
        and col.dts[last - k] == NOPTS
    ):
        k += 1
    if k:
        for name in Collector.__slots__:
            arr: array[int] = getattr(col, name)
            del arr[len(arr) - k :]


def _timelines(
    streams: list[Any], col: Collector, inspectors: dict[int, ParamInspector]
) -> tuple[StreamTimeline, ...]:
    sidx = np.frombuffer(col.sidx, dtype=np.int64)
    pts = np.frombuffer(col.pts, dtype=np.int64)
    dts = np.frombuffer(col.dts, dtype=np.int64)
    dur = np.frombuffer(col.dur, dtype=np.int64)
    flags = np.frombuffer(col.flags, dtype=np.int64)
    size = np.frombuffer(col.size, dtype=np.int64)
    pos = np.frombuffer(col.pos, dtype=np.int64)
    out = []
    for s in streams:
        sel = sidx == s.index
        fl = flags[sel]
        insp = inspectors.get(s.index)
        out.append(
            StreamTimeline(
                index=s.index,
                kind=str(s.type),
                codec=_codec_name(s),
                time_base=_fraction(s.time_base) or Fraction(1, 1),
                pts=pts[sel].copy(),
                dts=dts[sel].copy(),
                duration=dur[sel].copy(),
                keyframe=(fl & 1).astype(np.bool_),
                discard=(fl & 2).astype(np.bool_),
                size=size[sel].copy(),
                pos=pos[sel].copy(),
                param_sets=tuple(insp.param_sets) if insp else (),
                encoder_signatures=tuple(insp.signatures) if insp else (),
                **_stream_props(s),
            )
        )
    return tuple(out)


def _codec_name(s: Any) -> str | None:
    cc = s.codec_context
    if cc is not None:
        return str(cc.name)
    return None


def _fraction(v: Any) -> Fraction | None:
    if v is None:
        return None
    f = Fraction(v.numerator, v.denominator) if v.denominator else None
    return f


def _stream_props(s: Any) -> dict[str, Any]:
    cc = s.codec_context
    props: dict[str, Any] = {
        "tags": {str(k): str(v) for k, v in s.metadata.items()},
        "start_pts": s.start_time,
        "duration_pts": s.duration,
    }
    if cc is None:
        return props
    props["profile"] = cc.profile or None
    props["bit_rate"] = cc.bit_rate or None
    if s.type == "video":
        props["width"] = cc.width or None
        props["height"] = cc.height or None
        rate = _fraction(s.average_rate) or _fraction(s.base_rate)
        props["frame_rate"] = rate if rate else None
    elif s.type == "audio":
        props["sample_rate"] = cc.sample_rate or None
        props["channels"] = cc.channels or None
    return props


def _index_past_eof(streams: list[Any], file_size: int) -> str | None:
    """The container's own sample index pointing beyond the end of the file."""
    for s in streams:
        try:
            entries = s.index_entries
            n = len(entries)
        except Exception:
            continue
        if n == 0:
            continue
        last = entries[n - 1]
        end = last.pos + last.size
        if last.pos >= 0 and end > file_size:
            return (
                f"stream {s.index}: sample index reaches byte {end} "
                f"but the file has {file_size} bytes"
            )
    return None


def _media_kind(timelines: tuple[StreamTimeline, ...]) -> str | None:
    video = [t for t in timelines if t.kind == "video"]
    if any(t.packet_count > 1 for t in video):
        return "video"
    if any(t.kind == "audio" for t in timelines):
        return "audio"
    if video:
        return "image"
    return None
