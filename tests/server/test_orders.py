"""Supply orders on both databases, fed through the real pipeline: the forecast proposes, a
dealer approves, a detected replacement closes the order as delivered with how early it came;
ignored orders stay quiet until the supply is replaced; lead times per customer; the ERP's CSV;
part numbers from hostile descriptions."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from portal_fleet import Fleet, Viewer, build_fleet
from reports_fleet import Feeder, reading

from fsm_devtools.corpus import ClientKit, ServerKit, make_client
from fsm_protocol.schema import Device as DeviceReading
from fsm_server.config import OrdersSection
from fsm_server.customers import add_customer
from fsm_server.db.connect import Database
from fsm_server.errors import NotFound, OrderError
from fsm_server.ingest.pipeline import Pipeline
from fsm_server.orders import proposals, workflow
from fsm_server.orders.models import SupplyOrder
from fsm_server.orders.partnumbers import MAX_LENGTH, part_number
from fsm_server.registry import Registry
from fsm_server.scoping import Scoped

START = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)
ADMIN = Scoped("admin", None)
DESCRIPTION = "Black Toner Cartridge HP LaserJet (CF287A)"


def toner(
    at: datetime, percent: float, *, description: str = DESCRIPTION, serial: str = "ORD-1"
) -> DeviceReading:
    d = reading(serial, at, total=1000, supplies=[("toner", "black", percent)])
    d.supplies[0].description = description
    return d


@pytest.fixture
def feed(pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit) -> Feeder:
    add_customer("ACME", sites=("HQ",))
    return Feeder(pipeline, client_kit, server_kit)


def orders() -> list[workflow.OrderView]:
    return workflow.list_orders(ADMIN)


@pytest.mark.parametrize(
    ("description", "expected"),
    [
        ("TK-3170", "TK-3170"),
        ("Kyocera TK-5240K toner", "TK-5240K"),
        ("Black Cartridge HP CF287A", "CF287A"),
        ("Toner Cartridge HP LaserJet (CE285A)", "CE285A"),
        ("Xerox toner (106R03621)", "106R03621"),
        ("Brother TN-2420", "TN-2420"),
        ("Black Toner", None),
        ("Toner K", None),
        ("MP C3004 black toner", None),
        ("Drum Unit 1200", None),
        ("(ABC)", None),
        ("", None),
        ("=cmd|' /C calc'!A0", None),
        ("<script>alert(1)</script> (CE285A)", "CE285A"),
        ("X" * 10_000 + " TK-3170", None),  # past the part read
        ("(" + "A1" * 5000 + ")", None),  # too long to be one
        ("Тонер TK-3170", "TK-3170"),
    ],
)
def test_part_numbers_are_taken_only_in_shapes_vendors_use(description: str, expected: str | None) -> None:
    found = part_number(description)
    assert found == expected
    assert found is None or len(found) <= MAX_LENGTH


def test_forecast_proposes_approval_then_a_replacement_delivers_it(db: Database, feed: Feeder) -> None:
    # 5 points a day from 60: the fit says empty on day 12; lead 5 + margin 3 = 8 days -> day 4 proposes
    for day in range(4):
        feed.send(START + timedelta(days=day), [toner(START + timedelta(days=day), 60 - 5 * day)])
        assert orders() == [], day
    day4 = START + timedelta(days=4)
    feed.send(day4, [toner(day4, 40)])
    [o] = orders()
    assert (o.state, o.reason, o.part_number, o.kind, o.color) == (
        "proposed",
        "forecast",
        "CF287A",
        "toner",
        "black",
    )
    assert o.empty_at == pytest.approx(START + timedelta(days=12), abs=timedelta(hours=1))
    assert (o.lead_days, o.margin_days, o.percent) == (5, 3, 40)
    workflow.approve(ADMIN, o.id, by="dana", now=day4 + timedelta(hours=2))
    day5 = START + timedelta(days=5)
    feed.send(day5, [toner(day5, 35)])
    [o] = orders()  # still one: an open order follows its supply, no second one
    assert (o.state, o.percent, o.approved_by) == ("approved", 35, "dana")
    # the new cartridge is in on day 7 (level rises): delivered, 5 days before the forecast empty date
    day7 = START + timedelta(days=7)
    feed.send(day7, [toner(day7, 100)])
    [o] = orders()
    assert (o.state, o.replaced_at, o.delivered_at, o.delivered_by) == ("delivered", day7, day7, None)
    assert o.early_days == pytest.approx(5.0, abs=0.1)
    assert o.after_approval_days == pytest.approx(3 - 2 / 24, abs=0.01)
    # the new cartridge runs down in turn: a second order, of the new cycle
    for day in range(8, 20):
        at = START + timedelta(days=day)
        feed.send(at, [toner(at, 100 - 6 * (day - 7))])
    newest, first = orders()
    assert first.id == o.id and newest.state == "proposed" and newest.id != o.id
    assert newest.percent is not None and newest.percent < 60


def test_an_ignored_order_stays_quiet_until_the_supply_is_replaced(db: Database, feed: Feeder) -> None:
    for day in range(6):
        at = START + timedelta(days=day)
        feed.send(at, [toner(at, 50 - 5 * day)])
    [o] = orders()
    with pytest.raises(OrderError, match="needs a reason"):
        workflow.ignore(ADMIN, o.id, by="dana", reason="  ")
    workflow.ignore(ADMIN, o.id, by="dana", reason="customer buys its own toner")
    for day in range(6, 9):
        at = START + timedelta(days=day)
        feed.send(at, [toner(at, 50 - 5 * day)])
    [o] = orders()
    assert (o.state, o.ignore_reason) == ("ignored", "customer buys its own toner")
    at = START + timedelta(days=9)
    feed.send(at, [toner(at, 100)])
    [o] = orders()
    assert (o.state, o.replaced_at, o.early_days) == ("ignored", at, None)  # noted, still ignored


def test_steps_only_from_the_states_they_start_from(db: Database, feed: Feeder) -> None:
    at = START
    feed.send(at, [toner(at, 8)])  # the device says low: proposed on the level alone
    [o] = orders()
    assert (o.reason, o.empty_at) == ("level", None)
    with pytest.raises(OrderError, match="proposed; it can be ordered only when approved"):
        workflow.mark_ordered(ADMIN, o.id, by="dana")
    workflow.approve(ADMIN, o.id, by="dana")
    with pytest.raises(OrderError, match="approved; it can be approved only when proposed"):
        workflow.approve(ADMIN, o.id, by="dana")
    with pytest.raises(OrderError, match="101 characters long, more than 100"):
        workflow.mark_ordered(ADMIN, o.id, by="dana", ref="9" * 101)
    o = workflow.mark_ordered(ADMIN, o.id, by="erp", ref="SO-4711")
    assert (o.state, o.order_ref) == ("ordered", "SO-4711")
    o = workflow.mark_delivered(ADMIN, o.id, by="driver")
    assert (o.state, o.delivered_by) == ("delivered", "driver")
    feed.send(at + timedelta(hours=6), [toner(at + timedelta(hours=6), 7)])
    assert len(orders()) == 1  # delivered by hand in this cycle: not proposed again
    with pytest.raises(NotFound):
        workflow.approve(ADMIN, 987_654, by="dana")
    with pytest.raises(OrderError, match="unknown order state"):
        workflow.list_orders(ADMIN, state="shipped")


def test_a_customers_own_lead_time_and_the_scan_after_changing_it(db: Database, feed: Feeder) -> None:
    defaults = OrdersSection()
    for day in range(4):  # 80 -> 65: empty in 13 days from day 3, more than 5 + 3
        at = START + timedelta(days=day)
        feed.send(at, [toner(at, 80 - 5 * day)])
    assert orders() == []
    assert workflow.lead_settings(ADMIN, "ACME", defaults).own is False
    with pytest.raises(OrderError, match="out of range"):
        workflow.set_lead(ADMIN, "ACME", lead_days=400, margin_days=1, by="dana")
    s = workflow.set_lead(ADMIN, "ACME", lead_days=10, margin_days=4, by="dana")
    assert (s.lead_days, s.margin_days, s.own) == (10, 4, True)
    add_customer("Zenith")
    listed = workflow.all_lead_settings(ADMIN, defaults)
    assert [(x.customer, x.lead_days, x.margin_days, x.own, x.updated_by) for x in listed] == [
        ("ACME", 10, 4, True, "dana"),
        ("Zenith", 5, 3, False, None),
    ]
    assert workflow.all_lead_settings(Scoped("customer", frozenset()), defaults) == []
    assert proposals.scan(db, defaults, now=START + timedelta(days=3)) == (1, 0)
    [o] = orders()
    assert (o.lead_days, o.margin_days) == (10, 4)
    assert proposals.scan(db, defaults, now=START + timedelta(days=3)) == (0, 0)  # not twice
    assert workflow.reset_lead(ADMIN, "ACME", defaults).lead_days == 5
    with pytest.raises(NotFound):
        workflow.set_lead(Scoped("dealer", frozenset()), "ACME", lead_days=1, margin_days=1, by="x")


def test_a_lead_time_change_is_applied_to_that_customers_supplies_at_once(
    db: Database, feed: Feeder, registry: Registry, server_kit: ServerKit, tmp_path: Path
) -> None:
    defaults = OrdersSection()
    add_customer("Zenith", sites=("HQ",))
    kit = make_client(tmp_path / "zenith", "zenith-1")
    registry.add(kit.name, kit.pub_path, customer="Zenith")
    zenith = Feeder(feed.pipeline, kit, server_kit, customer="Zenith")
    for day in range(4):  # both run out in 13 days: nothing proposed under the defaults
        at = START + timedelta(days=day)
        feed.send(at, [toner(at, 80 - 5 * day)])
        zenith.send(at, [toner(at, 80 - 5 * day, serial="ZEN-1")])
    assert orders() == []
    workflow.set_lead(ADMIN, "ACME", lead_days=10, margin_days=4, by="dana")
    assert workflow.rescan(ADMIN, db, "ACME", defaults, now=START + timedelta(days=3)) == (1, 0)
    [o] = orders()
    assert (o.customer, o.lead_days, o.margin_days) == ("ACME", 10, 4)
    with pytest.raises(NotFound):  # another tenant's customer, as a missing one
        workflow.rescan(Scoped("dealer", frozenset()), db, "ACME", defaults)
    assert proposals.scan(db, defaults, now=START + timedelta(days=3)) == (0, 0)  # Zenith: 5 + 3 still


def test_proposals_off_in_the_config_still_close_on_replacement(
    db: Database, registry: Registry, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    add_customer("ACME", sites=("HQ",))
    on = Feeder(Pipeline(db, registry, server_kit.encryption_key), client_kit, server_kit)
    on.send(START, [toner(START, 5)])
    [o] = orders()
    off = Pipeline(db, registry, server_kit.encryption_key, orders=OrdersSection(enabled=False))
    feed = Feeder(off, client_kit, server_kit, seq=on.seq)
    feed.send(START + timedelta(days=1), [toner(START + timedelta(days=1), 100)])
    feed.send(START + timedelta(days=2), [toner(START + timedelta(days=2), 5, serial="ORD-2")])
    [o] = orders()
    assert o.state == "delivered"


def test_the_erp_csv_has_approved_orders_only_with_cells_defused(db: Database, feed: Feeder) -> None:
    hostile = '=HYPERLINK("http://x") TK-3170'
    feed.send(START, [toner(START, 5, description=hostile), toner(START, 4, serial="ORD-2")])
    first, second = sorted(orders(), key=lambda o: o.id)
    workflow.approve(ADMIN, first.id, by="dana")
    rows = list(csv.reader(io.StringIO("".join(workflow.approved_csv(ADMIN)))))
    assert rows[0] == list(workflow.CSV_COLUMNS)
    [row] = rows[1:]
    assert row[0] == str(first.id) and row[2] == "TK-3170"
    assert row[3] == "'" + hostile  # a spreadsheet shows it, never runs it
    assert second.state == "proposed"
    assert list(workflow.approved_csv(Scoped("customer", frozenset()))) == [
        ",".join(workflow.CSV_COLUMNS) + "\r\n"
    ]


def test_each_viewer_sees_only_its_customers_orders(
    pipeline: Pipeline, registry: Registry, server_kit: ServerKit, tmp_path: Path
) -> None:
    fleet: Fleet = build_fleet(pipeline, registry, server_kit, tmp_path)
    everything = orders()
    by_customer = {c: [o.id for o in everything if o.customer == c] for c in fleet.devices}
    assert all(by_customer.values()), by_customer  # the fleet's black toners run low everywhere
    for viewer in fleet.viewers().values():
        scoped = Scoped.of(viewer)
        seen = {o.customer for o in workflow.list_orders(scoped)}
        assert seen == fleet.visible(viewer), viewer
        for customer, ids in by_customer.items():
            if customer in fleet.visible(viewer):
                assert workflow.get_order(scoped, ids[0]).customer == customer
                continue
            with pytest.raises(NotFound):
                workflow.get_order(scoped, ids[0])
            with pytest.raises(NotFound):
                workflow.approve(scoped, ids[0], by=viewer.name)
            assert SupplyOrder.get_by_id(ids[0]).state == "proposed"
    assert Viewer  # the fleet's viewers are portal principals as scoping sees them


def test_cli_sets_a_lead_time_scans_steps_and_exports(
    db: Database, feed: Feeder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from fsm_server.cli import main

    for day in range(4):  # empty in 13 days: nothing proposed under the defaults
        at = START + timedelta(days=day)
        feed.send(at, [toner(at, 80 - 5 * day)])
    monkeypatch.setenv("FSM_DATABASE_URL", db.url)
    run = CliRunner()

    def cli(*args: str, code: int = 0) -> str:
        r = run.invoke(main, ["--data-dir", str(tmp_path / "server"), "orders", *args])
        assert r.exit_code == code, r.output
        return r.output

    assert "lead 5 days, margin 3 days (the [orders] defaults)" in cli("settings", "ACME")
    changed = cli("settings", "ACME", "--lead-days", "12", "--by", "dana")
    assert "set by dana" in changed and "1 order(s) proposed" in changed  # applied at once
    assert "0 order(s) proposed" in cli("scan")
    [row] = msgspec.json.decode(cli("list", "--json"))
    assert (row["part_number"], row["state"], row["lead_days"]) == ("CF287A", "proposed", 12)
    order = str(row["id"])
    assert "only when approved" in cli("ordered", order, code=1)
    assert "error:" in cli("ignore", order, "--reason", " ", code=1)
    cli("approve", order, "--by", "dana")
    out = tmp_path / "approved.csv"
    assert "1 order(s)" in cli("export", "--out", str(out))
    assert out.read_text().splitlines()[1].startswith(f"{order},ACME,CF287A,")
    cli("ordered", order, "--ref", "SO-9", "--by", "erp")
    cli("delivered", order, "--by", "driver")
    shown = cli("show", order)
    assert "SO-9" in shown and "by driver" in shown and "CF287A" in shown
    assert "no supply order" in cli("show", "987654", code=1)
    [closed] = msgspec.json.decode(cli("list", "--state", "closed", "--json"))
    assert (closed["id"], closed["state"]) == (row["id"], "delivered")
    assert cli("list", "--state", "open", "--json").strip() == "[]"
    assert "[orders] defaults" in cli("settings", "ACME", "--reset")


def test_migration_16_adds_the_empty_date_and_the_order_tables_to_a_database_made_before_it(
    db: Database, feed: Feeder
) -> None:
    from fsm_server.db import migrations

    for day in range(5):
        at = START + timedelta(days=day)
        feed.send(at, [toner(at, 90 - 5 * day)])
    pw = db.peewee
    before = sql_rows(db)
    assert before and before[0][0] is not None  # 70 % falling 5 a day: a forecast
    pw.execute_sql("DROP INDEX supply_latest_empty_at")
    pw.execute_sql("ALTER TABLE supply_latest DROP COLUMN empty_at")
    pw.execute_sql("DROP TABLE supply_order")
    pw.execute_sql("DROP TABLE order_settings")
    pw.execute_sql("DELETE FROM migrations WHERE name = 'm016_supply_orders'")
    assert migrations.migrate(db) == ["m016_supply_orders"]
    assert sql_rows(db) == before  # computed again from the readings
    assert orders() == []  # the tables are there (and empty: orders are proposed from now on)


def sql_rows(db: Database) -> list[tuple[object, ...]]:
    from fsm_server.db import sql

    return list(sql.rows(db, "SELECT empty_at, key FROM supply_latest ORDER BY device_id, key"))
