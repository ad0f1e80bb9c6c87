"""The daemon against real peers: snmpsim printers in, Postfix + Dovecot out.

A periodic report and an alert arrive in IMAP and open (with fsm_protocol, as the server
does) to exactly the readings the store holds; a relay that is down for the whole run
loses and reorders nothing once it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from client_fixtures import Keys, Printers, make_config

from fsm_client.daemon import Daemon, client_status
from fsm_devtools.peers.mailstack import MailStack
from fsm_protocol.mime import parse_message
from fsm_protocol.schema import decode_report

pytestmark = [pytest.mark.mail, pytest.mark.snmp]


@pytest.fixture(scope="module")
def printers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Printers]:
    p = Printers(["office-1", "office-2"], tmp_path_factory.mktemp("printers")).start()
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture
def healthy_printers(printers: Printers) -> Printers:
    for name in printers.names:
        printers.set_state(name, "ok")
    return printers


def smtp_section(stack: MailStack, port: int | None = None) -> dict[str, Any]:
    return {
        "host": stack.host,
        "port": port or stack.smtp_port,
        "security": "starttls",
        "ca_file": str(stack.ca_file),
        "from": "client@fsm.test",
        "to": ["dealer@fsm.test"],
        "timeout": 10.0,
    }


def config_for(keys: Keys, printers: Printers, stack: MailStack, **extra: Any):
    sections: dict[str, Any] = {
        **printers.client_sections(),
        "smtp": smtp_section(stack),
        "schedule": {"report": "off", "discovery": "off", "status_poll": "off"},
        "outbox": {"retry_initial": 0.2, "retry_max": 1.0},
    }
    for name, values in extra.items():
        sections[name] = {**sections.get(name, {}), **values}
    return make_config(keys, **sections)


def mails(stack: MailStack, count: int, timeout: float = 20.0) -> list[Any]:
    """The parsed fsm mails in the dealer's INBOX, in arrival (UID) order."""
    return [parse_message(raw) for _, raw in stack.wait_for_messages(count, timeout=timeout)]


async def test_a_periodic_report_arrives_in_imap_and_opens_to_the_stored_readings(
    empty_dealer_mailbox: MailStack, healthy_printers: Printers, keys: Keys, tmp_path: Path
) -> None:
    config = config_for(keys, healthy_printers, empty_dealer_mailbox)
    daemon = Daemon(config, tmp_path / "data")
    counts = await daemon.send_now()
    assert (counts.readings, counts.sent) == (2, 1)
    [mail] = mails(empty_dealer_mailbox, 1)
    report = keys.open([mail.envelope])
    assert (mail.client_id, mail.seq, report.kind, report.client_id, report.site) == (
        "acme-hq",
        1,
        "periodic",
        "acme-hq",
        "HQ",
    )
    stored = [r.device for r in daemon.store.readings(seq=1)]
    assert report.devices == stored
    assert sorted(d.ip for d in stored) == sorted(healthy_printers.ips.values())
    assert all(d.serial == "B9J154306" and d.counters["total"] == 7792 for d in stored)
    # the report names the PMD bundle in force (none installed: the release's own) and each
    # value's OID, a supply's included
    assert report.pmd_bundle == "shipped"
    assert all(d.sources["counters.total"] and d.sources.get("supplies.1") for d in stored)
    # what `outbox show` prints is exactly what was sealed
    assert decode_report(daemon.store.plaintext(1)) == report
    status = client_status(config, daemon.store)
    assert (status.outbox_depth, status.last_seq, status.devices) == (0, 1, 2)
    assert status.last_send is not None


async def test_a_jam_is_mailed_at_once_not_repeated_while_it_lasts_and_its_clearing_is_mailed(
    empty_dealer_mailbox: MailStack, healthy_printers: Printers, keys: Keys, tmp_path: Path
) -> None:
    config = config_for(keys, healthy_printers, empty_dealer_mailbox, schedule={"status_poll": "every 1s"})
    daemon = Daemon(config, tmp_path / "data")
    task = asyncio.create_task(daemon.run(install_signals=False))
    try:
        await _until(lambda: daemon.counts.polls >= 1, "first poll round")
        healthy_printers.set_state("office-2", "jammed")
        jammed_at = time.monotonic()
        [alert] = await asyncio.to_thread(mails, empty_dealer_mailbox, 1)
        latency = time.monotonic() - jammed_at
        polls_before = daemon.counts.polls
        await _until(lambda: daemon.counts.polls >= polls_before + 3, "three more polls while jammed")
        healthy_printers.set_state("office-2", "ok")
        both = await asyncio.to_thread(mails, empty_dealer_mailbox, 2)
    finally:
        daemon.stop()
        counts = await task
    raised = keys.open([alert.envelope])
    assert (raised.kind, [d.ip for d in raised.devices]) == ("alert", [healthy_printers.ips["office-2"]])
    assert "jammed" in raised.devices[0].status.conditions
    assert raised.devices == [r.device for r in daemon.store.readings(seq=alert.seq)]
    assert latency < 10, f"alert took {latency:.1f} s"
    cleared = keys.open([both[1].envelope])
    assert cleared.kind == "alert" and cleared.devices[0].status.conditions == []
    assert counts.alerts == 2 and len(empty_dealer_mailbox.messages()) == 2  # none while it lasted
    assert daemon.store.alert_states(active_only=True) == []


class Watched:
    """A real pysnmp session that notes which subtrees each address was asked to walk."""

    def __init__(self, source: Any, host: str, walked: list[tuple[str, str]]) -> None:
        self.source, self.host, self.walked = source, host, walked

    async def get(self, oids: Any) -> Any:
        return await self.source.get(oids)

    async def walk(self, oid: str, **kw: Any) -> Any:
        self.walked.append((self.host, oid))
        return await self.source.walk(oid, **kw)

    async def walk_many(self, roots: Any, **kw: Any) -> Any:
        self.walked += [(self.host, oid) for oid in roots]
        return await self.source.walk_many(roots, **kw)


async def test_status_polls_read_only_status_and_a_change_reads_that_device_in_full(
    empty_dealer_mailbox: MailStack, healthy_printers: Printers, keys: Keys, tmp_path: Path
) -> None:
    from fsm_client.scan import _pysnmp_source

    walked: list[tuple[str, str]] = []

    @contextlib.asynccontextmanager
    async def watched(host: str, port: int, cred: Any) -> Any:
        async with _pysnmp_source(host, port, cred, timeout=2.0, retries=1) as source:
            yield Watched(source, host, walked)

    config = config_for(keys, healthy_printers, empty_dealer_mailbox, schedule={"status_poll": "every 1s"})
    daemon = Daemon(config, tmp_path / "data", open_source=watched)
    task = asyncio.create_task(daemon.run(install_signals=False))
    try:
        await _until(lambda: daemon.counts.polls >= 2, "two quiet poll rounds")
        healthy_printers.set_state("office-2", "jammed")
        [alert] = await asyncio.to_thread(mails, empty_dealer_mailbox, 1)
        polls = daemon.counts.polls
        await _until(lambda: daemon.counts.polls >= polls + 2, "two more polls while jammed")
    finally:
        daemon.stop()
        await task
        healthy_printers.set_state("office-2", "ok")
    supply_level = "1.3.6.1.2.1.43.11.1.1.9"  # walked by full reads only: once, for the jam
    assert [host for host, oid in walked if oid == supply_level] == [healthy_printers.ips["office-2"]]
    [reading] = keys.open([alert.envelope]).devices
    assert "jammed" in reading.status.conditions
    assert reading.counters["total"] == 7792 and reading.supplies  # the whole reading, as a scan makes it


class Relay:
    """A TCP forwarder to Postfix that is either down (nothing listens: connection refused)
    or up: the relay the client is configured with, switched off and on by the test."""

    def __init__(self, target_port: int) -> None:
        self.port = _free_tcp_port()  # nothing listens on it until start()
        self.target_port = target_port
        self.server: asyncio.Server | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._pipe, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(copy(reader, up_writer), copy(up_reader, writer))


async def test_a_relay_down_for_the_whole_run_then_up_delivers_every_report_once_in_order(
    empty_dealer_mailbox: MailStack, healthy_printers: Printers, keys: Keys, tmp_path: Path
) -> None:
    relay = Relay(empty_dealer_mailbox.smtp_port)
    config = make_config(
        keys,
        **{
            **healthy_printers.client_sections(),
            "smtp": smtp_section(empty_dealer_mailbox, relay.port),
            "schedule": {"report": "off", "discovery": "off", "status_poll": "off"},
            "outbox": {"retry_initial": 0.1, "retry_max": 0.5},
        },
    )
    daemon = Daemon(config, tmp_path / "data")
    task = asyncio.create_task(daemon.run(install_signals=False))
    try:
        for _ in range(5):
            await daemon.full_read()
            daemon.queue("periodic")
            await asyncio.sleep(0.1)
        await _until(lambda: daemon.counts.send_failures >= 4, "retries while the relay is down")
        assert daemon.counts.sent == 0 and daemon.store.outbox_depth() == 5
        assert daemon.store.outbox()[0].last_error  # the operator sees why, in plain words
        await relay.start()
        got = await asyncio.to_thread(mails, empty_dealer_mailbox, 5)
        await _until(lambda: daemon.store.outbox_depth() == 0, "outbox drained")
    finally:
        daemon.stop()
        await task
        await relay.stop()
    assert sorted(m.seq for m in got) == [1, 2, 3, 4, 5]  # each number once, none missing
    entries = daemon.store.outbox()
    sent_times = [e.sent_at for e in entries]
    assert sent_times == sorted(sent_times)  # accepted by the relay in numbering order
    for m in got:
        assert keys.open([m.envelope]).devices == [r.device for r in daemon.store.readings(seq=m.seq)]
    await asyncio.sleep(1.0)  # nothing more trickles in
    assert len(empty_dealer_mailbox.messages()) == 5


def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _until(condition: Any, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


async def test_a_report_larger_than_the_mail_size_goes_as_chunks_that_join_back(
    empty_dealer_mailbox: MailStack, healthy_printers: Printers, keys: Keys, tmp_path: Path
) -> None:
    config = config_for(keys, healthy_printers, empty_dealer_mailbox, outbox={"chunk_bytes": 400})
    daemon = Daemon(config, tmp_path / "data")
    await daemon.send_now()
    [entry] = daemon.store.outbox()
    assert entry.chunk_count >= 2 and entry.sent_at is not None
    got = mails(empty_dealer_mailbox, entry.chunk_count)
    assert {m.seq for m in got} == {1}
    assert sorted((m.chunk_index, m.chunk_count) for m in got) == [
        (i, entry.chunk_count) for i in range(1, entry.chunk_count + 1)
    ]
    assert all(len(m.envelope) <= 400 for m in got)
    report = keys.open([m.envelope for m in reversed(got)])  # any order joins
    assert report.devices == [r.device for r in daemon.store.readings(seq=1)]


def test_the_cli_sends_a_report_and_shows_status_and_the_outbox(
    empty_dealer_mailbox: MailStack, healthy_printers: Printers, keys: Keys, tmp_path: Path
) -> None:
    import json

    from click.testing import CliRunner
    from client_fixtures import write_toml

    from fsm_client.cli import main

    sections = {
        "client": {"id": "acme-hq", "customer": "ACME", "site": "HQ"},
        "keys": {"signing_key": str(keys.client_key), "server_public_key": str(keys.server_pub)},
        **healthy_printers.client_sections(),
        "smtp": smtp_section(empty_dealer_mailbox),
        "schedule": {"report": "off", "discovery": "off", "status_poll": "off"},
    }
    config_file = write_toml(tmp_path / "client.toml", sections)
    base = ["--config", str(config_file), "--data-dir", str(tmp_path / "d")]
    runner = CliRunner()
    sent = runner.invoke(main, [*base, "send"])
    assert sent.exit_code == 0, sent.output
    assert "queued report 1; sent 1 envelope(s)" in sent.output
    [mail] = mails(empty_dealer_mailbox, 1)
    assert mail.seq == 1
    status = json.loads(runner.invoke(main, [*base, "status", "--json"]).output)
    assert (status["outbox_depth"], status["last_seq"], status["devices"]) == (0, 1, 2)
    assert status["last_scan"] and status["last_send"]
    listing = json.loads(runner.invoke(main, [*base, "outbox", "list", "--json"]).output)
    assert [(e["seq"], e["state"]) for e in listing] == [(1, "sent")]
    once = runner.invoke(main, [*base, "run", "--once"])
    assert once.exit_code == 0, once.output
    resent = runner.invoke(main, [*base, "resend", "--from", "1"])
    assert resent.exit_code == 0 and runner.invoke(main, [*base, "run", "--once"]).exit_code == 0
    again = mails(empty_dealer_mailbox, 2)
    assert [m.seq for m in again] == [1, 1]  # the same number again: the server ignores it


def test_run_once_with_the_relay_down_fails_naming_the_relay_and_keeps_the_report(
    healthy_printers: Printers, keys: Keys, tmp_path: Path, mail_stack: MailStack
) -> None:
    from click.testing import CliRunner
    from client_fixtures import write_toml

    from fsm_client.cli import main

    sections = {
        "client": {"id": "acme-hq"},
        "keys": {"signing_key": str(keys.client_key), "server_public_key": str(keys.server_pub)},
        **healthy_printers.client_sections(),
        "smtp": smtp_section(mail_stack, _free_tcp_port()),
        "schedule": {"report": "off", "discovery": "off", "status_poll": "off"},
    }
    config_file = write_toml(tmp_path / "client.toml", sections)
    base = ["--config", str(config_file), "--data-dir", str(tmp_path / "d")]
    result = CliRunner().invoke(main, [*base, "send"])
    assert result.exit_code == 1
    assert "error:" in result.output and "still in the outbox" in result.output and "hint:" in result.output
    listing = CliRunner().invoke(main, [*base, "outbox", "list"])
    assert "retrying" in listing.output


async def test_a_relay_refusal_keeps_the_report_and_shows_the_relays_words(
    empty_dealer_mailbox: MailStack, healthy_printers: Printers, keys: Keys, tmp_path: Path
) -> None:
    smtp = {**smtp_section(empty_dealer_mailbox), "to": ["nobody@fsm.test"]}  # Postfix answers 550
    config = make_config(
        keys,
        **{
            **healthy_printers.client_sections(),
            "smtp": smtp,
            "schedule": {"report": "off", "discovery": "off", "status_poll": "off"},
        },
    )
    daemon = Daemon(config, tmp_path / "data")
    counts = await daemon.send_now()
    assert (counts.sent, counts.send_failures) == (0, 1)
    [entry] = daemon.store.outbox()
    assert entry.sent_at is None and entry.attempts == 1 and entry.next_attempt_at is not None
    assert "550" in (entry.last_error or "") and "nobody@fsm.test" in (entry.last_error or "")
    assert daemon.store.chunks(1)  # kept: never dropped, retried with backoff until someone fixes [smtp] to
