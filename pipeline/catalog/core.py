"""The catalog: Parquet parts committed atomically in batches, DuckDB views on top.

A catalog lives in a local directory (`Catalog(path)`, the embedded default) or under an
S3 prefix (`Catalog.open("s3://bucket/prefix", env=..., cache_dir=...)`, production; see
`pipeline/catalog/s3parts.py` for its layout, its commit by manifest and why it is read through
DuckDB's httpfs). Both keep the same promise: a batch becomes visible whole or not at all,
nothing committed is ever rewritten, and facts that change are appended as new rows
(events). The `Catalog` class is the same for both; only where the parts go differs.

Local layout under the catalog root:
    batches/date=YYYY-MM-DD/batch=<id>/<table>.parquet   written once, never changed
    commits.jsonl                                         the commits, hash-chained
    staging/<id>/                                         being written; invisible
    catalog.duckdb                                        views only, rebuilt on open

A local batch is written to `staging/<id>/` (each part fsynced), renamed into `batches/`,
and committed by one line of `commits.jsonl` naming its parts with their sizes and
SHA-256: the whole batch appears at once or not at all. The views read the files the
commit list names, never a glob, so a file put under `batches/` by hand is not read.

Tamper evidence. Every commit's manifest is recorded in the audit chain (sealed into
WORM) before the batch is visible (`commits.py`), and `pipeline/catalog/tamper.py` checks
the catalog against those records (`custody verify`).

The analyst's connection. `connect()` and `query()` give an in-memory DuckDB whose views
are set up first; then `allowed_paths` is set to exactly the files those views read,
`enable_external_access` turned off and the configuration locked. DuckDB itself then
refuses COPY ... TO, ATTACH, INSTALL/LOAD, read_*/glob of any other path (a stored object
included) and any SET; `query` also accepts only one SELECT (or EXPLAIN) statement and
raises `QueryRefused` for anything else, with one line saying why.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from pipeline.catalog.commits import recorder_for
from pipeline.catalog.parts import LocalParts, Parts
from pipeline.errors import CatalogError
from schemas.records import TABLES, arrow_schema, table_name, to_table
from schemas.views import DERIVED_VIEWS


def recording_filter(
    selectors: Sequence[str], case_number: str | None = None
) -> tuple[str, list[object]]:
    """A WHERE condition over `recordings` (BLAKE3 prefix, file name or source path of each
    selector, or the case number) and its parameters; ("", []) when nothing is selected."""
    conds: list[str] = []
    params: list[object] = []
    for sel in selectors:
        conds.append("(starts_with(blake3, ?) OR file_name = ? OR source_path = ?)")
        params += [sel.lower(), sel, sel]
    if case_number is not None:
        conds.append("case_number = ?")
        params.append(case_number)
    return " OR ".join(conds), params


INGEST_LOCK = "ingest.lock"


@contextlib.contextmanager
def exclusive(catalog: Catalog) -> Iterator[None]:
    """The catalog's ingest lock (`<root>/ingest.lock`, flock(2), not waited for): one
    ingest or compaction of this catalog at a time on this machine (for S3, `root` is the
    local cache directory). CatalogError when it is held."""
    path = catalog.root / INGEST_LOCK
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CatalogError(
                f"{catalog.root}: an ingest or a compaction is running on this catalog; "
                "try again later"
            ) from None
        yield


class Batch:
    """Rows of every table for one commit. Add rows, then `commit()` once."""

    def __init__(self, catalog: Catalog, batch_id: str) -> None:
        self._catalog = catalog
        self.batch_id = batch_id
        self._parts: dict[str, list[pa.Table]] = {table_name(t): [] for t in TABLES}
        self.committed = False

    def add(self, cls: type[Any], rows: Sequence[Any]) -> None:
        if rows:
            self._parts[table_name(cls)].append(to_table(cls, rows))

    def add_table(self, cls: type[Any], table: pa.Table) -> None:
        """Add an Arrow table already in `cls`'s schema (the packets table is built columnar)."""
        schema = arrow_schema(cls)
        if not table.schema.equals(schema):
            table = table.select(schema.names).cast(schema)
        if table.num_rows:
            self._parts[table_name(cls)].append(table)

    def is_empty(self) -> bool:
        return not any(self._parts.values())

    def commit(self, day: dt.date) -> str:
        """Write every part, then make the batch visible atomically. Returns where it is
        (the batch directory, or the S3 URI of its manifest)."""
        if self.committed:
            raise CatalogError(f"batch {self.batch_id} committed twice")
        tables = {}
        for cls in TABLES:
            parts = self._parts[table_name(cls)]
            tables[table_name(cls)] = (
                pa.concat_tables(parts) if parts else arrow_schema(cls).empty_table()
            )
        where = self._catalog.parts.write(self.batch_id, day, tables,
                                          recorder_for(self._catalog.root))
        self.committed = True
        return where


class Catalog:
    """A catalog. `Catalog(path)` opens (creating) a local one; `Catalog.open` also S3."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        local = LocalParts(Path(root).resolve())
        self._init(local)

    def _init(self, parts: Parts) -> None:
        self.parts = parts
        self.root = parts.root
        self.location = parts.location
        self.db_path = self.root / "catalog.duckdb"
        self._con: duckdb.DuckDBPyConnection | None = None
        self._con_views: dict[str, str] | None = None
        self._con_lock = threading.Lock()

    @classmethod
    def open(
        cls,
        location: str | os.PathLike[str],
        *,
        env: Mapping[str, str] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> Catalog:
        """The catalog at `location`: `s3://bucket/prefix`, or a directory.

        For S3, `env` carries the AWS_* variables (endpoint, region, credentials) and
        `cache_dir` is a local directory for this catalog's state: its catalog.duckdb for
        analysts, the ingest lock and the cached (immutable) commit manifests."""
        loc = os.fspath(location)
        if not loc.startswith("s3://"):
            return cls(loc)
        from pipeline.catalog.s3parts import S3Parts  # boto3 and httpfs only when needed

        if cache_dir is None:
            raise CatalogError(f"{loc}: an S3 catalog needs a local cache directory")
        catalog = cls.__new__(cls)
        catalog._init(S3Parts.from_uri(loc, env=env or {}, cache_dir=Path(cache_dir)))
        return catalog

    def clear_staging(self) -> None:
        """Remove batches whose writer died before commit. Call only under the ingest lock."""
        self.parts.clear_staging()

    def batch(self, batch_id: str | None = None) -> Batch:
        return Batch(self, batch_id or uuid.uuid4().hex)

    def _create_views(self, con: duckdb.DuckDBPyConnection, views: Mapping[str, str]) -> None:
        for name, select in views.items():
            con.execute(f"CREATE OR REPLACE VIEW {name} AS {select}")
        for name, sql in DERIVED_VIEWS.items():
            con.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")

    def refresh_views(self) -> Path:
        """(Re)write catalog.duckdb with views over the committed parts; returns its path."""
        try:
            views = self.parts.base_views()
            with duckdb.connect(str(self.db_path)) as con:
                self.parts.prepare(con)
                self._create_views(con, views)
        except duckdb.Error as exc:
            raise CatalogError(f"{self.db_path}: cannot write views: {exc}") from exc
        return self.db_path

    def _new_connection(
        self, views: Mapping[str, str], readable: Sequence[str], *, ordered: bool = True
    ) -> duckdb.DuckDBPyConnection:
        # ordered=False: DuckDB may return the rows of a statement without ORDER BY in any
        # order (preserve_insertion_order off), which lets it build tables and windows in
        # parallel without keeping the input's order; set before the lock like the rest.
        con = duckdb.connect(config={
            "autoinstall_known_extensions": False, "autoload_known_extensions": False,
            "preserve_insertion_order": ordered,
        })
        try:
            self.parts.prepare(con)
            self._create_views(con, views)
            # Closed from here on: only the views' own files, and no setting changes back.
            con.execute("SET allowed_paths = ?", [list(readable)])
            con.execute("SET enable_external_access = false")
            con.execute("SET lock_configuration = true")
        except (duckdb.Error, CatalogError) as exc:
            con.close()
            if isinstance(exc, CatalogError):
                raise
            raise CatalogError(f"{self.location}: cannot read the catalog: {exc}") from exc
        return con

    def connect(self, *, ordered: bool = True) -> duckdb.DuckDBPyConnection:
        """A new in-memory DuckDB connection with every view, closed to everything else
        (module doc); does not lock catalog.duckdb. `ordered=False` for a caller that only
        aggregates or orders what it reads (a report): rows without ORDER BY come in any
        order, and DuckDB's tables and windows are cheaper."""
        return self._new_connection(*self.parts.views(), ordered=ordered)

    def read_table(self, cls: type[Any], columns: Sequence[str] | None = None) -> pa.Table:
        """Every committed row of one record table (`columns` of it), as Arrow, without
        setting up DuckDB and its views (for ingest's state and the registry)."""
        return self.parts.read_table(cls, columns)

    def query(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        """Run one SELECT `sql` over the views as committed now; QueryRefused for any other
        statement or for reading anything but the views' own files."""
        check_statement(sql)
        if not self.parts.reuse_connection:
            with contextlib.closing(self.connect()) as con:
                return _run(con, sql, params)
        # Remote parts: keep one connection, so DuckDB's HTTP and Parquet metadata caches
        # last across queries; rebuild its views only when a new batch was committed.
        with self._con_lock:
            views, readable = self.parts.views()
            if self._con is None or views != self._con_views:
                self.close()
                self._con = self._new_connection(views, readable)
                self._con_views = views
            else:
                self.parts.renew(self._con)
            return _run(self._con, sql, params)

    def close(self) -> None:
        """Drop the kept connection, if any (remote catalogs)."""
        if self._con is not None:
            self._con.close()
            self._con = None
            self._con_views = None


class QueryRefused(CatalogError):
    """The analyst's SQL tried something other than reading the catalog's views."""


_READING = {"SELECT", "EXPLAIN"}
WHY = "the analyst's SQL only reads the catalog views; --csv or --json writes a file"


def check_statement(sql: str) -> None:
    """One SELECT (or EXPLAIN) statement, or QueryRefused saying what it is instead."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        first_line = str(exc).strip().splitlines()[0]
        raise CatalogError(f"query failed: {first_line}") from exc
    if len(statements) != 1:
        raise QueryRefused(f"query refused: {len(statements)} statements, one allowed ({WHY})")
    kind = str(statements[0].type).rsplit(".", 1)[-1]
    if kind not in _READING:
        raise QueryRefused(f"query refused: {kind} statements are not allowed ({WHY})")


def _run(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | None) -> pa.Table:
    try:
        return con.execute(sql, params or []).to_arrow_table()
    except duckdb.PermissionException as exc:
        first_line = str(exc).strip().splitlines()[0].removeprefix("Permission Error: ")
        what = first_line.split(" - ")[0]
        raise QueryRefused(f"query refused: {what} ({WHY})") from exc
    except duckdb.Error as exc:
        first_line = str(exc).strip().splitlines()[0]
        raise CatalogError(f"query failed: {first_line}") from exc
