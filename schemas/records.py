"""Catalog records: frozen dataclasses, and the one function that turns them into Arrow.

Every Parquet table of the catalog is one record type here. Units live in field names.
`arrow_schema(cls)` is the only place a column name is spelled for Arrow; DuckDB views
read these tables by the same names (see `schemas/views.py`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import types
import typing
from dataclasses import dataclass
from typing import Any, ClassVar

import pyarrow as pa

UTC = dt.UTC


@dataclass(frozen=True, slots=True)
class RecordingRecord:
    """One archived object (unique BLAKE3) as first seen, with its labels and metadata."""

    TABLE: ClassVar[str] = "recordings"
    blake3: str
    size_bytes: int
    source_path: str
    file_name: str
    media_kind: str  # video | audio | image
    container: str | None
    duration_seconds: float | None
    creation_time_utc: dt.datetime | None
    make: str | None
    model: str | None
    serial: str | None
    gps_iso6709: str | None
    case_number: str | None
    inspected_entity: str | None
    officer_ids: list[str]
    device_id: str | None
    activity_type: str | None
    recorded_start_utc: dt.datetime | None
    recorded_end_utc: dt.datetime | None
    recorded_time_source: str | None  # label | metadata
    ingested_at_utc: dt.datetime
    run_id: str
    store_uri: str
    store_key: str
    store_version: str | None
    retain_until_utc: dt.datetime | None
    chunk_size_bytes: int
    chunk_count: int
    tags_json: str
    # The exact bytes of the names (`source_path`, `file_name` are their display forms:
    # UTF-8, else GB18030, else \xNN escapes; see pipeline.ingest.names). Null in rows
    # written before names were kept as bytes.
    source_path_bytes: bytes | None = None
    file_name_bytes: bytes | None = None


@dataclass(frozen=True, slots=True)
class StreamRecord:
    TABLE: ClassVar[str] = "streams"
    recording_blake3: str
    stream_index: int
    kind: str  # video | audio | subtitle | data | attachment
    codec: str | None
    profile: str | None
    width: int | None
    height: int | None
    frame_rate_num: int | None
    frame_rate_den: int | None
    sample_rate: int | None
    channels: int | None
    time_base_num: int
    time_base_den: int
    start_pts: int | None
    duration_pts: int | None
    packet_count: int
    keyframe_count: int
    bit_rate: int | None
    tags_json: str


@dataclass(frozen=True, slots=True)
class ChunkRecord:
    TABLE: ClassVar[str] = "chunks"
    recording_blake3: str
    chunk_index: int
    offset_bytes: int
    length_bytes: int
    blake3: str


@dataclass(frozen=True, slots=True)
class PacketRecord:
    """One demuxed packet; the timelines table has one row per packet of every stream."""

    TABLE: ClassVar[str] = "packets"
    recording_blake3: str
    stream_index: int
    packet_index: int
    pts: int | None
    dts: int | None
    duration: int
    keyframe: bool
    discard: bool
    size_bytes: int
    pos_bytes: int | None


@dataclass(frozen=True, slots=True)
class FindingRecord:
    TABLE: ClassVar[str] = "findings"
    recording_blake3: str | None
    source_path: str
    run_id: str
    code: str
    rule: str
    category: str
    severity: str
    stream_index: int | None
    pts: int | None
    at_seconds: float | None
    title_en: str
    title_zh: str
    detail: str
    found_at_utc: dt.datetime
    # What the finding is about (schemas.media.Subject): recording, stream, case, ...
    subject_kind: str = "recording"
    subject_id: str | None = None
    source_path_bytes: bytes | None = None  # the exact name; source_path is its display form


@dataclass(frozen=True, slots=True)
class IngestRunRecord:
    """An ingest run's events: one row when it starts, one when it finishes."""

    TABLE: ClassVar[str] = "ingest_runs"
    run_id: str
    event: str  # started | finished
    at_utc: dt.datetime
    host: str
    tool_version: str
    sources: list[str]
    store_uri: str
    files_seen: int
    archived: int
    already_archived: int
    skipped: int
    failed: int
    # The store self-test before the run: passed | failed_overridden | not_tamper_proof
    store_selftest: str | None = None


@dataclass(frozen=True, slots=True)
class IngestFileRecord:
    """What one run did with one source file (archived, already_archived, skipped, failed)."""

    TABLE: ClassVar[str] = "ingest_files"
    run_id: str
    source_path: str
    status: str
    reason: str | None
    blake3: str | None
    size_bytes: int | None
    at_utc: dt.datetime
    source_path_bytes: bytes | None = None  # the exact name; source_path is its display form


@dataclass(frozen=True, slots=True)
class RetentionEventRecord:
    """A change of a recording's retention (AV-11, AV-13), as applied to the store."""

    TABLE: ClassVar[str] = "retention_events"
    recording_blake3: str
    tier: str
    retain_until_utc: dt.datetime
    legal_hold: bool
    case_number: str | None
    trigger: str | None
    reason: str | None
    actor: str | None
    at_utc: dt.datetime
    store_uri: str


@dataclass(frozen=True, slots=True)
class ExportEventRecord:
    """AV-14/AV-15: a release of footage outside, requested then approved by another person,
    then `made` into a package (its bag digest, kept copy and place; null on other events).
    A `made` row written before these fields existed carries them as JSON in `purpose`."""

    TABLE: ClassVar[str] = "export_events"
    export_id: str
    event: str  # requested | approved | made
    recording_blake3s: list[str]
    case_number: str | None
    recipient: str
    purpose: str
    actor: str
    at_utc: dt.datetime
    bag_sha512: str | None = None  # made: SHA-512 of the package's tagmanifest-sha512.txt
    kept_key: str | None = None  # made: the kept copy's index in the WORM store (AV-14)
    package_path: str | None = None  # made: where the package was written
    clip_count: int | None = None  # made: derived clips in the package


@dataclass(frozen=True, slots=True)
class CaseEventRecord:
    """One event of a case (案件), appended and never edited (schemas.cases.EVENTS).

    `opened` carries the case's type, entity, section and officers; `linked`/`unlinked` a
    recording (and its step); `document` an enforcement document (文书) with the times it
    states and its scan's BLAKE3; `trigger` an AV-13 event; `exempted` an AV-6 exemption
    (reason code, basis, author), `acknowledged` the chief's acknowledgement of one
    (`item_id`); `closed` the case file's retention term."""

    TABLE: ClassVar[str] = "case_events"
    case_number: str
    event: str
    at_utc: dt.datetime
    actor_id: str
    item_id: str | None = None  # document / exemption / event ID (the acknowledged one)
    case_type: str | None = None
    inspected_entity: str | None = None
    section: str | None = None
    officer_ids: list[str] = dataclasses.field(default_factory=list)
    recording_blake3: str | None = None
    step: str | None = None
    kind: str | None = None  # document kind, AV-13 trigger, AV-6 reason code
    start_utc: dt.datetime | None = None  # a document's stated start
    end_utc: dt.datetime | None = None
    file_blake3: str | None = None  # a document's scan in the store
    store_key: str | None = None
    text: str | None = None  # note, AV-6 basis, unlink reason
    author_id: str | None = None  # AV-6: who wrote the exemption record
    retain_until_utc: dt.datetime | None = None  # closed: the case file's retention end


@dataclass(frozen=True, slots=True)
class CaseLinkFoldRecord:
    """Derived, never committed by a batch: the link state of one (case, recording) pair,
    folded by a compaction from the `linked`/`unlinked` case events it read
    (`pipeline.catalog.compact`; the fold is `schemas.views.case_links_fold`). The
    `case_links_current` view merges it with the events committed after it, so a query
    does not group a year's links again. `custody verify` folds those events again and
    requires the same rows."""

    TABLE: ClassVar[str] = "case_links_folded"
    SOURCE: ClassVar[str] = "case_events"  # the table it is folded from
    case_number: str
    recording_blake3: str
    last_event: str  # linked / unlinked: the pair's latest event
    last_at_utc: dt.datetime
    step: str | None = None  # the step of the latest link that names one
    step_at_utc: dt.datetime | None = None
    linked_at_utc: dt.datetime | None = None  # the latest link


# Tables a compaction derives from committed ones (no batch writes them): read only as the
# latest compaction wrote them, never merged or carried by the next one, which derives
# them again.
DERIVED_TABLES: tuple[type[Any], ...] = (CaseLinkFoldRecord,)
UNFOLDED = "case_events_unfolded"  # the view of the case events no fold covers yet

TABLES: tuple[type[Any], ...] = (
    RecordingRecord,
    StreamRecord,
    ChunkRecord,
    PacketRecord,
    FindingRecord,
    IngestRunRecord,
    IngestFileRecord,
    RetentionEventRecord,
    ExportEventRecord,
    CaseEventRecord,
)


def table_name(cls: type[Any]) -> str:
    return str(cls.TABLE)


def _arrow_type(hint: Any) -> tuple[pa.DataType, bool]:
    """Arrow type and nullability of one annotated field type."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        (inner,) = args
        return _arrow_type(inner)[0], True
    if origin is list:
        (item,) = typing.get_args(hint)
        return pa.list_(_arrow_type(item)[0]), False
    simple: dict[Any, pa.DataType] = {
        int: pa.int64(),
        str: pa.string(),
        bytes: pa.binary(),
        float: pa.float64(),
        bool: pa.bool_(),
        dt.datetime: pa.timestamp("us", tz="UTC"),
    }
    return simple[hint], False


_SCHEMAS: dict[type[Any], pa.Schema] = {}


def arrow_schema(cls: type[Any]) -> pa.Schema:
    """The Arrow schema of a record type, derived from its annotations (once per type:
    resolving the annotations is most of the cost of turning a few rows into a table)."""
    schema = _SCHEMAS.get(cls)
    if schema is None:
        hints = typing.get_type_hints(cls)
        fields = []
        for f in dataclasses.fields(cls):
            typ, nullable = _arrow_type(hints[f.name])
            fields.append(pa.field(f.name, typ, nullable=nullable))
        schema = _SCHEMAS[cls] = pa.schema(fields)
    return schema


def to_table(cls: type[Any], rows: typing.Sequence[Any]) -> pa.Table:
    """Records of one type as an Arrow table with that type's schema."""
    schema = arrow_schema(cls)
    names = schema.names
    # One conversion of the rows as a struct array, not one per column: a file's one-row
    # tables (its recording, its findings) cost 2.5x less, which the committer pays per
    # file (0.25 -> 0.10 ms for a recording's 31 columns).
    rows_as = [tuple([getattr(r, n) for n in names]) for r in rows]
    return pa.Table.from_struct_array(pa.array(rows_as, type=pa.struct(schema)))


def ipc_bytes(table: pa.Table) -> pa.Buffer:
    """A table as one Arrow IPC stream (schema and batches), for another process."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def from_ipc_bytes(data: pa.Buffer | bytes) -> pa.Table:
    """The table `ipc_bytes` wrote."""
    return pa.ipc.open_stream(data).read_all()


def from_table(cls: type[Any], table: pa.Table) -> list[Any]:
    """Arrow rows back into records (for tests and small reads)."""
    names = [f.name for f in dataclasses.fields(cls)]
    return [cls(**{n: row[n] for n in names}) for row in table.select(names).to_pylist()]


# Staff and device events (issue 4), the nightly job's runs (issue 14). Imported last:
# neither module imports this one.
from schemas.nightly import NIGHTLY_TABLES  # noqa: E402
from schemas.people import PEOPLE_TABLES  # noqa: E402

TABLES = (*TABLES, *PEOPLE_TABLES, *NIGHTLY_TABLES)
