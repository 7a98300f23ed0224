"""AV-12 labels files: CSV or JSON, English or Chinese headers, clear errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from pipeline.errors import InputError
from pipeline.ingest.labels import LabelBook

CST = dt.timezone(dt.timedelta(hours=8))


def _book(tmp_path: Path, name: str, text: str) -> LabelBook:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return LabelBook.load(p, default_offset=CST)


def test_csv_with_chinese_headers_labels_a_file_by_name(tmp_path: Path) -> None:
    book = _book(tmp_path, "l.csv",
                 "文件,案号,被检查单位,执法人员,执法类别,开始时间\n"
                 "a.mp4,遂大综执罚〔2026〕12号,某某餐馆,ZF001;ZF002,现场检查,2026-11-27 09:30:00\n")
    lab = book.lookup(tmp_path / "x" / "a.mp4", tmp_path)
    assert lab is not None
    assert lab.case_number == "遂大综执罚〔2026〕12号"
    assert lab.officer_ids == ("ZF001", "ZF002")
    assert lab.activity_type == "onsite_inspection"
    assert lab.recorded_start_utc == dt.datetime(2026, 11, 27, 1, 30, tzinfo=dt.UTC)
    assert lab.missing() == []


def test_relative_path_match_wins_over_bare_name(tmp_path: Path) -> None:
    book = _book(tmp_path, "l.json",
                 '[{"file": "a.mp4", "case_number": "A"},'
                 ' {"file": "cam2/a.mp4", "case_number": "B"}]')
    lab = book.lookup(tmp_path / "cam2" / "a.mp4", tmp_path)
    assert lab is not None and lab.case_number == "B"


def test_bad_time_and_activity_become_problems_not_errors(tmp_path: Path) -> None:
    book = _book(tmp_path, "l.csv",
                 "file,case_number,activity_type,recorded_start\na.mp4,C1,dancing,yesterday\n")
    lab = book.lookup(tmp_path / "a.mp4", tmp_path)
    assert lab is not None and lab.case_number == "C1"
    assert len(lab.problems) == 2
    assert "l.csv line 2" in lab.problems[0]


def test_csv_without_file_column_is_an_error_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"l\.csv: line 1: .*'file'"):
        _book(tmp_path, "l.csv", "name,case\nx,y\n")


def test_invalid_json_is_an_error_with_the_line(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"l\.json: invalid JSON at line 2"):
        _book(tmp_path, "l.json", '[\n{"file": }]')


def test_file_labelled_twice_uses_first_and_reports_both(tmp_path: Path) -> None:
    book = _book(tmp_path, "l.csv", "file,case_number\na.mp4,A\na.mp4,B\n")
    lab = book.lookup(tmp_path / "a.mp4", None)
    assert lab is not None and lab.case_number == "A"
    assert "more than once" in lab.problems[-1]


def test_unused_rows_are_reported(tmp_path: Path) -> None:
    book = _book(tmp_path, "l.csv", "file,case_number\na.mp4,A\ntypo.mp4,B\n")
    book.lookup(tmp_path / "a.mp4", None)
    assert book.unused() == ["typo.mp4"]
