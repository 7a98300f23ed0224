"""`custody verify PACKAGE`: the receiver's check of a package, with no catalog and no store.

Checks, naming every file, chunk and packet that differs:
- bagit.txt and bag-info.txt (Payload-Oxum: the payload's bytes and file count);
- every manifest (manifest-*.txt, sm3-manifest.txt): each listed file's digest, files
  listed but missing, payload files listed nowhere;
- the tag manifest(s): each tag file's digest;
- per item (integrity/NNN/): every chunk of chunks.csv and every packet of packets.csv
  against the payload file's bytes;
- the chain-of-custody excerpt (`excerpt.check_excerpt`);
- each derived clip against its lineage and its original (`lineage.check_clips`).
Each data file is mapped once; its manifest digests, chunks and packets all read the map.
The result is one `Verification` of kind `package` (findings FIXITY_MISMATCH for bytes,
AUDIT_CHAIN_BROKEN for the excerpt), each about `Subject("package", <path in the bag>)`.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import blake3

from pipeline.export import bag
from pipeline.export.copying import digest_views, mapped
from pipeline.export.excerpt import EXCERPT, check_excerpt
from pipeline.export.lineage import check_clips
from schemas.media import Finding, Subject
from schemas.verification import Verification

NOTE = ("every manifest, tag manifest, chunk and packet hash of the package recomputed from "
        "its files, each clip's packets against its lineage and its original, and the "
        "chain-of-custody excerpt's chain hashes and seals checked; "
        "proves the package is as it was made, not that nothing was left out of it")
_MAX_NAMED = 50  # per file and kind, the rest counted


def is_package(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() and (p / "bag-info.txt").is_file()


class _Report:
    def __init__(self) -> None:
        self.findings: list[Finding] = []
        self.checked = 0

    def bad(self, rel: str, detail: str, code: str = "FIXITY_MISMATCH") -> None:
        self.findings.append(Finding(code, f"{rel}: {detail}", subject=Subject("package", rel)))


def verify_package(path: str | Path) -> Verification:
    root = Path(path)
    rep = _Report()
    manifests = sorted(root.glob("manifest-*.txt"))
    if (root / bag.SM3_MANIFEST).is_file():
        manifests.append(root / bag.SM3_MANIFEST)
    if not (root / "bagit.txt").is_file():
        rep.bad("bagit.txt", "missing: not a BagIt bag")
    listed: dict[str, dict[str, str]] = {}  # payload path -> algorithm -> digest
    for m in manifests:
        alg = "sm3" if m.name == bag.SM3_MANIFEST else m.name[len("manifest-"):-len(".txt")]
        try:
            entries = bag.parse_manifest(m.read_bytes())
        except (ValueError, UnicodeDecodeError) as exc:
            rep.bad(m.name, f"unreadable manifest ({exc})")
            continue
        for rel, digest in entries:
            listed.setdefault(rel, {})[alg] = digest
    on_disk = {p.relative_to(root).as_posix() for p in (root / "data").rglob("*") if p.is_file()}
    for rel in sorted(set(listed) - on_disk):
        rep.bad(rel, "listed in the manifests but missing from the package")
    for rel in sorted(on_disk - set(listed)):
        rep.bad(rel, "in data/ but in no manifest (added after the package was made)")
    items = _items(root, rep)
    for rel in sorted(set(listed) & on_disk):
        rep.checked += 1
        with mapped(root / rel) as view:
            algs = [a for a in listed[rel] if a in bag.ALGORITHMS]
            got = digest_views(view, algs)
            for a in algs:
                if got[a] != listed[rel][a]:
                    rep.bad(rel, f"{bag.TITLES.get(a, a)} {got[a]} differs from "
                                 f"{bag.manifest_name(a)}'s {listed[rel][a]}")
            if rel in items:
                _check_item(root, rel, items[rel], view, rep)
    _check_oxum(root, on_disk, rep)
    for tm in sorted(root.glob("tagmanifest-*.txt")):
        _check_tags(root, tm, rep)
    if (root / EXCERPT).is_file():
        n, problems = check_excerpt((root / EXCERPT).read_bytes())
        rep.checked += n
        for p in problems:
            rep.bad(EXCERPT, f"line {p.line}: {p.detail}", "AUDIT_CHAIN_BROKEN")
    else:
        rep.bad(EXCERPT, "missing")
    rep.checked += check_clips(root, rep.bad)
    return Verification("package", Subject("package", str(root)), rep.checked,
                        tuple(rep.findings), NOTE)


def _items(root: Path, rep: _Report) -> dict[str, Path]:
    """payload path -> its integrity/NNN directory."""
    out = {}
    for item in sorted((root / "integrity").glob("*/item.json")):
        try:
            doc = json.loads(item.read_bytes())
            out[str(doc["path"])] = item.parent
        except (ValueError, KeyError) as exc:
            rep.bad(item.relative_to(root).as_posix(), f"unreadable ({exc})")
    return out


def _rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text("utf-8"))))


def _check_item(root: Path, rel: str, d: Path, view: memoryview, rep: _Report) -> None:
    size = len(view)
    bad_chunks = 0
    for c in _rows(d / "chunks.csv"):
        rep.checked += 1
        off, n = int(c["offset"]), int(c["length"])
        piece = view[off:off + n]
        if len(piece) != n or blake3.blake3(piece).hexdigest() != c["blake3"]:
            bad_chunks += 1
            if bad_chunks <= _MAX_NAMED:
                rep.bad(rel, f"chunk {c['chunk']} at byte offset {off}, length {n}, does not "
                             "match its BLAKE3 in the chunk table")
    if bad_chunks > _MAX_NAMED:
        rep.bad(rel, f"{bad_chunks - _MAX_NAMED} more chunks differ")
    bad_packets = 0
    for p in _rows(d / "packets.csv"):
        if not p["blake3"]:
            continue
        rep.checked += 1
        pos, n = int(p["pos"]), int(p["size"])
        piece = view[pos:pos + n] if pos + n <= size else view[0:0]
        if len(piece) != n or blake3.blake3(piece).hexdigest() != p["blake3"]:
            bad_packets += 1
            if bad_packets <= _MAX_NAMED:
                rep.bad(rel, f"packet {p['packet']} of stream {p['stream']} (pts {p['pts']}, "
                             f"dts {p['dts']}) at byte {pos}, {n} bytes, does not match its "
                             "BLAKE3 in the packet hash list")
    if bad_packets > _MAX_NAMED:
        rep.bad(rel, f"{bad_packets - _MAX_NAMED} more packets differ")


def _check_oxum(root: Path, on_disk: set[str], rep: _Report) -> None:
    info = bag.parse_bag_info((root / "bag-info.txt").read_bytes())
    oxum = info.get("Payload-Oxum")
    if not oxum:
        return
    got = f"{sum((root / r).stat().st_size for r in on_disk)}.{len(on_disk)}"
    if got != oxum:
        rep.bad("bag-info.txt", f"Payload-Oxum {oxum} but data/ holds {got} (bytes.files)")


def _check_tags(root: Path, tm: Path, rep: _Report) -> None:
    alg = tm.name[len("tagmanifest-"):-len(".txt")]
    try:
        entries = bag.parse_manifest(tm.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:
        rep.bad(tm.name, f"unreadable tag manifest ({exc})")
        return
    for rel, digest in entries:
        rep.checked += 1
        p = root / rel
        if not p.is_file():
            rep.bad(rel, f"listed in {tm.name} but missing")
            continue
        with mapped(p) as view:
            got = digest_views(view, [alg])[alg]
        if got != digest:
            rep.bad(rel, f"{bag.TITLES.get(alg, alg)} {got} differs from {tm.name}'s {digest}")
