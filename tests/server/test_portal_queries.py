"""Each portal page runs a bounded number of queries: the same for a dealer's 4 devices as for
an administrator's 8: the count depends on the page, not on how many devices are in scope."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from billing_fleet import collect_periods, filled_periods
from portal_fleet import Fleet, Viewer, build_fleet
from portal_kit import counting

from fsm_devtools.corpus import ServerKit
from fsm_server.db.connect import Database
from fsm_server.ingest.pipeline import Pipeline
from fsm_server.orders.workflow import OrderFilter, order_page
from fsm_server.portal.alerts import alerts_page
from fsm_server.portal.billing import customer_periods, period_page
from fsm_server.portal.clients import client_views
from fsm_server.portal.dashboard import dashboard
from fsm_server.portal.device import counter_chart, device_view
from fsm_server.portal.devices import DeviceFilter, device_page
from fsm_server.portal.quarantine import quarantine_page
from fsm_server.portal.supplies import SupplyFilter, supply_page
from fsm_server.registry import Registry
from fsm_server.scoping import Scoped

#: Most queries one page may run.
BOUND = 16


def pages(fleet: Fleet, device_id: int, period_id: int) -> dict[str, Callable[[Scoped], object]]:
    now = datetime.now(UTC)
    return {
        "dashboard": lambda s: dashboard(s, now=now),
        "devices": lambda s: device_page(s, DeviceFilter(), now=now),
        "devices filtered": lambda s: device_page(
            s, DeviceFilter(q="MP", status="alerts", supply_max=20), now=now
        ),
        "device": lambda s: device_view(s, device_id, now=now),
        "chart": lambda s: counter_chart(s, device_id, now=now),
        "alerts": lambda s: alerts_page(s, now=now),
        "clients": lambda s: client_views(s, now=now),
        "quarantine": lambda s: quarantine_page(s, now=now),
        "billing": customer_periods,
        "billing period": lambda s: period_page(s, period_id),
        "supplies": lambda s: supply_page(s, SupplyFilter(), now=now),
        "supplies filtered": lambda s: supply_page(
            s, SupplyFilter(kind="toner", color="black", level_max=50, days_max=30, sort="level"), now=now
        ),
        "orders": lambda s: order_page(s, OrderFilter(state="all")),
    }


def test_queries_per_page_are_bounded_and_do_not_grow_with_the_fleet(
    db: Database, pipeline: Pipeline, registry: Registry, server_kit: ServerKit, tmp_path: Path
) -> None:
    fleet = build_fleet(pipeline, registry, server_kit, tmp_path)
    device_id = fleet.devices["ACME"][0]
    period_id = collect_periods(db, fleet)["ACME"]
    counts: dict[str, list[int]] = {}
    for viewer in (Viewer("dealer", dealer="North"), Viewer("admin")):
        scoped = Scoped.of(viewer)
        for name, page in pages(fleet, device_id, period_id).items():
            with counting(db) as seen:
                page(scoped)
            counts.setdefault(name, []).append(len(seen))
    for name, (dealer, admin) in counts.items():
        print(name, dealer)
        assert dealer == admin <= BOUND, (name, dealer, admin)


def test_the_billing_period_page_runs_as_many_queries_for_a_thousand_devices_as_for_a_dozen(
    db: Database,
) -> None:
    periods = filled_periods(db)
    scoped = Scoped.of(Viewer("admin"))
    counts: dict[str, dict[str, int]] = {}
    for customer, period_id in periods.items():
        for shown, kw in (("first", {}), ("flagged", {"flagged_only": True}), ("last", {"page": 10**6})):
            with counting(db) as seen:
                page = period_page(scoped, period_id, **kw)  # type: ignore[arg-type]
            assert page.devices and all(g.meters for g in page.devices), (customer, shown)
            counts.setdefault(shown, {})[customer] = len(seen)
        assert page.pages == {"Customer 000": 12, "Customer 001": 1}[customer]
    for shown, seen in counts.items():
        assert seen["Customer 000"] == seen["Customer 001"] <= BOUND, (shown, seen)


@pytest.mark.parametrize("db_backend", ["sqlite"])
def test_counting_sees_the_queries(db: Database) -> None:
    with counting(db) as seen:
        device_page(Scoped.of(Viewer("admin")), DeviceFilter(), now=datetime.now(UTC))
    assert len(seen) >= 2  # the count and the page
