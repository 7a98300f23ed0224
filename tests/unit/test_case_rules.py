"""The case rules (AV-5/AV-ANNEX, AV-6, AV-12, AV-13) as pure functions over case events:
each one made to fire and kept quiet; the fold of events; the checklist as data."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from pipeline.retention.engine import CASE_CLOSED, CASE_LINKED, CASE_PERMANENT, follow_case
from pipeline.rules.cases import (
    LinkedRecording,
    av5_coverage,
    av6_exemptions,
    av12_unlinked,
    av13_permanent,
    fold_case,
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
