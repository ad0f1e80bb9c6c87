"""Every report at fleet size, beside a bound measured in the same run, on SQLite and PostgreSQL.

    .venv/bin/python bench/reports.py [--sizes 1000,10000] [--days 90] [--only sqlite|postgresql] [--plans]
                                      [--kinds meters,...] [--format csv|html]

For each size the fleet is filled once through the real loader (``bench/fill.py``; kept in
var/bench and in databases fsm_bench_fleet_NxD for the next run). Each report then runs in a
process of its own, written as CSV (or ``--format``) to /dev/null by ``reports.stream`` (what
`fsm-server report` does), and so does its bound: the single hand-written SQL query that reads the
same rows as tuples (one query over every device, no chunks, no Python per row beyond the
driver's). Printed per report: wall and CPU seconds (the process's, plus its PostgreSQL
backend's), the ratios to the bound's (on a loaded machine wall time mostly measures waiting for a
core; CPU is the fair one), the process's peak RSS, and from the first size to the last the growth
of CPU time (wall beside it) and RSS, the bound's growth in the same run beside it.

Periods: meters the last complete month of the fill (October), supplies and alerts the 30 days
before the fill's end; health the 30 days before now, since ingest times are the fill's own.
``--plans`` prints each report query's plan at this size (reports.plans). PostgreSQL is the
server the tests use (bench/fill.py).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

KINDS = ("inventory", "meters", "supplies", "alerts", "health")

#: The single query per report that reads the rows the report reads (``?``: period start, end).
BOUNDS = {
    "inventory": (
        "SELECT d.id, d.identity, d.manufacturer, d.model, d.serial, d.ip, d.location, "
        "d.firmware, d.hostname, d.mac, d.pmd, d.first_seen, d.last_seen, cu.name, cl.name, "
        "s.name, t.value FROM device d JOIN client cl ON cl.id = d.client_id "
        "JOIN customer cu ON cu.id = d.customer_id LEFT JOIN site s ON s.id = d.site_id "
        "LEFT JOIN counter_latest t ON t.device_id = d.id AND t.name = 'total'",
        0,
    ),
    "meters": (
        "SELECT cv.device_id, cv.name, cv.observed_at, cv.value, cv.flag, cv.id "
        "FROM device d CROSS JOIN counter_latest cl CROSS JOIN counter_value cv "
        "WHERE cl.device_id = d.id AND cv.device_id = cl.device_id AND cv.name = cl.name "
        "AND cv.observed_at > ? AND cv.observed_at < ?",
        2,
    ),
    "supplies": (
        'SELECT r.device_id, r.observed_at, r.id, s.id, s."index", s.description, s.kind, s.color, '
        "s.percent, s.state FROM device d CROSS JOIN reading r CROSS JOIN supply_value s "
        "WHERE r.device_id = d.id AND r.observed_at >= ? AND r.observed_at < ? "
        "AND s.reading_id = r.id",
        2,
    ),
    "alerts": (
        "SELECT r.device_id, r.observed_at, r.id, r.reachability, r.conditions, a.id, a.code, "
        "a.severity, a.description FROM device d CROSS JOIN reading r "
        "LEFT JOIN alert_value a ON a.reading_id = r.id "
        "WHERE r.device_id = d.id AND r.observed_at >= ? AND r.observed_at < ?",
        2,
    ),
    "health": (
        "SELECT r.device_id, r.observed_at, e.ingested_at, e.kind "
        "FROM envelope e CROSS JOIN reading r "
        "WHERE e.ingested_at >= ? AND e.ingested_at < ? AND r.envelope_id = e.id "
        "ORDER BY e.ingested_at DESC LIMIT 200000",
        2,
    ),
}


def period(kind: str, end: datetime) -> tuple[datetime, datetime, datetime]:
    """(start, end, now) of a report over a fill that ends at ``end``."""
    if kind == "meters":
        return datetime(end.year, end.month - 1 if end.month > 1 else 12, 1, tzinfo=UTC), end, end
    if kind == "alerts":
        # alerts read ALERT_LOOKBACK (90 days) before the period: the bound reads the same span
        return end - timedelta(days=30), end, end
    if kind == "health":
        now = datetime.now(UTC)
        return now - timedelta(days=30), now, now
    return end - timedelta(days=30), end, end


def child(what: str, kind: str, url: str, fmt: str = "csv") -> None:
    """Run one report (or its bound) and print {wall, cpu, rss_mb, base_mb, rows} as JSON."""
    from fill import END

    from fsm_server import reports
    from fsm_server.db import open_database, sql
    from fsm_server.reports.alerts import ALERT_LOOKBACK

    db = open_database(url, data_dir=Path("/tmp"))
    start, end, now = period(kind, END)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    backend = None if db.kind == "sqlite" else int(next(sql.rows(db, "SELECT pg_backend_pid()"))[0])
    rows = 0
    server = server_cpu(backend)
    gc.freeze()  # as `fsm-server report` does before it starts (fsm_server/cli/report.py)
    wall, cpu = time.perf_counter(), time.process_time()
    if what == "report":
        with open(os.devnull, "w", encoding="utf-8") as out:
            reports.stream(kind, fmt, out, start=start, end=end, now=now)
    else:
        query, nparams = BOUNDS[kind]
        since = start - ALERT_LOOKBACK if kind == "alerts" else start
        params = [sql.ts(db, since), sql.ts(db, end)][:nparams]
        for _ in sql.rows(db, query, params):
            rows += 1
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    cpu += server_cpu(backend) - server  # PostgreSQL's work is done in its backend process
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"wall": wall, "cpu": cpu, "rss_mb": rss, "base_mb": base, "rows": rows}))


def server_cpu(pid: int | None) -> float:
    """CPU seconds of a PostgreSQL backend process so far (the server runs on this machine)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(what: str, kind: str, url: str, fmt: str = "csv") -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", what, kind, url, fmt],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def ratio(report: dict[str, float], bound: dict[str, float], key: str) -> float:
    return report[key] / max(bound[key], 1e-3)


def show_plans(url: str) -> None:
    from fill import END

    from fsm_server.db import open_database, sql
    from fsm_server.reports import plans
    from fsm_server.reports.scope import Scope

    db = open_database(url, data_dir=Path("/tmp"))
    ids = [r[0] for r in sql.rows(db, "SELECT id FROM device ORDER BY id LIMIT 500")]
    scope = Scope(start=END - timedelta(days=31), end=END, now=END)
    for name, (query, params) in plans.report_queries(db, scope, ids).items():
        plan = sql.explain(db, query, params)
        bad = plans.forbidden(db, plan)
        print(f"  plan {name}: {'SCANS OR SORTS' if bad else 'seeks only'}")
        for line in plan:
            print(f"      {line[:160]}")
    db.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--only", choices=("sqlite", "postgresql"))
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--plans", action="store_true")
    ap.add_argument("--format", default="csv", choices=("csv", "html", "json"), help="what the reports write")
    ap.add_argument("--child", nargs=4, metavar=("WHAT", "KIND", "URL", "FORMAT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    from fill import filled

    from fsm_devtools.fixtures.db import postgres_admin_url
    from fsm_server.db import open_database

    sizes = [int(s) for s in args.sizes.split(",")]
    kinds = args.kinds.split(",")
    results: dict[tuple[str, int, str], tuple[dict[str, float], dict[str, float]]] = {}
    stack = contextlib.ExitStack()
    admin = ""
    for backend in [args.only] if args.only else ["sqlite", "postgresql"]:
        if backend == "postgresql" and not admin:
            admin = stack.enter_context(postgres_admin_url())
        for size in sizes:
            url = filled(backend, size, args.days, admin_url=admin)
            t = time.perf_counter()
            open_database(url, data_dir=Path("/tmp")).close()  # migrations (state built) before timing
            if backend == "postgresql":
                import psycopg

                with psycopg.connect(url, autocommit=True) as conn:
                    # what autovacuum does after a fill this size (PostgreSQL 13 and later vacuum
                    # tables that only grow too): statistics, and the visibility map that lets the
                    # reports read counters from the index alone
                    conn.execute("VACUUM (ANALYZE)")
            print(
                f"{backend} {size} devices x {args.days} days: ready in {time.perf_counter() - t:.0f} s",
                flush=True,
            )
            if args.plans:
                show_plans(url)
            for kind in kinds:
                bound = measure("bound", kind, url)
                report = measure("report", kind, url, args.format)
                results[(backend, size, kind)] = (report, bound)
                print(
                    f"  {kind:9} report {report['wall']:6.2f} s wall {report['cpu']:6.2f} s CPU "
                    f"{report['rss_mb']:4.0f} MB | bound {bound['wall']:6.2f} s wall "
                    f"{bound['cpu']:6.2f} s CPU "
                    f"({bound['rows']:.0f} rows) | x{ratio(report, bound, 'wall'):.2f} wall "
                    f"x{ratio(report, bound, 'cpu'):.2f} CPU",
                    flush=True,
                )
    stack.close()
    print()
    print("| report | database | devices | wall / CPU | bound wall / CPU | ratio wall / CPU | peak RSS |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for (backend, size, kind), (report, bound) in results.items():
        print(
            f"| {kind} | {backend} | {size:,} | {report['wall']:.2f} s / {report['cpu']:.2f} s | "
            f"{bound['wall']:.2f} s / {bound['cpu']:.2f} s | {ratio(report, bound, 'wall'):.2f} / "
            f"{ratio(report, bound, 'cpu'):.2f} | {report['rss_mb']:.0f} MB |"
        )
    if len(sizes) > 1:
        print()
        for backend in {b for b, _, _ in results}:
            for kind in kinds:
                lo, hi = results.get((backend, sizes[0], kind)), results.get((backend, sizes[-1], kind))
                if lo and hi:
                    print(
                        f"{backend} {kind}: {sizes[-1] // sizes[0]}x devices -> "
                        f"{ratio(hi[0], lo[0], 'cpu'):.1f}x CPU ({ratio(hi[0], lo[0], 'wall'):.1f}x wall), "
                        f"bound {ratio(hi[1], lo[1], 'cpu'):.1f}x CPU; "
                        f"RSS {lo[0]['rss_mb']:.0f} -> {hi[0]['rss_mb']:.0f} MB"
                    )


if __name__ == "__main__":
    main()
