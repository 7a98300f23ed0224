"""How long work reports its progress: one `Tick` per step, to a callback the driver owns.

Services (ingest, verify, export, the nightly job) call `progress(Tick(...))`; only the
CLI decides whether that becomes a progress bar (a terminal), nothing (a pipe, --quiet)
or a log line. Bytes are the weight: one 2 GB file is not one small photo.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Tick:
    """Where a long job is: items and bytes done of the totals, and what it works on now."""

    done_items: int
    total_items: int
    done_bytes: int
    total_bytes: int
    current: str = ""


Progress = Callable[[Tick], None]
