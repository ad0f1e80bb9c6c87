"""Backup and restore time of a fleet database, beside the engines' own tools on the same data.

    .venv/bin/python bench/backup.py [--devices 1000] [--days 90] [--only sqlite|postgresql]
                                     [--pg-admin postgresql://postgres@127.0.0.1:5432/postgres]

Fills a database through the real pipeline (one sealed report a day of D devices, each with 12
counters and 6 supplies), then times:

* fsm: `take_backup` (snapshot -> ZIP of JSON lines, fsynced) and `restore` into an empty database
  (checksums checked first, counts and integrity checked after);
* SQLite: `sqlite3 SRC ".backup DST"` (a page copy; restoring is copying the file back);
* PostgreSQL: `pg_dump -Fc` and `pg_restore` into an empty database (the client must match the
  server's major version);
* fsm across: the SQLite backup restored into PostgreSQL.

Prints seconds, sizes and the ratio of fsm to the engine's tool.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg

from fsm_devtools.corpus import mails_for, make_client, make_report, make_server, seal
from fsm_server.backup import restore, take_backup
from fsm_server.db import open_database
from fsm_server.db.connect import Database
from fsm_server.ingest.pipeline import Pipeline
from fsm_server.registry import Registry


def fill(db: Database, work: Path, devices: int, days: int) -> int:
    server, client = make_server(work / "sk"), make_client(work / "ck", "bench")
    registry = Registry(db)
    registry.add(client.name, client.pub_path)
    pipeline = Pipeline(db, registry, server.encryption_key)
    start = datetime(2025, 1, 1, 6, tzinfo=UTC)
    for day in range(days):
        report = make_report(client.name, day + 1, devices=devices, created_at=start + timedelta(days=day))
        [mail] = mails_for(seal(report, client, server))
        assert pipeline.process(mail, source="bench").outcome == "loaded"
    return devices * days


def timed(fn, *args, **kw):  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t


def pg_database(admin: str, name: str) -> str:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{admin.rpartition('/')[0]}/{name}"


def run(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--only", choices=("sqlite", "postgresql"))
    ap.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fsm-bench-backup-"))
    rows = []
    try:
        if args.only != "postgresql":
            src = open_database(f"sqlite:///{work / 'src.db'}", data_dir=work)
            _, t_fill = timed(fill, src, work, args.devices, args.days)
            print(
                f"sqlite: filled {args.devices} devices x {args.days} days through the pipeline "
                f"in {t_fill:.0f} s"
            )
            res, t_b = timed(take_backup, src, work / "b-sqlite")
            dst = open_database(f"sqlite:///{work / 'dst.db'}", data_dir=work, migrate=False)
            _, t_r = timed(restore, res.path, dst)
            dst.close()
            t_nb = run(["sqlite3", str(work / "src.db"), f".backup {work / 'copy.db'}"])
            t_nr = timed(shutil.copyfile, work / "copy.db", work / "copy2.db")[1]
            rows.append(
                (
                    "sqlite",
                    res.manifest.total_rows,
                    res.size,
                    t_b,
                    t_r,
                    (work / "copy.db").stat().st_size,
                    t_nb,
                    t_nr,
                    "sqlite3 .backup / file copy",
                )
            )
            if args.only is None:
                url = pg_database(args.pg_admin, "fsm_bench_across")
                pg = open_database(url, data_dir=work, migrate=False)
                _, t_x = timed(restore, res.path, pg)
                pg.close()
                print(f"sqlite backup restored into postgresql: {t_x:.1f} s")
            src.close()
        if args.only != "sqlite":
            url = pg_database(args.pg_admin, "fsm_bench_src")
            src = open_database(url, data_dir=work)
            _, t_fill = timed(fill, src, work / "pg", args.devices, args.days)
            print(f"postgresql: filled in {t_fill:.0f} s")
            res, t_b = timed(take_backup, src, work / "b-pg")
            dst_url = pg_database(args.pg_admin, "fsm_bench_dst")
            dst = open_database(dst_url, data_dir=work, migrate=False)
            _, t_r = timed(restore, res.path, dst)
            dst.close()
            dump = work / "pg.dump"
            t_nb = run(["pg_dump", "-Fc", "-f", str(dump), url])
            native_url = pg_database(args.pg_admin, "fsm_bench_native")
            t_nr = run(["pg_restore", "-d", native_url, str(dump)])
            rows.append(
                (
                    "postgresql",
                    res.manifest.total_rows,
                    res.size,
                    t_b,
                    t_r,
                    dump.stat().st_size,
                    t_nb,
                    t_nr,
                    "pg_dump -Fc / pg_restore",
                )
            )
            src.close()
            for name in ("fsm_bench_src", "fsm_bench_dst", "fsm_bench_native", "fsm_bench_across"):
                with psycopg.connect(args.pg_admin, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"\n{'db':<11}{'rows':>10}{'fsm MB':>8}{'backup s':>10}{'restore s':>10}{'tool MB':>9}"
        f"{'tool bk s':>10}{'tool rs s':>10}{'x backup':>9}{'x restore':>10}  tool"
    )
    for db, n, size, tb, tr, nsize, nb, nr, tool in rows:
        print(
            f"{db:<11}{n:>10}{size / 1e6:>8.1f}{tb:>10.2f}{tr:>10.2f}{nsize / 1e6:>9.1f}{nb:>10.2f}"
            f"{nr:>10.2f}{tb / nb:>9.1f}{tr / max(nr, 1e-3):>10.1f}  {tool}"
        )


if __name__ == "__main__":
    main()
