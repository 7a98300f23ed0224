"""Sessions: consecutive files of one device in one enforcement activity (AV-9).

Body cameras split a recording into fixed-length files; the next file starts where the
last one ended. A later start is an interruption between files, just as a gap inside a
file is. Pure: takes the recording intervals and the tolerances, returns findings.

Two files belong to one session when they come from the same device, are not labelled
with different case numbers, and the second starts no more than `session_gap_max` after
the first ends (a longer pause is a new activity, not an interruption). Within a session
a start later than the previous end by more than `tolerance` (file timestamps are whole
seconds on most cameras) is `GAP_BETWEEN_FILES`.

What it cannot prove: recording times come from labels or the device clock, so a wrong
label or a drifting clock shows as a gap (or hides one). Files without a device or a time
are not judged.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from schemas.media import Finding


@dataclass(frozen=True, slots=True)
class Interval:
    file_name: str
    device_id: str | None
    case_number: str | None
    start_utc: dt.datetime | None
    end_utc: dt.datetime | None


@dataclass(frozen=True, slots=True)
class SessionTolerances:
    tolerance: dt.timedelta = dt.timedelta(seconds=2)
    session_gap_max: dt.timedelta = dt.timedelta(minutes=10)


def _same_session(a: Interval, b: Interval) -> bool:
    return a.device_id == b.device_id and (
        a.case_number is None or b.case_number is None or a.case_number == b.case_number
    )


def gaps_around(
    new: Interval, others: Iterable[Interval], tol: SessionTolerances = SessionTolerances()
) -> list[Finding]:
    """Findings for the interruption before and after `new` within its session."""
    if new.device_id is None or new.start_utc is None or new.end_utc is None:
        return []
    peers = [
        (o, o.start_utc, o.end_utc) for o in others
        if o.start_utc is not None and o.end_utc is not None and _same_session(new, o)
    ]
    earlier = [(e, o) for o, s, e in peers
               if e <= new.start_utc + tol.tolerance and s < new.start_utc]
    later = [(s, o) for o, s, _ in peers
             if s >= new.end_utc - tol.tolerance and s > new.start_utc]
    before = max(earlier, key=lambda eo: eo[0])[1] if earlier else None
    after = min(later, key=lambda so: so[0])[1] if later else None
    pairs = [(before, new), (new, after)]
    return [f for a, b in pairs if a is not None and b is not None
            if (f := _gap(a, b, tol)) is not None]


def _gap(first: Interval, second: Interval, tol: SessionTolerances) -> Finding | None:
    """The interruption between `first` ending and `second` starting, if it is one."""
    assert first.end_utc is not None and second.start_utc is not None
    gap = second.start_utc - first.end_utc
    if not tol.tolerance < gap <= tol.session_gap_max:
        return None
    return Finding(
        "GAP_BETWEEN_FILES",
        f"Device {second.device_id}: {second.file_name} starts {gap.total_seconds():.1f} s "
        f"after {first.file_name} ended ({first.end_utc.isoformat()} -> "
        f"{second.start_utc.isoformat()}).",
    )
