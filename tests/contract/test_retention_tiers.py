"""AV-11/AV-13: a recording goes one_year -> case -> permanent; nothing ever goes down.

Runs on both stores (local and a real SeaweedFS S3 Object Lock bucket) through the same
library calls and the CLI."""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.catalog.core import Catalog
from pipeline.cli.main import main
from pipeline.ingest.run import IngestSettings
from pipeline.people.permissions import Authority, open_authority
from pipeline.retention.engine import current_states, set_retention
from pipeline.storage.base import RetentionRefused, WormStore
from schemas.retention import Tier, Trigger
from tests.anyone import anyone
from tests.ingesting import run_ingest
from tests.mediagen import Generated

# S3 refuses a retain-until in the past: this module runs on the real clock.
NOW = dt.datetime.now(dt.UTC)
CASE = "遂大综执罚〔2026〕7号"


@pytest.fixture()
def archived(store: WormStore, tmp_path: Path, clean_recording: Generated) -> Catalog:
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(clean_recording.path, src / "BC0007_0001.mp4")
    labels = tmp_path / "labels.csv"
    labels.write_text(f"file,case_number\nBC0007_0001.mp4,{CASE}\n", encoding="utf-8")
    catalog = Catalog(tmp_path / "catalog")
    run_ingest(
        [src],
        store=store,
        catalog=catalog,
        settings=IngestSettings(now=lambda: NOW, labels_path=str(labels)),
    )
    return catalog


@pytest.fixture()
def auth(store: WormStore, archived: Catalog) -> Iterator[Authority]:
    """An empty personnel registry: allowed and audited as unenforced (AUX rules are
    tested with registered people in tests/integration/test_people_cli.py)."""
    with open_authority(archived, store, lambda: NOW) as a:
        yield anyone(a)  # acts as whoever each call names (tests.anyone)


def _raise(store: WormStore, catalog: Catalog, auth: Authority, tier: Tier, **kw: Any) -> None:
    """Raise the test case's recordings to `tier` as officer ZF0101."""
    set_retention(
        store, catalog, auth=auth, actor="ZF0101", tier=tier, now=NOW, case_number=CASE, **kw
    )


def _state(catalog: Catalog) -> dict[str, Any]:
    (row,) = current_states(catalog)
    return row


def test_av13_raise_one_year_to_case_to_permanent_on_the_store(
    store: WormStore, archived: Catalog, auth: Authority
) -> None:
    start = _state(archived)
    assert start["tier"] == "one_year" and not start["legal_hold"]
    case_end = dt.datetime(2037, 12, 31, tzinfo=dt.UTC)
    _raise(store, archived, auth, Tier.CASE, until_utc=case_end)
    mid = _state(archived)
    assert (mid["tier"], mid["retain_until_utc"], mid["legal_hold"]) == ("case", case_end, True)
    head = store.head(mid["store_key"])
    assert head.legal_hold and head.retain_until_utc is not None
    assert head.retain_until_utc >= case_end
    _raise(
        store,
        archived,
        auth,
        Tier.PERMANENT,
        trigger=Trigger.REVIEW_LITIGATION,
        reason="行政复议申请",
    )
    top = _state(archived)
    assert top["tier"] == "permanent" and top["retain_until_utc"] > case_end
    assert store.head(top["store_key"]).retain_until_utc >= top["retain_until_utc"]


def test_av11_lowering_a_tier_is_refused_and_changes_nothing(
    store: WormStore, archived: Catalog, auth: Authority
) -> None:
    _raise(store, archived, auth, Tier.PERMANENT, trigger=Trigger.OBSTRUCTION)
    before = _state(archived)
    for tier in (Tier.CASE, Tier.ONE_YEAR):
        with pytest.raises(RetentionRefused, match="cannot be lowered"):
            _raise(store, archived, auth, tier, until_utc=dt.datetime(2099, 1, 1, tzinfo=dt.UTC))
    assert _state(archived) == before


def test_av11_shortening_retain_until_is_refused_by_library_and_store(
    store: WormStore, archived: Catalog, auth: Authority
) -> None:
    _raise(store, archived, auth, Tier.CASE, until_utc=dt.datetime(2040, 1, 1, tzinfo=dt.UTC))
    with pytest.raises(RetentionRefused, match="retention only grows"):
        _raise(store, archived, auth, Tier.CASE, until_utc=dt.datetime(2039, 1, 1, tzinfo=dt.UTC))
    key = _state(archived)["store_key"]
    with pytest.raises(RetentionRefused):
        store.extend_retention(key, dt.datetime(2039, 1, 1, tzinfo=dt.UTC))
    assert store.head(key).retain_until_utc >= dt.datetime(2040, 1, 1, tzinfo=dt.UTC)


def test_av13_permanent_needs_a_trigger(
    store: WormStore, archived: Catalog, auth: Authority
) -> None:
    from pipeline.errors import InputError

    with pytest.raises(InputError, match="trigger"):
        _raise(store, archived, auth, Tier.PERMANENT)


def test_cli_retention_set_and_show_and_refusal(
    store: WormStore, archived: Catalog, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    env: dict[str, str] = {}
    uri = getattr(store, "uri", "")
    if uri.startswith("s3://"):
        env = request.getfixturevalue("s3_server").env()
        loc = uri
    else:
        loc = str(tmp_path / "store")
    common = ["--store", loc, "--catalog", str(archived.root)]
    out, err = io.StringIO(), io.StringIO()
    assert (
        main(
            [
                "retention",
                "set",
                "--case",
                CASE,
                "--tier",
                "case",
                "--until",
                "2036-12-31",
                *common,
            ],
            env=env,
            out=out,
            err=err,
        )
        == 0
    ), err.getvalue()
    out = io.StringIO()
    assert main(["retention", "show", "--json", *common], env=env, out=out, err=io.StringIO()) == 0
    (row,) = json.loads(out.getvalue())
    assert row["tier"] == "case" and row["tier_zh"] == "随案卷时限保存"
    assert row["legal_hold"] is True and row["store_legal_hold"] is True
    err = io.StringIO()
    assert (
        main(
            ["retention", "set", "BC0007_0001.mp4", "--tier", "one_year", *common],
            env=env,
            out=io.StringIO(),
            err=err,
        )
        == 2
    )
    assert "cannot be lowered" in err.getvalue() and err.getvalue().count("\n") == 1
