"""Damage: a file that cannot be opened, ends before its index says, or fails mid-demux.

The probe never raises for bad media; it records `error`, `truncated` and `demux_errors`,
and this check turns them into MEDIA_UNREADABLE, MEDIA_TRUNCATED and MEDIA_CORRUPT, each
quoting what FFmpeg or the box reader said. Damage proves the file is not whole; it
cannot say whether that came from the camera, the copy or a person. Pure.
"""

from __future__ import annotations

from fractions import Fraction

from pipeline.analysis.timeline import secs, span
from schemas.media import Finding, ProbeResult

__all__ = ["find_damage"]


def find_damage(result: ProbeResult) -> list[Finding]:
    out = []
    if result.error is not None:
        out.append(Finding("MEDIA_UNREADABLE", f"The file cannot be opened: {result.error}."))
    if result.truncated is not None:
        spans = [s for t in result.streams if (s := span(t)) is not None]
        covered = (max(b for _, b in spans) - min(a for a, _ in spans)) if spans else Fraction(0)
        declared = (
            f"; it declares {secs(result.duration)} s and its packets cover {secs(covered)} s"
            if result.duration is not None
            else ""
        )
        out.append(
            Finding("MEDIA_TRUNCATED", f"The file is cut short: {result.truncated}{declared}.")
        )
    if result.demux_errors:
        shown = "; ".join(result.demux_errors[:3])
        more = f" (and {len(result.demux_errors) - 3} more)" if len(result.demux_errors) > 3 else ""
        out.append(
            Finding(
                "MEDIA_CORRUPT",
                f"The demuxer reported {len(result.demux_errors)} error(s) while reading "
                f"packets: {shown}{more}.",
            )
        )
    return out
