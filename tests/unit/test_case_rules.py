"""The case rules (AV-5/AV-ANNEX, AV-6, AV-9 across files, AV-12, AV-13) as pure functions
over case events: each one made to fire and kept quiet; the fold of events; the checklist
as data."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from pipeline.analysis.sessions import SessionTolerances
from pipeline.retention.engine import CASE_CLOSED, CASE_LINKED, CASE_PERMANENT, follow_case
from pipeline.rules.cases import (
    LinkedRecording,
    av5_coverage,
    av6_exemptions,
    av9_sessions,
    av12_unlinked,
    av13_permanent,
    case_session_gaps,
    fold_case,
    seconds_text,
)
from schemas.cases import load_checklist, normalise_case_type
from schemas.records import CaseEventRecord as Ev
from schemas.retention import RetentionState, Tier

T0 = dt.datetime(2026, 11, 27, 1, 30, tzinfo=dt.UTC)
N = "遂大综执罚〔2026〕7号"
B1, B2 = "1" * 64, "2" * 64
CHECKLIST = load_checklist()


def _h(hours: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


def _opened(case_type: str = "行政处罚") -> Ev:
    return Ev(case_number=N, event="opened", at_utc=T0, actor_id="ZF0101", case_type=case_type,
              inspected_entity="大柘镇某某餐馆", section="综合行政执法队", officer_ids=["ZF0101"])


def _link(b3: str, step: str | None, at: float = 1) -> Ev:
    return Ev(case_number=N, event="linked", at_utc=_h(at), actor_id="ZF0101",
              recording_blake3=b3, step=step)


def _exempt(step: str = "文书送达", basis: str | None = "现场情况紧急", at: float = 2) -> Ev:
    return Ev(case_number=N, event="exempted", at_utc=_h(at), actor_id="ZF0101",
              item_id="X1", step=step, kind="emergency", text=basis, author_id="ZF0101")


def _ack(at: float) -> Ev:
    return Ev(case_number=N, event="acknowledged", at_utc=_h(at), actor_id="ZF0501",
              item_id="X1")


RECS = {B1: LinkedRecording(B1, "BC0007_0001.mp4", "investigation"),
        B2: LinkedRecording(B2, "BC0007_0002.mp4", "document_service")}


def test_the_checklist_file_holds_the_annex_five_rows() -> None:
    rows = [(s.case_type, s.step, s.unit) for s in CHECKLIST]
    assert rows == [("行政检查", "程序启动", "执法机构"), ("行政检查", "调查取证", "执法机构"),
                    ("行政处罚", "调查取证", "执法机构"), ("行政处罚", "听证", "法制机构"),
                    ("行政处罚", "文书送达", "执法机构")]
    assert [s.step for s in CHECKLIST if s.optional] == ["听证"]


def test_a_checklist_row_naming_an_unknown_activity_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "checklist.toml"
    bad.write_text('[[step]]\ntype = "行政检查"\nstep = "x"\nactivities = ["dancing"]\n',
                   encoding="utf-8")
    with pytest.raises(ValueError, match="unknown AV-5 activity dancing"):
        load_checklist(bad)


def test_case_types_are_chinese_with_english_aliases() -> None:
    assert normalise_case_type("penalty") == "行政处罚"
    with pytest.raises(ValueError, match="行政检查"):
        normalise_case_type("traffic")


def test_fold_follows_links_unlinks_and_the_first_acknowledgement() -> None:
    evs = [_opened(), _link(B1, "调查取证"), _link(B2, None),
           Ev(case_number=N, event="unlinked", at_utc=_h(3), actor_id="ZF0301",
              recording_blake3=B2, text="错误关联"),
           _exempt(), _ack(4), _ack(5)]
    c = fold_case(N, evs)
    assert c.links == {B1: "调查取证"} and c.is_open
    assert c.exemptions["X1"].acked_at_utc == _h(4)


def test_av5_fires_for_each_required_step_with_neither_recording_nor_acked_exemption() -> None:
    c = fold_case(N, [_opened(), _link(B1, "调查取证")])
    (f,) = av5_coverage(c, RECS, CHECKLIST)
    assert f.code == "STEP_NOT_RECORDED" and "文书送达" in f.detail and f.subject.id == N


def test_av5_quiet_when_every_step_has_a_recording_by_step_or_by_activity() -> None:
    c = fold_case(N, [_opened(), _link(B1, "调查取证"), _link(B2, None)])
    assert av5_coverage(c, RECS, CHECKLIST) == []


def test_av5_an_acknowledged_exemption_covers_a_step_and_an_unacknowledged_does_not() -> None:
    pending = fold_case(N, [_opened(), _link(B1, None), _exempt()])
    (f,) = av5_coverage(pending, RECS, CHECKLIST)
    assert "not acknowledged" in f.detail
    assert av5_coverage(fold_case(N, [_opened(), _link(B1, None), _exempt(), _ack(3)]),
                        RECS, CHECKLIST) == []


def test_av5_an_optional_hearing_is_required_once_the_case_has_one() -> None:
    doc = Ev(case_number=N, event="document", at_utc=_h(2), actor_id="ZF0101", item_id="D1",
             kind="听证笔录", step="听证")
    c = fold_case(N, [_opened(), _link(B1, None), _link(B2, None), doc])
    (f,) = av5_coverage(c, RECS, CHECKLIST)
    assert "听证" in f.detail


def test_av6_fires_on_missing_basis_missing_ack_and_late_ack() -> None:
    now = _h(24 * 10)
    incomplete = fold_case(N, [_opened(), _exempt(basis=" ")])
    assert [f.code for f in av6_exemptions(incomplete, now_utc=now)] == [
        "EXEMPTION_INCOMPLETE", "EXEMPTION_UNACKNOWLEDGED"]
    late = fold_case(N, [_opened(), _exempt(), _ack(2 + 24 * 4)])
    (f,) = av6_exemptions(late, now_utc=now)
    assert f.code == "EXEMPTION_ACK_LATE" and "4.0 days" in f.detail


def test_av6_quiet_for_a_complete_exemption_acked_in_time_and_the_limit_is_configurable() -> None:
    c = fold_case(N, [_opened(), _exempt(), _ack(2 + 24 * 2)])
    assert av6_exemptions(c, now_utc=_h(500)) == []
    (f,) = av6_exemptions(c, now_utc=_h(500), ack_within=dt.timedelta(days=1))
    assert f.code == "EXEMPTION_ACK_LATE"


def test_av13_fires_for_a_linked_recording_not_permanent_after_a_trigger() -> None:
    trig = Ev(case_number=N, event="trigger", at_utc=_h(2), actor_id="ZF0101", kind="obstruction")
    c = fold_case(N, [_opened(), _link(B1, None), _link(B2, None), trig])
    recs = {B1: LinkedRecording(B1, "a.mp4", tier="permanent", legal_hold=True),
            B2: LinkedRecording(B2, "b.mp4", tier="case", legal_hold=True)}
    (f,) = av13_permanent(c, recs)
    assert f.code == "NOT_PERMANENT" and f.subject.id == B2 and "tier case" in f.detail


def test_av13_quiet_without_a_trigger_or_when_everything_is_permanent() -> None:
    recs = {B1: LinkedRecording(B1, "a.mp4", tier="case", legal_hold=True)}
    assert av13_permanent(fold_case(N, [_opened(), _link(B1, None)]), recs) == []
    trig = Ev(case_number=N, event="trigger", at_utc=_h(2), actor_id="ZF0101", kind="objection")
    held = {B1: LinkedRecording(B1, "a.mp4", tier="permanent", legal_hold=True)}
    assert av13_permanent(fold_case(N, [_opened(), _link(B1, None), trig]), held) == []


def test_av12_fires_for_a_recording_unlinked_after_7_days_and_is_quiet_before() -> None:
    c = fold_case(N, [_opened(), _link(B1, None)])
    recs = [LinkedRecording(B1, "a.mp4", ingested_at_utc=T0),
            LinkedRecording(B2, "b.mp4", ingested_at_utc=T0)]
    (f,) = av12_unlinked(recs, [c], now_utc=T0 + dt.timedelta(days=8))
    assert f.code == "RECORDING_UNLINKED" and f.subject.id == B2
    assert av12_unlinked(recs, [c], now_utc=T0 + dt.timedelta(days=7)) == []
    assert av12_unlinked(recs, [c], now_utc=T0 + dt.timedelta(days=3),
                         link_within=dt.timedelta(days=2))[0].subject.id == B2


@pytest.mark.parametrize("tier", list(Tier))
def test_retention_following_a_case_never_goes_down(tier: Tier) -> None:
    until = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    before = RetentionState(tier, until, tier is not Tier.ONE_YEAR)
    rank = list(Tier).index
    for what in (CASE_LINKED, CASE_PERMANENT, CASE_CLOSED):
        after = follow_case(before, what, now=T0, term_end_utc=dt.datetime(2029, 1, 1,
                                                                            tzinfo=dt.UTC))
        assert rank(after.tier) >= rank(before.tier)
        assert after.retain_until_utc >= before.retain_until_utc
    closed = follow_case(before, CASE_CLOSED, now=T0)
    assert closed.legal_hold == (tier is Tier.PERMANENT)
    assert follow_case(before, CASE_CLOSED, now=T0, held_elsewhere=True).legal_hold == \
        before.legal_hold


# --- AV-9 across files: a case's sessions ------------------------------------------------
SILENT = "No spoken explanation at the start: in its first 10 s no speech: 6 s of near silence."
B3, B4 = "3" * 64, "4" * 64


def _rec(b3: str, name: str, start_s: float, seconds: float, device: str | None = "BC-0007",
         unspoken: str | None = None) -> LinkedRecording:
    start = T0 + dt.timedelta(seconds=start_s)
    return LinkedRecording(b3, name, start_utc=start, end_utc=start + dt.timedelta(
        seconds=seconds), device_id=device, start_unspoken=unspoken)


def test_av9_an_interruption_between_files_with_a_silent_start_fires_about_the_case() -> None:
    recs = {B1: _rec(B1, "BC0007_0001.mp4", 0, 6),
            B2: _rec(B2, "BC0007_0002.mp4", 53.25, 6, unspoken=SILENT)}
    (f,) = av9_sessions(fold_case(N, [_opened(), _link(B1, None), _link(B2, None)]), recs)
    assert (f.code, f.rule, f.subject.kind, f.subject.id) == (
        "UNEXPLAINED_INTERRUPTION", "AV-9", "case", N)
    assert f.detail == (
        f"case {N}, device BC-0007: BC0007_0002.mp4 (b3/{B2}) starts 47.250 s after "
        f"BC0007_0001.mp4 (b3/{B1}) ended (2026-11-27T01:30:06+00:00 -> "
        f"2026-11-27T01:30:53.250000+00:00), and at its start: {SILENT}")


def test_av9_quiet_when_the_next_file_opens_with_speech() -> None:
    recs = {B1: _rec(B1, "a.mp4", 0, 6), B2: _rec(B2, "b.mp4", 53.25, 6)}
    c = fold_case(N, [_opened(), _link(B1, None), _link(B2, None)])
    assert av9_sessions(c, recs) == []
    (g,) = case_session_gaps(c, recs)
    assert (g.before.blake3, g.after.blake3, g.gap, g.explained) == (
        B1, B2, dt.timedelta(seconds=47.25), True)


@pytest.mark.parametrize(("start_s", "why"), [
    (8.0, "exactly the 2 s allowed: no interruption"),
    (6.0 + 600.5, "over 10 min later: a new session, not an interruption"),
    (3.0, "overlapping files"),
])
def test_av9_quiet_when_the_files_are_not_an_interruption(start_s: float, why: str) -> None:
    recs = {B1: _rec(B1, "a.mp4", 0, 6), B2: _rec(B2, "b.mp4", start_s, 6, unspoken=SILENT)}
    c = fold_case(N, [_opened(), _link(B1, None), _link(B2, None)])
    assert av9_sessions(c, recs) == [] and case_session_gaps(c, recs) == [], why


def test_av9_exactly_10_minutes_is_still_one_session_and_the_limits_are_configurable() -> None:
    recs = {B1: _rec(B1, "a.mp4", 0, 6), B2: _rec(B2, "b.mp4", 606, 6, unspoken=SILENT)}
    c = fold_case(N, [_opened(), _link(B1, None), _link(B2, None)])
    (f,) = av9_sessions(c, recs)
    assert "starts 600.000 s after" in f.detail
    short = SessionTolerances(session_gap_max=dt.timedelta(minutes=5))
    assert av9_sessions(c, recs, short) == []


def test_av9_only_files_of_one_device_linked_to_the_case_form_its_sessions() -> None:
    recs = {B1: _rec(B1, "a.mp4", 0, 6), B2: _rec(B2, "b.mp4", 30, 6, "BC-0008", SILENT),
            B3: _rec(B3, "c.mp4", 30, 6, None, SILENT),
            B4: _rec(B4, "d.mp4", 30, 6, unspoken=SILENT)}
    # another device, no device, and the same device's file not linked to this case
    c = fold_case(N, [_opened(), _link(B1, None), _link(B2, None), _link(B3, None)])
    assert av9_sessions(c, recs) == []
    unlinked = fold_case(N, [_opened(), _link(B1, None), _link(B4, None),
                             Ev(case_number=N, event="unlinked", at_utc=_h(2),
                                actor_id="ZF0101", recording_blake3=B4, text="错误关联")])
    assert av9_sessions(unlinked, recs) == []


def test_av9_each_interruption_of_a_session_is_its_own_finding_in_time_order() -> None:
    recs = {B1: _rec(B1, "a.mp4", 0, 6), B3: _rec(B3, "c.mp4", 70, 6, unspoken=SILENT),
            B2: _rec(B2, "b.mp4", 30, 6, unspoken=SILENT)}  # linked out of order
    c = fold_case(N, [_opened(), _link(B3, None), _link(B1, None), _link(B2, None)])
    got = [(g.before.file_name, g.after.file_name, seconds_text(g.gap))
           for g in case_session_gaps(c, recs)]
    assert got == [("a.mp4", "b.mp4", "24.000"), ("b.mp4", "c.mp4", "34.000")]
    assert len(av9_sessions(c, recs)) == 2


def test_seconds_text_is_exact_to_the_microsecond() -> None:
    assert [seconds_text(dt.timedelta(microseconds=us)) for us in
            (95_000_000, 47_250_000, 1_000_001, -1_500_000)] == [
        "95.000", "47.250", "1.000001", "-1.500"]
