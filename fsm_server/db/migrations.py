"""Schema migrations: named functions applied in order, each in its own transaction, recorded in
``migrations`` (the sqlite-utils pattern). Never edit a released migration; add the next one.

Two processes starting at once (two ingest daemons) must not both migrate: PostgreSQL takes an
advisory lock for the whole run, SQLite's BEGIN IMMEDIATE serialises the writers.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import Literal

import peewee

from . import models, triggers
from .connect import Database, translated

_LOCK_KEY = 0x46534D5F4D494752  # "FSM_MIGR"


class Migration(peewee.Model):
    name = peewee.CharField(max_length=200, primary_key=True)
    applied_at = models.UtcDateTimeField()

    class Meta:
        table_name = "migrations"


def m001_initial(db: peewee.Database) -> None:
    """Every table of schema 1."""
    db.create_tables(models.MODELS, safe=False)


def m002_listing_indexes(db: peewee.Database) -> None:
    """Indexes the listings sort and filter by."""
    db.execute_sql("CREATE INDEX quarantine_status_time ON quarantine (status, quarantined_at)")
    db.execute_sql("CREATE INDEX envelope_ingested ON envelope (ingested_at)")
    db.execute_sql("CREATE INDEX device_client ON device (client_id, last_seen)")


def m003_events(db: peewee.Database) -> None:
    """Notification state and outbox (fsm_server.events)."""
    with db.bind_ctx(models.EVENT_MODELS):
        db.create_tables(models.EVENT_MODELS, safe=False)


def m004_drop_redundant_indexes(db: peewee.Database) -> None:
    """peewee indexes every foreign key; these are covered by a composite index that starts with it."""
    for name in (
        "counter_value_device_id",
        "reading_device_id",
        "device_address_device_id",
        "envelope_client_id",
        "pending_chunk_client_id",
    ):
        db.execute_sql(f'DROP INDEX IF EXISTS "{name}"')


def m005_envelope_sealing(db: peewee.Database) -> None:
    """envelope.sealing: which sealing of a (client, seq) was loaded."""
    if "sealing" not in {c.name for c in db.get_columns("envelope")}:  # m001 makes today's tables
        db.execute_sql("ALTER TABLE envelope ADD COLUMN sealing VARCHAR(64)")


def m006_device_customer(db: peewee.Database) -> None:
    """Devices are unique per (customer, identity), no longer per identity; clients are bound to a
    customer (fsm_server.tenancy). Existing rows keep what they show today: a device's customer
    is its site's (the customer "" when it has none), a client's that of its newest device."""
    # peewee indexes the foreign key; (customer_id, identity) covers it (as in m004)
    db.execute_sql('DROP INDEX IF EXISTS "device_customer_id"')
    if "customer_id" in {c.name for c in db.get_columns("device")}:  # m001 makes today's tables
        return
    db.execute_sql("ALTER TABLE client ADD COLUMN customer_id INTEGER REFERENCES customer (id)")
    db.execute_sql("ALTER TABLE device ADD COLUMN customer_id INTEGER REFERENCES customer (id)")
    db.execute_sql(
        "UPDATE device SET customer_id = (SELECT site.customer_id FROM site "
        "WHERE site.id = device.site_id) WHERE site_id IS NOT NULL"
    )
    db.execute_sql(
        "INSERT INTO customer (name) SELECT '' WHERE EXISTS "
        "(SELECT 1 FROM device WHERE customer_id IS NULL) ON CONFLICT (name) DO NOTHING"
    )
    db.execute_sql(
        "UPDATE device SET customer_id = (SELECT id FROM customer WHERE name = '') WHERE customer_id IS NULL"
    )
    db.execute_sql(
        "UPDATE client SET customer_id = (SELECT d.customer_id FROM device d "
        "WHERE d.client_id = client.id ORDER BY d.last_seen DESC, d.id DESC LIMIT 1)"
    )
    if isinstance(db, peewee.PostgresqlDatabase):  # SQLite cannot add NOT NULL to a column
        db.execute_sql("ALTER TABLE device ALTER COLUMN customer_id SET NOT NULL")
    db.execute_sql('DROP INDEX IF EXISTS "device_identity"')
    db.execute_sql('CREATE UNIQUE INDEX "device_customer_id_identity" ON device (customer_id, identity)')
    db.execute_sql('CREATE INDEX "client_customer_id" ON client (customer_id)')


def m007_device_identity_text(db: peewee.Database) -> None:
    """device.identity as TEXT: the longest manufacturer and serial the schema allows, case-folded,
    do not fit VARCHAR(300). SQLite does not enforce VARCHAR lengths: nothing to do there."""
    if isinstance(db, peewee.PostgresqlDatabase):
        db.execute_sql("ALTER TABLE device ALTER COLUMN identity TYPE text")


def m008_envelope_chunk_digests(db: peewee.Database) -> None:
    """envelope.chunk_digests: the sha256 of each chunk of a chunked report loaded."""
    if "chunk_digests" not in {c.name for c in db.get_columns("envelope")}:  # m001 makes today's tables
        db.execute_sql("ALTER TABLE envelope ADD COLUMN chunk_digests TEXT")


def m009_backup_runs(db: peewee.Database) -> None:
    """backup_run: every backup attempt and how it ended (fsm_server.backup)."""
    with db.bind_ctx([models.BackupRun]):
        db.create_tables([models.BackupRun], safe=True)


def m010_report_indexes(db: peewee.Database) -> None:
    """Indexes the reports seek by: counter values ingest flagged (a partial index, as small as the
    anomalies), and a client's reports by creation time (health's report interval)."""
    db.execute_sql(
        "CREATE INDEX IF NOT EXISTS counter_value_flagged ON counter_value (observed_at) "
        "WHERE flag IS NOT NULL"
    )
    db.execute_sql("CREATE INDEX IF NOT EXISTS envelope_client_created ON envelope (client_id, created_at)")


def m011_latest_state(db: peewee.Database) -> None:
    """device_latest and supply_latest, the state kept at ingest (``db.state``), computed from the
    readings already loaded."""
    from .state import rebuild

    db.create_tables([models.DeviceLatest, models.SupplyLatest], safe=True)
    pg = isinstance(db, peewee.PostgresqlDatabase)
    kind: Literal["sqlite", "postgresql"] = "postgresql" if pg else "sqlite"
    rebuild(Database(db, kind, ""))


def m012_retention_mark(db: peewee.Database) -> None:
    """retention_mark: how far downsampling got (``db.retention``)."""
    db.create_tables([models.RetentionMark], safe=True)


def m013_portal_accounts(db: peewee.Database) -> None:
    """The portal's users, sessions, setup links, recovery codes, login throttle and audit log
    (fsm_server.accounts.models)."""
    from ..accounts.models import create_tables

    create_tables(db)


def m014_dealers(db: peewee.Database) -> None:
    """Dealers own customers: the dealer table and customer.dealer_id (NULL: no dealer yet, only
    administrators see the customer). The portal scopes every query by it (fsm_server.scoping).
    And alert_ack, the portal's acknowledgements of alert episodes."""
    db.create_tables([models.Dealer, models.AlertAck], safe=True)
    if "dealer_id" not in {c.name for c in db.get_columns("customer")}:  # m001 makes today's tables
        db.execute_sql("ALTER TABLE customer ADD COLUMN dealer_id INTEGER REFERENCES dealer (id)")
        db.execute_sql('CREATE INDEX "customer_dealer_id" ON customer (dealer_id)')


def m015_billing(db: peewee.Database) -> None:
    """Billing plans, periods, their meters with provenance, and corrections (fsm_server.billing)."""
    from ..billing.models import create_tables

    create_tables(db)


def m016_supply_orders(db: peewee.Database) -> None:
    """supply_latest.empty_at (when each supply's forecast reaches zero, what the supplies page
    filters and sorts by) with its index, an index on the level, and the supply-order tables
    (fsm_server.orders)."""
    from ..orders.models import create_tables
    from .state import rebuild

    if "empty_at" not in {c.name for c in db.get_columns("supply_latest")}:  # m011 makes today's table
        pg = isinstance(db, peewee.PostgresqlDatabase)
        db.execute_sql(f"ALTER TABLE supply_latest ADD COLUMN empty_at {'TIMESTAMP' if pg else 'DATETIME'}")
        kind: Literal["sqlite", "postgresql"] = "postgresql" if pg else "sqlite"
        _device_latest_lowest_supply(db)  # the rebuild writes today's columns, m023's among them
        rebuild(Database(db, kind, ""))
    db.execute_sql("CREATE INDEX IF NOT EXISTS supply_latest_empty_at ON supply_latest (empty_at)")
    db.execute_sql("CREATE INDEX IF NOT EXISTS supply_latest_percent ON supply_latest (percent)")
    create_tables(db)


def m017_api_tokens(db: peewee.Database) -> None:
    """The read-only API's bearer tokens, stored hashed, scoped to a dealer or a customer
    (fsm_server.api)."""
    from ..api.models import create_tables

    create_tables(db)


def m018_counter_late(db: peewee.Database) -> None:
    """counter_value.late: the read was loaded after a read of the same counter at a later moment
    (set for existing rows from the order they were stored in), and an index of the reads whose
    stored flag may not tell the step from the read before them (flagged or late), which billing
    seeks instead of walking every read of a period (fsm_server.reports.meter_ends)."""
    if "late" not in {c.name for c in db.get_columns("counter_value")}:  # m001 makes today's tables
        db.execute_sql("ALTER TABLE counter_value ADD COLUMN late BOOLEAN NOT NULL DEFAULT FALSE")
    # also when m001 made the column: a restore of an older backup loads its rows before this runs
    db.execute_sql(
        "UPDATE counter_value SET late = TRUE WHERE id IN (SELECT id FROM ("
        "SELECT id, observed_at, MAX(observed_at) OVER (PARTITION BY device_id, name ORDER BY id "
        "ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before FROM counter_value) x "
        "WHERE x.before > x.observed_at)"
    )
    db.execute_sql(
        "CREATE INDEX IF NOT EXISTS counter_value_doubt ON counter_value (device_id, name, observed_at) "
        "WHERE flag IS NOT NULL OR late"
    )


def m019_counter_reads_index(db: peewee.Database) -> None:
    """counter_value's (device, name, observed_at) index also holds value and flag, so a meters
    report reads each counter's period from the index alone (on a 10,000-device fleet the table
    page of every read cost more than the rest of the report); the old index is its prefix."""
    db.execute_sql(
        f'CREATE INDEX IF NOT EXISTS "{COUNTER_READS_INDEX}" '
        "ON counter_value (device_id, name, observed_at, value, flag)"
    )
    db.execute_sql('DROP INDEX IF EXISTS "counter_value_device_id_name_observed_at"')


#: The name peewee gives models.CounterValue's index, which m019 builds on an older database.
COUNTER_READS_INDEX = "counter_value_device_id_name_observed_at_value_flag"


def m020_report_schedules(db: peewee.Database) -> None:
    """Scheduled reports and the log of their sends (fsm_server.schedules)."""
    from ..schedules.models import create_tables

    create_tables(db)


def m021_portal_rules(db: peewee.Database) -> None:
    """Notification rules edited in the portal and users' subscriptions (fsm_server.rulebook)."""
    from ..rulebook.models import create_tables

    create_tables(db)


def m022_dealer_branding(db: peewee.Database) -> None:
    """A logo and colours per dealer (fsm_server.branding)."""
    from ..branding.models import create_tables

    create_tables(db)


def _device_latest_lowest_supply(db: peewee.Database) -> None:
    """device_latest.lowest_supply (m023), filled from supply_latest, unless the table has it (m011
    makes today's table). m016 calls it too: its state rebuild writes the column."""
    if "lowest_supply" not in {c.name for c in db.get_columns("device_latest")}:
        db.execute_sql("ALTER TABLE device_latest ADD COLUMN lowest_supply REAL")
        db.execute_sql(
            "UPDATE device_latest SET lowest_supply = (SELECT MIN(CASE WHEN s.state IN ('low', 'empty') "
            "THEN -1 ELSE s.percent END) FROM supply_latest s "
            "WHERE s.device_id = device_latest.device_id AND s.reading = device_latest.reading)"
        )


def m023_portal_indexes(db: peewee.Database) -> None:
    """What the portal's devices list and dashboard filter, sort and count by (fsm_server.portal):
    device_latest.lowest_supply (the newest reading's lowest supply level, -1 for one reported
    low or empty, kept by ``db.state``; filled here from supply_latest), and indexes on it, on
    last-report age within a customer, on each sort column (descending reads one backwards), on
    the alerting devices' state (partial: a few percent of the fleet) and on a device's status."""
    _device_latest_lowest_supply(db)
    for name, table, columns in (
        ("device_customer_last_seen", "device", "customer_id, last_seen, id"),
        ("device_last_seen", "device", "last_seen, id"),
        ("device_name", "device", "manufacturer, model, id"),
        ("device_serial", "device", "serial, id"),
        ("device_ip", "device", "ip, id"),
        ("device_location", "device", "location, id"),
        ("device_latest_status", "device_latest", "device_status, reachability"),
        ("device_latest_lowest_supply", "device_latest", "lowest_supply"),
    ):
        db.execute_sql(f'CREATE INDEX IF NOT EXISTS "{name}" ON {table} ({columns})')
    db.execute_sql(
        'CREATE INDEX IF NOT EXISTS "device_latest_alerting" ON device_latest (device_id) '
        "WHERE alerts IS NOT NULL OR conditions IS NOT NULL"
    )
    # the primary key (device_id, key) starts with device_id: the foreign key's own index is redundant
    db.execute_sql('DROP INDEX IF EXISTS "supply_latest_device_id"')


def m024_customer_claims(db: peewee.Database) -> None:
    """envelope.claimed_customer: the other customer a loaded report named (fsm_server.tenancy),
    with a partial index as small as the flagged reports, which the health report reads by period."""
    if "claimed_customer" not in {c.name for c in db.get_columns("envelope")}:  # m001 makes today's
        db.execute_sql("ALTER TABLE envelope ADD COLUMN claimed_customer TEXT")
    db.execute_sql(
        "CREATE INDEX IF NOT EXISTS envelope_claimed ON envelope (ingested_at) "
        "WHERE claimed_customer IS NOT NULL"
    )


def m025_value_sources(db: peewee.Database) -> None:
    """Provenance down to the OID: reading_source (each distinct PMD + field -> OID map a report
    sent), reading.source_id, and envelope.pmd_bundle (the client's active PMD bundle)."""
    with db.bind_ctx([models.ReadingSource]):
        db.create_tables([models.ReadingSource], safe=True)
    if "source_id" not in {c.name for c in db.get_columns("reading")}:  # m001 makes today's tables
        db.execute_sql("ALTER TABLE reading ADD COLUMN source_id BIGINT")
    if "pmd_bundle" not in {c.name for c in db.get_columns("envelope")}:
        db.execute_sql("ALTER TABLE envelope ADD COLUMN pmd_bundle TEXT")


def m026_alert_device(db: peewee.Database) -> None:
    """alert_value.device_id (the reading's device) with a (device, observed_at) index, so the
    alerts report reads a device's alerts of a period by one index range instead of one seek per
    reading; set for existing rows from their readings."""
    if "device_id" not in {c.name for c in db.get_columns("alert_value")}:  # m001 makes today's table
        db.execute_sql("ALTER TABLE alert_value ADD COLUMN device_id INTEGER REFERENCES device (id)")
    # also when m001 made the column: a restore of an older backup loads its rows before this runs
    db.execute_sql(
        "UPDATE alert_value SET device_id = "
        "(SELECT r.device_id FROM reading r WHERE r.id = alert_value.reading_id) WHERE device_id IS NULL"
    )
    db.execute_sql(
        f'CREATE INDEX IF NOT EXISTS "{ALERT_DEVICE_INDEX}" ON alert_value (device_id, observed_at)'
    )


def m027_schedule_dealer(db: peewee.Database) -> None:
    """report_schedule.dealer_id and report_send.dealer_id: a dealer user's schedule of a report
    over all its customers, and its sends (fsm_server.schedules)."""
    for table in ("report_schedule", "report_send"):
        if "dealer_id" not in {c.name for c in db.get_columns(table)}:  # m020 makes today's tables
            db.execute_sql(
                f"ALTER TABLE {table} ADD COLUMN dealer_id INTEGER REFERENCES dealer (id) ON DELETE CASCADE"
            )
        # the index peewee gives the foreign key on a fresh database
        db.execute_sql(f'CREATE INDEX IF NOT EXISTS "{table}_dealer_id" ON {table} (dealer_id)')


def m028_schedule_by_customer(db: peewee.Database) -> None:
    """report_schedule.by_customer: a schedule a customer user made, which that customer's users
    may stop (fsm_server.schedules); the schedules made before were all dealers' and admins'."""
    if "by_customer" not in {c.name for c in db.get_columns("report_schedule")}:  # m020 makes today's
        db.execute_sql("ALTER TABLE report_schedule ADD COLUMN by_customer BOOLEAN NOT NULL DEFAULT FALSE")


def m029_billing_meter_references(db: peewee.Database) -> None:
    """PostgreSQL checks billing_meter's references to its period and device a statement at a time
    (``db.triggers``); both databases drop billing_meter's period index (the unique index on
    (period, device, counter) serves it)."""
    db.execute_sql('DROP INDEX IF EXISTS "billing_meter_period_id"')
    if isinstance(db, peewee.PostgresqlDatabase):
        for statement in triggers.statements():
            db.execute_sql(statement)


#: The name peewee gives models.AlertValue's index, which m026 builds on an older database.
ALERT_DEVICE_INDEX = "alert_value_device_id_observed_at"


MIGRATIONS: tuple[Callable[[peewee.Database], None], ...] = (
    m001_initial,
    m002_listing_indexes,
    m003_events,
    m004_drop_redundant_indexes,
    m005_envelope_sealing,
    m006_device_customer,
    m007_device_identity_text,
    m008_envelope_chunk_digests,
    m009_backup_runs,
    m010_report_indexes,
    m011_latest_state,
    m012_retention_mark,
    m013_portal_accounts,
    m014_dealers,
    m015_billing,
    m016_supply_orders,
    m017_api_tokens,
    m018_counter_late,
    m019_counter_reads_index,
    m020_report_schedules,
    m021_portal_rules,
    m022_dealer_branding,
    m023_portal_indexes,
    m024_customer_claims,
    m025_value_sources,
    m026_alert_device,
    m027_schedule_dealer,
    m028_schedule_by_customer,
    m029_billing_meter_references,
)


def applied(db: Database) -> list[str]:
    """Names of the migrations already applied, in order applied."""
    with translated("cannot read the migrations table"):
        if "migrations" not in db.peewee.get_tables():
            return []
        with db.peewee.bind_ctx([Migration]):
            return [m.name for m in Migration.select().order_by(Migration.applied_at, Migration.name)]


def migrate(db: Database, *, only: Collection[str] | None = None) -> list[str]:
    """Apply every pending migration (of ``only``, when given: a restore recreating the schema of
    an older backup); returns the names applied now. Binds the models to ``db``."""
    from ..accounts import models as account_models
    from ..api import models as api_models
    from ..billing import models as billing_models
    from ..branding import models as branding_models
    from ..orders import models as order_models
    from ..rulebook import models as rulebook_models
    from ..schedules import models as schedules_models

    pw = db.peewee
    models.bind(pw)
    account_models.bind(pw)
    billing_models.bind(pw)
    order_models.bind(pw)
    api_models.bind(pw)
    branding_models.bind(pw)
    rulebook_models.bind(pw)
    schedules_models.bind(pw)
    done_now: list[str] = []
    with translated(f"cannot migrate the {db.kind} database"), pw.bind_ctx([Migration]):
        if db.kind == "postgresql":
            pw.execute_sql("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            pw.create_tables([Migration], safe=True)
            for step in MIGRATIONS:
                if only is not None and step.__name__ not in only:
                    continue
                with pw.atomic():
                    if Migration.get_or_none(Migration.name == step.__name__) is not None:
                        continue
                    step(pw)
                    Migration.create(name=step.__name__, applied_at=datetime.now(UTC))
                    done_now.append(step.__name__)
        finally:
            if db.kind == "postgresql":
                pw.execute_sql("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return done_now


__all__ = [
    "ALERT_DEVICE_INDEX",
    "COUNTER_READS_INDEX",
    "MIGRATIONS",
    "Migration",
    "applied",
    "m001_initial",
    "m002_listing_indexes",
    "m003_events",
    "m004_drop_redundant_indexes",
    "m005_envelope_sealing",
    "m006_device_customer",
    "m007_device_identity_text",
    "m008_envelope_chunk_digests",
    "m009_backup_runs",
    "m010_report_indexes",
    "m011_latest_state",
    "m012_retention_mark",
    "m013_portal_accounts",
    "m014_dealers",
    "m015_billing",
    "m016_supply_orders",
    "m017_api_tokens",
    "m018_counter_late",
    "m019_counter_reads_index",
    "m020_report_schedules",
    "m021_portal_rules",
    "m022_dealer_branding",
    "m023_portal_indexes",
    "m024_customer_claims",
    "m025_value_sources",
    "m026_alert_device",
    "m027_schedule_dealer",
    "m028_schedule_by_customer",
    "m029_billing_meter_references",
    "migrate",
]
