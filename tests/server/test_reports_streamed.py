"""The streamed reports equal the reports as they were computed before (tests/server/reports_reference.py):
same rows, numbers and flags, on the fixture of the report tests and on a fleet with late reports,
repeated observations, replacements, unreachable readings and alerts."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
import reports_reference as reference
from reports_fleet import Feeder, reading
from test_reports import NOV, OCT, SETTINGS, october  # noqa: F401 - the fixture the report tests use

from fsm_devtools.corpus import ClientKit, ServerKit
from fsm_server import reports
from fsm_server.db import migrations
from fsm_server.db.connect import Database
from fsm_server.ingest.pipeline import Pipeline
from fsm_server.reports import spill

T0 = datetime(2026, 10, 1, 8, tzinfo=UTC)


@pytest.fixture
def messy(pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit) -> Feeder:
    """Forty days of three devices: E's reports of days 20-22 arrive after day 25's and its board is
    replaced on day 21; every reading of F is also sent again in an alert report (the same moment
    twice); G is unreachable every fifth day; toners fall and are replaced; jams come and go."""
    feed = Feeder(pipeline, client_kit, server_kit)
    held = []
    for n in range(40):
        at = T0 + timedelta(days=n)
        e = reading(
            "E5",
            at,
            ip="10.0.0.5",
            total=(5000 + 70 * n) if n < 21 else 30 * (n - 20),
            supplies=[("toner", "black", 90.0 - (2 * n) % 60)],
            alerts=["jam"] if n % 9 == 3 else [],
        )
        f = reading(
            "F6",
            at + timedelta(minutes=1),
            ip="10.0.0.6",
            total=100 + 10 * n,
            supplies=[("toner", "black", None if n % 7 == 0 else 50.0 - n), ("toner", "cyan", 80.0)],
            conditions=["door_open"] if 10 <= n < 13 else [],
        )
        g = reading(
            "G7",
            at + timedelta(minutes=2),
            ip="10.0.0.7",
            total=2**32 - 2000 + 150 * n,
            supplies=[("drum", None, 100.0 - n)],
            alerts=["marker_supply_low"] if n > 30 else [],
        )
        if n % 5 == 4:
            g = msgspec.structs.replace(g, reachability="unreachable", counters={}, supplies=[], alerts=[])
        g = msgspec.structs.replace(g, counters={k: v % 2**32 for k, v in g.counters.items()})
        if 20 <= n <= 22:
            held.append((at, e))
            feed.send(at, [f, g])
        else:
            feed.send(at, [e, f, g])
        feed.send(at + timedelta(minutes=30), [f], kind="alert")
        if n == 25:
            for when, late in held:
                feed.send(when + timedelta(hours=1), [late], kind="alert")
    return feed


def same(a: msgspec.Struct, b: msgspec.Struct) -> None:
    assert msgspec.json.decode(msgspec.json.encode(a)) == msgspec.json.decode(msgspec.json.encode(b))


PERIODS = [
    (T0 - timedelta(days=5), T0 + timedelta(days=10)),
    (T0 + timedelta(days=15), T0 + timedelta(days=30)),
    (T0 + timedelta(days=19, hours=12), T0 + timedelta(days=45)),
    (T0 + timedelta(days=50), T0 + timedelta(days=60)),
]


@pytest.mark.parametrize("period", range(len(PERIODS)))
def test_streamed_reports_equal_the_reports_of_before_on_a_messy_fleet(
    messy: Feeder, period: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    start, end = PERIODS[period]
    now = end + timedelta(hours=6)
    scope = reports.Scope(start=start, end=end, now=now)
    meters = reports.build("meters", start=start, end=end, now=now, settings=SETTINGS)
    same(meters, reference.meters(scope, SETTINGS))
    same(reports.build("supplies", start=start, end=end, now=now), reference.supplies(scope, SETTINGS))
    same(reports.build("alerts", start=start, end=end, now=now), reference.alerts(scope))
    for fmt in ("csv", "json"):
        out = io.StringIO()
        reports.stream("meters", fmt, out, start=start, end=end, now=now, settings=SETTINGS)
        assert out.getvalue() == reports.render(reference.meters(scope, SETTINGS), fmt)
        # the supplies sorted in memory, and in runs of two spilled to files and merged
        for run in (spill.RUN, 2):
            monkeypatch.setattr(spill, "RUN", run)
            out = io.StringIO()
            reports.stream("supplies", fmt, out, start=start, end=end, now=now, settings=SETTINGS)
            assert out.getvalue() == reports.render(reference.supplies(scope, SETTINGS), fmt)
    if period == 1:  # E's late reports and its reset are in this period
        e = {r.counter: r for r in meters.rows if r.device.serial == "E5"}["total"]
        assert "reset" in e.flags and e.usage > 0


def test_streamed_reports_equal_the_reports_of_before_on_the_report_tests_fleet(october: Feeder) -> None:  # noqa: F811
    now = datetime(2026, 11, 20, tzinfo=UTC)
    scope = reports.Scope(start=OCT, end=NOV, now=now)
    same(
        reports.build("meters", start=OCT, end=NOV, now=now, settings=SETTINGS),
        reference.meters(scope, SETTINGS),
    )
    same(reports.build("supplies", start=OCT, end=NOV, now=now), reference.supplies(scope, SETTINGS))
    same(reports.build("alerts", start=OCT, end=NOV, now=now), reference.alerts(scope))


def test_alerts_loaded_before_their_device_was_stored_with_them_are_kept(messy: Feeder, db: Database) -> None:
    """A database from before m026_alert_device (or a restore of its backup): the migration sets
    each alert's device from its reading, and the report finds every alert by device again."""
    start, end = PERIODS[2]
    now = end + timedelta(hours=6)
    before = reports.build("alerts", start=start, end=end, now=now)
    assert before.open or before.recent
    db.peewee.execute_sql(f'DROP INDEX "{migrations.ALERT_DEVICE_INDEX}"')
    db.peewee.execute_sql("UPDATE alert_value SET device_id = NULL")
    db.peewee.execute_sql("DELETE FROM migrations WHERE name = 'm026_alert_device'")
    assert migrations.migrate(db) == ["m026_alert_device"]
    assert {i.name: i.columns for i in db.peewee.get_indexes("alert_value")}[
        migrations.ALERT_DEVICE_INDEX
    ] == ["device_id", "observed_at"]
    after = reports.build("alerts", start=start, end=end, now=now)
    same(after, before)
    same(after, reference.alerts(reports.Scope(start=start, end=end, now=now)))
