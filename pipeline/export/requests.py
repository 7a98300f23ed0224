"""Releasing footage outside (AV-14, AV-15): a request, and an approval by someone else.

Nobody may give footage outside without approval (AV-15); footage sent to the
procuratorate or a court is provided by the responsible section (AV-14). An export is
therefore two appended events: `requested` (what, for whom, why, by whom) and `approved`
by a different authorised person. Auxiliary staff may do neither (AUX-10). Every attempt,
allowed or refused, is in the audit log.

This module holds the approval workflow; `make.py` builds the verified court package
from an approved export and appends a third event, `made`, with the package's record in
its own fields (`bag_sha512`, the kept copy's `kept_key`, `package_path`, `clip_count`).
Catalogs written before those fields existed hold a `made` row's record as JSON in its
`purpose` field; `_made` reads both.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pipeline.catalog.core import Catalog, recording_filter
from pipeline.errors import InputError
from pipeline.people.permissions import Authority
from schemas.people import EXPORT_REQUEST
from schemas.records import ExportEventRecord

RECIPIENTS = {
    "procuratorate": "检察院",
    "court": "法院",
    "review_body": "复议机关",
    "other": "其他（经批准）",
}


@dataclass(frozen=True, slots=True)
class ExportState:
    export_id: str
    status: str  # requested | approved | made
    recordings: tuple[str, ...]
    case_number: str | None
    recipient: str
    purpose: str
    requested_by: str
    approved_by: str | None
    packages: tuple[dict[str, Any], ...] = ()  # made: bag_sha512, kept_key, out, clips, by, at


def _select(catalog: Catalog, selectors: Sequence[str], case_number: str | None) -> list[str]:
    where, params = recording_filter(selectors, case_number)
    if not where:
        raise InputError("name recordings (BLAKE3 prefix or file name) or --case CASE")
    rows = catalog.query(
        f"SELECT DISTINCT blake3 FROM recordings WHERE {where} ORDER BY blake3", params
    ).column("blake3").to_pylist()
    if not rows:
        raise InputError("no recording in the catalog matches the request")
    return [str(r) for r in rows]


def request_export(
    catalog: Catalog, auth: Authority, actor: str, *, now: dt.datetime, recipient: str,
    purpose: str, selectors: Sequence[str] = (), case_number: str | None = None,
) -> ExportState:
    if recipient not in RECIPIENTS:
        raise InputError(f"recipient {recipient!r}: expected one of {', '.join(RECIPIENTS)}")
    if not purpose.strip():
        raise InputError("an export needs a purpose (what the footage is evidence of)")
    recordings = _select(catalog, selectors, case_number)
    export_id = f"EXP-{now:%Y%m%d}-{uuid.uuid4().hex[:8]}"
    auth.authorize(actor, EXPORT_REQUEST, export_id)
    event = ExportEventRecord(export_id, "requested", recordings, case_number, recipient,
                              purpose, actor, now)
    batch = catalog.batch()
    batch.add(ExportEventRecord, [event])
    batch.commit(now.date())
    return _state([event])


def approve_export(
    catalog: Catalog, auth: Authority, approver: str, export_id: str, *, now: dt.datetime
) -> ExportState:
    events = _events(catalog, export_id)
    state = _state(events)
    if state.approved_by is not None:
        raise InputError(f"{export_id} is already approved by {state.approved_by}")
    auth.authorize_export_approval(approver, state.requested_by, export_id)
    event = ExportEventRecord(export_id, "approved", list(state.recordings), state.case_number,
                              state.recipient, state.purpose, approver, now)
    batch = catalog.batch()
    batch.add(ExportEventRecord, [event])
    batch.commit(now.date())
    return _state([*events, event])


def list_exports(catalog: Catalog) -> list[ExportState]:
    rows = catalog.query("SELECT * FROM export_events ORDER BY at_utc").to_pylist()
    by_id: dict[str, list[ExportEventRecord]] = {}
    for r in rows:
        by_id.setdefault(r["export_id"], []).append(_record(r))
    return [_state(evts) for evts in by_id.values()]


class Reads(Protocol):
    """What reads the catalog: a `Catalog`, or `make`'s one connection."""

    def query(self, sql: str, params: Sequence[Any]) -> Any: ...


def export_state(catalog: Reads, export_id: str) -> ExportState:
    """The state of one export (InputError if there is none)."""
    return _state(_events(catalog, export_id))


def record_made(
    catalog: Catalog, state: ExportState, actor: str, *, now: dt.datetime, bag_digest: str,
    kept_key: str, out: str, clips: int = 0,
) -> None:
    """Append the `made` event of a package (module doc)."""
    event = ExportEventRecord(state.export_id, "made", list(state.recordings),
                              state.case_number, state.recipient, state.purpose, actor, now,
                              bag_sha512=bag_digest, kept_key=kept_key, package_path=out,
                              clip_count=clips)
    batch = catalog.batch()
    batch.add(ExportEventRecord, [event])
    batch.commit(now.date())


def _record(r: dict[str, Any]) -> ExportEventRecord:
    # .get: a catalog whose parts all predate the package fields has no such columns
    return ExportEventRecord(r["export_id"], r["event"], list(r["recording_blake3s"]),
                             r["case_number"], r["recipient"], r["purpose"], r["actor"],
                             r["at_utc"], bag_sha512=r.get("bag_sha512"),
                             kept_key=r.get("kept_key"), package_path=r.get("package_path"),
                             clip_count=r.get("clip_count"))


def _made(e: ExportEventRecord) -> dict[str, Any]:
    """A `made` event's package record: its own fields, or the JSON an older row kept in
    `purpose` (`bag_sha512`, `kept_key`, `out`)."""
    if e.bag_sha512 is not None:
        doc: dict[str, Any] = {"bag_sha512": e.bag_sha512, "kept_key": e.kept_key,
                               "out": e.package_path, "clips": e.clip_count or 0}
    else:
        try:
            old = json.loads(e.purpose)
            doc = {"bag_sha512": str(old["bag_sha512"]), "kept_key": old.get("kept_key"),
                   "out": old.get("out"), "clips": 0}
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{e.export_id}: its made event of {e.at_utc} names no bag "
                             "digest (neither in its fields nor as JSON in purpose)") from exc
    return {**doc, "by": e.actor, "at_utc": e.at_utc}


def _events(catalog: Reads, export_id: str) -> list[ExportEventRecord]:
    rows = catalog.query("SELECT * FROM export_events WHERE export_id = ? ORDER BY at_utc",
                         [export_id]).to_pylist()
    if not rows:
        raise InputError(f"no export {export_id} in the catalog")
    return [_record(r) for r in rows]


def _state(events: Sequence[ExportEventRecord]) -> ExportState:
    req = next(e for e in events if e.event == "requested")
    appr = next((e for e in events if e.event == "approved"), None)
    made = tuple(_made(e) for e in events if e.event == "made")
    return ExportState(req.export_id, "made" if made else "approved" if appr else "requested",
                       tuple(req.recording_blake3s), req.case_number, req.recipient,
                       req.purpose, req.actor, appr.actor if appr else None, made)
