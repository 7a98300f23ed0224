"""How a run's files are cut into tasks for workers in other processes: small files several
to a task, a large one alone, and enough tasks for every worker.

A task costs the driver, the transport and a worker a little each way whatever it holds
(pickling, a future, a wake-up): more than ingesting a photo. So a task holds up to
GROUP_FILES files and GROUP_BYTES bytes (a larger file goes alone), and a run is cut into
at least GROUPS_PER_THREAD tasks per worker thread, so no worker waits at the end. Used
by the cluster (`pipeline.jobs.cluster`) and the local pool (`pipeline.jobs.pool`).
"""

from __future__ import annotations

from collections.abc import Sequence

GROUP_FILES, GROUP_BYTES, GROUPS_PER_THREAD = 16, 64 << 20, 4


def groups(sizes: Sequence[int], threads: int, *, most_files: int = GROUP_FILES,
           most_bytes: int = GROUP_BYTES, per_thread: int = GROUPS_PER_THREAD,
           ) -> list[range]:
    """Consecutive index ranges of files of these sizes, each one task: at most
    `most_files` files and `most_bytes` bytes (a larger file alone), and small enough
    that there are about `per_thread` tasks for each of `threads` (none empty)."""
    cap = max(1, min(most_files, len(sizes) // max(1, threads * per_thread)))
    out: list[range] = []
    start, held = 0, 0
    for i, size in enumerate(sizes):
        if i > start and (i - start >= cap or held + size > most_bytes):
            out.append(range(start, i))
            start, held = i, 0
        held += size
    if start < len(sizes):
        out.append(range(start, len(sizes)))
    return out
