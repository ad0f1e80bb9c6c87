"""Device identity is scoped to the reporting client's customer (SQLite and PostgreSQL).

A registered client that reports another customer's serial gets a device of its own customer;
nothing it sends changes another customer's rows, and the health report shows the collision. A
report naming another customer than its client's loads under the client's and is flagged in health.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ingest_helpers import folder_count, mailbox_config, send_all
from reports_fleet import Feeder, reading

from fsm_devtools.corpus import ClientKit, ServerKit, another_customers_serial, make_client
from fsm_devtools.peers.mailstack import MailStack
from fsm_server import listings, reports
from fsm_server.daemon import IngestDaemon
from fsm_server.db import migrations
from fsm_server.db.connect import Database
from fsm_server.db.models import Client, Customer, Device, Envelope, Quarantine, Reading, Site
from fsm_server.ingest.pipeline import Pipeline
from fsm_server.registry import Registry
from fsm_server.reports.health import CustomerClaim

START = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=10)


def at(n: int) -> datetime:
    """Noon of day ``n`` of the test period."""
    return START + timedelta(days=n, hours=12)


@pytest.fixture
def attacker(registry: Registry, tmp_path: Path) -> ClientKit:
    """globex-1: a client of another customer, registered by the dealer like any other."""
    kit = make_client(tmp_path / "globex", "globex-1")
    registry.add(kit.name, kit.pub_path)
    return kit


@pytest.fixture
def victim(pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit) -> Feeder:
    """ACME's printer VICTIM1 read by acme-hq on days 0, 1 and 2: 1,000, 1,100, 1,200 pages."""
    feed = Feeder(pipeline, client_kit, server_kit, customer="ACME", site="HQ")
    for n in range(3):
        feed.send(at(n), [reading("VICTIM1", at(n), ip="10.0.0.11", total=1_000 + 100 * n)])
    return feed


def device_of(customer: str, serial: str = "VICTIM1") -> Device:
    return (
        Device.select(Device)
        .join(Customer, on=(Device.customer == Customer.id))
        .where(Customer.name == customer, Device.serial == serial)
        .get()
    )


def acme_meters(last_day: int = 2) -> reports.Meters:
    """ACME's meters from its day-0 read to an hour after its read of ``last_day``."""
    data = reports.build(
        "meters", customer="ACME", start=at(0) + timedelta(hours=1), end=at(last_day) + timedelta(hours=1)
    )
    assert isinstance(data, reports.Meters)
    return data


def test_another_customers_serial_makes_a_device_of_its_own_and_changes_nothing_of_the_victims(
    victim: Feeder, attacker: ClientKit, pipeline: Pipeline, server_kit: ServerKit
) -> None:
    printer = reading("VICTIM1", at(0))
    for seq, hours in ((1, 30), (2, 40)):  # between the victim's reads: a reset, then a jump, if they mixed
        mail = another_customers_serial(
            printer,
            attacker,
            server_kit,
            seq,
            customer="Globex",
            site="Plant",
            created_at=at(0) + timedelta(hours=hours),
        )
        verdict = pipeline.process(mail, source="test")
        assert verdict.outcome == "loaded", verdict

    assert Device.select().where(Device.serial == "VICTIM1").count() == 2  # one per customer
    mine, theirs = device_of("ACME"), device_of("Globex")
    assert mine.identity == theirs.identity == "sn:ricoh:VICTIM1"
    assert (mine.client.name, mine.site.name, mine.ip, mine.last_seen) == (
        "acme-hq",
        "HQ",
        "10.0.0.11",
        at(2),
    )
    assert (theirs.client.name, theirs.site.name) == ("globex-1", "Plant")
    # the victim's history is its own readings only; the attacker's went to the attacker's device
    clients = [r.envelope.client.name for r in Reading.select().where(Reading.device == mine)]
    assert clients == ["acme-hq"] * 3
    assert Reading.select().where(Reading.device == theirs).count() == 2
    listed = {(d.customer, d.client) for d in listings.devices() if d.serial == "VICTIM1"}
    assert listed == {("ACME", "acme-hq"), ("Globex", "globex-1")}  # `fsm-server devices` tells them apart

    [row] = [r for r in acme_meters().rows if r.counter == "total"]
    assert (row.device.serial, row.device.client, row.device.site) == ("VICTIM1", "acme-hq", "HQ")
    assert (row.start_value, row.end_value, row.usage, row.reads, row.flags) == (1_000, 1_200, 200, 3, [])


def claims(customer: str | None = None) -> list[CustomerClaim]:
    """The health report's reports naming another customer, ingested up to now."""
    end = datetime.now(UTC) + timedelta(hours=1)
    health = reports.build("health", customer=customer, start=at(0), end=end)
    assert isinstance(health, reports.Health)
    return health.claims


def test_a_report_naming_another_customer_than_its_clients_is_loaded_under_its_clients_and_flagged(
    victim: Feeder, attacker: ClientKit, pipeline: Pipeline, registry: Registry, server_kit: ServerKit
) -> None:
    printer = reading("VICTIM1", at(0))
    first = another_customers_serial(printer, attacker, server_kit, 1, customer="Globex", created_at=at(3))
    assert pipeline.process(first).outcome == "loaded"  # its first report binds globex-1 to Globex
    assert registry.get(attacker.name).customer == "Globex"
    # now it claims to be ACME's, to reach ACME's printer from inside its customer
    claim = another_customers_serial(
        printer, attacker, server_kit, 2, customer="ACME", site="HQ", created_at=at(4), total=7
    )
    verdict = pipeline.process(claim)
    assert verdict.outcome == "loaded", verdict
    assert "'ACME'" in verdict.detail
    globex = Client.get(Client.name == "globex-1")
    assert {e.seq: e.claimed_customer for e in Envelope.select().where(Envelope.client == globex.id)} == {
        1: None,
        2: "ACME",
    }
    # the readings went to Globex's device; ACME's printer, sites and meters are untouched
    theirs = device_of("Globex")
    assert (theirs.client.name, theirs.last_seen.date()) == ("globex-1", at(4).date())
    assert Reading.select().where(Reading.device == theirs).count() == 2
    assert registry.get(attacker.name).customer == "Globex"  # a report never moves its client
    mine = device_of("ACME")
    assert (mine.client.name, mine.last_seen) == ("acme-hq", at(2))
    assert [s.name for s in Site.select().join(Customer).where(Customer.name == "ACME")] == ["HQ"]
    [row] = [r for r in acme_meters().rows if r.counter == "total"]
    assert (row.end_value, row.reads, row.flags) == (1_200, 3, [])

    # flagged in health: whole, and in Globex's view; ACME's view names nothing of it
    [flag] = claims()
    assert (flag.client, flag.customer, flag.claimed, flag.reports, flag.first_seq, flag.last_seq) == (
        "globex-1",
        "Globex",
        "ACME",
        1,
        2,
        2,
    )
    assert claims("Globex") == [flag] and claims("ACME") == []
    health = reports.build("health", start=at(0), end=datetime.now(UTC) + timedelta(hours=1))
    html, csv = reports.render(health, "html"), reports.render(health, "csv")  # type: ignore[arg-type]
    assert "Reports naming another customer" in html and "globex-1" in html
    assert "customer_claim,globex-1,named 'ACME'" in csv


def test_a_client_enrolled_under_a_customer_reporting_as_another_even_first_loads_under_its_own(
    victim: Feeder, pipeline: Pipeline, registry: Registry, server_kit: ServerKit, tmp_path: Path
) -> None:
    kit = make_client(tmp_path / "initech", "initech-1")
    assert registry.add(kit.name, kit.pub_path, customer="Initech").customer == "Initech"
    claim = another_customers_serial(
        reading("VICTIM1", at(0)), kit, server_kit, 1, customer="ACME", site="HQ", created_at=at(3)
    )
    assert pipeline.process(claim).outcome == "loaded"
    assert Device.select().where(Device.serial == "VICTIM1").count() == 2
    assert device_of("ACME").client.name == "acme-hq"
    assert (device_of("Initech").client.name, device_of("Initech").site.name) == ("initech-1", "HQ")
    assert [(c.client, c.customer, c.claimed) for c in claims()] == [("initech-1", "Initech", "ACME")]


def test_an_unenrolled_clients_first_report_cannot_join_a_customer_that_has_clients(
    victim: Feeder, attacker: ClientKit, pipeline: Pipeline, registry: Registry, server_kit: ServerKit
) -> None:
    claim = another_customers_serial(
        reading("VICTIM1", at(0)), attacker, server_kit, 1, customer="ACME", site="HQ", created_at=at(3)
    )
    verdict = pipeline.process(claim)
    assert (verdict.outcome, verdict.reason) == ("quarantined", "customer_mismatch")
    assert registry.get(attacker.name).customer is None
    assert device_of("ACME").client.name == "acme-hq"
    # once the dealer says globex-1 reads ACME's printers, the held report loads (a move within ACME)
    registry.set_customer(attacker.name, "ACME")
    assert pipeline.retry(verdict.quarantine_id).outcome == "loaded"  # type: ignore[arg-type]
    assert device_of("ACME").client.name == "globex-1"
    assert Device.select().where(Device.serial == "VICTIM1").count() == 1


def test_the_health_report_shows_the_same_identity_under_two_customers(
    victim: Feeder, attacker: ClientKit, pipeline: Pipeline, server_kit: ServerKit
) -> None:
    mail = another_customers_serial(
        reading("VICTIM1", at(0)), attacker, server_kit, 1, customer="Globex", created_at=at(3)
    )
    assert pipeline.process(mail).outcome == "loaded"
    health = reports.build("health", start=at(0), end=at(5))
    assert isinstance(health, reports.Health)
    [clash] = health.collisions
    assert (clash.identity, clash.customers) == ("sn:ricoh:VICTIM1", 2)
    assert [(d.customer, d.client) for d in clash.devices] == [("ACME", "acme-hq"), ("Globex", "globex-1")]
    html, csv = reports.render(health, "html"), reports.render(health, "csv")
    assert "sn:ricoh:VICTIM1" in html and "Globex" in html
    assert "collision" in csv and "sn:ricoh:VICTIM1" in csv
    # one customer's view names its own device and how many customers hold the identity, no other's
    scoped = reports.build("health", customer="ACME", start=at(0), end=at(5))
    assert isinstance(scoped, reports.Health)
    [clash] = scoped.collisions
    assert clash.customers == 2 and [d.customer for d in clash.devices] == ["ACME"]
    assert "Globex" not in reports.render(scoped, "html")


def test_a_printer_moving_between_clients_and_sites_of_one_customer_stays_one_device(
    victim: Feeder, pipeline: Pipeline, registry: Registry, server_kit: ServerKit, tmp_path: Path
) -> None:
    branch = make_client(tmp_path / "branch", "acme-branch")
    registry.add(branch.name, branch.pub_path, customer="ACME")  # the dealer's word: it is ACME's
    Feeder(pipeline, branch, server_kit, customer="ACME", site="Branch").send(
        at(3), [reading("VICTIM1", at(3), ip="10.7.0.5", total=1_300)]
    )
    [moved] = Device.select().where(Device.serial == "VICTIM1")
    assert (moved.client.name, moved.site.name, moved.ip, moved.customer.name) == (
        "acme-branch",
        "Branch",
        "10.7.0.5",
        "ACME",
    )
    [row] = [r for r in acme_meters(3).rows if r.counter == "total"]
    assert (row.start_value, row.end_value, row.usage, row.reads) == (1_000, 1_300, 300, 4)
    assert reports.build("health", start=at(0), end=at(5)).collisions == []  # type: ignore[union-attr]


def drop_customer_column(db: Database, table: str) -> None:
    """ALTER TABLE ... DROP COLUMN customer_id; SQLite refuses it for a foreign key, so there the
    table is copied without it (its other indexes made again; those over customer_id go with the
    column, as PostgreSQL's DROP COLUMN drops them)."""
    pw = db.peewee
    if db.kind == "postgresql":
        pw.execute_sql(f"ALTER TABLE {table} DROP COLUMN customer_id")
        return
    [create] = pw.execute_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).fetchone()
    indexes = [
        r[0]
        for r in pw.execute_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
            (table,),
        )
    ]
    old = create.replace(', FOREIGN KEY ("customer_id") REFERENCES "customer" ("id")', "")
    old = re.sub(r'"customer_id" INTEGER( NOT NULL)?, |, "customer_id" INTEGER( NOT NULL)?(?=\))', "", old)
    old = old.replace(f'"{table}"', f'"{table}_5"', 1)
    assert "customer_id" not in old, old
    columns = ", ".join(f'"{c.name}"' for c in pw.get_columns(table) if c.name != "customer_id")
    pw.execute_sql("PRAGMA foreign_keys = OFF")
    with pw.atomic():
        pw.execute_sql(old)
        pw.execute_sql(f'INSERT INTO "{table}_5" ({columns}) SELECT {columns} FROM "{table}"')
        pw.execute_sql(f'DROP TABLE "{table}"')
        pw.execute_sql(f'ALTER TABLE "{table}_5" RENAME TO "{table}"')
        for sql in indexes:
            if "customer_id" not in sql:
                pw.execute_sql(sql)
    pw.execute_sql("PRAGMA foreign_keys = ON")


def test_migration_6_scopes_the_devices_of_a_database_made_before_it(
    db: Database,
    victim: Feeder,
    attacker: ClientKit,
    pipeline: Pipeline,
    registry: Registry,
    server_kit: ServerKit,
    tmp_path: Path,
) -> None:
    globex = Feeder(pipeline, attacker, server_kit, customer="Globex", site="Plant")
    globex.send(at(1), [reading("G1", at(1))])
    lone = make_client(tmp_path / "lone", "lone-1")
    registry.add(lone.name, lone.pub_path)
    Feeder(pipeline, lone, server_kit, customer="", site="").send(at(1), [reading("N1", at(1))])
    # back to schema 5: one device per identity, clients and devices without a customer
    pw = db.peewee
    pw.execute_sql('DROP INDEX "device_customer_id_identity"')
    pw.execute_sql('DROP INDEX "client_customer_id"')
    drop_customer_column(db, "device")
    drop_customer_column(db, "client")
    for sql in (
        'CREATE UNIQUE INDEX "device_identity" ON device (identity)',
        "DELETE FROM customer WHERE name = ''",  # schema 5 made no customer row for "no customer"
        "DELETE FROM migrations WHERE name = 'm006_device_customer'",
    ):
        pw.execute_sql(sql)
    assert "customer_id" not in {c.name for c in pw.get_columns("device")}

    assert migrations.migrate(db) == ["m006_device_customer"]
    owners = {d.serial: (d.customer.name, d.client.name) for d in Device.select()}
    assert owners == {"VICTIM1": ("ACME", "acme-hq"), "G1": ("Globex", "globex-1"), "N1": ("", "lone-1")}
    assert {c.name: c.customer for c in registry.list()} == {
        "acme-hq": "ACME",
        "globex-1": "Globex",
        "lone-1": "",
    }
    assert {i.name for i in pw.get_indexes("device")} >= {"device_customer_id_identity"}
    assert "device_identity" not in {i.name for i in pw.get_indexes("device")}

    # the upgraded database holds the rule: the attack makes a device of Globex's own
    mail = another_customers_serial(
        reading("VICTIM1", at(0)),
        attacker,
        server_kit,
        2,
        customer="Globex",
        site="Plant",
        created_at=at(0) + timedelta(hours=30),
    )
    assert pipeline.process(mail).outcome == "loaded"
    assert (device_of("ACME").client.name, device_of("Globex").client.name) == ("acme-hq", "globex-1")
    [row] = [r for r in acme_meters().rows if r.counter == "total"]
    assert (row.end_value, row.usage, row.reads, row.flags) == (1_200, 200, 3, [])


@pytest.mark.mail
async def test_through_the_mail_stack_another_customers_serial_leaves_the_victims_printer_alone(
    empty_dealer_mailbox: MailStack,
    victim: Feeder,
    attacker: ClientKit,
    pipeline: Pipeline,
    registry: Registry,
    server_kit: ServerKit,
) -> None:
    stack = empty_dealer_mailbox
    # enrolled by the dealer: the mails may be delivered in either order
    registry.set_customer(attacker.name, "Globex")
    printer = reading("VICTIM1", at(0))
    mails = [
        another_customers_serial(
            printer,
            attacker,
            server_kit,
            1,
            customer="Globex",
            site="Plant",
            created_at=at(0) + timedelta(hours=30),
        ),
        another_customers_serial(
            printer,
            attacker,
            server_kit,
            2,
            customer="ACME",
            site="HQ",
            created_at=at(0) + timedelta(hours=40),
        ),
    ]
    await send_all(stack, mails)
    stack.wait_for_messages(len(mails))

    result = await IngestDaemon(pipeline, [mailbox_config(stack)]).run(once=True)

    # the report naming ACME loads under globex-1's customer, flagged; nothing is quarantined
    assert result.tally.outcomes["loaded"] == 2, result.tally.summary()
    assert result.tally.reasons == {}
    assert (folder_count(stack, "FSM/Processed"), folder_count(stack, "FSM/Quarantine")) == (2, 0)
    assert Quarantine.select().count() == 0
    assert (device_of("ACME").client.name, device_of("Globex").client.name) == ("acme-hq", "globex-1")
    assert Reading.select().where(Reading.device == device_of("Globex")).count() == 2
    flags = [(c.client, c.customer, c.claimed, c.last_seq) for c in claims()]
    assert flags == [("globex-1", "Globex", "ACME", 2)]
    [row] = [r for r in acme_meters().rows if r.counter == "total"]
    assert (row.start_value, row.end_value, row.usage, row.reads, row.flags) == (1_000, 1_200, 200, 3, [])
