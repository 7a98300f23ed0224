"""Compaction: the catalog's many small committed parts merged into a few large ones, as
one more recorded commit.

Why. A nightly run commits a batch of 16 recordings as a handful of small Parquet parts, so
a year leaves some 60,000 batches and 300,000 parts; a query opens every part's footer
(on S3, a request each), and counting a table over 10,000 one-batch parts already takes
0.9 s. `compact` merges, per table (and per schema the parts were written with), every
part smaller than the target size into parts of about the target size.

How it stays tamper-evident and atomic. The merged parts are written to local staging
(each input part first checked against the SHA-256 its commit recorded: a part edited
since is refused, never laundered into a new one), then stored as a batch's parts are
(local: renamed under `batches/compacted/<id>/`; S3: uploaded under `parts/<id>/`), and
made visible by ONE commit of kind `compaction` (`commits.Manifest`), recorded in the audit
chain before it is visible like any commit. That commit names the parts it wrote and the
parts it keeps (`carried`); from then on the views read those and whatever is committed
after it, and none of the parts it supersedes. The superseded parts stay where they are
(WORM keeps them; nothing is deleted) and stay recorded: `custody verify` still checks each
against its audit record, so an edit made before or after compaction is still named, and
checks that the parts read now hold exactly the rows every committed batch holds.

A crash before the commit leaves the catalog as it was: staged files are invisible (and
cleared with the next ingest's staging), parts stored but named by no commit are unread.

The fold. A compaction also writes one derived part, the case links folded from every case
event its commit reads (`_fold`; schemas.records.CaseLinkFoldRecord), and names those
event parts in its manifest (`folded`): `case_links_current` reads a folded pair as it is
unless a later event touches it, instead of grouping every link event of the catalog in
each query. The next compaction folds again and carries no old fold; `custody verify`
folds the named events again and requires the same rows (`tamper.py`).

Idempotent: a table is compacted only when it has two or more parts under the target size,
and a compaction leaves at most one (its last, partly filled part), so compacting a
compacted catalog finds nothing to do and says so.

Concurrency. Compaction holds the catalog's ingest lock (`core.exclusive`), so no ingest
runs meanwhile; other commits (a case or staff command) may land while it merges, and are
carried into its commit (local) or stay outside what it covers (S3), so none is lost.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import os
import secrets
import shutil
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.catalog.commits import PartEntry, recorder_for
from pipeline.catalog.core import Catalog, exclusive
from pipeline.catalog.parts import (
    DERIVED,
    FOLD_SOURCE,
    Parts,
    Staged,
    parquet_writer,
    schema_id,
    sql_str,
)
from pipeline.durable import fsync_dir
from pipeline.errors import CatalogError, InputError
from schemas.audit import ALLOWED
from schemas.people import CATALOG_COMPACT
from schemas.records import TABLES, CaseLinkFoldRecord, arrow_schema, table_name
from schemas.views import FOLD_COLUMNS, case_links_fold

if TYPE_CHECKING:
    from pipeline.people.permissions import Authority

MiB = 1 << 20
DEFAULT_TARGET_BYTES = 128 * MiB
ROW_GROUP_ROWS = 1 << 17  # rows per row group of a merged part
_READ_AHEAD = 32  # parts fetched ahead of the merge (S3: a GET each)
_KNOWN = frozenset(table_name(cls) for cls in TABLES)
PROVENANCE = ("batch", "date")  # the columns a local view adds from a batch part's path


@dataclass(frozen=True, slots=True)
class Merge:
    """The parts of one table (written with one schema) merged into new parts, in the
    order they were committed."""

    table: str
    schema_id: str
    parts: tuple[PartEntry, ...]


def plan(parts: Sequence[PartEntry], target_bytes: int) -> tuple[list[Merge], list[PartEntry]]:
    """What to merge and what to keep as it is. Pure.

    Per (table, schema): the parts under `target_bytes` are merged when there are two or
    more; every other part (a large one, a lone small one, a table this release does not
    know) is carried, except a derived one (the last compaction's fold), which the
    compaction makes again."""
    groups: dict[tuple[str, str], list[PartEntry]] = {}
    for p in parts:
        groups.setdefault((p.table, p.schema_id), []).append(p)
    merges: list[Merge] = []
    carried: list[PartEntry] = []
    for (table, schema), group in groups.items():
        if table in DERIVED:
            continue  # derived again from what this compaction reads (`_fold`)
        small = [p for p in group if p.size_bytes < target_bytes]
        if table in _KNOWN and len(small) >= 2:
            merges.append(Merge(table, schema, tuple(small)))
            carried += [p for p in group if p.size_bytes >= target_bytes]
        else:
            carried += group
    return merges, carried


@dataclass(frozen=True, slots=True)
class TableResult:
    """One table before and after a compaction."""

    table: str
    parts_before: int
    parts_after: int
    parts_merged: int
    rows: int  # rows of the merged parts (the same before and after)
    bytes_merged: int
    bytes_written: int
    largest_part_bytes: int  # the largest part the view reads after it


@dataclass(frozen=True, slots=True)
class CompactResult:
    catalog: str
    target_bytes: int
    compaction_id: str | None  # None: nothing to compact
    where: str | None  # the commit (a directory, or the manifest's URI)
    parts_before: int  # parts the views read before
    tables: tuple[TableResult, ...]
    links_folded: int | None = None  # (case, recording) pairs in its fold; None: no events

    @property
    def compacted(self) -> bool:
        return self.compaction_id is not None

    def summary(self) -> str:
        if not self.compacted:
            return (f"nothing to compact: no table of {self.catalog} has two parts under "
                    f"{self.target_bytes} bytes")
        merged = sum(t.parts_merged for t in self.tables)
        written = sum(t.parts_after - (t.parts_before - t.parts_merged) for t in self.tables)
        return (f"compacted {merged} parts of {len(self.tables)} tables into {written} "
                f"(compaction {self.compaction_id})")


def compact(catalog: Catalog, *, auth: Authority, actor: str,
            target_bytes: int = DEFAULT_TARGET_BYTES) -> CompactResult:
    """Merge the catalog's small parts (module doc) as `actor`, who must be allowed
    `catalog.compact` (PermissionDenied, audited, otherwise). Holds the ingest lock; a
    running ingest makes it a CatalogError. The outcome is audited as well as the commit."""
    if target_bytes < 1:
        raise InputError(f"compaction target size must be positive, not {target_bytes}")
    what = f"catalog:{catalog.location}"
    auth.authorize(actor, CATALOG_COMPACT, what)
    with exclusive(catalog):
        result = _compact(catalog, auth, target_bytes)
    auth.record(actor, CATALOG_COMPACT, what, ALLOWED, result.summary())
    return result


def _compact(catalog: Catalog, auth: Authority, target_bytes: int) -> CompactResult:
    parts = catalog.parts
    base = parts.current()
    merges, carried = plan(base.parts, target_bytes)
    if not merges:
        return CompactResult(catalog.location, target_bytes, None, None, len(base.parts), ())
    now = auth.audit.now()
    cid = f"compact-{now:%Y%m%dT%H%M%S%f}Z-{secrets.token_hex(4)}"
    stage = parts.staging(cid)
    try:
        staged: list[Staged] = []
        for m in merges:
            staged += _merge(parts, m, stage, target_bytes)
        folded = _fold(parts, staged, carried, stage)
        if folded is not None:
            staged.append(folded)
        fsync_dir(stage)
        where = parts.publish(cid, now.date(), staged, carried, base,
                              recorder_for(catalog.root))
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)  # gone already once published locally
        raise
    after = parts.current().parts
    return CompactResult(catalog.location, target_bytes, cid, where, len(base.parts),
                         _table_results(base.parts, after, merges, cid),
                         None if folded is None else folded.rows)


def _fold(parts: Parts, staged: Sequence[Staged], carried: Sequence[PartEntry],
          stage: Path) -> Staged | None:
    """The case links folded (`schemas.views.case_links_fold`) from every case event this
    compaction's commit will read: its merged parts and the ones it carries (each checked
    against its recorded SHA-256 as it is read). None when there are none."""
    merged = [s.path.as_posix() for s in staged if s.table == FOLD_SOURCE]
    kept = [p for p in carried if p.table == FOLD_SOURCE]
    if not merged and not kept:
        return None
    columns = list(FOLD_COLUMNS)
    listed = ", ".join(map(sql_str, merged))
    selects = [f"SELECT {', '.join(columns)} FROM read_parquet([{listed}])"] if merged else []
    schema = arrow_schema(CaseLinkFoldRecord)
    path = stage / f"{table_name(CaseLinkFoldRecord)}-0001.parquet"
    with contextlib.closing(duckdb.connect(config={"preserve_insertion_order": False})) as con:
        for i, (_, table) in enumerate(_fetched(parts, kept)):
            con.register(f"kept{i}", table.select(columns))
            selects.append(f"SELECT * FROM kept{i}")
        events = f"({' UNION ALL BY NAME '.join(selects)})"
        table = con.execute(case_links_fold(events)).to_arrow_table()
    table = table.select(schema.names).cast(schema)
    try:
        with open(path, "wb") as fh:
            writer = parquet_writer(fh, schema)
            writer.write_table(table, row_group_size=ROW_GROUP_ROWS)  # scanned in parallel
            writer.close()
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        raise CatalogError(f"{path}: not compacted, cannot write: "
                           f"{exc.strerror or exc}") from exc
    return Staged(table_name(CaseLinkFoldRecord), path, table.num_rows, schema_id(schema))


def _table_results(before: Sequence[PartEntry], after: Sequence[PartEntry],
                   merges: Sequence[Merge], cid: str) -> tuple[TableResult, ...]:
    out = []
    for table in sorted({m.table for m in merges}):
        merged = [p for m in merges if m.table == table for p in m.parts]
        now = [p for p in after if p.table == table]
        written = [p for p in now if f"/{cid}/" in f"/{p.name}"]
        out.append(TableResult(
            table, sum(1 for p in before if p.table == table), len(now), len(merged),
            sum(p.rows for p in merged), sum(p.size_bytes for p in merged),
            sum(p.size_bytes for p in written), max((p.size_bytes for p in now), default=0)))
    return tuple(out)


def with_provenance(table: pa.Table, name: str) -> pa.Table:
    """`table` with the `batch` and `date` columns a local view gives its rows: from the
    hive keys of a batch part's path (`batches/date=D/batch=B/...`); a compacted part
    holds them already."""
    if PROVENANCE[0] in table.schema.names:
        return table
    keys = dict(seg.split("=", 1) for seg in name.split("/") if "=" in seg)
    day = dt.date.fromisoformat(keys["date"]) if "date" in keys else None
    n = table.num_rows
    table = table.append_column(pa.field(PROVENANCE[0], pa.string()),
                                pa.array([keys.get("batch")] * n, pa.string()))
    return table.append_column(pa.field(PROVENANCE[1], pa.date32()),
                               pa.array([day] * n, pa.date32()))


def _fetched(parts: Parts, entries: Sequence[PartEntry]) -> Iterator[tuple[PartEntry, pa.Table]]:
    """Each part read, checked against its recorded size and SHA-256 and decoded, in order;
    a few ahead on threads (S3 GETs overlap; hashing and decoding release the GIL)."""
    def load(entry: PartEntry) -> pa.Table:
        data = parts.read_part(entry)
        if (len(data), hashlib.sha256(data).hexdigest()) != (entry.size_bytes, entry.sha256):
            raise CatalogError(
                f"{parts.where(entry.name)}: not compacted: the part no longer has the "
                f"size and SHA-256 its commit recorded ({entry.size_bytes} bytes, "
                f"{entry.sha256[:16]}...); run `custody verify`")
        # ParquetFile, not read_table: no dataset layer, 5x faster for a small part.
        table = pq.ParquetFile(io.BytesIO(data)).read().replace_schema_metadata(None)
        return with_provenance(table, entry.name) if parts.provenance else table

    with ThreadPoolExecutor(4) as pool:
        for i in range(0, len(entries), _READ_AHEAD):
            window = entries[i:i + _READ_AHEAD]
            yield from zip(window, pool.map(load, window), strict=True)


def _merge(parts: Parts, m: Merge, stage: Path, target_bytes: int) -> list[Staged]:
    """Write the rows of `m.parts`, in order, into staged parts of about `target_bytes`
    each (a part is closed once it reaches the target; the last may be smaller)."""
    out: list[Staged] = []
    schema: pa.Schema | None = None
    pending: list[pa.Table] = []
    pending_rows = pending_bytes = 0
    writer: pq.ParquetWriter | None = None
    fh: io.BufferedWriter | None = None
    path = stage
    rows_in_file = 0

    def flush(final: bool) -> None:
        nonlocal writer, fh, pending, pending_rows, pending_bytes, rows_in_file, path
        if pending:
            assert schema is not None
            if writer is None:
                path = stage / f"{m.table}-{len(out) + 1:04d}.parquet"
                fh = open(path, "wb")  # noqa: SIM115 - closed below, after the writer
                writer = parquet_writer(fh, schema)
                rows_in_file = 0
            table = pa.concat_tables(pending).combine_chunks()
            writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
            rows_in_file += table.num_rows
            pending, pending_rows, pending_bytes = [], 0, 0
        if writer is not None and fh is not None and (final or fh.tell() >= target_bytes):
            writer.close()
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
            out.append(Staged(m.table, path, rows_in_file, m.schema_id))
            writer, fh = None, None

    try:
        for _, table in _fetched(parts, m.parts):
            if schema is None:
                schema = table.schema
            pending.append(table)
            pending_rows += table.num_rows
            pending_bytes += table.nbytes
            # Written (and the part's size checked) before the rows held in memory reach a
            # quarter of the target: Parquet is smaller than Arrow, so a part closes near it.
            if pending_rows >= ROW_GROUP_ROWS or pending_bytes * 4 >= target_bytes:
                flush(final=False)
        flush(final=True)
    except OSError as exc:  # a full disk, a file-size limit: nothing was committed
        raise CatalogError(f"{path}: not compacted, cannot write: "
                           f"{exc.strerror or exc}") from exc
    finally:
        if fh is not None:
            with contextlib.suppress(OSError):
                fh.close()
    rows = sum(p.rows for p in m.parts)
    if sum(s.rows for s in out) != rows:  # the manifests' counts against what was read
        raise CatalogError(f"{m.table}: the merged parts hold {sum(s.rows for s in out)} "
                           f"rows, the parts merged {rows}; nothing committed")
    return out
