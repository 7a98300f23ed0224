"""The analyst's connection is read-only and closed (issue 10 item 2): every escape from the
catalog's views is refused in one line (exit 2), writes nothing, and is in the audit log
with its SQL text; on a local catalog and on S3."""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipeline.audit.log import AuditLog
from pipeline.catalog.core import Catalog
from pipeline.cli.main import main
from pipeline.storage import open_store
from schemas.audit import AuditRecord
from tests.contract._support import fresh_bucket, s3_config
from tests.mediagen import Generated

WHY = "(the analyst's SQL only reads the catalog views; --csv or --json writes a file)"


class Cli:
    def __init__(self, loc: list[str], env: dict[str, str], as_: list[str]) -> None:
        self.loc, self.env, self.as_ = loc, env, as_

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = main([*argv, *self.as_, *self.loc], env=self.env, out=out, err=err)
        return code, out.getvalue(), err.getvalue()


class Archive:
    def __init__(self, cli: Cli, stored_object: str, scratch: Path, audit_dir: Path) -> None:
        self.cli, self.stored_object, self.scratch = cli, stored_object, scratch
        self.audit_dir = audit_dir

    def last_query_record(self) -> AuditRecord:
        """The audit log's last `query` record (read as `custody audit verify` reads it)."""
        store = open_store(self.cli.loc[1], env=self.cli.env)
        with AuditLog(self.audit_dir, store=store, clock=lambda: dt.datetime.now(dt.UTC)) as log:
            return [r for r in log.records() if r.action == "query"][-1]


def _ingest(cli: Cli, tmp_path: Path, rec: Generated) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(rec.path, inbox / "REC0001.mp4")
    if cli.as_:
        code, _, err = cli("staff", "add", "A-1", "--name", "张三", "--kind", "officer",
                           "--section", "综合执法队", "--certificate", "ZJ-0001",
                           "--role", "administrator", "--role", "officer")
        assert code == 0, err
    code, _, err = cli("ingest", str(inbox), "--quiet", "--workers", "1")
    assert code in (0, 1), err  # archived (its findings, if any, do not matter here)


@pytest.fixture(scope="module", params=["local", "s3"])
def archive(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
            clean_recording: Generated) -> Archive:
    """One archived recording, shared by the module's tests (an escape writes nothing)."""
    tmp_path = tmp_path_factory.mktemp(f"lockdown-{request.param}")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    if request.param == "local":
        data = tmp_path / "data"
        cli = Cli(["--store", str(data / "store"), "--catalog", str(data / "catalog")], {},
                  ["--as", "A-1"])
        _ingest(cli, tmp_path, clean_recording)
        obj = next(p for p in (data / "store" / "objects").rglob("*") if p.is_file())
        return Archive(cli, str(obj), scratch, data / "catalog" / "audit")
    server: Any = request.getfixturevalue("s3_server")
    bucket = fresh_bucket(s3_config(server).client())
    env = {**server.env(), "CUSTODY_CATALOG_CACHE": str(tmp_path / "cache")}
    # An empty registry on S3: the fresh installation's user acts (pipeline.people.identity).
    cli = Cli(["--store", f"s3://{bucket}/evidence", "--catalog", f"s3://{bucket}/catalog"],
              env, [])
    _ingest(cli, tmp_path, clean_recording)
    code, out, err = cli("query", "SELECT store_key FROM recordings", "--json")
    assert code == 0, err
    return Archive(cli, f"s3://{bucket}/evidence/{json.loads(out)[0]['store_key']}", scratch,
                   tmp_path / "cache" / bucket / "catalog" / "audit")


def _escapes(a: Archive) -> list[tuple[str, str]]:
    """(SQL, the refusal after `custody query: error: query refused: `)."""
    out, db = a.scratch / "out.csv", a.scratch / "x.duckdb"
    return [
        (f"COPY (SELECT * FROM recordings) TO '{out}'", f"COPY statements are not allowed {WHY}"),
        ("SELECT * FROM read_csv('/etc/passwd')", f'Cannot access file "/etc/passwd" {WHY}'),
        (f"SELECT * FROM read_blob('{a.stored_object}')",
         f'Cannot access file "{a.stored_object}" {WHY}'),
        (f"ATTACH '{db}' AS x", f"ATTACH statements are not allowed {WHY}"),
        ("INSTALL httpfs", f"LOAD statements are not allowed {WHY}"),
        ("LOAD httpfs", f"LOAD statements are not allowed {WHY}"),
        ("SET enable_external_access = true", f"SET statements are not allowed {WHY}"),
        ("SELECT * FROM glob('/*')", f'Cannot access file "/*" {WHY}'),
        ("SELECT 1; SELECT 2", f"2 statements, one allowed {WHY}"),
    ]


ESCAPES = ["copy-to", "read-csv", "read-blob-of-a-stored-object", "attach", "install", "load",
           "set-external-access", "glob", "two-statements"]


@pytest.mark.parametrize("n", range(len(ESCAPES)), ids=ESCAPES)
def test_an_escape_is_refused_in_one_line_writes_nothing_and_is_audited(
    archive: Archive, n: int
) -> None:
    sql, why = _escapes(archive)[n]
    code, out, err = archive.cli("query", sql)
    assert (code, out) == (2, "")
    assert err == f"custody query: error: query refused: {why}\n"
    assert list(archive.scratch.iterdir()) == []
    last = archive.last_query_record()
    assert (last.result, last.reason) == ("refused", f"query refused: {why}; SQL: {sql}")


def test_a_select_is_answered_and_its_sql_text_is_audited(archive: Archive) -> None:
    sql = "SELECT count(*) AS n FROM recordings"
    code, out, err = archive.cli("query", sql, "--json")
    assert code == 0, err
    assert json.loads(out) == [{"n": 1}]
    last = archive.last_query_record()
    assert (last.result, last.reason) == ("allowed", f"SQL: {sql} (1 rows)")


def test_duckdb_itself_refuses_on_the_librarys_connection(tmp_path: Path) -> None:
    """Not only the statement check: the connection is closed after its views are made."""
    cat = Catalog(tmp_path / "catalog")
    with cat.connect() as con:
        assert con.execute("SELECT count(*) FROM recordings").fetchone() == (0,)
        for sql in (f"COPY (SELECT 1) TO '{tmp_path / 'out.csv'}'",
                    "SELECT * FROM read_text('/etc/hostname')",
                    f"ATTACH '{tmp_path / 'x.duckdb'}'"):
            with pytest.raises(duckdb.PermissionException):
                con.execute(sql)
        with pytest.raises(duckdb.InvalidInputException, match="configuration has been locked"):
            con.execute("SET enable_external_access = true")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["catalog"]
