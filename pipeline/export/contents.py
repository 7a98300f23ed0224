"""The package's tag files from what `make` gathered: the inventory (电子数据清单.csv), the
making record (复制说明.txt), each item's integrity/ files and the Chinese cover.

Pure formatting: rows in, bytes out (the cover through the autoescaped Jinja2 template in
`templates/`). Column meanings follow 法发〔2016〕22号 arts. 5 and 14: each item's type,
format and integrity values, and how, when and by whom the copy was made.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from pipeline.export.bag import TITLES

INVENTORY = "电子数据清单.csv"
MAKING_RECORD = "复制说明.txt"
COVER = "cover.html"
COVER_PDF = "cover.pdf"
CATEGORY_ZH = {"video": "视频", "audio": "音频", "image": "图片"}


@dataclass(slots=True)
class Item:
    """One original in the package: what the catalog says and what the copy computed."""

    item: int
    path: str  # data/...
    row: dict[str, Any]  # the catalog's recordings row
    chunks: list[dict[str, Any]]
    findings: list[dict[str, Any]] = field(default_factory=list)
    digests: dict[str, str] = field(default_factory=dict)
    packets: int = 0
    packets_without_pos: int = 0
    version: str | None = None

    @property
    def blake3(self) -> str:
        return str(self.row["blake3"])

    @property
    def integrity_dir(self) -> str:
        return f"integrity/{self.item:03d}"


@dataclass(frozen=True, slots=True)
class Clip:
    """A derived clip in the package (`pipeline.export.clips`): never an original."""

    name: str  # C01
    path: str  # data/clips/...
    source: Item
    requested: str  # 00:01:20-00:03:05
    starts_at: str  # the keyframe it starts from
    duration: str  # seconds, keyframe to requested end
    packets: str  # per stream: kind, source packet range, count
    lineage: str  # integrity/clips/C01.json
    size: int
    digests: dict[str, str]
    blake3: str


KIND_ZH = {"video": "视频", "audio": "音频"}


def clip_entry(doc: dict[str, Any], source: Item, size: int, digests: dict[str, str],
               b3: str, end: Fraction) -> Clip:
    """The inventory's view of a clip from its lineage document."""
    packets = "；".join(
        f"{KIND_ZH.get(st['kind'], st['kind'])} {st['kind']} #{st['source_stream']}: "
        f"{st['first_packet']}–{st['last_packet']} ({st['packet_count']})"
        for st in doc["streams"])
    dur = end - Fraction(doc["starts_at"]["seconds"])
    return Clip(doc["clip"], doc["path"], source,
                f"{doc['requested']['start']}–{doc['requested']['end']}",
                doc["starts_at"]["time"], f"{float(dur):.3f}", packets,
                f"integrity/clips/{doc['clip']}.json", size, digests, b3)


def _time(v: Any) -> str:
    if isinstance(v, dt.datetime):
        return v.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return "" if v is None else str(v)


def _recorded(row: dict[str, Any]) -> str:
    start, end = row.get("recorded_start_utc"), row.get("recorded_end_utc")
    if start and end:
        return f"{_time(start)} – {_time(end)}"
    return _time(start or row.get("creation_time_utc"))


def _format(row: dict[str, Any]) -> str:
    ext = str(row["file_name"]).rsplit(".", 1)[-1].upper() if "." in str(row["file_name"]) else ""
    container = str(row.get("container") or "").split(",")[0]  # FFmpeg's first name
    return " / ".join(x for x in (ext, container) if x)


def inventory_rows(items: Sequence[Item]) -> list[dict[str, Any]]:
    out = []
    for it in items:
        r = it.row
        dur = r.get("duration_seconds")
        out.append({
            "item": it.item, "path": it.path, "category": CATEGORY_ZH.get(r["media_kind"],
                                                                          r["media_kind"]),
            "format": _format(r), "size": r["size_bytes"],
            "duration": "" if dur is None else f"{dur:.3f}", "recorded": _recorded(r),
            "device": r.get("device_id") or "", "officers": "、".join(r.get("officer_ids") or []),
            "sha256": it.digests.get("sha256", ""), "sha512": it.digests.get("sha512", ""),
            "sm3": it.digests.get("sm3", ""), "blake3": it.blake3,
        })
    return out


_HEADER = ["序号", "文件名", "类别", "格式", "大小（字节）", "时长（秒）", "录制时间", "设备",
           "执法人员", "SHA-256", "SHA-512", "SM3", "BLAKE3"]


CLIP_CATEGORY = "派生片段（非原始）/ derived clip (not an original)"


def clip_rows(clips: Sequence[Clip]) -> list[dict[str, Any]]:
    out = []
    for c in clips:
        src = inventory_rows([c.source])[0]
        out.append({
            **src, "item": c.name, "path": c.path, "category": CLIP_CATEGORY,
            "size": c.size, "duration": c.duration,
            "recorded": f"取自第 {c.source.item} 项 {c.source.path} {c.requested}"
                        f"（自关键帧 {c.starts_at} 起）/ from item {c.source.item}, "
                        f"{c.requested}, from the keyframe at {c.starts_at}",
            "sha256": c.digests.get("sha256", ""), "sha512": c.digests.get("sha512", ""),
            "sm3": c.digests.get("sm3", ""), "blake3": c.blake3, "source_item": c.source.item,
            "requested": c.requested, "starts_at": c.starts_at, "packets": c.packets,
            "lineage": c.lineage,
        })
    return out


def inventory_csv(items: Sequence[Item], clips: Sequence[Clip] = ()) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(_HEADER)
    for r in [*inventory_rows(items), *clip_rows(clips)]:
        w.writerow([r["item"], r["path"].removeprefix("data/"), r["category"], r["format"],
                    r["size"], r["duration"], r["recorded"], r["device"], r["officers"],
                    r["sha256"], r["sha512"], r["sm3"], r["blake3"]])
    return buf.getvalue().encode("utf-8-sig")  # the BOM: spreadsheets read it as UTF-8


@dataclass(frozen=True, slots=True)
class Making:
    """Who made the package, when, from where, on whose approval."""

    export_id: str
    case_number: str | None
    recipient: str
    purpose: str
    requested_by: str
    approved_by: str
    made_by: str
    made_at: dt.datetime
    store_uri: str
    tool: str
    algorithms: tuple[str, ...]


def making_record(m: Making, items: Sequence[Item], clips: Sequence[Clip] = ()) -> bytes:
    lines = [
        "电子数据复制说明", "",
        f"移交编号：{m.export_id}",
        f"案号：{m.case_number or '（未关联案号）'}",
        f"接收单位：{m.recipient}",
        f"用途：{m.purpose}",
        f"申请人：{m.requested_by}",
        f"批准人：{m.approved_by}（与申请人不同，AV-15）",
        f"制作人：{m.made_by}",
        f"制作时间：{_time(m.made_at)}",
        f"制作工具：{m.tool}",
        f"来源存储：{m.store_uri}（一次写入存储，原始文件不可改写）",
        "",
        "制作方法：按存储版本读取每一原始文件，读取时逐块与入库时记录的 BLAKE3 值比对，"
        "全部一致后原样（逐字节）复制到 data/；同一次读取中计算 "
        + "、".join(TITLES.get(a, a) for a in m.algorithms) + " 校验值，写入 manifest 文件。"
        "未剪辑、未转码、未作任何改动。任何一块不一致即停止制作，不产生数据包。",
        "",
        "各文件来源：",
    ]
    for it in items:
        r = it.row
        lines.append(f"  {it.item}. {it.path}  存储对象 {r['store_key']}  版本（VersionId） "
                     f"{it.version or r.get('store_version') or '（本地存储，无版本号）'}  "
                     f"{r['size_bytes']} 字节，{len(it.chunks)} 块 × {r['chunk_size_bytes']} 字节"
                     f"，入库 {_time(r.get('ingested_at_utc'))}")
    if clips:
        lines += ["", "派生片段（非原始文件）/ Derived clips (not originals)：",
                  "  自原始文件的已校验副本按数据包原样复制（流复制，未重新编码），自起点处或之前的"
                  "关键帧开始；每一数据包的 BLAKE3 与原始文件相应数据包一致，见 integrity/clips/。",
                  "  Stream-copied from the checked copy of the original (no re-encode), from the "
                  "keyframe at or before the start; every packet's BLAKE3 equals the original's "
                  "(integrity/clips/)."]
        for c in clips:
            lines.append(f"  {c.name}. {c.path}  取自 / from {c.source.item}. {c.source.path} "
                         f"{c.requested}，自关键帧 / from the keyframe at {c.starts_at}；"
                         f"数据包 / packets {c.packets}；来源记录 / lineage {c.lineage}")
    return ("\n".join(lines) + "\n").encode()


def chunks_csv(it: Item) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["chunk", "offset", "length", "blake3"])
    for c in it.chunks:
        w.writerow([c["chunk_index"], c["offset_bytes"], c["length_bytes"], c["blake3"]])
    return buf.getvalue().encode()


def item_json(it: Item) -> bytes:
    r = it.row
    doc = {
        "item": it.item, "path": it.path, "file_name": r["file_name"], "blake3": it.blake3,
        "size_bytes": r["size_bytes"], "chunk_size_bytes": r["chunk_size_bytes"],
        "chunk_count": len(it.chunks), "store_key": r["store_key"],
        "store_version": it.version or r.get("store_version"),
        "packets": it.packets, "packets_without_pos": it.packets_without_pos,
        "digests": it.digests,
    }
    return json.dumps(doc, ensure_ascii=False, indent=1).encode() + b"\n"


def findings_json(it: Item) -> bytes:
    return json.dumps(it.findings, ensure_ascii=False, indent=1, default=_time).encode() + b"\n"


def cover_html(m: Making, items: Sequence[Item], clips: Sequence[Clip] = (), *,
               organization: str, recipient_zh: str) -> bytes:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pipeline.export", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined,
    )
    counts: Counter[tuple[int, str, str]] = Counter(
        (it.item, f["code"], f["title_zh"]) for it in items for f in it.findings)
    findings = [{"item": i, "code": c, "title_zh": t, "count": n}
                for (i, c, t), n in sorted(counts.items())]
    html = env.get_template("cover.html.j2").render(
        organization=organization, export_id=m.export_id, case_number=m.case_number,
        recipient=recipient_zh, purpose=m.purpose, requested_by=m.requested_by,
        approved_by=m.approved_by, made_by=m.made_by, made_at=_time(m.made_at), tool=m.tool,
        items=inventory_rows(items), store_uri=m.store_uri,
        chunk_size=items[0].row["chunk_size_bytes"] if items else 0,
        has_sm3="sm3" in m.algorithms, findings=findings, clips=clip_rows(clips),
    )
    return html.encode()


def cover_pdf(html: bytes) -> bytes:
    """The cover as PDF (WeasyPrint; the CJK text in Noto CJK, embedded)."""
    import logging

    import weasyprint

    logging.getLogger("fontTools").setLevel(logging.WARNING)  # subsetting chatter
    pdf: bytes = weasyprint.HTML(string=html.decode()).write_pdf()
    return pdf
