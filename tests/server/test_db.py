"""The database layer: migrations, error translation, the device identity rules."""

from __future__ import annotations

import inspect
from pathlib import Path

import peewee
import pytest

from fsm_server.db import migrations, open_database
from fsm_server.db.connect import PEEWEE_ERRORS, Database, DuplicateKey, redact, translated
from fsm_server.errors import DatabaseError


def test_migrations_are_applied_in_order_recorded_and_not_repeated(db: Database) -> None:
    names = [m.__name__ for m in migrations.MIGRATIONS]
    assert migrations.applied(db) == names
    assert migrations.migrate(db) == []  # a second start applies nothing


def test_migration_5_adds_the_sealing_column_to_a_database_made_before_it(db: Database) -> None:
    pw = db.peewee
    pw.execute_sql("ALTER TABLE envelope DROP COLUMN sealing")
    pw.execute_sql("DELETE FROM migrations WHERE name = 'm005_envelope_sealing'")
    assert "sealing" not in {c.name for c in pw.get_columns("envelope")}
    assert migrations.migrate(db) == ["m005_envelope_sealing"]
    assert "sealing" in {c.name for c in pw.get_columns("envelope")}


def test_migration_19_replaces_the_counter_index_of_an_older_database_by_a_covering_one(db: Database) -> None:
    pw = db.peewee
    pw.execute_sql(f'DROP INDEX "{migrations.COUNTER_READS_INDEX}"')
    pw.execute_sql(
        'CREATE INDEX "counter_value_device_id_name_observed_at" '
        "ON counter_value (device_id, name, observed_at)"
    )
    pw.execute_sql("DELETE FROM migrations WHERE name = 'm019_counter_reads_index'")
    assert migrations.migrate(db) == ["m019_counter_reads_index"]
    indexes = {i.name: i.columns for i in pw.get_indexes("counter_value")}
    assert indexes[migrations.COUNTER_READS_INDEX] == ["device_id", "name", "observed_at", "value", "flag"]
    assert "counter_value_device_id_name_observed_at" not in indexes


@pytest.mark.parametrize("db_backend", [pytest.param("postgresql", marks=pytest.mark.postgresql)])
def test_postgresql_sessions_run_without_jit_unless_the_url_names_its_options(db: Database) -> None:
    assert db.peewee.execute_sql("SHOW jit").fetchone()[0] == "off"
    own = open_database(db.url + "?options=-c%20jit%3Don", data_dir=Path("/nonexistent"), migrate=False)
    try:
        assert own.peewee.execute_sql("SHOW jit").fetchone()[0] == "on"
    finally:
        own.close()


def test_migrations_24_and_25_add_the_claim_and_provenance_columns_to_a_database_made_before(
    db: Database,
) -> None:
    pw = db.peewee
    for sql in (
        'DROP INDEX "envelope_claimed"',
        "ALTER TABLE envelope DROP COLUMN claimed_customer",
        "ALTER TABLE envelope DROP COLUMN pmd_bundle",
        "ALTER TABLE reading DROP COLUMN source_id",
        "DROP TABLE reading_source",
        "DELETE FROM migrations WHERE name IN ('m024_customer_claims', 'm025_value_sources')",
    ):
        pw.execute_sql(sql)
    assert migrations.migrate(db) == ["m024_customer_claims", "m025_value_sources"]
    assert {"claimed_customer", "pmd_bundle"} <= {c.name for c in pw.get_columns("envelope")}
    assert "source_id" in {c.name for c in pw.get_columns("reading")}
    assert "envelope_claimed" in {i.name for i in pw.get_indexes("envelope")}
    assert {c.name for c in pw.get_columns("reading_source")} == {"id", "digest", "pmd", "sources"}


def test_every_peewee_exception_class_is_translated() -> None:
    classes = {
        c
        for _, c in inspect.getmembers(peewee, inspect.isclass)
        if issubclass(c, peewee.PeeweeException) and c is not peewee.PeeweeException
    }
    assert classes <= set(PEEWEE_ERRORS), classes - set(PEEWEE_ERRORS)
    for cls in classes:
        expected = DuplicateKey if cls is peewee.IntegrityError else DatabaseError
        with pytest.raises(expected) as info, translated("doing x"):
            raise cls("boom")
        assert "doing x" in info.value.message and info.value.hint


def test_an_unreachable_postgresql_names_the_url_without_its_password(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError) as info:
        open_database("postgresql://fsm:s3cret@127.0.0.1:1/fsm", data_dir=tmp_path)
    assert "s3cret" not in info.value.message and "127.0.0.1:1" in info.value.message
    assert redact("postgresql://u:pw@h/db") == "postgresql://u:***@h/db"


def test_an_unknown_database_scheme_is_refused_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match="mysql") as info:
        open_database("mysql://x@y/z", data_dir=tmp_path)
    assert "sqlite:///" in info.value.hint
