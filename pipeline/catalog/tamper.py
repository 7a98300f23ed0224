"""The catalog checked against the commits its audit log records: every edited, removed
or injected part named.

The audit chain (sealed into WORM) is the reference: each `catalog_commit` record states a
batch, the digest of its commit-list line or manifest object, and each part's name, size
and SHA-256 (`commits.py`). Against it:
- a part whose size or SHA-256 differs now (a row deleted, a file rewritten, a new S3
  version put over it) is CATALOG_PART_EDITED;
- a recorded part that is gone, or whose commit is no longer in the commit list, is
  CATALOG_PART_MISSING;
- a commit the list names that no record states, or states with other parts, is
  CATALOG_COMMIT_UNRECORDED, once per part it makes the views read;
- a file where parts live that no commit names is CATALOG_PART_UNRECORDED (not read);
- a broken link of the local commit list is CATALOG_COMMITS_BROKEN;
- a table whose parts read now hold another number of rows than every committed batch
  of it holds (a compaction that lost or doubled rows) is CATALOG_PART_EDITED, named on
  the compacted parts of that table;
- a compaction's fold of the case links (a derived part no batch commits) that is not
  the fold of the case events it names, folded again, is CATALOG_PART_EDITED.
Compaction (`compact.py`). Parts a compaction superseded are no longer read, but they stay
recorded and stored, and verify keeps checking them like any other (an edit is named, with
"superseded" in its detail): they are the evidence the compacted parts were made from, and
an edit made before compaction shows there even after the compaction refused or carried it.
Each finding's subject is `Subject("catalog", <the part's path or URI>)`. Every part is
read and hashed: this is `custody verify`'s cost, never a query's.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterable
from dataclasses import replace

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.catalog.commits import (
    CATALOG_COMMIT,
    COMMIT_LIST,
    Commit,
    PartEntry,
    RecordedCommit,
    parse_audit_reason,
)
from pipeline.catalog.parts import DERIVED, FOLD_SOURCE, Current, Parts
from pipeline.errors import CatalogError
from schemas.audit import AuditRecord
from schemas.media import Finding, Subject
from schemas.records import CaseLinkFoldRecord, arrow_schema
from schemas.verification import Verification
from schemas.views import FOLD_COLUMNS, case_links_fold

NOTE = (
    "every catalog part re-read and compared with the size and SHA-256 its commit recorded "
    "in the audit chain, every commit with its audit record; proves the views read what was "
    "committed, as far as the audit log is whole (see audit_chain)"
)


def recorded_commits(records: Iterable[AuditRecord]) -> dict[str, RecordedCommit]:
    """The commits the audit log records, by batch id (the last record of a batch wins)."""
    out: dict[str, RecordedCommit] = {}
    for r in records:
        if r.action == CATALOG_COMMIT:
            rec = parse_audit_reason(r.reason, r.seq)
            if rec is not None:
                out[rec.batch_id] = rec
    return out


def verify_catalog(parts: Parts, records: Iterable[AuditRecord]) -> Verification:
    """Check the parts of a catalog against the commits `records` state (module doc)."""
    recorded = recorded_commits(records)
    findings: list[Finding] = []

    def add(code: str, name: str, detail: str) -> None:
        where = parts.where(name)
        findings.append(Finding(code, f"{where}: {detail}", subject=Subject("catalog", where)))

    broken = parts.chain_break()
    if broken is not None:
        add("CATALOG_COMMITS_BROKEN", COMMIT_LIST, broken[1])

    commits = parts.commits()
    listed: dict[str, Commit] = {c.manifest.batch_id: c for c in commits}
    listed_names = {p.name for c in commits for p in c.manifest.parts}
    for c in commits:
        rec = recorded.get(c.manifest.batch_id)
        if rec is not None and rec.digest == c.digest:
            continue
        why = ("a batch of a catalog made before commits were recorded" if c.adopted
               else "no audit record states this commit" if rec is None
               else f"its audit record (#{rec.seq}) states other parts")
        for p in c.manifest.parts:
            add("CATALOG_COMMIT_UNRECORDED", p.name,
                f"read by the views as batch {c.manifest.batch_id} ({c.manifest.day}), but "
                f"{why}")

    named: dict[str, tuple[int, str, RecordedCommit]] = {}
    for rec in recorded.values():
        for name, size, sha in rec.parts:
            named[name] = (size, sha, rec)
    for name, (size, sha, rec) in sorted(named.items()):
        if rec.batch_id not in listed:
            add("CATALOG_PART_MISSING", name,
                f"batch {rec.batch_id} (audit record #{rec.seq}) is not in the catalog's "
                "commit list: the views do not read this part")
            continue
        now = parts.part_digest(name)
        if now is None:
            add("CATALOG_PART_MISSING", name,
                f"recorded by batch {rec.batch_id} (audit record #{rec.seq}), gone now")
        elif now != (size, sha):
            add("CATALOG_PART_EDITED", name,
                f"batch {rec.batch_id} (audit record #{rec.seq}) recorded {size} bytes, "
                f"SHA-256 {sha[:16]}...; now {now[0]} bytes, SHA-256 {now[1][:16]}...")

    reading = parts.current()
    current = reading.parts
    findings.extend(_rows_findings(parts, commits, current))
    findings.extend(_fold_findings(parts, reading))
    unread = {parts.where(n) for n in listed_names - {p.name for p in current}}
    findings[:] = [_superseded(f, unread) for f in findings]

    stored = parts.stored_parts()
    for name in sorted(set(stored) - set(named) - listed_names):
        add("CATALOG_PART_UNRECORDED", name,
            f"{stored[name]} bytes that no recorded commit names (put there by hand, or left "
            "by a writer that died before its commit); the views do not read it")
    checked = len(set(stored) | set(named) | listed_names)
    return Verification("catalog", Subject("catalog", parts.location), checked,
                        tuple(findings), NOTE)


def _superseded(f: Finding, unread: set[str]) -> Finding:
    """Say in an edited or missing part's detail that the views no longer read it."""
    if f.code not in ("CATALOG_PART_EDITED", "CATALOG_PART_MISSING") or f.subject.id not in unread:
        return f
    return replace(f, detail=f"{f.detail} (superseded by a compaction: the views no longer "
                   "read it)")


def _rows_findings(parts: Parts, commits: list[Commit],
                   current: tuple[PartEntry, ...]) -> list[Finding]:
    """Per table: the rows of every committed batch against the rows of the parts read
    now; they differ only when a compaction changed rows (or a commit was forged)."""
    committed: dict[str, int] = {}
    seen: set[str] = set()
    compacted: set[str] = set()
    for c in commits:
        if c.manifest.is_compaction:
            compacted.update(p.name for p in c.manifest.parts)
            continue
        for p in c.manifest.parts:
            if p.name not in seen:
                seen.add(p.name)
                committed[p.table] = committed.get(p.table, 0) + p.rows
    read: dict[str, int] = {}
    for p in current:
        if p.table not in DERIVED:  # no batch commits them: `_fold_findings`
            read[p.table] = read.get(p.table, 0) + p.rows
    out = []
    for table in sorted(set(committed) | set(read)):
        want, got = committed.get(table, 0), read.get(table, 0)
        if want == got:
            continue
        names = [p.name for p in current if p.table == table and p.name in compacted]
        for name in names or [COMMIT_LIST]:
            where = parts.where(name)
            out.append(Finding(
                "CATALOG_PART_EDITED",
                f"{where}: the views read {got} rows of {table}, the committed batches hold "
                f"{want}: a compaction changed rows", subject=Subject("catalog", where)))
    return out


def _fold_findings(parts: Parts, now: Current) -> list[Finding]:
    """The last compaction's fold of case links against the case events it names as its
    source, folded again here: a fold that names a part the views do not read, or holds
    other rows than its events give (a compaction that changed rows, or a forged one), is
    CATALOG_PART_EDITED on the fold's part. The events' bytes are read as stored (an edit
    of them is named above already)."""
    fold = [p for p in now.parts if p.table in DERIVED]
    if not now.folded or not fold:
        return []
    source = {p.name: p for p in now.parts if p.table == FOLD_SOURCE}
    unread = [n for n in now.folded if n not in source]
    if unread:
        why = (f"folds {len(unread)} case-event parts the views do not read (first "
               f"{parts.where(unread[0])})")
    else:
        def table(entries: Iterable[PartEntry]) -> pa.Table:
            return pa.concat_tables(
                [pq.read_table(io.BytesIO(parts.read_part(p))) for p in entries],
                promote_options="permissive")
        try:
            events = table(source[n] for n in now.folded).select(list(FOLD_COLUMNS))
            stored = table(fold)
        except CatalogError:
            return []  # a part gone: named as missing above
        cols = ", ".join(arrow_schema(CaseLinkFoldRecord).names)
        with contextlib.closing(duckdb.connect()) as con:
            con.register("events", events)
            con.register("stored", stored)
            con.execute(f"CREATE TEMP TABLE want AS {case_links_fold('events')}")
            extra, lost = (con.execute(
                f"SELECT count(*) FROM (SELECT {cols} FROM {a} EXCEPT ALL "
                f"SELECT {cols} FROM {b})").fetchall()[0][0] for a, b in
                (("stored", "want"), ("want", "stored")))
        if not extra and not lost:
            return []
        why = (f"holds {extra} rows the {len(now.folded)} case-event parts it folds do not "
               f"give, and lacks {lost} they give: a compaction changed rows")
    return [Finding("CATALOG_PART_EDITED", f"{parts.where(p.name)}: the fold of case links "
                    f"{why}", subject=Subject("catalog", parts.where(p.name)))
            for p in fold]
