"""Retention tiers (AV-11, AV-13) and how the first retain-until date is computed.

A tier only ever goes up; retain-until only ever grows. Time counts from the recording,
not from the upload, but never less than a minimum lock after ingest, so old footage that
arrives late still enters the archive locked.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum


class Tier(StrEnum):
    ONE_YEAR = "one_year"
    CASE = "case"
    PERMANENT = "permanent"


TIER_RANK: dict[Tier, int] = {Tier.ONE_YEAR: 0, Tier.CASE: 1, Tier.PERMANENT: 2}


@dataclass(frozen=True, slots=True)
class TierInfo:
    tier: Tier
    rule: str
    title_en: str
    title_zh: str


TIERS: dict[Tier, TierInfo] = {
    Tier.ONE_YEAR: TierInfo(Tier.ONE_YEAR, "AV-11", "Kept at least one year", "保存不少于一年"),
    Tier.CASE: TierInfo(Tier.CASE, "AV-11", "Kept with the case file", "随案卷时限保存"),
    Tier.PERMANENT: TierInfo(Tier.PERMANENT, "AV-13", "Long-term preservation", "长期保存"),
}

DEFAULT_MIN_LOCK = dt.timedelta(days=90)


def one_year_retain_until(
    recorded_at_utc: dt.datetime | None,
    ingested_at_utc: dt.datetime,
    *,
    min_lock: dt.timedelta = DEFAULT_MIN_LOCK,
) -> dt.datetime:
    """recorded_at + 1 year, but never before ingest + min_lock. Pure.

    Without a known recording time, ingest time stands in for it (the later of the two
    possible starts, so the lock is never shorter than the rule asks).
    """
    base = recorded_at_utc or ingested_at_utc
    try:
        year_later = base.replace(year=base.year + 1)
    except ValueError:  # 29 February
        year_later = base.replace(year=base.year + 1, day=28)
    return max(year_later, ingested_at_utc + min_lock)
