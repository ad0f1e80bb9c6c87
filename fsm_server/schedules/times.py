"""When a scheduled report is due and which period it covers (UTC throughout).

>>> from datetime import UTC, datetime
>>> next_due("monthly", 1, 6, after=datetime(2026, 11, 1, 6, tzinfo=UTC))
datetime.datetime(2026, 12, 1, 6, 0, tzinfo=datetime.timezone.utc)
>>> next_due("weekly", 1, 6, after=datetime(2026, 12, 2, tzinfo=UTC))  # a Wednesday -> Monday
datetime.datetime(2026, 12, 7, 6, 0, tzinfo=datetime.timezone.utc)
>>> period_for("monthly", datetime(2026, 12, 1, 6, tzinfo=UTC))[0]
datetime.datetime(2026, 11, 1, 0, 0, tzinfo=datetime.timezone.utc)
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Literal

Cadence = Literal["weekly", "monthly"]
CADENCES: tuple[Cadence, ...] = ("weekly", "monthly")
#: the days a monthly report may be sent on: every month has them
MONTH_DAYS = range(1, 29)
WEEK_DAYS = range(1, 8)  # ISO: Monday 1 .. Sunday 7


def _at(day: datetime, hour: int) -> datetime:
    return datetime.combine(day.date(), time(hour), tzinfo=UTC)


def next_due(cadence: str, day: int, hour: int, *, after: datetime) -> datetime:
    """The first send time strictly after ``after``: ``day`` of the week (1-7) or month (1-28), at
    ``hour`` UTC."""
    after = after.astimezone(UTC)
    if cadence == "weekly":
        start = _at(after, hour) + timedelta(days=(day - after.isoweekday()) % 7)
        return start if start > after else start + timedelta(days=7)
    this_month = _at(after.replace(day=day), hour)
    if this_month > after:
        return this_month
    year, month = (after.year + 1, 1) if after.month == 12 else (after.year, after.month + 1)
    return datetime(year, month, day, hour, tzinfo=UTC)


def period_for(cadence: str, due: datetime) -> tuple[datetime, datetime]:
    """[start, end) a report sent at ``due`` covers: the calendar month before its month, or the
    seven days before its day."""
    midnight = _at(due.astimezone(UTC), 0)
    if cadence == "weekly":
        return midnight - timedelta(days=7), midnight
    end = midnight.replace(day=1)
    start = (end - timedelta(days=1)).replace(day=1)
    return start, end


__all__ = ["CADENCES", "MONTH_DAYS", "WEEK_DAYS", "Cadence", "next_due", "period_for"]
