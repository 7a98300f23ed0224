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
from schemas.retention import TIER_RANK, RetentionState, Tier, Trigger, raise_retention


@dataclass(frozen=True, slots=True)
class RetentionChange:
    blake3: str
    file_name: str
    before: RetentionState
    after: RetentionState


def current_states(
    catalog: Catalog, selectors: Sequence[str] = (), case_number: str | None = None
) -> list[dict[str, Any]]:
    """Rows of `retention_current` for recordings matching selectors or a case (labelled
    with its number or linked to it), all if none."""
    sql = "SELECT * FROM retention_current"
    where, params = recording_filter(selectors, case_number)
    if case_number is not None:  # labelled with the case, or linked to it (issue 12)
        where += " OR blake3 IN (SELECT recording_blake3 FROM case_links_current " \
                 "WHERE case_number = ?)"
        params.append(case_number)
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


# --- retention follows the case (issue 12) -------------------------------------------------
CASE_LINKED = "linked"  # linked to an open case: tier case, legal hold
CASE_PERMANENT = "permanent"  # the case has an AV-13 event: permanent, legal hold
CASE_CLOSED = "closed"  # the case closed: retain-until the term's end, the case hold lifted


def follow_case(before: RetentionState, what: str, *, now: dt.datetime,
                term_end_utc: dt.datetime | None = None,
                held_elsewhere: bool = False) -> RetentionState:
    """The state a case event leaves a linked recording in. Pure; never lower.

    linked: at least `case`, held (the date stays: the term is known at closing);
    permanent: `permanent`, held, the longest retention; closed: retain-until at least the
    term's end, and the hold lifted unless the recording is permanent (AV-13 keeps it) or
    another open case still holds it."""
    if what == CASE_PERMANENT:
        return raise_retention(before, Tier.PERMANENT, now=now)
    if what == CASE_LINKED:
        tier = before.tier if TIER_RANK[before.tier] >= TIER_RANK[Tier.CASE] else Tier.CASE
        return RetentionState(tier, before.retain_until_utc, True)
    if what == CASE_CLOSED:
        until = max(before.retain_until_utc, term_end_utc or before.retain_until_utc)
        keep = before.tier is Tier.PERMANENT or held_elsewhere
        return RetentionState(before.tier, until, before.legal_hold and keep)
    raise ValueError(f"unknown case retention event {what!r}")


def apply_case_retention(
    store: WormStore, auth: Authority, *, actor: str, now: dt.datetime, case_number: str,
    rows: Sequence[dict[str, Any]], what: str, term_end_utc: dt.datetime | None = None,
    held_elsewhere: frozenset[str] = frozenset(), trigger: str | None = None,
    second: str | None = None, reason: str | None = None, lift_requested_by: str | None = None,
) -> tuple[list[RetentionChange], list[RetentionEventRecord]]:
    """Apply what a case event means for its recordings (`rows` of `retention_current`) to
    the store, and return the changes and the `retention_events` rows for the caller's
    batch (the case event and its retention commit together).

    The case action itself is authorised by the caller. Raising and placing a hold follow
    from it (AV-11, AV-13) and are audited as such, naming the case; lifting a hold (only
    at closing) needs two different people allowed to lift holds: `actor` confirmed, in
    their own command, the request of `lift_requested_by` (the Authority's `request_second`
    and `confirm_second`), or `actor` names `second` (the older form, not proven)."""
    changes: list[RetentionChange] = []
    for row in rows:
        before = RetentionState(Tier(row["tier"]), row["retain_until_utc"], row["legal_hold"])
        after = follow_case(before, what, now=now, term_end_utc=term_end_utc,
                            held_elsewhere=row["blake3"] in held_elsewhere)
        if after != before:
            changes.append(RetentionChange(row["blake3"], row["file_name"], before, after))
    keys = {r["blake3"]: r["store_key"] for r in rows}
    for ch in changes:  # authorise every lift before anything is touched
        if ch.before.legal_hold and not ch.after.legal_hold:
            if lift_requested_by is not None:
                continue  # both people proven already (request_second, confirm_second)
            if second is None:
                raise InputError("lifting the case's legal holds needs a second person "
                                 "(--second STAFF_ID)")
            auth.authorize_hold_lift(actor, second, keys[ch.blake3])
    events = []
    for ch in changes:
        key = keys[ch.blake3]
        if ch.after.retain_until_utc > ch.before.retain_until_utc:
            store.extend_retention(key, ch.after.retain_until_utc)
        if ch.after.legal_hold != ch.before.legal_hold:
            store.set_legal_hold(key, ch.after.legal_hold)
        if ch.after.tier != ch.before.tier or ch.after.retain_until_utc > \
                ch.before.retain_until_utc:
            auth.record(actor, RETENTION_RAISE, key, "allowed",
                        f"AV-11/AV-13: follows case {case_number} ({what}): "
                        f"{ch.before.tier} -> {ch.after.tier}, retain-until "
                        f"{ch.after.retain_until_utc.date()}")
        if ch.after.legal_hold and not ch.before.legal_hold:
            auth.record(actor, HOLD_PLACE, key, "allowed",
                        f"follows case {case_number} ({what}): legal hold placed")
        events.append(RetentionEventRecord(
            recording_blake3=ch.blake3, tier=ch.after.tier.value,
            retain_until_utc=ch.after.retain_until_utc, legal_hold=ch.after.legal_hold,
            case_number=case_number, trigger=trigger, reason=reason or f"case {what}",
            actor=actor if ch.after.legal_hold or (second or lift_requested_by) is None
            else f"{lift_requested_by}+{actor}" if lift_requested_by else f"{actor}+{second}",
            at_utc=now, store_uri=store.uri,
        ))
    return changes, events
