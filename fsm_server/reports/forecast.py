"""Days remaining of one supply, from its history of percent levels; replacements found on the way.

How (docs/reports.md, "Supplies"):

1. The history is split at every *replacement*: a rise of at least ``replacement_jump`` percentage
   points between two readings. A replacement made while the old supply was still above
   ``early_percent`` is flagged ``early`` (toner thrown away, or a swap between machines).
2. Only the segment since the last replacement is used, and of it only the last ``window_days``.
3. A least-squares line is fitted to (time, percent) over that segment. With fewer than
   ``min_points`` readings, a span shorter than ``min_span_days``, or a slope that is not
   falling, there is no forecast, and ``reason`` says why.
4. Days remaining = the level now divided by the fitted consumption per day, counted from the
   newest reading; ``empty_at`` is that moment. The level now is the fitted line at the newest
   reading plus the mean distance of the last day's readings from the line: not the last raw
   value alone, because levels come in coarse steps (whole percent, or 10 % steps on many
   devices), and not the line alone, because consumption is uneven over a week (the line runs
   above the real level after busy days).

>>> from datetime import UTC, datetime, timedelta
>>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
>>> f = forecast([(t0 + timedelta(days=d), 80.0 - 2 * d) for d in range(11)], now=t0 + timedelta(days=10))
>>> round(f.days_remaining, 1), round(f.rate_per_day, 1)
(30.0, 2.0)
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from datetime import datetime, timedelta

import msgspec


class Replacement(msgspec.Struct, kw_only=True):
    """A supply was changed between two readings: level ``before`` -> ``after`` at ``at``."""

    at: datetime
    before: float
    after: float
    early: bool  # replaced while still above the early-replacement threshold


class Forecast(msgspec.Struct, kw_only=True):
    """When a supply runs out, or why that cannot be said."""

    days_remaining: float | None = None
    empty_at: datetime | None = None
    rate_per_day: float | None = None  # percentage points consumed per day (fitted)
    points: int = 0  # readings used by the fit
    span_days: float = 0.0
    reason: str | None = None  # set when days_remaining is None
    replacements: list[Replacement] = msgspec.field(default_factory=list)


def replacements(
    history: Sequence[tuple[datetime, float]], *, jump: float = 15.0, early_percent: float = 10.0
) -> list[Replacement]:
    """Every rise of at least ``jump`` points in a time-ordered history."""
    out = []
    for (_, before), (at, after) in itertools.pairwise(history):
        if after - before >= jump:
            out.append(Replacement(at=at, before=before, after=after, early=before > early_percent))
    return out


def forecast(
    history: Sequence[tuple[datetime, float]],
    *,
    now: datetime | None = None,
    window_days: float = 30,
    min_span_days: float = 3.0,
    min_points: int = 3,
    replacement_jump: float = 15.0,
    early_percent: float = 10.0,
) -> Forecast:
    """The forecast of one supply from ``(observed_at, percent)`` pairs in any order.

    ``now`` only bounds the window (readings after it are ignored); days remaining count from
    the newest reading used.
    """
    points = sorted(history)
    if now is not None and points and points[-1][0] > now:
        points = [p for p in points if p[0] <= now]
    found = replacements(points, jump=replacement_jump, early_percent=early_percent)
    if not points:
        return Forecast(reason="no percent levels reported", replacements=found)
    if found:  # the points are in time order: cut them at the first one at or after a moment
        points = points[bisect.bisect_left(points, (found[-1].at,)) :]
    newest = points[-1][0]
    points = points[bisect.bisect_left(points, (newest - timedelta(days=window_days),)) :]
    span = (newest - points[0][0]).total_seconds() / 86400
    result = Forecast(points=len(points), span_days=span, replacements=found)
    if len(points) < min_points:
        result.reason = (
            f"{len(points)} reading(s) since the last replacement; a forecast needs at least {min_points}"
        )
        return result
    if span < min_span_days:
        result.reason = f"history spans {span:.1f} days; a forecast needs at least {min_span_days:g}"
        return result
    xs = [(t - newest).total_seconds() / 86400 for t, _ in points]
    ys = [v for _, v in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sxy = 0.0  # one pass, each term added in the order sum() would (the same float result)
    for x, y in zip(xs, ys, strict=True):
        dx = x - mx
        sxx += dx**2
        sxy += dx * (y - my)
    slope = sxy / sxx
    # The level now: the fitted line at the newest reading, moved by how far the last day's readings
    # sit above or below the line (consumption is not even over a week: the line alone runs above
    # the real level after busy days and below it after quiet ones).
    recent = [y - (my + slope * (x - mx)) for x, y in zip(xs, ys, strict=True) if x >= -1.0]
    level_now = my - slope * mx + sum(recent) / len(recent)
    if slope >= -1e-6:
        result.reason = "the level is not falling (no consumption in the window)"
        return result
    result.rate_per_day = -slope
    days = max(level_now, 0.0) / -slope
    result.days_remaining = days
    result.empty_at = newest + timedelta(days=days)
    return result


__all__ = ["Forecast", "Replacement", "forecast", "replacements"]
