"""A file's catalog rows: recording, streams, chunks, packets (Arrow) and findings.

Packets go straight from the probe's int64 arrays to Arrow columns (tens of thousands of
rows per file, never a Python object each); the other tables are built from records.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from pipeline.ingest.labels import Labels
from pipeline.ingest.names import display_path, raw_bytes
from pipeline.integrity.hashing import FileDigest
from pipeline.rules import Span, as_utc
from pipeline.storage.base import PutResult
from schemas.media import NOPTS, Finding, ProbeResult, StreamTimeline, Subject
from schemas.records import (
    ChunkRecord,
    FindingRecord,
    PacketRecord,
    RecordingRecord,
    StreamRecord,
    arrow_schema,
    to_table,
)

Tables = tuple[tuple[type[Any], pa.Table], ...]


def duration_seconds(result: ProbeResult) -> float | None:
    """What the packets cover (the longest stream); the container's claim only as fallback."""
    best: Fraction | None = None
    for s in result.streams:
        ok = s.pts != NOPTS
        if not ok.any():
            continue
        pts = s.pts[ok]
        dur = s.duration[ok]
        span = Fraction(int((pts + dur).max() - pts.min())) * s.time_base
        best = span if best is None or span > best else best
    if best is None and result.duration is not None and result.error is None:
        best = result.duration
    return float(best) if best is not None else None


def media_tables(digest: FileDigest, result: ProbeResult) -> Tables:
    """The file's rows that depend neither on the store nor on other files: streams,
    chunks, packets."""
    b3 = digest.blake3
    out: list[tuple[type[Any], pa.Table]] = [
        (StreamRecord, to_table(StreamRecord, [_stream_record(b3, s) for s in result.streams])),
        (ChunkRecord, to_table(ChunkRecord, [
            ChunkRecord(b3, i, *digest.chunk_span(i), h) for i, h in enumerate(digest.chunks)
        ])),
    ]
    out += [(PacketRecord, _packet_table(b3, s)) for s in result.streams]
    return tuple(out)


def findings_table(
    b3: str, source_path: str, run_id: str, findings: Sequence[Finding], now: dt.datetime
) -> pa.Table:
    """Every finding of a recording; each is bound to it (or its stream) unless it is about
    something else (a device...), and every row names the recording (the source's display
    form and its exact bytes)."""
    shown, raw = display_path(source_path), raw_bytes(source_path)
    return to_table(FindingRecord, [
        FindingRecord(
            recording_blake3=b3, source_path=shown, source_path_bytes=raw, run_id=run_id,
            code=f.code,
            rule=f.rule, category=f.category, severity=f.severity,
            stream_index=f.stream_index, pts=f.pts, at_seconds=f.at_seconds,
            title_en=f.title_en, title_zh=f.title_zh, detail=f.detail, found_at_utc=now,
            subject_kind=f.subject.kind, subject_id=f.subject.id,
        )
        for f in (f.about(Subject("recording", b3)) for f in findings)
    ])


def recording_record(
    path: Path, digest: FileDigest, result: ProbeResult, labels: Labels | None, span: Span,
    *, now: dt.datetime, run_id: str, store_uri: str, put: PutResult, retain: dt.datetime,
) -> RecordingRecord:
    """The recording's row, with its AV-12 labels (None: the labels file did not name it).
    Names are kept as display forms and as their exact bytes (`pipeline.ingest.names`)."""
    resolved = path.resolve()
    return RecordingRecord(
        blake3=digest.blake3, size_bytes=digest.size_bytes,
        source_path=display_path(resolved), source_path_bytes=raw_bytes(resolved),
        file_name=display_path(path.name), file_name_bytes=raw_bytes(path.name),
        media_kind=result.media_kind or "unknown",
        container=result.container, duration_seconds=duration_seconds(result),
        creation_time_utc=as_utc(result.creation_time_utc), make=result.make,
        model=result.model, serial=result.serial, gps_iso6709=result.gps_iso6709,
        case_number=labels.case_number if labels else None,
        inspected_entity=labels.inspected_entity if labels else None,
        officer_ids=list(labels.officer_ids) if labels else [],
        device_id=labels.device_id if labels and labels.device_id else result.serial,
        activity_type=labels.activity_type if labels else None,
        recorded_start_utc=span.start_utc, recorded_end_utc=span.end_utc,
        recorded_time_source=span.source, ingested_at_utc=now, run_id=run_id,
        store_uri=store_uri, store_key=put.key, store_version=put.version,
        retain_until_utc=retain, chunk_size_bytes=digest.chunk_size_bytes,
        chunk_count=len(digest.chunks),
        tags_json=json.dumps(result.tags, ensure_ascii=False, sort_keys=True),
    )


def _stream_record(b3: str, s: StreamTimeline) -> StreamRecord:
    return StreamRecord(
        recording_blake3=b3, stream_index=s.index, kind=s.kind, codec=s.codec,
        profile=s.profile, width=s.width, height=s.height,
        frame_rate_num=s.frame_rate.numerator if s.frame_rate else None,
        frame_rate_den=s.frame_rate.denominator if s.frame_rate else None,
        sample_rate=s.sample_rate, channels=s.channels,
        time_base_num=s.time_base.numerator, time_base_den=s.time_base.denominator,
        start_pts=s.start_pts, duration_pts=s.duration_pts, packet_count=s.packet_count,
        keyframe_count=int(s.keyframe.sum()), bit_rate=s.bit_rate,
        tags_json=json.dumps(s.tags, ensure_ascii=False, sort_keys=True),
    )


def _nullable(values: np.ndarray[Any, Any]) -> pa.Array:
    return pa.array(values, type=pa.int64(), mask=values == NOPTS)


def _packet_table(b3: str, s: StreamTimeline) -> pa.Table:
    n = s.packet_count
    return pa.Table.from_arrays(
        [
            pa.array([b3] * n, type=pa.string()),
            pa.array(np.full(n, s.index, dtype=np.int64)),
            pa.array(np.arange(n, dtype=np.int64)),
            _nullable(s.pts),
            _nullable(s.dts),
            pa.array(s.duration.astype(np.int64)),
            pa.array(s.keyframe.astype(bool)),
            pa.array(s.discard.astype(bool)),
            pa.array(s.size.astype(np.int64)),
            _nullable(s.pos),
        ],
        schema=arrow_schema(PacketRecord),
    )
