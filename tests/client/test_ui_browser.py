"""The client's local page (`fsm-client ui`, its own process) in Debian's chromium driven by Playwright.

The client first reads two simulated printers (snmpsim) and sends two reports into a drop folder,
a jam starting between them; then an administrator logs in and looks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from client_fixtures import Keys, Printers, write_toml

from fsm_client.config import load_config
from fsm_client.daemon import Daemon
from fsm_devtools.peers.receiver import free_port

pytestmark = [pytest.mark.snmp]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PASSWORD = "correct horse battery"
SMTP_SECRET = "s3cret-smtp-password"


def fsm_client(*args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from fsm_client.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=120,
        **kw,
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, Printers]]:
    """A config, a data dir with two reports sent (a jam began between them), and the printers."""
    tmp = tmp_path_factory.mktemp("ui")
    keys = Keys(tmp / "keys")
    printers = Printers(["office-1", "office-2"], tmp / "printers").start()
    drop = tmp / "drop"
    drop.mkdir()
    config_path = write_toml(
        tmp / "client.toml",
        {
            "client": {"id": "acme-hq", "customer": "ACME", "site": "HQ"},
            "keys": {"signing_key": str(keys.client_key), "server_public_key": str(keys.server_pub)},
            **printers.client_sections(),
            "transport": {"kind": "filedrop"},
            "filedrop": {"directory": str(drop)},
            "smtp": {"password": SMTP_SECRET, "username": "fsm"},
            "schedule": {"report": "off", "discovery": "off", "status_poll": "off"},
        },
    )
    data = tmp / "data"
    config = load_config(config_path)

    def two_reports() -> None:  # in a thread: Playwright's sync API may hold this thread's loop
        daemon = Daemon(config, data)
        printers.set_state("office-1", "ok")
        asyncio.run(daemon.send_now())
        printers.set_state("office-1", "jammed")
        asyncio.run(daemon.send_now())
        daemon.store.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(two_reports).result()
    printers.set_state("office-1", "ok")
    done = fsm_client(
        "--config",
        str(config_path),
        "--data-dir",
        str(data),
        "ui",
        "set-password",
        "--stdin",
        input=PASSWORD + "\n",
    )
    assert done.returncode == 0, done.stderr
    try:
        yield config_path, data, printers
    finally:
        printers.stop()


@pytest.fixture(scope="module")
def page_url(world: tuple[Path, Path, Printers]) -> Iterator[str]:
    config_path, data, _ = world
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from fsm_client.cli import main; main()",
            "--config",
            str(config_path),
            "--data-dir",
            str(data),
            "ui",
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    line = b""
    while time.monotonic() < deadline and not line.startswith(b"listening on"):
        if select.select([process.stdout], [], [], 0.2)[0]:
            line = process.stdout.readline()
        if process.poll() is not None:
            break
    said = process.stderr.read() if process.poll() is not None else b""
    assert line == f"listening on http://127.0.0.1:{port}\n".encode(), (line, said)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(15)
        process.stdout.close()
        assert process.stderr is not None
        process.stderr.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.skip("chromium is not installed (scripts/setup installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any, page_url: str) -> Iterator[Any]:
    context = browser.new_context(base_url=page_url)
    p = context.new_page()
    errors: list[str] = []
    p.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    yield p
    context.close()
    # no CSP violation, no missing file (a wrong password's 401 is the page working)
    assert [e for e in errors if "status of 401" not in e] == []


def log_in(page: Any) -> None:
    page.goto("/")
    assert page.url.endswith("/login")
    page.fill("#password", PASSWORD)
    page.click("form.login button")
    page.wait_for_url("**/")


def test_login_refuses_a_wrong_password_and_lets_the_right_one_in(page: Any) -> None:
    page.goto("/devices")
    assert page.url.endswith("/login")  # every page wants a session
    page.fill("#password", "not the password")
    page.click("form.login button")
    assert page.inner_text(".error") == "wrong password"
    page.fill("#password", PASSWORD)
    page.click("form.login button")
    page.wait_for_url("**/")
    assert page.inner_text("h1") == "Status"
    assert "report 2" in page.inner_text("#last-send") and "by filedrop" in page.inner_text("#last-send")
    assert page.inner_text("#daemon") == "not running"


def test_devices_show_identity_last_reading_supplies_and_the_pmd(
    page: Any, world: tuple[Path, Path, Printers]
) -> None:
    log_in(page)
    page.click("nav >> text=Devices")
    _, _, printers = world
    for ip in printers.ips.values():
        section = page.locator(f"section.device[id='device-{ip}']")
        text = section.inner_text()
        assert "Brother" in text and "B9J154306" in section.locator(".serial").inner_text()
        assert section.locator(".pmd").inner_text().strip() != ""
        assert "total" in section.locator("table.counters").inner_text()
        assert section.locator("table.supplies tr").count() > 1


def test_what_left_the_network_shows_the_last_report_and_its_diff(page: Any) -> None:
    log_in(page)
    page.click("nav >> text=What left the network")
    assert "Report 2 (periodic)" in page.inner_text("#report h2")
    assert "Changes since report 1" in page.inner_text("#report")
    added = page.locator("#diff .add").all_inner_texts()
    removed = page.locator("#diff .del").all_inner_texts()
    assert any('"seq": 2' in line for line in added) and any('"seq": 1' in line for line in removed)
    assert any("jam" in line for line in added)  # the jam that began between the reports
    assert '"client_id": "acme-hq"' in page.inner_text("#plaintext")
    # searchable: a serial is in both reports, a made-up word in none
    page.fill("#q", "B9J154306")
    page.click("form.search button")
    page.wait_for_url("**/sent?q=B9J154306")
    assert page.locator("ol.reports li a").count() == 2
    page.fill("#q", "no-such-thing-anywhere")
    page.click("form.search button")
    page.wait_for_url("**/sent?q=no-such-thing-anywhere")
    assert "No sent report holds" in page.inner_text("ol.reports")
    page.goto("/sent?seq=1")
    assert "Changes since nothing (the first report)" in page.inner_text("#report")


def test_configuration_is_shown_with_secrets_hidden(page: Any) -> None:
    log_in(page)
    page.click("nav >> text=Configuration")
    text = page.inner_text("#config")
    assert 'kind = "filedrop"' in text and "[smtp]" in text
    assert 'password = "<secret>"' in text and 'community = "<secret>"' in text
    assert SMTP_SECRET not in page.content()


def test_scan_now_reads_the_printers_on_this_machine(page: Any) -> None:
    log_in(page)
    page.click("button:has-text('Scan now')")
    assert page.inner_text(".message") == "scan done: 2 readings stored"


def test_requests_from_another_origin_or_host_or_without_the_token_are_refused(
    page: Any, page_url: str
) -> None:
    log_in(page)
    token = page.get_attribute("input[name=csrf]", "value")
    post = page.request.post
    # another site's page posting into the administrator's session
    evil = {"Origin": "http://evil.example"}
    assert post("/actions/send", form={"csrf": token}, headers=evil).status == 403
    assert post("/actions/send", form={"csrf": token}, headers={"Sec-Fetch-Site": "cross-site"}).status == 403
    assert post("/actions/send", form={"csrf": "forged"}).status == 403
    assert post("/actions/send", form={}).status == 403
    # a DNS-rebinding page reaches the port under its own name
    cookie = {c["name"]: c["value"] for c in page.context.cookies()}
    answer = httpx.get(page_url + "/", headers={"Host": "evil.example"}, cookies=cookie)
    assert answer.status_code == 403
    # without a session, nothing but the login page
    assert httpx.post(page_url + "/actions/scan", data={"csrf": token}).status_code == 401
    assert httpx.get(page_url + "/sent", follow_redirects=False).headers["location"] == "/login"
    # security headers on every page
    headers = httpx.get(page_url + "/login").headers
    assert "default-src 'none'" in headers["content-security-policy"] and headers["x-frame-options"] == "DENY"


def test_a_non_loopback_host_is_refused_at_start_up(world: tuple[Path, Path, Printers]) -> None:
    config_path, data, _ = world
    for host in ("0.0.0.0", "192.0.2.10", "::", "printers.example"):
        done = fsm_client("--config", str(config_path), "--data-dir", str(data), "ui", "--host", host)
        assert done.returncode == 3, (host, done)
        assert "is not a loopback address" in done.stderr


#: where the last run keeps its screenshots of the local page, for a person to look at
ARTIFACTS = Path("/tmp/fsm-client-ui-browser")


@pytest.mark.parametrize("width", [1280, 360])
def test_every_page_fits_the_window_and_is_kept_as_a_screenshot(page: Any, width: int) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.set_viewport_size({"width": width, "height": 900})
    log_in(page)
    for path, name in [
        ("/", "status"),
        ("/devices", "devices"),
        ("/outbox", "outbox"),
        ("/sent", "sent"),
        ("/config", "config"),
    ]:
        page.goto(path)
        page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} is {overflow} px wider than a {width} px window"
