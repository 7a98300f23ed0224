"""The `custody` command: parse, build one Settings, call one library function, render.

Settings come from flags, then the environment (CUSTODY_STORE, CUSTODY_CATALOG,
CUSTODY_CONFIG), then a TOML config file (`./custody.toml` or CUSTODY_CONFIG), then
defaults under `./custody-data/`. Only this module reads the environment and the clock.
Exit codes: 0 clean, 1 findings, 2 error (one line naming the file and the problem).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import io
import json
import os
import sys
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import pyarrow as pa

from pipeline import __version__
from pipeline.errors import CustodyError, InputError

if TYPE_CHECKING:
    from pipeline.catalog.core import Catalog

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
    actor: str | None = None  # --as STAFF_ID or `as` in the config: who acts (issue 4)
    # AWS_* variables (endpoint, region, credentials) for an s3:// store, read here once.
    store_env: Mapping[str, str] = field(default_factory=dict)
    os_user: str = "unknown"  # who runs the process, for a registry that is still empty
    # Local state of an s3:// catalog (catalog.duckdb, ingest lock, manifest cache).
    catalog_cache: str = f"{DEFAULT_HOME}/catalog-cache"

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


_S3_KEYS = {
    "endpoint_url": "AWS_ENDPOINT_URL_S3",
    "region": "AWS_REGION",
    "access_key_id": "AWS_ACCESS_KEY_ID",
    "secret_access_key": "AWS_SECRET_ACCESS_KEY",
    "profile": "AWS_PROFILE",
}


def _s3_env(cfg: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    """S3 endpoint and credentials: the `[custody.s3]` table of the config file, overridden
    by the usual AWS_* environment variables."""
    section = cfg.get("s3", {})
    if not isinstance(section, dict):
        raise InputError("config: [custody.s3] must be a table of S3 settings")
    unknown = set(section) - set(_S3_KEYS)
    if unknown:
        raise InputError(f"config: unknown [custody.s3] keys {sorted(unknown)}; "
                         f"expected {sorted(_S3_KEYS)}")
    out = {_S3_KEYS[k]: str(v) for k, v in section.items()}
    out.update({k: v for k, v in env.items() if k.startswith("AWS_")})
    return out


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
        actor=pick("as_staff", "", "as", None),
        store_env=_s3_env(cfg, env),
        os_user=env.get("USER") or env.get("LOGNAME") or "unknown",
        catalog_cache=str(pick("", "CUSTODY_CATALOG_CACHE", "catalog_cache",
                               f"{DEFAULT_HOME}/catalog-cache")),
    )


def open_catalog(s: Settings) -> Catalog:
    """The catalog `s` names. An s3:// catalog keeps its local state (catalog.duckdb for
    analysts, the ingest lock, cached manifests) under `<catalog_cache>/<bucket>/<prefix>`."""
    from pipeline.catalog.core import Catalog

    cache = Path(s.catalog_cache) / s.catalog.removeprefix("s3://").strip("/")
    return Catalog.open(s.catalog, env=s.store_env, cache_dir=cache)


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

def _gate_store(store: Any, override: bool, err: TextIO) -> str:
    """Run the store self-test; refuse a store that does not refuse deletion (S3 only)."""
    from pipeline.storage.selftest import selftest

    if store.streams_puts:  # the local store: tamper-evident by design, nothing to gate
        return "not_tamper_proof"
    report = selftest(store)
    if report.passed:
        return "passed"
    if not override:
        raise StoreSelftestFailed(
            f"{store.uri}: the store self-test failed, so this store may not protect "
            f"evidence: {report.summary()}. Fix the bucket (Object Lock, COMPLIANCE) or, "
            "knowingly, pass --allow-unverified-store (the override is recorded)"
        )
    err.write(f"warning: store self-test FAILED and was overridden: {report.summary()}\n")
    return "failed_overridden"


class StoreSelftestFailed(CustodyError):
    pass


def cmd_store_selftest(args: argparse.Namespace, s: Settings, out: TextIO, err: TextIO) -> int:
    from pipeline.storage import open_store
    from pipeline.storage.selftest import selftest
    from schemas.people import VERIFY

    store = open_store(s.store, env=s.store_env)
    with acting(s, open_catalog(s), store) as (auth, actor):
        auth.authorize(actor, VERIFY, f"selftest:{store.uri}")
        report = selftest(store)
        auth.record(actor, VERIFY, f"selftest:{store.uri}", "allowed", report.summary())
    if s.json:
        _dump_json({
            "store": report.store_uri, "passed": report.passed,
            "tamper_proof": report.tamper_proof, "note": report.note,
            "checks": [{"name": c.name, "passed": c.passed, "detail": c.detail}
                       for c in report.checks],
        }, out)
    else:
        for c in report.checks:
            out.write(f"{'PASS' if c.passed else 'FAIL'} {c.name}: {c.detail}\n")
        out.write(f"{report.summary()}\n{report.note}\n")
    return 0 if report.passed else 1


def _utc_date(text: str | None, offset: dt.timezone) -> dt.datetime | None:
    if text is None:
        return None
    from pipeline.ingest.labels import parse_time

    try:
        value = parse_time(text, offset)
    except ValueError:
        raise InputError(f"--until {text!r}: expected a date like 2036-12-31") from None
    return value


def cmd_retention_set(args: argparse.Namespace, s: Settings, out: TextIO, err: TextIO) -> int:
    from pipeline.retention.engine import set_retention
    from pipeline.storage import open_store
    from schemas.retention import Tier, Trigger

    store, catalog = open_store(s.store, env=s.store_env), open_catalog(s)
    with acting(s, catalog, store) as (auth, actor):
        changes = set_retention(
            store, catalog, auth=auth, actor=actor, tier=Tier(args.tier),
            now=s.now(), selectors=args.recordings, case_number=args.case,
            until_utc=_utc_date(args.until, s.utc_offset),
            trigger=Trigger(args.trigger) if args.trigger else None, reason=args.reason,
        )
    return _render_changes(changes, s, out)


def _render_changes(changes: Sequence[Any], s: Settings, out: TextIO) -> int:
    from schemas.retention import TIERS

    rows = [{"file": c.file_name, "blake3": c.blake3[:16],
             "tier": f"{c.before.tier} -> {c.after.tier} ({TIERS[c.after.tier].title_zh})",
             "retain_until": f"{c.before.retain_until_utc.date()} -> "
                             f"{c.after.retain_until_utc.date()}",
             "legal_hold": c.after.legal_hold} for c in changes]
    if s.json:
        _dump_json(rows, out)
    else:
        render_table(rows, ["file", "blake3", "tier", "retain_until", "legal_hold"], out)
    return 0


def cmd_retention_release(
    args: argparse.Namespace, s: Settings, out: TextIO, err: TextIO
) -> int:
    from pipeline.retention.engine import release_hold
    from pipeline.storage import open_store

    store, catalog = open_store(s.store, env=s.store_env), open_catalog(s)
    with acting(s, catalog, store) as (auth, actor):
        changes = release_hold(
            store, catalog, auth=auth, first=actor, second=args.second, now=s.now(),
            selectors=args.recordings, case_number=args.case, reason=args.reason,
        )
    return _render_changes(changes, s, out)


def _export_rows(states: Sequence[Any]) -> list[dict[str, Any]]:
    from pipeline.export.requests import RECIPIENTS

    return [{"export_id": e.export_id, "status": e.status, "case": e.case_number,
             "recordings": len(e.recordings), "recipient": f"{e.recipient} "
             f"({RECIPIENTS[e.recipient]})", "purpose": e.purpose,
             "requested_by": e.requested_by, "approved_by": e.approved_by} for e in states]


def _show_exports(states: Sequence[Any], s: Settings, out: TextIO) -> None:
    rows = _export_rows(states)
    if s.json:
        _dump_json(rows, out)
    else:
        render_table(rows, list(rows[0]) if rows else ["export_id"], out)


def cmd_export_request(args: argparse.Namespace, s: Settings, out: TextIO, err: TextIO) -> int:
    from pipeline.export.requests import request_export
    from pipeline.storage import open_store

    catalog = open_catalog(s)
    with acting(s, catalog, open_store(s.store, env=s.store_env)) as (auth, actor):
        state = request_export(catalog, auth, actor, now=s.now(), recipient=args.recipient,
                               purpose=args.purpose, selectors=args.recordings,
                               case_number=args.case)
    _show_exports([state], s, out)
    return 0


def cmd_export_approve(args: argparse.Namespace, s: Settings, out: TextIO, err: TextIO) -> int:
    from pipeline.export.requests import approve_export
    from pipeline.storage import open_store

    catalog = open_catalog(s)
    with acting(s, catalog, open_store(s.store, env=s.store_env)) as (auth, actor):
        state = approve_export(catalog, auth, actor, args.export_id, now=s.now())
    _show_exports([state], s, out)
    return 0


def cmd_export_list(args: argparse.Namespace, s: Settings, out: TextIO, err: TextIO) -> int:
    from pipeline.export.requests import list_exports
    from pipeline.storage import open_store
    from schemas.people import VIEW

    catalog = open_catalog(s)
    with acting(s, catalog, open_store(s.store, env=s.store_env)) as (auth, actor):
        auth.authorize(actor, VIEW, "exports")
    _show_exports(list_exports(catalog), s, out)
    return 0


def cmd_retention_show(args: argparse.Namespace, s: Settings, out: TextIO, err: TextIO) -> int:
    from pipeline.retention.engine import current_states
    from pipeline.storage import open_store
    from schemas.people import VIEW
    from schemas.retention import TIERS, Tier

    store, catalog = open_store(s.store, env=s.store_env), open_catalog(s)
    with acting(s, catalog, store) as (auth, actor):
        auth.authorize(actor, VIEW, "retention")
    rows = current_states(catalog, args.recordings, args.case)
    shown = []
    for r in rows:
        head = store.head(r["store_key"]) if store.exists(r["store_key"]) else None
        shown.append({
            "file": r["file_name"], "blake3": r["blake3"][:16], "case": r["case_number"],
            "tier": r["tier"], "tier_zh": TIERS[Tier(r["tier"])].title_zh,
            "retain_until": r["retain_until_utc"], "legal_hold": r["legal_hold"],
            "store_retain_until": head.retain_until_utc if head else None,
            "store_legal_hold": head.legal_hold if head else None,
        })
    if s.json:
        _dump_json(shown, out)
    else:
        render_table(shown, list(shown[0]) if shown else ["file"], out)
        out.write(f"({len(shown)} recordings)\n")
    return 0


def cmd_ingest(args: argparse.Namespace, s: Settings, out: TextIO, err: TextIO) -> int:
    from pipeline.ingest.run import IngestSettings, ingest
    from pipeline.storage import open_store

    store = open_store(s.store, env=s.store_env)
    catalog = open_catalog(s)
    selftest_state = _gate_store(store, args.allow_unverified_store, err)
    settings = IngestSettings(
        now=s.now, labels_path=s.labels, chunk_size=s.chunk_size,
        min_lock=dt.timedelta(days=s.min_lock_days), default_offset=s.utc_offset,
        probe_workers=s.probe_workers, batch_files=s.batch_files,
        store_selftest=selftest_state, full_demux=args.full_demux,
    )
    with acting(s, catalog, store) as (auth, actor):
        result = ingest(
            args.sources, store=store, catalog=catalog, settings=settings,
            progress=_progress_bar(err) if s.progress else None, auth=auth, actor=actor,
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
        f"(duckdb {catalog.db_path})\n"
    )
    for unused in result.unused_labels:
        err.write(f"warning: labels row for {unused!r} matched no ingested file\n")
    return result.exit_code()


def cmd_query(args: argparse.Namespace, s: Settings, out: TextIO, err: TextIO) -> int:
    from pipeline.storage import open_store
    from schemas.people import QUERY

    catalog = open_catalog(s)
    with acting(s, catalog, open_store(s.store, env=s.store_env)) as (auth, actor):
        auth.authorize(actor, QUERY, "catalog")
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
    from pipeline.integrity.fixity import verify
    from pipeline.storage import open_store
    from schemas.people import VERIFY

    store, catalog = open_store(s.store, env=s.store_env), open_catalog(s)
    with acting(s, catalog, store) as (auth, actor):
        auth.authorize(actor, VERIFY, store.uri)
        results = verify(store, catalog, args.recordings,
                         progress=_progress_bar(err) if s.progress else None)
        bad_keys = [r.store_key for r in results if not r.ok]
        auth.record(actor, VERIFY, store.uri, "allowed",
                    f"{len(results)} objects checked, {len(bad_keys)} failed"
                    + (f": {', '.join(bad_keys[:20])}" if bad_keys else ""))
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
    p.add_argument("--as", dest="as_staff", metavar="STAFF_ID",
                   help="act as this registered person (default: `as` in custody.toml)")


@contextlib.contextmanager
def acting(s: Settings, catalog: Any, store: Any) -> Iterator[tuple[Any, str]]:
    """(Authority, acting person) for one command. Without `--as`, only a fresh
    installation (empty personnel registry) may act, as the operating-system user."""
    from pipeline.people.permissions import open_authority

    with open_authority(catalog, store, s.now) as auth:
        actor = s.actor
        if not actor:
            if not auth.registry.is_empty():
                raise InputError(
                    "no acting person: pass --as STAFF_ID or set `as = \"STAFF_ID\"` in "
                    "custody.toml (every command acts as a registered person)"
                )
            actor = f"unregistered:{s.os_user}"
        yield auth, actor


def _selection(p: argparse.ArgumentParser) -> None:
    """Which recordings a command acts on: named ones, or every one of a case."""
    p.add_argument("recordings", nargs="*", metavar="RECORDING",
                   help="BLAKE3 prefix, file name or source path")
    p.add_argument("--case", help="every recording labelled with this case number 案号")


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
    p.add_argument("sources", nargs="+", metavar="SOURCE",
                   help="files or folders (recursive) to archive")
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
    p.add_argument("--full-demux", dest="full_demux", action="store_true",
                   help="read every packet of plain MP4/MOV files too, instead of timing "
                   "them from their sample tables (same result, slower)")
    p.add_argument("--allow-unverified-store", action="store_true",
                   help="ingest into an S3 store even though its self-test fails "
                   "(recorded with the run; never do this for real evidence)")
    _common(p)
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser(
        "query", help="run SQL on the catalog's DuckDB views",
        description="Run one SQL statement over the catalog views (recordings, streams, "
        "chunks, packets, findings, ingest_runs, ingest_files, recordings_by_officer, "
        "recordings_by_entity, recordings_by_day, findings_detail, findings_summary, "
        "late_ingests) and print the result.",
    )
    p.add_argument("sql", help="one SQL statement over the catalog views")
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

    store = sub.add_parser(
        "store", help="WORM store administration",
        description="Administer the WORM store.",
    )
    store_sub = store.add_subparsers(dest="store_command", required=True, metavar="ACTION")
    p = store_sub.add_parser(
        "selftest", help="prove the store refuses deletion",
        description="Write a canary under a short COMPLIANCE retention, then try to "
        "delete it, overwrite it and shorten its retention; pass only if the store refuses "
        "all three. The local store is tamper-evident, not tamper-proof, and says so.",
    )
    _common(p)
    p.set_defaults(func=cmd_store_selftest)
    ret = sub.add_parser(
        "retention", help="raise and show retention (AV-11, AV-13)",
        description="Retention tiers: one_year 保存不少于一年 (default), case 随案卷时限保存, "
        "permanent 长期保存. A tier only goes up; retain-until only grows.",
    )
    ret_sub = ret.add_subparsers(dest="retention_command", required=True, metavar="ACTION")
    p = ret_sub.add_parser(
        "set", help="raise the retention tier of recordings or of a whole case",
        description="Raise recordings (or every recording of --case) to a tier and apply "
        "it to the store: case = legal hold while the case is open and retain-until the "
        "case file's retention end (--until); permanent = legal hold and the longest "
        "retention the store allows, with an AV-13 --trigger. Lowering is refused.",
    )
    _selection(p)
    p.add_argument("--tier", required=True, choices=["one_year", "case", "permanent"],
                   help="the new tier")
    p.add_argument("--until", help="retain-until date (the case file's retention end)")
    p.add_argument("--trigger",
                   choices=["objection", "obstruction", "review_litigation", "other_important"],
                   help="AV-13 reason for permanent retention")
    p.add_argument("--reason", help="free text kept with the change")
    _common(p)
    p.set_defaults(func=cmd_retention_set)
    p = ret_sub.add_parser(
        "release", help="lift a legal hold (two different authorised people)",
        description="Lift the legal hold of recordings (or of a whole --case, e.g. when the "
        "case is closed). Needs two different people allowed to lift holds: the acting "
        "person (--as) and --second. The retain-until date stays; the lock runs to it.",
    )
    _selection(p)
    p.add_argument("--second", required=True, metavar="STAFF_ID",
                   help="the second authorised person who confirms the release")
    p.add_argument("--reason", help="why, kept with the change (e.g. case closed)")
    _common(p)
    p.set_defaults(func=cmd_retention_release)
    p = ret_sub.add_parser(
        "show", help="current retention of recordings, from the catalog and the store",
        description="Show each recording's tier, retain-until and legal hold as the catalog "
        "records them, beside what the store itself reports.",
    )
    _selection(p)
    _common(p)
    p.set_defaults(func=cmd_retention_show)

    exp = sub.add_parser(
        "export", help="release footage outside: request and approval (AV-14, AV-15)",
        description="Footage leaves the archive only as an export requested by one person "
        "and approved by another (AV-15); auxiliary staff may do neither (AUX-10).",
    )
    exp_sub = exp.add_subparsers(dest="export_command", required=True, metavar="ACTION")
    p = exp_sub.add_parser(
        "request", help="request the release of recordings or of a whole case",
        description="Record a request to release recordings to the procuratorate, a court "
        "or another approved recipient, with its purpose.",
    )
    _selection(p)
    p.add_argument("--recipient", required=True,
                   choices=["procuratorate", "court", "review_body", "other"],
                   help="who receives it: 检察院, 法院, 复议机关, other")
    p.add_argument("--purpose", required=True, help="what the footage is evidence of")
    _common(p)
    p.set_defaults(func=cmd_export_request)
    p = exp_sub.add_parser(
        "approve", help="approve an export requested by someone else",
        description="Approve an export request. The approver must be allowed to approve "
        "and must not be the requester (AV-15).",
    )
    p.add_argument("export_id", metavar="EXPORT_ID", help="the export to approve")
    _common(p)
    p.set_defaults(func=cmd_export_approve)
    p = exp_sub.add_parser("list", help="exports and their status",
                           description="List export requests and approvals.")
    _common(p)
    p.set_defaults(func=cmd_export_list)

    from pipeline.cli import (
        people as cli_people,  # staff, device, audit; imported here: it imports main
    )

    cli_people.register(sub)
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
