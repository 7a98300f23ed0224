"""Each case check's DuckDB view gives the same answer as its pure function, on a catalog
of generated recordings ingested for real (issue 12 item 3): AV-5 coverage, AV-6
exemptions, AV-13 preservation and AV-12 unlinked recordings, each firing and quiet."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.cases import service
from pipeline.cases.checks import check_catalog
from pipeline.catalog.core import Catalog
from pipeline.ingest.run import IngestSettings
from pipeline.people.permissions import Authority, open_authority
from pipeline.storage.local import LocalStore
from schemas.records import CaseEventRecord
from tests.ingesting import run_ingest
from tests.mediagen import Generated

REAL_NOW = dt.datetime.now(dt.UTC)
STORED = REAL_NOW - dt.timedelta(days=10)  # the AV-12 views count days to now()
P, K = "遂大综执罚〔2026〕7号", "遂大综执检〔2026〕31号"


@pytest.fixture()
def world(tmp_path: Path, clean_recording: Generated, short_recording: Generated,
          audio_recording: Generated) -> Iterator[tuple[LocalStore, Catalog, Authority]]:
    src = tmp_path / "in"
    src.mkdir()
    for name, g in (("BC0007_0001.mp4", clean_recording), ("BC0007_0002.mp4", short_recording),
                    ("REC0001.m4a", audio_recording)):
        shutil.copy(g.path, src / name)
    store, catalog = LocalStore(tmp_path / "store"), Catalog(tmp_path / "catalog")
    run_ingest([src], store=store, catalog=catalog,
               settings=IngestSettings(now=lambda: STORED))
    with open_authority(catalog, store, lambda: STORED) as auth:
        auth.acting("ZF0101", os_user="tester")
        yield store, catalog, auth


def _at(hours: float) -> dt.datetime:
    return STORED + dt.timedelta(hours=hours)


def _pure(catalog: Catalog) -> dict[str, set[tuple[str | None, ...]]]:
    out: dict[str, set[tuple[str | None, ...]]] = {}
    for f in check_catalog(catalog, now_utc=dt.datetime.now(dt.UTC)):
        key: tuple[str | None, ...] = (f.subject.id,)
        if f.code == "STEP_NOT_RECORDED":
            key = (f.subject.id, f.detail.split("step ")[1].split(" ")[0])
        out.setdefault(f.code, set()).add(key)
    return out


def _views(catalog: Catalog) -> dict[str, set[tuple[str | None, ...]]]:
    def rows(sql: str) -> set[tuple[str | None, ...]]:
        return {tuple(r.values()) for r in catalog.query(sql).to_pylist()}

    got = {
        "STEP_NOT_RECORDED": rows("SELECT case_number, step FROM check_av5_coverage "
                                  "WHERE covered_by IS NULL"),
        "EXEMPTION_INCOMPLETE": rows("SELECT case_number FROM check_av6_exemptions "
                                     "WHERE incomplete"),
        "EXEMPTION_UNACKNOWLEDGED": rows("SELECT case_number FROM check_av6_exemptions "
                                         "WHERE unacknowledged"),
        "EXEMPTION_ACK_LATE": rows("SELECT case_number FROM check_av6_exemptions "
                                   "WHERE ack_late"),
        "NOT_PERMANENT": rows("SELECT recording_blake3 FROM check_av13_permanent"),
        "RECORDING_UNLINKED": rows("SELECT blake3 FROM check_av12_unlinked "
                                   "WHERE days_since_ingest > 7"),
    }
    return {k: v for k, v in got.items() if v}


def _b3(catalog: Catalog, name: str) -> str:
    (row,) = catalog.query("SELECT blake3 FROM recordings WHERE file_name = ?",
                           [name]).to_pylist()
    return str(row["blake3"])


def _open(catalog: Catalog, auth: Authority, n: str, case_type: str) -> None:
    service.open_case(catalog, auth=auth, actor="ZF0101", now=_at(1), case_number=n,
                      case_type=case_type, inspected_entity="大柘镇某某餐馆",
                      section="综合行政执法队", officer_ids=["ZF0101"])


def test_every_check_fires_and_each_view_agrees(
    world: tuple[LocalStore, Catalog, Authority],
) -> None:
    store, catalog, auth = world
    _open(catalog, auth, P, "行政处罚")
    service.link_recordings(store, catalog, auth=auth, actor="ZF0101", now=_at(2),
                            case_number=P, selectors=["BC0007_0001.mp4"], step="调查取证")
    service.add_exemption(catalog, auth=auth, actor="ZF0101", now=_at(3), case_number=P,
                          step="文书送达", reason="emergency", basis="", author_id="ZF0101")
    # an AV-13 event whose retention did not follow (a store that refused): only the event
    batch = catalog.batch()
    batch.add(CaseEventRecord, [CaseEventRecord(case_number=P, event="trigger", at_utc=_at(4),
                                                actor_id="ZF0101", kind="obstruction")])
    batch.commit(_at(4).date())
    pure = _pure(catalog)
    b1, b2, b3 = (_b3(catalog, n) for n in ("BC0007_0001.mp4", "BC0007_0002.mp4",
                                             "REC0001.m4a"))
    assert pure == {
        "STEP_NOT_RECORDED": {(P, "文书送达")},
        "EXEMPTION_INCOMPLETE": {(P,)},
        "EXEMPTION_UNACKNOWLEDGED": {(P,)},
        "NOT_PERMANENT": {(b1,)},
        "RECORDING_UNLINKED": {(b2,), (b3,)},
    }
    assert _views(catalog) == pure


def test_every_check_is_quiet_on_a_complete_case_and_each_view_agrees(
    world: tuple[LocalStore, Catalog, Authority],
) -> None:
    store, catalog, auth = world
    _open(catalog, auth, K, "行政检查")
    service.link_recordings(store, catalog, auth=auth, actor="ZF0101", now=_at(2),
                            case_number=K, selectors=["BC0007_0001.mp4", "BC0007_0002.mp4"],
                            step="调查取证")
    service.link_recordings(store, catalog, auth=auth, actor="ZF0101", now=_at(2),
                            case_number=K, selectors=["REC0001.m4a"], step="程序启动")
    service.add_event(store, catalog, auth=auth, actor="ZF0101", now=_at(3), case_number=K,
                      trigger="objection", note="当事人投诉")
    assert _pure(catalog) == {} == _views(catalog)
    cov = catalog.query("SELECT step, covered_by FROM check_av5_coverage").to_pylist()
    assert cov == [{"step": "程序启动", "covered_by": "recording"},
                   {"step": "调查取证", "covered_by": "recording"}]


def test_an_exemption_acknowledged_late_fires_in_both(
    world: tuple[LocalStore, Catalog, Authority],
) -> None:
    store, catalog, auth = world
    _open(catalog, auth, K, "行政检查")
    service.link_recordings(store, catalog, auth=auth, actor="ZF0101", now=_at(2),
                            case_number=K,
                            selectors=["BC0007_0001.mp4", "BC0007_0002.mp4", "REC0001.m4a"],
                            step="调查取证")
    service.add_exemption(catalog, auth=auth, actor="ZF0101", now=_at(3), case_number=K,
                          step="程序启动", reason="objective", basis="热线录音系统故障",
                          author_id="ZF0102")
    service.acknowledge(catalog, auth=auth, actor="ZF0101", now=_at(3 + 24 * 5),
                        case_number=K, exemption_id="X1")
    assert _pure(catalog) == {"EXEMPTION_ACK_LATE": {(K,)}} == _views(catalog)
