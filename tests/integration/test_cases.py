"""Issue 12 through the CLI, on the local store, with registered people: cases opened,
recordings linked at ingest by their case-number label (retention following), an unknown
case number as a finding, and who may do what (AUX-10, the section chief's AV-6 ack)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.acting import Acting, auxiliary
from tests.mediagen import Generated

CASE = "遂大综执罚〔2026〕7号"
AUX = auxiliary("综合执法队")


Custody = Acting


def _officer(c: Custody, sid: str, role: str, cert: str) -> None:
    assert c("staff", "add", sid, "--name", f"员工{sid}", "--kind", "officer", "--section",
             "综合执法队", "--certificate", cert, "--role", role, who="A-1") == 0, c.err


@pytest.fixture
def custody(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Custody:
    monkeypatch.chdir(tmp_path)
    c = Custody(tmp_path)
    assert c("staff", "add", "A-1", "--name", "张三", "--kind", "officer", "--section",
             "综合执法队", "--certificate", "ZJ-0001", "--role", "administrator",
             who="A-1") == 0, c.err
    _officer(c, "Z-1", "officer", "ZJ-0011")
    _officer(c, "R-1", "records_officer", "ZJ-0021")
    _officer(c, "R-2", "records_officer", "ZJ-0022")
    _officer(c, "C-1", "section_chief", "ZJ-0031")
    assert c("staff", "add", "X-1", "--name", "王五", *AUX, who="A-1") == 0, c.err
    assert c("case", "open", CASE, "--type", "行政处罚", "--entity", "大柘镇某某餐馆",
             "--section", "综合执法队", "--officer", "Z-1", who="Z-1") == 0, c.err
    return c


def _ingest(c: Custody, tmp_path: Path, rec: Generated, case: str, who: str = "X-1",
            officers: str = "Z-1") -> None:
    inbox = tmp_path / f"inbox-{abs(hash(case))}"
    inbox.mkdir()
    shutil.copy(rec.path, inbox / "BC0007_0001.mp4")
    labels = tmp_path / f"labels-{abs(hash(case))}.csv"
    labels.write_text(f"file,case_number,inspected_entity,officer_ids,activity_type\n"
                      f"BC0007_0001.mp4,{case},大柘镇某某餐馆,{officers},调查取证\n",
                      encoding="utf-8")
    assert c("ingest", str(inbox), "--labels", str(labels), "--quiet", who=who) in (0, 1), c.err


def test_a_recording_labelled_with_an_open_case_is_linked_at_ingest_and_held(
    custody: Custody, tmp_path: Path, clean_recording: Generated
) -> None:
    _ingest(custody, tmp_path, clean_recording, CASE)
    shown = custody.json("case", "show", CASE, who="Z-1", ok=(0, 1))
    (linked,) = shown["recordings"]
    assert linked["file"] == "BC0007_0001.mp4"
    assert (linked["tier"], linked["legal_hold"]) == ("case", True)
    (ret,) = custody.json("retention", "show", who="Z-1")
    assert ret["store_legal_hold"] is True and ret["tier"] == "case"
    # its activity label (调查取证) covers the step; 文书送达 is still missing
    covered = {r["step"]: r["covered_by"] for r in shown["coverage"]}
    assert covered == {"调查取证": "recording", "文书送达": None}  # no hearing: not required


def test_av12_a_label_naming_no_known_case_is_a_finding(
    custody: Custody, tmp_path: Path, clean_recording: Generated
) -> None:
    _ingest(custody, tmp_path, clean_recording, "遂大综执罚〔2026〕99号")
    rows = custody.json("query", "SELECT code, subject_id FROM findings "
                        "WHERE code = 'CASE_UNKNOWN'", who="Z-1")
    assert rows == [{"code": "CASE_UNKNOWN", "subject_id": "遂大综执罚〔2026〕99号"}]
    assert custody.json("case", "list", who="Z-1")[0]["case_number"] == CASE
    (ret,) = custody.json("retention", "show", who="Z-1")
    assert ret["tier"] == "one_year" and ret["store_legal_hold"] is False


def test_aux10_an_auxiliary_may_not_close_a_case_nor_acknowledge_and_is_audited(
    custody: Custody,
) -> None:
    assert custody("case", "close", CASE, "--retain-until", "2046-12-31", "--second", "R-2",
                   who="X-1") == 2
    assert "AUX-10" in custody.err
    assert custody("case", "exempt", CASE, "--step", "文书送达", "--reason", "emergency",
                   "--basis", "现场情况紧急", "--author", "Z-1", who="Z-1") == 0, custody.err
    assert custody("case", "ack", CASE, "X1", who="X-1") == 2 and "AUX-10" in custody.err
    refused = custody.json("audit", "show", "--who", "X-1", "--result", "refused", who="A-1")
    assert {r["action"] for r in refused} >= {"case.close", "exemption.acknowledge"}


def test_av6_the_section_chief_acknowledges_an_exemption_once(custody: Custody) -> None:
    assert custody("case", "exempt", CASE, "--step", "文书送达", "--reason", "emergency",
                   "--basis", "现场情况紧急", "--author", "Z-1", who="Z-1") == 0, custody.err
    before = custody.json("case", "show", CASE, who="C-1", ok=(1,))
    assert "EXEMPTION_UNACKNOWLEDGED" in {f["code"] for f in before["findings"]}
    assert custody("case", "ack", CASE, "X1", who="Z-1") == 2  # an officer may not
    assert custody("case", "ack", CASE, "X1", who="C-1") == 0, custody.err
    assert custody("case", "ack", CASE, "X1", who="C-1") == 2 and "already" in custody.err
    after = custody.json("case", "show", CASE, who="C-1", ok=(0, 1))
    assert "EXEMPTION_UNACKNOWLEDGED" not in {f["code"] for f in after["findings"]}
    assert {r["step"]: r["covered_by"] for r in after["coverage"]}["文书送达"] == "exemption"


def test_av13_event_then_close_keeps_permanent_recordings_held(
    custody: Custody, tmp_path: Path, clean_recording: Generated
) -> None:
    _ingest(custody, tmp_path, clean_recording, CASE)
    assert custody("case", "event", CASE, "--kind", "obstruction", "--note", "当事人阻碍执法",
                   who="Z-1") == 0, custody.err
    (ret,) = custody.json("retention", "show", who="Z-1")
    assert (ret["tier"], ret["store_legal_hold"]) == ("permanent", True)
    # nothing is lifted from a permanent recording, so no second person is needed
    assert custody("case", "close", CASE, "--retain-until", "2046-12-31", who="R-1") == 0, \
        custody.err
    (after,) = custody.json("retention", "show", who="Z-1")
    assert (after["tier"], after["store_legal_hold"]) == ("permanent", True)
    assert custody.json("case", "list", "--open", who="Z-1") == []


def test_closing_lifts_the_case_hold_with_two_different_people(
    custody: Custody, tmp_path: Path, clean_recording: Generated
) -> None:
    _ingest(custody, tmp_path, clean_recording, CASE)
    assert custody("case", "close", CASE, "--retain-until", "2046-12-31", "--second", "R-1",
                   who="R-1") == 2 and "two-person" in custody.err
    (held,) = custody.json("retention", "show", who="Z-1")
    assert held["store_legal_hold"] is True
    assert custody("case", "close", CASE, "--retain-until", "2046-12-31", "--second", "R-2",
                   who="R-1") == 0, custody.err
    (after,) = custody.json("retention", "show", who="Z-1")
    assert (after["tier"], after["store_legal_hold"]) == ("case", False)
    assert after["retain_until"] == "2046-12-30T16:00:00+00:00"  # 2046-12-31 local (+08:00)


def test_aux3_a_case_step_recorded_only_by_auxiliary_staff_is_a_finding_in_both(
    custody: Custody, tmp_path: Path, clean_recording: Generated
) -> None:
    _ingest(custody, tmp_path, clean_recording, CASE, officers="X-1")
    shown = custody.json("case", "show", CASE, who="Z-1", ok=(1,))
    aux = [f for f in shown["findings"] if f["code"] == "AUXILIARY_ONLY"]
    assert len(aux) == 1 and "step 调查取证" in aux[0]["detail"] and "X-1" in aux[0]["detail"]
    rows = custody.json("query", "SELECT case_number, step, staff FROM check_aux3_steps",
                        who="Z-1")
    assert rows == [{"case_number": CASE, "step": "调查取证", "staff": ["X-1"]}]


def test_aux3_quiet_when_a_certified_officer_recorded_the_step(
    custody: Custody, tmp_path: Path, clean_recording: Generated
) -> None:
    _ingest(custody, tmp_path, clean_recording, CASE, officers="X-1;Z-1")
    shown = custody.json("case", "show", CASE, who="Z-1", ok=(0, 1))
    assert "AUXILIARY_ONLY" not in {f["code"] for f in shown["findings"]}
    assert custody.json("query", "SELECT * FROM check_aux3_steps", who="Z-1") == []


def test_closing_waits_for_a_second_person_who_confirms_in_their_own_command(
    custody: Custody, tmp_path: Path, clean_recording: Generated
) -> None:
    """Two proven people: the first close is a request, the same person again only asks
    again, a different records officer's close confirms it and closes."""
    _ingest(custody, tmp_path, clean_recording, CASE)
    for _ in range(2):
        waiting = custody.json("case", "close", CASE, "--retain-until", "2046-12-31",
                               who="R-1")
        assert waiting["closed"] is False and "second person" in waiting["waiting_for"]
        (held,) = custody.json("retention", "show", who="Z-1")
        assert held["store_legal_hold"] is True
        assert custody.json("case", "list", "--open", who="Z-1")[0]["case_number"] == CASE
    assert custody("case", "close", CASE, "--retain-until", "2046-12-31", who="R-2") == 0, \
        custody.err
    (after,) = custody.json("retention", "show", who="Z-1")
    assert (after["tier"], after["store_legal_hold"]) == ("case", False)
    assert custody.json("case", "list", "--open", who="Z-1") == []
    confirmed = custody.json("audit", "show", "--action", "two_person.confirm", who="A-1")
    assert [r["who"] for r in confirmed] == ["R-2"]
