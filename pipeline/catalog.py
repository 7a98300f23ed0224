"""The catalog: Parquet parts committed atomically in batches, DuckDB views on top.

Layout under the catalog root:
    batches/date=YYYY-MM-DD/batch=<id>/<table>.parquet   committed, never changed
    staging/<id>/                                         being written; invisible
    catalog.duckdb                                        views only, rebuilt on open

A batch is written to `staging/<id>/` (each part fsynced), then the directory is renamed
into `batches/` in one `rename(2)`: the whole batch appears at once or not at all, so a
crash leaves nothing half-visible. Views glob only `batches/`, and every batch holds a part
for every table (zero rows where it has none), so a view never lacks a file. Facts that
change are appended as new rows (events); nothing committed is rewritten.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.errors import CatalogError
from schemas.records import TABLES, arrow_schema, table_name, to_table
from schemas.views import DERIVED_VIEWS


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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

    def commit(self, day: dt.date) -> Path:
        """Write every part, then make the batch visible atomically. Returns its directory."""
        if self.committed:
            raise CatalogError(f"batch {self.batch_id} committed twice")
        root = self._catalog.root
        stage = root / "staging" / self.batch_id
        stage.mkdir(parents=True)
        for cls in TABLES:
            name = table_name(cls)
            parts = self._parts[name]
            table = pa.concat_tables(parts) if parts else arrow_schema(cls).empty_table()
            path = stage / f"{name}.parquet"
            pq.write_table(table, path, compression="zstd")
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
        _fsync_dir(stage)
        final_parent = root / "batches" / f"date={day.isoformat()}"
        final_parent.mkdir(parents=True, exist_ok=True)
        final = final_parent / f"batch={self.batch_id}"
        os.rename(stage, final)
        _fsync_dir(final_parent)
        _fsync_dir(root / "staging")
        self.committed = True
        return final


class Catalog:
    """A catalog directory. Opening it creates the layout and clears dead staging batches."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        try:
            (self.root / "staging").mkdir(parents=True, exist_ok=True)
            (self.root / "batches").mkdir(exist_ok=True)
        except OSError as exc:
            raise CatalogError(f"{self.root}: cannot use as a catalog: {exc.strerror}") from exc
        if not any((self.root / "batches").glob("date=*/batch=*")):
            # The genesis batch: an empty part of every table, so views always have files.
            self.batch("genesis-" + uuid.uuid4().hex[:8]).commit(dt.date(1970, 1, 1))
        self.db_path = self.root / "catalog.duckdb"

    def clear_staging(self) -> None:
        """Remove batches whose writer died before commit. Call only under the ingest lock."""
        for stale in (self.root / "staging").iterdir():
            shutil.rmtree(stale, ignore_errors=True)

    def batch(self, batch_id: str | None = None) -> Batch:
        return Batch(self, batch_id or uuid.uuid4().hex)

    def _glob(self, table: str) -> str:
        return (self.root / "batches" / "*" / "*" / f"{table}.parquet").as_posix()

    def _create_views(self, con: duckdb.DuckDBPyConnection) -> None:
        for cls in TABLES:
            name = table_name(cls)
            con.execute(
                f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_parquet("
                f"'{self._glob(name)}', union_by_name = true)"
            )
        for name, sql in DERIVED_VIEWS.items():
            con.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")

    def refresh_views(self) -> Path:
        """(Re)write catalog.duckdb with views over the committed parts; returns its path."""
        try:
            with duckdb.connect(str(self.db_path)) as con:
                self._create_views(con)
        except duckdb.Error as exc:
            raise CatalogError(f"{self.db_path}: cannot write views: {exc}") from exc
        return self.db_path

    def connect(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB connection with every view; does not lock catalog.duckdb."""
        con = duckdb.connect()
        try:
            self._create_views(con)
        except duckdb.Error as exc:
            con.close()
            raise CatalogError(f"{self.root}: cannot read the catalog: {exc}") from exc
        return con

    def query(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        with contextlib.closing(self.connect()) as con:
            try:
                return con.execute(sql, params or []).to_arrow_table()
            except duckdb.Error as exc:
                first_line = str(exc).strip().splitlines()[0]
                raise CatalogError(f"query failed: {first_line}") from exc
