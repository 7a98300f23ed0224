"""The receiver's check of a package's derived clips against their lineage (issue 13 item 5).

For each `integrity/clips/CNN.json` (`pipeline.export.clips`): the clip is demuxed and
each packet's BLAKE3 and size compared, stream by stream in decode order, with the
lineage's list; the lineage's source packets must be one unbroken run of the original's;
and each is compared with the original's own packet: by the original's packet hash list
(`integrity/NNN/packets.csv`, already checked against the original's bytes) where that
list hashes the same bytes the demuxer gives (MP4), else by demuxing the original in the
package. Where a clip stream's time base is the original's, each of its timestamps must be
the original's less the shift the lineage states (and one constant a muxer may add to
all). The first packet that differs is named per stream and check; a file in data/clips/
without a lineage is named too."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.errors import InputError
from pipeline.export.clips import CLIP_DIR, LINEAGE_DIR, retimed

Bad = Callable[[str, str], None]


def lineages(root: Path) -> list[Path]:
    return sorted((root / LINEAGE_DIR).glob("C*.json"))


def _packet_list(path: Path) -> dict[tuple[int, int], str]:
    rows = csv.DictReader(io.StringIO(path.read_text("utf-8")))
    return {(int(r["stream"]), int(r["packet"])): r["blake3"] for r in rows if r["blake3"]}


def _original(root: Path, doc: dict[str, Any]) -> dict[tuple[int, int], str] | None:
    from pipeline.export.clips import packet_list_matches
    from pipeline.media.probe.clip import packet_digests

    src = doc["source"]
    listed = root / str(src["packet_list"])
    if listed.is_file():
        packets = _packet_list(listed)
        if packet_list_matches(doc, packets):
            return packets
    original = root / str(src["path"])
    if not original.is_file():
        return None
    return {(s, i): d[3] for s, sd in packet_digests(original).items()
            for i, d in enumerate(sd.packets)}


def check_clips(root: Path, bad: Bad) -> int:
    """Check every clip of the package at `root` (module doc); how many packets checked."""
    checked = 0
    described = set()
    for lp in lineages(root):
        rel_l = lp.relative_to(root).as_posix()
        try:
            doc = json.loads(lp.read_bytes())
            clip = str(doc["path"])
            streams = list(doc["streams"])
        except (ValueError, KeyError, TypeError) as exc:
            bad(rel_l, f"unreadable lineage ({exc})")
            continue
        described.add(clip)
        checked += _check_one(root, doc, clip, streams, bad)
    clip_dir = root / CLIP_DIR
    if clip_dir.is_dir():
        for p in sorted(clip_dir.rglob("*")):
            rel = p.relative_to(root).as_posix()
            if p.is_file() and rel not in described:
                bad(rel, "a clip without a lineage file: its origin cannot be checked")
    return checked


def _check_one(root: Path, doc: dict[str, Any], clip: str, streams: list[Any], bad: Bad) -> int:
    from pipeline.media.probe.clip import packet_digests

    if not (root / clip).is_file():
        bad(clip, "named by its lineage but missing from the package")
        return 0
    try:
        got = packet_digests(root / clip)
    except InputError as exc:
        bad(clip, f"clip {doc.get('clip')}: {exc}")
        return 0
    source = str(doc["source"]["path"])
    _check_source(root, doc, clip, bad)
    original = _original(root, doc)
    if original is None:
        bad(clip, f"its original {source} is not in the package: checked against its "
                  "lineage only")
    checked = 0
    for st in streams:
        cs, ss = int(st["clip_stream"]), int(st["source_stream"])
        listed = st["packets"]
        mine = got.get(cs)
        have = mine.packets if mine else []
        checked += len(have)
        where = f"clip {doc['clip']} stream {cs}"
        for k, (a, b) in enumerate(zip(have, listed, strict=False)):
            if a[2] != b[3] or a[3] != b[4]:
                bad(clip, f"{where} packet {k} (pts {a[0]}, {a[2]} bytes, BLAKE3 {a[3][:16]}…) "
                          f"is not its lineage's: source packet {b[0]} of stream {ss} of "
                          f"{source} (pts {b[1]}, {b[3]} bytes, BLAKE3 {b[4][:16]}…)")
                break
        if len(have) != len(listed):
            bad(clip, f"{where} has {len(have)} packets, its lineage lists {len(listed)}")
        if [p[0] for p in listed] != list(range(int(st["first_packet"]),
                                               int(st["last_packet"]) + 1)):
            bad(clip, f"{where}: the lineage's source packets are not the unbroken run "
                      f"{st['first_packet']}-{st['last_packet']} of stream {ss}")
        if original is not None:
            for k, p in enumerate(listed):
                want = original.get((ss, int(p[0])))
                if want != p[4]:
                    bad(clip, f"{where} packet {k}: source packet {p[0]} of stream {ss} of "
                              f"{source} is {str(want)[:16]}…, not {str(p[4])[:16]}… as the "
                              "lineage says: the clip is not cut from this original")
                    break
        drift = retimed(have, listed, int(st["pts_shift"]))
        if mine is not None and str(mine.time_base) == str(st["time_base"]) and drift:
            bad(clip, f"{where} {drift}")
    extra = sorted(set(got) - {int(st["clip_stream"]) for st in streams})
    if extra:
        bad(clip, f"clip {doc['clip']}: streams {extra} are in no lineage")
    return checked


def _check_source(root: Path, doc: dict[str, Any], clip: str, bad: Bad) -> None:
    item = root / f"integrity/{int(doc['source']['item']):03d}/item.json"
    if not item.is_file():
        return
    it = json.loads(item.read_bytes())
    if it.get("blake3") != doc["source"]["blake3"] or it.get("path") != doc["source"]["path"]:
        bad(clip, f"clip {doc['clip']}: its lineage names source {doc['source']['path']} "
                  f"{str(doc['source']['blake3'])[:16]}…, the package's item "
                  f"{doc['source']['item']} is {it.get('path')} {str(it.get('blake3'))[:16]}…")
