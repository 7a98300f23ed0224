"""The `custody` command: parse, build one Settings, call one library function, render.

Settings come from flags, then the environment (CUSTODY_STORE, CUSTODY_CATALOG,
CUSTODY_CONFIG), then a TOML config file (`./custody.toml` or CUSTODY_CONFIG), then
defaults under `./custody-data/`. Only this module reads the environment and the clock.
Exit codes: 0 clean, 1 findings, 2 error (one line naming the file and the problem).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import os
import sys
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import pyarrow as pa

from pipeline import __version__
from pipeline.errors import CustodyError, InputError

DEFAULT_HOME = "custody-data"


@dataclass(frozen=True, slots=True)
class Settings:
    store: str
    catalog: str
    labels: str | None
    json: bool
    progress: bool
    utc_offset: dt.timezone
    min_lock_days: int
    chunk_size: int
    probe_workers: int
    batch_files: int

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


def _parse_offset(text: str) -> dt.timezone:
    sign = -1 if text.startswith("-") else 1
    hh, _, mm = text.lstrip("+-").partition(":")
    try:
        return dt.timezone(sign * dt.timedelta(hours=int(hh), minutes=int(mm or 0)))
    except ValueError:
        raise InputError(f"--utc-offset {text!r}: expected e.g. +08:00") from None


def _load_config(env: Mapping[str, str], explicit: str | None) -> dict[str, Any]:
    path = explicit or env.get("CUSTODY_CONFIG")
    candidate = Path(path) if path else Path("custody.toml")
    if not candidate.exists():
        if path:
            raise InputError(f"{candidate}: config file not found")
        return {}
    try:
        with open(candidate, "rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{candidate}: invalid TOML: {exc}") from exc
    section = data.get("custody", data)
    return dict(section)


def build_settings(args: argparse.Namespace, env: Mapping[str, str]) -> Settings:
    cfg = _load_config(env, getattr(args, "config", None))

    def pick(flag: str, env_name: str, key: str, default: Any) -> Any:
        value = getattr(args, flag, None)
        if value is not None:
            return value
        if env_name and env.get(env_name):
            return env[env_name]
        return cfg.get(key, default)

    return Settings(
        store=str(pick("store", "CUSTODY_STORE", "store", f"{DEFAULT_HOME}/store")),
        catalog=str(pick("catalog", "CUSTODY_CATALOG", "catalog", f"{DEFAULT_HOME}/catalog")),
        labels=pick("labels", "", "labels", None),
        json=bool(getattr(args, "json", False)),
        progress=not getattr(args, "json", False) and sys.stderr.isatty()
        and not getattr(args, "quiet", False),
        utc_offset=_parse_offset(str(pick("utc_offset", "", "utc_offset", "+08:00"))),
        min_lock_days=int(pick("min_lock_days", "", "min_lock_days", 90)),
        chunk_size=int(pick("chunk_size", "", "chunk_size", 1 << 20)),
        probe_workers=int(pick("workers", "", "workers", max(1, (os.cpu_count() or 2) - 1))),
        batch_files=int(pick("batch_files", "", "batch_files", 16)),
    )


# --- rendering ----------------------------------------------------------------------------

def _progress_bar(out: TextIO) -> Callable[[int, int, str], None]:
    def show(done: int, total: int, name: str) -> None:
        width = 30
        filled = int(width * done / total) if total else width
        bar = "#" * filled + "-" * (width - filled)
        label = name[-40:] if name else "done"
        out.write(f"\r[{bar}] {done}/{total} {label:<40}")
        if done >= total:
            out.write("\n")
        out.flush()

    return show


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.3f}"
    if isinstance(v, dt.datetime):
        return v.isoformat(timespec="seconds")
    if isinstance(v, list):
        return ";".join(_cell(x) for x in v)
    return str(v)


def _width(s: str) -> int:
    # CJK characters take two columns on a terminal.
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in s)


def render_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], out: TextIO) -> None:
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([_width(c)] + [_width(row[i]) for row in cells]) for i, c in enumerate(columns)]
    widths = [min(w, 60) for w in widths]

    def line(vals: Sequence[str]) -> str:
        parts = []
        for v, w in zip(vals, widths, strict=True):
            v = v if _width(v) <= w else v[: w - 1] + "…"
            parts.append(v + " " * max(0, w - _width(v)))
        return "  ".join(parts).rstrip()

    out.write(line(columns) + "\n")
    out.write(line(["-" * w for w in widths]) + "\n")
    for row in cells:
        out.write(line(row) + "\n")


def _json_default(v: Any) -> Any:
    if isinstance(v, dt.datetime | dt.date):
        return v.isoformat()
    if isinstance(v, bytes):
        return v.hex()
    return str(v)


def _dump_json(doc: Any, out: TextIO) -> None:
    out.write(json.dumps(doc, ensure_ascii=False, indent=2, default=_json_default) + "\n")


# --- commands -------------------------------------------------------------------------------

def cmd_ingest(args: argparse.Namespace, s: Settings, out: TextIO, err: TextIO) -> int:
    from pipeline.catalog import Catalog
    from pipeline.ingest import IngestSettings, ingest
    from pipeline.storage import open_store

    store = open_store(s.store)
    catalog = Catalog(s.catalog)
    settings = IngestSettings(
        now=s.now, labels_path=s.labels, chunk_size=s.chunk_size,
        min_lock=dt.timedelta(days=s.min_lock_days), default_offset=s.utc_offset,
        probe_workers=s.probe_workers, batch_files=s.batch_files,
    )
    result = ingest(
        args.sources, store=store, catalog=catalog, settings=settings,
        progress=_progress_bar(err) if s.progress else None,
    )
    catalog.refresh_views()
    if s.json:
        _dump_json(result.as_json(), out)
        return result.exit_code()
    rows = [
        {"file": Path(o.path).name, "status": o.status,
         "blake3": (o.blake3 or "")[:16], "findings": len(o.findings),
         "reason": o.reason or ""}
        for o in result.files
    ]
    render_table(rows, ["file", "status", "blake3", "findings", "reason"], out)
    out.write("\n")
    frows = [
        {"file": Path(o.path).name, "code": f.code, "rule": f.rule, "severity": f.severity,
         "at_s": f.at_seconds, "title": f"{f.title_zh} / {f.title_en}", "detail": f.detail}
        for o, f in result.findings
    ]
    if frows:
        out.write(f"Findings 发现的问题 ({len(frows)}):\n")
        render_table(frows, ["file", "code", "rule", "severity", "at_s", "title", "detail"], out)
        out.write("\n")
    out.write(
        f"run {result.run_id}: {len(result.files)} files, "
        f"{result.count('archived')} archived, {result.count('already_archived')} already "
        f"archived, {result.count('skipped')} skipped, {result.count('failed')} failed, "
        f"{len(frows)} findings\n"
        f"store {result.store_uri}\ncatalog {result.catalog_path} "
        f"(duckdb {Path(result.catalog_path) / 'catalog.duckdb'})\n"
    )
    for unused in result.unused_labels:
        err.write(f"warning: labels row for {unused!r} matched no ingested file\n")
    return result.exit_code()


def cmd_query(args: argparse.Namespace, s: Settings, out: TextIO, err: TextIO) -> int:
    from pipeline.catalog import Catalog

    catalog = Catalog(s.catalog)
    catalog.refresh_views()
    table: pa.Table = catalog.query(args.sql)
    rows = table.to_pylist()
    if args.format == "json" or s.json:
        _dump_json(rows, out)
    elif args.format == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(table.column_names)
        for r in rows:
            writer.writerow([_cell(r[c]) for c in table.column_names])
        out.write(buf.getvalue())
    else:
        render_table(rows, table.column_names, out)
        out.write(f"({len(rows)} rows)\n")
    return 0


def cmd_verify(args: argparse.Namespace, s: Settings, out: TextIO, err: TextIO) -> int:
    from pipeline.catalog import Catalog
    from pipeline.fixity import verify
    from pipeline.storage import open_store

    results = verify(
        open_store(s.store), Catalog(s.catalog), args.recordings,
        progress=_progress_bar(err) if s.progress else None,
    )
    bad = [r for r in results if not r.ok]
    if s.json:
        _dump_json({
            "checked": len(results), "failed": len(bad),
            "objects": [{
                "blake3": r.blake3, "file_name": r.file_name, "key": r.store_key,
                "ok": r.ok,
                "bad_chunks": [{"index": i, "offset": o, "length": n}
                               for i, o, n in r.bad_chunks],
                "findings": [{"code": f.code, "title_en": f.title_en, "title_zh": f.title_zh,
                              "detail": f.detail} for f in r.findings],
            } for r in results],
        }, out)
    else:
        for r in results:
            out.write(f"{'OK  ' if r.ok else 'FAIL'} {r.file_name} {r.blake3[:16]}\n")
            for f in r.findings:
                out.write(f"     {f.code} {f.title_zh} / {f.title_en}: {f.detail}\n")
        out.write(f"{len(results)} objects checked, {len(bad)} failed\n")
    if args.recordings and not results:
        raise InputError(f"no recording in the catalog matches {' '.join(args.recordings)}")
    return 1 if bad else 0


# --- parser ----------------------------------------------------------------------------------

def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", help="WORM store: a directory, or s3://bucket/prefix "
                   f"(default ./{DEFAULT_HOME}/store)")
    p.add_argument("--catalog", help=f"catalog directory (default ./{DEFAULT_HOME}/catalog)")
    p.add_argument("--config", help="TOML config file (default ./custody.toml if present)")
    p.add_argument("--json", action="store_true", help="print one JSON document")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="custody",
        description="Evidence media integrity and archive pipeline (大柘镇 执法音像记录).",
    )
    parser.add_argument("--version", action="version", version=f"custody {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "ingest", help="archive recordings: hash, store WORM, analyse, catalog",
        description="Archive every file below SOURCE (files or folders, recursive): one "
        "read hashes it (BLAKE3) into the WORM store, the demuxer's timestamps are checked "
        "for interruptions and edits (AV-9), labels and the 24-hour rule (AV-12) are "
        "applied, and the results are committed to the catalog.",
    )
    p.add_argument("sources", nargs="+", metavar="SOURCE")
    p.add_argument("--labels", help="labels file, CSV or JSON (see README: Labels)")
    p.add_argument("--utc-offset", dest="utc_offset",
                   help="offset of label times without one (default +08:00)")
    p.add_argument("--min-lock-days", dest="min_lock_days", type=int,
                   help="shortest retention after ingest, days (default 90)")
    p.add_argument("--chunk-size", dest="chunk_size", type=int,
                   help="fixity chunk size in bytes (default 1048576)")
    p.add_argument("--workers", type=int, help="demux worker processes (default cores-1)")
    p.add_argument("--batch-files", dest="batch_files", type=int,
                   help="files per atomic catalog commit (default 16)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _common(p)
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser(
        "query", help="run SQL on the catalog's DuckDB views",
        description="Run one SQL statement over the catalog views (recordings, streams, "
        "chunks, packets, findings, ingest_runs, ingest_files, recordings_by_officer, "
        "recordings_by_entity, recordings_by_day, findings_detail, findings_summary, "
        "late_ingests) and print the result.",
    )
    p.add_argument("sql")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--csv", dest="format", action="store_const", const="csv",
                     help="print CSV")
    fmt.add_argument("--table", dest="format", action="store_const", const="table",
                     help="print a table (default)")
    _common(p)
    p.set_defaults(func=cmd_query, format="table")

    p = sub.add_parser(
        "verify", help="re-hash stored objects against the catalog (fixity)",
        description="Read each stored object and compare every chunk's BLAKE3 with the one "
        "recorded at ingest; names each mismatching chunk by offset and length. "
        "Exit 1 if any object is damaged or missing.",
    )
    p.add_argument("recordings", nargs="*", metavar="RECORDING",
                   help="BLAKE3 prefix, file name or source path (default: all)")
    _common(p)
    p.set_defaults(func=cmd_verify)
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = build_settings(args, os.environ if env is None else env)
        code: int = args.func(args, settings, out, err)
        return code
    except CustodyError as exc:
        err.write(f"custody {args.command}: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        err.write(f"custody {args.command}: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
