"""The portal in a real browser: Debian's chromium driven by Playwright (PyPI ``playwright``, its
bundled browsers never installed) against `fsm-server web`'s uvicorn serving over TLS on loopback
with a self-signed certificate. Screenshots of the login, my-account and users pages at 1280 and
360 px wide are kept in ARTIFACTS for a person to look at."""

from __future__ import annotations

import http.client
import http.server
import re
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from browser_kit import ARGS, CHROMIUM, free_port, need_chromium
from browser_kit import log_in as kit_log_in
from browser_kit import shoot as kit_shoot
from portal_kit import PASSWORD, Person, enrol, web_ctx

from fsm_server import audit, customers
from fsm_server.accounts import users
from fsm_server.accounts.models import AuditEntry, WebSession
from fsm_server.db.connect import Database
from fsm_server.web import create_app
from fsm_server.web.serve import make_self_signed, running_in_thread, servers

playwright_sync = pytest.importorskip("playwright.sync_api")

ARTIFACTS = Path("/tmp/fsm-portal-accounts-browser")

pytestmark = pytest.mark.parametrize("db_backend", ["sqlite"])  # the HTTP tests cover PostgreSQL


@dataclass
class Portal:
    url: str
    port: int
    redirect_port: int


@pytest.fixture
def portal(db: Database, tmp_path: Path) -> Iterator[Portal]:
    port, redirect_port = free_port(), free_port()
    ctx = web_ctx(tmp_path, redirect_port=redirect_port, throttle_first_delay_seconds=30.0)
    url = f"https://127.0.0.1:{port}"
    app = create_app(ctx, db=db, base_url=url)
    files = make_self_signed(tmp_path / "web", "127.0.0.1")
    main, redirect = servers(ctx, host="127.0.0.1", port=port, files=files, app=app)
    with running_in_thread(main, redirect):
        yield Portal(url, port, redirect_port)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    need_chromium()
    with playwright_sync.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    pg = context.new_page()
    errors: list[str] = []
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.errors = errors
    yield pg
    context.close()


@pytest.fixture
def tenants(db: Database) -> None:
    customers.add_dealer("North")
    for name in ("ACME", "Globex"):
        customers.add_customer(name, dealer="North")


def log_in(page: object, portal: Portal, person: Person) -> None:
    kit_log_in(page, portal.url, person)


def shoot(page: object, name: str) -> None:
    kit_shoot(page, ARTIFACTS, name)


def test_log_in_with_password_and_totp_browse_account_and_users_then_log_out(
    portal: Portal, page: object, tenants: None
) -> None:
    admin = enrol("ada", "admin")
    enrol("acme-user", "customer", customers=("ACME",))
    page.goto(portal.url)  # type: ignore[attr-defined]
    assert page.url.startswith(f"{portal.url}/login")  # type: ignore[attr-defined]
    shoot(page, "login")
    log_in(page, portal, admin)
    cookies = page.context.cookies()  # type: ignore[attr-defined]
    assert len(cookies) == 1
    cookie = cookies[0]
    assert cookie["name"] == "__Host-fsm_session" and cookie["secure"] and cookie["httpOnly"]
    assert cookie["sameSite"] == "Strict" and cookie["path"] == "/" and cookie["domain"] == "127.0.0.1"
    assert page.evaluate("document.cookie") == "", "scripts cannot read the session cookie"  # type: ignore[attr-defined]
    assert page.evaluate("document.body.getAttribute('hx-headers:inherited')")  # type: ignore[attr-defined]
    assert page.evaluate("typeof htmx") == "object", "htmx loads from the package under the CSP"  # type: ignore[attr-defined]
    shoot(page, "account")
    page.click("nav a:has-text('Users')")  # type: ignore[attr-defined]
    page.wait_for_selector("#users")  # type: ignore[attr-defined]
    assert page.locator("#users").inner_text().count("acme-user") == 1  # type: ignore[attr-defined]
    shoot(page, "users")
    page.click("button:has-text('Log out')")  # type: ignore[attr-defined]
    page.wait_for_selector("h1:has-text('Log in')")  # type: ignore[attr-defined]
    assert WebSession.select().count() == 0
    page.goto(f"{portal.url}/account")  # type: ignore[attr-defined]
    assert "/login" in page.url  # type: ignore[attr-defined]
    assert page.errors == [], page.errors  # type: ignore[attr-defined]


class _Attacker(http.server.BaseHTTPRequestHandler):
    target = ""

    def do_GET(self) -> None:
        body = (
            f'<!doctype html><form method="post" action="{self.target}">'
            '<input name="name" value="ada"><input name="password" value="x">'
            '<button id="go" type="submit">win a prize</button></form>'
        ).encode()
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_cross_site_form_post_is_refused(portal: Portal, page: object) -> None:
    admin = enrol("ada", "admin")
    log_in(page, portal, admin)
    handler = type("Attacker", (_Attacker,), {"target": f"{portal.url}/account/sessions/revoke-others"})
    evil = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    try:
        other = page.context.browser.new_context(ignore_https_errors=True)  # type: ignore[attr-defined]
        log_in(other.new_page(), portal, admin)
        assert WebSession.select().count() == 2
        # another site (localhost is not 127.0.0.1) makes the browser post to the portal
        page.goto(f"http://localhost:{evil.server_address[1]}/")  # type: ignore[attr-defined]
        with page.expect_response(lambda r: "/account/sessions" in r.url) as answer:  # type: ignore[attr-defined]
            page.click("#go")  # type: ignore[attr-defined]
        assert answer.value.status == 403
        assert "cross-site request may not change anything" in page.content()  # type: ignore[attr-defined]
        assert WebSession.select().count() == 2, "the portal changed nothing"
        other.close()
    finally:
        evil.shutdown()
        evil.server_close()


def _submit_login(page: object, portal: Portal, name: str, password: str) -> tuple[int, str]:
    page.goto(f"{portal.url}/login")  # type: ignore[attr-defined]
    page.fill("#name", name)  # type: ignore[attr-defined]
    page.fill("#password", password)  # type: ignore[attr-defined]
    with page.expect_response(lambda r: r.url.endswith("/login") and r.request.method == "POST") as answer:  # type: ignore[attr-defined]
        page.click("button[type=submit]")  # type: ignore[attr-defined]
    return answer.value.status, page.locator("p.error").inner_text()  # type: ignore[attr-defined]


def test_the_11th_wrong_password_in_a_minute_is_delayed_and_unknown_users_look_the_same(
    portal: Portal, page: object
) -> None:
    enrol("ada", "admin")
    answers = [_submit_login(page, portal, "ada", f"wrong guess {k:02d}") for k in range(10)]
    assert answers == [(401, users.LOGIN_FAILED)] * 10
    status, text = _submit_login(page, portal, "ada", PASSWORD)
    wait = re.search(r"Try again in (\d+) seconds", text)
    assert status == 429 and wait and 20 <= int(wait.group(1)) <= 30, text
    unknown = _submit_login(page, portal, "nobody-here", "whatever password")
    assert unknown == (401, users.LOGIN_FAILED), "an unknown user gets the wrong password's answer"


def test_a_disabled_user_loses_its_session_and_password_changes_need_reauthentication(
    portal: Portal, page: object
) -> None:
    dana = enrol("dana", "admin")
    log_in(page, portal, dana)
    page.click("a:has-text('Change password')")  # type: ignore[attr-defined]
    page.wait_for_selector("h1:has-text('Confirm it is you')")  # type: ignore[attr-defined]
    page.fill("#password", PASSWORD)  # type: ignore[attr-defined]
    page.fill("#code", dana.code())  # type: ignore[attr-defined]
    page.click("form[action='/reauth'] button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_selector("h1:has-text('Change password')")  # type: ignore[attr-defined]
    users.set_enabled("dana", False, by=None)
    page.reload()  # type: ignore[attr-defined]
    page.wait_for_selector("h1:has-text('Log in')")  # type: ignore[attr-defined]
    assert WebSession.select().count() == 0


def test_the_audit_page_shows_a_tampered_chain(portal: Portal, page: object) -> None:
    admin = enrol("ada", "admin")
    log_in(page, portal, admin)
    page.goto(f"{portal.url}/audit?verify=1")  # type: ignore[attr-defined]
    assert "is intact" in page.locator("#verdict").inner_text()  # type: ignore[attr-defined]
    first_login = AuditEntry.select().where(AuditEntry.action == "login").get()
    AuditEntry.update(address="203.0.113.66").where(AuditEntry.id == first_login.id).execute()
    page.click("a:has-text('Check the chain')")  # type: ignore[attr-defined]
    assert f"broken at entry {first_login.id}" in page.locator("#verdict").inner_text()  # type: ignore[attr-defined]
    shoot(page, "audit")


def test_plain_http_only_redirects_and_proxy_headers_are_not_trusted_by_default(portal: Portal) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", portal.redirect_port, timeout=10)
    conn.request("GET", "/account?x=1")
    r = conn.getresponse()
    assert r.status == 308 and r.getheader("location") == f"https://127.0.0.1:{portal.port}/account?x=1"
    conn.close()
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    tls = http.client.HTTPSConnection("127.0.0.1", portal.port, context=context, timeout=10)
    tls.request(
        "POST",
        "/login",
        body="name=someone&password=not+the+one",
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "x-forwarded-for": "198.51.100.7",
            "x-forwarded-proto": "http",
        },
    )
    answer = tls.getresponse()
    assert answer.status == 401 and tls.sock.version() == "TLSv1.2"
    assert answer.getheader("strict-transport-security")
    answer.read()
    tls.close()
    entry = audit.entries(limit=1)[0]
    assert entry.action == "login.failed" and entry.address == "127.0.0.1"
