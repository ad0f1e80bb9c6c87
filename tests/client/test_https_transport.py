"""The client sends by HTTPS: snmpsim printers -> fsm-client -> HTTPS (uvicorn, test CA) -> server -> db.

The server side is `fsm-server receive` as its own process on the database under test; the
client is the real daemon reading simulated printers. A CONNECT proxy on loopback stands for a
customer's outbound proxy; Postfix + Dovecot carry the same reports by mail.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from client_fixtures import Keys, Printers, make_config

from fsm_client.daemon import Daemon
from fsm_client.store import STORE_FILE
from fsm_client.transports.https import HttpsTransport, spki_sha256
from fsm_common.configfile import Secret
from fsm_devtools.peers.connect_proxy import ConnectProxy
from fsm_devtools.peers.https import TestCa
from fsm_devtools.peers.mailstack import MailStack
from fsm_devtools.peers.receiver import Receiver
from fsm_protocol.errors import ConfigError
from fsm_server.config import MailboxSection
from fsm_server.daemon import IngestDaemon
from fsm_server.db.connect import Database
from fsm_server.db.models import Envelope, Quarantine, Reading
from fsm_server.ingest.pipeline import Pipeline
from fsm_server.registry import Registry

pytestmark = [pytest.mark.snmp]


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return Keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCa:
    return TestCa.create(tmp_path_factory.mktemp("https-ca"))


@pytest.fixture(scope="module")
def printers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Printers]:
    p = Printers(["office-1", "office-2"], tmp_path_factory.mktemp("printers")).start()
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture
def enrolled(db: Database, keys: Keys) -> Database:
    """The server's database with the client acme-hq enrolled."""
    Registry(db).add("acme-hq", keys.client_pub)
    return db


@pytest.fixture
def receiver(tmp_path: Path, ca: TestCa, keys: Keys, database_url: str, enrolled: Database) -> Receiver:
    """`fsm-server receive` on the database under test, not started yet."""
    return Receiver(tmp_path / "receiver", ca, keys.server_key, database_url)


def https_config(keys: Keys, printers: Printers, url: str, ca: TestCa, **transport: Any) -> Any:
    return make_config(
        keys,
        **{
            **printers.client_sections(),
            "transport": {
                "kind": "https",
                "url": url,
                "ca_file": str(ca.ca_file),
                "timeout": 10.0,
                **transport,
            },
            "schedule": {"report": "off", "discovery": "off", "status_poll": "off"},
            "outbox": {"retry_initial": 0.1, "retry_max": 0.5},
        },
    )


def answers(daemon: Daemon) -> list[str]:
    """The answer each sent chunk got (the receipt, or the relay's words), in numbering order."""
    with contextlib.closing(sqlite3.connect(daemon.data_dir / STORE_FILE)) as db:
        return [
            row[0]
            for row in db.execute(
                "SELECT answer FROM outbox_chunks WHERE sent_at IS NOT NULL ORDER BY seq, chunk_index"
            )
        ]


def loaded_seqs() -> list[int]:
    """Seqs of the loaded envelopes, in the order they were loaded."""
    return [e.seq for e in Envelope.select().order_by(Envelope.id)]


async def test_a_report_goes_by_https_into_the_database(
    receiver: Receiver, printers: Printers, keys: Keys, ca: TestCa, tmp_path: Path
) -> None:
    with receiver:
        daemon = Daemon(https_config(keys, printers, receiver.url, ca), tmp_path / "client")
        counts = await daemon.send_now()
    assert (counts.readings, counts.sent) == (2, 1)
    [entry] = daemon.store.outbox()
    assert entry.sent_at is not None and answers(daemon) == ["202 loaded acme-hq #1"]
    env = Envelope.get()
    assert env.seq == 1 and Reading.select().count() == 2  # one reading of each simulated printer
    assert Quarantine.select().count() == 0


@pytest.mark.parametrize("db_backend", ["sqlite"])
async def test_through_a_connect_proxy_with_basic_auth(
    receiver: Receiver,
    printers: Printers,
    keys: Keys,
    ca: TestCa,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with receiver, ConnectProxy(user="fsm", password="pr0xy") as proxy:
        # a wrong login: refused by the proxy, the report stays queued and says why
        bad = proxy.url.replace("pr0xy", "wrong")
        daemon = Daemon(https_config(keys, printers, receiver.url, ca, proxy=bad), tmp_path / "client")
        await daemon.send_now()
        [entry] = daemon.store.outbox()
        assert entry.sent_at is None and "proxy" in (entry.last_error or "") and "407" in entry.last_error
        assert "wrong" not in entry.last_error  # the proxy's password is never shown
        assert proxy.tunnels == [] and len(proxy.refused) == 1
        daemon.store.close()

        # [transport] proxy with the right login
        daemon = Daemon(https_config(keys, printers, receiver.url, ca, proxy=proxy.url), tmp_path / "client")
        await daemon.send_now(read=False)
        assert [e.sent_at is not None for e in daemon.store.outbox()] == [True, True]
        daemon.store.close()

        # $HTTPS_PROXY when the config names none; NO_PROXY for the server's host bypasses it
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        daemon = Daemon(https_config(keys, printers, receiver.url, ca), tmp_path / "client")
        await daemon.send_now(read=False)
        monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
        daemon = Daemon(https_config(keys, printers, receiver.url, ca), tmp_path / "client")
        await daemon.send_now(read=False)
    assert proxy.tunnels == [f"127.0.0.1:{receiver.port}"] * 2  # the 4th report went direct
    assert loaded_seqs() == [1, 2, 3, 4]


@pytest.mark.parametrize("db_backend", ["sqlite"])
async def test_a_pinned_key_that_does_not_match_is_refused_before_anything_is_sent(
    receiver: Receiver, printers: Printers, keys: Keys, ca: TestCa, tmp_path: Path
) -> None:
    other = TestCa.create(tmp_path / "other-ca")
    wrong_pin = spki_sha256(_der(other.cert_file))
    right_pin = spki_sha256(_der(ca.cert_file))
    with receiver:
        daemon = Daemon(
            https_config(keys, printers, receiver.url, ca, pin_sha256=[wrong_pin]), tmp_path / "client"
        )
        await daemon.send_now()
        [entry] = daemon.store.outbox()
        assert entry.sent_at is None
        assert "is not one of [transport] pin_sha256; nothing was sent" in (entry.last_error or "")
        assert Envelope.select().count() == 0 and Quarantine.select().count() == 0
        daemon.store.close()
        daemon = Daemon(
            https_config(keys, printers, receiver.url, ca, pin_sha256=[wrong_pin, right_pin]),
            tmp_path / "client",
        )
        await daemon.send_now(read=False)
    assert loaded_seqs() == [1, 2]


def _der(pem_file: Path) -> bytes:
    import ssl

    return ssl.PEM_cert_to_DER_cert(pem_file.read_text())


def test_http_urls_are_refused_before_anything_runs(keys: Keys, printers: Printers, ca: TestCa) -> None:
    with pytest.raises(ConfigError, match=r"is not an https:// URL: reports are never posted in plaintext"):
        https_config(keys, printers, "http://127.0.0.1:8443", ca)
    with pytest.raises(ConfigError, match="never posted in plaintext"):
        HttpsTransport("http://127.0.0.1:8443")
    with pytest.raises(ConfigError, match="needs url"):
        https_config(keys, printers, "", ca)


@pytest.mark.parametrize("db_backend", ["sqlite"])
async def test_a_certificate_of_another_ca_is_refused_and_the_report_stays_queued(
    receiver: Receiver, printers: Printers, keys: Keys, tmp_path: Path
) -> None:
    other = TestCa.create(tmp_path / "other-ca")
    with receiver:
        daemon = Daemon(https_config(keys, printers, receiver.url, other), tmp_path / "client")
        await daemon.send_now()
    [entry] = daemon.store.outbox()
    assert entry.sent_at is None and "failed verification against [transport] ca_file" in entry.last_error
    assert Envelope.select().count() == 0


async def _until(condition: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


async def test_a_server_down_for_the_whole_run_then_up_gets_every_report_once_in_order(
    receiver: Receiver, printers: Printers, keys: Keys, ca: TestCa, tmp_path: Path
) -> None:
    daemon = Daemon(https_config(keys, printers, receiver.url, ca), tmp_path / "client")
    task = asyncio.create_task(daemon.run(install_signals=False))
    try:
        for _ in range(5):
            await daemon.full_read()
            daemon.queue("periodic")
            await asyncio.sleep(0.1)
        await _until(lambda: daemon.counts.send_failures >= 4, "retries while the server is down")
        assert daemon.counts.sent == 0 and daemon.store.outbox_depth() == 5
        assert "cannot reach the server" in (daemon.store.outbox()[0].last_error or "")
        await asyncio.to_thread(receiver.start)
        await _until(lambda: daemon.store.outbox_depth() == 0, "outbox drained")
    finally:
        daemon.stop()
        await task
        receiver.stop()
    assert loaded_seqs() == [1, 2, 3, 4, 5]  # each once, loaded in numbering order
    assert Quarantine.select().count() == 0


def _mailbox(stack: MailStack) -> MailboxSection:
    user = stack.users["dealer"]
    return MailboxSection(
        name="dealer",
        host=stack.host,
        port=stack.imaps_port,
        security="tls",
        user=user.address,
        password=Secret(user.password),
        ca_file=stack.ca_file,
    )


@pytest.mark.mail
@pytest.mark.parametrize("db_backend", ["sqlite"])
async def test_the_same_reports_by_https_and_by_mail_load_once(
    receiver: Receiver,
    printers: Printers,
    keys: Keys,
    ca: TestCa,
    tmp_path: Path,
    empty_dealer_mailbox: MailStack,
    enrolled: Database,
) -> None:
    stack = empty_dealer_mailbox
    smtp = {
        "host": stack.host,
        "port": stack.smtp_port,
        "security": "starttls",
        "ca_file": str(stack.ca_file),
        "from": "client@fsm.test",
        "to": ["dealer@fsm.test"],
        "timeout": 10.0,
    }
    both = make_config(
        keys,
        **{
            **printers.client_sections(),
            "smtp": smtp,
            "transport": {
                "kind": ["https", "smtp"],
                "url": receiver.url,
                "ca_file": str(ca.ca_file),
                "timeout": 5.0,
            },
            "schedule": {"report": "off", "discovery": "off", "status_poll": "off"},
        },
    )
    pipeline = Pipeline(enrolled, Registry(enrolled), keys.encryption_key)

    async def ingest_mail() -> dict[str, int]:
        result = await IngestDaemon(pipeline, [_mailbox(stack)], poll_seconds=2).run(once=True)
        return dict(result.tally.outcomes)

    data = tmp_path / "client"
    with receiver:
        daemon = Daemon(both, data)
        for _ in range(3):
            await daemon.send_now()
        assert answers(daemon) == [f"https: 202 loaded acme-hq #{n}" for n in (1, 2, 3)]
    # the server is down: report 4 goes by the next transport, mail
    await daemon.send_now()
    assert answers(daemon)[-1].startswith("smtp: 250 ")
    stack.wait_for_messages(1)
    assert await ingest_mail() == {"loaded": 1}
    # every report again by mail, then by HTTPS: nothing loads twice
    daemon.store.requeue(1)
    mail_only = make_config(
        keys,
        **{
            **printers.client_sections(),
            "smtp": smtp,
            "schedule": {"report": "off", "discovery": "off", "status_poll": "off"},
        },
    )
    daemon.store.close()
    daemon = Daemon(mail_only, data)
    assert (await daemon.sender.drain(force=True)).sent_envelopes == 4
    stack.wait_for_messages(4)
    assert await ingest_mail() == {"duplicate": 4}
    daemon.store.requeue(1)
    daemon.store.close()
    with receiver:
        daemon = Daemon(both, data)
        assert (await daemon.sender.drain(force=True)).sent_envelopes == 4
    assert answers(daemon) == [f"https: 202 duplicate acme-hq #{n}" for n in (1, 2, 3, 4)]
    assert sorted(loaded_seqs()) == [1, 2, 3, 4] and Quarantine.select().count() == 0
