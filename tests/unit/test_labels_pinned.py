"""Labels parsing, pinned for mutation testing (issue 11 items 1 and 4): every alias, the
exact problems and errors, the JSON shapes refused, and the lookup order.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from pipeline.errors import InputError
from pipeline.ingest.labels import (
    ENCODINGS,
    REQUIRED,
    LabelBook,
    Labels,
    decode_labels,
    parse_time,
)

CST = dt.timezone(dt.timedelta(hours=8))
UTC = dt.UTC


def _book(tmp_path: Path, name: str, text: str) -> LabelBook:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return LabelBook.load(p, default_offset=CST)


def _only(book: LabelBook) -> Labels:
    ((row,),) = book.by_key.values()
    return row


# --- values --------------------------------------------------------------------------------


def test_every_english_column_is_read_into_its_field(tmp_path: Path) -> None:
    row = _only(_book(tmp_path, "l.csv",
                      "file,case_number,inspected_entity,officer_ids,device_id,activity_type,"
                      "recorded_start\n"
                      " a.mp4 , C-1 , Shop , ZF1;ZF2 , DSJ-9 , onsite_inspection ,"
                      " 2026-11-27T09:30:00+08:00 \n"))
    assert row == Labels(
        source="l.csv line 2", file="a.mp4", case_number="C-1", inspected_entity="Shop",
        officer_ids=("ZF1", "ZF2"), device_id="DSJ-9", activity_type="onsite_inspection",
        recorded_start_utc=dt.datetime(2026, 11, 27, 1, 30, tzinfo=UTC), problems=())


@pytest.mark.parametrize(("header", "field"), [
    ("文件", "file"), ("path", "file"), ("file_name", "file"), ("FILE", "file"),
    ("案号", "case_number"), ("被检查单位", "inspected_entity"), ("entity", "inspected_entity"),
    ("执法人员", "officer_ids"), ("officers", "officer_ids"), ("设备编号", "device_id"),
    ("device", "device_id"), ("执法类别", "activity_type"), ("activity", "activity_type"),
    ("开始时间", "recorded_start"), (" Case_Number ", "case_number"),
])
def test_each_alias_names_its_column(tmp_path: Path, header: str, field: str) -> None:
    values = {"file": "a.mp4", "case_number": "C-1", "inspected_entity": "Shop",
              "officer_ids": "ZF1", "device_id": "D-1", "activity_type": "onsite_inspection",
              "recorded_start": "2026-11-27T09:30:00+08:00"}
    cols = {"file": "file", field: header} if field != "file" else {"file": header}
    text = ",".join(cols.values()) + "\n" + ",".join(values[k] for k in cols) + "\n"
    row = _only(_book(tmp_path, "l.csv", text))
    got = {"file": row.file, "case_number": row.case_number,
           "inspected_entity": row.inspected_entity, "officer_ids": ";".join(row.officer_ids),
           "device_id": row.device_id, "activity_type": row.activity_type,
           "recorded_start": row.recorded_start_utc and row.recorded_start_utc.isoformat()}
    want = values[field] if field != "recorded_start" else "2026-11-27T01:30:00+00:00"
    assert got[field] == want


def test_unknown_columns_are_ignored(tmp_path: Path) -> None:
    row = _only(_book(tmp_path, "l.csv", "file,notes\na.mp4,hello\n"))
    assert row == Labels(source="l.csv line 2", file="a.mp4")


def test_officers_split_on_every_separator(tmp_path: Path) -> None:
    row = _only(_book(tmp_path, "l.csv",
                      'file,officer_ids\na.mp4,"A;B,C、D，E；F G"\n'))
    assert row.officer_ids == ("A", "B", "C", "D", "E", "F", "G")


def test_officers_from_a_json_list_are_trimmed_and_blanks_dropped(tmp_path: Path) -> None:
    row = _only(_book(tmp_path, "l.json",
                      '[{"file": "a.mp4", "officer_ids": [" ZF1 ", "", "  ", 7]}]'))
    assert row.officer_ids == ("ZF1", "7")
    assert row.source == "l.json item 1"


def test_blank_values_are_none_and_a_number_is_text(tmp_path: Path) -> None:
    row = _only(_book(tmp_path, "l.json",
                      '[{"file": "a.mp4", "case_number": 12, "device_id": "  ",'
                      ' "inspected_entity": null}]'))
    assert (row.case_number, row.device_id, row.inspected_entity, row.officer_ids) == (
        "12", None, None, ())


def test_a_chinese_activity_becomes_its_code(tmp_path: Path) -> None:
    row = _only(_book(tmp_path, "l.csv", "file,activity_type\na.mp4,现场检查\n"))
    assert (row.activity_type, row.problems) == ("onsite_inspection", ())


def test_an_unknown_activity_is_a_problem_and_no_activity(tmp_path: Path) -> None:
    row = _only(_book(tmp_path, "l.csv", "file,activity_type\na.mp4,dancing\n"))
    assert row.activity_type is None
    (problem,) = row.problems
    assert problem.startswith("l.csv line 2: unknown activity type 'dancing'; expected one of ")


def test_a_bad_time_is_a_problem_naming_the_row_and_an_example(tmp_path: Path) -> None:
    row = _only(_book(tmp_path, "l.csv", "file,recorded_start\na.mp4,yesterday\n"))
    assert row.recorded_start_utc is None
    assert row.problems == ("l.csv line 2: recorded_start 'yesterday' is not an ISO 8601 time "
                            "(e.g. 2026-11-27T09:30:00+08:00)",)


def test_problems_are_in_column_order_activity_then_time(tmp_path: Path) -> None:
    row = _only(_book(tmp_path, "l.csv",
                      "file,activity_type,recorded_start\na.mp4,dancing,yesterday\n"))
    assert [p.split(": ", 1)[1][:8] for p in row.problems] == ["unknown ", "recorded"]


def test_parse_time_takes_z_offsets_and_the_default() -> None:
    assert parse_time(" 2026-11-27T01:30:00Z ", CST) == dt.datetime(2026, 11, 27, 1, 30,
                                                                   tzinfo=UTC)
    assert parse_time("2026-11-27 09:30", CST) == dt.datetime(2026, 11, 27, 1, 30, tzinfo=UTC)
    assert parse_time("2026-11-27T09:30:00+09:00", CST) == dt.datetime(2026, 11, 27, 0, 30,
                                                                      tzinfo=UTC)
    assert parse_time("2026-11-27T09:30", UTC).tzinfo is UTC


def test_parse_time_takes_a_lower_case_z() -> None:
    """RFC 3339 (the ISO 8601 profile of internet times) allows 'z' for UTC."""
    assert parse_time("2026-11-27T01:30:00z", CST) == dt.datetime(2026, 11, 27, 1, 30,
                                                                 tzinfo=UTC)
    assert parse_time(" 2026-11-27T01:30:15.5z\t", CST) == dt.datetime(
        2026, 11, 27, 1, 30, 15, 500000, tzinfo=UTC)
    # only as the offset: a 'z' elsewhere is still not a time
    with pytest.raises(ValueError):
        parse_time("2026-11-27zT01:30:00", CST)


def test_missing_lists_the_empty_required_labels_in_order() -> None:
    assert REQUIRED == ("case_number", "inspected_entity", "officer_ids", "recorded_start")
    assert Labels(source="s", file="f").missing() == list(REQUIRED)
    full = Labels(source="s", file="f", case_number="C", inspected_entity="E",
                  officer_ids=("O",), recorded_start_utc=dt.datetime(2026, 1, 1, tzinfo=UTC))
    assert full.missing() == []
    assert Labels(source="s", file="f", case_number="C", officer_ids=("O",)).missing() == [
        "inspected_entity", "recorded_start"]


# --- files refused -------------------------------------------------------------------------


def test_a_row_without_a_file_name_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(InputError) as e:
        _book(tmp_path, "l.csv", "file,case_number\na.mp4,A\n ,B\n")
    assert str(e.value) == "l.csv line 3: no file name in the 'file' column"


def test_a_json_item_without_a_file_is_an_error_naming_the_item(tmp_path: Path) -> None:
    with pytest.raises(InputError) as e:
        _book(tmp_path, "l.json", '{"recordings": [{"file": "a"}, {"case_number": "B"}]}')
    assert str(e.value) == "l.json item 2: no file name in the 'file' column"


def test_a_csv_without_a_file_column_names_what_it_found(tmp_path: Path) -> None:
    with pytest.raises(InputError) as e:
        _book(tmp_path, "l.csv", "name,case\nx,y\n")
    assert str(e.value) == (f"{tmp_path / 'l.csv'}: line 1: the CSV header has no 'file' (文件) "
                            "column; found ['name', 'case']")


def test_an_empty_csv_has_no_file_column(tmp_path: Path) -> None:
    with pytest.raises(InputError) as e:
        _book(tmp_path, "l.csv", "")
    assert str(e.value).endswith("column; found None")


def test_invalid_json_names_the_line_and_the_problem(tmp_path: Path) -> None:
    with pytest.raises(InputError) as e:
        _book(tmp_path, "l.json", '[\n{"file": }]')
    assert str(e.value) == f"{tmp_path / 'l.json'}: invalid JSON at line 2: Expecting value"


@pytest.mark.parametrize("doc", ['{"file": "a.mp4"}', '"a.mp4"', "[1, 2]",
                                 '{"recordings": {"file": "a"}}', '[{"file": "a"}, 3]'])
def test_json_of_another_shape_is_an_error(tmp_path: Path, doc: str) -> None:
    with pytest.raises(InputError) as e:
        _book(tmp_path, "l.json", doc)
    assert str(e.value) == (f"{tmp_path / 'l.json'}: expected a JSON list of objects or "
                            '{"recordings": [...]}')


def test_json_is_recognised_by_its_first_character_whatever_the_name(tmp_path: Path) -> None:
    row = _only(_book(tmp_path, "labels.txt", '  [{"文件": "a.mp4", "案号": "C-9"}]'))
    assert (row.file, row.case_number, row.source) == ("a.mp4", "C-9", "labels.txt item 1")
    row = _only(_book(tmp_path, "labels2.txt", '{"recordings": [{"file": "b.mp4"}]}'))
    assert row.file == "b.mp4"


def test_a_json_suffix_in_capitals_is_json(tmp_path: Path) -> None:
    with pytest.raises(InputError) as e:
        _book(tmp_path, "L.JSON", "file\na.mp4\n")
    assert "invalid JSON at line 1" in str(e.value)


def test_an_unreadable_labels_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError) as e:
        LabelBook.load(tmp_path / "absent.csv", default_offset=CST)
    assert str(e.value) == (f"{tmp_path / 'absent.csv'}: cannot read labels file: "
                            "No such file or directory")


def test_no_labels_file_is_an_empty_book() -> None:
    book = LabelBook.load(None, default_offset=CST)
    assert (book.by_key, book.encoding, book.unused()) == ({}, None, [])


# --- encodings -----------------------------------------------------------------------------


def test_encodings_tried_are_utf8_with_bom_utf8_and_gb18030() -> None:
    assert ENCODINGS == ("utf-8-sig", "utf-8", "gb18030")
    assert decode_labels("文件".encode(), "x") == ("文件", "utf-8")
    assert decode_labels(b"\xef\xbb\xbf" + "文件".encode(), "x") == ("文件", "utf-8-sig")
    assert decode_labels("文件".encode("gbk"), "x") == ("文件", "gb18030")


def test_a_broken_utf8_file_with_a_bom_is_only_tried_as_utf8() -> None:
    data = b"\xef\xbb\xbfab\ncd\xff\n"
    with pytest.raises(InputError) as e:
        decode_labels(data, "l.csv")
    assert "labels file is not UTF-8 text (byte offset " in str(e.value)


def test_a_broken_utf8_file_with_a_bom_names_the_offset_in_the_file() -> None:
    """The offset, the line and the bytes shown count the BOM: 0xff is byte 8 of the file
    (utf-8-sig itself reports 5, after the BOM it skipped)."""
    data = b"\xef\xbb\xbfab\ncd\xff\n"
    with pytest.raises(InputError) as e:
        decode_labels(data, "l.csv")
    assert str(e.value) == ("l.csv: line 2: labels file is not UTF-8 text (byte offset 8: "
                            "b'\\xff\\n')")


def test_the_error_names_the_attempt_that_got_further() -> None:
    # valid GB18030 up to the 0xff at offset 9; UTF-8 already fails at offset 0
    data = "测试".encode("gbk") + b"\nabcd\xff"
    with pytest.raises(InputError) as e:
        decode_labels(data, "l.csv")
    assert str(e.value) == ("l.csv: line 2: labels file is not UTF-8 or GB18030 text "
                            "(byte offset 9: b'\\xff')")


# --- lookup ---------------------------------------------------------------------------------


def test_lookup_by_absolute_path_first(tmp_path: Path) -> None:
    target = tmp_path / "cam" / "a.mp4"
    book = _book(tmp_path, "l.csv",
                 f"file,case_number\na.mp4,BARE\ncam/a.mp4,REL\n{target.as_posix()},ABS\n")
    lab = book.lookup(target, tmp_path)
    assert lab is not None and lab.case_number == "ABS"
    assert book.unused() == ["a.mp4", "cam/a.mp4"]


def test_lookup_falls_back_to_the_bare_name_outside_the_root(tmp_path: Path) -> None:
    book = _book(tmp_path, "l.csv", "file,case_number\na.mp4,BARE\ncam/a.mp4,REL\n")
    lab = book.lookup(Path("/elsewhere/cam/a.mp4"), tmp_path)
    assert lab is not None and lab.case_number == "BARE"
    assert book.lookup(tmp_path / "b.mp4", tmp_path) is None
    assert book.unused() == ["cam/a.mp4"]


def test_windows_separators_in_the_labels_file_match(tmp_path: Path) -> None:
    book = _book(tmp_path, "l.csv", "file,case_number\ncam\\a.mp4,WIN\n")
    lab = book.lookup(tmp_path / "cam" / "a.mp4", tmp_path)
    assert lab is not None and lab.case_number == "WIN"


def test_a_file_labelled_twice_keeps_the_first_and_names_both_lines(tmp_path: Path) -> None:
    book = _book(tmp_path, "l.csv", "file,case_number,activity_type\n"
                 "a.mp4,A,dancing\nb.mp4,X,\na.mp4,B,\n")
    lab = book.lookup(tmp_path / "a.mp4", None)
    assert lab is not None
    assert (lab.case_number, lab.source, lab.file) == ("A", "l.csv line 2", "a.mp4")
    assert lab.problems[1:] == (
        "'a.mp4' is labelled more than once (l.csv line 2, l.csv line 4); the first is used",)
    assert lab.problems[0].startswith("l.csv line 2: unknown activity type")
    assert book.unused() == ["b.mp4"]


def test_a_gbk_name_on_disk_is_matched_in_its_display_form(tmp_path: Path) -> None:
    p = tmp_path / "l.csv"
    p.write_bytes("file,case_number\n测试.mp4,GBK\n".encode("gbk"))
    book = LabelBook.load(p, default_offset=CST)
    assert book.encoding == "gb18030"
    lab = book.lookup(tmp_path / os.fsdecode("测试.mp4".encode("gbk")), None)
    assert lab is not None and lab.case_number == "GBK"


def test_the_line_of_an_undecodable_byte_counts_a_newline_at_the_very_start() -> None:
    with pytest.raises(InputError) as e:
        decode_labels(b"\nfile\n\xff\xfe\xfd\n", "l.csv")
    assert str(e.value).startswith("l.csv: line 3: labels file is not UTF-8 or GB18030 text")
