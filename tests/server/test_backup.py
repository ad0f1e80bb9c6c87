"""Backup and restore: online snapshots while ingest loads, round trips on SQLite and PostgreSQL and
across them, the key never in the clear, checks before anything changes, schedule and rotation."""

from __future__ import annotations

import hashlib
import threading
import time
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import psycopg
import pytest
from click.testing import CliRunner
from reports_fleet import reading, sealed_mail

from fsm_devtools.corpus import ClientKit, ServerKit
from fsm_devtools.fixtures.db import PrivatePostgres
from fsm_server import reports
from fsm_server.backup import ArchiveReader, list_backups, restore, row_counts, take_backup, verify
from fsm_server.backup.restore import read_key
from fsm_server.backup.rotation import keep
from fsm_server.backup.schedule import BackupPlan, BackupService, next_due, run_backup, status
from fsm_server.cli import main
from fsm_server.config import BackupSection, RuleSection, ServerConfig
from fsm_server.db import migrations, open_database
from fsm_server.db.connect import Database
from fsm_server.db.models import BackupRun, Envelope, Reading
from fsm_server.errors import BackupCorrupt, BackupError, TargetNotEmpty
from fsm_server.events import EventService, Notification
from fsm_server.ingest.pipeline import Pipeline
from fsm_server.registry import Registry

T0 = datetime(2025, 3, 1, tzinfo=UTC)
SERIALS = [f"SN{i:03d}" for i in range(8)]


def fleet_mails(client: ClientKit, server: ServerKit, count: int, *, start_seq: int = 1) -> list[bytes]:
    """``count`` daily reports of 8 printers (counters, supplies, an alert now and then), sealed."""
    out = []
    for n in range(count):
        seq = start_seq + n
        at = T0 + timedelta(hours=6 * seq)
        devices = [
            reading(
                s,
                at,
                total=10_000 + 37 * seq + i,
                supplies=[("toner", "black", 90 - seq % 80)],
                alerts=["jam"] if (seq + i) % 9 == 0 else [],
            )
            for i, s in enumerate(SERIALS)
        ]
        out.append(sealed_mail(client, server, seq, at, devices))
    return out


def load(db: Database, client: ClientKit, server: ServerKit, mails: list[bytes]) -> list[str]:
    registry = Registry(db)
    if client.name not in {c.name for c in registry.list()}:
        registry.add(client.name, client.pub_path)
    pipeline = Pipeline(db, registry, server.encryption_key)
    return [pipeline.process(m, source="test").outcome for m in mails]


@pytest.fixture
def second_url(db_backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """An empty database of the same kind as ``db``, to restore into."""
    if db_backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'restored.db'}"
        return
    pg: PrivatePostgres = request.getfixturevalue("private_postgres")
    yield from _other_postgres(pg, "restore")


def _other_postgres(pg: PrivatePostgres, suffix: str) -> Iterator[str]:
    base = pg.ensure()
    name = f"{pg.name}_{suffix}"
    url = f"{base.rpartition('/')[0]}/{name}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield url
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def meters_csv(db: Database, now: datetime) -> str:
    migrations.migrate(db)  # binds the models to this database
    data = reports.build("meters", start=T0, end=T0 + timedelta(days=60), now=now)
    return reports.render(data, "csv")


def test_backup_while_ingest_loads_restores_every_report_and_the_same_numbers(
    db: Database,
    database_url: str,
    second_url: str,
    client_kit: ClientKit,
    server_kit: ServerKit,
    tmp_path: Path,
) -> None:
    mails = fleet_mails(client_kit, server_kit, 120)
    assert set(load(db, client_kit, server_kit, mails[:40])) == {"loaded"}
    loaded = [40]
    # ingest goes on in another connection while the backup reads its snapshot
    writer_db = open_database(database_url, data_dir=tmp_path)

    def ingest() -> None:
        registry = Registry(writer_db)
        pipeline = Pipeline(writer_db, registry, server_kit.encryption_key)
        for m in mails[40:]:
            assert pipeline.process(m, source="test").outcome == "loaded"
            loaded[0] += 1
        writer_db.close()

    loader = threading.Thread(target=ingest)
    loader.start()
    while loaded[0] < 50:
        time.sleep(0.005)
    at_start = loaded[0]
    result = take_backup(db, tmp_path / "backups")
    at_end = loaded[0]
    loader.join()
    writer_db.close()  # the connection its opening made in this thread
    assert at_start < 120 and at_end > at_start, "ingest must be loading while the backup runs"
    migrations.migrate(db)
    assert Envelope.select().count() == 120

    target = open_database(second_url, data_dir=tmp_path, migrate=False)
    restored = restore(result.path, target, force=False)
    counts = {t.name: t.rows for t in result.manifest.tables}
    assert restored.rows == counts == row_counts(target)
    # the snapshot holds whole reports 1..k: each with every reading it carried
    migrations.migrate(target)
    seqs = sorted(e.seq for e in Envelope.select())
    k = len(seqs)
    assert at_start <= k <= 120 and seqs == list(range(1, k + 1))
    for e in Envelope.select():
        assert e.devices == len(SERIALS) == Reading.select().where(Reading.envelope == e.id).count()
    assert counts["reading"] == k * len(SERIALS)
    assert counts["counter_value"] == k * len(SERIALS) * 2
    # the reports of the restored database give the numbers of one that loaded reports 1..k
    reference = open_database(f"sqlite:///{tmp_path / 'reference.db'}", data_dir=tmp_path)
    assert set(load(reference, client_kit, server_kit, mails[:k])) == {"loaded"}
    now = T0 + timedelta(days=61)
    want = meters_csv(reference, now)
    assert meters_csv(target, now) == want and want.count("\n") > len(SERIALS)
    reference.close()
    target.close()


def test_sqlite_backup_restored_into_postgresql_then_ingest_continues_loading_nothing_twice(
    tmp_path: Path,
    private_postgres: PrivatePostgres,
    client_kit: ClientKit,
    server_kit: ServerKit,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old_mailbox = fleet_mails(client_kit, server_kit, 30)
    data = tmp_path / "server"
    with open_database("", data_dir=data) as sqlite_db:
        assert set(load(sqlite_db, client_kit, server_kit, old_mailbox)) == {"loaded"}
        before = row_counts(sqlite_db)
    runner = CliRunner()
    out = runner.invoke(main, ["--data-dir", str(data), "backup", "--json"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    path = Path(msgspec.json.decode(out.output)["path"])
    for pg_url in _other_postgres(private_postgres, "moved"):
        monkeypatch.setenv("FSM_DATABASE_URL", pg_url)
        out = runner.invoke(main, ["--data-dir", str(data), "restore", str(path)], catch_exceptions=False)
        assert out.exit_code == 0, out.output
        assert "into postgresql" in out.output
        with open_database(pg_url, data_dir=data) as pg:
            after = row_counts(pg)
            assert {t: n for t, n in after.items() if t != "backup_run"} == {
                t: n for t, n in before.items() if t != "backup_run"
            }
            # re-importing the old mailbox loads nothing twice; new reports get new ids
            assert set(load(pg, client_kit, server_kit, old_mailbox)) == {"duplicate"}
            new = fleet_mails(client_kit, server_kit, 5, start_seq=31)
            assert set(load(pg, client_kit, server_kit, new)) == {"loaded"}
            assert row_counts(pg)["reading"] == before["reading"] + 5 * len(SERIALS)
        # a second restore into the database that now holds data is refused, then forced
        out = runner.invoke(main, ["--data-dir", str(data), "restore", str(path)])
        assert out.exit_code == 1 and "holds data" in out.output and "--force" in out.output
        out = runner.invoke(main, ["--data-dir", str(data), "restore", "--force", str(path)])
        assert out.exit_code == 0, out.output


def test_postgresql_backup_restores_into_sqlite(
    db: Database, tmp_path: Path, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    load(db, client_kit, server_kit, fleet_mails(client_kit, server_kit, 6))
    result = take_backup(db, tmp_path / "b")
    assert result.manifest.source == db.kind
    checked = verify(result.path)  # a scratch SQLite database, whichever wrote it
    assert checked.rows == {t.name: t.rows for t in result.manifest.tables}
    assert checked.rows["supply_value"] == 6 * len(SERIALS)


def _key_forms(key_path: Path) -> list[bytes]:
    pem = key_path.read_bytes()
    body = b"".join(line for line in pem.splitlines() if not line.startswith(b"-----"))
    return [pem, body, body[:24]]


def test_the_server_key_is_never_in_a_backup_in_the_clear(
    db: Database, tmp_path: Path, server_kit: ServerKit
) -> None:
    plain = take_backup(db, tmp_path / "b")
    sealed = take_backup(db, tmp_path / "b", key_file=server_kit.key_path, passphrase="correct horse battery")
    for result in (plain, sealed):
        raw = result.path.read_bytes()
        with zipfile.ZipFile(result.path) as z:
            everything = raw + b"".join(z.read(n) for n in z.namelist())
        for form in _key_forms(server_kit.key_path):
            assert form not in everything
    assert plain.manifest.keys is None and sealed.manifest.keys is not None
    with pytest.raises(BackupError, match="passphrase does not open"):
        read_key(sealed.path, "wrong horse battery")
    assert read_key(sealed.path, "correct horse battery") == server_kit.key_path.read_bytes()
    with pytest.raises(BackupError, match="at least 12"):
        take_backup(db, tmp_path / "b", key_file=server_kit.key_path, passphrase="short")


def test_restore_with_keys_asks_the_passphrase_and_writes_the_key(
    tmp_path: Path, server_kit: ServerKit
) -> None:
    data = tmp_path / "server"
    runner = CliRunner()
    with open_database("", data_dir=data):
        pass
    (data / "keys").mkdir()
    (data / "keys" / "server.key").write_bytes(server_kit.key_path.read_bytes())
    (data / "keys" / "server.key").chmod(0o600)
    out = runner.invoke(
        main,
        ["--data-dir", str(data), "backup", "--with-keys"],
        input="correct horse battery\ncorrect horse battery\n",
    )
    assert out.exit_code == 0, out.output
    [path] = list_backups(data / "backups")
    fresh = tmp_path / "fresh"
    out = runner.invoke(
        main, ["--data-dir", str(fresh), "restore", "--with-keys", str(path)], input="not the passphrase\n"
    )
    assert out.exit_code == 1 and "passphrase does not open" in out.output
    assert not (fresh / "keys").exists()
    out = runner.invoke(
        main, ["--data-dir", str(fresh), "restore", "--with-keys", str(path)], input="correct horse battery\n"
    )
    assert out.exit_code == 0, out.output
    key = fresh / "keys" / "server.key"
    assert key.read_bytes() == server_kit.key_path.read_bytes() and key.stat().st_mode & 0o077 == 0


def test_a_damaged_backup_is_refused_before_the_target_changes(
    db: Database, tmp_path: Path, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    load(db, client_kit, server_kit, fleet_mails(client_kit, server_kit, 4))
    result = take_backup(db, tmp_path / "b")
    # a changed table member, written back as a valid ZIP: only the manifest's sha256 can tell
    damaged = tmp_path / "damaged.zip"
    with zipfile.ZipFile(result.path) as src, zipfile.ZipFile(damaged, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.endswith("-reading.jsonl"):
                data = data.replace(b'"idle"', b'"down"', 1)
            dst.writestr(item, data)
    target = open_database(f"sqlite:///{tmp_path / 't.db'}", data_dir=tmp_path)
    before = row_counts(target)
    with pytest.raises(BackupCorrupt, match="'reading'"):
        restore(damaged, target)
    cut = tmp_path / "cut.zip"
    cut.write_bytes(result.path.read_bytes()[: result.size // 2])
    with pytest.raises(BackupCorrupt, match="not a complete fsm backup"):
        restore(cut, target)
    # the .sha256 beside the file catches a change anywhere in it
    result.path.write_bytes(result.path.read_bytes().replace(b"manifest.json", b"manifest.jsoN", 1))
    with pytest.raises(BackupCorrupt):
        ArchiveReader(result.path).check()
    assert row_counts(target) == before
    target.close()


def test_a_target_holding_data_is_refused_unless_forced(
    db: Database, tmp_path: Path, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    load(db, client_kit, server_kit, fleet_mails(client_kit, server_kit, 3))
    result = take_backup(db, tmp_path / "b")
    load(db, client_kit, server_kit, fleet_mails(client_kit, server_kit, 2, start_seq=4))
    with pytest.raises(TargetNotEmpty, match="holds data"):
        restore(result.path, db)
    assert row_counts(db)["envelope"] == 5
    replaced = restore(result.path, db, force=True)
    assert replaced.replaced > 0 and row_counts(db)["envelope"] == 3


def test_a_backup_of_an_older_schema_is_migrated_after_its_rows_are_loaded(
    database_url: str, tmp_path: Path, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    before_m009 = [m.__name__ for m in migrations.MIGRATIONS if m.__name__ != "m009_backup_runs"]
    old = open_database(database_url, data_dir=tmp_path, migrate=False)
    migrations.migrate(old, only=before_m009)
    load(old, client_kit, server_kit, fleet_mails(client_kit, server_kit, 3))
    assert "backup_run" not in old.peewee.get_tables()
    result = take_backup(old, tmp_path / "b")
    assert result.manifest.schema == before_m009
    old.close()
    restored = verify(result.path)
    assert restored.migrated == ["m009_backup_runs"] and restored.rows["backup_run"] == 0
    assert restored.rows["envelope"] == 3


def test_a_newer_schema_is_refused(db: Database, tmp_path: Path) -> None:
    result = take_backup(db, tmp_path / "b")
    with zipfile.ZipFile(result.path) as src:
        manifest = msgspec.json.decode(src.read("manifest.json"))
        members = {i.filename: src.read(i) for i in src.infolist()}
    manifest["schema"].append("m999_from_the_future")
    members["manifest.json"] = msgspec.json.encode(manifest)
    newer = tmp_path / "newer.zip"
    with zipfile.ZipFile(newer, "w") as dst:
        for name, data in members.items():
            dst.writestr(name, data)
    with pytest.raises(BackupError, match="m999_from_the_future"):
        verify(newer)


def test_rotation_keeps_the_newest_of_each_day_week_and_month() -> None:
    start = datetime(2025, 1, 1, 3, tzinfo=UTC)
    backups = [(Path(f"b{i}"), start + timedelta(hours=12 * i)) for i in range(2 * 120)]  # twice a day
    kept = keep(backups, daily=7, weekly=4, monthly=3, tz=UTC)
    newest = {p: t for p, t in backups}
    days = sorted({newest[p].date() for p in kept})
    assert max(backups, key=lambda b: b[1])[0] in kept
    # 7 days + up to 4 weeks' and 3 months' newest (overlapping the days)
    assert len([d for d in days if d >= days[-1] - timedelta(days=6)]) == 7
    assert len(kept) <= 7 + 4 + 3
    months = {(newest[p].year, newest[p].month) for p in kept}
    assert len(months) == 3
    assert keep([], daily=7, weekly=4, monthly=12) == set()


def test_next_due_takes_a_missed_backup_at_once_and_retries_a_failed_one_after_an_hour() -> None:
    now = datetime(2025, 3, 10, 12, tzinfo=UTC)
    hour = now.astimezone().hour - 1 if now.astimezone().hour > 0 else 0
    assert next_due(now, hour, None) == now
    ok = BackupRun(finished_at=now - timedelta(minutes=5), status="ok")
    assert next_due(now, hour, ok) > now + timedelta(hours=20)
    failed = BackupRun(finished_at=now - timedelta(minutes=5), status="failed")
    assert next_due(now, hour, failed) == now + timedelta(minutes=55)
    yesterday = BackupRun(finished_at=now - timedelta(days=2), status="ok")
    assert next_due(now, hour, yesterday) == now


def test_the_schedule_backs_up_rotates_and_a_failure_opens_a_backup_event(
    db: Database, tmp_path: Path
) -> None:
    clock = [datetime(2025, 3, 10, 12, tzinfo=UTC)]
    plan = BackupPlan(
        directory=tmp_path / "backups", settings=BackupSection(keep_daily=2, keep_weekly=0, keep_monthly=0)
    )
    service = BackupService(db, plan, now=lambda: clock[0])
    assert service.step() > clock[0]
    assert service.taken == 1 and len(list_backups(plan.directory)) == 1
    assert service.step() > clock[0] and service.taken == 1  # not due again the same day
    s = status(plan, now=clock[0])
    assert s.last_status == "ok" and not s.missed and not s.failed and s.files == 1
    # the backup directory becomes unwritable: the attempt fails, is recorded, and the rule opens
    bad = BackupPlan(directory=tmp_path / "file-not-dir", settings=BackupSection())
    bad.directory.write_text("x")
    with pytest.raises(BackupError):
        run_backup(db, bad, trigger="schedule", now=lambda: clock[0])
    config = ServerConfig(rules=[RuleSection(name="backups", when="backup", to=["ops@dealer.test"])])
    events = EventService(db, config, now=lambda: clock[0])
    events.evaluate()
    [n] = Notification.select()
    assert n.key == "backup:failed" and "backup failed" in n.subject
    # two days on without a backup: missed as well
    clock[0] += timedelta(days=2)
    events.evaluate()
    assert {x.key for x in Notification.select()} == {"backup:failed", "backup:missed"}
    health = reports.build("health", now=clock[0])
    assert health.backup is not None and health.backup.missed and health.backup.failed  # type: ignore[union-attr]
    assert "last attempt failed" in reports.render(health, "html")


def test_backup_status_and_verify_commands(tmp_path: Path) -> None:
    data = tmp_path / "server"
    with open_database("", data_dir=data):
        pass
    runner = CliRunner()
    assert runner.invoke(main, ["--data-dir", str(data), "backup"]).exit_code == 0
    out = runner.invoke(main, ["--data-dir", str(data), "backup", "status", "--json"])
    assert out.exit_code == 0, out.output
    s = msgspec.json.decode(out.output)
    assert s["last_status"] == "ok" and s["files"] == 1
    out = runner.invoke(main, ["--data-dir", str(data), "backup", "verify", s["newest_file"]])
    assert out.exit_code == 0 and "checksums match" in out.output
    digest = hashlib.sha256(Path(s["newest_file"]).read_bytes()).hexdigest()
    assert Path(s["newest_file"] + ".sha256").read_text().split()[0] == digest
