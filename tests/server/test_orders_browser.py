"""Supply orders in a real browser (Playwright driving Debian's chromium over HTTPS): readings
sealed and loaded through the real pipeline make the forecast propose an order; a dealer finds it
on the supplies page, approves it on the orders page; a report showing the new cartridge closes it
as delivered, and the order page says how early it came. Screenshots of the supplies, orders and
order pages at 1280 and 360 px wide are kept in ARTIFACTS for a person to look at."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from browser_kit import ARGS, CHROMIUM, WIDTHS, need_chromium, serving
from portal_kit import Person, enrol, web_ctx
from reports_fleet import Feeder, reading

from fsm_devtools.corpus import ServerKit, make_client
from fsm_protocol.schema import Device as DeviceReading
from fsm_server.customers import add_customer, add_dealer
from fsm_server.db.connect import Database
from fsm_server.ingest.pipeline import Pipeline
from fsm_server.orders.models import SupplyOrder
from fsm_server.registry import Registry

playwright = pytest.importorskip("playwright.sync_api")

#: where the last run keeps its screenshots
ARTIFACTS = Path("/tmp/fsm-portal-orders-browser")
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
DAYS = 6


@dataclass
class Shop:
    base: str
    dealer: Person
    feeder: Feeder
    start: datetime


def printers(at: datetime, day: int) -> list[DeviceReading]:
    """Three printers: the first's black toner (HP CF287A) runs out fast, the second's slowly
    (its description is hostile), the third's colour toners are fine."""
    fast = reading(
        "ORD-FAST", at, ip="10.9.0.10", total=5000 + 300 * day, supplies=[("toner", "black", 60 - 6 * day)]
    )
    fast.supplies[0].description = "Black Toner Cartridge HP LaserJet (CF287A)"
    slow = reading(
        "ORD-SLOW", at, ip="10.9.0.11", total=900 + 20 * day, supplies=[("toner", "black", 90 - day)]
    )
    slow.supplies[0].description = HOSTILE
    colour = reading(
        "ORD-COLOUR",
        at,
        ip="10.9.0.12",
        total=100 + day,
        supplies=[("toner", "cyan", 80.0), ("toner", "magenta", 75.0), ("waste_toner", None, None)],
        model="TASKalfa 2554ci",
        manufacturer="Kyocera",
    )
    for s, part in zip(colour.supplies, ("TK-8345C", "TK-8345M", "WT-8500"), strict=True):
        s.description = f"{s.color or 'waste'} toner {part}"
    return [fast, slow, colour]


@pytest.fixture
def shop(
    db: Database, pipeline: Pipeline, registry: Registry, server_kit: ServerKit, tmp_path: Path
) -> Iterator[Shop]:
    need_chromium()
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=DAYS)
    add_dealer("North")
    add_customer("ACME", dealer="North", sites=("HQ",))
    kit = make_client(tmp_path / "acme", "acme-1")
    registry.add(kit.name, kit.pub_path, customer="ACME")
    feeder = Feeder(pipeline, kit, server_kit, customer="ACME", site="HQ")
    for day in range(DAYS):
        at = start + timedelta(days=day)
        feeder.send(at, printers(at, day))
    dealer = enrol("north-user", "dealer", dealer="North")
    with serving(web_ctx(tmp_path), db, tmp_path / "tls") as (base, _):
        yield Shop(base, dealer, feeder, start)


@pytest.mark.parametrize("db_backend", ["sqlite"])
def test_an_order_proposed_by_the_forecast_is_approved_then_closed_by_the_replacement(shop: Shop) -> None:
    base = shop.base
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    dialogs: list[str] = []
    errors: list[str] = []
    [proposed] = list(SupplyOrder.select().where(SupplyOrder.part_number == "CF287A"))
    assert (proposed.state, proposed.reason) == ("proposed", "forecast")

    def shoot(page: Any, shots: dict[str, str]) -> None:
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            for name, url in shots.items():
                page.goto(url)
                page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)
                scroll = page.evaluate("document.documentElement.scrollWidth")
                assert scroll <= width + 1, (name, width, scroll)  # nothing wider than the screen
        page.set_viewport_size({"width": 1280, "height": 900})

    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(f"{base}/login")
            page.fill("input[name=name]", shop.dealer.name)
            page.fill("input[name=password]", shop.dealer.password)
            page.click("button[type=submit]")
            page.fill("input[name=code]", shop.dealer.code())
            page.click("button[type=submit]")
            # the supplies page: the fast toner first (soonest empty), with its part and its order
            page.click("nav >> text=Supplies")
            page.wait_for_selector("table.supplies tbody tr")
            first = page.locator("table.supplies tbody tr").first
            assert "CF287A" in first.inner_text() and "proposed" in first.inner_text()
            page.select_option("select[name=color]", "black")
            page.wait_for_url("**/supplies?*color=black*")
            page.wait_for_function("document.querySelectorAll('table.supplies tbody tr').length == 2")
            assert HOSTILE[:20] in page.inner_text("table.supplies")  # shown as text
            # the orders page: approve it
            page.click("nav >> text=Orders")
            row = page.locator("table.orders tbody tr", has_text="CF287A")
            row.locator("button", has_text="Approve").click()
            page.wait_for_url(f"{base}/orders")
            row = page.locator("table.orders tbody tr", has_text="CF287A")
            assert "approved" in row.inner_text()
            shoot(
                page,
                {
                    "supplies": f"{base}/supplies",
                    "orders": page.url,
                    "lead-times": f"{base}/orders/lead-times",
                },
            )
            # the next report shows a new cartridge: ingest closes the order as delivered
            at = datetime.now(UTC).replace(microsecond=0)  # after the approval
            readings = printers(at, DAYS)
            readings[0].supplies[0].percent = 100.0
            readings[0].supplies[0].level = 100
            readings[0].supplies[0].state = "ok"
            shop.feeder.send(at, readings)
            page.goto(f"{base}/orders/{proposed.id}")
            heading = page.locator("h1").inner_text()
            assert "delivered" in heading, heading
            facts = page.inner_text("dl.facts")
            assert "the replacement seen in a report" in facts
            assert "days before the forecast empty date" in facts and "days after approval" in facts
            assert "north-user" in facts
            order_url = page.url
            page.goto(f"{base}/orders?state=closed")
            assert "delivered" in page.locator("table.orders tbody tr", has_text="CF287A").inner_text()
            shoot(page, {"order": order_url, "orders-closed": page.url})
        finally:
            browser.close()
    assert dialogs == []
    assert [e for e in errors if "Content Security Policy" in e] == []
    closed = SupplyOrder.get_by_id(proposed.id)
    assert closed.state == "delivered" and closed.delivered_by is None and closed.early_days is not None
