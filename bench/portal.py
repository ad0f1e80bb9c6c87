"""Portal cost against fleet size: p50/p95 of each page's data at 20 concurrent sessions, with
PostgreSQL holding 10,000 devices x 90 days of readings, beside the same pages at 100 devices.

The fleet is written with SQL (generate_series) straight into a private database on the
machine's PostgreSQL (127.0.0.1:5432, user postgres; FSM_TEST_PG_ADMIN_URL overrides): 5
dealers, 20 customers, 100 clients each sending one report a day for 90 days, every device read
in each (two counters, two supplies, a warning status on ~2 %, a jam on ~1 % of newest readings).
The clients and their reports are the same at both sizes; only the devices differ.

Each "session" is a thread calling the page functions of ``fsm_server.portal`` as the portal's
endpoints do (a dealer viewer seeing 4 of the 20 customers), on its own connection. Measured:
dashboard, devices list (unfiltered, by status, by supply level, by search text), device page and
its chart data, the supplies list (unfiltered, by level, by days left) and the orders list (the
supply state and the orders are computed from the filled readings as ingest keeps them). The
goal: p95 at 10,000 devices at most 2x p95 at 100.

    .venv/bin/python bench/portal.py [--rounds 10] [--sessions 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from fsm_server.config import OrdersSection
from fsm_server.db import open_database
from fsm_server.db.connect import Database
from fsm_server.db.models import Device
from fsm_server.db.state import rebuild
from fsm_server.orders import proposals
from fsm_server.orders.workflow import OrderFilter, order_page
from fsm_server.portal.dashboard import dashboard
from fsm_server.portal.device import counter_chart, device_view
from fsm_server.portal.devices import DeviceFilter, device_page
from fsm_server.portal.supplies import SupplyFilter, supply_page
from fsm_server.scoping import Scoped

ADMIN_URL = os.environ.get("FSM_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
DAYS = 90
CLIENTS = 100


@dataclass(frozen=True)
class Viewer:
    role: str = "dealer"
    dealer: str | None = "dealer-1"
    customers: tuple[str, ...] = ()


def fill(url: str, devices: int, t0: datetime) -> None:
    """The fleet, in SQL (seconds, not the hours the pipeline would take for 900,000 readings)."""
    day = "interval '1 day'"
    steps = [
        "INSERT INTO dealer (name) SELECT 'dealer-' || g FROM generate_series(1, 5) g",
        "INSERT INTO customer (name, dealer_id) SELECT 'customer-' || g, "
        "(SELECT id FROM dealer WHERE name = 'dealer-' || ((g - 1) % 5 + 1)) FROM generate_series(1, 20) g",
        "INSERT INTO site (customer_id, name) SELECT id, 'HQ' FROM customer",
        f"INSERT INTO client (name, public_key, fingerprint, status, added_at, note, customer_id) "
        f"SELECT 'client-' || g, 'k', 'fp' || g, 'active', %(t0)s - {day}, '', "
        f"(SELECT id FROM customer WHERE name = 'customer-' || ((g - 1) % 20 + 1)) "
        f"FROM generate_series(1, {CLIENTS}) g",
        f"INSERT INTO envelope (client_id, seq, kind, sha256, chunk_count, source, created_at, received_at, "
        f"ingested_at, devices, \"values\") SELECT c.id, d, 'periodic', md5(c.id || '-' || d), 1, 'bench', "
        f"%(t0)s + d * {day}, %(t0)s + d * {day} + interval '1 minute', "
        f"%(t0)s + d * {day} + interval '2 minutes', 0, 0 FROM client c, generate_series(1, {DAYS}) d",
        f"INSERT INTO device (identity, customer_id, client_id, site_id, manufacturer, model, serial, ip, "
        f"location, pmd, first_seen, last_seen) "
        f"SELECT 'sn:ricoh:S' || g, c.customer_id, c.id, s.id, 'Ricoh', 'MP C' || (3000 + g % 50), 'S' || g, "
        f"'10.' || (g / 65536) || '.' || (g / 256 % 256) || '.' || (g % 256), "
        f"'floor ' || (g % 9), 'ricoh', %(t0)s + {day} - interval '1 minute', "
        f"%(t0)s + {DAYS} * {day} - interval '1 minute' "
        f"FROM generate_series(1, {devices}) g "
        f"JOIN client c ON c.name = 'client-' || ((g - 1) % {CLIENTS} + 1) "
        f"JOIN site s ON s.customer_id = c.customer_id",
        "INSERT INTO reading (envelope_id, device_id, observed_at, ip, reachability, device_status, "
        "printer_status) SELECT e.id, d.id, e.created_at - interval '1 minute', d.ip, 'ok', "
        "CASE WHEN (d.id + e.seq) % 50 = 0 THEN 'warning' ELSE 'running' END, 'idle' "
        "FROM device d JOIN envelope e ON e.client_id = d.client_id",
        "INSERT INTO counter_value (reading_id, device_id, name, value, observed_at) "
        "SELECT r.id, r.device_id, n.name, (1000 + e.seq * 120 + r.device_id) / n.div, r.observed_at "
        "FROM reading r JOIN envelope e ON e.id = r.envelope_id, "
        "(VALUES ('total', 1), ('total_black', 2)) AS n(name, div)",
        "INSERT INTO counter_latest (device_id, name, value, observed_at) "
        "SELECT device_id, name, MAX(value), MAX(observed_at) FROM counter_value GROUP BY device_id, name",
        'INSERT INTO supply_value (reading_id, "index", description, kind, color, percent, state) '
        "SELECT r.id, s.i, s.color || ' toner', 'toner', s.color, p.pct, "
        "CASE WHEN p.pct <= 10 THEN 'low' ELSE 'ok' END "
        "FROM reading r JOIN envelope e ON e.id = r.envelope_id, "
        "(VALUES (1, 'black'), (2, 'cyan')) AS s(i, color), "
        "LATERAL (SELECT (100 - ((e.seq * 1.1 + r.device_id % 37 + s.i * 13)::numeric % 100))::float "
        "AS pct) p",
        'INSERT INTO alert_value (reading_id, code, severity, "group", description, observed_at) '
        "SELECT r.id, 'jam', 'critical', 'general', 'paper jam', r.observed_at FROM reading r "
        "JOIN device d ON d.id = r.device_id AND r.observed_at = d.last_seen WHERE d.id % 100 = 7",
        "INSERT INTO device_address (device_id, ip, mac, first_seen, last_seen) "
        "SELECT id, ip, '', first_seen, last_seen FROM device",
        "ANALYZE",
    ]
    with psycopg.connect(url, autocommit=True) as conn:
        for sql in steps:
            conn.execute(sql.replace("%(t0)s", f"TIMESTAMP '{t0:%Y-%m-%d %H:%M:%S}'"))


def pages(now: datetime, device_ids: list[int]) -> dict[str, Callable[[Scoped, int], object]]:
    return {
        "dashboard": lambda s, i: dashboard(s, now=now),
        "devices": lambda s, i: device_page(s, DeviceFilter(page=1 + i % 3), now=now),
        "devices by status": lambda s, i: device_page(s, DeviceFilter(status="warning"), now=now),
        "devices by supply": lambda s, i: device_page(s, DeviceFilter(supply_max=10), now=now),
        "devices by search": lambda s, i: device_page(s, DeviceFilter(q=f"S{1 + i % 9}1"), now=now),
        "device page": lambda s, i: device_view(s, device_ids[i % len(device_ids)], now=now),
        "chart data": lambda s, i: counter_chart(s, device_ids[i % len(device_ids)], now=now),
        "supplies": lambda s, i: supply_page(s, SupplyFilter(page=1 + i % 3), now=now),
        "supplies by level": lambda s, i: supply_page(s, SupplyFilter(level_max=20, sort="level"), now=now),
        "supplies by days": lambda s, i: supply_page(s, SupplyFilter(days_max=14, color="black"), now=now),
        "orders": lambda s, i: order_page(s, OrderFilter(page=1 + i % 2)),
    }


def measure(db: Database, now: datetime, *, rounds: int, sessions: int) -> dict[str, tuple[float, float]]:
    scoped = Scoped.of(Viewer())
    ids = [d.id for d in scoped.devices(Device.id).order_by(Device.id).limit(200)]
    out = {}
    for name, page in pages(now, ids).items():
        page(scoped, 0)  # warm the caches once

        def one(i: int, page: Callable[[Scoped, int], object] = page) -> float:
            start = time.perf_counter()
            page(Scoped.of(Viewer()), i)
            elapsed = time.perf_counter() - start
            db.peewee.close()  # each call is a request on a connection of its own thread
            return elapsed

        with ThreadPoolExecutor(sessions) as pool:
            times = sorted(pool.map(one, range(rounds * sessions)))
        out[name] = (statistics.median(times) * 1000, times[int(len(times) * 0.95) - 1] * 1000)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10, help="requests per session and page")
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--sizes", default="100,10000")
    args = parser.parse_args()
    now = datetime.now(UTC).replace(microsecond=0)
    t0 = now - timedelta(days=DAYS)
    results = {}
    for size in (int(s) for s in args.sizes.split(",")):
        name = f"fsm_bench_portal_{os.getpid()}_{size}"
        base = ADMIN_URL.rpartition("/")[0]
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
            admin.execute(f'CREATE DATABASE "{name}"')
        try:
            url = f"{base}/{name}"
            db = open_database(url, data_dir=Path(tempfile.mkdtemp()))
            started = time.perf_counter()
            fill(url, size, t0)
            with db.atomic():  # the state ingest keeps, and the orders it proposes, as ingest would
                rebuild(db)
                proposals.scan(db, OrdersSection(), now=now)
            print(f"{size} devices: filled in {time.perf_counter() - started:.0f} s", file=sys.stderr)
            results[size] = measure(db, now, rounds=args.rounds, sessions=args.sessions)
            db.close()
        finally:
            with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    small, large = (results[s] for s in sorted(results))
    print(f"{'page':<20} {'p50 small':>10} {'p95 small':>10} {'p50 large':>10} {'p95 large':>10}  ratio p95")
    worst = 0.0
    for page in small:
        ratio = large[page][1] / small[page][1]
        worst = max(worst, ratio)
        print(
            f"{page:<20} {small[page][0]:>8.1f}ms {small[page][1]:>8.1f}ms {large[page][0]:>8.1f}ms "
            f"{large[page][1]:>8.1f}ms  {ratio:5.2f}{'  OVER 2x' if ratio > 2 else ''}"
        )
    print(f"worst p95 ratio {worst:.2f} (goal <= 2)")
    return 0 if worst <= 2 else 1


if __name__ == "__main__":
    sys.exit(main())
