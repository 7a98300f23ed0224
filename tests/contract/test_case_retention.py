"""Issue 12: retention follows the case, on the local store and on S3 Object Lock: linked
to an open case -> case with a legal hold; an AV-13 event -> permanent (COMPLIANCE, held);
closed -> the term's end, the case hold lifted by two people; nothing goes down."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.cases import service
from pipeline.catalog.core import Catalog
from pipeline.ingest.run import IngestSettings
from pipeline.people.permissions import Authority, open_authority
from pipeline.retention.engine import current_states
from pipeline.storage.base import WormStore
from pipeline.storage.s3.store import S3Store
from tests.ingesting import run_ingest
from tests.mediagen import Generated

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
CASE = "遂大综执罚〔2026〕7号"
LATER = NOW + dt.timedelta(minutes=1)  # events are ordered by their time
TERM = dt.datetime(2046, 12, 31, tzinfo=dt.UTC)


@pytest.fixture()
def archived(store: WormStore, tmp_path: Path, clean_recording: Generated) -> Catalog:
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(clean_recording.path, src / "BC0007_0001.mp4")
    catalog = Catalog(tmp_path / "catalog")
    run_ingest([src], store=store, catalog=catalog, settings=IngestSettings(now=lambda: NOW))
    return catalog


@pytest.fixture()
def auth(store: WormStore, archived: Catalog) -> Iterator[Authority]:
    """A fresh installation (empty registry: allowed and audited as unenforced), acting
    as ZF0101 (binds the Authority to that person where it binds one)."""
    with open_authority(archived, store, lambda: NOW) as a:
        assert a.acting("ZF0101", os_user="tester") == "ZF0101"
        yield a


def _open(catalog: Catalog, auth: Authority) -> None:
    service.open_case(catalog, auth=auth, actor="ZF0101", now=NOW, case_number=CASE,
                      case_type="行政处罚", inspected_entity="大柘镇某某餐馆",
                      section="综合行政执法队", officer_ids=["ZF0101"])


def _state(catalog: Catalog) -> dict[str, Any]:
    (row,) = current_states(catalog)
    return row


def _s3_lock(store: WormStore, key: str) -> tuple[str, str] | None:
    """(Object Lock mode, legal hold status) by a raw head-object, on S3; None elsewhere."""
    if not isinstance(store, S3Store):
        return None
    head = store.config.client().head_object(Bucket=store.bucket, Key=store._full(key))
    return head.get("ObjectLockMode"), head.get("ObjectLockLegalHoldStatus")


def test_linking_to_an_open_case_raises_to_case_with_a_legal_hold(
    store: WormStore, archived: Catalog, auth: Authority
) -> None:
    _open(archived, auth)
    before = _state(archived)
    res = service.link_recordings(store, archived, auth=auth, actor="ZF0101", now=NOW,
                                  case_number=CASE, selectors=["BC0007_0001.mp4"],
                                  step="调查取证")
    after = _state(archived)
    assert (after["tier"], after["legal_hold"]) == ("case", True)
    assert after["retain_until_utc"] == before["retain_until_utc"]
    assert store.head(after["store_key"]).legal_hold
    assert res.case.links == {after["blake3"]: "调查取证"}


def test_an_av13_event_makes_linked_and_later_linked_recordings_permanent(
    store: WormStore, archived: Catalog, auth: Authority
) -> None:
    _open(archived, auth)
    service.add_event(store, archived, auth=auth, actor="ZF0101", now=NOW, case_number=CASE,
                      trigger="obstruction", note="当事人阻碍执法")
    assert _state(archived)["tier"] == "one_year"  # not linked yet
    service.link_recordings(store, archived, auth=auth, actor="ZF0101", now=NOW,
                            case_number=CASE, selectors=["BC0007_0001.mp4"])
    row = _state(archived)
    assert (row["tier"], row["legal_hold"], row["trigger"]) == ("permanent", True, "obstruction")
    head = store.head(row["store_key"])
    assert head.legal_hold and head.retain_until_utc >= NOW + dt.timedelta(days=36499)
    lock = _s3_lock(store, row["store_key"])
    assert lock in (None, ("COMPLIANCE", "ON"))
    # closing keeps a permanent recording held and its retention as long as it was
    service.close_case(store, archived, auth=auth, actor="ZF0101", now=LATER,
                       case_number=CASE, retain_until_utc=TERM, second="ZF0302")
    assert _state(archived) == row
    assert store.head(row["store_key"]).legal_hold


def test_closing_sets_the_term_and_lifts_the_case_hold_with_two_people(
    store: WormStore, archived: Catalog, auth: Authority
) -> None:
    _open(archived, auth)
    service.link_recordings(store, archived, auth=auth, actor="ZF0101", now=NOW,
                            case_number=CASE, selectors=["BC0007_0001.mp4"])
    # without --second the first person's close only asks for a second person
    waiting = service.close_case(store, archived, auth=auth, actor="ZF0101", now=LATER,
                                 case_number=CASE, retain_until_utc=TERM, second=None)
    assert waiting.waiting_for and waiting.case.is_open
    assert _state(archived)["legal_hold"] and store.head(_state(archived)["store_key"]).legal_hold
    res = service.close_case(store, archived, auth=auth, actor="ZF0101", now=LATER,
                             case_number=CASE, retain_until_utc=TERM, second="ZF0302")
    row = _state(archived)
    assert (row["tier"], row["retain_until_utc"], row["legal_hold"]) == ("case", TERM, False)
    head = store.head(row["store_key"])
    assert not head.legal_hold and head.retain_until_utc >= TERM
    assert _s3_lock(store, row["store_key"]) in (None, ("COMPLIANCE", "OFF"))
    assert not res.case.is_open
    with pytest.raises(Exception, match="closed"):
        service.link_recordings(store, archived, auth=auth, actor="ZF0101", now=NOW,
                                case_number=CASE, selectors=["BC0007_0001.mp4"])


def test_unlinking_leaves_retention_where_it_was(
    store: WormStore, archived: Catalog, auth: Authority
) -> None:
    _open(archived, auth)
    service.link_recordings(store, archived, auth=auth, actor="ZF0101", now=NOW,
                            case_number=CASE, selectors=["BC0007_0001.mp4"])
    held = _state(archived)
    res = service.unlink_recording(archived, auth=auth, actor="ZF0101", now=LATER,
                                   case_number=CASE, selector="BC0007_0001.mp4",
                                   reason="关联错误")
    assert res.case.links == {}
    assert _state(archived) == held and store.head(held["store_key"]).legal_hold


def test_a_document_scan_is_stored_in_worm_and_held_while_the_case_is_open(
    store: WormStore, archived: Catalog, auth: Authority, tmp_path: Path
) -> None:
    _open(archived, auth)
    scan = tmp_path / "scan.pdf"
    scan.write_bytes("%PDF-1.4 现场检查笔录\n".encode())
    res = service.add_document(store, archived, auth=auth, actor="ZF0101", now=NOW,
                               case_number=CASE, kind="现场检查笔录", step="调查取证",
                               start_utc=NOW - dt.timedelta(hours=1), end_utc=NOW,
                               scan=scan)
    (doc,) = res.case.documents
    assert doc.file_blake3 and doc.item_id == "D1"
    key = f"b3/{doc.file_blake3}"
    assert store.head(key).legal_hold and store.head(key).size_bytes == scan.stat().st_size


def test_a_linked_recording_is_selected_by_its_case_for_retention_commands(
    store: WormStore, archived: Catalog, auth: Authority
) -> None:
    """Not labelled with the case, linked by its content address (b3/<hex prefix>)."""
    _open(archived, auth)
    assert current_states(archived, case_number=CASE) == []
    key = _state(archived)["store_key"]
    service.link_recordings(store, archived, auth=auth, actor="ZF0101", now=NOW,
                            case_number=CASE, selectors=[key[:12]])
    (row,) = current_states(archived, case_number=CASE)
    assert row["store_key"] == key and row["tier"] == "case"


def test_ingest_links_a_labelled_recording_to_its_open_case_and_holds_it_on_the_store(
    store: WormStore, tmp_path: Path, clean_recording: Generated
) -> None:
    catalog = Catalog(tmp_path / "catalog2")
    with open_authority(catalog, store, lambda: NOW) as a:
        a.acting("ZF0101", os_user="tester")
        _open(catalog, a)
        service.add_event(store, catalog, auth=a, actor="ZF0101", now=NOW, case_number=CASE,
                          trigger="review_litigation", note="行政复议")
    src = tmp_path / "in2"
    src.mkdir()
    shutil.copy(clean_recording.path, src / "BC0007_0009.mp4")
    labels = tmp_path / "labels2.csv"
    labels.write_text(f"file,case_number\nBC0007_0009.mp4,{CASE}\n", encoding="utf-8")
    run_ingest([src], store=store, catalog=catalog,
               settings=IngestSettings(now=lambda: LATER, labels_path=str(labels)))
    row = _state(catalog)
    assert (row["tier"], row["legal_hold"], row["trigger"]) == (
        "permanent", True, "review_litigation")
    head = store.head(row["store_key"])
    assert head.legal_hold and head.retain_until_utc >= NOW + dt.timedelta(days=36499)
    assert _s3_lock(store, row["store_key"]) in (None, ("COMPLIANCE", "ON"))
    assert set(service.load_case(catalog, CASE).links) == {row["blake3"]}
