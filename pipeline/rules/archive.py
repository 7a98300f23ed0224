"""Rules that need what the archive already holds (ARCHIVE scope). Pure.

They run in the one committer, which knows the catalog before the run and every file the
run has archived so far.
"""

from __future__ import annotations

from pipeline.rules.base import Context, RecordingFacts
from schemas.media import Finding


def av15_name_reused(facts: RecordingFacts, ctx: Context) -> list[Finding]:
    """AV-15: a file name archived before with other content (an original replaced?).

    Both are kept; the finding names the earlier content by its BLAKE3 prefix."""
    if facts.blake3 is None:
        return []
    earlier = set(ctx.archived_names.get(facts.file_name, frozenset())) - {facts.blake3}
    if not earlier:
        return []
    return [Finding(
        "NAME_REUSED",
        f"{facts.file_name} was archived before with other content "
        f"(BLAKE3 {', '.join(sorted(e[:16] for e in earlier))}…); both are kept",
    )]
