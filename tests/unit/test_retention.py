"""AV-11: one year from the recording, never less than the minimum lock after ingest."""

from __future__ import annotations

import datetime as dt

import pytest

from schemas.retention import (
    MAX_RETENTION,
    RetentionState,
    Tier,
    one_year_retain_until,
    raise_retention,
)

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


def _state(tier: str, until: dt.datetime, hold: bool = False) -> RetentionState:
    return RetentionState(Tier(tier), until, hold)


def test_av11_case_tier_holds_and_retains_until_case_file_end() -> None:
    end = dt.datetime(2036, 12, 31, tzinfo=dt.UTC)
    after = raise_retention(_state("one_year", T), Tier.CASE, now=T, case_until_utc=end)
    assert (after.tier, after.retain_until_utc, after.legal_hold) == (Tier.CASE, end, True)


def test_av13_permanent_gets_the_longest_retention_and_a_hold() -> None:
    after = raise_retention(_state("case", T, True), Tier.PERMANENT, now=T)
    assert after.retain_until_utc == T + MAX_RETENTION and after.legal_hold


def test_av11_no_tier_can_be_lowered() -> None:
    for current, lower in (("case", Tier.ONE_YEAR), ("permanent", Tier.CASE),
                           ("permanent", Tier.ONE_YEAR)):
        with pytest.raises(ValueError, match="only goes up"):
            raise_retention(_state(current, T), lower, now=T,
                            case_until_utc=T.replace(year=2099))


def test_av11_case_end_before_current_retain_until_is_refused() -> None:
    with pytest.raises(ValueError, match="retention only grows"):
        raise_retention(_state("one_year", T.replace(year=2030)), Tier.CASE, now=T,
                        case_until_utc=T.replace(year=2029))
