"""`custody staff|device|audit` end to end through `pipeline.cli.main`, as named people."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from pipeline.cli.main import build_parser
from tests.acting import Acting

AUX = ["--kind", "auxiliary", "--section", "综合执法队", "--post", "协管员",
       "--agency", "遂昌县人力资源公司", "--work-area", "大柘镇", "--contract-start", "2025-06-01",
       "--contract-end", "2027-05-31", "--first-hired", "2025-06-01"]


class Custody(Acting):
    """The runner, and where the audit log's one segment is."""

    def segment(self) -> Path:
        (seg,) = (self.root / "catalog" / "audit").glob("segment-*.jsonl")
        return seg


@pytest.fixture
def custody(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Custody:
    monkeypatch.chdir(tmp_path)  # no stray ./custody.toml
    c = Custody(tmp_path)
    assert c("staff", "add", "A-1", "--name", "张三", "--kind", "officer",
             "--section", "综合执法队", "--certificate", "ZJ-0001", "--role", "administrator",
             who="A-1") == 0, c.err
    assert c("staff", "add", "L-1", "--name", "赵六", "--kind", "officer", "--section", "法制办",
             "--certificate", "ZJ-0002", "--role", "legal_unit", who="A-1") == 0, c.err
    assert c("staff", "add", "X-1", "--name", "王五", *AUX, "--birth-date", "1995-05-01",
             "--screening", "passed", "--id-number", "330827199505010011", who="A-1") == 0, c.err
    return c


def test_aux6_registering_an_auxiliary_aged_36_at_first_hire_is_refused(custody):
    code = custody("staff", "add", "X-2", "--name", "李四", *AUX, "--birth-date", "1989-03-01",
                   "--screening", "passed", who="A-1")
    assert code == 2
    assert custody.err == (
        "custody staff: error: X-2 (李四): refused by AUX-6: aged 36 at first hire on "
        "2025-06-01 (born 1989-03-01); auxiliary staff must be 18 to 35 at first hire\n")


def test_aux7_registering_an_auxiliary_with_a_failed_screening_is_refused(custody):
    code = custody("staff", "add", "X-3", "--name", "钱七", *AUX, "--birth-date", "1998-01-01",
                   "--screening", "failed", "--status", "pending", who="A-1")
    assert code == 2
    assert "X-3 (钱七): refused by AUX-7: the background screening failed" in custody.err
    assert custody.err.count("\n") == 1


def test_aux10_an_auxiliary_is_refused_management_commands_and_each_refusal_is_audited(custody):
    attempts = [
        ("staff", "status", "X-1", "--set", "active"),
        ("staff", "add", "X-4", "--name", "孙八", *AUX, "--birth-date", "1999-01-01",
         "--screening", "passed"),
        ("device", "add", "SN-1", "--type", "body_camera", "--section", "综合执法队",
         "--custodian", "X-1"),
        ("audit", "show"),
        ("staff", "list"),
    ]
    for argv in attempts:
        assert custody(*argv, who="X-1") == 2, argv
        assert "X-1 (王五) may not" in custody.err
    refused = custody.json("audit", "show", "--who", "X-1", "--result", "refused", who="L-1")
    assert [r["action"] for r in refused] == [  # type: ignore[union-attr]
        "staff.manage", "staff.manage", "device.manage", "audit.view", "staff.view"]


def test_an_auxiliary_may_read_the_public_roster(custody):
    assert custody("staff", "roster", who="X-1") == 0
    assert custody.out.splitlines()[0].lstrip("\ufeff") == "姓名,人员编号,科室,工作岗位,状态"
    assert custody.out.splitlines()[1] == "王五,X-1,综合执法队,协管员,在岗"


def test_a_status_change_is_kept_in_the_history(custody):
    assert custody("staff", "status", "X-1", "--set", "suspended", "--reason", "调查中",
                   who="A-1") == 0
    doc = custody.json("staff", "status", "X-1", who="A-1")
    assert doc["status"] == "suspended"  # type: ignore[index]
    assert [(h["event"], h["status"]) for h in doc["history"]] == [  # type: ignore[index]
        ("registered", "active"), ("status", "suspended")]
    assert custody("staff", "roster", who="X-1") == 2  # a suspended person acts no more
    assert "suspended" in custody.err


def test_staff_output_never_shows_private_fields(custody):
    assert custody("staff", "list", "--json", who="A-1") == 0
    assert "330827199505010011" not in custody.out and "1995-05-01" not in custody.out


def test_device_add_and_list(custody):
    assert custody("device", "add", "dsj-0042", "--type", "执法记录仪", "--section", "综合执法队",
                   "--custodian", "X-1", who="A-1") == 0, custody.err
    (dev,) = custody.json("device", "list", who="A-1")  # type: ignore[misc]
    assert (dev["serial"], dev["type"], dev["type_zh"], dev["custodian"]) == (
        "DSJ-0042", "body_camera", "执法记录仪", "X-1")


def test_the_acting_person_comes_from_the_config_when_as_is_missing(custody):
    Path("custody.toml").write_text('[custody]\nas = "A-1"\n', encoding="utf-8")
    assert custody("staff", "list") == 0, custody.err
    recs = custody.json("audit", "show", "--action", "staff.view", who="A-1")
    assert recs[-1]["who"] == "A-1"  # type: ignore[index]


def test_a_command_without_an_acting_person_is_refused(custody):
    assert custody("staff", "list") == 2
    assert "no acting person: pass --as STAFF_ID" in custody.err


def test_audit_show_filters_by_object_and_period(custody):
    recs = custody.json("audit", "show", "--object", "X-1", who="A-1")
    assert {r["object"] for r in recs} == {"X-1"}  # type: ignore[union-attr]
    assert custody.json("audit", "show", "--until", "2000-01-01", who="A-1") == []
    assert len(custody.json("audit", "show", "--since", "2000-01-01", who="A-1")) >= 4  # type: ignore[arg-type]


def test_audit_verify_passes_on_a_whole_chain(custody):
    assert custody("audit", "verify", who="L-1") == 0
    assert custody.out.startswith("OK audit chain whole")


def _refusal_of_x1(seg: Path) -> tuple[list[bytes], int, int]:
    """The segment's lines, and the index and seq of X-1's refusal (catalog commits are
    audited too, so its position depends on how many commits came before)."""
    lines = seg.read_bytes().splitlines(keepends=True)
    (i,) = [n for n, line in enumerate(lines)
            if b'"actor_id":"X-1"' in line and b'"refused"' in line]
    return lines, i, int(json.loads(lines[i])["seq"])


def test_audit_verify_names_an_edited_record(custody):
    custody("staff", "list", who="X-1")  # refused
    custody("audit", "show", who="A-1")  # a record follows it
    seg = custody.segment()
    lines, i, seq = _refusal_of_x1(seg)
    lines[i] = lines[i].replace(b'"refused"', b'"allowed"')  # hide the refusal
    seg.write_bytes(b"".join(lines))
    assert custody("audit", "verify", "--json", who="L-1") == 1
    brk = json.loads(custody.out)["first_break"]
    assert (brk["kind"], brk["segment"], brk["record_number"], brk["seq"]) == (
        "edited", 1, i + 1, seq)
    assert custody("audit", "verify", who="L-1") == 1
    assert custody.out.startswith(f"BROKEN audit chain: first break at segment 1, record "
                                  f"{i + 1} (seq {seq}): edited: the record was changed after "
                                  "it was written")


def test_audit_verify_names_a_deleted_record(custody):
    custody("staff", "list", who="X-1")
    custody("audit", "show", who="A-1")
    seg = custody.segment()
    lines, i, seq = _refusal_of_x1(seg)
    seg.write_bytes(b"".join(lines[:i] + lines[i + 1:]))  # remove the refusal of X-1
    assert custody("audit", "verify", "--json", who="L-1") == 1
    brk = json.loads(custody.out)["first_break"]
    assert (brk["kind"], brk["segment"], brk["record_number"], brk["seq"]) == (
        "deleted", 1, i + 1, seq + 1)
    assert f"record seq {seq} deleted" in brk["detail"]


def test_audit_seal_moves_the_open_segment_into_the_store(custody):
    assert custody("audit", "seal", "--json", who="L-1") == 0
    seal = json.loads(custody.out)
    assert seal["segment"] == 1 and seal["key"].startswith("b3/")
    assert custody("audit", "verify", who="L-1") == 0


def _leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield (*path, name), helps.get(name), sub
                yield from _leaves(sub, (*path, name))


def test_every_people_command_has_help_and_takes_as_and_json():
    for path, help_text, sub in _leaves(build_parser()):
        if path[0] not in ("staff", "device", "audit"):
            continue
        assert help_text and sub.description, path
        if len(path) == 2:
            opts = {o for a in sub._actions for o in a.option_strings}
            assert {"--as", "--json"} <= opts, path


def test_aux10_an_auxiliary_cannot_raise_retention_through_the_cli(custody, still_photo):
    assert custody("ingest", str(still_photo.path), "--quiet", who="X-1") in (0, 1), custody.err
    Path("custody.toml").write_text('[custody]\nas = "X-1"\n', encoding="utf-8")
    code = custody("retention", "set", still_photo.path.name, "--tier", "case",
                   "--until", "2036-12-31")
    assert code == 2 and "AUX-10" in custody.err
    refused = custody.json("audit", "show", "--who", "X-1", "--action", "retention.raise",
                           who="L-1")
    assert refused and refused[-1]["result"] == "refused"  # type: ignore[index]


def test_aux10_an_auxiliary_cannot_lift_a_hold_through_the_cli(custody, still_photo):
    assert custody("ingest", str(still_photo.path), "--quiet", who="X-1") in (0, 1), custody.err
    assert custody("retention", "set", still_photo.path.name, "--tier", "case", "--until",
                   "2036-12-31", who="L-1") == 0, custody.err
    code = custody("retention", "release", still_photo.path.name, "--second", "L-1", who="X-1")
    assert code == 2 and "AUX-10" in custody.err
    refused = custody.json("audit", "show", "--who", "X-1", "--action", "hold.lift",
                           "--result", "refused", who="L-1")
    assert refused


def test_lifting_a_hold_needs_two_different_people(custody, still_photo):
    assert custody("ingest", str(still_photo.path), "--quiet", who="X-1") in (0, 1), custody.err
    assert custody("retention", "set", still_photo.path.name, "--tier", "case", "--until",
                   "2036-12-31", who="L-1") == 0, custody.err
    code = custody("retention", "release", still_photo.path.name, "--second", "L-1", who="L-1")
    assert code == 2 and "two-person rule" in custody.err
    assert custody("staff", "add", "L-2", "--name", "周九", "--kind", "officer", "--section",
                   "法制办", "--certificate", "ZJ-0003", "--role", "legal_unit", who="A-1") == 0
    assert custody("retention", "release", still_photo.path.name, "--second", "L-2",
                   who="L-1") == 0, custody.err
    shown = custody.json("retention", "show", who="L-1")
    assert shown[0]["legal_hold"] is False and shown[0]["store_legal_hold"] is False  # type: ignore[index]


def test_with_a_registry_every_command_needs_a_named_person(custody, still_photo):
    code = custody("ingest", str(still_photo.path), "--quiet")
    assert code == 2 and "--as STAFF_ID" in custody.err


def test_aux10_an_auxiliary_cannot_request_or_approve_an_export(custody, still_photo):
    assert custody("ingest", str(still_photo.path), "--quiet", who="X-1") in (0, 1), custody.err
    code = custody("export", "request", still_photo.path.name, "--recipient", "court",
                   "--purpose", "行政诉讼证据", who="X-1")
    assert code == 2 and "AUX-10" in custody.err
    req = custody.json("export", "request", still_photo.path.name, "--recipient", "court",
                       "--purpose", "行政诉讼证据", who="L-1")
    export_id = req[0]["export_id"]  # type: ignore[index]
    code = custody("export", "approve", export_id, who="X-1")
    assert code == 2 and "AUX-10" in custody.err
    for action in ("export.request", "export.approve"):
        refused = custody.json("audit", "show", "--who", "X-1", "--action", action,
                               "--result", "refused", who="L-1")
        assert refused, action


def test_av15_an_export_is_approved_by_someone_other_than_its_requester(custody, still_photo):
    assert custody("ingest", str(still_photo.path), "--quiet", who="X-1") in (0, 1), custody.err
    assert custody("staff", "add", "C-1", "--name", "孙科长", "--kind", "officer", "--section",
                   "综合执法队", "--certificate", "ZJ-0009", "--role", "section_chief",
                   who="A-1") == 0, custody.err
    req = custody.json("export", "request", still_photo.path.name, "--recipient",
                       "procuratorate", "--purpose", "移送检察院", who="L-1")
    export_id = req[0]["export_id"]  # type: ignore[index]
    assert custody("export", "approve", export_id, who="L-1") == 2
    assert "AV-15" in custody.err
    done = custody.json("export", "approve", export_id, who="C-1")
    assert done[0]["status"] == "approved" and done[0]["approved_by"] == "C-1"  # type: ignore[index]
    listed = custody.json("export", "list", who="L-1")
    assert [e["status"] for e in listed] == ["approved"]  # type: ignore[union-attr]


def test_aux10_library_refuses_an_auxiliary_export_request(custody, still_photo, tmp_path):
    """The check lives in the library: a script calling it is held to the same rule."""
    import datetime as dt

    from pipeline.catalog.core import Catalog
    from pipeline.export.requests import request_export
    from pipeline.people.permissions import PermissionDenied, open_authority
    from pipeline.storage.local import LocalStore
    from tests.anyone import PERSONAL

    assert custody("ingest", str(still_photo.path), "--quiet", who="X-1") in (0, 1), custody.err
    catalog = Catalog(tmp_path / "catalog")
    now = dt.datetime.now(dt.UTC)
    with open_authority(catalog, LocalStore(tmp_path / "store"), lambda: now) as auth, \
            pytest.raises(PermissionDenied, match="AUX-10"):
        auth.acting("X-1", caller=PERSONAL)  # bound as the auxiliary, as a script must be
        request_export(catalog, auth, "X-1", now=now, recipient="court", purpose="x",
                       selectors=[still_photo.path.name])


def test_aux2_a_recording_labelled_with_auxiliary_staff_only_is_a_finding(
    custody, tmp_path, clean_recording, short_recording, audio_recording
):
    import shutil

    src = tmp_path / "dock"
    src.mkdir()
    for g in (clean_recording, short_recording, audio_recording):
        shutil.copy(g.path, src / g.path.name)
    labels = tmp_path / "labels.csv"
    labels.write_text("file,case_number,officer_ids\n"
                      f"{clean_recording.path.name},C1,X-1\n"
                      f"{short_recording.path.name},C1,L-1;X-1\n"
                      f"{audio_recording.path.name},C1,Z-9\n", encoding="utf-8")
    assert custody("ingest", str(src), "--labels", str(labels), "--json", who="X-1") == 1
    codes = {Path(f["path"]).name: [x["code"] for x in f["findings"]]
             for f in json.loads(custody.out)["files"]}
    assert "AUXILIARY_ONLY" in codes[clean_recording.path.name]
    assert "AUXILIARY_ONLY" not in codes[short_recording.path.name]
    assert "LABEL_INVALID" in codes[audio_recording.path.name]
