"""Calendar rules for the client's jobs, as pure functions of a rule, a moment and a time zone.

A rule is one short string in the config:

=======================  =====================================================================
``every 3h``             at local wall-clock hours divisible by 3 (00:00, 03:00, ...); any
                         divisor of 24 hours works (1h, 2h, 3h, 4h, 6h, 8h, 12h)
``every 90s`` / ``5m``   every N seconds/minutes of elapsed time (status polls, tests)
``daily 06:00``          every day at that local time
``weekly mon 06:00``     every week on that day (mon..sun)
``monthly 31 06:00``     every month on that day; a day the month lacks means its last day
``quarterly 18:00``      on the last day of March, June, September and December
``off``                  never
=======================  =====================================================================

Local times are in the configured IANA time zone (``zoneinfo``). Across a DST change a
wall time that does not exist (02:30 on a spring-forward night) runs when the clock
reaches it, one hour later; one that happens twice (autumn) runs once, the first time.

``next_due(rule, after, tz)`` is the first due time strictly after ``after``;
``latest_due(rule, last_due, now, tz)`` is the latest due time in ``(last_due, now]``, so a
machine that was off over one or many due times runs the job once on start-up.

>>> from datetime import datetime, UTC
>>> r = parse_rule("monthly 31 06:00")
>>> next_due(r, datetime(2026, 4, 2, tzinfo=UTC), "UTC").isoformat()
'2026-04-30T06:00:00+00:00'
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fsm_protocol.errors import ConfigError

RuleKind = Literal["off", "interval", "hours", "daily", "weekly", "monthly", "quarterly"]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_QUARTER_END_MONTHS = (3, 6, 9, 12)
#: How far ahead a calendar rule is searched; a rule that never fires within it is a bug.
_HORIZON_DAYS = 400
#: Longest gap between two due times of any calendar rule (a quarter), plus margin.
_LOOKBACK_DAYS = 100


@dataclass(frozen=True)
class Rule:
    """A parsed schedule rule (see the module docstring for the text forms)."""

    kind: RuleKind
    text: str
    seconds: int = 0  # interval: period; hours: period in hours * 3600
    at: time = time(0, 0)
    weekday: int = 0  # 0 = Monday
    day: int = 1  # monthly: day of month, clamped to the month's last day

    def __str__(self) -> str:
        return self.text


_EVERY = re.compile(r"^every\s+(\d+)\s*(s|m|h)$")
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def _bad(text: str, why: str) -> ConfigError:
    return ConfigError(
        f"schedule rule {text!r}: {why}",
        hint="use one of: 'every 3h', 'every 90s', 'daily 06:00', 'weekly mon 06:00', "
        "'monthly 31 06:00', 'quarterly 18:00', 'off'",
    )


def _time(text: str, part: str) -> time:
    m = _TIME.match(part)
    if not m:
        raise _bad(text, f"{part!r} is not a time of day HH:MM")
    return time(int(m.group(1)), int(m.group(2)))


def parse_rule(text: str) -> Rule:
    """Parse a rule string; raises ConfigError quoting it when it is not one."""
    norm = " ".join(text.strip().lower().split())
    if norm in ("off", "never", ""):
        return Rule("off", norm or "off")
    m = _EVERY.match(norm)
    if m:
        n, unit = int(m.group(1)), m.group(2)
        if n <= 0:
            raise _bad(text, "the interval must be positive")
        if unit == "h":
            if 24 % n:
                raise _bad(text, f"every {n}h does not divide the day; use 1, 2, 3, 4, 6, 8 or 12 hours")
            return Rule("hours", norm, seconds=n * 3600)
        return Rule("interval", norm, seconds=n * (60 if unit == "m" else 1))
    words = norm.split(" ")
    match words:
        case ["daily", at]:
            return Rule("daily", norm, at=_time(text, at))
        case ["weekly", day, at]:
            if day[:3] not in WEEKDAYS:
                raise _bad(text, f"{day!r} is not a weekday (mon..sun)")
            return Rule("weekly", norm, weekday=WEEKDAYS.index(day[:3]), at=_time(text, at))
        case ["monthly", day, at]:
            if not day.isdigit() or not 1 <= int(day) <= 31:
                raise _bad(text, f"{day!r} is not a day of the month (1..31)")
            return Rule("monthly", norm, day=int(day), at=_time(text, at))
        case ["quarterly", at]:
            return Rule("quarterly", norm, at=_time(text, at))
    raise _bad(text, "not a rule this client knows")


def zone(name: str) -> tzinfo:
    """The time zone called ``name`` (IANA, e.g. ``Europe/Berlin``); ConfigError if unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"unknown time zone {name!r}", hint="use an IANA name such as 'UTC' or 'Europe/Berlin'"
        ) from exc


def _tz(tz: tzinfo | str) -> tzinfo:
    return zone(tz) if isinstance(tz, str) else tz


def _slots(rule: Rule, day: date) -> list[time]:
    """The local wall times on ``day`` at which ``rule`` is due."""
    if rule.kind == "hours":
        step = rule.seconds // 3600
        return [time(h, 0) for h in range(0, 24, step)]
    if rule.kind == "daily":
        return [rule.at]
    if rule.kind == "weekly":
        return [rule.at] if day.weekday() == rule.weekday else []
    last = calendar.monthrange(day.year, day.month)[1]
    if rule.kind == "monthly":
        return [rule.at] if day.day == min(rule.day, last) else []
    if rule.kind == "quarterly":
        return [rule.at] if day.month in _QUARTER_END_MONTHS and day.day == last else []
    return []


def _wall(day: date, at: time, tz: tzinfo) -> datetime:
    """A local wall time as a UTC instant. A time in a spring-forward gap is read with the
    offset before the change (fold=0), which lands it after the gap; an ambiguous autumn
    time resolves to its first occurrence."""
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def _aware(when: datetime) -> datetime:
    if when.tzinfo is None:
        raise ValueError(f"naive datetime {when.isoformat()!r}: schedule times must be aware")
    return when.astimezone(UTC)


def next_due(rule: Rule, after: datetime, tz: tzinfo | str) -> datetime | None:
    """The first moment strictly after ``after`` at which ``rule`` is due (UTC), or None if off."""
    after = _aware(after)
    if rule.kind == "off":
        return None
    if rule.kind == "interval":
        epoch = int(after.timestamp())
        return datetime.fromtimestamp((epoch // rule.seconds + 1) * rule.seconds, UTC)
    zone_ = _tz(tz)
    day = after.astimezone(zone_).date() - timedelta(days=1)  # a gap time may map back across midnight
    for _ in range(_HORIZON_DAYS):
        for at in _slots(rule, day):
            when = _wall(day, at, zone_)
            if when > after:
                return when
        day += timedelta(days=1)
    raise AssertionError(f"rule {rule.text!r} never fires within {_HORIZON_DAYS} days")  # pragma: no cover


def latest_due(rule: Rule, last_due: datetime, now: datetime, tz: tzinfo | str) -> datetime | None:
    """The latest due time in ``(last_due, now]``: what a job whose last handled due time was
    ``last_due`` must run for now (once, however many due times it missed), or None."""
    last_due, now = _aware(last_due), _aware(now)
    first = next_due(rule, last_due, tz)
    if first is None or first > now:
        return None
    if rule.kind == "interval":
        return datetime.fromtimestamp(int(now.timestamp()) // rule.seconds * rule.seconds, UTC)
    # Start near ``now`` (a quarter covers every calendar rule) so a year off costs little.
    probe = max(first, now - timedelta(days=_LOOKBACK_DAYS))
    best = first
    cursor = probe - timedelta(seconds=1) if probe > first else first - timedelta(seconds=1)
    while True:
        nxt = next_due(rule, cursor, tz)
        if nxt is None or nxt > now:
            return best
        best, cursor = nxt, nxt


__all__ = ["WEEKDAYS", "Rule", "RuleKind", "latest_due", "next_due", "parse_rule", "zone"]
