"""`custody export make`: an approved export becomes a verified BagIt package (AV-14, AV-15).

1. Refuse (audited) unless the request is approved by someone other than its requester
   and the maker may release footage (AUX-10: never an auxiliary).
2. Build under `.<DIR>.partial-<id>` beside DIR: each original read once from the WORM
   store and copied with every chunk checked against the catalog's BLAKE3 and the manifest
   digests computed in the same pass (`copying.copy_checked`); a chunk that fails stops
   the export naming the file and chunk, and the partial directory is removed.
3. Per item, integrity/NNN/: item.json, findings.json, chunks.csv (the BLAKE3 chunk table)
   and packets.csv (stream, packet, pts, dts, size, pos, BLAKE3 of the packet's bytes, read
   by pos/size from the copy just verified chunk by chunk, i.e. the stored bytes; a packet
   without pos gets no hash and says so).
4. The audit log is sealed, and the items' records are excerpted with their chain hashes
   and the seals (`excerpt.py`).
5. Inventory, making record, cover (HTML, and PDF by WeasyPrint), bag-info, manifests
   and the tag manifest; bagit.txt last.
6. The kept copy (AV-14): every tag file, every clip, and an index naming them go into
   the WORM store with the longest retention and a legal hold; a `made` export event
   records the bag digest (SHA-512 of tagmanifest-sha512.txt) and the index's key; then
   DIR appears by one rename.

Derived clips (`clip_specs=`, `pipeline.export.clips`) are planned from the catalog's
packet rows before anything is made (a bad spec, a FILE not in the export or times outside
it are an InputError with nothing made), cut from the checked copies after step 2 into
data/clips/, each with its lineage in integrity/clips/, and listed in the manifests, the
inventory and the cover as derivatives.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import blake3

from pipeline import __version__
from pipeline.catalog.core import Catalog
from pipeline.durable import fsync_dir
from pipeline.errors import InputError
from pipeline.export import bag, behind, clips, contents
from pipeline.export.behind import Files
from pipeline.export.clips import ClipPlan, StreamPackets
from pipeline.export.contents import Clip, Item, Making
from pipeline.export.copying import ChunkMismatch, copy_checked, digest_bytes, mapped
from pipeline.export.excerpt import EXCERPT, build_excerpt
from pipeline.export.requests import RECIPIENTS, ExportState, export_state, record_made
from pipeline.people.permissions import Authority, PermissionDenied
from pipeline.storage.base import StoreError, WormStore
from schemas.audit import ALLOWED, REFUSED
from schemas.people import EXPORT_REQUEST
from schemas.retention import MAX_RETENTION

TAG_MANIFEST = "tagmanifest-sha512.txt"


@dataclass(frozen=True, slots=True)
class MadePackage:
    export_id: str
    path: Path
    items: int
    payload_bytes: int
    bag_digest: str  # SHA-512 of tagmanifest-sha512.txt
    kept_key: str  # the kept copy's index in the WORM store
    audit_records: int
    clips: tuple[str, ...] = ()  # data/clips/... of each derived clip


def _refusal(state: ExportState) -> str | None:
    if not state.approved_by:
        return (f"AV-15: {state.export_id} is not approved; footage is released only on an "
                "approval by someone other than the requester")
    if state.approved_by == state.requested_by:
        return (f"AV-15: {state.export_id} was approved by its own requester "
                f"{state.requested_by}; it needs a second, different person")
    return None


class _Reads:
    """make's catalog reads on one connection: each `Catalog.query` opens its own and
    builds every view again (a tenth of a second, several times per package)."""

    def __init__(self, catalog: Catalog) -> None:
        self._con = catalog.connect()

    def query(self, sql: str, params: Sequence[Any]) -> Any:
        return self._con.execute(sql, list(params)).to_arrow_table()

    def close(self) -> None:
        self._con.close()


def _rows(catalog: _Reads, blake3s: Sequence[str]) -> list[dict[str, Any]]:
    cols = ["file_name", "store_key", "store_version", "size_bytes", "chunk_size_bytes",
            "media_kind", "container", "duration_seconds", "creation_time_utc",
            "case_number", "officer_ids", "device_id", "recorded_start_utc",
            "recorded_end_utc", "ingested_at_utc"]
    sql = ("SELECT blake3, " + ", ".join(f"any_value({c}) AS {c}" for c in cols)
           + " FROM recordings WHERE list_contains(?, blake3) GROUP BY blake3")
    rows = {r["blake3"]: r for r in catalog.query(sql, [list(blake3s)]).to_pylist()}
    missing = [b for b in blake3s if b not in rows]
    if missing:
        raise InputError(f"recordings of the export not in the catalog: {', '.join(missing)}")
    out = [rows[b] for b in blake3s]
    out.sort(key=lambda r: (r["recorded_start_utc"] or r["creation_time_utc"]
                            or dt.datetime.min.replace(tzinfo=dt.UTC), r["file_name"]))
    return out


def _text(v: Any) -> str:
    return "" if v is None else str(v)


def _packet_rows(catalog: _Reads, it: Item) -> list[list[Any]]:
    table = catalog.query(
        "SELECT DISTINCT stream_index, packet_index, pts, dts, size_bytes, pos_bytes FROM "
        "packets WHERE recording_blake3 = ? ORDER BY stream_index, packet_index", [it.blake3])
    return [table.column(n).to_pylist() for n in
            ("stream_index", "packet_index", "pts", "dts", "size_bytes", "pos_bytes")]


def _packets(it: Item, copy: Path, cols: list[list[Any]]) -> bytes:
    """packets.csv of one item, each packet's bytes read by pos/size from the checked copy."""
    lines = ["stream,packet,pts,dts,size,pos,blake3,note"]
    with mapped(copy) as view:
        size = len(view)
        for s, i, pts, dts, n, pos in zip(*cols, strict=True):
            head = f"{s},{i},{_text(pts)},{_text(dts)},{n}"
            if pos is None or pos < 0 or pos + n > size:
                it.packets_without_pos += 1
                lines.append(f"{head},,,no pos: the demuxer did not place it in the file")
            else:
                lines.append(f"{head},{pos},{blake3.blake3(view[pos:pos + n]).hexdigest()},")
            it.packets += 1
    return ("\n".join(lines) + "\n").encode()


def _copy_item(store: WormStore, it: Item, files: Files, algorithms: Sequence[str]) -> None:
    r = it.row
    dest = files.root / it.path
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        it.version = store.head(r["store_key"]).version or r.get("store_version")
        with store.open(r["store_key"], verify=False) as src:
            res = copy_checked(src, dest, name=r["file_name"], key=r["store_key"],
                               chunk_size=int(r["chunk_size_bytes"]),
                               chunks=[c["blake3"] for c in it.chunks],
                               size_bytes=int(r["size_bytes"]), algorithms=algorithms,
                               fsync=False)
        files.sync(dest)  # behind: the disk writes while the rest is made
    except StoreError as exc:
        raise ChunkMismatch(f"{r['file_name']} ({r['store_key']}): cannot be read from the "
                            f"store: {exc}; the export stops") from exc
    it.digests = res.digests


def make_package(
    store: WormStore, catalog: Catalog, auth: Authority, actor: str, export_id: str,
    out: str | os.PathLike[str], *, now: dt.datetime,
    algorithms: Sequence[str] = bag.DEFAULT_ALGORITHMS, clip_specs: Sequence[str] = (),
) -> MadePackage:
    """Make the package of an approved export at `out` (module doc)."""
    algorithms = _algorithms(algorithms)
    specs = [clips.parse_clip(c) for c in clip_specs]
    out = Path(out).absolute()
    if out.exists():
        raise InputError(f"{out}: already exists; give a new directory for the package")
    if not out.parent.is_dir():
        raise InputError(f"{out.parent}: no such directory")
    reads = _Reads(catalog)
    try:
        state = export_state(reads, export_id)
        auth.authorize(actor, EXPORT_REQUEST, export_id, refusal=_refusal(state),
                       refusal_error=PermissionDenied)
        renderer = behind.CoverRenderer()
        items = _items(reads, state)
        try:
            plans = _plan_clips(reads, specs, items)
        except InputError as exc:
            auth.record(actor, EXPORT_REQUEST, export_id, REFUSED, f"export make stopped: {exc}")
            raise
    except BaseException:
        reads.close()
        raise
    tmp = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    files = behind.Files(tmp)
    try:
        made = _build(store, reads, auth, actor, state, files, items, plans, renderer,
                      now=now, algorithms=algorithms)
        reads.close()
        kept_key = _keep(store, tmp, state, made, now=now)
        record_made(catalog, state, actor, now=now, bag_digest=made[0], kept_key=kept_key,
                    out=str(out), clips=len(plans))
        auth.record(actor, EXPORT_REQUEST, export_id, ALLOWED,
                    f"export make: package {out.name} made, {made[1]} items, {made[2]} bytes, "
                    f"{len(plans)} derived clips, bag SHA-512 {made[0]}, kept copy {kept_key}")
        files.wait()
        for d in sorted({p.parent for p in tmp.rglob("*")}, key=lambda p: -len(p.parts)):
            fsync_dir(d)  # every entry durable before the package appears
        os.rename(tmp, out)
        fsync_dir(out.parent)
    except (ChunkMismatch, InputError) as exc:  # a bad chunk, a clip no muxer copies exactly
        files.close()
        shutil.rmtree(tmp, ignore_errors=True)
        auth.record(actor, EXPORT_REQUEST, export_id, REFUSED, f"export make stopped: {exc}")
        raise
    except BaseException:
        files.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        reads.close()
    files.close()
    return MadePackage(export_id, out, made[1], made[2], made[0], kept_key, made[3],
                       tuple(p.path for p in plans))


def _algorithms(algorithms: Sequence[str]) -> tuple[str, ...]:
    algs = tuple(dict.fromkeys(a.strip().lower() for a in algorithms if a.strip()))
    bad = [a for a in algs if a not in bag.ALGORITHMS]
    if bad:
        raise InputError(f"--digest {','.join(bad)}: expected some of "
                         f"{','.join(bag.ALGORITHMS)}")
    if not any(a in algs for a in ("sha512", "sha256")):
        raise InputError("--digest needs sha512 or sha256 (BagIt validators read those)")
    return algs


def _items(catalog: _Reads, state: ExportState) -> list[Item]:
    rows = _rows(catalog, state.recordings)
    paths = bag.payload_paths(r["file_name"] for r in rows)
    items = []
    for n, (row, path) in enumerate(zip(rows, paths, strict=True), 1):
        chunks = catalog.query(
            "SELECT DISTINCT chunk_index, offset_bytes, length_bytes, blake3 FROM chunks "
            "WHERE recording_blake3 = ? ORDER BY chunk_index", [row["blake3"]]).to_pylist()
        findings = catalog.query(
            "SELECT DISTINCT code, rule, severity, stream_index, pts, at_seconds, title_en, "
            "title_zh, detail FROM findings WHERE recording_blake3 = ? "
            "ORDER BY at_seconds NULLS FIRST, code", [row["blake3"]]).to_pylist()
        items.append(Item(n, path, row, chunks, findings))
    return items


def _plan_clips(catalog: _Reads, specs: Sequence[clips.ClipSpec],
                items: Sequence[Item]) -> list[ClipPlan]:
    if not specs:
        return []
    if any(it.path == clips.CLIP_DIR for it in items):
        raise InputError(f"an original of the export is named {clips.CLIP_DIR}, where the "
                         "clips go; make the package without --clip")
    keys = [(it.item, it.path, str(it.row["file_name"]), it.blake3) for it in items]
    plans = []
    for n, spec in enumerate(specs, 1):
        it = items[clips.match_item(spec, keys) - 1]
        plans.append(clips.plan_clip(spec, n, it.item, it.path, it.blake3,
                                     _stream_packets(catalog, it.blake3)))
    return plans


def _stream_packets(catalog: _Reads, b3: str) -> list[StreamPackets]:
    streams = catalog.query(
        "SELECT DISTINCT stream_index, kind, time_base_num, time_base_den FROM streams "
        "WHERE recording_blake3 = ? ORDER BY stream_index", [b3]).to_pylist()
    out = []
    for s in streams:
        t = catalog.query(
            "SELECT DISTINCT packet_index, pts, duration, keyframe, discard FROM packets WHERE "
            "recording_blake3 = ? AND stream_index = ? ORDER BY packet_index",
            [b3, s["stream_index"]])
        out.append(StreamPackets(
            s["stream_index"], s["kind"], Fraction(s["time_base_num"], s["time_base_den"]),
            t.column("pts").to_pylist(), t.column("duration").to_pylist(),
            t.column("keyframe").to_pylist(), t.column("discard").to_pylist()))
    return out


def _cut(files: Files, plan: ClipPlan, items: Sequence[Item],
         algorithms: Sequence[str]) -> Clip:
    doc = clips.cut(plan, files.root, tool=f"custody {__version__}")
    data = (files.root / plan.path).read_bytes()
    files.sync(files.root / plan.path)
    files.write(plan.lineage_path,
                json.dumps(doc, ensure_ascii=False, indent=1).encode() + b"\n")
    return contents.clip_entry(doc, items[plan.item - 1], len(data),
                               digest_bytes(data, algorithms),
                               blake3.blake3(data).hexdigest(), plan.spec.end)


def _build(
    store: WormStore, catalog: _Reads, auth: Authority, actor: str, state: ExportState,
    files: Files, items: Sequence[Item], plans: Sequence[ClipPlan],
    renderer: behind.CoverRenderer, *, now: dt.datetime, algorithms: Sequence[str],
) -> tuple[str, int, int, int]:
    root = files.root
    for it in items:
        _copy_item(store, it, files, algorithms)
    cut = [_cut(files, plan, items, algorithms) for plan in plans]
    # The cover needs only the digests: rendered in the worker from here on
    recipient = f"{RECIPIENTS.get(state.recipient, state.recipient)}（{state.recipient}）"
    making = Making(state.export_id, state.case_number, recipient, state.purpose,
                    state.requested_by, state.approved_by or "", actor, now, store.uri,
                    f"custody {__version__}", tuple(algorithms))
    cover = contents.cover_html(making, items, cut, organization=bag.SOURCE_ORGANIZATION,
                                recipient_zh=RECIPIENTS.get(state.recipient, state.recipient))
    pdf = renderer.render(cover)
    files.write(contents.COVER, cover)
    # packet hashing holds the GIL (small inputs): its own thread, beside the audit work
    lane = ThreadPoolExecutor(1, "export-packets")
    try:
        lists = [lane.submit(_packets, it, root / it.path, _packet_rows(catalog, it))
                 for it in items]
        records = _tag_files(store, auth, state, files, items, cut, making, algorithms, now)
        for it, fut in zip(items, lists, strict=True):
            d = it.integrity_dir
            files.write(f"{d}/packets.csv", fut.result())
            files.write(f"{d}/chunks.csv", contents.chunks_csv(it))
            files.write(f"{d}/findings.json", contents.findings_json(it))
            files.write(f"{d}/item.json", contents.item_json(it))
    finally:
        lane.shutdown(wait=True, cancel_futures=True)
    files.write(contents.COVER_PDF, renderer.result(pdf, cover))
    tags = sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                  if p.is_file() and not p.relative_to(root).as_posix().startswith("data/"))
    tagmanifest = bag.manifest(
        (t, digest_bytes((root / t).read_bytes(), ["sha512"])["sha512"]) for t in tags)
    files.write(TAG_MANIFEST, tagmanifest)
    payload = sum(int(it.row["size_bytes"]) for it in items) + sum(c.size for c in cut)
    return digest_bytes(tagmanifest, ["sha512"])["sha512"], len(items), payload, records


def _tag_files(
    store: WormStore, auth: Authority, state: ExportState, files: Files,
    items: Sequence[Item], cut: Sequence[Clip], making: Making, algorithms: Sequence[str],
    now: dt.datetime,
) -> int:
    """The excerpt, inventory, making record, bag-info and manifests; the excerpt's
    record count."""
    auth.audit.seal()
    objects = {state.export_id, *(it.row["store_key"] for it in items)}

    def read_sealed(seal: Any) -> bytes:
        with store.open(seal.key) as fh:
            data: bytes = fh.read()
            return data

    excerpt, records = build_excerpt(auth.audit.root, read_sealed, objects)
    files.write(EXCERPT, excerpt)
    files.write(contents.INVENTORY, contents.inventory_csv(items, cut))
    files.write(contents.MAKING_RECORD, contents.making_record(making, items, cut))
    payload = sum(int(it.row["size_bytes"]) for it in items) + sum(c.size for c in cut)
    files.write("bag-info.txt", bag.bag_info(
        export_id=state.export_id, bagging_date=now.date(), payload_bytes=payload,
        payload_files=len(items) + len(cut), case_number=state.case_number,
        recipient=RECIPIENTS.get(state.recipient, state.recipient),
        tool=f"custody {__version__}"))
    for a in algorithms:
        files.write(bag.manifest_name(a), bag.manifest(
            [(it.path, it.digests[a]) for it in items] + [(c.path, c.digests[a]) for c in cut]))
    files.write("bagit.txt", bag.BAGIT_TXT)
    return records


def _put(store: WormStore, data: bytes, until: dt.datetime) -> str:
    staged = store.stage(len(data))
    try:
        staged.write(data)
        key = staged.commit(blake3.blake3(data).hexdigest(), retain_until_utc=until).key
    except BaseException:
        staged.abort()
        raise
    store.set_legal_hold(key, True)
    return key


def _keep(store: WormStore, root: Path, state: ExportState, made: tuple[str, int, int, int],
          *, now: dt.datetime) -> str:
    """AV-14: the tag files and clips (not the originals, stored already) kept at
    `permanent`."""
    until = now + MAX_RETENTION
    kept = [p.relative_to(root).as_posix() for p in sorted(root.rglob("*")) if p.is_file()]
    kept = [r for r in kept if not r.startswith("data/") or r.startswith(clips.CLIP_DIR + "/")]
    # each put waits on the store (fsyncs, or a round trip): several at once
    with ThreadPoolExecutor(4, "export-keep") as pool:
        keys = dict(zip(kept, pool.map(lambda r: _put(store, (root / r).read_bytes(), until),
                                       kept), strict=True))
    files = {r: k for r, k in keys.items() if not r.startswith("data/")}
    cut = {r: k for r, k in keys.items() if r.startswith("data/")}
    index = {"export_id": state.export_id, "case_number": state.case_number,
             "bag_sha512": made[0], "items": made[1], "payload_bytes": made[2],
             "recordings": list(state.recordings), "tier": "permanent",
             "made_at_utc": now.astimezone(dt.UTC).isoformat(), "tag_files": files,
             "clips": cut}
    return _put(store, json.dumps(index, ensure_ascii=False, sort_keys=True).encode(), until)
