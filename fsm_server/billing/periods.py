"""Billing periods: a customer's months or quarters, starting on any day of the month.

A period is [start, end) in UTC. A plan anchored on the 31st starts February's period on the 28th
(or 29th): a month without the anchor day starts on its last day.

>>> from datetime import datetime, UTC
>>> p = Plan(cadence="monthly", anchor_day=15)
>>> [f"{d:%Y-%m-%d}" for d in period_containing(p, datetime(2026, 10, 3, tzinfo=UTC))]
['2026-09-15', '2026-10-15']
>>> q = Plan(cadence="quarterly", anchor_day=1, anchor_month=2)
>>> [d.month for d in period_containing(q, datetime(2026, 1, 10, tzinfo=UTC))]
[11, 2]
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from typing import Literal

import msgspec

from ..errors import BillingError

Cadence = Literal["monthly", "quarterly"]
CADENCES: tuple[Cadence, ...] = ("monthly", "quarterly")
_MONTHS: dict[str, int] = {"monthly": 1, "quarterly": 3}


class Plan(msgspec.Struct, kw_only=True, frozen=True):
    """How a customer is billed: every month or quarter from ``anchor_day``; a quarterly plan's
    quarters begin in ``anchor_month`` (1-3) and every third month after it."""

    cadence: Cadence = "monthly"
    anchor_day: int = 1
    anchor_month: int = 1

    def __post_init__(self) -> None:
        if self.cadence not in CADENCES:
            raise BillingError(f"billing cadence {self.cadence!r} is not one of {', '.join(CADENCES)}")
        if not 1 <= self.anchor_day <= 31:
            raise BillingError(
                f"billing day {self.anchor_day} is not a day of the month",
                hint="give 1-31 (a month without that day starts on its last day)",
            )
        if not 1 <= self.anchor_month <= 3:
            raise BillingError(
                f"quarter start month {self.anchor_month} is not 1, 2 or 3",
                hint="quarters begin in that month and every third one after it",
            )


def _start(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, min(day, calendar.monthrange(year, month)[1]), tzinfo=UTC)


def _add_months(year: int, month: int, n: int) -> tuple[int, int]:
    index = year * 12 + month - 1 + n
    return index // 12, index % 12 + 1


def period_containing(plan: Plan, when: datetime) -> tuple[datetime, datetime]:
    """The period of ``plan`` that ``when`` falls in."""
    when = when.astimezone(UTC)
    year, month = when.year, when.month
    step = _MONTHS[plan.cadence]
    while (step == 3 and (month - plan.anchor_month) % 3) or _start(year, month, plan.anchor_day) > when:
        year, month = _add_months(year, month, -1)
    end_year, end_month = _add_months(year, month, step)
    return _start(year, month, plan.anchor_day), _start(end_year, end_month, plan.anchor_day)


def last_complete_period(plan: Plan, now: datetime) -> tuple[datetime, datetime]:
    """The newest period of ``plan`` that ended at or before ``now``: the one to bill."""
    start, _ = period_containing(plan, now)
    return period_containing(plan, start - timedelta(microseconds=1))


__all__ = ["CADENCES", "Cadence", "Plan", "last_complete_period", "period_containing"]
