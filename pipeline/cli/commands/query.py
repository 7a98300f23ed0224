"""`custody query SQL`: one SELECT over the catalog's DuckDB views, on a closed connection.

The connection reads only the files of the catalog's views (`pipeline.catalog.core`): a
statement that is not a SELECT, or that reads or writes anything else, is refused in one
line (exit 2). Every query's SQL text goes into the audit log with its outcome, after the
permission check's own record.
"""

from __future__ import annotations

import argparse
from typing import Any

from pipeline.cli.context import open_context
from pipeline.cli.render import Output, csv_text
from pipeline.cli.settings import Settings

VIEWS = ("recordings, streams, chunks, packets, findings, ingest_runs, ingest_files, "
         "recordings_by_officer, recordings_by_entity, recordings_by_day, findings_detail, "
         "findings_summary, late_ingests")


def cmd_query(args: argparse.Namespace, s: Settings, ui: Output) -> int:
    from pipeline.errors import CustodyError
    from schemas.audit import ALLOWED, REFUSED
    from schemas.people import QUERY

    with open_context(s, writes=False) as ctx:
        ctx.auth.authorize(ctx.actor, QUERY, "catalog")
        try:
            ctx.catalog.refresh_views()
            table = ctx.catalog.query(args.sql)
        except CustodyError as exc:
            ctx.auth.record(ctx.actor, QUERY, "catalog", REFUSED, f"{exc}; SQL: {args.sql}")
            raise
        ctx.auth.record(ctx.actor, QUERY, "catalog", ALLOWED,
                        f"SQL: {args.sql} ({table.num_rows} rows)")
    rows = table.to_pylist()
    if s.json:
        ui.dump_json(rows)
    elif args.format == "csv":
        ui.write(csv_text(rows, table.column_names))
    else:
        ui.table(rows, table.column_names)
        ui.write(f"({len(rows)} rows)\n")
    return 0


def register(sub: Any, shared: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "query", parents=[shared], help="run SQL on the catalog's DuckDB views",
        description=f"Run one SELECT over the catalog views ({VIEWS}) and print the "
        "result: a table (times in the configured zone), --csv or --json (stored values, "
        "UTC). The connection reads the views' own files and nothing else: COPY, ATTACH, "
        "INSTALL/LOAD, SET and read_*/glob of other paths are refused (exit 2). Every "
        "query's SQL text is recorded in the audit log.",
    )
    p.add_argument("sql", metavar="SQL", help="one SELECT over the catalog views")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--csv", dest="format", action="store_const", const="csv",
                     help="print CSV")
    fmt.add_argument("--table", dest="format", action="store_const", const="table",
                     help="print a table (default)")
    p.set_defaults(func=cmd_query, format=None)
