"""A compaction's fold of the case links (schemas.records.CaseLinkFoldRecord): the views
merge it with the link events committed after it and give exactly the links that folding
every event gives; `custody verify` folds the events again and names a fold that differs.
On a local catalog and on S3 (a real SeaweedFS), with a real audit log and registry."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pipeline.audit.log import AuditLog
from pipeline.catalog.commits import Manifest, PartEntry, recorder_for
from pipeline.catalog.compact import _fold, _merge, compact, plan
from pipeline.catalog.core import Catalog
from pipeline.catalog.parts import Current, LocalParts, Parts, Staged
from pipeline.catalog.tamper import verify_catalog
from pipeline.errors import CatalogError
from pipeline.people.permissions import Authority
from pipeline.people.registry import NewStaff, Registry
from pipeline.storage.local import LocalStore
from schemas.records import CaseEventRecord, ChunkRecord
from schemas.views import case_links_fold
from tests.anyone import AnyoneAuthority
from tests.contract._support import fresh_bucket, s3_config
from tests.integration.test_catalog_tamper import Cli

T0 = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)
CASE = "遂大综执罚〔2026〕7号"
A, B, C, D = ("a" * 64, "b" * 64, "c" * 64, "d" * 64)  # the recordings' BLAKE3


def at(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


@dataclass
class World:
    catalog: Catalog
    auth: Authority
    audit: AuditLog


@pytest.fixture(params=["local", "s3"])
def w(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    if request.param == "local":
        catalog = Catalog(tmp_path / "catalog")
    else:
        s3 = request.getfixturevalue("s3_server")
        bucket = fresh_bucket(s3_config(s3).client())
        catalog = Catalog.open(f"s3://{bucket}/catalog", env=s3.env(),
                               cache_dir=tmp_path / "cache")
    ticks = itertools.count(24 * 60)  # a clock that moves: S3 orders compactions by time
    audit = AuditLog.for_catalog(catalog.root, store=LocalStore(tmp_path / "store"),
                                 clock=lambda: at(next(ticks)))
    reg = Registry(catalog)
    auth = AnyoneAuthority(reg, audit)
    reg.add_staff(auth, "A-1", NewStaff("A-1", "officer", "官甲", "综合执法队", "执法队员",
                                        roles=("administrator",),
                                        certificate_number="ZJ-A-1"), at_utc=T0)
    yield World(catalog, auth, audit)
    audit.close()
    catalog.close()


def link(rec: str, minutes: int, step: str | None = None) -> CaseEventRecord:
    return CaseEventRecord(CASE, "linked", at(minutes), "ZF0101", recording_blake3=rec,
                           step=step)


def unlink(rec: str, minutes: int) -> CaseEventRecord:
    return CaseEventRecord(CASE, "unlinked", at(minutes), "ZF0101", recording_blake3=rec,
                           text="wrong case")


def commit(cat: Catalog, *events: CaseEventRecord) -> None:
    batch = cat.batch()
    batch.add(CaseEventRecord, list(events))
    batch.commit(T0.date())


def links(cat: Catalog, view: str = "case_links_current") -> list[tuple[Any, ...]]:
    rows = cat.query(f"SELECT recording_blake3, step, linked_at_utc FROM {view} "
                     "ORDER BY recording_blake3").to_pylist()
    return [(r["recording_blake3"][0], r["step"], r["linked_at_utc"]) for r in rows]


def refolded(cat: Catalog) -> list[tuple[Any, ...]]:
    """The links as folding every committed event at once gives them (no fold part)."""
    rows = cat.query(f"SELECT recording_blake3, step, linked_at_utc FROM "
                     f"({case_links_fold('case_events')}) WHERE last_event = 'linked' "
                     "ORDER BY recording_blake3").to_pylist()
    return [(r["recording_blake3"][0], r["step"], r["linked_at_utc"]) for r in rows]


def count(cat: Catalog, view: str) -> int:
    return int(cat.query(f"SELECT count(*) AS n FROM {view}").column("n")[0].as_py())


def folded_world(w: World) -> None:
    """A linked at 调查取证, unlinked, linked again with no step; B linked; C linked and
    unlinked: two batches, compacted into one part of events and the fold."""
    commit(w.catalog, link(A, 1, "调查取证"), link(B, 2), link(C, 3))
    commit(w.catalog, unlink(A, 4), unlink(C, 5), link(A, 6))
    assert compact(w.catalog, auth=w.auth, actor="A-1").links_folded == 3


@pytest.mark.slow
def test_the_links_after_a_compaction_are_the_fold_merged_with_later_events(
    w: World,
) -> None:
    folded_world(w)
    # A keeps the step of its last link that named one; C's last event unlinked it.
    assert links(w.catalog) == refolded(w.catalog) == [("a", "调查取证", at(6)),
                                                       ("b", None, at(2))]
    assert (count(w.catalog, "case_links_folded"),
            count(w.catalog, "case_events_unfolded")) == (3, 0)
    # Later: B unlinked, C linked again at 文书送达, D linked, A linked at 告知.
    commit(w.catalog, unlink(B, 7), link(C, 8, "文书送达"), link(D, 9))
    commit(w.catalog, link(A, 10, "告知"))
    assert (count(w.catalog, "case_links_folded"),
            count(w.catalog, "case_events_unfolded")) == (3, 4)
    want = [("a", "告知", at(10)), ("c", "文书送达", at(8)), ("d", None, at(9))]
    assert links(w.catalog) == refolded(w.catalog) == want
    # The next compaction folds them all again, and verify finds the fold whole.
    assert compact(w.catalog, auth=w.auth, actor="A-1").links_folded == 4
    assert (count(w.catalog, "case_links_folded"),
            count(w.catalog, "case_events_unfolded")) == (4, 0)
    assert links(w.catalog) == want
    v = verify_catalog(w.catalog.parts, w.audit.records())
    assert v.findings == ()


def test_the_fold_reads_the_case_events_a_compaction_carries(w: World) -> None:
    """One part of case events (a lone small one is carried, not merged) while the chunks'
    two parts merge: the fold is made from the carried part too."""
    commit(w.catalog, link(A, 1, "调查取证"), link(B, 2))
    for i in range(2):
        batch = w.catalog.batch()
        batch.add(ChunkRecord, [ChunkRecord(C, i, 0, 1, "f" * 64)])
        batch.commit(T0.date())
    result = compact(w.catalog, auth=w.auth, actor="A-1")
    assert ([t.table for t in result.tables], result.links_folded) == (["chunks"], 2)
    (events,) = [p.name for p in w.catalog.parts.current().parts if p.table == "case_events"]
    assert w.catalog.parts.current().folded == (events,)
    assert (count(w.catalog, "case_links_folded"),
            count(w.catalog, "case_events_unfolded")) == (2, 0)
    assert links(w.catalog) == [("a", "调查取证", at(1)), ("b", None, at(2))]


@pytest.mark.parametrize("w", ["local"], indirect=True)  # a part edited in place, by hand
def test_a_carried_case_event_part_edited_since_its_commit_is_refused_not_folded(
    w: World,
) -> None:
    """The lone part of case events is carried (not merged), so only the fold reads it:
    edited since its commit, it stops the compaction, naming it, and nothing is committed."""
    commit(w.catalog, link(A, 1), link(B, 2))
    for i in range(2):
        batch = w.catalog.batch()
        batch.add(ChunkRecord, [ChunkRecord(C, i, 0, 1, "f" * 64)])
        batch.commit(T0.date())
    (part,) = [p for p in w.catalog.parts.current().parts if p.table == "case_events"]
    path = w.catalog.root / part.name
    table = pq.read_table(path)
    pq.write_table(table.slice(1), path)
    lines = (w.catalog.root / "commits.jsonl").read_bytes()
    with pytest.raises(CatalogError, match=rf"^{path}: not compacted: the part no longer has "
                       rf"the size and SHA-256 its commit recorded \({part.size_bytes} bytes"):
        compact(w.catalog, auth=w.auth, actor="A-1")
    assert (w.catalog.root / "commits.jsonl").read_bytes() == lines
    assert list((w.catalog.root / "staging").iterdir()) == []


def _folded_not_published(
    w: World, cid: str,
) -> tuple[Parts, Current, list[Staged], Staged | None, list[PartEntry]]:
    """A, B and C linked in two batches, merged and folded into staging by a compaction
    that has not committed yet: (parts, base, merged parts, fold, carried parts)."""
    commit(w.catalog, link(A, 1), link(B, 2))
    commit(w.catalog, link(C, 3))
    parts = w.catalog.parts
    base = parts.current()
    merges, carried = plan(base.parts, 1 << 20)
    stage = parts.staging(cid)
    staged = [s for m in merges for s in _merge(parts, m, stage, 1 << 20)]
    return parts, base, staged, _fold(parts, staged, carried, stage), carried


def test_an_event_committed_while_a_compaction_folds_is_read_after_it(w: World) -> None:
    """A case command may commit while a compaction merges and folds (it holds only the
    ingest lock): its events are not in the fold, and the views read them after it."""
    parts, base, staged, fold, carried = _folded_not_published(w, "compact-during")
    assert fold is not None
    commit(w.catalog, unlink(B, 4))  # committed meanwhile
    parts.publish("compact-during", T0.date(), [*staged, fold], carried, base,
                  recorder_for(w.catalog.root))
    assert (count(w.catalog, "case_links_folded"),
            count(w.catalog, "case_events_unfolded")) == (3, 1)
    assert links(w.catalog) == refolded(w.catalog) == [("a", None, at(1)),
                                                       ("c", None, at(3))]
    assert verify_catalog(parts, w.audit.records()).findings == ()


def test_verify_names_a_recorded_fold_that_is_not_the_fold_of_its_events(w: World) -> None:
    """A compaction that wrote a wrong fold (a bug, or a forgery recorded as a commit):
    the views lose the link, and verify names the fold with what differs."""
    parts, base, staged, fold, carried = _folded_not_published(w, "compact-wrong")
    assert fold is not None and fold.rows == 3
    table = pq.read_table(fold.path)
    pq.write_table(table.filter(pc.not_equal(table["recording_blake3"], B)), fold.path)
    parts.publish("compact-wrong", T0.date(), [*staged, replace(fold, rows=2)], carried,
                  base, recorder_for(w.catalog.root))
    assert [r[0] for r in links(w.catalog)] == ["a", "c"]
    v = verify_catalog(parts, w.audit.records())
    (part,) = [p for p in parts.current().parts if p.table == "case_links_folded"]
    where = parts.where(part.name)
    assert [(f.code, f.subject.id, f.detail) for f in v.findings] == [(
        "CATALOG_PART_EDITED", where,
        f"{where}: the fold of case links holds 0 rows the 1 case-event parts it folds do "
        "not give, and lacks 1 they give: a compaction changed rows")]


def _append_compaction(w: World, parts: tuple[PartEntry, ...], folded: tuple[str, ...],
                       cid: str) -> dict[str, Any]:
    """A compaction appended to the local commit list by hand (recorded), reading `parts`."""
    lp = w.catalog.parts
    assert isinstance(lp, LocalParts)
    forged = Manifest(cid, "2026-11-02", (), "compaction", parts, lp.current().base,
                      folded=folded)
    with lp.commit_list.locked():
        lp.commit_list.append(forged, recorder_for(w.catalog.root), lp.location)
    line: dict[str, Any] = json.loads(
        (w.catalog.root / "commits.jsonl").read_bytes().splitlines()[-1])
    return line


@pytest.mark.parametrize("w", ["local"], indirect=True)  # the commit list, appended by hand
def test_a_fold_is_read_only_with_the_events_it_folds_named(w: World) -> None:
    """A compaction that carries a fold and names nothing it folds (what a release that
    knows no folds writes), or names the events it folds and carries no fold: the views
    fold every event again, and no link is lost."""
    folded_world(w)
    commit(w.catalog, unlink(B, 7))
    now = w.catalog.parts.current()
    line = _append_compaction(w, now.parts, (), "compact-old")
    assert "folded" not in line and [p["rows"] for p in line["carried"]
                                     if p["table"] == "case_links_folded"] == [3]
    assert (count(w.catalog, "case_links_folded"),
            count(w.catalog, "case_events_unfolded")) == (0, 7)
    assert links(w.catalog) == refolded(w.catalog) == [("a", "调查取证", at(6))]
    _, readable = w.catalog.parts.views()
    assert [f for f in readable if "case_links_folded-" in f] == []

    events = tuple(p for p in now.parts if p.table != "case_links_folded")
    line = _append_compaction(w, events, now.folded, "compact-nofold")
    assert line["folded"] == list(now.folded)
    assert (count(w.catalog, "case_links_folded"),
            count(w.catalog, "case_events_unfolded")) == (0, 7)
    assert links(w.catalog) == [("a", "调查取证", at(6))]

    # One that names as folded a part the views do not read: verify names its fold.
    odd = "batches/date=2026-11-02/batch=gone/case_events.parquet"
    _append_compaction(w, now.parts, (odd,), "compact-odd")
    assert links(w.catalog) == refolded(w.catalog) == [("a", "调查取证", at(6))]
    (fold,) = [p for p in now.parts if p.table == "case_links_folded"]
    where = w.catalog.parts.where(fold.name)
    v = verify_catalog(w.catalog.parts, w.audit.records())
    assert [(f.code, f.detail) for f in v.findings] == [(
        "CATALOG_PART_EDITED", f"{where}: the fold of case links folds 1 case-event parts "
        f"the views do not read (first {w.catalog.parts.where(odd)})")]


def test_the_cli_says_how_many_links_it_folded(tmp_path: Path) -> None:
    root = tmp_path / "catalog"
    cli = Cli(["--store", str(tmp_path / "store"), "--catalog", str(root)], {},
              ["--as", "A-1"])
    code, _, err = cli("staff", "add", "A-1", "--name", "张三", "--kind", "officer",
                       "--section", "综合执法队", "--certificate", "ZJ-0001",
                       "--role", "administrator")
    assert code == 0, err
    commit(Catalog(root), link(A, 1), link(B, 2))
    commit(Catalog(root), unlink(B, 3))
    code, out, err = cli("catalog", "compact")
    assert code == 0, err
    assert out.splitlines()[1] == ("case links folded: 2 (case, recording) pairs, read from "
                                   "case_links_folded with the events committed after it")
    code, out, err = cli("query", "SELECT recording_blake3 FROM case_links_current", "--json")
    assert (code, json.loads(out)) == (0, [{"recording_blake3": A}]), err
