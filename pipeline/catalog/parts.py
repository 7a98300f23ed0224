"""Where a catalog's parts live (the `Parts` protocol), how a part is written, and the
local directory implementation. The S3 implementation is `s3parts.py`; both import only
this module and `commits.py`, so neither depends on the `Catalog` built over them.

Local commits. A batch's parts are written to `staging/<id>/` (each fsynced, hashed),
the directory is renamed into `batches/date=/batch=<id>/`, and then the batch is
committed by one line appended to the chained `commits.jsonl` (its audit record first,
see `commits.py`). The views read the files the commit list names, never a glob: a file
put under `batches/` by hand is not read (and `custody verify` names it).

Compactions (`compact.py`) stage merged parts in `staging/<id>/`, rename them to
`batches/compacted/<id>/` and commit one line of kind `compaction`; the views then read the
parts the last compaction names and those of the commits after it (`Current`). A batch
part's `date` and `batch` columns come from its path (hive keys); a compacted part holds
them as columns, so a view gives the same rows either way.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import shutil
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from pipeline.catalog.commits import (
    COMPACTION,
    Commit,
    CommitList,
    Manifest,
    PartEntry,
    Recorder,
    fold,
)
from pipeline.durable import fsync_dir
from pipeline.errors import CatalogError
from schemas.records import (
    DERIVED_TABLES,
    TABLES,
    UNFOLDED,
    CaseEventRecord,
    CaseLinkFoldRecord,
    arrow_schema,
    table_name,
)

DERIVED = frozenset(table_name(cls) for cls in DERIVED_TABLES)
FOLD_SOURCE = CaseLinkFoldRecord.SOURCE
# Every view over parts: one per record table, per derived table, and the unfolded events
# (with the record type whose schema it has).
VIEWED: tuple[tuple[str, type[Any]], ...] = (
    *((table_name(cls), cls) for cls in (*TABLES, *DERIVED_TABLES)),
    (UNFOLDED, CaseEventRecord))
COMPACTED = "batches/compacted"  # local compactions' parts, under their compaction's id
HIVE_TYPES = "{'date': 'DATE', 'batch': 'VARCHAR'}"


def sql_str(text: str) -> str:
    """`text` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def schema_id(schema: pa.Schema) -> str:
    """A short fingerprint of an Arrow schema (names, types, nullability)."""
    return hashlib.sha256(schema.remove_metadata().serialize().to_pybytes()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Current:
    """Every part the views read now, and what a compaction of them builds on: the digest
    of the last commit read (local) or the manifests they come from (S3)."""

    parts: tuple[PartEntry, ...]
    base: str | None
    covers: tuple[str, ...] = ()
    folded: tuple[str, ...] = ()  # the parts the last compaction's derived parts fold

    def read(self) -> tuple[list[PartEntry], list[PartEntry]]:
        """(the parts each table's view reads, the parts of the `UNFOLDED` view): a fold is
        read only with the parts it folds named, and those only with a fold (a compaction of
        an older release carries one it did not make and names none; one that names them
        and has no fold would lose their links), and the unfolded view reads the source
        table's parts no fold covers (all of them when there is none)."""
        fold = any(p.table in DERIVED for p in self.parts)
        folded = set(self.folded) if fold else set()
        tables = [p for p in self.parts if folded or p.table not in DERIVED]
        unfolded = [p for p in self.parts if p.table == FOLD_SOURCE and p.name not in folded]
        return tables, unfolded


def folded_names(entries: Sequence[PartEntry], carried: Sequence[PartEntry]) -> tuple[str, ...]:
    """What a compaction's derived parts (among `entries`) were folded from: every part of
    the source table it writes or carries from the catalog it read."""
    if not any(p.table in DERIVED for p in entries):
        return ()
    return tuple(p.name for p in (*entries, *carried) if p.table == FOLD_SOURCE)


@dataclass(frozen=True, slots=True)
class Staged:
    """A merged part written to local staging by a compaction, not yet committed."""

    table: str
    path: Path
    rows: int
    schema_id: str


class Parts(Protocol):
    """Where a catalog's committed parts live: a directory or an S3 prefix."""

    root: Path  # local state: catalog.duckdb and the ingest lock live here
    location: str  # what a person is shown: a directory or an s3:// URI
    reuse_connection: bool  # keep one DuckDB connection for `query` (remote metadata caches)
    provenance: bool  # the views give each row's `date` and `batch` (local parts' paths)

    def write(self, batch_id: str, day: dt.date, tables: Mapping[str, pa.Table],
              recorder: Recorder | None = None) -> str:
        """Store every table of one batch, tell `recorder` its manifest, then make the
        batch visible atomically."""
        ...

    def views(self) -> tuple[dict[str, str], list[str]]:
        """The SELECT behind each table's view, over the parts committed right now, and
        every file those views read (the analyst's connection may read nothing else)."""
        ...

    def base_views(self) -> dict[str, str]:
        """The SELECT behind each table's view (`views()[0]`)."""
        ...

    def prepare(self, con: duckdb.DuckDBPyConnection) -> None:
        """Make `con` able to read the parts (extensions, credentials)."""
        ...

    def renew(self, con: duckdb.DuckDBPyConnection) -> None:
        """Before a query on a kept connection: renew what expires (credentials)."""
        ...

    def commits(self) -> list[Commit]:
        """Every commit now, in the catalog's own order."""
        ...

    def chain_break(self) -> tuple[int, str] | None:
        """The first broken link of the commit list (line number, what), if it has one."""
        ...

    def stored_parts(self) -> dict[str, int]:
        """Every file where parts live (name as in manifests -> size), committed or not."""
        ...

    def part_digest(self, name: str) -> tuple[int, str] | None:
        """(size, SHA-256) of a part as stored now; None when it is gone."""
        ...

    def where(self, name: str) -> str:
        """A part's full path or URI, for a person."""
        ...

    def clear_staging(self) -> None: ...

    def read_table(self, cls: type[Any], columns: Sequence[str] | None) -> pa.Table:
        """Every committed row of one table, read without SQL (as its view reads them)."""
        ...

    def current(self) -> Current:
        """Every part the views read now (the last compaction's and those after it)."""
        ...

    def read_part(self, part: PartEntry) -> bytes:
        """The bytes of a committed part as stored now."""
        ...

    def staging(self, compaction_id: str) -> Path:
        """A new local directory for a compaction's merged parts."""
        ...

    def publish(self, compaction_id: str, day: dt.date, staged: Sequence[Staged],
                carried: Sequence[PartEntry], base: Current,
                recorder: Recorder | None = None) -> str:
        """Store the staged parts and commit a compaction over `base`: from then on the
        views read `staged` and `carried` (and later commits) in place of `base.parts`.
        CatalogError, and nothing visible, if another compaction was committed since."""
        ...



def parquet_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    write_parquet(table, buf)
    return buf.getvalue()


def write_parquet(table: pa.Table, where: str | os.PathLike[str] | io.BytesIO) -> None:
    """One catalog part as Parquet: zstd; integer columns delta-encoded (timestamps, sizes
    and offsets of packets and chunks grow steadily: 10x smaller and 3x faster to write
    than dictionary encoding), dictionaries only for the other columns."""
    ints = [f.name for f in table.schema if pa.types.is_integer(f.type)]
    others = [f.name for f in table.schema if not pa.types.is_integer(f.type)]
    pq.write_table(
        table, where, compression="zstd", use_dictionary=others,
        column_encoding=dict.fromkeys(ints, "DELTA_BINARY_PACKED"),
    )


def new_stage(root: Path, compaction_id: str) -> Path:
    """`<root>/staging/<id>/`, new: where a compaction writes its merged parts."""
    stage = root / "staging" / compaction_id
    try:
        stage.mkdir(parents=True)
    except OSError as exc:
        raise CatalogError(f"{stage}: cannot stage a compaction: {exc.strerror}") from exc
    return stage


def parquet_writer(where: str | os.PathLike[str] | BinaryIO, schema: pa.Schema) -> pq.ParquetWriter:
    """A streaming writer of one large part with `write_parquet`'s encodings."""
    ints = [f.name for f in schema if pa.types.is_integer(f.type)]
    others = [f.name for f in schema if not pa.types.is_integer(f.type)]
    return pq.ParquetWriter(
        where, schema, compression="zstd", use_dictionary=others,
        column_encoding=dict.fromkeys(ints, "DELTA_BINARY_PACKED"),
    )


class LocalParts:
    """Parts in a directory, committed by a line of the chained commit list (module doc)."""

    reuse_connection = False

    provenance = True  # rows carry `date` and `batch` (the hive keys of their path)

    def __init__(self, root: Path) -> None:
        self.root = root
        self.location = str(root)
        self.commit_list = CommitList(root)
        self._compacted = (root / COMPACTED).as_posix() + "/"
        try:
            (root / "staging").mkdir(parents=True, exist_ok=True)
            (root / "batches").mkdir(exist_ok=True)
            if not self.commit_list.exists():
                self._adopt()
        except OSError as exc:
            raise CatalogError(f"{root}: cannot use as a catalog: {exc.strerror}") from exc

    def _adopt(self) -> None:
        """A catalog made before commits were listed: list the batches it has, marked
        adopted (nothing recorded them; verify says so), so its views keep their rows."""
        with self.commit_list.locked():
            if self.commit_list.exists():
                return
            for batch in sorted((self.root / "batches").glob("date=*/batch=*")):
                day = batch.parent.name.removeprefix("date=")
                entries = tuple(self._entry(p) for p in sorted(batch.glob("*.parquet")))
                manifest = Manifest(batch.name.removeprefix("batch="), day, entries)
                self.commit_list.append(manifest, None, self.location, adopted=True)
            self.commit_list.path.touch()

    def _entry(self, path: Path) -> PartEntry:
        data = path.read_bytes()
        meta = pq.read_metadata(io.BytesIO(data))
        return PartEntry(
            path.stem, path.relative_to(self.root).as_posix(), meta.num_rows, len(data),
            hashlib.sha256(data).hexdigest(), None, schema_id(meta.schema.to_arrow_schema()),
        )

    def write(self, batch_id: str, day: dt.date, tables: Mapping[str, pa.Table],
              recorder: Recorder | None = None) -> str:
        stage = self.root / "staging" / batch_id
        stage.mkdir(parents=True)
        final_parent = self.root / "batches" / f"date={day.isoformat()}"
        final = final_parent / f"batch={batch_id}"
        entries = []
        for name, table in tables.items():
            if table.num_rows == 0:
                continue  # views read an empty typed part for a table without rows
            data = parquet_bytes(table)
            path = stage / f"{name}.parquet"
            with open(path, "wb") as fh:
                fh.write(data)
                os.fsync(fh.fileno())
            entries.append(PartEntry(
                name, (final / path.name).relative_to(self.root).as_posix(), table.num_rows,
                len(data), hashlib.sha256(data).hexdigest(), None, schema_id(table.schema),
            ))
        fsync_dir(stage)
        final_parent.mkdir(parents=True, exist_ok=True)
        os.rename(stage, final)  # complete, but unread until the commit list names it
        fsync_dir(final_parent)
        fsync_dir(self.root / "staging")
        with self.commit_list.locked():
            self.commit_list.append(Manifest(batch_id, day.isoformat(), tuple(entries)),
                                    recorder, self.location)
        return str(final)

    def commits(self) -> list[Commit]:
        return self.commit_list.commits()

    def chain_break(self) -> tuple[int, str] | None:
        from pipeline.catalog.commits import link_of
        from pipeline.integrity.chain import verify_chain

        broken = verify_chain(self.commit_list.lines(), link_of)
        if broken is None:
            return None
        return broken.index + 1, (
            f"line {broken.index + 1} links to {broken.found or 'nothing readable'}, "
            f"the line before it hashes to {broken.expected}")

    def current(self) -> Current:
        commits = self.commit_list.current()
        last = commits[0].manifest if commits and commits[0].manifest.is_compaction else None
        return Current(tuple(fold(commits)), commits[-1].digest if commits else None,
                       folded=last.folded if last is not None else ())

    def _files(self) -> dict[str, list[str]]:
        files: dict[str, list[str]] = {}
        for p in self.current().parts:
            files.setdefault(p.table, []).append((self.root / p.name).as_posix())
        return files

    def read_part(self, part: PartEntry) -> bytes:
        try:
            return (self.root / part.name).read_bytes()
        except OSError as exc:
            raise CatalogError(f"{self.where(part.name)}: cannot read: {exc.strerror}") from exc

    def staging(self, compaction_id: str) -> Path:
        return new_stage(self.root, compaction_id)

    def publish(self, compaction_id: str, day: dt.date, staged: Sequence[Staged],
                carried: Sequence[PartEntry], base: Current,
                recorder: Recorder | None = None) -> str:
        """Rename the staged directory to `batches/compacted/<id>/`, then append the
        compaction's line; commits made since `base` (a case or staff command while this
        ran) are carried too, so nothing committed meanwhile drops out of the views."""
        if not staged:
            raise CatalogError(f"{self.location}: a compaction with no merged part")
        stage = staged[0].path.parent
        final_parent = self.root / COMPACTED
        final = final_parent / compaction_id
        entries = []
        for st in staged:
            data = st.path.read_bytes()
            entries.append(PartEntry(
                st.table, (final / st.path.name).relative_to(self.root).as_posix(), st.rows,
                len(data), hashlib.sha256(data).hexdigest(), None, st.schema_id))
        with self.commit_list.locked():
            since = self.commit_list.current()
            digests = [c.digest for c in since]
            later = since[digests.index(base.base) + 1:] if base.base in digests else None
            if later is None or any(c.manifest.is_compaction for c in later):
                raise CatalogError(f"{self.location}: another compaction was committed while "
                                   "this one ran; nothing changed, run it again")
            final_parent.mkdir(parents=True, exist_ok=True)
            os.rename(stage, final)  # complete, but unread until the commit list names it
            fsync_dir(final_parent)
            fsync_dir(self.root / "staging")
            kept = [*carried, *(p for c in later for p in c.manifest.parts)]
            manifest = Manifest(compaction_id, day.isoformat(), tuple(entries), COMPACTION,
                                tuple(kept), base.base,
                                folded=folded_names(entries, carried))
            self.commit_list.append(manifest, recorder, self.location)
        return str(final)

    def views(self) -> tuple[dict[str, str], list[str]]:
        # Parts grouped by table, by kind (a batch part's `date` and `batch` columns come
        # from its path as hive keys; a compacted part holds them as columns, `compact.py`)
        # and by the schema they were written with. One group is one `read_parquet([...])`,
        # whose schema DuckDB binds from its first file; `union_by_name` would open every
        # file's footer to bind it, which at a year's 62,500 uncompacted batches per table
        # did not finish in ten minutes. Groups of other schemas (a column added by a later
        # release) are joined by name.
        tables, unfolded = self.current().read()
        groups: dict[str, dict[tuple[bool, str], list[str]]] = {}
        for view, parts in ((None, tables), (UNFOLDED, unfolded)):
            for p in parts:
                path = (self.root / p.name).as_posix()
                key = (path.startswith(self._compacted), p.schema_id)
                groups.setdefault(view or p.table, {}).setdefault(key, []).append(path)
        out: dict[str, str] = {}
        readable: list[str] = []
        for name, cls in VIEWED:
            if name not in groups:
                # No commit wrote to this table (or it was added by a later release): an
                # empty part of its schema (outside `batches/`) keeps the view typed.
                empty = self._empty(cls)
                out[name] = f"SELECT * FROM read_parquet({sql_str(empty)})"
                readable.append(empty)
                continue
            selects = []
            for (compacted, _), paths in groups[name].items():
                listed = ", ".join(sql_str(f) for f in paths)
                hive = ("false" if compacted
                        else f"true, hive_types = {HIVE_TYPES}")
                selects.append(f"SELECT * FROM read_parquet([{listed}], "
                               f"hive_partitioning = {hive})")
                readable += paths
            out[name] = " UNION ALL BY NAME ".join(selects)
        return out, list(dict.fromkeys(readable))

    def base_views(self) -> dict[str, str]:
        return self.views()[0]

    def _empty(self, cls: type[Any]) -> str:
        schema = arrow_schema(cls)
        path = self.root / "schema" / f"{table_name(cls)}.parquet"
        if not path.exists() or not pq.read_schema(path).equals(schema):
            path.parent.mkdir(exist_ok=True)
            tmp = path.with_suffix(f".{uuid.uuid4().hex}.tmp")
            pq.write_table(schema.empty_table(), tmp)
            os.replace(tmp, path)
        return path.as_posix()

    def prepare(self, con: duckdb.DuckDBPyConnection) -> None:
        # No copy in DuckDB of the parts' bytes (its external file cache, on by default):
        # the kernel's page cache already keeps local files, and the cache grew with every
        # part read, up to DuckDB's memory limit (80 % of RAM): a report before
        # compaction at 100,000 recordings peaked at 2.3 GB of which 415 MB was that
        # cache per scan of 12,500 parts; without it 0.4 GB, and 29.7 -> 21.2 s.
        con.execute("SET enable_external_file_cache = false")

    def renew(self, con: duckdb.DuckDBPyConnection) -> None:
        pass

    def clear_staging(self) -> None:
        for stale in (self.root / "staging").iterdir():
            shutil.rmtree(stale, ignore_errors=True)

    def stored_parts(self) -> dict[str, int]:
        out = {}
        for path in sorted((self.root / "batches").rglob("*")):
            if path.is_file():
                out[path.relative_to(self.root).as_posix()] = path.stat().st_size
        return out

    def part_digest(self, name: str) -> tuple[int, str] | None:
        try:
            data = (self.root / name).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None
        return len(data), hashlib.sha256(data).hexdigest()

    def where(self, name: str) -> str:
        return (self.root / name).as_posix()

    def read_table(self, cls: type[Any], columns: Sequence[str] | None) -> pa.Table:
        """The committed parts read by Arrow, as the view reads them (a column a part lacks
        is null): no DuckDB connection and views to set up (25-40 ms) for a few columns."""
        schema = arrow_schema(cls)
        parts = self._files().get(table_name(cls), [])
        if not parts:
            table = schema.empty_table()
            return table.select(list(columns)) if columns is not None else table
        data = ds.dataset(parts, schema=schema, format="parquet")
        return data.to_table(columns=list(columns) if columns is not None else None)
