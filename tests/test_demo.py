"""The README's main command works end to end, a second run works too, and the reports a dealer
opens first show a fleet with 90 days of history: meters, forecasts, a replacement, a jam. Each
run ends with the portal serving over TLS, and the logins it prints work: the dealer's with the
TOTP code of the command printed beside it."""

from __future__ import annotations

import json
import os
import re
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from fsm_devtools.peers import mailstack, postgres
from fsm_devtools.peers.mailstack import MailStack, offset_from_env

pytestmark = [pytest.mark.mail, pytest.mark.snmp]

BIN = Path(sys.executable).parent

# The demo gets a stack of its own beside this suite's (it leaves its stack running and reads the
# dealer's mailbox), on this suite's offset + 10 unless FSM_DEMO_MAIL_OFFSET says otherwise: suites
# run on offsets that are multiples of 100, and + 10 puts no port of the demo's stack on a port of
# any suite's peers.
DEMO_OFFSET = int(os.environ.get("FSM_DEMO_MAIL_OFFSET") or offset_from_env() + 10)


@pytest.fixture
def demo_stack_stopped_after() -> Iterator[None]:
    """Stop the demo's mail stack at the end, unless it ran before the test."""
    stack = MailStack(port_offset=DEMO_OFFSET)
    was_running = stack.running
    yield
    if not was_running:
        stack.stop()


def suite_ports(offset: int) -> set[int]:
    """Every TCP port the peers of a test suite on `offset` listen on."""
    mail = {mailstack.SMTP_PORT, mailstack.SUBMISSION_PORT, mailstack.SMTPS_PORT, mailstack.IMAP_PORT,
            mailstack.IMAPS_PORT}  # fmt: skip
    # PostgreSQL: the session's server, and the one tests/devtools/peers/test_postgres.py runs on offset + 50.
    return {p + offset for p in mail} | {postgres.PORT + offset, postgres.PORT + offset + 50}


def test_the_demo_stack_of_a_suite_shares_no_port_with_any_suites_peers() -> None:
    demo_ports = set(MailStack(port_offset=DEMO_OFFSET).ports)
    for other in range(0, 5001, 100):
        assert not demo_ports & suite_ports(other), f"demo on {DEMO_OFFSET} vs a suite on offset {other}"


@dataclass
class Demo:
    output: str  # everything the demo printed until the portal was ready
    url: str
    cert: Path
    logins: dict[str, tuple[str, str]]  # role -> (user, password)
    totp_command: str  # the command printed to get the dealer's current code


def serving(state: Path, log: Path, *, with_code: bool) -> Demo:
    """Run the demo until its portal is up; check what it printed; stop it with Ctrl-C (SIGINT)."""
    env = dict(os.environ, FSM_DEMO_STATE=str(state), FSM_DEMO_MAIL_OFFSET=str(DEMO_OFFSET))
    with log.open("w") as out:  # a file, not a pipe: the portal's log lines never block it
        proc = subprocess.Popen(
            [sys.executable, "-m", "fsm_devtools.demo"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 900
        while "Portal running at" not in (text := log.read_text()):
            assert proc.poll() is None, f"the demo exited {proc.returncode} before serving:\n{text}"
            assert time.monotonic() < deadline, text
            time.sleep(0.5)
        [url] = re.findall(r"Portal running at (https://127\.0\.0\.1:\d+)", text)
        [cert] = re.findall(r"Portal: \S+ +\(a SELF-SIGNED certificate, (\S+):", text)
        logins = {
            role: (user, pw)
            for role, user, pw in re.findall(r"(\w+) login: user (\S+) +password (\S+)", text)
        }
        [command] = re.findall(r"then a TOTP code \(required for dealers\): (.+)", text)
        demo = Demo(text, url, Path(cert), logins, command)
        check_portal(demo, with_code=with_code)
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=60)
    assert code == 0, log.read_text()
    assert "portal stopped" in log.read_text()
    return demo


def log_in(demo: Demo, role: str, code: str = "") -> httpx.Client:
    """A client logged in through the portal's login pages, TLS verified against the demo's cert."""
    user, password = demo.logins[role]
    client = httpx.Client(base_url=demo.url, verify=ssl.create_default_context(cafile=str(demo.cert)))
    r = client.post("/login", data={"name": user, "password": password, "next": "/"})
    assert r.status_code == 303, r.text
    if code:
        assert r.headers["location"].startswith("/login/totp")
        [csrf] = re.findall(r'<meta name="csrf-token" content="([^"]*)"', client.get("/login/totp").text)
        r = client.post("/login/totp", data={"code": code, "csrf": csrf, "next": "/"})
        assert r.status_code == 303, r.text
    assert r.headers["location"] == "/"
    return client


def check_portal(demo: Demo, *, with_code: bool) -> None:
    """The portal answers over TLS with the demo's certificate, and the printed logins work (the
    dealer's with a code of the printed command: a code is taken once, so only ``with_code``)."""
    assert set(demo.logins) == {"dealer", "customer"}
    assert demo.cert.is_file() and "self-signed" in demo.cert.name
    with pytest.raises(httpx.ConnectError):  # not a certificate any client trusts by itself
        httpx.get(f"{demo.url}/login")
    if not with_code:
        with closing(log_in(demo, "customer")) as customer:
            assert customer.get("/devices").status_code == 200
        return
    code = subprocess.run(demo.totp_command, shell=True, capture_output=True, text=True, check=True).stdout
    assert re.fullmatch(r"\d{6}\n", code), code
    with (
        closing(log_in(demo, "dealer", code.strip())) as dealer,
        closing(log_in(demo, "customer")) as customer,
    ):
        assert "ACME Hospital" in dealer.get("/customers").text  # the dealer serves the demo's customer
        for client in (dealer, customer):
            devices = client.get("/devices")
            assert devices.status_code == 200
            assert len(set(re.findall(r'href="/devices/(\d+)"', devices.text))) == 8
        assert customer.get("/customers").status_code == 404  # a customer is not a dealer


def run_demo(state: Path, tmp_path: Path, *, with_code: bool = True) -> Demo:
    return serving(state, tmp_path / "demo.log", with_code=with_code)


def report(state: Path, kind: str) -> dict[str, Any]:
    """A report of the demo's server as a dealer would ask for it (default period), as data."""
    argv = [BIN / "fsm-server", "--config", state / "server.toml", "report", kind, "--format", "json"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_demo_scans_mails_ingests_and_shows_every_printer_twice_over(
    tmp_path: Path, demo_stack_stopped_after: None
) -> None:
    state = tmp_path / "demo"
    demo = run_demo(state, tmp_path)
    first = demo.output
    # The hint stops the demo's stack, not the one $FSM_MAIL_PORT_OFFSET names.
    assert f"scripts/mailstack stop --offset {DEMO_OFFSET} stops it" in first
    # 90 daily reports and 3 alert reports (a service request, a jam raised and cleared), each
    # loaded on its day; then today's
    assert "90 periodic and 3 alert reports, 93 mailed, 93 loaded" in first
    assert "loaded 1, duplicate 0, chunk stored 0, quarantined 0" in first
    for serial in ("VNCRC48198", "6509415X00", "W492KB03439"):  # HP M130nw, Sharp MX-3570N, Ricoh C3002
        assert serial in first
    assert (state / "reports" / "supplies.html").stat().st_size > 1000

    inventory = report(state, "inventory")
    assert len(inventory["rows"]) == 8
    for row in inventory["rows"]:
        assert when(row["last_seen"]) - when(row["first_seen"]) >= timedelta(days=89), row["device"]

    meters = report(state, "meters")  # the last calendar month: the first page a dealer opens
    totals = {r["device"]["model"]: r for r in meters["rows"] if r["counter"] == "total"}
    assert len(totals) == 6  # the HP M452nw and Xerox walks have no page counter
    for model, row in totals.items():
        assert row["usage"] > 0 and row["end_value"] - row["start_value"] == row["usage"], model
        assert row["reads"] >= 29 and not row["flags"], (model, row)

    supplies = report(state, "supplies")
    forecast = [r for r in supplies["rows"] if r["forecast"]["empty_at"]]
    assert len(forecast) >= 20
    assert all(when(r["forecast"]["empty_at"]) > when(supplies["generated_at"]) for r in forecast)
    [black] = [
        r
        for r in supplies["rows"]
        if r["device"]["serial"] == "6509415X00" and r["description"] == "Black Toner"
    ]
    [swap] = black["forecast"]["replacements"]
    assert swap["early"] and 29 <= swap["before"] <= 32 and swap["after"] == 100
    assert supplies["early_replacements_in_period"] == 1 and supplies["replacements_in_period"] == 1

    alerts = report(state, "alerts")
    [jam] = [e for e in alerts["recent"] if e["code"] == "jammed"]
    assert jam["device"]["serial"] == "B9J154306"  # the Brother HL-5370DW
    assert jam["duration_seconds"] == 12 * 60  # seen by one status poll, cleared at the next
    assert {e["code"] for e in alerts["open"]} >= {"service_requested", "low_toner", "low_paper"}

    health = report(state, "health")  # every report was loaded minutes after it was mailed
    assert health["latency"]["p90"] <= 10 * 60 and health["latency"]["count"] >= 240
    assert not health["clients"][0]["silent"] and not health["gaps"] and not health["quarantine"]

    again = run_demo(state, tmp_path, with_code=False)
    assert (again.url, again.logins, again.totp_command) == (demo.url, demo.logins, demo.totp_command)
    second = again.output
    assert "clients add" not in second  # keys and enrolment are kept
    assert "3. history" not in second  # and the history
    assert "loaded 1, duplicate 0" in second  # the next report number, loaded once
