"""`[custody.nightly]` in the config file: the sources of the nightly job and its cluster.

```toml
[custody.nightly]
sources = [
  { path = "/srv/dock/station-1", labels = "labels*.csv", done = "/srv/dock/done/station-1" },
  "/srv/dock/station-2",
  { path = "s3://inbox/station-3/", labels = "labels*.csv" },   # tagged when archived
]
cluster = "tls://scheduler.internal:8786"   # the default of --cluster; none: the local pool
tls_ca = "/etc/custody/tls/ca.pem"          # for tls:// (required there)
tls_cert = "/etc/custody/tls/nightly.pem"
tls_key = "/etc/custody/tls/nightly.key"
compact = true               # compact the catalog at the end of a run when it is due
compact_after_parts = 64     # ... when one table's view reads this many small parts
```
Every key is checked, as the rest of the config is (`pipeline.cli.settings`): a mistyped
`done` would leave every file in the inbox, a mistyped `path` would ingest nothing. A
source's `labels` is a glob pattern in the source folder (or an absolute one); every
matching file is read, in name order, and none of them is ingested. `done` is a folder on
the same filesystem: a source file is moved there (keeping its path below the source)
only once its archived copy has been re-read and hashes to its BLAKE3. An `s3://` inbox is
read through a local spool (`spool`, see `pipeline.jobs.inbox`); its objects are tagged
archived, or copied to its `done = "s3://..."` prefix and tagged, never deleted.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.errors import InputError

SOURCE_KEYS = {"path": "a folder to ingest (recursive), or an S3 inbox s3://bucket/prefix/",
               "labels": "glob pattern of its labels files (in the folder, or absolute)",
               "done": "folder (same filesystem; s3://... for an inbox) for verified files"}
KEYS = {"sources": "list of folders, or tables with path, labels, done",
        "cluster": "default --cluster address (tls://HOST:8786)",
        "tls_ca": "CA certificate (PEM) of the cluster",
        "tls_cert": "this client's certificate (PEM)",
        "tls_key": "this client's private key (PEM)",
        "spool": "local folder for copies of S3 inbox objects (with --cluster: one "
                 "every worker sees at the same path)",
        "compact": "compact the catalog at the end of a run when it is due (true/false)",
        "compact_after_parts": "compact once one table's view reads this many parts under "
                               "the target size (about one per batch since the last)"}
TEXT_KEYS = ("cluster", "tls_ca", "tls_cert", "tls_key", "spool")
# One batch adds at most one part to each table it writes; a night of 2,000 files at 64
# files a batch is about 32, so a town compacts every other night. Views open every part's
# footer (10,000 cost 0.9 s to count): 64 a table cost the analyst milliseconds. Deciding
# reads the commit list only (40 ms over 2,000 parts, load 5); a compaction rereads the
# last one's partly filled part (under the 128 MiB target) with the new small parts.
COMPACT_AFTER_PARTS = 64


@dataclass(frozen=True, slots=True)
class NightlySource:
    path: str
    labels: str | None = None  # glob pattern
    done: str | None = None

    @property
    def is_inbox(self) -> bool:
        return self.path.startswith("s3://")

    def labels_paths(self) -> tuple[str, ...]:
        """The labels files the pattern matches now, in name order."""
        if self.labels is None:
            return ()
        pattern = self.labels if os.path.isabs(self.labels) else os.path.join(
            self.path, self.labels)
        return tuple(sorted(p for p in glob.glob(pattern) if os.path.isfile(p)))


@dataclass(frozen=True, slots=True)
class NightlyConfig:
    sources: tuple[NightlySource, ...] = ()
    cluster: str | None = None
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    spool: str | None = None
    compact: bool = True
    compact_after_parts: int = COMPACT_AFTER_PARTS


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise InputError(f"{where} = {value!r}: expected a non-empty string")
    return value


def _source(item: Any, where: str) -> NightlySource:
    if isinstance(item, str):
        return NightlySource(_text(item, where))
    if not isinstance(item, Mapping):
        raise InputError(f"{where} = {item!r}: expected a folder or a table "
                         "{ path = ..., labels = ..., done = ... }")
    unknown = sorted(set(item) - set(SOURCE_KEYS))
    if unknown:
        raise InputError(f"{where}: unknown key {unknown[0]!r}; expected one of "
                         f"{', '.join(sorted(SOURCE_KEYS))}")
    if "path" not in item:
        raise InputError(f"{where}: no path (the folder to ingest)")
    src = NightlySource(
        _text(item["path"], f"{where}.path"),
        _text(item["labels"], f"{where}.labels") if "labels" in item else None,
        _text(item["done"], f"{where}.done") if "done" in item else None,
    )
    if src.is_inbox:
        if src.done is not None and not src.done.startswith("s3://"):
            raise InputError(f"{where}.done = {src.done!r}: an S3 inbox's done place is an "
                             "s3://bucket/prefix/ (its objects are copied there and tagged)")
        return src
    if src.done is not None and src.done.startswith("s3://"):
        raise InputError(f"{where}.done = {src.done!r}: a folder's done place is a folder "
                         "on the same filesystem")
    if src.done is not None:
        done, root = os.path.realpath(src.done), os.path.realpath(src.path)
        if done == root or done.startswith(root.rstrip("/") + "/"):
            raise InputError(f"{where}.done = {src.done!r}: the done folder must not be "
                             "the source folder or inside it (its files would be read again)")
    return src


def parse_nightly(table: Any, where: str) -> NightlyConfig:
    """The `[custody.nightly]` table of the config file `where` names; InputError naming
    the key and the file for anything unknown or of the wrong type."""
    if not isinstance(table, Mapping):
        raise InputError(f"{where}: nightly must be a table ([custody.nightly])")
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise InputError(f"{where}: unknown key 'nightly.{unknown[0]}'; expected one of "
                         f"{', '.join(sorted(KEYS))}")
    sources = table.get("sources", [])
    if not isinstance(sources, list):
        raise InputError(f"{where}: nightly.sources = {sources!r}: expected a list")
    parsed = tuple(_source(s, f"{where}: nightly.sources[{i}]") for i, s in enumerate(sources))
    extra = {k: _text(table[k], f"{where}: nightly.{k}") for k in TEXT_KEYS if k in table}
    compact = table.get("compact", True)
    if not isinstance(compact, bool):
        raise InputError(f"{where}: nightly.compact = {compact!r}: expected true or false")
    after = table.get("compact_after_parts", COMPACT_AFTER_PARTS)
    if not isinstance(after, int) or isinstance(after, bool) or after < 2:
        raise InputError(f"{where}: nightly.compact_after_parts = {after!r}: expected an "
                         "integer of at least 2 (a compaction merges two parts or more)")
    return NightlyConfig(sources=parsed, compact=compact, compact_after_parts=after, **extra)
