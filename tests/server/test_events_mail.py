"""Notification mails through the real Postfix + Dovecot stack, and the whole path: a simulated
printer (snmpsim) jams -> fsm-client polls and mails an alert report -> Postfix -> Dovecot ->
the server's IMAP ingest daemon -> rules -> notification mail -> Dovecot's alerts@fsm.test."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from reports_fleet import Feeder, mail_alert_report, reading

from fsm_common import configfile
from fsm_common.configfile import Secret
from fsm_devtools.corpus import ClientKit, ServerKit
from fsm_devtools.peers.mailstack import MailStack
from fsm_server.config import MailboxSection, ServerConfig
from fsm_server.daemon import IngestDaemon
from fsm_server.db.connect import Database
from fsm_server.events import EventService, Notification, run_beside
from fsm_server.ingest.pipeline import Pipeline
from fsm_server.registry import Registry

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "client"))
from client_fixtures import Keys, Printers, make_config

pytestmark = pytest.mark.mail


def server_config(stack: MailStack, *rules: dict[str, Any], **notify: Any) -> ServerConfig:
    return configfile.convert(
        {
            "rules": list(rules),
            "notify": {
                "host": stack.host,
                "port": stack.smtp_port,
                "security": "starttls",
                "ca_file": str(stack.ca_file),
                "from_addr": "fsm@fsm.test",
                "to": ["alerts@fsm.test"],
                **notify,
            },
        },
        ServerConfig,
        source="test",
    )


def notify_toml(stack: MailStack, rule: str) -> str:
    """A server config's [notify] section mailing alerts@ through the stack, and one [[rules]]."""
    return f"""
[notify]
host = "{stack.host}"
port = {stack.smtp_port}
ca_file = "{stack.ca_file}"
from_addr = "fsm@fsm.test"
to = ["alerts@fsm.test"]

[[rules]]
{rule}
"""


def parse(raw: bytes) -> Message:
    return message_from_bytes(raw, policy=policy.default)


@pytest.fixture
def alerts_mailbox(mail_stack: MailStack) -> MailStack:
    """The stack with alerts@fsm.test and dealer@fsm.test emptied."""
    mail_stack.empty_mailbox("alerts")
    mail_stack.empty_mailbox("dealer")
    return mail_stack


async def test_a_notification_is_delivered_to_the_alerts_mailbox(
    db: Database, alerts_mailbox: MailStack, pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    t = datetime.now(UTC).replace(microsecond=0)
    jam = [reading("A1", t, total=1, alerts=["jam"])]
    Feeder(pipeline, client_kit, server_kit).send(t, jam, kind="alert")
    events = EventService(db, server_config(alerts_mailbox, {"name": "jams", "when": "alert"}))
    try:
        assert await events.run_once() == 1
        assert await events.run_once() == 0  # still active: nothing new
    finally:
        await events.aclose()
    [(_, raw)] = await asyncio.to_thread(alerts_mailbox.wait_for_messages, 1, user="alerts")
    mail = parse(raw)
    assert mail["Subject"].strip() == "[fsm] Ricoh MP C3004 A1 (ACME / HQ, 10.0.0.10): jam"
    assert mail["X-Fsm-Event"] == "opened" and "Received" in mail  # it went through Postfix
    assert Notification.get().answer.startswith("250")


async def test_an_unreachable_relay_keeps_the_mail_for_a_later_try(
    db: Database, alerts_mailbox: MailStack, pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    t = datetime.now(UTC).replace(microsecond=0)
    jam = [reading("A1", t, total=1, alerts=["jam"])]
    Feeder(pipeline, client_kit, server_kit).send(t, jam, kind="alert")
    closed_port = alerts_mailbox.smtp_port + 7  # nothing listens there
    events = EventService(
        db,
        server_config(alerts_mailbox, {"name": "jams", "when": "alert"}, port=closed_port, retry_seconds=60),
    )
    try:
        assert await events.run_once() == 0
    finally:
        await events.aclose()
    n = Notification.get()
    assert (n.sent_at, n.attempts) == (None, 1)
    assert "connection refused" in n.last_error
    assert n.next_try_at > datetime.now(UTC) + timedelta(seconds=50)
    retry = EventService(db, server_config(alerts_mailbox, {"name": "jams", "when": "alert"}))
    Notification.update(next_try_at=datetime.now(UTC)).execute()
    try:
        assert await retry.run_once() == 1
    finally:
        await retry.aclose()
    await asyncio.to_thread(alerts_mailbox.wait_for_messages, 1, user="alerts")


async def test_a_mail_that_failed_many_times_is_retried_within_the_longest_wait(
    db: Database, alerts_mailbox: MailStack, pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    # retry_seconds * 2**attempts outgrows what a timedelta holds after ~40 failures (a relay
    # refusing for two days): the next try is still at most an hour away, and the failure recorded
    t = datetime.now(UTC).replace(microsecond=0)
    jam = [reading("A1", t, total=1, alerts=["jam"])]
    Feeder(pipeline, client_kit, server_kit).send(t, jam, kind="alert")
    closed_port = alerts_mailbox.smtp_port + 7  # nothing listens there
    events = EventService(
        db,
        server_config(alerts_mailbox, {"name": "jams", "when": "alert"}, port=closed_port, retry_seconds=60),
    )
    try:
        assert await events.run_once() == 0
        Notification.update(attempts=100, next_try_at=datetime.now(UTC)).execute()
        assert await events.run_once() == 0
    finally:
        await events.aclose()
    n = Notification.get()
    assert (n.sent_at, n.attempts) == (None, 101)
    assert "connection refused" in n.last_error
    assert datetime.now(UTC) < n.next_try_at <= datetime.now(UTC) + timedelta(hours=1)


async def wait_until(check: Any, timeout: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        await asyncio.sleep(0.05)


async def test_a_jam_on_a_simulated_printer_reaches_the_dealer_as_a_notification_mail(
    db: Database, alerts_mailbox: MailStack, tmp_path: Path
) -> None:
    stack = alerts_mailbox
    keys = Keys(tmp_path / "keys")
    Registry(db).add("acme-hq", keys.client_pub)
    pipeline = Pipeline(db, Registry(db), keys.encryption_key)
    printers = Printers(["front-desk"], tmp_path / "printers", first_ip="127.0.0.90").start()
    client_config = make_config(
        keys,
        **printers.client_sections(),
        schedule={"status_poll": "every 1s", "report": "off", "discovery": "off"},
        smtp={
            "host": stack.host,
            "port": stack.smtp_port,
            "security": "starttls",
            "ca_file": str(stack.ca_file),
            "from": "client@fsm.test",
            "to": ["dealer@fsm.test"],
        },
    )
    mailbox = MailboxSection(
        host=stack.host,
        port=stack.imaps_port,
        security="tls",
        user="dealer@fsm.test",
        password=Secret("dealer-pass"),
        ca_file=stack.ca_file,
    )
    from fsm_client.daemon import Daemon

    client = Daemon(client_config, tmp_path / "client")
    events = EventService(
        db, server_config(stack, {"name": "printer-jams", "when": "alert", "codes": ["jammed"]})
    )
    ingest = IngestDaemon(pipeline, [mailbox])
    tasks = [
        asyncio.create_task(client.run(install_signals=False)),
        asyncio.create_task(run_beside(ingest, events)),
    ]
    try:
        await wait_until(lambda: client.counts.polls >= 1, 20, "the client's first status poll")
        printers.set_state("front-desk", "jammed")
        [(_, raw)] = await asyncio.to_thread(stack.wait_for_messages, 1, user="alerts", timeout=30)
        opened = parse(raw)
        assert opened["X-Fsm-Event"] == "opened" and opened["X-Fsm-Rule"] == "printer-jams"
        assert "jammed" in opened["Subject"] and "127.0.0.90" in opened["Subject"]
        assert "Brother" in opened["Subject"]
        observed = datetime.fromisoformat(opened["X-Fsm-Observed-At"])
        assert datetime.now(UTC) - observed < timedelta(seconds=30)
        printers.set_state("front-desk", "ok")
        found = await asyncio.to_thread(stack.wait_for_messages, 2, user="alerts", timeout=30)
        cleared = parse(found[1][1])
        assert cleared["X-Fsm-Event"] == "cleared"
        assert cleared["Subject"].strip().startswith("[fsm] cleared: Brother")
        assert ingest.result.tally.outcomes["loaded"] >= 2  # the alert and the cleared report
    finally:
        client.stop()
        ingest.stop()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        printers.stop()
    assert not [r for r in results if isinstance(r, BaseException)], results


def test_notify_once_from_the_command_line_sends_what_is_due(
    alerts_mailbox: MailStack,
    pipeline: Pipeline,
    client_kit: ClientKit,
    server_kit: ServerKit,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import json

    from click.testing import CliRunner

    from fsm_server.cli import main

    monkeypatch.setenv("FSM_DATABASE_URL", database_url)
    t = datetime.now(UTC).replace(microsecond=0)
    low = [reading("A1", t, total=1, supplies=[("toner", "black", 4.0)])]
    Feeder(pipeline, client_kit, server_kit).send(t, low)
    config = tmp_path / "server.toml"
    config.write_text(notify_toml(alerts_mailbox, 'name = "toner-low"\nwhen = "supply_level"\nbelow = 10'))
    result = CliRunner().invoke(main, ["--config", str(config), "notify", "--once", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"sent": 1, "failed": 0, "pending": 0}
    [(_, raw)] = alerts_mailbox.wait_for_messages(1, user="alerts")
    assert parse(raw)["Subject"].strip().endswith("black toner at 4 %")


async def test_ingest_once_beside_the_events_sends_the_alert_mail_before_it_returns(
    db: Database, alerts_mailbox: MailStack, pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    t = datetime.now(UTC).replace(microsecond=0)
    await asyncio.to_thread(
        mail_alert_report,
        alerts_mailbox,
        client_kit,
        server_kit,
        reading("A1", t, total=5, conditions=["door_open"]),
    )
    mailbox = MailboxSection(
        host=alerts_mailbox.host,
        port=alerts_mailbox.imaps_port,
        security="tls",
        user="dealer@fsm.test",
        password=Secret("dealer-pass"),
        ca_file=alerts_mailbox.ca_file,
    )
    events = EventService(
        db, server_config(alerts_mailbox, {"name": "doors", "when": "alert", "codes": ["door_open"]})
    )
    result = await run_beside(IngestDaemon(pipeline, [mailbox]), events, once=True)
    assert result.tally.outcomes["loaded"] == 1
    assert Notification.get().sent_at is not None  # sent before run_beside returned
    [(_, raw)] = await asyncio.to_thread(alerts_mailbox.wait_for_messages, 1, user="alerts")
    assert parse(raw)["Subject"].strip() == "[fsm] Ricoh MP C3004 A1 (ACME / HQ, 10.0.0.10): door open"


def test_fsm_server_ingest_once_runs_the_rules_and_mails_the_alert(
    alerts_mailbox: MailStack,
    pipeline: Pipeline,
    client_kit: ClientKit,
    server_kit: ServerKit,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The command line wires the events beside the daemon when [[rules]] exist (cli/ingest.py)."""
    import json

    from click.testing import CliRunner
    from ingest_helpers import write_server_config

    from fsm_server.cli import main

    monkeypatch.setenv("FSM_DATABASE_URL", database_url)
    t = datetime.now(UTC).replace(microsecond=0)
    mail_alert_report(alerts_mailbox, client_kit, server_kit, reading("B7", t, total=5, alerts=["jam"]))
    config = write_server_config(tmp_path / "server.toml", alerts_mailbox, server_kit)
    with config.open("a") as f:
        f.write(notify_toml(alerts_mailbox, 'name = "jams"\nwhen = "alert"\ncodes = ["jam"]'))
    result = CliRunner().invoke(
        main, ["--config", str(config), "--data-dir", str(tmp_path / "data"), "ingest", "--once", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["loaded"] == 1
    [(_, raw)] = alerts_mailbox.wait_for_messages(1, user="alerts")
    assert parse(raw)["Subject"].strip() == "[fsm] Ricoh MP C3004 B7 (ACME / HQ, 10.0.0.10): jam"
