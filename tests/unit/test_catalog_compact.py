"""`pipeline.catalog.compact` on a local catalog: the same rows in every view before and
after, one recorded commit that supersedes the merged parts, idempotence, tamper evidence,
the permission and the ingest lock. A real catalog, audit log, registry and store."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from pipeline.audit.log import AuditLog
from pipeline.catalog.commits import Manifest, PartEntry
from pipeline.catalog.compact import _merge, compact, plan
from pipeline.catalog.core import Catalog
from pipeline.catalog.parts import Current, Parts, Staged
from pipeline.catalog.tamper import verify_catalog
from pipeline.errors import CatalogError
from pipeline.people.permissions import Authority, PermissionDenied
from pipeline.people.registry import NewStaff, Registry
from pipeline.storage.local import LocalStore
from schemas.records import (
    CaseEventRecord,
    ChunkRecord,
    FindingRecord,
    RecordingRecord,
    table_name,
)
from schemas.views import DERIVED_VIEWS
from tests.anyone import AnyoneAuthority

AT = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)
BASE_VIEWS = ("recordings", "streams", "chunks", "packets", "findings", "ingest_runs",
              "ingest_files", "retention_events", "export_events", "case_events",
              "staff_events", "device_events")
TABLES_WRITTEN = ("recordings", "chunks", "findings", "case_events")


@dataclass
class World:
    root: Path
    catalog: Catalog
    auth: Authority
    audit: AuditLog


@pytest.fixture()
def world(tmp_path: Path) -> Iterator[World]:
    catalog = Catalog(tmp_path / "catalog")
    audit = AuditLog.for_catalog(catalog.root, store=LocalStore(tmp_path / "store"),
                                 clock=lambda: AT)
    reg = Registry(catalog)
    auth = AnyoneAuthority(reg, audit)
    for sid, role in (("A-1", "administrator"), ("O-1", "officer"), ("N-1", "analyst")):
        reg.add_staff(auth, "A-1", NewStaff(sid, "officer", f"官{sid}", "综合执法队", "执法队员",
                                            roles=(role,), certificate_number=f"ZJ-{sid}"),
                      at_utc=AT)
    reg.add_staff(auth, "A-1", NewStaff(
        "X-1", "auxiliary", "王五", "综合执法队", "协管员", screening="passed",
        birth_date=dt.date(1996, 3, 1), first_hired=dt.date(2026, 1, 5),
        agency="遂昌县人力资源公司", work_area="大柘镇", contract_start=dt.date(2026, 1, 5),
        contract_end=dt.date(2028, 1, 4)), at_utc=AT)
    yield World(tmp_path, catalog, auth, audit)
    audit.close()


def _recording(b3: str, i: int) -> RecordingRecord:
    t = AT + dt.timedelta(minutes=i)
    return RecordingRecord(
        blake3=b3, size_bytes=1000 + i, source_path=f"/dock/BC{i:04d}.mp4",
        file_name=f"BC{i:04d}.mp4", media_kind="video", container="mp4",
        duration_seconds=60.0 + i, creation_time_utc=t, make="Hik", model="M", serial="S1",
        gps_iso6709=None, case_number=f"遂大综执罚〔2026〕{i % 3}号", inspected_entity="某餐馆",
        officer_ids=["ZF0101", "ZF0102"][: 1 + i % 2], device_id="BC-7",
        activity_type="onsite_inspection", recorded_start_utc=t,
        recorded_end_utc=t + dt.timedelta(seconds=60), recorded_time_source="label",
        ingested_at_utc=t + dt.timedelta(hours=30 * (i % 2)), run_id=f"run{i // 8}",
        store_uri="file:///store", store_key=f"b3/{b3}", store_version=None,
        retain_until_utc=t + dt.timedelta(days=365), chunk_size_bytes=1 << 20,
        chunk_count=1, tags_json="{}")


def _finding(b3: str, i: int) -> FindingRecord:
    return FindingRecord(
        recording_blake3=b3, source_path=f"/dock/BC{i:04d}.mp4", run_id=f"run{i // 8}",
        code="TIMESTAMP_GAP", rule="AV-9", category="interruption", severity="warning",
        stream_index=0, pts=i * 90000, at_seconds=float(i), title_en="Gap",
        title_zh="中断", detail=f"gap {i}", found_at_utc=AT)


def fill(cat: Catalog, batches: int, start: int = 0, *, per_batch: int = 3) -> None:
    """`batches` commits, each with rows of four tables (as ingest and cases leave them)."""
    for b in range(start, start + batches):
        batch = cat.batch(f"b{b:04d}")
        recs = []
        for k in range(per_batch):
            i = b * per_batch + k
            b3 = hashlib.blake2s(str(i).encode()).hexdigest()
            recs.append((b3, i))
        batch.add(RecordingRecord, [_recording(b3, i) for b3, i in recs])
        batch.add(FindingRecord, [_finding(b3, i) for b3, i in recs[:2]])
        batch.add(ChunkRecord, [ChunkRecord(b3, 0, 0, 1000 + i, "f" * 64) for b3, i in recs])
        batch.add(CaseEventRecord, [CaseEventRecord(
            f"遂大综执罚〔2026〕{recs[0][1] % 3}号",
            "linked", AT, "ZF0101", recording_blake3=recs[0][0], step="调查取证")])
        batch.commit(dt.date(2026, 11, 1 + b % 28))


def _rows(cat: Catalog, view: str, con: duckdb.DuckDBPyConnection | None = None) -> list[str]:
    """The view's full result, as sorted lines (order-independent); `now()` left out."""
    select = "* EXCLUDE (days_since_ingest)" if view == "check_av12_unlinked" else "*"
    sql = f"SELECT {select} FROM {view}"
    table = cat.query(sql) if con is None else con.execute(sql).to_arrow_table()
    return sorted(json.dumps({k: _unordered(v) for k, v in r.items()}, sort_keys=True,
                             default=str, ensure_ascii=False) for r in table.to_pylist())


def _unordered(value: object) -> object:
    """A list aggregated by the view (`list(DISTINCT ...)`) has no order of its own."""
    return sorted(value, key=str) if isinstance(value, list) else value


def every_view(cat: Catalog) -> dict[str, list[str]]:
    """Every view's rows, read through one connection (each connection binds every view)."""
    with contextlib.closing(cat.connect()) as con:
        return {v: _rows(cat, v, con) for v in (*BASE_VIEWS, *DERIVED_VIEWS)}


def _lines(world: World) -> list[dict[str, object]]:
    return [json.loads(x) for x in (world.catalog.root / "commits.jsonl").read_bytes()
            .splitlines()]


@pytest.mark.slow
def test_every_view_gives_the_same_rows_after_compaction(world: World) -> None:
    fill(world.catalog, 30)
    before = every_view(world.catalog)
    assert len(before["recordings"]) == 90 and len(before["case_findings"]) == 30
    result = compact(world.catalog, auth=world.auth, actor="A-1")
    assert result.compacted
    assert every_view(world.catalog) == before
    # One part per table now, each the merge of its 30 batch parts (plus the registry's).
    now = world.catalog.parts.current().parts
    assert sorted(p.table for p in now) == sorted((*TABLES_WRITTEN, "staff_events",
                                                   "case_links_folded"))
    got = {t.table: (t.parts_before, t.parts_merged, t.parts_after, t.rows)
           for t in result.tables}
    assert got == {"recordings": (30, 30, 1, 90), "chunks": (30, 30, 1, 90),
                   "findings": (30, 30, 1, 60), "case_events": (30, 30, 1, 30),
                   "staff_events": (4, 4, 1, 4)}
    assert result.summary() == (f"compacted 124 parts of 5 tables into 5 (compaction "
                                f"{result.compaction_id})")


def test_a_compaction_is_one_recorded_commit_that_supersedes_the_merged_parts(
    world: World,
) -> None:
    fill(world.catalog, 5)
    old = [p.name for p in world.catalog.parts.current().parts]
    result = compact(world.catalog, auth=world.auth, actor="O-1")
    *earlier, last = _lines(world)
    assert (last["kind"], last["format"], last["batch_id"]) == (
        "compaction", 2, result.compaction_id)
    assert last["carried"] == [] and len(last["parts"]) == 6  # five tables and the fold
    # The fold of the case links names the one merged part of case events it folds.
    (events,) = [p["name"] for p in last["parts"] if p["table"] == "case_events"]
    (fold,) = [p for p in last["parts"] if p["table"] == "case_links_folded"]
    assert (last["folded"], fold["rows"]) == ([events], 5)  # a link per batch
    assert all(str(p["name"]).startswith(f"batches/compacted/{result.compaction_id}/")
               for p in last["parts"])  # type: ignore[attr-defined]
    # The old parts stay where they are and the views read none of them.
    _, readable = world.catalog.parts.views()
    assert all((world.catalog.root / n).is_file() for n in old)
    assert not {str(world.catalog.root / n) for n in old} & set(readable)
    # Recorded before it was visible, as the person who compacted; and the outcome.
    (commit,) = [r for r in world.audit.show(action="catalog_commit")
                 if json.loads(r.reason)["batch_id"] == result.compaction_id]
    reason = json.loads(commit.reason)
    assert (commit.actor_id, reason["kind"], reason["covers"], reason["carried"]) == (
        "O-1", "compaction", 0, [])
    assert reason["digest"] == world.catalog.parts.current().base
    assert reason["base"] == last["base"] == world.catalog.parts.commits()[-2].digest
    outcome = world.audit.show(action="catalog.compact")
    assert [(r.actor_id, r.result) for r in outcome] == [("O-1", "allowed")] * 2
    assert outcome[-1].reason == result.summary()
    assert len(earlier) == 9  # four registrations and five batches
    v = verify_catalog(world.catalog.parts, world.audit.records())
    assert (v.ok, v.checked) == (True, len(old) + 6)


def test_compacting_a_compacted_catalog_does_nothing_and_says_so(world: World) -> None:
    fill(world.catalog, 6)
    compact(world.catalog, auth=world.auth, actor="A-1")
    lines = (world.catalog.root / "commits.jsonl").read_bytes()
    again = compact(world.catalog, auth=world.auth, actor="A-1")
    assert (again.compacted, again.where, again.tables) == (False, None, ())
    assert again.summary() == (f"nothing to compact: no table of {world.catalog.location} "
                               "has two parts under 134217728 bytes")
    assert (world.catalog.root / "commits.jsonl").read_bytes() == lines
    assert world.audit.show(action="catalog.compact")[-1].reason == again.summary()


@pytest.mark.slow
def test_merged_parts_are_closed_once_they_reach_the_target_size(
    world: World,
) -> None:
    fill(world.catalog, 60, per_batch=6)
    before = every_view(world.catalog)
    target = 12_000
    result = compact(world.catalog, auth=world.auth, actor="A-1", target_bytes=target)
    assert every_view(world.catalog) == before
    recs = [p for p in world.catalog.parts.current().parts if p.table == "recordings"]
    assert len(recs) >= 3
    assert all(p.size_bytes >= target for p in recs[:-1])  # the last holds what is left
    assert sum(p.rows for p in recs) == 360
    (t,) = [t for t in result.tables if t.table == "recordings"]
    assert t.largest_part_bytes == max(p.size_bytes for p in recs)
    assert compact(world.catalog, auth=world.auth, actor="A-1",
                   target_bytes=target).compacted is False


def test_batches_after_a_compaction_are_read_and_merged_with_its_last_part_next_time(
    world: World,
) -> None:
    fill(world.catalog, 10)
    first = compact(world.catalog, auth=world.auth, actor="A-1")
    fill(world.catalog, 4, start=10)
    before = every_view(world.catalog)
    assert len(before["recordings"]) == 42
    second = compact(world.catalog, auth=world.auth, actor="A-1")
    assert every_view(world.catalog) == before
    got = {t.table: (t.parts_before, t.parts_merged, t.parts_after) for t in second.tables}
    assert got["recordings"] == (5, 5, 1)  # the first compaction's part and four batches
    assert first.compaction_id != second.compaction_id


def _merged_not_published(
    world: World, cid: str,
) -> tuple[Parts, Current, list[Staged], list[PartEntry]]:
    """Four batches, merged into staging by a compaction that has not committed yet."""
    fill(world.catalog, 4)
    parts = world.catalog.parts
    base = parts.current()
    merges, carried = plan(base.parts, 1 << 20)
    stage = parts.staging(cid)
    return parts, base, [s for m in merges for s in _merge(parts, m, stage, 1 << 20)], carried


def test_a_commit_landing_while_compaction_merges_is_carried(world: World) -> None:
    """A case or staff command may commit while a compaction runs (it holds only the
    ingest lock): its parts are carried into the compaction's commit, not lost."""
    parts, base, staged, carried = _merged_not_published(world, "compact-test")
    fill(world.catalog, 1, start=4)  # committed meanwhile
    before = every_view(world.catalog)
    parts.publish("compact-test", AT.date(), staged, carried, base)
    assert every_view(world.catalog) == before
    last = _lines(world)[-1]
    assert sorted(p["name"].rsplit("/", 2)[-2] for p in last["carried"]) == [
        "batch=b0004"] * 4


def test_a_second_compaction_over_the_same_base_is_refused_and_changes_nothing(
    world: World,
) -> None:
    parts, base, staged, carried = _merged_not_published(world, "compact-late")
    compact(world.catalog, auth=world.auth, actor="A-1")  # another compaction wins
    lines = (world.catalog.root / "commits.jsonl").read_bytes()
    with pytest.raises(CatalogError, match="another compaction was committed while this "
                       "one ran; nothing changed, run it again"):
        parts.publish("compact-late", AT.date(), staged, carried, base)
    assert (world.catalog.root / "commits.jsonl").read_bytes() == lines
    assert not (world.catalog.root / "batches" / "compacted" / "compact-late").exists()


def test_a_part_edited_before_compaction_is_refused_not_merged(world: World) -> None:
    fill(world.catalog, 4)
    part = next(p for p in world.catalog.parts.current().parts if p.table == "findings")
    path = world.catalog.root / part.name
    table = pq.read_table(path)
    buf = io.BytesIO()
    pq.write_table(table.slice(1), buf)
    path.write_bytes(buf.getvalue())
    lines = (world.catalog.root / "commits.jsonl").read_bytes()
    with pytest.raises(CatalogError, match=rf"^{path}: not compacted: the part no longer has "
                       rf"the size and SHA-256 its commit recorded \({part.size_bytes} bytes"):
        compact(world.catalog, auth=world.auth, actor="A-1")
    assert (world.catalog.root / "commits.jsonl").read_bytes() == lines
    assert list((world.catalog.root / "staging").iterdir()) == []


def test_verify_names_an_edited_compacted_part_and_an_edited_superseded_one(
    world: World,
) -> None:
    fill(world.catalog, 4)
    old = next(p for p in world.catalog.parts.current().parts if p.table == "chunks")
    compact(world.catalog, auth=world.auth, actor="A-1")
    new = next(p for p in world.catalog.parts.current().parts if p.table == "findings")
    for name in (old.name, new.name):
        path = world.catalog.root / name
        buf = io.BytesIO()
        pq.write_table(pq.read_table(path).slice(1), buf)
        path.write_bytes(buf.getvalue())
    v = verify_catalog(world.catalog.parts, world.audit.records())
    found = sorted((f.code, f.subject.id, f.detail.endswith(
        "(superseded by a compaction: the views no longer read it)")) for f in v.findings)
    assert found == sorted([
        ("CATALOG_PART_EDITED", str(world.catalog.root / old.name), True),
        ("CATALOG_PART_EDITED", str(world.catalog.root / new.name), False)])


def test_a_compaction_written_by_hand_that_drops_rows_is_named(world: World) -> None:
    """Whoever can write the catalog can append a 'compaction' that carries all but one
    part: the views lose its rows; verify names the unrecorded commit and the rows."""
    fill(world.catalog, 3)
    parts = world.catalog.parts
    keep = [p for p in parts.current().parts if p.table != "findings"]
    findings = [p for p in parts.current().parts if p.table == "findings"]
    forged = Manifest("compact-forged", "2026-11-27", (findings[0],), "compaction",
                      tuple(keep), parts.current().base)
    with parts.commit_list.locked():
        parts.commit_list.append(forged, None, parts.location)
    assert len(_rows(world.catalog, "findings")) == 2  # of 6
    v = verify_catalog(parts, world.audit.records())
    where = str(world.catalog.root / findings[0].name)
    assert sorted((f.code, f.subject.id) for f in v.findings) == [
        ("CATALOG_COMMIT_UNRECORDED", where), ("CATALOG_PART_EDITED", where)]
    (rows,) = [f for f in v.findings if f.code == "CATALOG_PART_EDITED"]
    assert rows.detail.endswith("the views read 2 rows of findings, the committed batches "
                                "hold 6: a compaction changed rows")


@pytest.mark.parametrize(("who", "allowed"), [("A-1", True), ("O-1", True), ("N-1", False),
                                              ("X-1", False)])
def test_who_may_compact_and_every_decision_is_audited(
    world: World, who: str, allowed: bool,
) -> None:
    fill(world.catalog, 2)
    what = f"catalog:{world.catalog.location}"
    if allowed:
        assert compact(world.catalog, auth=world.auth, actor=who).compacted
    else:
        with pytest.raises(PermissionDenied, match=rf"^{who} \(.*\) may not catalog.compact"):
            compact(world.catalog, auth=world.auth, actor=who)
    first = world.audit.show(action="catalog.compact")[0]
    assert (first.actor_id, first.object_id, first.result) == (
        who, what, "allowed" if allowed else "refused")
    if who == "X-1":
        assert "AUX-10" in first.reason


def test_compaction_is_refused_while_an_ingest_holds_the_lock(world: World) -> None:
    from pipeline.catalog.core import exclusive  # what ingest() holds for its whole run

    fill(world.catalog, 2)
    with exclusive(world.catalog), pytest.raises(
            CatalogError, match=r"an ingest or a compaction is running on this catalog"):
        compact(world.catalog, auth=world.auth, actor="A-1")
    assert compact(world.catalog, auth=world.auth, actor="A-1").compacted


def test_the_views_find_the_last_compaction_without_rereading_the_commit_list(
    world: World,
) -> None:
    """The commit list is read from its last compaction on, then only what is appended."""
    fill(world.catalog, 3)
    compact(world.catalog, auth=world.auth, actor="A-1")
    fill(world.catalog, 2, start=3)
    fresh = Catalog(world.catalog.root)  # a new reader finds the compaction searching back
    got = [c.manifest.batch_id for c in fresh.parts.commit_list.current()]
    assert got[1:] == ["b0003", "b0004"] and got[0].startswith("compact-")
    fill(world.catalog, 1, start=5)
    assert [c.manifest.batch_id for c in fresh.parts.commit_list.current()][-1] == "b0005"
    assert table_name(RecordingRecord) in {p.table for p in fresh.parts.current().parts}
