"""The local store: migrations, readings, devices, alert state, schedule state."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fsm_client.errors import StoreError
from fsm_client.store import MIGRATIONS, Store
from fsm_protocol.schema import Device, Status

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "client.sqlite"


@pytest.fixture
def fresh_store(store_path: Path):
    with Store.open(store_path) as store:
        yield store


def reading(ip: str = "192.0.2.10", *, at: datetime = T0, **kw: object) -> Device:
    return Device(ip=ip, observed_at=at, serial="SN1", model="MX-1", counters={"total": 100}, **kw)  # type: ignore[arg-type]


def test_open_creates_the_file_in_wal_mode_with_every_migration_recorded(store_path: Path) -> None:
    with Store.open(store_path) as store:
        assert store.applied_migrations() == [name for name, _ in MIGRATIONS]
    db = sqlite3.connect(store_path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_reopening_applies_no_migration_twice(store_path: Path) -> None:
    Store.open(store_path).close()
    with Store.open(store_path) as store:
        assert store.migrate() == []


def test_a_store_migrated_by_a_newer_client_is_refused(store_path: Path) -> None:
    Store.open(store_path).close()
    db = sqlite3.connect(store_path)
    db.execute("INSERT INTO migrations VALUES ('999_future', '2030-01-01')")
    db.commit()
    with pytest.raises(StoreError, match="999_future") as err:
        Store.open(store_path)
    assert "data dir" in err.value.hint


def test_an_unwritable_location_says_which_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match="cannot open the local store"):
        Store.open(blocker / "sub" / "client.sqlite")


def test_a_read_only_open_creates_nothing_writes_nothing_and_names_a_missing_store(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"no local store at .*client\.sqlite") as missing:
        Store.in_data_dir(tmp_path / "typo", readonly=True)
    assert "--data-dir" in (missing.value.hint or "") and not (tmp_path / "typo").exists()
    with Store.in_data_dir(tmp_path / "data") as store:
        store.add_reading(reading(), kind="scan")
    with Store.in_data_dir(tmp_path / "data", readonly=True) as store:
        assert [r.device.ip for r in store.readings()] == ["192.0.2.10"]
        with pytest.raises(StoreError, match="read-only"):
            store.set_meta("x", "y")


def test_a_read_only_open_of_a_store_not_yet_migrated_says_to_run_once(store_path: Path) -> None:
    with Store.open(store_path) as store:
        store._db.execute("DELETE FROM migrations WHERE name = ?", (MIGRATIONS[-1][0],))
    with pytest.raises(StoreError, match=f"not migrated yet \\({MIGRATIONS[-1][0]}\\)") as old:
        Store.open_readonly(store_path)
    assert "run --once" in (old.value.hint or "")


def test_a_reading_round_trips_as_the_schema_device(fresh_store: Store) -> None:
    dev = reading(status=Status(printer="idle", conditions=["low_toner"]))
    rid = fresh_store.add_reading(dev, kind="scan")
    [stored] = fresh_store.unreported_readings()
    assert (stored.id, stored.kind, stored.device, stored.reported_seq) == (rid, "scan", dev, None)


def test_devices_seen_track_first_and_last_seen_and_misses(fresh_store: Store) -> None:
    fresh_store.add_reading(reading(at=T0), kind="scan")
    fresh_store.add_reading(reading(at=T0 + timedelta(hours=1)), kind="poll")
    fresh_store.add_reading(
        Device(ip="192.0.2.10", observed_at=T0 + timedelta(hours=2), reachability="unreachable"), kind="poll"
    )
    [dev] = fresh_store.devices()
    assert dev.serial == "SN1"  # an unreachable read does not erase what is known
    assert (dev.first_seen, dev.last_seen) == (T0, T0 + timedelta(hours=1))
    assert (dev.last_reachability, dev.misses) == ("unreachable", 1)
    fresh_store.add_reading(reading(at=T0 + timedelta(hours=3)), kind="poll")
    assert fresh_store.devices()[0].misses == 0


def test_a_reading_goes_into_exactly_one_envelope(fresh_store: Store) -> None:
    rid = fresh_store.add_reading(reading(), kind="scan")
    with fresh_store.atomic():
        seq = fresh_store.next_seq()
        fresh_store.add_envelope(seq, kind="periodic", created_at=T0, plaintext=b"{}", chunks=[b"x"])
        fresh_store.mark_reported([rid], seq)
    assert fresh_store.unreported_readings() == []
    assert [r.id for r in fresh_store.readings(seq=seq)] == [rid]
    with pytest.raises(StoreError, match="already in an envelope"), fresh_store.atomic():
        seq2 = fresh_store.next_seq()
        fresh_store.add_envelope(seq2, kind="periodic", created_at=T0, plaintext=b"{}", chunks=[b"y"])
        fresh_store.mark_reported([rid], seq2)
    # the failed transaction left nothing behind, not even its number
    assert fresh_store.last_seq() == seq
    assert [e.seq for e in fresh_store.outbox()] == [seq]


def test_nested_atomic_is_a_savepoint(fresh_store: Store) -> None:
    with fresh_store.atomic():
        fresh_store.add_reading(reading("192.0.2.1"), kind="scan")
        with pytest.raises(RuntimeError), fresh_store.atomic():
            fresh_store.add_reading(reading("192.0.2.2"), kind="scan")
            raise RuntimeError("inner step fails")
    assert [r.device.ip for r in fresh_store.readings()] == ["192.0.2.1"]


def test_sequence_numbers_need_a_transaction(fresh_store: Store) -> None:
    with pytest.raises(StoreError, match=r"inside Store\.atomic"):
        fresh_store.next_seq()


def test_naive_timestamps_are_refused(fresh_store: Store) -> None:
    with pytest.raises(StoreError, match="no time zone"):
        fresh_store.set_schedule_state("report", last_due=datetime(2026, 1, 1), last_run=None)


def test_alert_state_is_raised_and_cleared_with_the_envelope_numbers(fresh_store: Store) -> None:
    with fresh_store.atomic():
        fresh_store.set_alert_state("192.0.2.10", "jam", active=True, at=T0, seq=4)
    [row] = fresh_store.alert_states(active_only=True)
    assert (row.condition, row.raised_seq, row.since) == ("jam", 4, T0)
    with fresh_store.atomic():
        fresh_store.set_alert_state("192.0.2.10", "jam", active=False, at=T0 + timedelta(minutes=5), seq=5)
    assert fresh_store.alert_states(active_only=True) == []
    [row] = fresh_store.alert_states("192.0.2.10")
    assert (row.active, row.raised_seq, row.cleared_seq) == (False, 4, 5)


def test_schedule_state_survives_reopening(store_path: Path) -> None:
    with Store.open(store_path) as store:
        store.set_schedule_state("report", last_due=T0, last_run=T0 + timedelta(seconds=3))
    with Store.open(store_path) as store:
        assert store.schedule_state("report") == (T0, T0 + timedelta(seconds=3))
        assert store.schedule_state("discovery") is None


def test_a_store_from_an_older_client_is_migrated_step_by_step(store_path: Path) -> None:
    from fsm_client.store import _m001_initial, _NoScript

    store_path.parent.mkdir(parents=True)
    db = sqlite3.connect(store_path, isolation_level=None)
    db.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    _m001_initial(_NoScript(db))
    db.execute("INSERT INTO migrations VALUES ('001_initial', '2026-01-01')")
    db.execute(
        "INSERT INTO devices (ip, first_seen, last_seen, last_reachability) VALUES"
        " ('192.0.2.7', '2026-01-01', '2026-01-01', 'ok')"
    )
    db.close()
    with Store.open(store_path) as store:
        assert store.applied_migrations() == [name for name, _ in MIGRATIONS]
        assert [d.ip for d in store.devices()] == ["192.0.2.7"]
        assert store.devices(discovered=True) == []
        store.mark_discovered("192.0.2.7")
        assert [d.ip for d in store.devices(discovered=True)] == ["192.0.2.7"]
