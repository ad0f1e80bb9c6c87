"""Calendar rules with a controllable clock: month ends, quarter ends, DST, a machine that was off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from fsm_client.schedule import latest_due, next_due, parse_rule, zone
from fsm_protocol.errors import ConfigError

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def local(tz: ZoneInfo, *args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=tz, fold=fold)  # type: ignore[misc]


def dues(rule_text: str, start: datetime, n: int, tz: ZoneInfo) -> list[datetime]:
    rule, out, at = parse_rule(rule_text), [], start
    for _ in range(n):
        at = next_due(rule, at, tz)  # type: ignore[assignment]
        out.append(at.astimezone(tz))
    return out


@pytest.mark.parametrize(
    "text",
    [
        "every 3h",
        "every 6h",
        "every 12h",
        "every 90s",
        "every 2m",
        "daily 06:00",
        "weekly mon 06:00",
        "monthly 31 23:59",
        "quarterly 18:00",
        "off",
    ],
)
def test_every_documented_rule_parses(text: str) -> None:
    assert str(parse_rule(text)) == text


@pytest.mark.parametrize(
    "text, why",
    [
        ("every 5h", "does not divide the day"),
        ("daily 25:00", "not a time of day"),
        ("weekly someday 06:00", "not a weekday"),
        ("monthly 32 06:00", "not a day of the month"),
        ("hourly", "not a rule"),
        ("every 0s", "positive"),
    ],
)
def test_a_bad_rule_is_refused_quoting_it(text: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why) as err:
        parse_rule(text)
    assert repr(text) in err.value.message and "daily 06:00" in err.value.hint


def test_an_unknown_time_zone_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="Mars/Olympus"):
        zone("Mars/Olympus")


def test_monthly_on_the_31st_runs_on_the_last_day_of_short_months() -> None:
    got = dues("monthly 31 06:00", local(BERLIN, 2026, 1, 1), 5, BERLIN)
    assert [d.date().isoformat() for d in got] == [
        "2026-01-31",
        "2026-02-28",
        "2026-03-31",
        "2026-04-30",
        "2026-05-31",
    ]
    assert all((d.hour, d.minute) == (6, 0) for d in got)


def test_monthly_on_the_29th_in_a_leap_february() -> None:
    got = dues("monthly 29 00:00", local(BERLIN, 2028, 2, 1), 2, BERLIN)
    assert [d.date().isoformat() for d in got] == ["2028-02-29", "2028-03-29"]


def test_quarter_end_is_the_last_day_of_each_quarter() -> None:
    got = dues("quarterly 18:00", local(BERLIN, 2026, 1, 1), 5, BERLIN)
    assert [d.date().isoformat() for d in got] == [
        "2026-03-31",
        "2026-06-30",
        "2026-09-30",
        "2026-12-31",
        "2027-03-31",
    ]


def test_due_times_are_strictly_after_the_given_moment() -> None:
    rule = parse_rule("daily 06:00")
    at = local(BERLIN, 2026, 5, 5, 6, 0)
    assert next_due(rule, at, BERLIN) == local(BERLIN, 2026, 5, 6, 6, 0)
    assert next_due(rule, at - timedelta(microseconds=1), BERLIN) == at


def test_daily_keeps_local_time_across_spring_forward() -> None:
    got = dues("daily 06:00", local(BERLIN, 2026, 3, 28, 7), 2, BERLIN)
    assert [(d.day, d.hour) for d in got] == [(29, 6), (30, 6)]
    # 23 hours apart in real time: the night was one hour short
    assert got[0].astimezone(UTC) - local(BERLIN, 2026, 3, 28, 6).astimezone(UTC) == timedelta(hours=23)


def test_a_time_inside_the_spring_forward_gap_runs_once_right_after_it() -> None:
    got = dues("daily 02:30", local(BERLIN, 2026, 3, 28, 3), 2, BERLIN)
    assert got[0].astimezone(UTC) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)  # 03:30 CEST
    assert (got[1].day, got[1].hour, got[1].minute) == (30, 2, 30)


def test_a_time_that_happens_twice_in_autumn_runs_once() -> None:
    got = dues("daily 02:30", local(BERLIN, 2026, 10, 24, 3), 2, BERLIN)
    assert got[0].astimezone(UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # first 02:30 (CEST)
    assert got[1].date().isoformat() == "2026-10-26"


def test_every_3h_follows_the_wall_clock_through_a_dst_change() -> None:
    got = dues("every 3h", local(NEW_YORK, 2026, 11, 1, 0, 0), 8, NEW_YORK)
    assert [d.hour for d in got] == [3, 6, 9, 12, 15, 18, 21, 0]
    # the autumn night has 25 hours: 00:00 -> 03:00 takes 4 real hours
    first_gap = got[0].astimezone(UTC) - local(NEW_YORK, 2026, 11, 1, 0, 0).astimezone(UTC)
    assert first_gap == timedelta(hours=4)


def test_every_1h_skips_the_missing_hour_without_running_twice() -> None:
    got = dues("every 1h", local(BERLIN, 2026, 3, 29, 0, 30), 4, BERLIN)
    utc = [d.astimezone(UTC) for d in got]
    assert len(set(utc)) == 4 and utc == sorted(utc)
    assert [d.hour for d in got] == [1, 3, 4, 5]


def test_interval_rules_count_elapsed_time() -> None:
    rule = parse_rule("every 90s")
    at = datetime(2026, 1, 1, 0, 0, 10, tzinfo=UTC)
    first = next_due(rule, at, "UTC")
    assert first is not None and 0 < (first - at).total_seconds() <= 90
    assert next_due(rule, first, "UTC") == first + timedelta(seconds=90)


def test_off_is_never_due() -> None:
    assert next_due(parse_rule("off"), datetime(2026, 1, 1, tzinfo=UTC), "UTC") is None


def test_a_machine_off_over_one_due_time_runs_the_job_once_at_start_up() -> None:
    rule = parse_rule("daily 06:00")
    last = local(BERLIN, 2026, 6, 1, 6, 0)
    boot = local(BERLIN, 2026, 6, 2, 9, 15)  # off from 2 June 05:00 to 09:15: missed 06:00
    due = latest_due(rule, last, boot, BERLIN)
    assert due == local(BERLIN, 2026, 6, 2, 6, 0)
    # once handled, nothing more is due until the next 06:00
    assert latest_due(rule, due, boot + timedelta(hours=5), BERLIN) is None  # type: ignore[arg-type]
    assert latest_due(rule, due, local(BERLIN, 2026, 6, 3, 6, 0), BERLIN) == local(BERLIN, 2026, 6, 3, 6, 0)  # type: ignore[arg-type]


def test_a_machine_off_for_months_runs_a_missed_monthly_report_once() -> None:
    rule = parse_rule("monthly 31 06:00")
    last = local(BERLIN, 2026, 1, 31, 6, 0)
    boot = local(BERLIN, 2026, 5, 10, 8, 0)  # missed Feb 28, Mar 31, Apr 30
    assert latest_due(rule, last, boot, BERLIN) == local(BERLIN, 2026, 4, 30, 6, 0)


def test_a_machine_off_for_years_is_cheap_and_runs_once() -> None:
    rule = parse_rule("every 1h")
    due = latest_due(rule, datetime(2020, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 5, 30, tzinfo=UTC), BERLIN)
    assert due == datetime(2026, 1, 1, 5, 0, tzinfo=UTC)


def test_nothing_is_due_before_the_first_due_time() -> None:
    rule = parse_rule("quarterly 18:00")
    assert latest_due(rule, local(BERLIN, 2026, 4, 1), local(BERLIN, 2026, 6, 30, 17, 59), BERLIN) is None
    assert latest_due(rule, local(BERLIN, 2026, 4, 1), local(BERLIN, 2026, 6, 30, 18, 0), BERLIN) == local(
        BERLIN, 2026, 6, 30, 18, 0
    )
