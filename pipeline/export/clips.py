"""Derived clips of a court export (issue 13 item 5): `--clip FILE@00:01:20-00:03:05`.

A clip is a derivative, never an original: packets stream-copied (no re-encode) from the
original's checked copy in the package, from the keyframe at or before the start. The plan
is made from the catalog's packet rows before anything is copied (so a bad spec fails with
nothing made): on the reference stream (the first video stream, else the first stream) the
last keyframe presented at or before the start, and from it, in decode order, every packet
up to the last one presented before the end; on every other audio and video stream the
packets presented in [that keyframe's time, end). Each stream's timestamps move back by
the keyframe's time, so the clip starts at zero. Times count from the file's earliest
presentation time shown (packets marked discard, such as AAC priming, come before it).
After the remux the clip is demuxed again and each packet's BLAKE3 compared with the
original's; a muxer that changed a packet's bytes stops the export.

The lineage (`integrity/clips/CNN.json`, a tag file) holds the source's BLAKE3 and path,
the requested and actual times, and per stream the packet range and every packet's
(source packet index, pts, dts, size, BLAKE3): `pipeline.export.lineage` checks it at the
receiver. Pure but for `cut`, which runs the PyAV adapter.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from pipeline.errors import InputError
from pipeline.export.bag import safe_name

CLIP_DIR = "data/clips"
LINEAGE_DIR = "integrity/clips"
NOTE_ZH = "派生片段：由原始文件按数据包原样复制截取（未重新编码），不是原始文件"
NOTE_EN = ("derived clip: packets copied unchanged from the original (no re-encode); "
           "a derivative, not an original")
_TIME = re.compile(r"^(?:(?:(\d+):)?([0-5]?\d):)?(\d+(?:\.\d+)?)$")


@dataclass(frozen=True, slots=True)
class ClipSpec:
    text: str
    file: str
    start: Fraction  # seconds from the file's earliest presentation time
    end: Fraction


def parse_time(text: str) -> Fraction:
    """`[[HH:]MM:]SS[.fff]` as exact seconds (ValueError if it is not one)."""
    m = _TIME.match(text.strip())
    if not m:
        raise ValueError(f"'{text}' is not a time (HH:MM:SS, MM:SS or seconds, "
                         "with an optional .fraction)")
    h, mnt, sec = m.groups()
    if mnt is not None and Fraction(sec) >= 60:
        raise ValueError(f"'{text}': seconds of 60 or more after the minutes")
    return Fraction(int(h or 0) * 3600 + int(mnt or 0) * 60) + Fraction(sec)


def parse_clip(text: str) -> ClipSpec:
    """`FILE@START-END` (FILE may itself hold '@': the last one splits)."""
    file, at, span = text.rpartition("@")
    start_s, dash, end_s = span.partition("-")
    if not at or not file or not dash:
        raise InputError(f"--clip {text}: expected FILE@START-END, e.g. "
                         "clip.mp4@00:01:20-00:03:05")
    try:
        start, end = parse_time(start_s), parse_time(end_s)
    except ValueError as exc:
        raise InputError(f"--clip {text}: {exc}") from exc
    if end <= start:
        raise InputError(f"--clip {text}: the end {end_s} is not after the start {start_s}")
    return ClipSpec(text, file, start, end)


def show_time(t: Fraction) -> str:
    whole = math.floor(t)
    frac = t - whole
    out = f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"
    return out + (f"{float(frac):.3f}"[1:] if frac else "")


@dataclass(frozen=True, slots=True)
class StreamPackets:
    """One stream's catalog packet rows, in decode order (index i = packet_index i)."""

    index: int
    kind: str
    time_base: Fraction
    pts: list[int | None]
    duration: list[int]
    keyframe: list[bool]
    discard: list[bool]  # decoded but not shown (encoder priming before an edit list)


@dataclass(frozen=True, slots=True)
class ClipPlan:
    spec: ClipSpec
    number: int  # C01, C02, ...
    item: int  # the source's item number in the package
    source_path: str  # data/... of the original
    source_blake3: str
    path: str  # data/clips/... of the clip
    ranges: dict[int, tuple[int, int]]  # source stream -> first, last packet (inclusive)
    shift: dict[int, int]  # source stream -> ticks subtracted
    window_start: Fraction  # the keyframe's time, from the file's start
    keyframe: tuple[int, int]  # (stream, packet) the clip starts from
    kinds: dict[int, str]
    time_bases: dict[int, Fraction]

    @property
    def name(self) -> str:
        return f"C{self.number:02d}"

    @property
    def lineage_path(self) -> str:
        return f"{LINEAGE_DIR}/{self.name}.json"


def match_item(spec: ClipSpec, items: Sequence[tuple[int, str, str, str]]) -> int:
    """The item (number, data path, file name, BLAKE3) a clip's FILE names: its file name,
    its path in data/, or a BLAKE3 prefix of 8 or more hex digits."""
    f = spec.file
    hits = [n for n, path, name, b3 in items
            if f in (name, path, path.removeprefix("data/"))
            or (len(f) >= 8 and b3.startswith(f.lower()))]
    if not hits:
        names = ", ".join(name for _, _, name, _ in items)
        raise InputError(f"--clip {spec.text}: {f} is not a file of this export ({names})")
    if len(set(hits)) > 1:
        raise InputError(f"--clip {spec.text}: {f} names {len(set(hits))} files of this "
                         "export; give its BLAKE3 prefix")
    return hits[0]


def _t(pts: int, tb: Fraction) -> Fraction:
    return pts * tb


def plan_clip(
    spec: ClipSpec, number: int, item: int, source_path: str, source_blake3: str,
    streams: Sequence[StreamPackets],
) -> ClipPlan:
    """Which packets of which streams the clip copies (module doc); InputError naming the
    file when the times are outside its media or it has nothing to cut."""
    media = [s for s in streams if s.kind in ("video", "audio")
             and any(p is not None for p in s.pts)]
    if not media:
        raise InputError(f"--clip {spec.text}: {spec.file} has no audio or video packets")
    # the first time shown: packets marked discard (AAC priming) come before it
    origin = min(_t(p, s.time_base) for s in media
                 for p, x in zip(s.pts, s.discard, strict=True) if p is not None and not x)
    last = max(_t(p + d, s.time_base) for s in media
               for p, d in zip(s.pts, s.duration, strict=True) if p is not None)
    length = last - origin
    if spec.start >= length or spec.end > length:
        raise InputError(f"--clip {spec.text}: {show_time(spec.start)}-{show_time(spec.end)} "
                         f"is outside {spec.file}, whose media lasts {show_time(length)} "
                         f"({float(length):.3f} s)")
    ref = next((s for s in media if s.kind == "video"), media[0])
    start, end = origin + spec.start, origin + spec.end
    keys = [(_t(p, ref.time_base), i) for i, (p, k) in enumerate(zip(ref.pts, ref.keyframe,
                                                                     strict=True))
            if k and p is not None and _t(p, ref.time_base) <= start]
    if not keys:
        raise InputError(f"--clip {spec.text}: {spec.file} has no keyframe at or before "
                         f"{show_time(spec.start)}")
    t_key, k_index = max(keys)
    ranges: dict[int, tuple[int, int]] = {}
    tail = [i for i in range(k_index, len(ref.pts))
            if ref.pts[i] is not None and _t(ref.pts[i] or 0, ref.time_base) < end]
    ranges[ref.index] = (k_index, max(tail))
    for s in media:
        if s is ref:
            continue
        inside = [i for i, (p, d) in enumerate(zip(s.pts, s.duration, strict=True))
                  if p is not None and _t(p + d, s.time_base) > t_key
                  and _t(p, s.time_base) < end]
        if inside:
            ranges[s.index] = (min(inside), max(inside))
    shift = {s.index: math.floor(t_key / s.time_base) for s in media if s.index in ranges}
    stem, dot, ext = source_path.rsplit("/", 1)[-1].rpartition(".")
    stem = stem if dot else ext
    ext = f".{ext}" if dot else ".mp4"
    stamp = "-".join(show_time(t).replace(":", "") for t in (spec.start, spec.end))
    path = f"{CLIP_DIR}/C{number:02d}_{safe_name(stem)}_{stamp}{ext.lower()}"
    return ClipPlan(spec, number, item, source_path, source_blake3, path, ranges, shift,
                    t_key - origin, (ref.index, k_index),
                    {s.index: s.kind for s in media}, {s.index: s.time_base for s in media})


def cut(plan: ClipPlan, root: Path, *, tool: str) -> dict[str, Any]:
    """Make the clip under `root` from the checked original there; its lineage document.
    InputError if the muxer did not copy every packet's bytes unchanged."""
    from pipeline.media.probe.clip import packet_digests, remux, versions

    src, dest = root / plan.source_path, root / plan.path
    dest.parent.mkdir(parents=True, exist_ok=True)
    copied = remux(src, dest, plan.ranges, plan.shift)
    got = packet_digests(dest)
    order = sorted(plan.ranges)
    streams = []
    for clip_stream, s in enumerate(order):
        first, last = plan.ranges[s]
        want = copied[s]
        if len(want) != last - first + 1:
            raise InputError(f"{plan.spec.text}: {plan.source_path} gave {len(want)} packets of "
                             f"stream {s}, the catalog lists {last - first + 1} "
                             f"({first}-{last}); the file and the catalog disagree")
        mine = got.get(clip_stream)
        have = mine.packets if mine else []
        if [(d[2], d[3]) for d in have] != [(d[2], d[3]) for d in want]:
            pairs = enumerate(zip(have, want, strict=False))
            k = next((k for k, (a, b) in pairs if a[2:] != b[2:]), min(len(have), len(want)))
            raise InputError(
                f"{plan.spec.text}: the {dest.suffix} muxer did not copy packet {k} of stream "
                f"{s} unchanged (source packet {first + k}); no byte-exact clip of this "
                "format can be made")
        drift = retimed(have, [[first + k, *d] for k, d in enumerate(want)], plan.shift[s])
        if mine is not None and mine.time_base == plan.time_bases[s] and drift:
            raise InputError(f"{plan.spec.text}: the {dest.suffix} muxer moved the times of "
                             f"stream {s}: {drift}")
        streams.append({
            "clip_stream": clip_stream, "source_stream": s, "kind": plan.kinds[s],
            "time_base": str(plan.time_bases[s]), "first_packet": first, "last_packet": last,
            "packet_count": last - first + 1, "pts_shift": plan.shift[s],
            "packets": [[first + k, d[0], d[1], d[2], d[3]] for k, d in enumerate(want)],
        })
    return {
        "clip": plan.name, "path": plan.path, "derivative": True,
        "note_zh": NOTE_ZH, "note_en": NOTE_EN,
        "source": {"item": plan.item, "path": plan.source_path, "blake3": plan.source_blake3,
                   "packet_list": f"integrity/{plan.item:03d}/packets.csv"},
        "requested": {"spec": plan.spec.text, "start": show_time(plan.spec.start),
                      "end": show_time(plan.spec.end), "start_seconds": str(plan.spec.start),
                      "end_seconds": str(plan.spec.end)},
        "starts_at": {"time": show_time(plan.window_start),
                      "seconds": str(plan.window_start),
                      "keyframe_stream": plan.keyframe[0], "keyframe_packet": plan.keyframe[1]},
        "method": "stream copy, no re-encode; each stream's timestamps less pts_shift ticks",
        "tool": f"{tool}; {versions()}",
        "streams": streams,
    }


def retimed(have: Sequence[Any], listed: Sequence[Any], shift: int) -> str | None:
    """Where a clip stream's timestamps (`have`: pts, dts, ...) stop being the original's
    (`listed`: source packet, pts, dts, ...) less `shift` and one constant a muxer may add
    to them all (MPEG-TS keeps times non-negative so); None if they never do."""
    extra: int | None = None
    for k, (a, b) in enumerate(zip(have, listed, strict=False)):
        for name, mine, src in (("pts", a[0], b[1]), ("dts", a[1], b[2])):
            if mine is None or src is None:
                continue
            if extra is None:
                extra = mine - (src - shift)
            elif mine != src - shift + extra:
                return (f"packet {k}: {name} {mine}, but the original's {src} less the shift "
                        f"{shift} (and the muxer's {extra:+d} of packet 0) is "
                        f"{src - shift + extra}: retimed")
    return None


def packet_list_matches(doc: dict[str, Any], packet_list: dict[tuple[int, int], str]) -> bool:
    """Whether the original's packets.csv hashes the same bytes the demuxer gave (true
    where a packet's bytes lie at pos/size in the file, as in MP4; not in MPEG-TS)."""
    return all(packet_list.get((st["source_stream"], p[0])) == p[4]
               for st in doc["streams"] for p in st["packets"])
