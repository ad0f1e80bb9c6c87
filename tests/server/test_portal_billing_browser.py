"""A billing period closed end to end in a real browser (Playwright driving Debian's chromium over
HTTPS): the customer validates the collected meters; the dealer corrects the flagged reset meter
with a note (the original stays beside it) and excludes its black counter, approves after giving
the password and TOTP again, and downloads the export; `fsm-server billing verify` accepts the
downloaded CSV and refuses it once one digit is changed. Screenshots of the billing list, the
period page and the export page at 1280 and 360 px wide are kept in ARTIFACTS."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from billing_fleet import add_reset, collect_periods
from browser_kit import ARGS, CHROMIUM, log_in, need_chromium, serving, shoot
from click.testing import CliRunner
from portal_fleet import Fleet, build_fleet
from portal_kit import enrol, web_ctx

from fsm_devtools.corpus import ServerKit
from fsm_protocol.keys import generate_server_signing_keys
from fsm_server.billing import workflow
from fsm_server.cli import main
from fsm_server.db.connect import Database
from fsm_server.db.models import Device
from fsm_server.ingest.pipeline import Pipeline
from fsm_server.registry import Registry

playwright = pytest.importorskip("playwright.sync_api")

#: where the last run keeps its screenshots
ARTIFACTS = Path("/tmp/fsm-portal-billing-browser")

pytestmark = pytest.mark.parametrize("db_backend", ["sqlite"])  # the HTTP tests cover PostgreSQL


@pytest.fixture
def portal(
    db: Database, pipeline: Pipeline, registry: Registry, server_kit: ServerKit, tmp_path: Path
) -> Iterator[tuple[str, Fleet, dict[str, int]]]:
    need_chromium()
    fleet = build_fleet(pipeline, registry, server_kit, tmp_path)
    add_reset(fleet, pipeline, server_kit, tmp_path)
    periods = collect_periods(db, fleet)
    generate_server_signing_keys(tmp_path / "keys")  # the server's data dir is tmp_path
    with serving(web_ctx(tmp_path), db, tmp_path / "tls") as (base, _):
        yield base, fleet, periods


def test_a_period_is_validated_corrected_approved_exported_and_verified(
    portal: tuple[str, Fleet, dict[str, int]], tmp_path: Path
) -> None:
    base, _, periods = portal
    pid = periods["ACME"]
    customer = enrol("acme-user", "customer", customers=("ACME",))
    dealer = enrol("north-user", "dealer", dealer="North")
    device = Device.get(Device.serial == "SHARED-1", Device.ip.startswith("10.0."))
    meters = {m.counter: m for m in workflow.show(pid).meters if m.device_id == device.id}
    reset, black = meters["total"], meters["total_black"]
    assert reset.flags == ["reset"] and black.flags == ["reset"]
    dialogs: list[str] = []
    errors: list[str] = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            # the customer validates
            context = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            log_in(page, base, customer)
            page.click("nav >> text=Billing")
            page.click(f'a[href="/billing/periods/{pid}"]')
            assert page.locator("form[action$='/correct']").count() == 0  # read-only but for validation
            page.click("button:has-text('Validate these meters')")
            page.wait_for_selector("ol.steps li.current:has-text('validated')")
            assert "acme-user" in page.inner_text("dl.facts")
            shoot(page, ARTIFACTS, "period-customer")
            context.close()

            # the dealer settles the flagged meters, approves and exports
            context = browser.new_context(
                ignore_https_errors=True, accept_downloads=True, viewport={"width": 1280, "height": 900}
            )
            page = context.new_page()
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            log_in(page, base, dealer)
            page.click("nav >> text=Billing")
            page.wait_for_selector("table.periods")
            shoot(page, ARTIFACTS, "billing")
            page.click(f'a[href="/billing/periods/{pid}"]')
            assert page.locator(f"#meter-{reset.id} .badge:has-text('reset')").count() == 1
            assert page.locator("a:has-text('Approve')").count() == 0  # two flags to settle first
            shoot(page, ARTIFACTS, "period-to-settle")
            page.click("#settle-all summary")  # the bulk exclusion, opened to look at (not sent)
            shoot(page, ARTIFACTS, "period-settle-all")
            usage = reset.collected_usage + 1_500
            fix = f"#fix-{reset.id}"
            page.fill(f"{fix} form.correct input[name=usage]", str(usage))
            page.fill(
                f"{fix} form.correct input[name=note]",
                "board replaced on day 9; pages from the service report",
            )
            page.click(f"{fix} form.correct button[type=submit]")
            page.wait_for_selector(f"#meter-{reset.id} .note:has-text('board replaced on day 9')")
            row = page.inner_text(f"#meter-{reset.id}")
            assert f"{usage:,}" in row and f"collected {reset.collected_usage:,}" in row  # original beside
            page.fill(
                f"#fix-{black.id} form.exclude input[name=note]", "black counter unreadable after the swap"
            )
            page.click(f"#fix-{black.id} form.exclude button[type=submit]")
            page.wait_for_selector(f"#meter-{black.id}:has-text('excluded')")
            page.click("a:has-text('Approve')")
            page.wait_for_selector("h1:has-text('Confirm it is you')")  # re-authentication first
            page.fill("input[name=password]", dealer.password)
            page.fill("input[name=code]", dealer.code())
            page.click("button:has-text('Confirm')")
            page.click("button:has-text('Approve this period')")
            page.wait_for_selector("ol.steps li.current:has-text('approved')")
            shoot(page, ARTIFACTS, "period-dealer")
            page.click("a:has-text('Export')")
            page.wait_for_selector("button:has-text('Download CSV')")
            shoot(page, ARTIFACTS, "export")
            with page.expect_download() as info:
                page.click("button:has-text('Download CSV')")
            zipped = tmp_path / "download.zip"
            info.value.save_as(zipped)
            page.goto(f"{base}/billing/periods/{pid}")
            page.wait_for_selector("ol.steps li.current:has-text('exported')")
            context.close()
        finally:
            browser.close()
    assert dialogs == []
    assert [e for e in errors if "Content Security Policy" in e] == []

    unpacked = tmp_path / "export"
    zipfile.ZipFile(zipped).extractall(unpacked)
    [csv_path] = unpacked.glob("*.csv")
    assert sorted(p.name for p in unpacked.iterdir()) == [csv_path.name, csv_path.name + ".manifest.json"]
    key = tmp_path / "keys" / "server-sign.pub"

    def verify() -> tuple[int, str]:
        r = CliRunner().invoke(
            main, ["--data-dir", str(tmp_path), "billing", "verify", str(csv_path), "--key", str(key)]
        )
        return r.exit_code, r.output

    code, out = verify()
    assert code == 0 and out.startswith("ok: ") and "approved by north-user" in out, out
    text = csv_path.read_text()
    assert f",{usage}," in text
    csv_path.write_text(text.replace(f",{usage},", f",{usage + 1},", 1), newline="")
    code, out = verify()
    assert code == 1 and "is not the CSV the manifest was signed for" in out, out
