"""Fill a server database with N devices x D days of daily readings through the real loader.

    .venv/bin/python bench/fill.py --devices 1000 --days 90 [--db sqlite|postgresql] [--refill]
    .venv/bin/python bench/fill.py --devices 10000 --days 90 --url postgresql://USER@HOST/EMPTY_DB

PostgreSQL is the server the tests use (fsm_devtools.fixtures.db: the project's private server,
or the one FSM_TEST_PG_ADMIN_URL names; name a lasting server there to keep a 10,000-device fill
across runs, since the private server's databases go when it stops).

Devices are split among clients of ``--per-client`` devices (ten clients per customer, one site
each); every client sends one periodic report a day holding all its devices, loaded with
``Loader.load`` (the loader the pipeline uses; sealing and mail are left out, they do not touch
the database). Each device has four page counters, four toners that run down at their own pace
and are replaced when nearly empty, and now and then a jam, a low-toner alert, a counter reset
or a day without a report. Everything is drawn from a seeded RNG: the same arguments give the
same database. Prints readings/s and the database's size.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fsm_devtools.corpus import make_client
from fsm_protocol.schema import Alert, Capabilities, Device, Report, Status, Supply
from fsm_server.db import open_database
from fsm_server.db.connect import Database
from fsm_server.db.loader import EnvelopeMeta, Loader
from fsm_server.registry import Registry

#: The last day filled ends here (midnight UTC): a 90-day fill covers most of a quarter.
END = datetime(2026, 11, 1, tzinfo=UTC)
COLORS = ("black", "cyan", "magenta", "yellow")


class FleetDevice:
    """One simulated printer: counters that grow, toners that run down and get replaced."""

    def __init__(self, n: int, rng: random.Random) -> None:
        self.n = n
        self.serial = f"S{n:07d}"
        self.ip = f"10.{n // 65536}.{n // 256 % 256}.{n % 256}"
        self.pages_per_day = rng.randint(20, 600)
        self.color_share = rng.uniform(0.05, 0.5)
        self.total = rng.randint(1_000, 2_000_000)
        self.black = int(self.total * (1 - self.color_share))
        self.levels = [rng.uniform(20.0, 100.0) for _ in COLORS]
        # percent of a toner used per page, so a toner lasts 30..200 days
        self.use = [rng.uniform(0.5, 3.3) / self.pages_per_day for _ in COLORS]

    def reading(self, at: datetime, rng: random.Random) -> Device:
        pages = max(0, int(rng.gauss(self.pages_per_day, self.pages_per_day / 4)))
        if rng.random() < 0.0005:  # a new board: the counters start again from 0
            self.total = self.black = 0
        self.total += pages
        color = int(pages * self.color_share)
        self.black += pages - color
        supplies = []
        for i, c in enumerate(COLORS):
            share = (pages - color) if c == "black" else color / 3
            self.levels[i] -= share * self.use[i] * rng.uniform(0.8, 1.2)
            if self.levels[i] < rng.uniform(0.0, 6.0):
                self.levels[i] = 100.0  # replaced
            pct = float(max(0, round(self.levels[i])))
            supplies.append(
                Supply(
                    index=i + 1,
                    description=f"{c.title()} Toner",
                    kind="toner",
                    color=c,
                    level=int(pct),
                    max=100,
                    unit="percent",
                    percent=pct,
                    state="low" if pct <= 10 else "ok",
                )
            )
        alerts = []
        conditions: list[str] = []
        if min(self.levels) <= 10:
            alerts.append(
                Alert(
                    code="marker_supply_low",
                    severity="warning",
                    group="marker_supplies",
                    description="Toner low",
                )
            )
        if rng.random() < 0.01:
            alerts.append(Alert(code="jam", severity="critical", group="media_path", description="Paper jam"))
            conditions.append("jammed")
        return Device(
            ip=self.ip,
            observed_at=at,
            pmd="ricoh",
            manufacturer="Ricoh",
            model="MP C3004",
            serial=self.serial,
            firmware="1.0",
            mac=f"00:26:73:{self.n // 65536 % 256:02x}:{self.n // 256 % 256:02x}:{self.n % 256:02x}",
            hostname=f"mfp-{self.n}",
            location=f"floor {self.n % 7}",
            capabilities=Capabilities(color=True),
            counters={
                "total": self.total,
                "total_black": self.black,
                "total_color": self.total - self.black,
                "copy_total": self.total // 3,
            },
            supplies=supplies,
            status=Status(device="running", printer="idle", conditions=conditions),
            alerts=alerts,
        )


def fill(
    db: Database,
    *,
    devices: int,
    days: int,
    per_client: int = 100,
    seed: int = 1,
    end: datetime = END,
    progress: bool = True,
) -> int:
    """Load ``days`` daily reports of every client; returns the readings loaded."""
    rng = random.Random(seed)
    pub = make_client(Path(tempfile.mkdtemp(prefix="fsm-bench-fill-")), "bench").pub_path
    registry = Registry(db)
    loader = Loader(db)
    fleet = [FleetDevice(n, rng) for n in range(devices)]
    clients = []
    for c in range(0, devices, per_client):
        name = f"client-{c // per_client:04d}"
        info = registry.add(name, pub, customer=f"Customer {c // per_client // 10:03d}")
        clients.append((info, fleet[c : c + per_client]))
    client_ids = {name: cid for cid, name in db.peewee.execute_sql("SELECT id, name FROM client").fetchall()}
    loaded = 0
    started = time.perf_counter()
    for d in range(days):
        day = end - timedelta(days=days - d)
        for i, (info, members) in enumerate(clients):
            at = day + timedelta(hours=8, minutes=i % 60, seconds=i // 60)
            readings = [m.reading(at, rng) for m in members if rng.random() > 0.003]  # a few days missed
            report = Report(
                client_id=info.name,
                customer=f"Customer {i // 10:03d}",
                site=f"Site {i:04d}",
                seq=d + 1,
                kind="periodic",
                created_at=at + timedelta(minutes=1),
                devices=readings,
            )
            meta = EnvelopeMeta(
                client_id=client_ids[info.name],
                client_name=info.name,
                sha256=f"{i:032x}{d:032x}",
                message_id=None,
                source="bench/fill.py",
                received_at=at + timedelta(minutes=2),
            )
            loader.load(report, meta)
            loaded += len(readings)
        if progress and (d % 10 == 9 or d == days - 1):
            rate = loaded / (time.perf_counter() - started)
            print(f"  day {d + 1}/{days}: {loaded} readings, {rate:.0f} readings/s", flush=True)
    return loaded


#: Where filled databases are kept between runs (a 10,000-device SQLite file is ~1.5 GB).
BENCH_DIR = Path(__file__).resolve().parent.parent / "var" / "bench"


def bench_url(kind: str, devices: int, days: int, admin_url: str = "", per_client: int = 100) -> str:
    """The database of a fleet size: a SQLite file under var/bench, or a PostgreSQL database of its
    own on the server of ``admin_url`` (the one the tests use: fsm_devtools.fixtures.db); a fleet
    of other than 100 devices a client is another database (``_pcN``)."""
    name = f"fleet_{devices}x{days}" + (f"_pc{per_client}" if per_client != 100 else "")
    if kind == "sqlite":
        BENCH_DIR.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{BENCH_DIR / (name + '.db')}"
    return admin_url.rpartition("/")[0] + f"/fsm_bench_{name}"


def filled(
    kind: str, devices: int, days: int, *, admin_url: str = "", refill: bool = False, per_client: int = 100
) -> str:
    """The URL of a database holding the fleet, filled now when it is not yet (or ``refill``)."""
    url = bench_url(kind, devices, days, admin_url, per_client)
    if kind == "sqlite":
        path = Path(url.removeprefix("sqlite:///"))
        done = path.exists() and not refill
        if not done:
            for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
                p.unlink(missing_ok=True)
    else:
        import psycopg

        name = url.rpartition("/")[2]
        with psycopg.connect(admin_url, autocommit=True) as conn:
            row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            done = row is not None
            if refill or not done:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{name}"')
                done = False
    if not done:
        db = open_database(url, data_dir=Path(tempfile.gettempdir()))
        t = time.perf_counter()
        n = fill(db, devices=devices, days=days, per_client=per_client)
        print(f"filled {kind}: {n} readings in {time.perf_counter() - t:.0f} s", flush=True)
        db.close()
    return url


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--per-client", type=int, default=100, help="devices per client (and per report)")
    ap.add_argument(
        "--db",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="var/bench/fleet_NxD.db, or a database fsm_bench_fleet_NxD on the test server",
    )
    ap.add_argument("--url", help="fill this empty database instead")
    ap.add_argument("--refill", action="store_true", help="drop and fill again a database filled before")
    args = ap.parse_args()
    if args.url:
        db = open_database(args.url, data_dir=Path(tempfile.gettempdir()))
        fill(db, devices=args.devices, days=args.days, per_client=args.per_client)
        db.close()
        url = args.url
    else:
        from fsm_devtools.fixtures.db import postgres_admin_url

        with contextlib.ExitStack() as stack:
            admin = stack.enter_context(postgres_admin_url()) if args.db == "postgresql" else ""
            url = filled(
                args.db,
                args.devices,
                args.days,
                admin_url=admin,
                refill=args.refill,
                per_client=args.per_client,
            )
    if url.startswith("sqlite:///"):
        print(f"{url}: {Path(url.removeprefix('sqlite:///')).stat().st_size / 2**20:.0f} MB")
    else:
        print(url)


if __name__ == "__main__":
    main()
