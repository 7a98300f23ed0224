"""What a compliance rule is, and what it is given.

A rule is a pure function of a recording's facts and a `Context` (the time of the check,
the tolerances and a snapshot of the registries) that returns findings: it reads no
clock, no file and no catalog. Ingest builds the facts from a file's labels and metadata;
a compliance report can build the same facts from catalog records and run the same rule.

Scopes: a `FILE` rule needs only the recording and the registries, so it runs wherever
the file is processed (a worker); an `ARCHIVE` rule also needs what is archived already
(the catalog before the run plus the run so far), so it runs in the one committer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Protocol

from pipeline.rules.devices import DeviceIndex
from schemas.media import Finding

FILE = "file"
ARCHIVE = "archive"


class LabelRow(Protocol):
    """The AV-12 labels of one recording, as ingest's labels file gives them."""

    @property
    def source(self) -> str: ...  # "labels.csv line 3", named in findings
    @property
    def officer_ids(self) -> tuple[str, ...]: ...
    @property
    def device_id(self) -> str | None: ...
    @property
    def recorded_start_utc(self) -> dt.datetime | None: ...
    @property
    def problems(self) -> tuple[str, ...]: ...  # values that could not be parsed
    def missing(self) -> list[str]: ...  # required labels that are empty


@dataclass(frozen=True, slots=True)
class RecordingFacts:
    """What the rules look at in one recording."""

    file_name: str
    labels: LabelRow | None
    creation_time_utc: dt.datetime | None  # the file's metadata, any zone
    duration_seconds: float | None  # what its packets cover
    serial: str | None = None  # the device serial in the metadata
    blake3: str | None = None  # known once the file is hashed (ARCHIVE rules need it)

    @property
    def device_id(self) -> str | None:
        """The labelled device, else the serial the file names."""
        if self.labels is not None and self.labels.device_id:
            return self.labels.device_id
        return self.serial


@dataclass(frozen=True, slots=True)
class Context:
    """Everything a rule takes besides the recording; picklable, built by the caller."""

    now_utc: dt.datetime
    late_after: dt.timedelta = dt.timedelta(hours=24)  # AV-12
    clock_tolerance: dt.timedelta = dt.timedelta(minutes=10)  # AV-8
    staff_kinds: Mapping[str, str] = field(default_factory=dict)  # staff id -> kind
    devices: DeviceIndex = field(default_factory=DeviceIndex)
    labels_given: bool = False  # whether the run had a labels file at all
    # ARCHIVE scope: file name -> BLAKE3s already archived under that name.
    archived_names: Mapping[str, AbstractSet[str]] = field(default_factory=dict)


Check = Callable[[RecordingFacts, Context], list[Finding]]


@dataclass(frozen=True, slots=True)
class Rule:
    """One compliance rule: its ID in spec/RULES.md, the codes it may emit, its check."""

    rule_id: str
    codes: tuple[str, ...]
    check: Check
    scope: str = FILE
