"""The API tokens page in a real browser (Debian's chromium through Playwright) against the real
uvicorn over TLS on loopback: a dealer user makes a token after giving the password again, reads
it off the page, and an HTTPS client reads the dealer's devices with it; revoking it on the page
makes the next request 401. Screenshots at 1280 and 360 px, none wider than the window."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from browser_kit import serving
from portal_kit import PASSWORD, enrol, web_ctx
from test_portal_accounts_browser import Portal, browser, log_in, page, shoot

from fsm_server import customers
from fsm_server.db.connect import Database

pytestmark = pytest.mark.parametrize("db_backend", ["sqlite"])  # test_api.py covers PostgreSQL
__all__ = ["browser", "page"]  # the browser fixtures, shared with the accounts' browser tests


@pytest.fixture
def portal_tls(db: Database, tmp_path: Path) -> Iterator[tuple[Portal, Path]]:
    with serving(web_ctx(tmp_path), db, tmp_path / "web") as (url, files):
        yield Portal(url, int(url.rsplit(":", 1)[1]), 0), files.cert


def test_a_token_made_on_the_page_reads_the_api_until_revoked_there(
    portal_tls: tuple[Portal, Path], page: object
) -> None:
    portal, cert = portal_tls
    customers.add_dealer("North")
    customers.add_customer("ACME", dealer="North")
    customers.add_dealer("South")
    customers.add_customer("Globex", dealer="South")
    nora = enrol("nora", "dealer", dealer="North")
    log_in(page, portal, nora)
    page.click("a:has-text('API tokens')")  # type: ignore[attr-defined]
    page.wait_for_selector("h1:has-text('API tokens')")  # type: ignore[attr-defined]
    options = page.eval_on_selector_all("#token-scope option", "os => os.map(o => o.value)")  # type: ignore[attr-defined]
    assert options == ["dealer:North", "customer:ACME"]
    page.fill("#token-name", '<b>ERP</b> "import"')  # type: ignore[attr-defined]
    page.click("form[action='/account/api-tokens'] button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_selector("h1:has-text('Confirm it is you')")  # type: ignore[attr-defined]
    page.fill("#password", PASSWORD)  # type: ignore[attr-defined]
    page.fill("#code", nora.code())  # type: ignore[attr-defined]
    page.click("form[action='/reauth'] button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_selector("h1:has-text('API tokens')")  # type: ignore[attr-defined]
    page.fill("#token-name", '<b>ERP</b> "import"')  # type: ignore[attr-defined]
    page.click("form[action='/account/api-tokens'] button[type=submit]")  # type: ignore[attr-defined]
    secret = page.inner_text("#token-secret")  # type: ignore[attr-defined]
    assert secret.startswith("fsm_") and '<b>ERP</b> "import"' in page.inner_text("#new-token h2")  # type: ignore[attr-defined]
    shoot(page, "api-token-made")
    with httpx.Client(verify=ssl.create_default_context(cafile=str(cert)), base_url=portal.url) as http:
        r = http.get("/api/v1/devices", headers={"Authorization": f"Bearer {secret}"})
        assert r.status_code == 200 and r.json() == {"items": [], "next_after": None}
        assert (
            http.get(
                "/api/v1/devices",
                params={"customer": "Globex"},
                headers={"Authorization": f"Bearer {secret}"},
            ).status_code
            == 404
        )
        page.goto(f"{portal.url}/account/api-tokens")  # type: ignore[attr-defined]
        assert "from 127.0.0.1" in page.inner_text("#tokens")  # type: ignore[attr-defined]
        assert secret not in page.content()  # type: ignore[attr-defined]
        page.on("dialog", lambda d: d.accept())  # type: ignore[attr-defined]
        page.click("#tokens button:has-text('Revoke')")  # type: ignore[attr-defined]
        page.wait_for_selector("text=Token revoked")  # type: ignore[attr-defined]
        shoot(page, "api-token-revoked")
        r = http.get("/api/v1/devices", headers={"Authorization": f"Bearer {secret}"})
        assert r.status_code == 401 and r.json()["error"] == "the token is unknown or revoked"
    assert page.errors == []  # type: ignore[attr-defined]
