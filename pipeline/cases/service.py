"""Cases (案件): open, link, document, events, exemptions, close — each an appended event.

Every action is authorised through the `Authority` (and so audited) before anything is
written; a rule of the case (a closed case takes no links, an exemption is acknowledged
once...) refuses through the same check, audited too. Retention follows the case through
`pipeline.retention.engine.apply_case_retention`: the store is changed first, then the
case event and its `retention_events` rows commit in ONE catalog batch, so the catalog
never says a recording is linked without its retention having followed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.catalog.core import Catalog
from pipeline.errors import InputError
from pipeline.integrity.hashing import digest_file
from pipeline.people.permissions import TWO_PERSON_WINDOW, Authority
from pipeline.retention.engine import (
    CASE_CLOSED,
    CASE_LINKED,
    CASE_PERMANENT,
    RetentionChange,
    apply_case_retention,
    current_states,
    follow_case,
)
from pipeline.rules.cases import CaseFile, fold_case, fold_cases
from pipeline.storage.base import WormStore, key_for
from schemas.cases import (
    ACKNOWLEDGED,
    CLOSED,
    DOCUMENT,
    EXEMPTED,
    LINKED,
    OPENED,
    TRIGGER,
    UNLINKED,
    load_checklist,
    normalise_case_type,
    normalise_step,
)
from schemas.people import CASE_CLOSE, CASE_MANAGE, CASE_UNLINK, EXEMPTION_ACK, HOLD_LIFT
from schemas.records import CaseEventRecord, RetentionEventRecord, from_table
from schemas.retention import RetentionState, Tier, one_year_retain_until


@dataclass(frozen=True, slots=True)
class CaseResult:
    """What an action did: the events appended and the retention changes applied."""

    case: CaseFile
    events: list[CaseEventRecord]
    retention: list[RetentionChange]
    waiting_for: str | None = None  # a two-person action asked for, not done yet


def read_events(catalog: Catalog) -> list[CaseEventRecord]:
    """Every case event, oldest first (ties keep the order they were committed in)."""
    rows: list[CaseEventRecord] = from_table(CaseEventRecord, catalog.read_table(
        CaseEventRecord))
    return sorted(rows, key=lambda e: e.at_utc)


def load_case(catalog: Catalog, case_number: str) -> CaseFile:
    return fold_case(case_number, read_events(catalog))


def _obj(n: str) -> str:
    return f"case:{n}"


def _commit(catalog: Catalog, now: dt.datetime, events: Sequence[CaseEventRecord],
            retention: Sequence[RetentionEventRecord] = ()) -> None:
    batch = catalog.batch()
    batch.add(CaseEventRecord, events)
    if retention:
        batch.add(RetentionEventRecord, retention)
    batch.commit(now.date())


def _authorize(auth: Authority, actor: str, action: str, n: str,
               refusal: str | None = None) -> None:
    auth.authorize(actor, action, _obj(n), refusal=refusal)


def _existing(catalog: Catalog, auth: Authority, actor: str, action: str, n: str, *,
              open_only: bool = True) -> CaseFile:
    """The case, authorised for `action`; refused (audited) when unknown or closed."""
    case = load_case(catalog, n)
    refusal = None
    if case.opened_at_utc is None:
        refusal = f"no case {n} has been opened (custody case open)"
    elif open_only and not case.is_open:
        refusal = f"case {n} is closed"
    _authorize(auth, actor, action, n, refusal)
    return case


def open_case(
    catalog: Catalog, *, auth: Authority, actor: str, now: dt.datetime, case_number: str,
    case_type: str, inspected_entity: str, section: str, officer_ids: Sequence[str],
) -> CaseResult:
    """Open a case (立案/启动): its type, inspected entity, section and officers."""
    n = case_number.strip()
    if not n:
        raise InputError("a case number (案号) is needed")
    try:
        ctype = normalise_case_type(case_type)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    refusal = f"case {n} is already open" if load_case(catalog, n).opened_at_utc else None
    _authorize(auth, actor, CASE_MANAGE, n, refusal)
    ev = CaseEventRecord(case_number=n, event=OPENED, at_utc=now, actor_id=actor,
                         case_type=ctype, inspected_entity=inspected_entity, section=section,
                         officer_ids=list(officer_ids))
    _commit(catalog, now, [ev])
    return CaseResult(load_case(catalog, n), [ev], [])


def _held_elsewhere(catalog: Catalog, n: str) -> frozenset[str]:
    """Recordings linked to another open case (its hold must stay)."""
    return frozenset(b3 for c in fold_cases(read_events(catalog)).values()
                     if c.case_number != n and c.is_open for b3 in c.links)


def link_recordings(
    store: WormStore, catalog: Catalog, *, auth: Authority, actor: str, now: dt.datetime,
    case_number: str, selectors: Sequence[str], step: str | None = None,
) -> CaseResult:
    """Link recordings to an open case; their retention follows it (case, held; permanent
    if the case has an AV-13 event)."""
    if not selectors:
        raise InputError("name the recordings to link (file name or BLAKE3 prefix)")
    case = _existing(catalog, auth, actor, CASE_MANAGE, case_number)
    # a content address as the store names it (b3/<hex>) is a BLAKE3 prefix too
    rows = current_states(catalog, [s.removeprefix("b3/") for s in selectors])
    if not rows:
        raise InputError(f"no recording in the catalog matches {' '.join(selectors)}")
    st = normalise_step(step, load_checklist()) if step else None
    events = [CaseEventRecord(case_number=case.case_number, event=LINKED, at_utc=now,
                              actor_id=actor, recording_blake3=r["blake3"], step=st)
              for r in rows]
    changes, ret = apply_case_retention(
        store, auth, actor=actor, now=now, case_number=case.case_number, rows=rows,
        what=CASE_PERMANENT if case.permanent else CASE_LINKED,
        trigger=case.triggers[-1][0] if case.permanent else None)
    _commit(catalog, now, events, ret)
    return CaseResult(load_case(catalog, case.case_number), events, changes)


def unlink_recording(
    catalog: Catalog, *, auth: Authority, actor: str, now: dt.datetime, case_number: str,
    selector: str, reason: str,
) -> CaseResult:
    """Take a recording out of a case. Its retention stays where it is: nothing goes down."""
    if not reason.strip():
        raise InputError("--reason is needed to unlink a recording")
    case = load_case(catalog, case_number)
    rows = current_states(catalog, [selector])
    linked = [r for r in rows if r["blake3"] in case.links]
    refusal = None if linked else f"{selector} is not linked to case {case_number}"
    if case.opened_at_utc is None:
        refusal = f"no case {case_number} has been opened"
    _authorize(auth, actor, CASE_UNLINK, case_number, refusal)
    events = [CaseEventRecord(case_number=case_number, event=UNLINKED, at_utc=now,
                              actor_id=actor, recording_blake3=r["blake3"], text=reason)
              for r in linked]
    _commit(catalog, now, events)
    return CaseResult(load_case(catalog, case_number), events, [])


def add_document(
    store: WormStore, catalog: Catalog, *, auth: Authority, actor: str, now: dt.datetime,
    case_number: str, kind: str, step: str | None, start_utc: dt.datetime | None,
    end_utc: dt.datetime | None, scan: Path | None = None,
) -> CaseResult:
    """Record an enforcement document (文书) with the times it states; its scan, if given,
    goes into the WORM store like a recording (content-addressed, locked a year, held
    while the case is open)."""
    if start_utc and end_utc and end_utc < start_utc:
        raise InputError("--end is before --start")
    case = _existing(catalog, auth, actor, CASE_MANAGE, case_number, open_only=False)
    b3 = key = None
    if scan is not None:
        b3 = digest_file(scan).blake3
        key = store.put_file(str(scan), b3,
                             retain_until_utc=one_year_retain_until(now, now)).key
        if case.is_open:
            store.set_legal_hold(key, True)
        assert key == key_for(b3)
    ev = CaseEventRecord(
        case_number=case.case_number, event=DOCUMENT, at_utc=now, actor_id=actor,
        item_id=f"D{len(case.documents) + 1}", kind=kind,
        step=normalise_step(step, load_checklist()) if step else None,
        start_utc=start_utc, end_utc=end_utc, file_blake3=b3, store_key=key)
    _commit(catalog, now, [ev])
    return CaseResult(load_case(catalog, case.case_number), [ev], [])


def add_event(
    store: WormStore, catalog: Catalog, *, auth: Authority, actor: str, now: dt.datetime,
    case_number: str, trigger: str, note: str | None,
) -> CaseResult:
    """An AV-13 event (objection, obstruction, review or litigation, other important):
    every linked recording, and every one linked later, becomes permanent (held)."""
    case = _existing(catalog, auth, actor, CASE_MANAGE, case_number, open_only=False)
    ev = CaseEventRecord(case_number=case.case_number, event=TRIGGER, at_utc=now,
                         actor_id=actor, item_id=f"E{len(case.triggers) + 1}", kind=trigger,
                         text=note)
    rows = current_states(catalog, sorted(case.links)) if case.links else []
    rows = [r for r in rows if r["blake3"] in case.links]
    changes, ret = apply_case_retention(
        store, auth, actor=actor, now=now, case_number=case.case_number, rows=rows,
        what=CASE_PERMANENT, trigger=trigger, reason=note)
    _commit(catalog, now, [ev], ret)
    return CaseResult(load_case(catalog, case.case_number), [ev], changes)


def add_exemption(
    catalog: Catalog, *, auth: Authority, actor: str, now: dt.datetime, case_number: str,
    step: str, reason: str, basis: str, author_id: str,
) -> CaseResult:
    """AV-6: a step not recorded, with its reason code, written basis and author; it waits
    for the section chief's acknowledgement (`acknowledge`)."""
    case = _existing(catalog, auth, actor, CASE_MANAGE, case_number, open_only=False)
    ev = CaseEventRecord(
        case_number=case.case_number, event=EXEMPTED, at_utc=now, actor_id=actor,
        item_id=f"X{len(case.exemptions) + 1}", step=normalise_step(step, load_checklist()),
        kind=reason, text=basis, author_id=author_id)
    _commit(catalog, now, [ev])
    return CaseResult(load_case(catalog, case.case_number), [ev], [])


def acknowledge(
    catalog: Catalog, *, auth: Authority, actor: str, now: dt.datetime, case_number: str,
    exemption_id: str,
) -> CaseResult:
    """AV-6: the section chief (科室负责人) acknowledges an exemption, once."""
    case = load_case(catalog, case_number)
    ex = case.exemptions.get(exemption_id)
    refusal = None
    if ex is None:
        refusal = f"case {case_number} has no exemption {exemption_id}"
    elif ex.acked_at_utc is not None:
        refusal = f"exemption {exemption_id} was acknowledged already by {ex.acked_by}"
    elif ex.author_id == actor:
        refusal = f"exemption {exemption_id} is acknowledged by someone other than its author"
    _authorize(auth, actor, EXEMPTION_ACK, case_number, refusal)
    ev = CaseEventRecord(case_number=case_number, event=ACKNOWLEDGED, at_utc=now,
                         actor_id=actor, item_id=exemption_id)
    _commit(catalog, now, [ev])
    return CaseResult(load_case(catalog, case_number), [ev], [])


def close_case(
    store: WormStore, catalog: Catalog, *, auth: Authority, actor: str, now: dt.datetime,
    case_number: str, retain_until_utc: dt.datetime, second: str | None,
) -> CaseResult:
    """Close a case with the file's retention term: every linked recording is kept at
    least to it, and the case's legal hold is lifted, except on permanent recordings and on
    those another open case still holds. Lifting needs two different people allowed to lift
    holds: without `second`, the first person's command records a request
    (`Authority.request_second`, `waiting_for` set, nothing closed) and a second person's
    own `close` confirms it and closes; `second` names the second person in one command
    (the older form, recorded as named, not proven)."""
    case = _existing(catalog, auth, actor, CASE_CLOSE, case_number)
    rows = [r for r in current_states(catalog, sorted(case.links)) if r["blake3"] in
            case.links] if case.links else []
    elsewhere = _held_elsewhere(catalog, case.case_number)
    lifts = any(r["legal_hold"] and not follow_case(
        RetentionState(Tier(r["tier"]), r["retain_until_utc"], True), CASE_CLOSED, now=now,
        held_elsewhere=r["blake3"] in elsewhere).legal_hold for r in rows)
    first = None
    if lifts and second is None:  # two proven people, in two commands (H16's mechanism)
        obj, rule = _obj(case.case_number), "two-person rule (case close)"
        pending = auth.pending_second(HOLD_LIFT, obj)
        if pending is None or pending.first_actor_id == actor:
            auth.request_second(HOLD_LIFT, obj, rule=rule)
            return CaseResult(case, [], [], waiting_for=(
                f"a second person allowed to lift holds runs the same `custody case close` "
                f"within {TWO_PERSON_WINDOW.days} days to confirm"))
        auth.confirm_second(HOLD_LIFT, obj, rule=rule)
        first = pending.first_actor_id
    changes, ret = apply_case_retention(
        store, auth, actor=actor, now=now, case_number=case.case_number, rows=rows,
        what=CASE_CLOSED, term_end_utc=retain_until_utc, held_elsewhere=elsewhere,
        second=second, lift_requested_by=first,
        reason=f"case closed, term ends {retain_until_utc.date()}")
    who = f"{first}+{actor}" if first else f"{actor}+{second}" if second else actor
    ev = CaseEventRecord(case_number=case.case_number, event=CLOSED, at_utc=now,
                         actor_id=who, retain_until_utc=retain_until_utc)
    _commit(catalog, now, [ev], ret)
    return CaseResult(load_case(catalog, case.case_number), [ev], changes)


def list_cases(catalog: Catalog, *, open_only: bool = False,
               section: str | None = None) -> list[dict[str, Any]]:
    """Rows of the `cases_current` view."""
    conds, params = [], []
    if open_only:
        conds.append("status = 'open'")
    if section:
        conds.append("section = ?")
        params.append(section)
    sql = "SELECT * FROM cases_current"
    if conds:
        sql += " WHERE " + " AND ".join(conds)
    rows: list[dict[str, Any]] = catalog.query(sql + " ORDER BY opened_at_utc, case_number",
                                               params).to_pylist()
    return rows
