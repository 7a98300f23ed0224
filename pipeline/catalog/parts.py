"""Where a catalog's parts live (the `Parts` protocol), how a part is written, and the
local directory implementation. The S3 implementation is `s3parts.py`; both import only
this module, so neither depends on the `Catalog` built over them.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import shutil
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from pipeline.durable import fsync_dir
from pipeline.errors import CatalogError
from schemas.records import TABLES, arrow_schema, table_name


def sql_str(text: str) -> str:
    """`text` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"




class Parts(Protocol):
    """Where a catalog's committed parts live: a directory or an S3 prefix."""

    root: Path  # local state: catalog.duckdb and the ingest lock live here
    location: str  # what a person is shown: a directory or an s3:// URI
    reuse_connection: bool  # keep one DuckDB connection for `query` (remote metadata caches)

    def write(self, batch_id: str, day: dt.date, tables: Mapping[str, pa.Table]) -> str:
        """Store every table of one batch and make the batch visible atomically."""
        ...

    def base_views(self) -> dict[str, str]:
        """The SELECT behind each table's view, over the parts committed right now."""
        ...

    def prepare(self, con: duckdb.DuckDBPyConnection) -> None:
        """Make `con` able to read the parts (extensions, credentials)."""
        ...

    def clear_staging(self) -> None: ...

    def read_table(self, cls: type[Any], columns: Sequence[str] | None) -> pa.Table:
        """Every committed row of one table, read without SQL (as its view reads them)."""
        ...



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


class LocalParts:
    """Parts in a directory, committed by renaming the batch's staging directory."""

    reuse_connection = False

    def __init__(self, root: Path) -> None:
        self.root = root
        self.location = str(root)
        try:
            (root / "staging").mkdir(parents=True, exist_ok=True)
            (root / "batches").mkdir(exist_ok=True)
        except OSError as exc:
            raise CatalogError(f"{root}: cannot use as a catalog: {exc.strerror}") from exc

    def write(self, batch_id: str, day: dt.date, tables: Mapping[str, pa.Table]) -> str:
        stage = self.root / "staging" / batch_id
        stage.mkdir(parents=True)
        for name, table in tables.items():
            if table.num_rows == 0:
                continue  # views read an empty typed part for a table without rows
            path = stage / f"{name}.parquet"
            write_parquet(table, path)
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
        fsync_dir(stage)
        final_parent = self.root / "batches" / f"date={day.isoformat()}"
        final_parent.mkdir(parents=True, exist_ok=True)
        final = final_parent / f"batch={batch_id}"
        os.rename(stage, final)
        fsync_dir(final_parent)
        fsync_dir(self.root / "staging")
        return str(final)

    def base_views(self) -> dict[str, str]:
        out = {}
        for cls in TABLES:
            name = table_name(cls)
            glob = (self.root / "batches" / "*" / "*" / f"{name}.parquet").as_posix()
            if any((self.root / "batches").glob(f"*/*/{name}.parquet")):
                out[name] = f"SELECT * FROM read_parquet({sql_str(glob)}, union_by_name = true)"
            else:
                # A table added by a later release, in a catalog made before it: an empty
                # part of its schema (outside `batches/`) keeps the view typed and valid.
                out[name] = f"SELECT * FROM read_parquet({sql_str(self._empty(cls))})"
        return out

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
        pass

    def clear_staging(self) -> None:
        for stale in (self.root / "staging").iterdir():
            shutil.rmtree(stale, ignore_errors=True)

    def read_table(self, cls: type[Any], columns: Sequence[str] | None) -> pa.Table:
        """The parts read by Arrow, as the view reads them (a column a part lacks is null):
        no DuckDB connection and views to set up (25-40 ms) for a few columns."""
        schema = arrow_schema(cls)
        parts = sorted((self.root / "batches").glob(f"*/*/{table_name(cls)}.parquet"))
        if not parts:
            table = schema.empty_table()
            return table.select(list(columns)) if columns is not None else table
        data = ds.dataset([p.as_posix() for p in parts], schema=schema, format="parquet")
        return data.to_table(columns=list(columns) if columns is not None else None)
