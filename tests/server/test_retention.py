"""Retention: downsampled history gives the same meters figures, and a kill -9 while it runs loses
nothing that should stay (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from reports_fleet import Feeder, reading

from fsm_devtools.corpus import ClientKit, ServerKit
from fsm_server import reports
from fsm_server.db import sql
from fsm_server.db.connect import Database
from fsm_server.db.retention import apply_retention
from fsm_server.ingest.pipeline import Pipeline

T0 = datetime(2026, 9, 20, tzinfo=UTC)
DAYS = 45
#: Billing periods (day boundaries, as --from/--to give them) over the history.
PERIODS = [
    (datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)),
    (datetime(2026, 9, 22, tzinfo=UTC), datetime(2026, 10, 3, tzinfo=UTC)),
    (datetime(2026, 10, 7, tzinfo=UTC), datetime(2026, 10, 8, tzinfo=UTC)),
    (datetime(2026, 10, 12, tzinfo=UTC), datetime(2026, 10, 19, tzinfo=UTC)),
    (datetime(2026, 10, 25, tzinfo=UTC), datetime(2026, 11, 10, tzinfo=UTC)),
]


def h_total(n: int, q: int) -> int:
    """H: 25 pages every six hours; its board is replaced at 12:00 on day 12 (from 0 again)."""
    k = 4 * n + q
    return 20_000 + 25 * k if k < 4 * 12 + 2 else 5 + 25 * (k - 50)


@pytest.fixture
def history(pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit) -> Feeder:
    """Four reports a day for 45 days: H (a reset mid-day 12), W (a 32-bit counter that wraps
    on day 20), and an alert report repeating H's reading now and then; S is silent after day 30."""
    feed = Feeder(pipeline, client_kit, server_kit)
    for n in range(DAYS):
        for q in range(4):
            at = T0 + timedelta(days=n, hours=6 * q + 1)
            h = reading(
                "H1", at, ip="10.0.0.21", total=h_total(n, q), supplies=[("toner", "black", 80.0 - n)]
            )
            w_total = (2**32 - 8_000 + 100 * (4 * n + q)) % 2**32
            w = reading("W2", at + timedelta(minutes=2), ip="10.0.0.22", total=w_total, black=w_total)
            devices = [h, w]
            if n <= 30:
                devices.append(
                    reading("S3", at + timedelta(minutes=4), ip="10.0.0.23", total=7 * (4 * n + q))
                )
            feed.send(at + timedelta(minutes=10), devices)
            if q == 2 and n % 3 == 0:
                feed.send(at + timedelta(minutes=20), [h], kind="alert")
    return feed


def figures() -> dict[tuple[int, str, str], tuple[object, ...]]:
    """Every meters figure of every period, but the count of reads used."""
    out = {}
    for i, (start, end) in enumerate(PERIODS):
        m = reports.build("meters", start=start, end=end, now=end + timedelta(days=1))
        for r in m.rows:
            out[(i, r.device.serial or "", r.counter)] = (
                r.start_at,
                r.start_value,
                r.end_at,
                r.end_value,
                r.usage,
                r.flags,
            )
    return out


def per_day(db: Database) -> dict[tuple[int, str], int]:
    """Readings per (device, day) left."""
    out: dict[tuple[int, str], int] = {}
    for dev, at in sql.rows(db, "SELECT device_id, observed_at FROM reading"):
        key = (dev, sql.utc(at).date().isoformat())
        out[key] = out.get(key, 0) + 1
    return out


def test_downsampling_keeps_every_meters_figure(history: Feeder, db: Database) -> None:
    before, days_before = figures(), per_day(db)
    assert ("H1" in {k[1] for k in before}) and any("reset" in v[5] for v in before.values())
    assert any("wrap" in v[5] for v in before.values())
    result = apply_retention(db, raw_days=1, batch=50, now=datetime(2026, 12, 1, tzinfo=UTC))
    after = per_day(db)
    assert result.readings_removed > sum(days_before.values()) // 2
    assert set(after) == set(days_before)  # every device still has each of its days ...
    assert max(after.values()) <= 3  # ... as its last reading (and the reset's two) only
    assert figures() == before
    again = apply_retention(db, raw_days=1, batch=50, now=datetime(2026, 12, 1, tzinfo=UTC))
    assert again.readings_removed == 0 and per_day(db) == after


def test_readings_older_than_keep_days_are_removed(history: Feeder, db: Database) -> None:
    apply_retention(db, raw_days=30, keep_days=60, now=T0 + timedelta(days=80))
    days = {day for _, day in per_day(db)}
    assert min(days) == (T0 + timedelta(days=20)).date().isoformat()  # 60 days before now, midnight


def test_a_kill_during_downsampling_loses_nothing_that_should_stay(
    history: Feeder, db: Database, database_url: str, tmp_path: Path
) -> None:
    before, days_before = figures(), per_day(db)
    config = tmp_path / "server.toml"
    config.write_text("[retention]\nraw_days = 1\nbatch = 1\n")
    env = {**os.environ, "FSM_DATABASE_URL": database_url}
    command = [
        sys.executable,
        "-c",
        "from fsm_server.cli import main; main()",
        "--config",
        str(config),
        "--data-dir",
        str(tmp_path / "data"),
        "db",
        "retention",
        "--progress",
    ]
    for kills in range(3):
        proc = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
        assert proc.stderr is not None
        seen = 0
        for line in proc.stderr:
            seen += line.startswith("removed")
            if seen == 5 + 7 * kills:
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stderr.close()
        assert proc.returncode == -signal.SIGKILL, f"retention ended before it was killed ({seen} batches)"
        assert set(per_day(db)) == set(days_before)
        assert figures() == before
    finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert figures() == before and max(per_day(db).values()) <= 3
