"""Labels files in UTF-8 (with or without BOM) or GB18030/GBK, detected and reported; an
undecodable one is an error naming the line and byte offset; GBK file names match."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from pipeline.errors import InputError
from pipeline.ingest.labels import LabelBook

CST = dt.timezone(dt.timedelta(hours=8))
CSV = "文件,案号,被检查单位\n测试.mp4,遂综执检2026-31,大柘镇某某餐馆\n"


def _load(path: Path) -> LabelBook:
    return LabelBook.load(path, default_offset=CST)


@pytest.mark.parametrize(("data", "encoding"), [
    (CSV.encode("utf-8"), "utf-8"),
    (b"\xef\xbb\xbf" + CSV.encode("utf-8"), "utf-8-sig"),
    (CSV.encode("gbk"), "gb18030"),
    (CSV.encode("gb18030"), "gb18030"),
])
def test_the_encoding_is_detected_and_reported(
    tmp_path: Path, data: bytes, encoding: str
) -> None:
    path = tmp_path / "labels.csv"
    path.write_bytes(data)
    book = _load(path)
    assert book.encoding == encoding
    row = book.lookup(tmp_path / "测试.mp4", tmp_path)
    assert row is not None and row.case_number == "遂综执检2026-31"
    assert row.inspected_entity == "大柘镇某某餐馆"


def test_an_undecodable_file_names_the_line_and_byte_offset(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    good = CSV.encode("utf-8")
    path.write_bytes(good + b"x.mp4,\xff\xff,y\n")
    with pytest.raises(InputError) as err:
        _load(path)
    assert str(err.value) == (
        f"{path}: line 3: labels file is not UTF-8 or GB18030 text "
        f"(byte offset {len(good) + 6}: b'\\xff\\xff,y')")


def test_a_gbk_file_name_on_disk_matches_its_chinese_name(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_bytes(CSV.encode("gbk"))
    on_disk = tmp_path / "dock" / os.fsdecode(b"\xb2\xe2\xca\xd4.mp4")
    row = _load(path).lookup(on_disk, tmp_path / "dock")
    assert row is not None and row.case_number == "遂综执检2026-31"


def test_an_escaped_name_matches_a_name_neither_utf8_nor_gb18030(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("file,case_number\nbad\\xff.mp4,C-1\n", encoding="utf-8")
    row = _load(path).lookup(tmp_path / os.fsdecode(b"bad\xff.mp4"), tmp_path)
    assert row is not None and row.case_number == "C-1"
