"""Ingest throughput from Dovecot into SQLite and PostgreSQL, beside bounds measured in the same run.

    .venv/bin/python bench/ingest.py [--reports 2000] [--devices 50] [--only sqlite|postgresql]

Sends N sealed reports of D devices each through Postfix into dealer@fsm.test (the project's
private mail stack, port offset FSM_MAIL_PORT_OFFSET; PostgreSQL is the project's private server on
the same offset, or FSM_TEST_PG_ADMIN_URL), then measures:

* bound "imap fetch": the same mails fetched with the daemon's own Mailbox (BODY.PEEK[]), nothing else;
* bound "open": parse MIME + verify + decrypt + inflate + decode every mail, in process, nothing else;
* bound "driver insert" per database: the same rows (devices, addresses, readings, counters,
  latest counters, supplies, alerts, envelopes) inserted with the bare DB driver (sqlite3 /
  psycopg executemany), one transaction per report as the pipeline does (same durability);
* the real thing: ``IngestDaemon.run(once=True)`` from Dovecot into a fresh database, mails
  moved to FSM/Processed.

Prints reports/s and values/s (counters + supplies + alerts) and the ratio to the slowest bound.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "server"))

import psycopg
from ingest_helpers import folder_count, mailbox_config

from fsm_devtools.corpus import FROM_ADDR, TO_ADDR, mails_for, make_client, make_report, make_server, seal
from fsm_devtools.fixtures.db import PrivatePostgres, postgres_admin_url
from fsm_devtools.peers.mailstack import MailStack, offset_from_env
from fsm_protocol import envelope, mime
from fsm_server.daemon import IngestDaemon, default_mailbox_factory
from fsm_server.db import open_database
from fsm_server.ingest.pipeline import Pipeline
from fsm_server.registry import Registry


async def send(stack: MailStack, mails: list[bytes], connections: int = 4) -> None:
    import aiosmtplib

    async def worker(part: list[bytes]) -> None:
        async with aiosmtplib.SMTP(hostname=stack.host, port=stack.smtp_port, start_tls=False) as smtp:
            for m in part:
                await smtp.sendmail(FROM_ADDR, [TO_ADDR], m)

    await asyncio.gather(*(worker(mails[i::connections]) for i in range(connections)))


def move_back(stack: MailStack) -> None:
    """Put every mail of FSM/Processed back into INBOX (for the next database's run)."""
    with stack.imap("dealer") as conn:
        conn.select('"FSM/Processed"')
        typ, data = conn.uid("MOVE", "1:*", "INBOX")
        assert typ == "OK", data


async def fetch_only(stack: MailStack, batch: int) -> tuple[int, float]:
    box = default_mailbox_factory(mailbox_config(stack), 16 * 1024 * 1024)
    await box.connect()
    n = 0
    t = time.perf_counter()
    async for _uid, raw in box.fetch_new(batch=batch):
        n += len(raw) > 0
    elapsed = time.perf_counter() - t
    await box.aclose()
    return n, elapsed


def driver_rows(reports: list, kind: str) -> list[dict[str, list[tuple]]]:  # type: ignore[type-arg]
    """Per report, the rows the loader writes (same columns), as plain tuples built before timing."""
    out = []
    for r in reports:
        ts = r.created_at.astimezone(UTC).replace(tzinfo=None)
        t = ts.isoformat(" ") if kind == "sqlite" else ts
        rows: dict[str, list[tuple]] = {
            k: []
            for k in (  # type: ignore[type-arg]
                "device",
                "device_address",
                "reading",
                "counter_value",
                "counter_latest",
                "supply_value",
                "alert_value",
            )
        }
        for i, d in enumerate(r.devices):
            rows["device"].append(
                (
                    f"sn:ricoh:{d.serial}",
                    1,
                    None,
                    d.manufacturer,
                    d.model,
                    d.serial,
                    d.firmware,
                    d.hostname,
                    d.location,
                    d.pmd,
                    d.ip,
                    d.mac,
                    t,
                    t,
                )
            )
            rows["device_address"].append((i, d.ip, d.mac, t, t))
            rows["reading"].append(
                (
                    i,
                    t,
                    d.ip,
                    d.reachability,
                    d.status.device,
                    d.status.printer,
                    '["low_toner"]',
                    None,
                    None,
                    None,
                )
            )
            for name, v in d.counters.items():
                rows["counter_value"].append((i, name, v, t, None, None))
                rows["counter_latest"].append((i, name, v, t))
            for s in d.supplies:
                rows["supply_value"].append(
                    (i, s.index, s.description, s.kind, s.color, s.level, s.max, s.unit, s.percent, s.state)
                )
            for a in d.alerts:
                rows["alert_value"].append(
                    (
                        i,
                        a.code,
                        a.severity,
                        a.group,
                        a.group_index,
                        a.location,
                        a.description,
                        a.index,
                        a.training,
                        a.time_ticks,
                        t,
                    )
                )
        out.append(rows)
    return out


def driver_insert(kind: str, url: str, tmp: Path, per_report: list[dict[str, list[tuple]]]) -> float:  # type: ignore[type-arg]
    """The same rows into the same (fsm-migrated) tables with the bare driver, one transaction per report."""
    schema = open_database(url, data_dir=tmp)  # the real schema: same constraints and indexes
    schema.peewee.execute_sql(
        "INSERT INTO client (id, name, public_key, fingerprint, status, added_at, "
        "note) "
        "VALUES (1, 'bench', 'k', 'f', 'active', '2026-01-01 00:00:00', '')"
    )
    schema.close()
    if kind == "sqlite":
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("PRAGMA journal_mode=wal")
        conn.execute("PRAGMA synchronous=full")
        conn.execute("PRAGMA foreign_keys=on")
        ph = "?"
    else:
        conn = psycopg.connect(url, autocommit=True)
        ph = "%s"
    cur = conn.cursor()

    def q(sql: str) -> str:
        return sql.replace("?", ph)

    def values(n: int, width: int) -> str:
        return ", ".join(["(" + ", ".join([ph] * width) + ")"] * n)

    now = "2026-11-23 12:00:00" if kind == "sqlite" else datetime(2026, 11, 23, 12)
    t = time.perf_counter()
    for seq, rows in enumerate(per_report, 1):
        cur.execute("BEGIN")
        cur.execute(q("SELECT sha256 FROM envelope WHERE client_id = 1 AND seq = ?"), (seq,))
        cur.fetchall()
        cur.execute(
            q(
                "INSERT INTO envelope (client_id, seq, kind, sha256, chunk_count, source, created_at, "
                "received_at, ingested_at, devices, \"values\") VALUES (1, ?, 'periodic', ?, 1, '', "
                "?, ?, ?, ?, ?) RETURNING id"
            ),
            (seq, "0" * 64, now, now, now, 50, 950),
        )
        env_id = cur.fetchone()[0]
        dev = rows["device"]
        cur.execute(
            "INSERT INTO device (identity, client_id, site_id, manufacturer, model, serial, "
            "firmware, hostname, location, pmd, ip, mac, first_seen, last_seen) VALUES "
            f"{values(len(dev), 14)} "
            "ON CONFLICT (identity) DO UPDATE SET last_seen = excluded.last_seen RETURNING id",
            [v for r in dev for v in r],
        )
        ids = [r[0] for r in cur.fetchall()]
        cur.executemany(
            q(
                "INSERT INTO device_address (device_id, ip, mac, first_seen, last_seen) VALUES "
                "(?, ?, ?, ?, ?) ON CONFLICT (device_id, ip, mac) DO UPDATE SET last_seen = "
                "excluded.last_seen"
            ),
            [(ids[r[0]], *r[1:]) for r in rows["device_address"]],
        )
        rd = rows["reading"]
        cur.execute(
            "INSERT INTO reading (envelope_id, device_id, observed_at, ip, reachability, "
            "device_status, "
            "printer_status, conditions, console, uptime_ticks, warnings) VALUES "
            f"{values(len(rd), 11)} RETURNING id",
            [v for r in rd for v in (env_id, ids[r[0]], *r[1:])],
        )
        rids = [r[0] for r in cur.fetchall()]
        cur.execute(
            "SELECT device_id, name, value, observed_at FROM counter_latest WHERE device_id IN "
            f"({', '.join([ph] * len(ids))})",
            ids,
        )
        cur.fetchall()
        cur.executemany(
            q(
                "INSERT INTO counter_value (reading_id, device_id, name, value, observed_at, flag, "
                "previous) VALUES (?, ?, ?, ?, ?, ?, ?)"
            ),
            [(rids[r[0]], ids[r[0]], *r[1:]) for r in rows["counter_value"]],
        )
        cur.executemany(
            q(
                "INSERT INTO counter_latest (device_id, name, value, observed_at) VALUES "
                "(?, ?, ?, ?) ON CONFLICT (device_id, name) DO UPDATE SET value = excluded.value, "
                "observed_at = excluded.observed_at"
            ),
            [(ids[r[0]], *r[1:]) for r in rows["counter_latest"]],
        )
        cur.executemany(
            q(
                'INSERT INTO supply_value (reading_id, "index", description, kind, color, level, '
                "max, unit, percent, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            [(rids[r[0]], *r[1:]) for r in rows["supply_value"]],
        )
        cur.executemany(
            q(
                'INSERT INTO alert_value (reading_id, device_id, code, severity, "group", group_index, '
                'location, description, "index", training, time_ticks, observed_at) VALUES '
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            [(rids[r[0]], ids[r[0]], *r[1:]) for r in rows["alert_value"]],
        )
        cur.execute("COMMIT")
    elapsed = time.perf_counter() - t
    conn.close()
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reports", type=int, default=2000)
    ap.add_argument("--devices", type=int, default=50)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--only", choices=("sqlite", "postgresql"))
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fsm-bench-ingest-"))
    server = make_server(tmp / "server")
    client = make_client(tmp / "client", "acme-hq")
    reports = [make_report(client.name, seq, devices=args.devices) for seq in range(1, args.reports + 1)]
    mails = [mails_for(seal(r, client, server))[0] for r in reports]
    values = sum(len(d.counters) + len(d.supplies) + len(d.alerts) for r in reports for d in r.devices)
    print(
        f"{args.reports} reports x {args.devices} devices = {values} values; "
        f"mail {sum(map(len, mails)) / len(mails) / 1024:.1f} KB on average"
    )

    stack = MailStack(port_offset=offset_from_env())
    stack.start()
    try:
        with stack.lease():
            stack.empty_mailbox("dealer")
            t = time.perf_counter()
            asyncio.run(send(stack, mails))
            stack.wait_for_messages(len(mails), timeout=120) if len(mails) < 300 else None
            deadline = time.monotonic() + 120
            while folder_count(stack, "INBOX") < len(mails) and time.monotonic() < deadline:
                time.sleep(0.2)
            print(f"sent and delivered in {time.perf_counter() - t:.1f} s")
            run_all(stack, args, tmp, server, client, reports, mails, values)
    finally:
        stack.stop()


def run_all(stack, args, tmp, server, client, reports, mails, values) -> None:  # type: ignore[no-untyped-def]
    n = len(mails)
    fetched, t_fetch = asyncio.run(fetch_only(stack, args.batch))
    assert fetched == n, (fetched, n)
    t = time.perf_counter()
    for m in mails:
        envelope.open_envelope(
            mime.parse_message(m).envelope,
            verify_key=client.signing_key.public,
            encryption_key=server.encryption_key,
        )
    t_open = time.perf_counter() - t
    # The private PostgreSQL server is started (and stopped at the end) only when it is measured.
    with contextlib.ExitStack() as exits:
        for kind in ("sqlite", "postgresql"):
            if args.only and kind != args.only:
                continue
            rows = driver_rows(reports, kind)
            if kind == "sqlite":
                t_driver = driver_insert("sqlite", f"sqlite:///{tmp / f'driver-{time.time()}.db'}", tmp, rows)
                url = f"sqlite:///{tmp / 'fsm.db'}"
            else:
                pg = PrivatePostgres(exits.enter_context(postgres_admin_url()))
                pg.ensure()
                t_driver = driver_insert("postgresql", pg.url, tmp, rows)
                pg.reset()
                url = pg.url
            db = open_database(url, data_dir=tmp)
            reg = Registry(db)
            reg.add(client.name, client.pub_path)
            pipeline = Pipeline(db, reg, server.encryption_key)
            daemon = IngestDaemon(pipeline, [mailbox_config(stack)], batch=args.batch)
            t = time.perf_counter()
            result = asyncio.run(daemon.run(once=True))
            t_real = time.perf_counter() - t
            db.close()
            assert result.tally.outcomes["loaded"] == n, result.tally.summary()
            bounds = {"imap fetch": t_fetch, "open": t_open, "driver insert": t_driver}
            slowest = max(bounds, key=bounds.__getitem__)
            print(f"\n== {kind}")
            for name, secs in bounds.items():
                print(f"  bound {name:<14} {n / secs:9.1f} reports/s {values / secs:12.0f} values/s")
            print(
                f"  fsm ingest           {n / t_real:9.1f} reports/s {values / t_real:12.0f} values/s"
                f"   = {bounds[slowest] / t_real * 100:.0f} % of the slowest bound ({slowest})"
            )
            move_back(stack)
            if kind == "postgresql":
                pg.drop()


if __name__ == "__main__":
    main()
