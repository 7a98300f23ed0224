"""Tables measure CJK text by display width; times are shown in the configured zone."""

from __future__ import annotations

import datetime as dt
import json
import unicodedata
from zoneinfo import ZoneInfo

from pipeline.cli.render import MAX_CELL, table_lines
from tests.cli.conftest import Custody


def columns(text: str) -> int:
    """Display columns as a terminal counts them (East Asian Wide/Fullwidth are two)."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def test_a_long_chinese_cell_is_exactly_the_cell_limit_wide() -> None:
    row = {"detail": "录制中断" * 40}
    _header, rule, line = table_lines([row], ["detail"])
    assert (columns(line), columns(rule), MAX_CELL) == (60, 60, 60)
    assert line.endswith("…")


def test_a_row_of_chinese_and_ascii_cells_lines_up_with_its_header() -> None:
    rows = [{"code": "GAP_IN_STREAM", "title": "录制中断" * 30, "n": 1},
            {"code": "X", "title": "ab", "n": 22}]
    lines = table_lines(rows, ["code", "title", "n"])
    assert [columns(x) for x in lines] == [
        13 + 2 + 60 + 2 + 1, 13 + 2 + 60 + 2 + 2, 13 + 2 + 60 + 2 + 1, 13 + 2 + 60 + 2 + 2]
    assert lines[2].split("  ")[0] == "GAP_IN_STREAM"


def test_an_odd_limit_pads_where_a_wide_character_would_straddle() -> None:
    (_, _, line) = table_lines([{"t": "案号" * 10}], ["t"], max_cell=8)
    assert (line, columns(line)) == ("案号案 …", 8)


def test_table_times_are_in_the_configured_zone() -> None:
    t = dt.datetime(2026, 11, 27, 1, 30, tzinfo=dt.UTC)
    (_, _, line) = table_lines([{"at": t}], ["at"], zone=ZoneInfo("Asia/Shanghai"))
    assert line == "2026-11-27T09:30:00+08:00"


def test_audit_show_table_is_local_time_and_json_stays_utc(archive: Custody) -> None:
    r = archive("audit", "show", "--as", "A-1", "--json")
    first = json.loads(r.out)[0]
    at_utc = dt.datetime.fromisoformat(first["at_utc"])
    assert (first["seq"], at_utc.utcoffset()) == (1, dt.timedelta(0))
    r = archive("audit", "show", "--as", "A-1")
    shown = at_utc.astimezone(ZoneInfo("Asia/Shanghai")).isoformat(timespec="seconds")
    assert r.out.splitlines()[2].split()[:2] == ["1", shown]
