"""AV-11: one year from the recording, never less than the minimum lock after ingest."""

from __future__ import annotations

import datetime as dt

from schemas.retention import one_year_retain_until

T = dt.datetime(2026, 1, 10, tzinfo=dt.UTC)


def test_av11_counts_one_year_from_recording_time() -> None:
    assert one_year_retain_until(T, T + dt.timedelta(hours=2)) == T.replace(year=2027)


def test_av11_late_footage_still_gets_the_minimum_lock() -> None:
    ingest = T.replace(year=2027)
    assert one_year_retain_until(T, ingest) == ingest + dt.timedelta(days=90)


def test_av11_unknown_recording_time_counts_from_ingest() -> None:
    assert one_year_retain_until(None, T) == T.replace(year=2027)


def test_av11_leap_day_recording() -> None:
    leap = dt.datetime(2028, 2, 29, tzinfo=dt.UTC)
    assert one_year_retain_until(leap, leap) == dt.datetime(2029, 2, 28, tzinfo=dt.UTC)
