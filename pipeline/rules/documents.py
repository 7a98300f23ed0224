"""AV-8: recordings against the times their enforcement documents (文书) state. Pure.

A document of a case belongs to a step; the recordings linked at that step, per device,
make one span (earliest start, latest end), compared with the document's start and end.
A camera whose clock is off shifts every one of its recordings by the same amount, so each
device's offset is estimated first, from all its documents: the median of its start and
end differences, taken as a clock offset when the device has two or more documents and the
median is beyond the tolerance. That is ONE `DEVICE_CLOCK_OFFSET`; what remains beyond the
tolerance after the offset is taken out is a `DOCUMENT_TIME_MISMATCH` per document.
The view `check_av8_documents` gives the same answer.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pipeline.rules.cases import CaseFile, LinkedRecording, required_steps, step_of
from schemas.cases import ChecklistStep
from schemas.media import Finding, Subject

DEFAULT_TOLERANCE = dt.timedelta(minutes=2)
NO_DEVICE = "(unknown device)"


@dataclass(frozen=True, slots=True)
class DocumentPair:
    """One document against the span of one device's recordings at its step."""

    case_number: str
    document_id: str
    device: str
    start_delta_s: float | None  # recording start - document start
    end_delta_s: float | None


def pairs(cases: Iterable[CaseFile], recordings: Mapping[str, LinkedRecording],
          checklist: tuple[ChecklistStep, ...]) -> list[DocumentPair]:
    out = []
    for c in sorted(cases, key=lambda c: c.case_number):
        steps = required_steps(c, checklist)
        for d in c.documents:
            if d.step is None or (d.start_utc is None and d.end_utc is None):
                continue
            spans: dict[str, list[LinkedRecording]] = {}
            for b3, st in c.links.items():
                r = recordings.get(b3)
                if r is None or r.start_utc is None or step_of(st, r, steps) != d.step:
                    continue
                spans.setdefault(r.device_id or NO_DEVICE, []).append(r)
            for device, recs in sorted(spans.items()):
                start = min(r.start_utc for r in recs if r.start_utc is not None)
                end = max((r.end_utc or r.start_utc) for r in recs if r.start_utc is not None)
                out.append(DocumentPair(
                    c.case_number, d.item_id, device,
                    (start - d.start_utc).total_seconds() if d.start_utc else None,
                    (end - d.end_utc).total_seconds() if d.end_utc else None))
    return out


def device_offsets(ps: Iterable[DocumentPair], tolerance: dt.timedelta) -> dict[str, float]:
    """Each device's constant clock offset in seconds (only devices that have one)."""
    by_device: dict[str, list[DocumentPair]] = {}
    for p in ps:
        by_device.setdefault(p.device, []).append(p)
    out = {}
    for device, group in by_device.items():
        deltas = [x for p in group for x in (p.start_delta_s, p.end_delta_s) if x is not None]
        docs = {(p.case_number, p.document_id) for p in group}
        if device == NO_DEVICE or len(docs) < 2 or not deltas:
            continue
        median = statistics.median(deltas)
        if abs(median) > tolerance.total_seconds():
            out[device] = median
    return out


def _fmt(seconds: float) -> str:
    sign = "-" if seconds < 0 else "+"
    m, s = divmod(round(abs(seconds)), 60)
    return f"{sign}{m} min {s} s"


def av8_documents(
    cases: Iterable[CaseFile], recordings: Mapping[str, LinkedRecording],
    checklist: tuple[ChecklistStep, ...], *, tolerance: dt.timedelta = DEFAULT_TOLERANCE,
) -> list[Finding]:
    """AV-8: one DEVICE_CLOCK_OFFSET per device off by a constant amount, then each
    document whose recordings still start or end beyond `tolerance` from its times."""
    ps = pairs(cases, recordings, checklist)
    offsets = device_offsets(ps, tolerance)
    tol = tolerance.total_seconds()
    out = [Finding(
        "DEVICE_CLOCK_OFFSET",
        f"device {device}: its recordings are {_fmt(off)} from the times of "
        f"{len({(p.case_number, p.document_id) for p in ps if p.device == device})} linked "
        "documents (one clock offset, taken out before comparing each document)",
        subject=Subject("device", device),
    ) for device, off in sorted(offsets.items())]
    for p in ps:
        off = offsets.get(p.device, 0.0)
        bad = [(what, x - off) for what, x in (("start", p.start_delta_s),
                                                ("end", p.end_delta_s))
               if x is not None and abs(x - off) > tol]
        if not bad:
            continue
        shown = ", ".join(f"{what} {_fmt(x)}" for what, x in bad)
        after = f" after the device's clock offset {_fmt(off)}" if off else ""
        out.append(Finding(
            "DOCUMENT_TIME_MISMATCH",
            f"case {p.case_number}, document {p.document_id}: recordings of {p.device} "
            f"differ from the document's times by {shown}{after} "
            f"(tolerance {tol / 60:g} min)",
            subject=Subject("case", p.case_number),
        ))
    return out
