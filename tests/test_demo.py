"""The README's main command works end to end, a second run works too, and the reports a dealer
opens first show a fleet with 90 days of history: meters, forecasts, a replacement, a jam."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

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


def run_demo(state: Path) -> str:
    env = dict(os.environ, FSM_DEMO_STATE=str(state), FSM_DEMO_MAIL_OFFSET=str(DEMO_OFFSET))
    proc = subprocess.run(
        [sys.executable, "-m", "fsm_devtools.demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


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
    first = run_demo(state)
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

    second = run_demo(state)
    assert "clients add" not in second  # keys and enrolment are kept
    assert "3. history" not in second  # and the history
    assert "loaded 1, duplicate 0" in second  # the next report number, loaded once
