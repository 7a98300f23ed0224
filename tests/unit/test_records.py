"""Every record type round-trips through Parquet and DuckDB with its derived schema."""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from schemas.records import TABLES, arrow_schema, from_table, to_table

T0 = dt.datetime(2026, 11, 27, 9, 30, tzinfo=dt.UTC)


def _sample(cls: type[Any]) -> Any:
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        hint = typing.get_type_hints(cls)[f.name]
        optional = type(None) in typing.get_args(hint)
        t = next(a for a in typing.get_args(hint) if a is not type(None)) if optional else hint
        if typing.get_origin(t) is list:
            values[f.name] = ["甲", "b"]
        else:
            values[f.name] = {int: 7, str: "案号-001", bytes: b"\xb2\xe2.mp4", float: 1.5,
                              bool: True, dt.datetime: T0}[t]
    return cls(**values)


@pytest.mark.parametrize("cls", TABLES, ids=lambda c: c.TABLE)
def test_record_round_trips_through_parquet_and_duckdb(cls: type[Any], tmp_path: Path) -> None:
    row = _sample(cls)
    path = tmp_path / f"{cls.TABLE}.parquet"
    pq.write_table(to_table(cls, [row]), path)
    back = from_table(cls, pq.read_table(path))
    assert back == [row]
    via_duckdb = duckdb.sql(f"SELECT * FROM read_parquet('{path}')").to_arrow_table()
    assert from_table(cls, via_duckdb) == [row]


@pytest.mark.parametrize("cls", TABLES, ids=lambda c: c.TABLE)
def test_optional_fields_are_nullable_and_others_are_not(cls: type[Any]) -> None:
    schema = arrow_schema(cls)
    for f in dataclasses.fields(cls):
        hint = typing.get_type_hints(cls)[f.name]
        optional = type(None) in typing.get_args(hint)
        assert schema.field(f.name).nullable == optional, f.name
