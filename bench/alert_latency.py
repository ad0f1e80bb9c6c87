"""Alert latency: from a critical condition's observed-at to SMTP accepted, over 100 alerts.

Real peers only: ten snmpsim printers (a real Brother recording each) whose error state the
bench flips between jammed and fine, the client daemon with its default settings except the
status-poll interval (1 s instead of 90 s, so 100 alerts take seconds, not hours; the poll
interval adds up to one interval of detection delay before "observed-at", printed
separately), and the project's Postfix + Dovecot stack.

Printed: median and max of observed-at -> SMTP accepted (the client's own latency: seal,
queue, send), of condition set -> SMTP accepted (adds the poll delay), and of the peer: the
same alert mail submitted straight to Postfix with aiosmtplib over the same STARTTLS
connection setup, one at a time, so the ratio shows what the client adds over bare SMTP.

    .venv/bin/python bench/alert_latency.py [--alerts 100] [--offset 100]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "client"))

from client_fixtures import Keys, Printers, make_config  # noqa: E402

from fsm_client.daemon import Daemon  # noqa: E402
from fsm_devtools.peers.mailstack import MailStack  # noqa: E402
from fsm_protocol.mime import build_message  # noqa: E402
from fsm_protocol.schema import decode_report  # noqa: E402

PRINTERS = 10


def stats(values: list[float]) -> str:
    return f"median {statistics.median(values) * 1000:8.1f} ms   max {max(values) * 1000:8.1f} ms"


async def peer_smtp(stack: MailStack, message: bytes, n: int) -> list[float]:
    """Bare aiosmtplib: connect, STARTTLS (CA verified), send one mail, quit; n times."""
    import aiosmtplib

    context = ssl.create_default_context(cafile=str(stack.ca_file))
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        async with aiosmtplib.SMTP(
            hostname=stack.host, port=stack.smtp_port, start_tls=True, tls_context=context
        ) as smtp:
            await smtp.sendmail("client@fsm.test", ["dealer@fsm.test"], message)
        out.append(time.perf_counter() - t0)
    return out


async def bench(stack: MailStack, alerts: int, work: Path) -> None:
    keys = Keys(work / "keys")
    names = [f"p{i:02d}" for i in range(PRINTERS)]
    printers = Printers(names, work / "printers", first_ip="127.0.0.60").start()
    try:
        config = make_config(
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
        daemon = Daemon(config, work / "data")
        task = asyncio.create_task(daemon.run(install_signals=False))
        set_at: dict[tuple[str, str], list[float]] = {}  # (ip, new state) -> times the agent changed
        try:
            while daemon.counts.polls < 1:
                await asyncio.sleep(0.05)
            state = "ok"
            while daemon.counts.alerts < alerts:
                state = "jammed" if state == "ok" else "ok"
                want = min(alerts, daemon.counts.alerts + PRINTERS)
                for name, ip in printers.ips.items():
                    printers.set_state(name, state)
                    set_at.setdefault((ip, state), []).append(time.time())
                while daemon.counts.alerts < want or daemon.store.outbox_depth():
                    await asyncio.sleep(0.02)
        finally:
            daemon.stop()
            await task
        own: list[float] = []
        total: list[float] = []
        reading: list[float] = []  # observed-at -> sealed in the outbox (the read of the round, seal)
        sending: list[float] = []  # sealed -> SMTP accepted
        sample = b""
        for entry in daemon.store.outbox():
            if entry.kind != "alert" or entry.sent_at is None:
                continue
            report = decode_report(daemon.store.plaintext(entry.seq))
            device = report.devices[0]
            own.append((entry.sent_at - device.observed_at).total_seconds())
            reading.append((entry.created_at - device.observed_at).total_seconds())
            sending.append((entry.sent_at - entry.created_at).total_seconds())
            cond = "jammed" if "jammed" in device.status.conditions else "ok"
            changed = [t for t in set_at.get((device.ip, cond), []) if t <= device.observed_at.timestamp()]
            if changed:
                total.append(entry.sent_at.timestamp() - max(changed))
            sample = daemon.store.chunks(entry.seq)[0]
        message = build_message(
            sample, from_addr="client@fsm.test", to_addr="dealer@fsm.test", now=datetime.now(UTC)
        )
        peer = await peer_smtp(stack, message, len(own))
        print(f"alerts sent: {len(own)} (defaults; status poll every 1 s instead of 90 s)")
        print(f"observed-at -> SMTP accepted   {stats(own)}")
        print(f"  of which observed-at -> sealed {stats(reading)}   (the poll round's SNMP reads)")
        print(f"  of which sealed -> SMTP accepted {stats(sending)}")
        print(f"condition set -> SMTP accepted {stats(total)}   (adds the poll delay, <= 90 s by default)")
        print(f"peer: bare aiosmtplib, one mail per connection  {stats(peer)}")
        print(
            f"ratio, sealed -> accepted vs bare SMTP (median): "
            f"{statistics.median(sending) / statistics.median(peer):.1f}x "
            "(the client also builds the MIME mail and commits 'sent' to its store with fsync)"
        )
        print("goal: seconds; limit: 10 minutes")
    finally:
        printers.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=100)
    parser.add_argument("--offset", type=int, default=int(os.environ.get("FSM_MAIL_PORT_OFFSET", "100")))
    args = parser.parse_args()
    # a lease starts the stack if needed and stops it only if no one else uses it
    with MailStack(port_offset=args.offset).lease() as stack, tempfile.TemporaryDirectory() as work:
        asyncio.run(bench(stack, args.alerts, Path(work)))


if __name__ == "__main__":
    main()
