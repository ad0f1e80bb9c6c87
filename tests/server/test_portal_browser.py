"""The fleet pages in a real browser (Playwright driving Debian's chromium over HTTPS): a dealer
logs in with password and TOTP, goes dashboard -> devices -> device page and sees a drawn chart;
hostile text in a device's model, location and supply description shows as text and fires no
dialog; screenshots of the dashboard, devices list and device page at 1280 and 360 px wide are
kept in ARTIFACTS for a person to look at."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_kit import ARGS, CHROMIUM, WIDTHS, need_chromium, serving
from portal_fleet import HOSTILE, Fleet, build_fleet
from portal_kit import Person, enrol, web_ctx

from fsm_devtools.corpus import ServerKit
from fsm_protocol.display import shorten
from fsm_server.db.connect import Database
from fsm_server.ingest.pipeline import Pipeline
from fsm_server.registry import Registry

playwright = pytest.importorskip("playwright.sync_api")

#: where the last run keeps its screenshots
ARTIFACTS = Path("/tmp/fsm-portal-pages-browser")


@pytest.fixture
def portal(
    db: Database, pipeline: Pipeline, registry: Registry, server_kit: ServerKit, tmp_path: Path
) -> Iterator[tuple[str, Fleet, Person]]:
    need_chromium()
    fleet = build_fleet(pipeline, registry, server_kit, tmp_path)
    dealer = enrol("north-user", "dealer", dealer="North")
    with serving(web_ctx(tmp_path), db, tmp_path / "tls") as (base, _):
        yield base, fleet, dealer


@pytest.mark.parametrize("db_backend", ["sqlite"])
def test_dealer_browses_to_a_drawn_chart_and_hostile_text_stays_text(
    portal: tuple[str, Fleet, Person],
) -> None:
    base, fleet, dealer = portal
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    dialogs: list[str] = []
    errors: list[str] = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(f"{base}/login")
            page.fill("input[name=name]", dealer.name)
            page.fill("input[name=password]", dealer.password)
            page.click("button[type=submit]")
            page.fill("input[name=code]", dealer.code())
            page.click("button[type=submit]")
            page.goto(f"{base}/")
            assert page.locator("h1").inner_text() == "Dashboard"
            shots = {"dashboard": page.url}
            page.click("nav >> text=Devices")
            page.wait_for_selector("table.devices tbody tr")
            assert page.locator("table.devices tbody tr").count() == 4  # North's four printers only
            shots["devices"] = page.url
            first = fleet.devices["ACME"][0]
            page.click(f'a[href="/devices/{first}"]')
            page.wait_for_selector("#counter-chart[data-drawn='1'] canvas", timeout=15_000)
            shots["device"] = page.url
            # hostile model, location and supply description: text on the page, no dialog
            page.goto(f"{base}/devices/{fleet.devices['ACME'][1]}")
            page.wait_for_selector("#counter-chart[data-drawn='1']", timeout=15_000)
            body = page.inner_text("body")
            assert body.count(HOSTILE) >= 2, body[:2000]  # location and a supply; the title shows the model
            assert HOSTILE in page.locator("h1").inner_text()
            page.goto(f"{base}/devices?q=script")
            page.wait_for_selector("table.devices")
            assert shorten(HOSTILE) in page.inner_text("table.devices")  # a cell shows 48 characters
            for width in WIDTHS:
                page.set_viewport_size({"width": width, "height": 900})
                for name, url in shots.items():
                    page.goto(url)
                    if name == "device":
                        page.wait_for_selector("#counter-chart[data-drawn='1'] canvas", timeout=15_000)
                    page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)
                    scroll = page.evaluate("document.documentElement.scrollWidth")
                    assert scroll <= width + 1, (name, width, scroll)  # nothing wider than the screen
        finally:
            browser.close()
    assert dialogs == []
    assert [e for e in errors if "Content Security Policy" in e] == []
