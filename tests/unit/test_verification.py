"""The one result shape of every verification."""

from __future__ import annotations

import json

import pytest

from schemas.media import Finding, Subject
from schemas.verification import KINDS, Verification

STORE = Subject("store", "file:///srv/custody/store")


def test_a_verification_without_findings_is_ok() -> None:
    v = Verification("fixity", STORE, 3)
    assert v.ok and v.summary() == "fixity of store file:///srv/custody/store: OK, 3 checked"


def test_any_finding_makes_it_fail_and_the_summary_counts_them() -> None:
    f = Finding("OBJECT_MISSING", "REC0001.mp4: gone", subject=Subject("object", "b3/" + "a" * 64))
    v = Verification("fixity", STORE, 3, (f,))
    assert not v.ok and v.summary().endswith("FAILED, 3 checked, 1 findings")


def test_every_verification_kind_is_known_and_others_are_refused() -> None:
    assert KINDS == ("fixity", "audit_chain", "ledger", "store_selftest", "catalog", "package")
    with pytest.raises(ValueError, match="unknown verification kind"):
        Verification("checksum", STORE, 1)
    with pytest.raises(ValueError, match="negative"):
        Verification("ledger", STORE, -1)


def test_as_json_carries_each_finding_with_rule_titles_and_subject() -> None:
    f = Finding("LEDGER_CHAIN_BROKEN", "ledger.jsonl line 4: chain broken", subject=STORE)
    doc = Verification("ledger", STORE, 4, (f,), "tamper-evident").as_json()
    assert json.loads(json.dumps(doc, ensure_ascii=False)) == doc
    assert doc["ok"] is False and doc["checked"] == 4 and doc["note"] == "tamper-evident"
    (g,) = doc["findings"]
    assert (g["code"], g["rule"], g["severity"], g["subject"]) == (
        "LEDGER_CHAIN_BROKEN", "AV-15", "error", {"kind": "store", "id": STORE.id})
    assert g["title_en"] == "Store's retention ledger was altered"
    assert g["title_zh"] == "存储保留期台账被改动"
