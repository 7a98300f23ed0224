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


class Trigger(StrEnum):
    """AV-13: what makes footage kept long-term (长期保存)."""

    OBJECTION = "objection"
    OBSTRUCTION = "obstruction"
    REVIEW_LITIGATION = "review_litigation"
    OTHER_IMPORTANT = "other_important"


TRIGGERS: dict[Trigger, tuple[str, str]] = {
    Trigger.OBJECTION: (
        "The party objects to or complains about the enforcement, or petitions",
        "当事人对现场执法、办案有异议或者投诉、上访",
    ),
    Trigger.OBSTRUCTION: (
        "The party evades, refuses or obstructs, or insults or assaults officers",
        "当事人逃避、拒绝、阻碍执行公务，或者谩骂、侮辱、殴打行政执法人员",
    ),
    Trigger.REVIEW_LITIGATION: (
        "The case goes to administrative review or litigation", "涉及复议、诉讼的案件"
    ),
    Trigger.OTHER_IMPORTANT: ("Another important situation", "其它需要长期保存的重要情况"),
}

# The longest retention the stores allow: AWS S3 Object Lock takes at most 100 years.
MAX_RETENTION = dt.timedelta(days=36500)


@dataclass(frozen=True, slots=True)
class RetentionState:
    tier: Tier
    retain_until_utc: dt.datetime
    legal_hold: bool


def raise_retention(
    current: RetentionState,
    tier: Tier,
    *,
    now: dt.datetime,
    case_until_utc: dt.datetime | None = None,
    max_retention: dt.timedelta = MAX_RETENTION,
) -> RetentionState:
    """The state after raising `current` to `tier`. Pure. ValueError if it would lower.

    `one_year` keeps the date; `case` needs the case file's retention end and places a
    legal hold (the case is open); `permanent` places a legal hold and the longest
    retention the store allows. Retain-until never moves earlier.
    """
    if TIER_RANK[tier] < TIER_RANK[current.tier]:
        raise ValueError(
            f"tier {current.tier} cannot be lowered to {tier}: a tier only goes up (AV-11, AV-13)"
        )
    until = current.retain_until_utc
    hold = current.legal_hold
    if tier is Tier.CASE:
        if case_until_utc is None:
            raise ValueError("tier 'case' needs the case file's retention end (--until)")
        if case_until_utc < current.retain_until_utc:
            raise ValueError(
                f"--until {case_until_utc.date()} is before the current retain-until "
                f"{current.retain_until_utc.date()}: retention only grows"
            )
        until, hold = case_until_utc, True
    elif tier is Tier.PERMANENT:
        until, hold = max(until, now + max_retention), True
    elif case_until_utc is not None and case_until_utc < until:
        raise ValueError(
            f"--until {case_until_utc.date()} is before the current retain-until "
            f"{until.date()}: retention only grows"
        )
    elif case_until_utc is not None:
        until = case_until_utc
    return RetentionState(tier, until, hold)
