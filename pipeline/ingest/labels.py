"""AV-12 labels: case number, inspected entity, officers, device, activity, recording time.

A labels file is CSV (header row) or JSON (a list of objects, or an object with a
"recordings" list), in UTF-8 (with or without a BOM) or GB18030/GBK (what Excel on Chinese
Windows saves): UTF-8 is tried first (GBK text is almost never valid UTF-8, while UTF-8 text
often decodes as GB18030 into nonsense), and the run reports which was used. Files are
matched by the display form of their names (`pipeline.ingest.names`), so a GBK file name
on disk matches its Chinese name in the labels file. Columns / keys, English or Chinese:

| key               | 中文        | meaning                                               |
|-------------------|-------------|-------------------------------------------------------|
| file              | 文件        | file name, or path relative to the ingested folder    |
| case_number       | 案号        | case number                                           |
| inspected_entity  | 被检查单位  | name of the inspected entity                          |
| officer_ids       | 执法人员    | staff numbers, separated by ';' (or '、', ',')        |
| device_id         | 设备编号    | device serial or ID                                   |
| activity_type     | 执法类别    | AV-5 activity (English code or Chinese name)          |
| recorded_start    | 开始时间    | ISO 8601; without an offset, local time (+08:00)      |

A file that cannot be parsed at all (neither encoding, bad JSON, no file column) is an
`InputError` naming the file and the line (and byte offset, for an encoding error). A
row with a bad value still labels its recording with everything else, and the problem
becomes a LABEL_INVALID finding on that recording: footage is never held back for a typo.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import datetime as dt
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import InputError
from pipeline.ingest.names import display_path
from schemas.activities import normalise_activity

_ALIASES = {
    "file": "file", "文件": "file", "path": "file", "file_name": "file",
    "case_number": "case_number", "案号": "case_number",
    "inspected_entity": "inspected_entity", "被检查单位": "inspected_entity",
    "entity": "inspected_entity",
    "officer_ids": "officer_ids", "执法人员": "officer_ids", "officers": "officer_ids",
    "device_id": "device_id", "设备编号": "device_id", "device": "device_id",
    "activity_type": "activity_type", "执法类别": "activity_type", "activity": "activity_type",
    "recorded_start": "recorded_start", "开始时间": "recorded_start",
}

REQUIRED = ("case_number", "inspected_entity", "officer_ids", "recorded_start")


@dataclass(frozen=True, slots=True)
class Labels:
    source: str  # "labels.csv line 3"
    file: str
    case_number: str | None = None
    inspected_entity: str | None = None
    officer_ids: tuple[str, ...] = ()
    device_id: str | None = None
    activity_type: str | None = None
    recorded_start_utc: dt.datetime | None = None
    problems: tuple[str, ...] = ()

    def missing(self) -> list[str]:
        """Required AV-12 labels that are empty."""
        values = {
            "case_number": self.case_number,
            "inspected_entity": self.inspected_entity,
            "officer_ids": self.officer_ids,
            "recorded_start": self.recorded_start_utc,
        }
        return [k for k in REQUIRED if not values[k]]


def parse_time(text: str, default_offset: dt.timezone) -> dt.datetime:
    """ISO 8601 to UTC; a time without offset is taken in `default_offset`. A trailing
    "Z" or "z" is UTC (RFC 3339 allows both; `fromisoformat` reads only "Z")."""
    text = text.strip()
    if text.endswith("z"):
        text = text[:-1] + "Z"
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=default_offset)
    return value.astimezone(dt.UTC)


def _row_to_labels(
    row: Mapping[str, Any], where: str, default_offset: dt.timezone
) -> Labels:
    norm: dict[str, Any] = {}
    for key, value in row.items():
        if key is None:
            continue
        canon = _ALIASES.get(str(key).strip().lower(), _ALIASES.get(str(key).strip()))
        if canon is not None:
            norm[canon] = value
    file = str(norm.get("file") or "").strip()
    if not file:
        raise InputError(f"{where}: no file name in the 'file' column")
    problems: list[str] = []

    def text(name: str) -> str | None:
        v = norm.get(name)
        if v is None:
            return None
        s = str(v).strip()
        return s or None

    officers_raw = norm.get("officer_ids")
    if isinstance(officers_raw, list):
        officers = tuple(str(o).strip() for o in officers_raw if str(o).strip())
    else:
        officers = tuple(o for o in re.split(r"[;,、，；\s]+", officers_raw or "") if o)
    activity = text("activity_type")
    if activity is not None:
        try:
            activity = normalise_activity(activity)
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
            activity = None
    start: dt.datetime | None = None
    start_text = text("recorded_start")
    if start_text is not None:
        try:
            start = parse_time(start_text, default_offset)
        except ValueError:
            problems.append(
                f"{where}: recorded_start {start_text!r} is not an ISO 8601 time "
                "(e.g. 2026-11-27T09:30:00+08:00)"
            )
    return Labels(
        source=where,
        file=file,
        case_number=text("case_number"),
        inspected_entity=text("inspected_entity"),
        officer_ids=officers,
        device_id=text("device_id"),
        activity_type=activity,
        recorded_start_utc=start,
        problems=tuple(problems),
    )


ENCODINGS = ("utf-8-sig", "utf-8", "gb18030")


def decode_labels(data: bytes, name: str) -> tuple[str, str]:
    """(text, encoding): UTF-8 with a BOM, UTF-8, else GB18030 (which includes GBK). Neither:
    an InputError naming the line and byte offset where the better attempt stopped."""
    bom = data.startswith(codecs.BOM_UTF8)
    encodings = ("utf-8-sig",) if bom else ("utf-8", "gb18030")
    stops: list[int] = []  # byte offset in the file where each attempt stopped
    for encoding in encodings:
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError as exc:
            # utf-8-sig counts from after the BOM it skipped: the offset in the file is later
            stops.append(exc.start + (len(codecs.BOM_UTF8) if bom else 0))
    # The encoding that got further is the one the file was most likely meant to be in.
    start = max(stops)
    line = data.count(b"\n", 0, start) + 1
    bad = data[start:start + 4]
    tried = " or ".join("UTF-8" if e.startswith("utf") else "GB18030" for e in encodings)
    raise InputError(
        f"{name}: line {line}: labels file is not {tried} text (byte offset {start}: "
        f"{bad!r})"
    )


def _read_rows(path: Path) -> tuple[str, Iterable[tuple[str, Mapping[str, Any]]]]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read labels file: {exc.strerror}") from exc
    raw, encoding = decode_labels(data, str(path))
    return encoding, _rows(path, raw)


def _rows(path: Path, raw: str) -> Iterable[tuple[str, Mapping[str, Any]]]:
    if path.suffix.lower() == ".json" or raw.lstrip().startswith(("[", "{")):
        try:
            doc = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from exc
        items = doc.get("recordings") if isinstance(doc, dict) else doc
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise InputError(
                f"{path}: expected a JSON list of objects or {{\"recordings\": [...]}}"
            )
        for n, item in enumerate(items):
            yield f"{path.name} item {n + 1}", item
        return
    reader = csv.DictReader(raw.splitlines())
    fields = {(_ALIASES.get((f or "").strip().lower()) or _ALIASES.get((f or "").strip()))
              for f in reader.fieldnames or []}
    if "file" not in fields:
        raise InputError(
            f"{path}: line 1: the CSV header has no 'file' (文件) column; "
            f"found {reader.fieldnames}"
        )
    for row in reader:
        yield f"{path.name} line {reader.line_num}", row


class LabelBook:
    """All rows of a labels file, looked up by path or file name."""

    def __init__(self, rows: Iterable[Labels], encoding: str | None = None) -> None:
        self.by_key: dict[str, list[Labels]] = {}
        for row in rows:
            self.by_key.setdefault(_key(row.file), []).append(row)
        self.used: set[str] = set()
        self.encoding = encoding  # utf-8 | utf-8-sig | gb18030; None: no labels file

    @classmethod
    def load(
        cls, path: str | os.PathLike[str] | None, *, default_offset: dt.timezone
    ) -> LabelBook:
        if path is None:
            return cls([])
        p = Path(path)
        encoding, rows = _read_rows(p)
        return cls((_row_to_labels(row, where, default_offset) for where, row in rows),
                   encoding)

    def lookup(self, file: Path, root: Path | None) -> Labels | None:
        """Labels for `file`: by absolute path, path under `root`, then bare name, each in
        its display form."""
        keys = [_key(display_path(file.resolve().as_posix()))]
        if root is not None:
            with contextlib.suppress(ValueError):
                keys.append(_key(display_path(
                    file.resolve().relative_to(root.resolve()).as_posix())))
        keys.append(_key(display_path(file.name)))
        for key in keys:
            rows = self.by_key.get(key)
            if rows:
                self.used.add(key)
                if len(rows) > 1:
                    lines = ", ".join(r.source for r in rows)
                    first = rows[0]
                    return Labels(
                        **{**_as_dict(first), "problems": (
                            *first.problems,
                            f"{key!r} is labelled more than once ({lines}); the first is used",
                        )}
                    )
                return rows[0]
        return None

    def unused(self) -> list[str]:
        """Rows that matched no ingested file (likely a typo in the file column)."""
        return sorted(k for k in self.by_key if k not in self.used)


def _key(name: str) -> str:
    # Windows separators in a labels file; applied to both sides, so a name shown with
    # \\xNN escapes still matches itself.
    return name.replace("\\", "/")


def _as_dict(labels: Labels) -> dict[str, Any]:
    return {f: getattr(labels, f) for f in Labels.__slots__}
