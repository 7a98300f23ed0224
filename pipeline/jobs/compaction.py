"""The nightly run's last step: the catalog compacted when enough small parts piled up.

A night commits a few dozen batches, each a small part per table it writes (issue 12:
a year leaves some 60,000 and every view opens each part's footer). At the end of a run,
under the nightly lock and after the ingest has let go of the catalog's ingest lock
(`catalog.core.exclusive`, which `compact` takes in turn: the two never overlap and
neither waits), the catalog is compacted (`pipeline.catalog.compact.compact`) when it is
due: when one table's view reads at least `compact_after_parts` parts under the target
size that a compaction would merge (`compact.plan`, the same rule `compact` follows).
Deciding reads only the commit list (no part is opened), so a night with nothing to do
costs next to nothing and leaves nothing in the audit log.

A compaction that fails (a part edited since its commit, a full disk, the ingest lock
taken by a hand-started ingest, the actor not allowed `catalog.compact`) changes nothing:
`compact` commits at the end or not at all. The night's files stay archived and
recorded; the outcome says `failed` with why, and the run exits 2 (the catalog needs a
person: the next night tries again, and fails again until someone acts).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.catalog.compact import DEFAULT_TARGET_BYTES, compact, plan
from pipeline.catalog.core import Catalog
from pipeline.errors import CustodyError

if TYPE_CHECKING:
    from pipeline.people.permissions import Authority

COMPACTED = "compacted"
NOT_DUE = "not due"
OFF = "off"
SKIPPED = "skipped"  # the run itself failed: its catalog is left as it is
FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Compaction:
    """What the end of a run did to the catalog's parts."""

    state: str  # compacted | not due | off | skipped | failed
    detail: str  # in words: what was merged, why not, or what went wrong
    parts_before: int | None = None  # parts the views read before (None: not looked)
    parts_after: int | None = None  # ... and after (the same when nothing was merged)
    most_small_parts: int | None = None  # the most mergeable parts of any one table
    compaction_id: str | None = None
    seconds: float = 0.0

    def as_json(self) -> dict[str, object]:
        return {"state": self.state, "detail": self.detail,
                "parts_before": self.parts_before, "parts_after": self.parts_after,
                "most_small_parts": self.most_small_parts,
                "compaction_id": self.compaction_id, "seconds": round(self.seconds, 3)}


def most_small_parts(catalog: Catalog, target_bytes: int = DEFAULT_TARGET_BYTES) -> tuple[
        int, int]:
    """(parts the views read now, the most parts under `target_bytes` of one table that
    a compaction would merge): read from the commit list alone."""
    parts = catalog.parts.current().parts
    merges, _ = plan(parts, target_bytes)
    return len(parts), max((len(m.parts) for m in merges), default=0)


def compact_if_due(
    catalog: Catalog, *, enabled: bool, after_parts: int, auth: Authority, actor: str,
    target_bytes: int = DEFAULT_TARGET_BYTES,
) -> Compaction:
    """Compact `catalog` as `actor` if it is due (module doc); never raises for what
    compaction itself can fail on."""
    if not enabled:
        return Compaction(OFF, "compaction is off (compact = false in [custody.nightly])")
    started = time.monotonic()
    before: int | None = None
    try:
        before, most = most_small_parts(catalog, target_bytes)
        if most < after_parts:
            return Compaction(
                NOT_DUE, f"not due: no table has {after_parts} small parts to merge "
                f"(compact_after_parts; at most {most})", before, before, most,
                seconds=time.monotonic() - started)
        result = compact(catalog, auth=auth, actor=actor, target_bytes=target_bytes)
        after = len(catalog.parts.current().parts)
    except (CustodyError, OSError) as exc:
        return Compaction(FAILED, f"compaction failed, the catalog is as it was: {exc}",
                          before, before, seconds=time.monotonic() - started)
    if not result.compacted:  # another compaction ran in between: nothing left to do
        return Compaction(NOT_DUE, result.summary(), before, after, most,
                          seconds=time.monotonic() - started)
    return Compaction(COMPACTED, result.summary(), before, after, most,
                      result.compaction_id, time.monotonic() - started)
