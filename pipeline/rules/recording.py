"""Rules over one recording's labels, times and device (AV-8, AV-10, AV-12, AUX-2/3). Pure.

Each check returns its findings in a fixed order; `pipeline.rules.RULES` runs them in the
order ingest has always reported them (labels, creation time, deadline, device).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pipeline.rules.base import Context, RecordingFacts
from pipeline.rules.devices import DEVICE_REGISTERED
from schemas.media import Finding, Subject


def as_utc(ts: dt.datetime | None) -> dt.datetime | None:
    """A metadata time in UTC; a naive one is taken as UTC (as MP4 stores it)."""
    if ts is None:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class Span:
    """When a recording was made, and where that came from: label | metadata | None."""

    start_utc: dt.datetime | None
    end_utc: dt.datetime | None
    source: str | None


def recorded_span(facts: RecordingFacts) -> Span:
    """The labelled start wins over the file's creation time; the end adds the duration."""
    label = facts.labels.recorded_start_utc if facts.labels else None
    meta = as_utc(facts.creation_time_utc)
    start, source = (label, "label") if label is not None else (meta, "metadata")
    if start is None:
        return Span(None, None, None)
    end = start
    if facts.duration_seconds is not None:
        end = start + dt.timedelta(seconds=facts.duration_seconds)
    return Span(start, end, source)


def av12_labels(facts: RecordingFacts, ctx: Context) -> list[Finding]:
    """AV-12: every recording is labelled (case number, entity, officers, time)."""
    labels = facts.labels
    if labels is None:
        return [Finding("LABEL_MISSING", "no row of the labels file names this file"
                        if ctx.labels_given else "ingested without a labels file")]
    return [Finding("LABEL_INVALID", p) for p in labels.problems]


def aux23_staff(facts: RecordingFacts, ctx: Context) -> list[Finding]:
    """AUX-2/3: labelled staff are registered, and not all of them auxiliary.

    Quiet while the personnel registry is empty (nothing to check against)."""
    labels = facts.labels
    if labels is None or not ctx.staff_kinds or not labels.officer_ids:
        return []
    out = []
    unknown = [o for o in labels.officer_ids if o not in ctx.staff_kinds]
    if unknown:
        out.append(Finding(
            "LABEL_INVALID",
            f"{labels.source}: {', '.join(unknown)} not in the personnel registry",
        ))
    if all(ctx.staff_kinds.get(o) == "auxiliary" for o in labels.officer_ids):
        out.append(Finding(
            "AUXILIARY_ONLY",
            f"{labels.source}: {', '.join(labels.officer_ids)} are all auxiliary "
            "staff; no certified officer is labelled on this recording",
        ))
    return out


def av12_complete(facts: RecordingFacts, ctx: Context) -> list[Finding]:
    """AV-12: no required label is empty."""
    if facts.labels is None:
        return []
    missing = facts.labels.missing()
    if not missing:
        return []
    return [Finding("LABEL_INCOMPLETE", f"{facts.labels.source}: empty {', '.join(missing)}")]


def av8_creation_time(facts: RecordingFacts, ctx: Context) -> list[Finding]:
    """AV-8: the labelled start agrees with the file's creation time.

    Cameras stamp either the start or the end of a recording as its creation time, so the
    tolerance is the clock tolerance plus the recording's duration."""
    label = facts.labels.recorded_start_utc if facts.labels else None
    meta = as_utc(facts.creation_time_utc)
    if label is None or meta is None:
        return []
    allowed = ctx.clock_tolerance + dt.timedelta(seconds=facts.duration_seconds or 0.0)
    apart = abs(meta - label)
    if apart <= allowed:
        return []
    return [Finding(
        "CREATION_TIME_MISMATCH",
        f"labelled start {label.isoformat()}, file creation time "
        f"{meta.isoformat()}: {apart.total_seconds():.0f} s apart",
    )]


def av12_deadline(facts: RecordingFacts, ctx: Context) -> list[Finding]:
    """AV-12: stored within 24 hours of the recording's end; a recording with no known
    time cannot be checked, and says so."""
    end = recorded_span(facts).end_utc
    if end is None:
        return [Finding(
            "RECORDING_TIME_UNKNOWN",
            "no recorded_start label and no creation time in the file's metadata",
        )]
    if ctx.now_utc - end <= ctx.late_after:
        return []
    hours = (ctx.now_utc - end).total_seconds() / 3600
    return [Finding(
        "INGEST_LATE",
        f"recording ended {end.isoformat()} and was stored {ctx.now_utc.isoformat()}, "
        f"{hours:.1f} h later (limit {ctx.late_after.total_seconds() / 3600:g} h)",
    )]


def av10_device(facts: RecordingFacts, ctx: Context) -> list[Finding]:
    """AV-10: once devices are registered, every recording comes from one of them.

    The finding is about the device when the recording names one."""
    if not len(ctx.devices):
        return []
    device = facts.device_id
    state = ctx.devices.classify(device)
    if state == DEVICE_REGISTERED:
        return []
    if not device:
        return [Finding("DEVICE_UNKNOWN",
                        "neither labels nor metadata name the recording device")]
    return [Finding(
        "DEVICE_UNKNOWN",
        f"device {device!r} is {state.replace('_', ' ')} in the device registry",
        subject=Subject("device", device),
    )]
