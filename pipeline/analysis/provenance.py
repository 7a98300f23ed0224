"""Provenance: what the file says about the software that wrote it.

Two signals. Tags (container and stream) that name an editing, converting or re-muxing
tool are EDITING_TOOL; a camera's own encoder and handler names are not listed. Inside
a video stream, parameter sets that change or a second encoder signature (x264/x265 SEI
text, read by `pipeline.media.nal`) are CODEC_PARAMS_CHANGED: two encodes were joined. A
re-encode by a tool that writes no tag and no SEI leaves neither. Pure.
"""

from __future__ import annotations

import itertools
import re

import numpy as np

from pipeline.analysis.timeline import Clock, cap, secs, stream_name
from pipeline.analysis.tolerances import Tolerances
from schemas.media import NOPTS, Finding, ProbeResult, StreamTimeline

__all__ = ["EDITING_TOOLS", "find_editing_tools", "find_parameter_changes"]


def _pts_at(t: StreamTimeline, packet: int) -> int | None:
    if 0 <= packet < t.packet_count and int(t.pts[packet]) != NOPTS:
        return int(t.pts[packet])
    return None


def find_parameter_changes(t: StreamTimeline, clock: Clock, tol: Tolerances) -> list[Finding]:
    tb = t.time_base
    out: list[Finding] = []

    def finding(packet: int, what: str) -> Finding:
        pts = _pts_at(t, packet)
        at = clock.at(pts, tb) if pts is not None else None
        when = f" at {secs(clock.rel(pts, tb))} s (pts {pts})" if pts is not None else ""
        return Finding(
            "CODEC_PARAMS_CHANGED",
            f"In {stream_name(t)} {what} at packet {packet}{when}.",
            stream_index=t.index,
            pts=pts,
            at_seconds=at,
        )

    for packet, _blob in t.param_sets[1:]:
        out.append(finding(packet, "the coding parameter sets change"))
    sigs = t.encoder_signatures
    keyframes = int(np.count_nonzero(t.keyframe))
    # Encoders that stamp every keyframe repeat their signature by design; then only a
    # different text means another encode. x264 and x265 stamp the first picture only.
    repeats = len(sigs) * 10 >= keyframes * 9 and keyframes > 1
    for (_p0, prev), (packet, text) in itertools.pairwise(sigs):
        if text != prev:
            out.append(finding(packet, f"a different encoder signature appears ({text[:60]!r})"))
        elif not repeats:
            out.append(finding(packet, f"the encoder signature appears again ({text[:60]!r})"))
    return cap(out, tol, t)


# Tag keys that name the software that wrote or handled a file.
_TOOL_KEYS = re.compile(
    r"encoder|handler_name|comment|software|encoded_by|encoding_tool|writing_application|"
    r"creation_tool|tool|description",
    re.IGNORECASE,
)


# Tools that edit, cut, convert or re-mux video. Cameras' own names (GoPro AVC encoder,
# Apple's "Core Media Video" handler, Android's "VideoHandle") are not here: those are
# what the recording device itself writes.
EDITING_TOOLS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(rx, re.IGNORECASE))
    for name, rx in (
        ("FFmpeg (libavformat re-mux)", r"\blavf\d"),
        ("FFmpeg (libavcodec encode)", r"\blavc\d"),
        ("FFmpeg", r"\bffmpeg\b"),
        ("HandBrake", r"handbrake"),
        ("Adobe Premiere / Media Encoder", r"premiere|adobe media encoder|after effects"),
        ("iMovie", r"imovie"),
        ("Final Cut", r"final ?cut"),
        ("CapCut / 剪映", r"capcut|剪映|jianying"),
        ("Kdenlive", r"kdenlive"),
        ("Shotcut", r"shotcut"),
        ("DaVinci Resolve", r"davinci|blackmagic design"),
        ("GPAC / MP4Box", r"\bgpac\b|mp4box"),
        ("mp4parser / isoparser", r"mp4parser|isoparser|isoviewer"),
        ("Avidemux", r"avidemux"),
        ("OpenShot", r"openshot"),
        ("Filmora / Wondershare", r"filmora|wondershare"),
        ("Movavi", r"movavi"),
        ("Camtasia", r"camtasia"),
        ("Vegas", r"vegas pro|sony vegas|magix vegas"),
        ("MKVToolNix", r"mkvmerge|mkvtoolnix"),
        ("L-SMASH", r"l-smash"),
        ("Bento4", r"bento4"),
        ("VLC", r"\bvlc\b|libvlc|videolan"),
        ("Clipchamp", r"clipchamp"),
        ("InShot", r"inshot"),
        ("GoPro Quik", r"\bquik\b"),
        ("Format Factory / 格式工厂", r"format ?factory|格式工厂"),
        ("爱剪辑 / 快剪辑 / 必剪", r"爱剪辑|快剪辑|必剪"),
        ("XMedia Recode", r"xmedia ?recode"),
    )
)


def find_editing_tools(result: ProbeResult) -> list[Finding]:
    scopes: list[tuple[str, int | None, dict[str, str]]] = [("container", None, result.tags)]
    scopes += [(stream_name(t), t.index, t.tags) for t in result.streams]
    out = []
    seen: set[tuple[str, str, str]] = set()
    for where, index, tags in scopes:
        for key, value in sorted(tags.items()):
            if not _TOOL_KEYS.search(key):
                continue
            for tool, rx in EDITING_TOOLS:
                if rx.search(value) and (tool, key, value) not in seen:
                    seen.add((tool, key, value))
                    out.append(
                        Finding(
                            "EDITING_TOOL",
                            f"The {where} tag {key}={value.strip()!r} names {tool}, software "
                            "that edits, converts or re-muxes video.",
                            stream_index=index,
                        )
                    )
                    break
    return out
