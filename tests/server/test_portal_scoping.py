"""Tenant isolation at the data layer (SQLite and PostgreSQL): every portal read goes through
``Scoped``; another tenant's device, client or quarantine entry is NotFound like a missing one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from portal_fleet import HOSTILE, Fleet, Viewer, build_fleet

from fsm_devtools.corpus import ServerKit
from fsm_server.customers import assign_dealer, list_customers
from fsm_server.db.models import CounterValue
from fsm_server.errors import NotFound
from fsm_server.ingest.pipeline import Pipeline
from fsm_server.portal import alerts, quarantine
from fsm_server.portal.clients import client_views
from fsm_server.portal.dashboard import dashboard
from fsm_server.portal.device import counter_chart, device_view
from fsm_server.portal.devices import DeviceFilter, device_page, devices_csv
from fsm_server.registry import Registry
from fsm_server.scoping import Scoped


@pytest.fixture
def fleet(pipeline: Pipeline, registry: Registry, server_kit: ServerKit, tmp_path: Path) -> Fleet:
    return build_fleet(pipeline, registry, server_kit, tmp_path)


def now() -> datetime:
    return datetime.now(UTC)


def test_each_viewer_lists_exactly_its_customers_devices(fleet: Fleet) -> None:
    for viewer in fleet.viewers().values():
        scoped = Scoped.of(viewer)
        page = device_page(scoped, DeviceFilter(), now=now())
        want = {d for c in fleet.visible(viewer) for d in fleet.devices[c]}
        assert {r.id for r in page.rows} == want, viewer
        assert {r.customer for r in page.rows} == fleet.visible(viewer)
        clients = {c.name for c in client_views(scoped, now=now())}
        expected_clients = {fleet.clients[c] for c in fleet.visible(viewer)}
        if viewer.role == "admin":
            expected_clients.add("acme-hq")  # the conftest's registered client, bound to no customer
        assert clients == expected_clients
        d = dashboard(scoped, now=now())
        assert d.devices == len(want)


def test_another_tenants_objects_are_not_found_like_missing_ones(fleet: Fleet) -> None:
    viewers = fleet.viewers()
    for name, viewer in viewers.items():
        scoped = Scoped.of(viewer)
        for customer, ids in fleet.devices.items():
            mine = customer in fleet.visible(viewer)
            for device_id in ids:
                if mine:
                    assert device_view(scoped, device_id, now=now()).customer == customer
                    assert counter_chart(scoped, device_id, now=now()).x
                else:
                    with pytest.raises(NotFound) as other:
                        device_view(scoped, device_id, now=now())
                    with pytest.raises(NotFound):
                        counter_chart(scoped, device_id, now=now())
                    with pytest.raises(NotFound) as missing:
                        device_view(scoped, 10_000_000 + device_id, now=now())
                    assert str(other.value).replace(str(device_id), "N") == str(missing.value).replace(
                        str(10_000_000 + device_id), "N"
                    )
            if mine:
                assert client_views(scoped, now=now(), only=fleet.clients[customer])
            else:
                with pytest.raises(NotFound):
                    client_views(scoped, now=now(), only=fleet.clients[customer])
            entry = fleet.quarantine[customer]
            if mine and viewer.role != "customer":
                assert quarantine.quarantine_entry(scoped, entry).id == entry
            else:
                with pytest.raises(NotFound):
                    quarantine.quarantine_entry(scoped, entry)
        stranger_visible = viewer.role == "admin"
        if stranger_visible:
            assert quarantine.quarantine_entry(scoped, fleet.stranger_quarantine)
        else:
            with pytest.raises(NotFound):
                quarantine.quarantine_entry(scoped, fleet.stranger_quarantine)
        listed = {r.id for r in quarantine.quarantine_page(scoped, now=now()).rows}
        want = {fleet.quarantine[c] for c in fleet.visible(viewer)} if viewer.role != "customer" else set()
        if stranger_visible:
            want.add(fleet.stranger_quarantine)
        assert listed == want, name


def test_a_shared_serial_stays_two_devices_each_seen_by_its_own_customer(fleet: Fleet) -> None:
    acme = device_page(
        Scoped.of(Viewer("customer", customers=("ACME",))), DeviceFilter(q="SHARED"), now=now()
    )
    globex = device_page(
        Scoped.of(Viewer("customer", customers=("Globex",))), DeviceFilter(q="SHARED"), now=now()
    )
    assert acme.total == globex.total == 1
    assert acme.rows[0].id != globex.rows[0].id
    assert acme.rows[0].ip.startswith("10.0.") and globex.rows[0].ip.startswith("10.2.")


def test_moving_a_customer_to_another_dealer_moves_what_the_dealers_see(fleet: Fleet) -> None:
    assign_dealer("Initech", "South")
    south = Scoped.of(Viewer("dealer", dealer="South"))
    north = Scoped.of(Viewer("dealer", dealer="North"))
    assert device_view(south, fleet.devices["Initech"][0], now=now()).customer == "Initech"
    with pytest.raises(NotFound):
        device_view(north, fleet.devices["Initech"][0], now=now())
    assert [c.name for c in list_customers(dealer="South")] == ["Globex", "Initech", "Umbrella"]


def test_unknown_roles_and_dealers_without_customers_see_nothing(fleet: Fleet) -> None:
    for viewer in (
        Viewer("auditor"),
        Viewer("dealer", dealer=None),
        Viewer("dealer", dealer="Nobody"),
        Viewer("customer"),
        Viewer("customer", customers=("NoSuchCustomer",)),
    ):
        scoped = Scoped.of(viewer)
        assert device_page(scoped, DeviceFilter(), now=now()).total == 0
        assert client_views(scoped, now=now()) == []
        assert quarantine.quarantine_page(scoped, now=now()).rows == []


def test_filters_sort_paging_and_csv(fleet: Fleet) -> None:
    north = Scoped.of(Viewer("dealer", dealer="North"))
    assert device_page(north, DeviceFilter(customer="Globex"), now=now()).total == 0  # not its customer
    assert device_page(north, DeviceFilter(customer="ACME"), now=now()).total == 2
    alerting = device_page(north, DeviceFilter(status="alerts"), now=now())
    assert {r.alerts for r in alerting.rows} == {1} and alerting.total == 2
    low = device_page(north, DeviceFilter(supply_max=10), now=now())
    assert low.total == 4 and all(
        r.lowest and r.lowest.percent is not None and r.lowest.percent <= 10 for r in low.rows
    )
    assert device_page(north, DeviceFilter(q="50%_"), now=now()).total == 0  # wildcards taken literally
    paged = [device_page(north, DeviceFilter(sort="serial", page=p), now=now(), page_size=3) for p in (1, 2)]
    assert paged[0].pages == 2 and len(paged[0].rows) == 3 and len(paged[1].rows) == 1
    serials = [r.serial for p in paged for r in p.rows]
    assert serials == sorted(serials)  # type: ignore[type-var]
    csv_text = "".join(devices_csv(north, DeviceFilter(), now=now()))
    assert csv_text.count("\r\n") == 5
    assert "'=" not in csv_text and "Globex" not in csv_text
    assert HOSTILE.replace('"', '""') in csv_text  # quoted by the CSV writer, shown as text


def test_device_page_has_provenance_forecast_and_open_alerts(fleet: Fleet) -> None:
    acme = Scoped.of(Viewer("customer", customers=("ACME",)))
    view = device_view(acme, fleet.devices["ACME"][0], now=now())
    assert view.provenance is not None and view.provenance.client == "acme-1"
    assert view.provenance.seq == 10 and view.provenance.ingested_at >= view.provenance.sealed_at
    assert {c.name for c in view.counters} == {"total", "total_black"}
    assert all(c.provenance and c.provenance.seq == 10 for c in view.counters)
    black = next(s for s in view.supplies if s.color == "black")
    assert black.forecast.days_remaining is not None and black.forecast.days_remaining < 5
    [jam] = view.alerts
    assert jam.alert.code == "jam" and jam.since == fleet.start + timedelta(days=8, hours=1)
    chart = counter_chart(acme, view.id, now=now())
    assert len(chart.x) == 10 and chart.series["total"] == sorted(chart.series["total"])  # type: ignore[type-var]


def test_a_counter_may_be_named_like_anything_the_chart_keeps_internally(fleet: Fleet) -> None:
    acme = Scoped.of(Viewer("customer", customers=("ACME",)))
    device_id = fleet.devices["ACME"][0]
    before = counter_chart(acme, device_id, now=now())
    for c in CounterValue.select().where(CounterValue.device == device_id, CounterValue.name == "total"):
        CounterValue.create(
            reading=c.reading_id, device=device_id, name="__t", value=7, observed_at=c.observed_at
        )
    chart = counter_chart(acme, device_id, now=now())
    assert chart.x == before.x  # the time axis is not the counter's values
    assert chart.series["__t"] == [7] * len(chart.x) and chart.series["total"] == before.series["total"]


def test_acknowledging_is_scoped_and_kept(fleet: Fleet) -> None:
    south = Scoped.of(Viewer("dealer", dealer="South"))
    north = Scoped.of(Viewer("dealer", dealer="North"))
    device_id = fleet.devices["ACME"][0]
    with pytest.raises(NotFound):
        alerts.acknowledge(south, device_id, "jam", by="south-user")
    row = alerts.acknowledge(north, device_id, "jam", by="north-user")
    assert row.acked_by == "north-user"
    [listed] = [r for r in alerts.open_alerts(north, now=now())[0] if r.device_id == device_id]
    assert listed.acked_by == "north-user"
    with pytest.raises(NotFound):
        alerts.acknowledge(north, device_id, "door_open", by="north-user")
