"""State kept at ingest (device_latest, supply_latest) against the state rebuilt from the readings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner
from reports_fleet import Feeder, reading

from fsm_devtools.corpus import ClientKit, ServerKit
from fsm_server import latest
from fsm_server.cli import main
from fsm_server.db import sql, state
from fsm_server.db.connect import Database
from fsm_server.ingest.pipeline import Pipeline

T0 = datetime(2026, 10, 1, 9, tzinfo=UTC)


def snapshot(db: Database) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    return (
        list(sql.rows(db, "SELECT * FROM device_latest ORDER BY device_id")),
        list(sql.rows(db, "SELECT * FROM supply_latest ORDER BY device_id, key")),
    )


def black(n: int) -> float:
    """Device A's black toner: 3 points a day from 90, replaced on day 8 (back to 100)."""
    return 90.0 - 3 * n if n < 8 else 100.0 - 3 * (n - 8)


@pytest.fixture
def fed(pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit) -> Feeder:
    """Twelve days of A (a replacement on day 8, a jam on day 5) and B (unreachable on day 10);
    day 4's report of B arrives late, after day 9's."""
    feed = Feeder(pipeline, client_kit, server_kit)
    late = None
    for n in range(12):
        at = T0 + timedelta(days=n)
        a = reading(
            "A1",
            at,
            total=1000 + 50 * n,
            alerts=["jam"] if n == 5 else [],
            supplies=[("toner", "black", black(n)), ("drum", None, 80.0)],
        )
        b = reading(
            "B2",
            at + timedelta(minutes=1),
            ip="10.0.0.12",
            total=10 + n,
            supplies=[("toner", "black", 60.0 - n)],
            conditions=["door_open"] if n == 11 else [],
        )
        if n == 10:
            b = msgspec.structs.replace(b, reachability="unreachable", supplies=[], counters={})
        if n == 4:
            late = b
            feed.send(at, [a])
        else:
            feed.send(at, [a, b])
        if n == 9:
            assert late is not None
            feed.send(at + timedelta(hours=1), [late], kind="alert")
    return feed


def test_state_kept_at_ingest_equals_the_state_rebuilt_from_the_readings(fed: Feeder, db: Database) -> None:
    kept = snapshot(db)
    assert len(kept[0]) == 2 and len(kept[1]) == 3
    with db.atomic():
        assert state.rebuild(db) == 2
    assert snapshot(db) == kept
    with db.atomic():  # and a device at a time, as a late report does it
        state.rebuild(db, [1])
    assert snapshot(db) == kept


def test_the_latest_state_gives_one_row_per_device_and_supply_with_a_forecast(fed: Feeder) -> None:
    devices = {d.device.serial: d for d in latest.devices()}
    a, b = devices["A1"], devices["B2"]
    assert (a.observed_at, a.total, a.alerts, a.reachability) == (T0 + timedelta(days=11), 1550, [], "ok")
    assert b.conditions == ["door_open"] and b.total == 21  # its newest reading, not the late one

    supplies = {(s.device.serial, s.supply_kind): s for s in latest.supplies()}
    toner = supplies[("A1", "toner")]
    assert toner.percent == black(11) and toner.replaced_at == T0 + timedelta(days=8)
    assert toner.points == 4  # the fit holds the levels since the replacement only
    assert toner.rate_per_day == pytest.approx(3.0) and toner.days_remaining == pytest.approx(91.0 / 3)
    assert supplies[("A1", "drum")].days_remaining is None  # not falling
    # B's toner: the late day-4 level joined the fit in time order, the unreachable day 10 added none
    b_toner = supplies[("B2", "toner")]
    assert b_toner.points == 11 and b_toner.rate_per_day == pytest.approx(1.0)


def test_db_rebuild_state_recomputes_what_ingest_keeps(
    fed: Feeder, db: Database, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = snapshot(db)
    db.peewee.execute_sql("DELETE FROM supply_latest")
    db.peewee.execute_sql("UPDATE device_latest SET reachability = 'stale'")
    monkeypatch.setenv("FSM_DATABASE_URL", database_url)
    result = CliRunner().invoke(main, ["--data-dir", str(tmp_path / "data"), "db", "rebuild-state"])
    assert result.exit_code == 0, result.output
    assert "state of 2 devices rebuilt" in result.stderr
    assert snapshot(db) == kept
