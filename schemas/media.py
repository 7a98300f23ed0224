"""What the probe hands to pure analysis: per-stream timelines and what a file says of itself.

Timestamps stay integers in their stream's `time_base` (a Fraction). Missing values
(a packet without pts or dts, a packet without byte position) are `NOPTS`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from fractions import Fraction

import numpy as np
import numpy.typing as npt

from schemas.findings import finding_code

NOPTS: int = int(np.iinfo(np.int64).min)

I64 = npt.NDArray[np.int64]
Bool = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True, eq=False)
class StreamTimeline:
    """All demuxed packets of one stream, in file (demux) order, as parallel arrays."""

    index: int
    kind: str  # video | audio | subtitle | data | attachment
    codec: str | None
    time_base: Fraction
    pts: I64
    dts: I64
    duration: I64
    keyframe: Bool
    discard: Bool
    size: I64
    pos: I64
    # Declared properties of the stream (container/codec header).
    profile: str | None = None
    width: int | None = None
    height: int | None = None
    frame_rate: Fraction | None = None  # average/nominal frames per second, if declared
    sample_rate: int | None = None
    channels: int | None = None
    bit_rate: int | None = None
    start_pts: int | None = None
    duration_pts: int | None = None  # declared stream duration in time_base units
    tags: dict[str, str] = field(default_factory=dict)
    # Byte strings that identify the coding parameters (e.g. SPS/PPS) at each packet index
    # where they are first seen or change; analysis compares them.
    param_sets: tuple[tuple[int, bytes], ...] = ()
    # Encoder signature strings (e.g. x264 SEI) and the packet index where each was seen.
    encoder_signatures: tuple[tuple[int, str], ...] = ()

    @property
    def packet_count(self) -> int:
        return int(self.pts.shape[0])


@dataclass(frozen=True, slots=True)
class EditListEntry:
    """One ISO BMFF `elst` entry: segment_duration in movie timescale, media_time in media."""

    track_index: int
    segment_duration: int
    media_time: int  # -1 means an empty edit (a delay)
    movie_timescale: int
    media_timescale: int


@dataclass(frozen=True, slots=True, eq=False)
class ProbeResult:
    """Everything the probe learned of one file. `error` is set when it could not be opened."""

    path: str
    media_kind: str | None  # video | audio | image | None (could not tell)
    container: str | None
    duration: Fraction | None  # declared container duration in seconds
    start_time: Fraction | None  # container start time in seconds
    streams: tuple[StreamTimeline, ...]
    tags: dict[str, str]
    creation_time_utc: dt.datetime | None = None
    make: str | None = None
    model: str | None = None
    serial: str | None = None
    gps_iso6709: str | None = None
    edit_lists: tuple[EditListEntry, ...] = ()
    error: str | None = None  # could not open at all
    demux_errors: tuple[str, ...] = ()  # errors while reading packets
    truncated: str | None = None  # why the probe believes the file is truncated


SUBJECT_KINDS = ("recording", "stream", "object", "case", "person", "device", "package",
                 "audit_log", "store", "catalog")


@dataclass(frozen=True, slots=True)
class Subject:
    """What a finding is about: a recording (its BLAKE3), one of its streams, a stored
    object, a case (案号), a person (staff number), a device, an export package, the
    audit log, a store or the catalog. `id` None means "the file under analysis": pure
    analysis does not know the file's BLAKE3 yet, and ingest binds it (`Finding.about`)."""

    kind: str
    id: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in SUBJECT_KINDS:
            raise ValueError(f"unknown finding subject kind {self.kind!r}")


THIS_FILE = Subject("recording")


@dataclass(frozen=True, slots=True)
class Finding:
    """One observation about one subject. Title, rule and category come from the code.

    `stream_index`, `pts` and `at_seconds` place a finding inside a recording; findings
    about cases, people or packages leave them None."""

    code: str
    detail: str
    stream_index: int | None = None
    pts: int | None = None
    at_seconds: float | None = None
    subject: Subject = THIS_FILE

    def __post_init__(self) -> None:
        finding_code(self.code)  # unknown codes fail at creation, not in a report

    def about(self, subject: Subject) -> Finding:
        """This finding bound to a subject; a file-level finding keeps its stream."""
        if self.subject.id is not None:
            return self
        if self.stream_index is not None and subject.kind == "recording":
            subject = Subject("stream", f"{subject.id}#{self.stream_index}")
        return replace(self, subject=subject)

    @property
    def rule(self) -> str:
        return finding_code(self.code).rule

    @property
    def category(self) -> str:
        return str(finding_code(self.code).category)

    @property
    def severity(self) -> str:
        return str(finding_code(self.code).severity)

    @property
    def title_en(self) -> str:
        return finding_code(self.code).title_en

    @property
    def title_zh(self) -> str:
        return finding_code(self.code).title_zh
