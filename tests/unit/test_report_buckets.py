"""The report's trend counts each finding in a bucket of time from the period's start
(`gather._Buckets`), then gives each bucket its local day: the bucket is the longest span
that divides every day start's distance from the period's, so no bucket straddles two
days, in a zone with daylight saving time too."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from pipeline.reports.gather import _Buckets, parse_period

HOUR_US = 3_600_000_000


def _every_bucket_in_its_day(text: str, zone: str) -> _Buckets:
    """Each bucket's first and last microsecond fall in the day `_Buckets.day` names (the
    local date zoneinfo gives); returns the buckets."""
    p = parse_period(text, zone)
    b = _Buckets.of(p)
    z = ZoneInfo(zone)
    end_us = b.start_us + (p.end_utc - p.start_utc) // dt.timedelta(microseconds=1)
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    for k in range((end_us - b.start_us) // b.us):
        first = epoch + dt.timedelta(microseconds=b.start_us + k * b.us)
        last = first + dt.timedelta(microseconds=b.us - 1)
        assert first.astimezone(z).date() == b.day(k) == last.astimezone(z).date()
    assert (end_us - b.start_us) % b.us == 0
    return b


def test_a_year_in_shanghai_is_counted_by_whole_days() -> None:
    b = _every_bucket_in_its_day("2026", "Asia/Shanghai")
    assert b.us == 24 * HOUR_US
    assert (b.day(0), b.day(364)) == (dt.date(2026, 1, 1), dt.date(2026, 12, 31))


@pytest.mark.parametrize(("text", "zone", "bucket_us"), [
    ("2026-03", "Europe/Berlin", HOUR_US),  # 29 March has 23 hours
    ("2026-10-24..2026-10-26", "Europe/Berlin", HOUR_US),  # 25 October has 25
    ("2026-04", "Australia/Lord_Howe", HOUR_US // 2),  # 5 April: clocks go back 30 min
    ("2026-03-01..2026-03-28", "Europe/Berlin", 24 * HOUR_US),  # before the change
])
def test_across_a_clock_change_the_buckets_are_shorter(text: str, zone: str,
                                                        bucket_us: int) -> None:
    assert _every_bucket_in_its_day(text, zone).us == bucket_us


def test_one_day_is_one_bucket() -> None:
    b = _every_bucket_in_its_day("2026-11-27..2026-11-27", "Asia/Shanghai")
    assert (b.us, b.days) == (24 * HOUR_US, (dt.date(2026, 11, 27),))
