"""Portal cost against fleet size: p50/p95 of each page's data at 20 concurrent sessions, with
PostgreSQL holding 10,000 devices x 90 days of readings, beside the same pages at 100 devices.

The fleets are ``bench/fill.py``'s, loaded through the real loader (so the state ingest keeps,
``device_latest`` and ``supply_latest``, is there as in production) into databases
``fsm_bench_fleet_NxD`` on the server the tests use (the private one on 15432 + the port offset,
or FSM_TEST_PG_ADMIN_URL), filled at the first run and kept for the next: 100 devices per client,
ten clients per customer (the 100-device fleet is one customer, the 10,000-device one ten). The
bench makes five dealers and gives them the customers in turn; the viewer is a user of the
first dealer, who sees every device at 100 devices and 2,000 of the 10,000.

Each "session" is a thread calling the page functions of ``fsm_server.portal`` as the portal's
endpoints do, on its own connection. Measured: dashboard; devices list unfiltered (pages 1-3 and
a deep page), sorted by last report, and filtered by customer, site, model, status, supply level,
last-report age and search text; device page; its chart data; the supplies list (unfiltered, by
level, by days left) and the orders list. "Now" is the fill's end. The goal:
p95 at 10,000 devices at most 2x p95 at 100, compared within one run.

    .venv/bin/python bench/portal.py [--rounds 10] [--sessions 20] [--sizes 100,10000]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fill import END, filled

from fsm_devtools.fixtures.db import postgres_admin_url
from fsm_server.config import OrdersSection
from fsm_server.customers import add_dealer, assign_dealer
from fsm_server.db import open_database
from fsm_server.db.connect import Database
from fsm_server.db.models import Customer, Device
from fsm_server.orders import proposals
from fsm_server.orders.workflow import OrderFilter, order_page
from fsm_server.portal.dashboard import dashboard
from fsm_server.portal.device import counter_chart, device_view
from fsm_server.portal.devices import DeviceFilter, device_page
from fsm_server.portal.supplies import SupplyFilter, supply_page
from fsm_server.scoping import Scoped

DAYS = 90
DEALERS = 5


@dataclass(frozen=True)
class Viewer:
    role: str = "dealer"
    dealer: str | None = "dealer-1"
    customers: tuple[str, ...] = ()


def give_dealers() -> None:
    """Dealers dealer-1..5 serve the customers in turn (sorted by name); idempotent."""
    for n in range(1, DEALERS + 1):
        add_dealer(f"dealer-{n}")
    for i, c in enumerate(Customer.select(Customer.name).order_by(Customer.name)):
        assign_dealer(c.name, f"dealer-{i % DEALERS + 1}")


Page = Callable[[Scoped, int], object]
Results = dict[str, tuple[float, float]]  # page -> (p50, p95) in ms


def pages(now: datetime, device_ids: list[int], customer: str, site: str) -> dict[str, Page]:
    def listing(**kw: object) -> Page:
        return lambda s, i: device_page(s, DeviceFilter(**kw), now=now)  # type: ignore[arg-type]

    return {
        "dashboard": lambda s, i: dashboard(s, now=now),
        "devices": lambda s, i: device_page(s, DeviceFilter(page=1 + i % 3), now=now),
        "devices page 30": listing(page=30),
        "devices by last rep.": listing(sort="last_seen", desc=True),
        "devices by customer": listing(customer=customer),
        "devices by site": listing(site=site),
        "devices by model": listing(model="C3004"),
        "devices by status": listing(status="alerts"),
        "devices by supply": listing(supply_max=10),
        "devices silent 1 d": listing(silent_hours=24),
        "devices by search": lambda s, i: device_page(s, DeviceFilter(q=f"S00{1 + i % 9}1"), now=now),
        "device page": lambda s, i: device_view(s, device_ids[i % len(device_ids)], now=now),
        "chart data": lambda s, i: counter_chart(s, device_ids[i % len(device_ids)], now=now),
        "supplies": lambda s, i: supply_page(s, SupplyFilter(page=1 + i % 3), now=now),
        "supplies by level": lambda s, i: supply_page(s, SupplyFilter(level_max=20, sort="level"), now=now),
        "supplies by days": lambda s, i: supply_page(s, SupplyFilter(days_max=14, color="black"), now=now),
        "orders": lambda s, i: order_page(s, OrderFilter(page=1 + i % 2)),
    }


def measure(db: Database, now: datetime, *, rounds: int, sessions: int) -> Results:
    scoped = Scoped.of(Viewer())
    ids = [d.id for d in scoped.devices(Device.id).order_by(Device.id).limit(200)]
    first = device_view(scoped, ids[0], now=now)
    in_scope = scoped.devices(Device.id).count()
    print(f"  {in_scope} devices in the viewer's scope", file=sys.stderr)
    out = {}
    for name, page in pages(now, ids, first.customer, first.site).items():
        page(scoped, 0)  # warm the caches once

        def one(i: int, page: Page = page) -> float:
            start = time.perf_counter()
            page(Scoped.of(Viewer()), i)
            elapsed = time.perf_counter() - start
            db.peewee.close()  # each call is a request on a connection of its own thread
            return elapsed

        with ThreadPoolExecutor(sessions) as pool:
            times = sorted(pool.map(one, range(rounds * sessions)))
        out[name] = (statistics.median(times) * 1000, times[int(len(times) * 0.95) - 1] * 1000)
    return out


def run(
    admin_url: str, sizes: list[int], *, rounds: int, sessions: int
) -> dict[int, dict[str, tuple[float, float]]]:
    results = {}
    for size in sizes:
        started = time.perf_counter()
        url = filled("postgresql", size, DAYS, admin_url=admin_url)
        print(f"{size} devices: {url} ready in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        db = open_database(url, data_dir=Path(tempfile.mkdtemp(prefix="fsm-bench-portal-")))
        try:
            give_dealers()
            proposals.scan(db, OrdersSection(), now=END)  # what ingest proposes (fills made before orders)
            db.peewee.execute_sql("ANALYZE")
            results[size] = measure(db, END, rounds=rounds, sessions=sessions)
        finally:
            db.close()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10, help="requests per session and page")
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--sizes", default="100,10000", help="two fleet sizes, small first")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    with contextlib.ExitStack() as stack:
        admin = stack.enter_context(postgres_admin_url())
        results = run(admin, sizes, rounds=args.rounds, sessions=args.sessions)
    small, large = results[sizes[0]], results[sizes[-1]]
    print(f"{'page':<21} {'p50 small':>10} {'p95 small':>10} {'p50 large':>10} {'p95 large':>10}  ratio p95")
    worst = 0.0
    for page in small:
        ratio = large[page][1] / small[page][1]
        worst = max(worst, ratio)
        print(
            f"{page:<21} {small[page][0]:>8.1f}ms {small[page][1]:>8.1f}ms {large[page][0]:>8.1f}ms "
            f"{large[page][1]:>8.1f}ms  {ratio:5.2f}{'  OVER 2x' if ratio > 2 else ''}"
        )
    print(f"worst p95 ratio {worst:.2f} (goal <= 2)")
    return 0 if worst <= 2 else 1


if __name__ == "__main__":
    sys.exit(main())
