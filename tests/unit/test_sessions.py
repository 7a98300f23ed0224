"""AV-9 between files: consecutive files of one device in one session."""

from __future__ import annotations

import datetime as dt

from pipeline.analysis.sessions import Interval, gaps_around

T = dt.datetime(2026, 11, 27, 1, 30, tzinfo=dt.UTC)
S = dt.timedelta(seconds=1)


def _iv(name: str, start_s: int, end_s: int, device: str | None = "BC-7",
        case: str | None = None) -> Interval:
    return Interval(name, device, case, T + start_s * S, T + end_s * S)


def test_av9_back_to_back_files_are_one_continuous_session() -> None:
    assert gaps_around(_iv("b", 600, 1200), [_iv("a", 0, 600)]) == []


def test_av9_a_later_start_within_the_session_is_a_gap_between_files() -> None:
    (f,) = gaps_around(_iv("b", 630, 1200), [_iv("a", 0, 600)])
    assert f.code == "GAP_BETWEEN_FILES" and "30.0 s" in f.detail and "a" in f.detail


def test_av9_gap_is_found_when_the_earlier_file_arrives_second() -> None:
    (f,) = gaps_around(_iv("a", 0, 600), [_iv("b", 630, 1200)])
    assert "b starts 30.0 s after a ended" in f.detail


def test_av9_a_long_pause_is_a_new_activity_not_an_interruption() -> None:
    assert gaps_around(_iv("b", 600 + 3600, 9000), [_iv("a", 0, 600)]) == []


def test_av9_other_devices_and_other_cases_are_other_sessions() -> None:
    assert gaps_around(_iv("b", 630, 1200), [_iv("a", 0, 600, device="BC-9")]) == []
    assert gaps_around(_iv("b", 630, 1200, case="C2"), [_iv("a", 0, 600, case="C1")]) == []


def test_av9_files_without_device_or_time_are_not_judged() -> None:
    assert gaps_around(_iv("b", 630, 1200, device=None), [_iv("a", 0, 600, device=None)]) == []
    assert gaps_around(Interval("b", "BC-7", None, None, None), [_iv("a", 0, 600)]) == []
