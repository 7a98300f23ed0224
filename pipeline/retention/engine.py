"""Raising retention (AV-11, AV-13): decide (pure, `schemas.retention`), apply, record.

For each selected recording the current state is read from the catalog
(`retention_current`), the new state computed, the store changed first (retain-until
extended, legal hold placed), and then one `retention_events` row appended per recording
in one atomic catalog batch. If the store refuses, nothing is recorded; if the catalog
commit fails after the store changed, the store is ahead, which is the safe direction
(retention only grows) and a re-run records it.

Lowering a tier or shortening retain-until is refused before anything is touched, with
an error naming the recording and both values. The stores refuse it too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.catalog.core import Catalog, recording_filter
from pipeline.errors import InputError
from pipeline.people.permissions import Authority
from pipeline.storage.base import RetentionRefused, WormStore
from schemas.people import HOLD_PLACE, RETENTION_RAISE
from schemas.records import RetentionEventRecord
from schemas.retention import RetentionState, Tier, Trigger, raise_retention


@dataclass(frozen=True, slots=True)
class RetentionChange:
    blake3: str
    file_name: str
    before: RetentionState
    after: RetentionState


def current_states(
    catalog: Catalog, selectors: Sequence[str] = (), case_number: str | None = None
) -> list[dict[str, Any]]:
    """Rows of `retention_current` for recordings matching selectors or a case (all if none)."""
    sql = "SELECT * FROM retention_current"
    where, params = recording_filter(selectors, case_number)
    if where:
        # retention_current carries no source_path: match it through recordings
        sql += f" WHERE blake3 IN (SELECT blake3 FROM recordings WHERE {where})"
    rows: list[dict[str, Any]] = catalog.query(sql + " ORDER BY file_name, blake3",
                                                params).to_pylist()
    return rows


def set_retention(
    store: WormStore,
    catalog: Catalog,
    *,
    auth: Authority,
    actor: str,
    tier: Tier,
    now: dt.datetime,
    selectors: Sequence[str] = (),
    case_number: str | None = None,
    until_utc: dt.datetime | None = None,
    trigger: Trigger | None = None,
    reason: str | None = None,
) -> list[RetentionChange]:
    """Raise the retention of the selected recordings, as `actor`.

    Every recording's change is authorised (and audited) before anything is applied:
    PermissionDenied for a person who may not (AUX-10), RetentionRefused for a change that
    would lower a tier or shorten retain-until (the refused attempt is audited too)."""
    if not selectors and case_number is None:
        raise InputError("name recordings (BLAKE3 prefix or file name) or --case CASE")
    if tier is Tier.PERMANENT and trigger is None:
        raise InputError("tier 'permanent' needs an AV-13 --trigger "
                         f"({', '.join(t.value for t in Trigger)})")
    rows = current_states(catalog, selectors, case_number)
    if not rows:
        what = f"case {case_number}" if case_number else " ".join(selectors)
        raise InputError(f"no recording in the catalog matches {what}")
    changes: list[RetentionChange] = []
    for row in rows:  # decide and authorise everything before touching anything
        before = RetentionState(Tier(row["tier"]), row["retain_until_utc"], row["legal_hold"])
        refusal = None
        try:
            after = raise_retention(before, tier, now=now, case_until_utc=until_utc)
        except ValueError as exc:
            refusal = f"{row['file_name']} ({row['blake3'][:16]}): {exc}"
        auth.authorize(actor, RETENTION_RAISE, row["store_key"], refusal=refusal,
                       refusal_error=RetentionRefused)
        if after.legal_hold and not before.legal_hold:
            auth.authorize(actor, HOLD_PLACE, row["store_key"])
        changes.append(RetentionChange(row["blake3"], row["file_name"], before, after))
    by_b3 = {row["blake3"]: row for row in rows}
    events = []
    for ch in changes:
        key = by_b3[ch.blake3]["store_key"]
        store.extend_retention(key, ch.after.retain_until_utc)
        if ch.after.legal_hold and not ch.before.legal_hold:
            store.set_legal_hold(key, True)
        events.append(RetentionEventRecord(
            recording_blake3=ch.blake3, tier=ch.after.tier.value,
            retain_until_utc=ch.after.retain_until_utc, legal_hold=ch.after.legal_hold,
            case_number=case_number or by_b3[ch.blake3]["case_number"],
            trigger=trigger.value if trigger else None,
            reason=reason, actor=actor, at_utc=now, store_uri=store.uri,
        ))
    batch = catalog.batch()
    batch.add(RetentionEventRecord, events)
    batch.commit(now.date())
    return changes


def release_hold(
    store: WormStore,
    catalog: Catalog,
    *,
    auth: Authority,
    first: str,
    second: str,
    now: dt.datetime,
    selectors: Sequence[str] = (),
    case_number: str | None = None,
    reason: str | None = None,
) -> list[RetentionChange]:
    """Lift the legal hold (e.g. the case closed), which needs two different authorised
    people. Retain-until and the tier stay as they are: the lock still runs to its date."""
    if not selectors and case_number is None:
        raise InputError("name recordings (BLAKE3 prefix or file name) or --case CASE")
    rows = [r for r in current_states(catalog, selectors, case_number) if r["legal_hold"]]
    if not rows:
        raise InputError("no matching recording is under a legal hold")
    for row in rows:
        auth.authorize_hold_lift(first, second, row["store_key"])
    changes, events = [], []
    for row in rows:
        before = RetentionState(Tier(row["tier"]), row["retain_until_utc"], True)
        store.set_legal_hold(row["store_key"], False)
        after = RetentionState(before.tier, before.retain_until_utc, False)
        changes.append(RetentionChange(row["blake3"], row["file_name"], before, after))
        events.append(RetentionEventRecord(
            recording_blake3=row["blake3"], tier=after.tier.value,
            retain_until_utc=after.retain_until_utc, legal_hold=False,
            case_number=case_number or row["case_number"], trigger=None, reason=reason,
            actor=f"{first}+{second}", at_utc=now, store_uri=store.uri,
        ))
    batch = catalog.batch()
    batch.add(RetentionEventRecord, events)
    batch.commit(now.date())
    return changes
