"""Days-remaining forecasts on synthetic but realistic toner histories with a known answer."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from reports_fleet import Feeder, reading

from fsm_devtools.corpus import ClientKit, ServerKit
from fsm_server import reports
from fsm_server.ingest.pipeline import Pipeline
from fsm_server.reports.forecast import forecast

NOW = datetime(2026, 11, 18, 9, 40, tzinfo=UTC)
#: pages by hour of the day as a share of the day's volume (a ward that prints around the clock,
#: busiest during the day shift)
PROFILE = [0.01] * 7 + [0.06, 0.09, 0.1, 0.1, 0.08, 0.07, 0.09, 0.1, 0.09, 0.07, 0.05] + [0.02] * 6
PROFILE = [p / sum(PROFILE) for p in PROFILE]


def toner_history(
    now: datetime,
    *,
    per_day: float = 2.0,
    replaced_days_ago: float = 24.3,
    old_left: float = 23.0,
    seed: int = 1,
    volume_jitter: float = 0.0,
) -> tuple[list[tuple[datetime, float]], float, float]:
    """Readings every 6 h (a few minutes late, levels in whole percent like real devices) of a
    toner used ``per_day`` percent a day, replaced early ``replaced_days_ago`` with ``old_left``
    percent left in the old one. Returns (history, true level now, realised percent per day)."""
    rng = random.Random(seed)
    start = now - timedelta(days=replaced_days_ago)
    t = start - timedelta(days=20)
    level = old_left + 20 * per_day
    history: list[tuple[datetime, float]] = []
    replaced = False
    factor = 1.0
    next_read = t
    used = 0.0
    while t <= now:
        if not replaced and t >= start:
            level, replaced, used = 100.0, True, 0.0
        if t.minute == 0 and t.hour == 0:
            factor = 1 + rng.uniform(-volume_jitter, volume_jitter)
        step = per_day * factor * PROFILE[t.hour] / 6  # ten-minute steps
        level -= step
        used += step if replaced else 0
        if t >= next_read:
            history.append((t, float(round(level))))
            next_read = t.replace(minute=0) + timedelta(hours=6, minutes=rng.randint(0, 25))
        t += timedelta(minutes=10)
    return history, level, used / replaced_days_ago


def days_until_empty(level: float, now: datetime, per_day: float) -> float:
    """The known answer: the same consumption carried on from the true level until it is empty."""
    t = now
    while level > 0:
        level -= per_day * PROFILE[t.hour] / 6
        t += timedelta(minutes=10)
    return (t - now).total_seconds() / 86400


@pytest.mark.parametrize("hour", [3, 9, 14, 20])
def test_the_forecast_is_within_a_day_of_the_known_answer(hour: int) -> None:
    now = NOW.replace(hour=hour)
    history, level, _ = toner_history(now)
    f = forecast(history, now=now)
    assert f.days_remaining is not None, f.reason
    answer = days_until_empty(level, now, 2.0)
    assert answer == pytest.approx(level / 2.0, abs=0.5)  # about 26 days
    assert f.days_remaining == pytest.approx(answer, abs=1.0)
    assert f.rate_per_day == pytest.approx(2.0, rel=0.03)
    [rep] = f.replacements  # the early swap is found, and only the new toner is fitted
    assert rep.early and rep.before == pytest.approx(23, abs=1) and rep.after >= 99
    assert f.span_days < 24.5


def test_uneven_daily_volumes_still_give_the_realised_rate() -> None:
    for seed in range(10):
        history, level, rate = toner_history(NOW, seed=seed, volume_jitter=0.4)
        f = forecast(history, now=NOW)
        assert f.days_remaining == pytest.approx(level / rate, rel=0.1)


def test_no_forecast_without_enough_history_or_consumption() -> None:
    t = NOW
    assert forecast([], now=t).reason == "no percent levels reported"
    two = [(t - timedelta(days=5), 50.0), (t, 40.0)]
    assert "at least 3" in (forecast(two, now=t).reason or "")
    short = [(t - timedelta(hours=h), 50.0 + h) for h in range(0, 40, 6)]
    assert "spans 1.5 days" in (forecast(short, now=t).reason or "")
    flat = [(t - timedelta(days=d), 50.0) for d in range(10)]
    f = forecast(flat, now=t)
    assert (f.days_remaining, f.reason) == (None, "the level is not falling (no consumption in the window)")
    late = [(t - timedelta(days=d), 80.0 - d) for d in range(10)]
    assert forecast(late, now=t, replacement_jump=15).replacements == []


def test_the_supplies_report_forecasts_from_pipeline_loaded_history(
    pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    history, level, _ = toner_history(now, replaced_days_ago=12.3)
    feed = Feeder(pipeline, client_kit, server_kit)
    for n, (at, pct) in enumerate(history):
        supplies = [("toner", "black", pct), ("waste_toner", None, None)]
        if n >= len(history) - 2:
            supplies.append(("toner", "cyan", 70.0))  # a new colour toner: too little history
        feed.send(at, [reading("A1", at, total=1000 + n, supplies=supplies)])
    r = reports.build(
        "supplies", start=now - timedelta(days=30), end=now + timedelta(minutes=1), with_history=True
    )
    rows = {(x.supply_kind, x.color): x for x in r.rows}
    black = rows[("toner", "black")]
    assert black.forecast.days_remaining == pytest.approx(days_until_empty(level, now, 2.0), abs=1.0)
    assert black.forecast.empty_at is not None and black.percent == history[-1][1]
    assert r.replacements_in_period == r.early_replacements_in_period == 1
    start = now - timedelta(days=30)
    assert [p for p in black.history if p[0] >= start] == [p for p in history if p[0] >= start]  # the chart
    assert (
        rows[("toner", "cyan")].forecast.reason == "2 reading(s) since the last replacement; "
        "a forecast needs at least 3"
    )
    waste = rows[("waste_toner", None)]
    assert waste.forecast.days_remaining is None and "no percent level" in (waste.forecast.reason or "")
    assert r.rows[0] is black  # soonest empty first
