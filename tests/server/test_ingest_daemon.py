"""The IMAP ingest daemon against the real Postfix + Dovecot stack, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ingest_helpers import folder_count, mailbox_config, send_all, start_daemon, write_server_config
from reports_fleet import reading, sealed_mail

from fsm_devtools.corpus import ClientKit, ServerKit, mails_for, make_report, report_mail, seal
from fsm_devtools.peers.mailstack import MailStack
from fsm_server.cli.ingest import run_ingest
from fsm_server.config import OrdersSection
from fsm_server.customers import add_customer
from fsm_server.daemon import IngestDaemon
from fsm_server.db.connect import Database
from fsm_server.db.models import Customer, Envelope, Quarantine
from fsm_server.ingest.pipeline import Pipeline
from fsm_server.orders.models import OrderSettings, SupplyOrder
from fsm_server.orders.scanner import OrderScanner

pytestmark = pytest.mark.mail


async def test_mailed_reports_are_loaded_and_moved_to_processed(
    empty_dealer_mailbox: MailStack, pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    stack = empty_dealer_mailbox
    env = seal(make_report(client_kit.name, 3, devices=30), client_kit, server_kit)
    mails = [report_mail(client_kit, server_kit, seq) for seq in (1, 2)]
    mails += mails_for(env, chunk_bytes=len(env) // 3 + 200)  # seq 3 in chunks
    mails += [b"From: x@y.test\r\nTo: dealer@fsm.test\r\nSubject: lunch?\r\n\r\nnoon\r\n"]
    mails += [mails[0]]  # a resend of seq 1
    await send_all(stack, mails)
    stack.wait_for_messages(len(mails))

    daemon = IngestDaemon(pipeline, [mailbox_config(stack)], batch=4)
    result = await daemon.run(once=True)

    assert result.tally.outcomes["loaded"] == 3, result.tally.summary()
    assert result.tally.outcomes["duplicate"] == 1
    assert result.tally.reasons == {"not_fsm_mail": 1}
    assert sorted(e.seq for e in Envelope.select()) == [1, 2, 3]
    assert folder_count(stack, "INBOX") == 0
    assert folder_count(stack, "FSM/Processed") == len(mails) - 1
    assert folder_count(stack, "FSM/Quarantine") == 1
    assert Quarantine.get().source.startswith("imap:dealer/INBOX:")
    assert "moved" in result.summary()


async def test_the_daemon_picks_up_new_mail_and_stops_cleanly(
    empty_dealer_mailbox: MailStack, pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    stack = empty_dealer_mailbox
    daemon = IngestDaemon(pipeline, [mailbox_config(stack)], poll_seconds=30)
    task = asyncio.create_task(daemon.run())
    await asyncio.sleep(0.5)  # idle, waiting
    await send_all(stack, [report_mail(client_kit, server_kit, seq) for seq in range(1, 6)])
    deadline = time.monotonic() + 15
    while Envelope.select().count() < 5 and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    daemon.stop()
    result = await asyncio.wait_for(task, 10)
    assert result.tally.outcomes["loaded"] == 5
    assert folder_count(stack, "INBOX") == 0


def _wait_started(log: Path, times: int) -> None:
    """Until the daemon's log says it started ``times`` times (its signal handlers are in place)."""
    deadline = time.monotonic() + 20
    while log.read_text().count("ingest started") < times:
        assert time.monotonic() < deadline, log.read_text()[-2000:]
        time.sleep(0.05)


def _ingested(stack: MailStack) -> tuple[int, int]:
    return folder_count(stack, "INBOX"), folder_count(stack, "FSM/Processed")


@pytest.mark.slow
def test_kill_9_at_random_moments_neither_loses_nor_double_loads(
    empty_dealer_mailbox: MailStack,
    db,
    database_url: str,
    registry,  # type: ignore[no-untyped-def]
    client_kit: ClientKit,
    server_kit: ServerKit,
    tmp_path: Path,
) -> None:
    stack = empty_dealer_mailbox
    total, trials = 500, int(__import__("os").environ.get("FSM_KILL9_TRIALS", "20"))
    config = write_server_config(tmp_path / "server.toml", stack, server_kit, poll_seconds=1)
    mails = [report_mail(client_kit, server_kit, seq, devices=1) for seq in range(1, total + 1)]
    # mail keeps arriving through all the trials (each lasts ~0.6 s after start-up)
    rate = total / (trials * 0.6)
    sender = threading.Thread(target=lambda: asyncio.run(send_all(stack, mails, rate=rate)))
    sender.start()
    rng = random.Random(20261123)
    log = tmp_path / "daemon.log"
    log.write_text("")
    for trial in range(trials):
        proc = start_daemon(config, tmp_path / "data", database_url, "--verbose", log=log)
        try:
            _wait_started(log, trial + 1)
            time.sleep(rng.uniform(0.0, 0.6))  # the kill lands anywhere in fetching, loading, moving
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=10)
    sender.join(60)
    # a restart drains what is left, then stops on SIGTERM with its summary
    proc = start_daemon(config, tmp_path / "data", database_url, log=log)
    try:
        deadline = time.monotonic() + 60
        while _ingested(stack) != (0, total) and time.monotonic() < deadline:
            time.sleep(0.3)
        _wait_started(log, trials + 1)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, log.read_text()[-2000:]
    summary = json.loads(out)
    # a kill between commit and move shows as a "duplicate" when the next daemon re-reads that mail
    windows = log.read_text().count(": duplicate ")
    print(
        f"\n{trials} kills; {windows} mails were committed but not yet moved when a kill came; "
        f"the final restart loaded {summary['loaded']}"
    )
    assert _ingested(stack) == (0, total)
    seqs = [e.seq for e in Envelope.select(Envelope.seq)]
    assert sorted(seqs) == list(range(1, total + 1))  # every report exactly once
    assert Quarantine.select().count() == 0


@pytest.mark.slow
@pytest.mark.parametrize("db_backend", [pytest.param("postgresql", marks=pytest.mark.postgresql)])
def test_two_daemons_on_one_mailbox_and_one_postgresql_database_load_each_report_once(
    empty_dealer_mailbox: MailStack,
    db,
    database_url: str,
    registry,  # type: ignore[no-untyped-def]
    client_kit: ClientKit,
    server_kit: ServerKit,
    tmp_path: Path,
) -> None:
    stack = empty_dealer_mailbox
    total = 200
    config = write_server_config(tmp_path / "server.toml", stack, server_kit, poll_seconds=1)
    daemons = [
        start_daemon(config, tmp_path / f"data{i}", database_url, log=tmp_path / f"d{i}.log")
        for i in range(2)
    ]
    mails = [report_mail(client_kit, server_kit, s, devices=2) for s in range(1, total + 1)]
    asyncio.run(send_all(stack, mails))
    deadline = time.monotonic() + 60
    while (folder_count(stack, "INBOX"), Envelope.select().count()) != (
        0,
        total,
    ) and time.monotonic() < deadline:
        time.sleep(0.3)
    try:
        for i in range(2):
            _wait_started(tmp_path / f"d{i}.log", 1)
    except AssertionError:
        for proc in daemons:
            proc.kill()
            proc.communicate()
        raise
    outs = []
    for proc in daemons:
        proc.send_signal(signal.SIGTERM)
        outs.append(proc.communicate(timeout=20)[0])
    summaries = [json.loads(out) for out in outs]
    assert folder_count(stack, "INBOX") == 0
    # Both daemons may MOVE the same mail at the same moment; Dovecot then copies it to
    # FSM/Processed twice (MOVE is copy + expunge per session). The database is what must hold
    # each report once, and does:
    assert folder_count(stack, "FSM/Processed") >= total
    assert sorted(e.seq for e in Envelope.select(Envelope.seq)) == list(range(1, total + 1))
    assert sum(s["loaded"] for s in summaries) == total
    print("two daemons:", summaries)


async def test_hostile_mail_through_the_mail_stack_is_sorted_and_the_daemon_keeps_going(
    empty_dealer_mailbox: MailStack,
    pipeline: Pipeline,
    registry,  # type: ignore[no-untyped-def]
    client_kit: ClientKit,
    server_kit: ServerKit,
    tmp_path: Path,
) -> None:
    from collections import Counter

    from fsm_devtools.corpus import bad_mails, make_client, make_server

    stack = empty_dealer_mailbox
    revoked = make_client(tmp_path / "revoked", "old-site")
    registry.add(revoked.name, revoked.pub_path)
    registry.revoke(revoked.name)
    loaded = [report_mail(client_kit, server_kit, seq, devices=1) for seq in range(1, 6)]
    stranger = make_client(tmp_path / "s", "stranger")
    corpus = list(
        bad_mails(
            client_kit,
            server_kit,
            revoked=revoked,
            stranger=stranger,
            other_server=make_server(tmp_path / "o"),
            loaded_mails=loaded,
            count=150,
            big=False,
        )
    )
    # The reports first: Postfix may deliver one connection's mails in any order, and a replay or
    # a renumbered report (seq_conflict) is only that when it comes after the report it repeats.
    await send_all(stack, loaded)
    stack.wait_for_messages(len(loaded), timeout=30)
    verdicts = []
    await IngestDaemon(pipeline, [mailbox_config(stack)], on_verdict=verdicts.append).run(once=True)
    assert [v.outcome for v in verdicts] == ["loaded"] * len(loaded)

    await send_all(stack, [raw for _, raw in corpus])
    stack.wait_for_messages(len(corpus), timeout=30)
    verdicts = []
    result = await IngestDaemon(pipeline, [mailbox_config(stack)], on_verdict=verdicts.append).run(once=True)

    outcomes = Counter(v.outcome for v in verdicts)
    expected_duplicates = sum(1 for want, _ in corpus if want == "duplicate")
    expected_loaded = sum(1 for want, _ in corpus if want == "loaded")  # hostile text, cleaned
    assert outcomes["loaded"] == expected_loaded
    assert outcomes["duplicate"] == expected_duplicates
    assert outcomes["quarantined"] == len(corpus) - expected_duplicates - expected_loaded
    assert "internal_error" not in result.tally.reasons
    assert folder_count(stack, "INBOX") == 0
    assert folder_count(stack, "FSM/Quarantine") == outcomes["quarantined"]
    assert folder_count(stack, "FSM/Processed") == len(loaded) + expected_duplicates + expected_loaded


async def test_a_50_mb_mail_in_the_mailbox_is_quarantined_without_fetching_it_whole(
    empty_dealer_mailbox: MailStack, pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    from fsm_devtools.corpus import _plain_mail

    stack = empty_dealer_mailbox
    huge = _plain_mail("big", attachments=[("big.fsm", b"\x89FSM" + bytes(50 * 1024 * 1024))])
    with stack.imap("dealer") as conn:  # Postfix refuses mails this big; a mailbox can still hold one
        typ, data = conn.append("INBOX", None, None, huge)
        assert typ == "OK", data
    await send_all(stack, [report_mail(client_kit, server_kit, 1)])
    stack.wait_for_messages(2)

    verdicts = []
    await IngestDaemon(pipeline, [mailbox_config(stack)], on_verdict=verdicts.append).run(once=True)

    assert sorted((v.outcome, v.reason) for v in verdicts) == [("loaded", ""), ("quarantined", "too_large")]
    q = Quarantine.get()
    # fetched only up to the limit + 1 byte, and of that only the head is kept
    assert q.raw_size == pipeline.limits.max_mail_bytes + 1
    assert len(q.raw) == pipeline.limits.quarantine_keep_bytes
    assert folder_count(stack, "FSM/Quarantine") == 1


async def test_one_daemon_watches_two_mailboxes_and_reconnects_after_the_server_drops_it(
    empty_dealer_mailbox: MailStack, pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    stack = empty_dealer_mailbox
    stack.empty_mailbox("alerts")
    daemon = IngestDaemon(
        pipeline, [mailbox_config(stack), mailbox_config(stack, "alerts")], poll_seconds=2, backoff_cap=1.0
    )
    task = asyncio.create_task(daemon.run())

    async def until(count: int) -> None:
        deadline = time.monotonic() + 20
        while Envelope.select().count() < count:
            assert time.monotonic() < deadline, daemon.result.summary()
            await asyncio.sleep(0.1)

    await send_all(stack, [report_mail(client_kit, server_kit, s) for s in (1, 2)])
    await send_all(stack, [report_mail(client_kit, server_kit, s) for s in (3, 4)], to="alerts@fsm.test")
    await until(4)
    await asyncio.to_thread(stack.kick, "dealer")  # Dovecot drops every connection of dealer
    await send_all(stack, [report_mail(client_kit, server_kit, s) for s in (5, 6)])
    await until(6)
    daemon.stop()
    result = await asyncio.wait_for(task, 15)
    assert result.tally.outcomes["loaded"] == 6
    assert result.reconnects >= 1
    assert folder_count(stack, "INBOX") == 0 and folder_count(stack, "INBOX", "alerts") == 0
    assert folder_count(stack, "FSM/Processed", "alerts") == 2


async def test_an_altered_copy_of_a_chunk_in_the_mailbox_is_quarantined_as_bad_chunk(
    empty_dealer_mailbox: MailStack, pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    from fsm_protocol import chunking, mime

    stack = empty_dealer_mailbox
    env = seal(make_report(client_kit.name, 1, devices=30), client_kit, server_kit)
    chunks = chunking.split(env, len(env) // 3 + 200)
    from fsm_protocol.envelope import peek

    altered = bytearray(chunks[0])
    altered[peek(chunks[0]).size + 11] ^= 0x01
    forged = mime.build_message(bytes(altered), from_addr="client@fsm.test", to_addr="dealer@fsm.test")
    genuine = [mime.build_message(c, from_addr="client@fsm.test", to_addr="dealer@fsm.test") for c in chunks]
    # the first two chunks, then the altered copy of the first and the last, in any order
    await send_all(stack, genuine[:2])
    stack.wait_for_messages(2)
    await IngestDaemon(pipeline, [mailbox_config(stack)]).run(once=True)
    await send_all(stack, [forged, genuine[2]])
    stack.wait_for_messages(2)
    verdicts = []
    await IngestDaemon(pipeline, [mailbox_config(stack)], on_verdict=verdicts.append).run(once=True)

    assert sorted((v.outcome, v.reason) for v in verdicts) == [("loaded", ""), ("quarantined", "bad_chunk")]
    assert [e.seq for e in Envelope.select()] == [1]
    assert Quarantine.get().reason == "bad_chunk"
    assert folder_count(stack, "FSM/Quarantine") == 1
    assert folder_count(stack, "FSM/Processed") == 3


def _toner_mail(client: ClientKit, server: ServerKit, seq: int, at: datetime, percent: float) -> bytes:
    device = reading("ORD-1", at, total=1000 + seq, supplies=[("toner", "black", percent)])
    return sealed_mail(client, server, seq, at, [device])


async def test_the_daemons_order_scan_proposes_after_a_lead_time_change_without_new_mail(
    empty_dealer_mailbox: MailStack,
    db: Database,
    pipeline: Pipeline,
    client_kit: ClientKit,
    server_kit: ServerKit,
    caplog: pytest.LogCaptureFixture,
) -> None:
    stack = empty_dealer_mailbox
    acme = add_customer("ACME", sites=("HQ",))
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=4)
    # 5 points a day from 80: on the last day the fit says empty in 13 days, beyond lead 5 + margin 3
    for day in range(4):
        await send_all(
            stack, [_toner_mail(client_kit, server_kit, day + 1, start + timedelta(days=day), 80 - 5 * day)]
        )
        stack.wait_for_messages(day + 1)  # one at a time: loaded in the order they were read
    caplog.set_level(logging.INFO, logger="fsm_server.orders")
    daemon = IngestDaemon(pipeline, [mailbox_config(stack)], poll_seconds=30)
    scanner = OrderScanner(db, OrdersSection(), every=0.3)
    task = asyncio.create_task(run_ingest(daemon, None, None, once=False, orders=scanner))

    async def until(what: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 20
        while not what():
            assert time.monotonic() < deadline, (scanner.passes, caplog.text[-2000:])
            await asyncio.sleep(0.1)

    await until(lambda: Envelope.select().count() == 4 and scanner.passes >= 2)
    await until(lambda: folder_count(stack, "INBOX") == 0)
    passes = scanner.passes
    await until(lambda: scanner.passes > passes)  # a whole pass after the last report was loaded
    assert SupplyOrder.select().count() == 0
    # the lead time changes in the database (as another server process would), and no mail comes
    customer = Customer.get(Customer.name == acme.name)
    OrderSettings.insert(
        customer=customer.id, lead_days=10, margin_days=4, updated_by="dba", updated_at=datetime.now(UTC)
    ).execute()
    await until(lambda: SupplyOrder.select().count() == 1)
    daemon.stop()
    result = await asyncio.wait_for(task, 15)

    order = SupplyOrder.get()
    assert (order.state, order.reason, order.lead_days, order.margin_days) == ("proposed", "forecast", 10, 4)
    assert result.tally.outcomes["loaded"] == 4 and Envelope.select().count() == 4  # no new mail
    assert "order scan: 1 order(s) proposed, 0 closed by a replacement" in caplog.text
    assert scanner.proposed == 1 and scanner.passes > passes


def test_a_bad_scan_every_stops_the_daemon_at_start_up_naming_the_key(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from fsm_server.cli import main

    for value, why in (
        ('"6 hours"', "is not a duration"),
        ('"10s"', "out of range"),
        ("6", "not a duration"),
    ):
        config = tmp_path / "server.toml"
        config.write_text(f"[orders]\nscan_every = {value}\n")
        result = CliRunner().invoke(
            main, ["--config", str(config), "--data-dir", str(tmp_path / "d"), "ingest"]
        )
        assert result.exit_code == 3, result.output
        assert "orders.scan_every" in result.stderr and why in result.stderr, result.stderr
        assert "hint:" in result.stderr
    assert not (tmp_path / "d").exists()  # refused before anything was opened
