"""The devices list and the dashboard read the state ingest keeps (``fsm_server.portal.latest``):
what they show, filter and count by is each device's newest reading, whatever arrived late or
stopped being reported, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from portal_fleet import Viewer
from reports_fleet import Feeder, reading

from fsm_devtools.corpus import ClientKit, ServerKit
from fsm_server.db import migrations, sql
from fsm_server.db.connect import Database
from fsm_server.ingest.pipeline import Pipeline
from fsm_server.portal.dashboard import dashboard
from fsm_server.portal.devices import SORTS, DeviceFilter, device_page
from fsm_server.portal.latest import latest_states
from fsm_server.scoping import Scoped

T0 = datetime(2026, 10, 1, 9, tzinfo=UTC)
NOW = T0 + timedelta(days=4, hours=12)


def toner(pct: float) -> tuple[str, str | None, float | None]:
    return ("toner", "black", pct)


@pytest.fixture
def fed(pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit) -> Feeder:
    """Five days of three printers of ACME, one report a day.

    A1: toner down to 5 % on day 3 and replaced on day 4; a drum at 4 % it stops reporting on
    day 4; a jam on day 2 only; door open in its newest reading. B2: toner at 8 % until day 3,
    unreachable on day 4 (no supplies). C3 (an SP 5300): reports on days 0 and 1 only, toner at
    9 % on day 1; its day-0 reading comes again, late, after day 4's report, with a jam and an
    empty toner."""
    feed = Feeder(pipeline, client_kit, server_kit)
    for n in range(5):
        at = T0 + timedelta(days=n)
        a = reading(
            "A1",
            at,
            total=1000 + n,
            supplies=[toner(100.0)] if n == 4 else [toner(20.0 - 5 * n), ("drum", None, 4.0)],
            alerts=["jam"] if n == 2 else [],
            conditions=["door_open"] if n == 4 else [],
        )
        b = reading("B2", at, ip="10.0.0.12", total=2000 + n, supplies=[toner(8.0)])
        if n == 4:
            b = msgspec.structs.replace(b, reachability="unreachable", supplies=[], counters={})
        devices = [a, b]
        if n < 2:
            devices.append(
                reading("C3", at, ip="10.0.0.13", model="SP 5300", supplies=[toner(50.0 - 41 * n)])
            )
        feed.send(at, devices)
    late = reading("C3", T0, ip="10.0.0.13", model="SP 5300", supplies=[toner(0.0)], alerts=["jam"])
    feed.send(T0 + timedelta(days=4, hours=1), [late], kind="alert")
    return feed


def serials(f: DeviceFilter) -> list[str | None]:
    page = device_page(Scoped.of(Viewer("admin")), f, now=NOW)
    assert page.total == len(page.rows)
    return [r.serial for r in page.rows]


def test_filters_look_at_each_devices_newest_reading(fed: Feeder) -> None:
    assert serials(DeviceFilter(sort="serial")) == ["A1", "B2", "C3"]
    assert serials(DeviceFilter(status="alerts")) == ["A1"]  # door open now; C3's late jam is old
    assert serials(DeviceFilter(status="unreachable")) == ["B2"]
    assert serials(DeviceFilter(status="running", sort="serial")) == ["A1", "C3"]
    assert serials(DeviceFilter(status="down")) == []
    # A1's toner was replaced and its drum is no longer reported; B2 reports no supply now
    assert serials(DeviceFilter(supply_max=10)) == ["C3"]
    assert serials(DeviceFilter(supply_max=100, sort="serial")) == ["A1", "C3"]
    assert serials(DeviceFilter(silent_hours=24)) == ["C3"]
    assert serials(DeviceFilter(model="sp 53")) == ["C3"]
    assert serials(DeviceFilter(customer="ACME", site="HQ", sort="serial")) == ["A1", "B2", "C3"]
    assert serials(DeviceFilter(site="Elsewhere")) == []
    assert serials(DeviceFilter(q="mfp-b2")) == ["B2"]
    assert serials(DeviceFilter(q="A1", status="alerts", supply_max=10)) == []


def test_rows_show_the_newest_state(fed: Feeder) -> None:
    rows = {r.serial: r for r in device_page(Scoped.of(Viewer("admin")), DeviceFilter(), now=NOW).rows}
    a, b, c = rows["A1"], rows["B2"], rows["C3"]
    assert (a.status, a.alerts, a.total) == ("running", 1, 1004)
    assert a.lowest is not None and (a.lowest.kind, a.lowest.percent) == ("toner", 100.0)
    assert (b.status, b.alerts, b.lowest, b.total) == ("unreachable", 0, None, 2003)  # none read on day 4
    assert (c.status, c.alerts, c.last_seen) == ("running", 0, T0 + timedelta(days=1))
    assert c.lowest is not None and (c.lowest.percent, c.lowest.state) == (9.0, "low")
    states = latest_states([a.id, c.id])
    assert [(x.code, x.source) for x in states[a.id].alerts] == [("door_open", "condition")]
    assert states[c.id].observed_at == T0 + timedelta(days=1) and states[c.id].alerts == []


@pytest.mark.parametrize("sort", sorted(SORTS))
def test_every_sort_orders_both_ways_and_pages_without_loss(fed: Feeder, sort: str) -> None:
    scoped = Scoped.of(Viewer("admin"))
    for desc in (False, True):
        pages = [
            device_page(scoped, DeviceFilter(sort=sort, desc=desc, page=p), now=NOW, page_size=2)
            for p in (1, 2)
        ]
        ids = [r.id for p in pages for r in p.rows]
        assert sorted(ids) == sorted(r.id for r in device_page(scoped, DeviceFilter(), now=NOW).rows)
        assert pages[0].pages == 2
    newest_first = device_page(scoped, DeviceFilter(sort="last_seen", desc=True), now=NOW).rows
    assert newest_first[-1].serial == "C3"


def test_dashboard_counts_the_newest_state(fed: Feeder) -> None:
    d = dashboard(Scoped.of(Viewer("admin")), now=NOW)
    assert (d.devices, d.silent_devices, d.devices_with_alerts, d.low_supplies) == (3, 1, 1, 1)
    assert [r.serial for r in d.low_supply_devices.rows] == ["C3"]
    nobody = dashboard(Scoped.of(Viewer("customer", customers=("Globex",))), now=NOW)
    assert (nobody.devices, nobody.devices_with_alerts, nobody.low_supplies) == (0, 0, 0)


def test_the_list_does_not_read_the_readings(fed: Feeder, db: Database) -> None:
    """Readings thinned by retention leave the list as it was: it reads only the kept state."""
    before = device_page(Scoped.of(Viewer("admin")), DeviceFilter(), now=NOW)
    db.peewee.execute_sql("DELETE FROM supply_value")
    db.peewee.execute_sql("DELETE FROM alert_value")
    after = device_page(Scoped.of(Viewer("admin")), DeviceFilter(), now=NOW)
    assert after == before
    assert serials(DeviceFilter(supply_max=10)) == ["C3"] and serials(DeviceFilter(status="alerts")) == ["A1"]


def test_migration_19_fills_the_lowest_supply_as_ingest_keeps_it(fed: Feeder, db: Database) -> None:
    query = "SELECT device_id, lowest_supply FROM device_latest ORDER BY device_id"
    kept = list(sql.rows(db, query))
    assert [low for _, low in kept] == [100.0, None, -1.0]  # A1 full, B2 none read, C3 low
    db.peewee.execute_sql('DROP INDEX "device_latest_lowest_supply"')
    db.peewee.execute_sql("ALTER TABLE device_latest DROP COLUMN lowest_supply")
    db.peewee.execute_sql("DELETE FROM migrations WHERE name = 'm023_portal_indexes'")
    assert migrations.migrate(db) == ["m023_portal_indexes"]
    assert list(sql.rows(db, query)) == kept
