"""S3 inbox sources of the nightly job: fetched into a local spool, ingested as a folder.

For each `s3://bucket/prefix/` source, every object not yet tagged archived is copied into
`<spool>/files/<bucket>/<prefix>/` (`pipeline.storage.inbox`; partial copies and the
ETags they were read at under `<spool>/work/`, never listed), its labels files among them (by
the source's pattern, matched against the key below the prefix). The spool folder is then
an ordinary source of the ingest. After the commit and the read-back of its archived copy
(`settle.py`), the inbox object is tagged archived (or copied to the done prefix and
tagged) and its spool copy removed; it is never deleted from the inbox.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import CustodyError
from pipeline.ingest.outcome import FAILED, FileOutcome
from pipeline.jobs.config import NightlySource
from pipeline.storage.inbox import InboxObject, S3Inbox, matches


@dataclass(slots=True)
class Fetched:
    """One inbox, fetched: the spool folder, and which inbox object each spool file is."""

    source: NightlySource
    inbox: S3Inbox
    spool: Path
    work: Path
    labels: list[str] = field(default_factory=list)
    objects: dict[str, InboxObject] = field(default_factory=dict)  # spool path -> object
    failed: list[FileOutcome] = field(default_factory=list)  # objects that could not be read

    def settle_one(self, path: str, blake3_hex: str) -> str | None:
        """Mark the inbox object of a verified spool file archived; None, or why not."""
        obj = self.objects[path]
        try:
            self.inbox.mark_archived(obj, blake3_hex, self.source.done)
        except CustodyError as exc:
            return f"s3://{self.inbox.bucket}/{obj.key}: not marked archived: {exc}"
        for p in (Path(path), self.work / (obj.relative + ".etag")):
            with contextlib.suppress(OSError):
                p.unlink()
        return None


def spool_for(spool_root: Path, uri: str) -> tuple[Path, Path]:
    """(the folder that is ingested, the work folder beside it) of one inbox."""
    where = uri.removeprefix("s3://").strip("/")
    return spool_root / "files" / where, spool_root / "work" / where


def fetch(src: NightlySource, spool_root: Path, env: Mapping[str, str]) -> Fetched:
    """Every pending object of the inbox `src` names, into its spool folder. A listing
    that fails raises (the run itself fails); an object that cannot be read is `failed`."""
    inbox = S3Inbox.open(src.path, env)
    spool, work = spool_for(spool_root, src.path)
    spool.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    got = Fetched(src, inbox, spool, work)
    for obj in inbox.pending():
        where = f"s3://{inbox.bucket}/{obj.key}"
        try:
            local = inbox.fetch(obj, spool, work)
        except CustodyError as exc:
            got.failed.append(FileOutcome(where, FAILED, reason=f"{where}: {exc}"))
            continue
        if matches(obj.relative, src.labels):
            got.labels.append(str(local))
        else:
            got.objects[str(local)] = obj
    return got
