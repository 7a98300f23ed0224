"""Retention rules and the engine that applies them, pinned for mutation testing
(issue 11 item 1): exact dates, tiers, holds, refusals and the rows recorded.

The engine runs on a real local store, a real catalog and a real permission check
(registry and audit log); recordings are put and catalogued directly, without media.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import blake3
import pytest

from pipeline.audit.log import AuditLog
from pipeline.catalog.core import Catalog
from pipeline.errors import InputError
from pipeline.people.identity import Caller, OsAccount
from pipeline.people.permissions import Authority, PermissionDenied
from pipeline.people.registry import NewStaff, Registry
from pipeline.retention import engine
from pipeline.storage.base import RetentionRefused
from pipeline.storage.local import LocalStore
from schemas.records import RecordingRecord
from schemas.retention import (
    DEFAULT_MIN_LOCK,
    MAX_RETENTION,
    TIER_RANK,
    TIERS,
    RetentionState,
    Tier,
    one_year_retain_until,
    raise_retention,
)

T = dt.datetime(2026, 1, 10, 8, 30, tzinfo=dt.UTC)
LATER = dt.datetime(2031, 6, 30, tzinfo=dt.UTC)


# --- schemas.retention (pure) ------------------------------------------------------------


def test_the_default_minimum_lock_is_ninety_days_and_the_maximum_a_century() -> None:
    assert dt.timedelta(days=90) == DEFAULT_MIN_LOCK
    assert dt.timedelta(days=36500) == MAX_RETENTION


def test_tiers_rank_one_year_case_permanent_with_their_rules() -> None:
    assert [TIER_RANK[t] for t in (Tier.ONE_YEAR, Tier.CASE, Tier.PERMANENT)] == [0, 1, 2]
    assert [(i.tier, i.rule) for i in TIERS.values()] == [
        (Tier.ONE_YEAR, "AV-11"), (Tier.CASE, "AV-11"), (Tier.PERMANENT, "AV-13")]


def test_one_year_is_exactly_a_calendar_year_when_ingested_promptly() -> None:
    assert one_year_retain_until(T, T) == dt.datetime(2027, 1, 10, 8, 30, tzinfo=dt.UTC)


def test_the_minimum_lock_wins_exactly_when_later() -> None:
    ingest = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)  # + 90 d = 2027-01-30, after 2027-01-10
    assert one_year_retain_until(T, ingest) == ingest + dt.timedelta(days=90)
    assert one_year_retain_until(T, ingest, min_lock=dt.timedelta(days=1)) == T.replace(
        year=2027)


def test_a_leap_day_recording_is_kept_to_the_28th_of_february() -> None:
    leap = dt.datetime(2028, 2, 29, 23, 0, tzinfo=dt.UTC)
    assert one_year_retain_until(leap, leap) == dt.datetime(2029, 2, 28, 23, 0, tzinfo=dt.UTC)


def _s(tier: Tier, until: dt.datetime = T, hold: bool = False) -> RetentionState:
    return RetentionState(tier, until, hold)


def test_one_year_to_one_year_keeps_everything() -> None:
    assert raise_retention(_s(Tier.ONE_YEAR, T, True), Tier.ONE_YEAR, now=T) == _s(
        Tier.ONE_YEAR, T, True)


def test_one_year_with_a_later_date_extends_it_without_a_hold() -> None:
    assert raise_retention(_s(Tier.ONE_YEAR), Tier.ONE_YEAR, now=T, case_until_utc=LATER) == (
        _s(Tier.ONE_YEAR, LATER, False))


def test_one_year_with_the_same_date_keeps_it() -> None:
    assert raise_retention(_s(Tier.ONE_YEAR), Tier.ONE_YEAR, now=T, case_until_utc=T) == _s(
        Tier.ONE_YEAR, T)


def test_one_year_with_an_earlier_date_is_refused() -> None:
    with pytest.raises(ValueError) as e:
        raise_retention(_s(Tier.ONE_YEAR, LATER), Tier.ONE_YEAR, now=T, case_until_utc=T)
    assert str(e.value) == (
        "--until 2026-01-10 is before the current retain-until 2031-06-30: retention only grows")


def test_case_takes_the_case_end_and_a_hold() -> None:
    assert raise_retention(_s(Tier.ONE_YEAR), Tier.CASE, now=T, case_until_utc=LATER) == _s(
        Tier.CASE, LATER, True)


def test_case_on_the_current_date_is_allowed() -> None:
    assert raise_retention(_s(Tier.ONE_YEAR), Tier.CASE, now=T, case_until_utc=T) == _s(
        Tier.CASE, T, True)


def test_case_without_an_end_is_refused() -> None:
    with pytest.raises(ValueError) as e:
        raise_retention(_s(Tier.ONE_YEAR), Tier.CASE, now=T)
    assert str(e.value) == "tier 'case' needs the case file's retention end (--until)"


def test_case_before_the_current_date_is_refused() -> None:
    with pytest.raises(ValueError) as e:
        raise_retention(_s(Tier.ONE_YEAR, LATER), Tier.CASE, now=T, case_until_utc=T)
    assert str(e.value) == (
        "--until 2026-01-10 is before the current retain-until 2031-06-30: retention only grows")


def test_permanent_is_now_plus_the_maximum_with_a_hold() -> None:
    assert raise_retention(_s(Tier.CASE), Tier.PERMANENT, now=T) == _s(
        Tier.PERMANENT, T + MAX_RETENTION, True)
    assert raise_retention(_s(Tier.CASE), Tier.PERMANENT, now=T,
                           max_retention=dt.timedelta(days=1)) == _s(
        Tier.PERMANENT, T + dt.timedelta(days=1), True)


def test_permanent_never_moves_a_later_date_earlier() -> None:
    far = T + MAX_RETENTION + dt.timedelta(days=5)
    assert raise_retention(_s(Tier.CASE, far), Tier.PERMANENT, now=T) == _s(
        Tier.PERMANENT, far, True)


def test_lowering_a_tier_is_refused_naming_both() -> None:
    with pytest.raises(ValueError) as e:
        raise_retention(_s(Tier.CASE), Tier.ONE_YEAR, now=T)
    assert str(e.value) == (
        "tier case cannot be lowered to one_year: a tier only goes up (AV-11, AV-13)")


def test_the_same_tier_is_not_a_lowering() -> None:
    assert raise_retention(_s(Tier.PERMANENT, T, True), Tier.PERMANENT, now=T).tier is (
        Tier.PERMANENT)


# --- pipeline.retention.engine ------------------------------------------------------------

AT = dt.datetime(2025, 6, 1, 9, 0, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
UNTIL = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


# A personal installation's caller: `acting` takes the staff ID it is given, and binds the
# Authority to that person (one person acts per command).
PERSONAL = Caller(OsAccount(os.getuid(), "test"), None, personal=True, why="tests")


def _officer(staff_id: str, role: str) -> NewStaff:
    return NewStaff(staff_id, "officer", f"官{staff_id}", "综合执法队", "执法队员",
                    roles=(role,), certificate_number=f"ZJ-{staff_id}")


class World:
    def __init__(self, root: Path) -> None:
        self.store = LocalStore(root / "store")
        self.catalog = Catalog(root / "catalog")
        self.audit = AuditLog.for_catalog(self.catalog.root, store=self.store,
                                          clock=lambda: AT)
        reg = Registry(self.catalog)
        self.auth = Authority(reg, self.audit)
        admin = self.as_("A-1")
        reg.add_staff(admin, "A-1", _officer("A-1", "administrator"), at_utc=AT)
        for sid, role in (("L-1", "legal_unit"), ("L-2", "legal_unit"),
                          ("C-1", "section_chief"), ("O-1", "officer")):
            reg.add_staff(admin, "A-1", _officer(sid, role), at_utc=AT)
        self.keys: dict[str, str] = {}
        self.b3: dict[str, str] = {}

    def as_(self, staff_id: str) -> Authority:
        """The Authority, acting as `staff_id`."""
        self.auth.acting(staff_id, caller=PERSONAL)
        return self.auth

    def put(self, name: str, data: bytes, case: str | None = None) -> None:
        b3 = blake3.blake3(data).hexdigest()
        staged = self.store.stage()
        staged.write(data)
        key = staged.commit(b3, retain_until_utc=UNTIL).key
        batch = self.catalog.batch()
        batch.add(RecordingRecord, [RecordingRecord(
            blake3=b3, size_bytes=len(data), source_path=f"/in/{name}", file_name=name,
            media_kind="video", container="mp4", duration_seconds=1.0,
            creation_time_utc=None, make=None, model=None, serial=None, gps_iso6709=None,
            case_number=case, inspected_entity=None, officer_ids=[], device_id=None,
            activity_type=None, recorded_start_utc=None, recorded_end_utc=None,
            recorded_time_source=None, ingested_at_utc=AT, run_id="r1",
            store_uri=self.store.uri, store_key=key, store_version=None,
            retain_until_utc=UNTIL, chunk_size_bytes=1 << 20, chunk_count=1, tags_json="{}",
        )])
        batch.commit(AT.date())
        self.keys[name], self.b3[name] = key, b3

    def events(self) -> list[dict[str, object]]:
        rows: list[dict[str, object]] = self.catalog.query(
            "SELECT recording_blake3, tier, retain_until_utc, legal_hold, case_number, "
            "trigger, reason, actor, at_utc, store_uri FROM retention_events "
            "ORDER BY recording_blake3").to_pylist()
        return rows

    def audit_tail(self, n: int) -> list[tuple[str, str, str, str]]:
        """The last `n` decisions audited (catalog commits are audited too: left out)."""
        return [(r.actor_id, r.action, r.object_id, r.result)
                for r in self.audit.records() if r.action != "catalog_commit"][-n:]


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = World(tmp_path)
    w.put("a.mp4", b"alpha", case="C-2026-1")
    w.put("b.mp4", b"bravo")
    return w


def _utc(x: object) -> dt.datetime:
    assert isinstance(x, dt.datetime)
    return x.astimezone(dt.UTC)


def test_current_states_of_all_by_name_and_by_case(world: World) -> None:
    rows = engine.current_states(world.catalog)
    assert [(r["file_name"], r["tier"], _utc(r["retain_until_utc"]), r["legal_hold"])
            for r in rows] == [("a.mp4", "one_year", UNTIL, False),
                               ("b.mp4", "one_year", UNTIL, False)]
    assert [r["file_name"] for r in engine.current_states(world.catalog, ["b.mp4"])] == [
        "b.mp4"]
    assert [r["file_name"] for r in engine.current_states(
        world.catalog, case_number="C-2026-1")] == ["a.mp4"]


def test_raising_to_case_extends_holds_and_records_one_event(world: World) -> None:
    end = dt.datetime(2036, 12, 31, tzinfo=dt.UTC)
    (ch,) = engine.set_retention(world.store, world.catalog, auth=world.as_("L-1"), actor="L-1",
                                 tier=Tier.CASE, now=NOW, selectors=["a.mp4"],
                                 until_utc=end, reason="opened")
    assert (ch.blake3, ch.file_name) == (world.b3["a.mp4"], "a.mp4")
    assert ch.before == RetentionState(Tier.ONE_YEAR, ch.before.retain_until_utc, False)
    assert _utc(ch.before.retain_until_utc) == UNTIL
    assert ch.after == RetentionState(Tier.CASE, end, True)
    info = world.store.head(world.keys["a.mp4"])
    assert (info.retain_until_utc, info.legal_hold) == (end, True)
    assert world.store.head(world.keys["b.mp4"]).legal_hold is False
    (ev,) = world.events()
    assert {**ev, "retain_until_utc": _utc(ev["retain_until_utc"]),
            "at_utc": _utc(ev["at_utc"])} == {
        "recording_blake3": world.b3["a.mp4"], "tier": "case", "retain_until_utc": end,
        "legal_hold": True, "case_number": "C-2026-1", "trigger": None, "reason": "opened",
        "actor": "L-1", "at_utc": NOW, "store_uri": world.store.uri}
    key = world.keys["a.mp4"]
    assert world.audit_tail(2) == [("L-1", "retention.raise", key, "allowed"),
                                   ("L-1", "hold.place", key, "allowed")]


def test_raising_by_case_records_the_case_given(world: World) -> None:
    engine.set_retention(world.store, world.catalog, auth=world.as_("L-1"), actor="L-1",
                         tier=Tier.ONE_YEAR, now=NOW, case_number="C-2026-1",
                         until_utc=dt.datetime(2027, 1, 1, tzinfo=dt.UTC))
    (ev,) = world.events()
    assert (ev["case_number"], ev["tier"], ev["legal_hold"]) == ("C-2026-1", "one_year", False)
    assert world.store.head(world.keys["a.mp4"]).legal_hold is False
    assert world.audit_tail(1)[0][1] == "retention.raise"


def test_permanent_records_its_trigger_and_holds(world: World) -> None:
    from schemas.retention import Trigger

    (ch,) = engine.set_retention(world.store, world.catalog, auth=world.as_("L-1"), actor="L-1",
                                 tier=Tier.PERMANENT, now=NOW, selectors=["b.mp4"],
                                 trigger=Trigger.OBJECTION)
    assert ch.after == RetentionState(Tier.PERMANENT, NOW + MAX_RETENTION, True)
    (ev,) = world.events()
    assert (ev["trigger"], ev["case_number"], ev["legal_hold"]) == ("objection", None, True)
    assert world.store.head(world.keys["b.mp4"]).legal_hold is True


def test_nothing_named_is_an_input_error(world: World) -> None:
    with pytest.raises(InputError) as e:
        engine.set_retention(world.store, world.catalog, auth=world.as_("L-1"), actor="L-1",
                             tier=Tier.ONE_YEAR, now=NOW)
    assert str(e.value) == "name recordings (BLAKE3 prefix or file name) or --case CASE"


def test_permanent_without_a_trigger_is_an_input_error_listing_them(world: World) -> None:
    with pytest.raises(InputError) as e:
        engine.set_retention(world.store, world.catalog, auth=world.as_("L-1"), actor="L-1",
                             tier=Tier.PERMANENT, now=NOW, selectors=["a.mp4"])
    assert str(e.value) == ("tier 'permanent' needs an AV-13 --trigger (objection, "
                            "obstruction, review_litigation, other_important)")


def test_no_match_names_what_was_asked(world: World) -> None:
    with pytest.raises(InputError) as e:
        engine.set_retention(world.store, world.catalog, auth=world.as_("L-1"), actor="L-1",
                             tier=Tier.ONE_YEAR, now=NOW, selectors=["x.mp4", "y.mp4"])
    assert str(e.value) == "no recording in the catalog matches x.mp4 y.mp4"
    with pytest.raises(InputError) as e:
        engine.set_retention(world.store, world.catalog, auth=world.as_("L-1"), actor="L-1",
                             tier=Tier.ONE_YEAR, now=NOW, case_number="C-0")
    assert str(e.value) == "no recording in the catalog matches case C-0"


def test_a_lowering_is_refused_audited_and_changes_nothing(world: World) -> None:
    engine.set_retention(world.store, world.catalog, auth=world.as_("L-1"), actor="L-1",
                         tier=Tier.CASE, now=NOW, selectors=["a.mp4"],
                         until_utc=dt.datetime(2036, 12, 31, tzinfo=dt.UTC))
    with pytest.raises(RetentionRefused) as e:
        engine.set_retention(world.store, world.catalog, auth=world.as_("L-1"), actor="L-1",
                             tier=Tier.ONE_YEAR, now=NOW, selectors=["a.mp4"])
    assert str(e.value) == (
        f"a.mp4 ({world.b3['a.mp4'][:16]}): tier case cannot be lowered to one_year: a tier "
        "only goes up (AV-11, AV-13)")
    assert world.audit_tail(1) == [("L-1", "retention.raise", world.keys["a.mp4"], "refused")]
    assert len(world.events()) == 1


def test_a_person_who_may_not_raise_is_refused_before_any_change(world: World) -> None:
    with pytest.raises(PermissionDenied):
        engine.set_retention(world.store, world.catalog, auth=world.as_("O-1"), actor="O-1",
                             tier=Tier.CASE, now=NOW, selectors=["a.mp4"],
                             until_utc=dt.datetime(2036, 12, 31, tzinfo=dt.UTC))
    assert world.events() == []
    assert world.store.head(world.keys["a.mp4"]).legal_hold is False


def test_a_section_chief_may_place_a_hold_but_not_raise(world: World) -> None:
    with pytest.raises(PermissionDenied):
        engine.set_retention(world.store, world.catalog, auth=world.as_("C-1"), actor="C-1",
                             tier=Tier.CASE, now=NOW, selectors=["a.mp4"],
                             until_utc=dt.datetime(2036, 12, 31, tzinfo=dt.UTC))


def _hold(world: World) -> None:
    engine.set_retention(world.store, world.catalog, auth=world.as_("L-1"), actor="L-1",
                         tier=Tier.CASE, now=NOW, selectors=["a.mp4"],
                         until_utc=dt.datetime(2036, 12, 31, tzinfo=dt.UTC))


def test_releasing_a_hold_needs_two_and_keeps_the_date(world: World) -> None:
    _hold(world)
    later = NOW + dt.timedelta(days=1)
    (ch,) = engine.release_hold(world.store, world.catalog, auth=world.as_("L-1"), first="L-1",
                                second="L-2", now=later, selectors=["a.mp4", "b.mp4"],
                                reason="closed")
    end = dt.datetime(2036, 12, 31, tzinfo=dt.UTC)
    assert (ch.blake3, ch.file_name) == (world.b3["a.mp4"], "a.mp4")
    assert (ch.before.tier, _utc(ch.before.retain_until_utc), ch.before.legal_hold) == (
        Tier.CASE, end, True)
    assert (ch.after.tier, _utc(ch.after.retain_until_utc), ch.after.legal_hold) == (
        Tier.CASE, end, False)
    info = world.store.head(world.keys["a.mp4"])
    assert (info.retain_until_utc, info.legal_hold) == (end, False)
    ev = world.events()
    assert len(ev) == 2
    last = max(ev, key=lambda e: _utc(e["at_utc"]))
    assert {**last, "retain_until_utc": _utc(last["retain_until_utc"]),
            "at_utc": _utc(last["at_utc"])} == {
        "recording_blake3": world.b3["a.mp4"], "tier": "case", "retain_until_utc": end,
        "legal_hold": False, "case_number": "C-2026-1", "trigger": None, "reason": "closed",
        "actor": "L-1+L-2", "at_utc": later, "store_uri": world.store.uri}
    key = world.keys["a.mp4"]
    assert world.audit_tail(2) == [("L-1", "hold.lift", key, "allowed"),
                                   ("L-2", "hold.lift", key, "allowed")]


def test_releasing_by_case_records_that_case(world: World) -> None:
    _hold(world)
    engine.release_hold(world.store, world.catalog, auth=world.as_("L-1"), first="L-1",
                        second="L-2", now=NOW, case_number="C-2026-1")
    assert world.store.head(world.keys["a.mp4"]).legal_hold is False


def test_releasing_alone_is_refused_and_keeps_the_hold(world: World) -> None:
    _hold(world)
    with pytest.raises(PermissionDenied):
        engine.release_hold(world.store, world.catalog, auth=world.as_("L-1"), first="L-1",
                            second="L-1", now=NOW, selectors=["a.mp4"])
    assert world.store.head(world.keys["a.mp4"]).legal_hold is True
    assert len(world.events()) == 1


def test_releasing_nothing_held_or_nothing_named_is_an_input_error(world: World) -> None:
    with pytest.raises(InputError) as e:
        engine.release_hold(world.store, world.catalog, auth=world.as_("L-1"), first="L-1",
                            second="L-2", now=NOW, selectors=["a.mp4"])
    assert str(e.value) == "no matching recording is under a legal hold"
    with pytest.raises(InputError) as e:
        engine.release_hold(world.store, world.catalog, auth=world.as_("L-1"), first="L-1",
                            second="L-2", now=NOW)
    assert str(e.value) == "name recordings (BLAKE3 prefix or file name) or --case CASE"


def test_releasing_by_case_leaves_holds_outside_the_case(world: World) -> None:
    _hold(world)
    engine.set_retention(world.store, world.catalog, auth=world.as_("L-1"), actor="L-1",
                         tier=Tier.CASE, now=NOW, selectors=["b.mp4"],
                         until_utc=dt.datetime(2036, 12, 31, tzinfo=dt.UTC))
    (ch,) = engine.release_hold(world.store, world.catalog, auth=world.as_("L-1"),
                                first="L-1", second="L-2", now=NOW, case_number="C-2026-1")
    assert ch.file_name == "a.mp4"
    assert world.store.head(world.keys["a.mp4"]).legal_hold is False
    assert world.store.head(world.keys["b.mp4"]).legal_hold is True


def test_a_released_hold_is_recorded_off_in_the_stores_ledger(world: World) -> None:
    import json

    _hold(world)
    engine.release_hold(world.store, world.catalog, auth=world.as_("L-1"), first="L-1",
                        second="L-2", now=NOW, selectors=["a.mp4"])
    last = json.loads((world.store.root / "ledger.jsonl").read_bytes().splitlines()[-1])
    assert (last["op"], last["key"], last["on"]) == ("hold", world.keys["a.mp4"], False)
