"""Scheduled reports: due times and periods, scoped management, and the send through the real
Postfix + Dovecot stack into alerts@fsm.test, the schedule's time reached by advancing the
scheduler's clock (never by sleeping); a relay that does not answer is logged and retried. A
customer user's schedule is made in the portal in chromium (Playwright over HTTPS); screenshots
of its reports page at 1280 and 360 px are kept in ARTIFACTS."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast

import pytest
from browser_kit import ARGS, CHROMIUM, log_in, need_chromium, serving, shoot
from portal_kit import Person, enrol
from reports_fleet import Feeder, reading

from fsm_common import configfile
from fsm_devtools.corpus import ClientKit, ServerKit, make_client
from fsm_devtools.peers.mailstack import MailStack
from fsm_server.backup import take_backup, verify
from fsm_server.config import ServerConfig
from fsm_server.context import ServerContext
from fsm_server.customers import add_customer, add_dealer
from fsm_server.db import migrations
from fsm_server.db.connect import Database
from fsm_server.errors import NotFound, ReportError
from fsm_server.ingest.pipeline import Pipeline
from fsm_server.registry import Registry
from fsm_server.schedules import (
    ReportSchedule,
    ReportScheduler,
    ReportSend,
    add_schedule,
    delete_schedule,
    next_due,
    period_for,
    schedules,
    sends,
)
from fsm_server.scoping import Scoped


@dataclass(frozen=True)
class Viewer:
    role: str
    dealer: str | None = None
    customers: tuple[str, ...] = ()


ADMIN = Viewer("admin")
NORTH = Viewer("dealer", dealer="North")
SOUTH = Viewer("dealer", dealer="South")
T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)  # a Wednesday
ARTIFACTS = Path("/tmp/fsm-report-schedules-browser")


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def config(stack: MailStack | None = None, port: int | None = None, **notify: Any) -> ServerConfig:
    host = stack.host if stack else "127.0.0.1"
    return configfile.convert(
        {
            "notify": {
                "host": host,
                "port": port or (stack.smtp_port if stack else 25),
                "security": "starttls",
                "ca_file": str(stack.ca_file) if stack else None,
                "from_addr": "fsm@fsm.test",
                "timeout": 2.0,
                **notify,
            }
        },
        ServerConfig,
        source="test",
    )


@pytest.fixture
def acme(db: Database, pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit) -> None:
    """ACME (dealer North) with one printer read daily through November; Globex (South) empty."""
    add_dealer("North")
    add_dealer("South")
    add_customer("ACME", dealer="North")
    add_customer("Globex", dealer="South")
    feed = Feeder(pipeline, client_kit, server_kit)
    for day in range(0, 30, 3):
        at = datetime(2026, 11, 1, 9, tzinfo=UTC) + timedelta(days=day)
        feed.send(
            at, [reading("SCHED-1", at, total=1000 + 100 * day, supplies=[("toner", "black", 80.0 - day)])]
        )


def test_due_times_and_periods() -> None:
    assert next_due("weekly", 3, 10, after=T0) == T0 + timedelta(days=7)  # at the due time: the next one
    assert next_due("weekly", 3, 11, after=T0) == T0 + timedelta(hours=1)
    assert next_due("weekly", 7, 0, after=T0) == datetime(2026, 11, 29, tzinfo=UTC)
    assert next_due("monthly", 28, 23, after=datetime(2026, 12, 28, 23, tzinfo=UTC)) == datetime(
        2027, 1, 28, 23, tzinfo=UTC
    )
    assert period_for("weekly", T0) == (
        datetime(2026, 11, 18, tzinfo=UTC),
        datetime(2026, 11, 25, tzinfo=UTC),
    )
    assert period_for("monthly", datetime(2027, 1, 1, 6, tzinfo=UTC)) == (
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )


def test_schedules_are_scoped_and_checked(acme: None) -> None:
    north, south = Scoped.of(NORTH), Scoped.of(SOUTH)
    kw: dict[str, Any] = {"kind": "meters", "fmt": "csv", "by": "t", "now": T0, "hour": 6}
    made = add_schedule(north, customer="ACME", cadence="monthly", day=1, recipients=["a@x.example"], **kw)
    assert made.when == "monthly on day 1 at 06:00 UTC" and made.next_due_at == datetime(
        2026, 12, 1, 6, tzinfo=UTC
    )
    with pytest.raises(NotFound):
        add_schedule(south, customer="ACME", cadence="monthly", day=1, recipients=["a@x.example"], **kw)
    for customer_user in (Viewer("customer", customers=("ACME",)), Viewer("customer")):
        with pytest.raises(NotFound):  # no dealer scope for customer users
            add_schedule(
                Scoped.of(customer_user),
                customer="",
                cadence="weekly",
                day=1,
                recipients=["a@x.example"],
                **kw,
            )
    all_north = add_schedule(north, customer="", cadence="weekly", day=2, recipients=["n@x.example"], **kw)
    assert (all_north.customer, all_north.dealer, all_north.covers) == (
        None,
        "North",
        "all customers of North",
    )
    with pytest.raises(ReportError, match="day 29 is not between 1 and 28"):
        add_schedule(north, customer="ACME", cadence="monthly", day=29, recipients=["a@x.example"], **kw)
    with pytest.raises(ReportError, match="'x@y@z' is not an e-mail address"):
        add_schedule(north, customer="ACME", cadence="weekly", day=1, recipients=["ok@x.example x@y@z"], **kw)
    every = add_schedule(
        Scoped.of(ADMIN), customer="", cadence="weekly", day=1, recipients=["b@x.example"], **kw
    )
    assert [s.id for s in schedules(north)] == [made.id, all_north.id]
    assert schedules(south) == [] and len(schedules(Scoped.of(ADMIN))) == 3
    assert schedules(Scoped.of(Viewer("customer", customers=("ACME",)))) == [made]
    with pytest.raises(NotFound):
        delete_schedule(south, made.id)
    with pytest.raises(NotFound):
        delete_schedule(south, all_north.id)  # North's all-customers schedule
    with pytest.raises(NotFound):
        delete_schedule(north, every.id)  # every customer's: administrators only
    delete_schedule(north, made.id)
    delete_schedule(north, all_north.id)
    assert schedules(north) == []


def test_customer_users_schedule_their_own_customers_reports_and_stop_only_their_own(acme: None) -> None:
    """A customer user's schedule is for one of its customers (another's, or all customers:
    NotFound); its customer's users stop it, not the dealer's schedule they see beside it."""
    add_customer("Initech", dealer="North")
    mine = Scoped.of(Viewer("customer", customers=("ACME",)))
    globex = Scoped.of(Viewer("customer", customers=("Globex",)))
    kw: dict[str, Any] = {"kind": "supplies", "fmt": "pdf", "cadence": "weekly", "day": 1, "hour": 6}
    kw["now"] = T0
    made = add_schedule(mine, customer="ACME", recipients=["buyer@acme.example"], by="acme-user", **kw)
    assert (made.customer, made.dealer, made.by_customer, made.served_by) == ("ACME", None, True, "North")
    for customer in ("Globex", "Initech", ""):  # another dealer's, a sibling of the same dealer, all
        with pytest.raises(NotFound):
            add_schedule(mine, customer=customer, recipients=["a@x.example"], by="acme-user", **kw)
    with pytest.raises(ReportError, match="21 addresses are more than 20"):
        add_schedule(
            mine, customer="ACME", recipients=[f"u{i}@acme.example" for i in range(21)], by="acme-user", **kw
        )
    dealers = add_schedule(Scoped.of(NORTH), customer="ACME", recipients=["b@north.example"], by="n", **kw)
    assert dealers.by_customer is False
    assert [s.id for s in schedules(mine)] == [made.id, dealers.id] and schedules(globex) == []
    with pytest.raises(NotFound):  # another customer's schedule: as one that does not exist
        delete_schedule(globex, made.id)
    with pytest.raises(ReportError, match=f"scheduled report {dealers.id} was set up by your dealer"):
        delete_schedule(mine, dealers.id)
    colleague = Scoped.of(Viewer("customer", customers=("ACME", "Initech")))
    assert delete_schedule(colleague, made.id).id == made.id  # any user of the customer may stop it
    assert [s.id for s in schedules(mine)] == [dealers.id]
    delete_schedule(Scoped.of(NORTH), dealers.id)  # the dealer may stop its own, and its customers'
    assert schedules(mine) == []


@pytest.mark.mail
async def test_a_dealers_all_customers_schedule_mails_a_report_of_all_its_customers(
    db: Database,
    acme: None,
    pipeline: Pipeline,
    registry: Registry,
    server_kit: ServerKit,
    mail_stack: MailStack,
    tmp_path: Path,
) -> None:
    """North's schedule over all its customers covers ACME's and Initech's printers, none of
    Globex's (South's)."""
    add_customer("Initech", dealer="North")
    for customer, serial in (("Initech", "INIT-1"), ("Globex", "GLOBEX-1")):
        kit = make_client(tmp_path / customer, f"{customer.lower()}-1")
        registry.add(kit.name, kit.pub_path, customer=customer)
        feed = Feeder(pipeline, kit, server_kit, customer=customer)
        for day in (1, 20):
            at = datetime(2026, 11, day, 9, tzinfo=UTC)
            feed.send(at, [reading(serial, at, total=500 + day, supplies=[("toner", "black", 50.0)])])
    mail_stack.empty_mailbox("alerts")
    made = add_schedule(
        Scoped.of(NORTH),
        customer="",
        kind="meters",
        fmt="csv",
        cadence="monthly",
        day=1,
        hour=6,
        recipients=["alerts@fsm.test"],
        by="north-user",
        now=T0,
    )
    clock = Clock(datetime(2026, 12, 1, 6, 0, 30, tzinfo=UTC))
    mailer = ReportScheduler(db, config(mail_stack), now=clock)
    try:
        assert await mailer.run_once() == 1
    finally:
        await mailer.aclose()
    [(_, raw)] = await asyncio.to_thread(mail_stack.wait_for_messages, 1, user="alerts")
    mail = cast(EmailMessage, message_from_bytes(raw, policy=policy.default))
    # a subject this long is folded before its first word; readers unfold it
    subject = " ".join(mail["Subject"].split())
    assert subject == "[fsm] meters report - all customers of North - 2026-11-01 to 2026-11-30"
    assert mail["X-Fsm-Schedule"] == str(made.id)
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_filename() == "meters-all-North-20261101-20261201.csv"
    rows = list(csv.DictReader(io.StringIO(attachment.get_content())))
    assert {(r["customer"], r["serial"]) for r in rows} == {("ACME", "SCHED-1"), ("Initech", "INIT-1")}
    [sent] = sends(Scoped.of(NORTH))
    assert sent.outcome == "sent" and sent.covers == "all customers of North"
    assert sends(Scoped.of(SOUTH)) == [] and sends(Scoped.of(Viewer("customer", customers=("ACME",)))) == []


@contextmanager
def browser_page(base: str, person: Person) -> Iterator[Any]:
    """A chromium page logged in to the portal at ``base`` as ``person``."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_context(ignore_https_errors=True).new_page()
            page.on("dialog", lambda d: d.accept())  # "Stop sending this report?"
            log_in(page, base, person)
            yield page
        finally:
            browser.close()


@pytest.mark.mail
def test_a_report_a_customer_schedules_in_the_portal_arrives_by_mail_when_its_time_comes(
    db: Database, acme: None, mail_stack: MailStack, pipeline: Pipeline, client_kit: ClientKit,
    server_kit: ServerKit, tmp_path: Path,
) -> None:  # fmt: skip
    """ACME's customer user schedules ACME's weekly meters in chromium; the scheduler, its clock
    advanced to the due time, mails it through Postfix, and the user sees the send."""
    need_chromium()
    mail_stack.empty_mailbox("alerts")
    person = enrol("acme-user", "customer", customers=("ACME",))
    # the send day two days ahead: the week the report covers is then behind us, readings and all
    day = (datetime.now(UTC) + timedelta(days=2)).isoweekday()
    with serving(ServerContext(config(mail_stack), tmp_path), db, tmp_path / "tls") as (base, _):
        with browser_page(base, person) as page:
            page.goto(f"{base}/reports")
            form = page.locator("#add-schedule")
            assert form.locator("select[name=customer] option").all_inner_texts() == ["ACME"]
            form.locator("select[name=kind]").select_option("meters")
            form.locator("select[name=format]").select_option("csv")
            form.locator("select[name=cadence]").select_option("weekly")
            form.locator("input[name=day]").fill(str(day))
            form.locator("input[name=hour]").fill("6")
            form.locator("input[name=recipients]").fill("alerts@fsm.test")
            form.locator("button[type=submit]").click()
            page.wait_for_selector("#schedules td[data-label=recipients]:has-text('alerts@fsm.test')")
            assert page.locator("#schedules form[data-confirm] button").inner_text() == "Stop"
            shoot(page, ARTIFACTS, "reports-customer-scheduled")
        [made] = schedules(Scoped.of(NORTH))  # ACME's dealer sees it
        row = ReportSchedule.get_by_id(made.id)
        assert (made.customer, made.created_by, row.by_customer) == ("ACME", "acme-user", True)
        start, end = period_for("weekly", made.next_due_at)
        feed = Feeder(pipeline, client_kit, server_kit, seq=10)  # after the fixture's ten reports
        for at, total in ((start + timedelta(hours=9), 5000), (start + timedelta(days=2, hours=9), 5600)):
            feed.send(at, [reading("SCHED-2", at, total=total, supplies=[("toner", "black", 50.0)])])

        clock = Clock(made.next_due_at - timedelta(minutes=1))
        mailer = ReportScheduler(db, config(mail_stack), now=clock)

        async def send_when_due() -> list[int]:
            try:
                counts = [await mailer.run_once()]  # not due yet
                clock.at = made.next_due_at + timedelta(seconds=30)
                counts.append(await mailer.run_once())
                counts.append(await mailer.run_once())  # sent: the next one is a week later
                return counts
            finally:
                await mailer.aclose()

        assert asyncio.run(send_when_due()) == [0, 1, 0]
        [(_, raw)] = mail_stack.wait_for_messages(1, user="alerts")
        mail = cast(EmailMessage, message_from_bytes(raw, policy=policy.default))
        last_day = end - timedelta(days=1)
        assert mail["Subject"] == f"[fsm] meters report - ACME - {start:%Y-%m-%d} to {last_day:%Y-%m-%d}"
        assert "Received" in mail and mail["X-Fsm-Schedule"] == str(made.id)  # it went through Postfix
        [attachment] = list(mail.iter_attachments())
        assert attachment.get_filename() == f"meters-ACME-{start:%Y%m%d}-{end:%Y%m%d}.csv"
        rows = list(csv.DictReader(io.StringIO(attachment.get_content())))
        total = next(r for r in rows if r["meter"] == "total" and r["serial"] == "SCHED-2")
        assert (total["start"], total["end"]) == ("5000", "5600")  # the printer read in that week
        [sent] = sends(Scoped.of(Viewer("customer", customers=("ACME",))))
        assert sent.outcome == "sent" and sent.detail.startswith("250")
        assert sent.recipients == ["alerts@fsm.test"]
        assert sent.period_start == start and sends(Scoped.of(SOUTH)) == []
        row = ReportSchedule.get_by_id(made.id)
        assert row.next_due_at == made.next_due_at + timedelta(days=7) and row.last_sent_at == clock.at
        with browser_page(base, person) as page:  # the user sees the send, then stops the schedule
            page.goto(f"{base}/reports")
            assert "alerts@fsm.test" in page.locator("#sends td[data-label=to]").inner_text()
            shoot(page, ARTIFACTS, "reports-customer-sent")
            page.locator("#schedules form[data-confirm] button").click()
            page.wait_for_selector("#schedules td:has-text('No scheduled reports.')")
    assert schedules(Scoped.of(NORTH)) == []


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_relay_that_does_not_answer_is_logged_and_retried(db: Database, acme: None) -> None:
    made = add_schedule(
        Scoped.of(NORTH),
        customer="ACME",
        kind="inventory",
        fmt="html",
        cadence="weekly",
        day=3,
        hour=11,
        recipients=["alerts@fsm.test"],
        by="north-user",
        now=T0,
    )
    clock = Clock(T0 + timedelta(hours=1))
    mailer = ReportScheduler(db, config(port=_closed_port(), security="none", retry_seconds=60), now=clock)
    try:
        assert await mailer.run_once() == 0
        row = ReportSchedule.get_by_id(made.id)
        assert row.attempts == 1 and row.next_due_at == clock.at + timedelta(seconds=60)
        assert await mailer.run_once() == 0  # not yet time to try again
    finally:
        await mailer.aclose()
    [failed] = ReportSend.select()
    assert failed.outcome == "failed" and "127.0.0.1" in failed.detail and failed.size > 0


def test_schedules_of_a_database_from_before_dealer_scopes_keep_working(db: Database, acme: None) -> None:
    """m027 adds the dealer column to the tables m020 made without it; their rows stay."""
    made = add_schedule(
        Scoped.of(NORTH),
        customer="ACME",
        kind="inventory",
        fmt="csv",
        cadence="weekly",
        day=1,
        hour=6,
        recipients=["a@x.example"],
        by="t",
        now=T0,
    )
    for table in ("report_send", "report_schedule"):  # the tables as m020 made them
        db.peewee.execute_sql(f'DROP INDEX "{table}_dealer_id"')
        if db.kind == "postgresql":
            db.peewee.execute_sql(f"ALTER TABLE {table} DROP COLUMN dealer_id")
        else:  # SQLite drops no column a FOREIGN KEY clause names: the table again without it
            _drop_sqlite_column(db, table, "dealer_id")
        assert "dealer_id" not in {c.name for c in db.peewee.get_columns(table)}
    db.peewee.execute_sql("DELETE FROM migrations WHERE name = 'm027_schedule_dealer'")
    assert migrations.migrate(db) == ["m027_schedule_dealer"]
    for table in ("report_send", "report_schedule"):
        assert [i.columns for i in db.peewee.get_indexes(table) if i.name == f"{table}_dealer_id"] == [
            ["dealer_id"]
        ]
    assert [s.id for s in schedules(Scoped.of(NORTH))] == [made.id]
    everyone = add_schedule(
        Scoped.of(NORTH),
        customer="",
        kind="inventory",
        fmt="csv",
        cadence="weekly",
        day=1,
        hour=6,
        recipients=["a@x.example"],
        by="t",
        now=T0,
    )
    assert everyone.dealer == "North" and schedules(Scoped.of(SOUTH)) == []


def _drop_sqlite_column(db: Database, table: str, column: str) -> None:
    [(create,)] = db.peewee.execute_sql(f"SELECT sql FROM sqlite_master WHERE name = '{table}'").fetchall()
    create = re.sub(rf', FOREIGN KEY \("{column}"\) REFERENCES [^,)]+\([^)]*\)[A-Z ]*', "", create)
    create = create.replace(f'"{column}" INTEGER, ', "")
    kept = ", ".join(f'"{c.name}"' for c in db.peewee.get_columns(table) if c.name != column)
    db.peewee.execute_sql("PRAGMA foreign_keys = OFF")
    db.peewee.execute_sql(f'ALTER TABLE {table} RENAME TO "old_{table}"')
    db.peewee.execute_sql(create)
    db.peewee.execute_sql(f'INSERT INTO {table} ({kept}) SELECT {kept} FROM "old_{table}"')
    db.peewee.execute_sql(f'DROP TABLE "old_{table}"')
    db.peewee.execute_sql("PRAGMA foreign_keys = ON")


def test_schedules_of_a_database_from_before_customer_schedules_stay_the_dealers(
    db: Database, acme: None, tmp_path: Path
) -> None:
    """m028 adds report_schedule.by_customer: the schedules made before are a dealer's or an
    administrator's, which customer users may not stop."""
    made = add_schedule(
        Scoped.of(NORTH), customer="ACME", kind="inventory", fmt="csv", cadence="weekly", day=1, hour=6,
        recipients=["a@x.example"], by="t", now=T0,
    )  # fmt: skip
    db.peewee.execute_sql("ALTER TABLE report_schedule DROP COLUMN by_customer")  # as m020 made it
    # a backup taken before m028 restores: its rows are loaded into today's table, then m028 runs
    db.peewee.execute_sql("DELETE FROM migrations WHERE name = 'm028_schedule_by_customer'")
    restored = verify(take_backup(db, tmp_path / "backups").path)
    assert restored.migrated == ["m028_schedule_by_customer"] and restored.rows["report_schedule"] == 1
    assert migrations.migrate(db) == ["m028_schedule_by_customer"]
    acme_user = Scoped.of(Viewer("customer", customers=("ACME",)))
    [before] = schedules(acme_user)
    assert before.id == made.id and before.by_customer is False
    with pytest.raises(ReportError, match="set up by your dealer"):
        delete_schedule(acme_user, made.id)
