"""Notification latency: from a printer condition's observed-at to the dealer's notification mail
being in the alerts@ mailbox, over 20 trials (median), on the server's default settings.

Real peers only, the whole path: an snmpsim printer (a real Brother recording) whose error state
the bench flips to "jammed" and back, the fsm-client daemon (status poll every 1 s instead of
90 s, so trials take seconds; the poll interval is spent before observed-at and is not counted),
the project's Postfix + Dovecot, the server's IMAP ingest daemon (IDLE) and the event service
with one alert rule, both with their default settings, on SQLite.

Printed: median and max of observed-at -> notification visible in IMAP (the bench polls the
mailbox every 20 ms), of its parts (observed-at -> alert report accepted by Postfix, as the client
records it), and the peer measured in the same run: one bare mail submitted with aiosmtplib to
Postfix until it is visible in Dovecot, which the path does twice (alert report, notification).
Dovecot's IDLE push adds a fixed ~0.5 s (NOTIFY_DELAY_MSECS, recipes/mail-stack.md).

    .venv/bin/python bench/notify_latency.py [--trials 20] [--offset 450]
"""

from __future__ import annotations

import argparse
import asyncio
import email
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from email import policy
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "client"))

from client_fixtures import Keys, Printers, make_config  # noqa: E402

from fsm_client.daemon import Daemon  # noqa: E402
from fsm_common import configfile  # noqa: E402
from fsm_devtools.peers.mailstack import MailStack  # noqa: E402
from fsm_server.config import ServerConfig  # noqa: E402
from fsm_server.daemon import IngestDaemon  # noqa: E402
from fsm_server.db import open_database  # noqa: E402
from fsm_server.events import EventService  # noqa: E402
from fsm_server.ingest.pipeline import Pipeline  # noqa: E402
from fsm_server.registry import Registry  # noqa: E402


def stats(values: list[float]) -> str:
    return f"median {statistics.median(values) * 1000:8.1f} ms   max {max(values) * 1000:8.1f} ms"


def count(stack: MailStack, user: str) -> int:
    with stack.imap(user) as conn:
        _typ, data = conn.select("INBOX", readonly=True)
        return int(data[0])


async def wait_count(stack: MailStack, user: str, n: int, timeout: float = 60) -> float:
    """Poll until ``user``'s INBOX holds ``n`` messages; the wall-clock time it was seen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await asyncio.to_thread(count, stack, user) >= n:
            return time.time()
        await asyncio.sleep(0.02)
    raise TimeoutError(f"{user} INBOX did not reach {n} messages in {timeout} s")


async def peer(stack: MailStack, trials: int) -> list[float]:
    """Bare aiosmtplib: one mail to Postfix (STARTTLS, CA verified) until visible in Dovecot."""
    import ssl

    import aiosmtplib

    ctx = ssl.create_default_context(cafile=str(stack.ca_file))
    stack.empty_mailbox("client")
    out = []
    for i in range(trials):
        msg = f"From: fsm@fsm.test\r\nTo: client@fsm.test\r\nSubject: peer {i}\r\n\r\nhello\r\n".encode()
        t0 = time.time()
        async with aiosmtplib.SMTP(
            hostname=stack.host, port=stack.smtp_port, start_tls=True, tls_context=ctx
        ) as smtp:
            await smtp.sendmail("fsm@fsm.test", ["client@fsm.test"], msg)
        out.append(await wait_count(stack, "client", i + 1) - t0)
    return out


async def bench(stack: MailStack, trials: int, work: Path) -> None:
    stack.empty_mailbox("alerts")
    stack.empty_mailbox("dealer")
    keys = Keys(work / "keys")
    db = open_database("", data_dir=work / "server")
    Registry(db).add("acme-hq", keys.client_pub)
    pipeline = Pipeline(db, Registry(db), keys.encryption_key)
    server = configfile.convert(
        {
            "rules": [{"name": "jams", "when": "alert", "codes": ["jammed"]}],
            "notify": {
                "host": stack.host,
                "port": stack.smtp_port,
                "ca_file": str(stack.ca_file),
                "from_addr": "fsm@fsm.test",
                "to": ["alerts@fsm.test"],
            },
            "mailboxes": [
                {
                    "host": stack.host,
                    "port": stack.imaps_port,
                    "user": "dealer@fsm.test",
                    "password": "dealer-pass",
                    "ca_file": str(stack.ca_file),
                }
            ],
        },
        ServerConfig,
        source="bench",
    )
    printers = Printers(["p0"], work / "printers", first_ip="127.0.0.95").start()
    client = Daemon(
        make_config(
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
        ),
        work / "client",
    )
    events = EventService(db, server)
    ingest = IngestDaemon(
        pipeline,
        server.mailboxes,
        batch=server.ingest.batch,
        poll_seconds=server.ingest.poll_seconds,
        on_verdict=events.notice,
    )
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(client.run(install_signals=False)),
        asyncio.create_task(ingest.run()),
        asyncio.create_task(events.run(stop)),
    ]
    total: list[float] = []
    try:
        while client.counts.polls < 1:
            await asyncio.sleep(0.05)
        received = 0
        for _ in range(trials):
            printers.set_state("p0", "jammed")
            received += 1
            seen = await wait_count(stack, "alerts", received)
            printers.set_state("p0", "ok")
            received += 1
            await wait_count(stack, "alerts", received)  # the "cleared" mail ends the trial
            raw = stack.messages("alerts")[received - 2][1]
            opened = email.message_from_bytes(raw, policy=policy.default)
            assert opened["X-Fsm-Event"] == "opened", opened["Subject"]
            total.append(seen - datetime.fromisoformat(opened["X-Fsm-Observed-At"]).timestamp())
    finally:
        client.stop()
        ingest.stop()
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        printers.stop()
    own = []
    for entry in client.store.outbox():
        if entry.kind == "alert" and entry.sent_at is not None:
            from fsm_protocol.schema import decode_report

            report = decode_report(client.store.plaintext(entry.seq))
            if "jammed" in report.devices[0].status.conditions:
                own.append((entry.sent_at - report.devices[0].observed_at).total_seconds())
    bare = await peer(stack, trials)
    db.close()
    print(f"trials: {len(total)} (server defaults: IMAP IDLE, rule delay 0 s; client status poll 1 s)")
    print(f"observed-at -> notification visible in alerts@ INBOX   {stats(total)}")
    print(f"  of which observed-at -> alert report accepted by Postfix (client)  {stats(own)}")
    print(f"peer: one bare SMTP mail -> visible in Dovecot (the path has two)  {stats(bare)}")
    ratio = statistics.median(total) / (2 * statistics.median(bare))
    print(
        f"ratio path / (2 x peer) (medians): {ratio:.1f}x; Dovecot's IDLE push alone adds ~0.5 s; "
        "goal: an alert mail within seconds"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--offset", type=int, default=int(os.environ.get("FSM_MAIL_PORT_OFFSET", "450")))
    args = parser.parse_args()
    stack = MailStack(port_offset=args.offset)
    stack.start()
    try:
        with stack.lease() as running, tempfile.TemporaryDirectory() as work:
            asyncio.run(bench(running, args.trials, Path(work)))
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
