"""The fleet pages through the HTTP interface (the real app and database, both backends): the
tenant-isolation matrix (two dealers with two customers each, every route, every role), hostile
printer text shown as text, the CSV export, acknowledgements and quarantine actions in scope."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from billing_fleet import collect_periods
from portal_fleet import DEALERS, Fleet, build_fleet
from portal_kit import Person, csrf_of, enrol, login, web_ctx
from starlette.testclient import TestClient

from fsm_devtools.corpus import ServerKit
from fsm_server.billing import workflow
from fsm_server.billing.models import BillingCorrection, BillingMeter
from fsm_server.config import KeysSection
from fsm_server.db.connect import Database
from fsm_server.db.models import Customer, Quarantine
from fsm_server.ingest.pipeline import Pipeline
from fsm_server.orders.models import SupplyOrder
from fsm_server.registry import Registry
from fsm_server.web import create_app

PAGES = ("/", "/devices", "/devices.csv", "/alerts", "/clients", "/data", "/billing", "/supplies", "/orders")
PAGES += ("/reports", "/rules")
DEALER_PAGES = ("/customers", "/quarantine", "/orders.csv", "/orders/lead-times", "/branding")
MISSING = 987_654
#: a scheduled report's form (fsm_server.web.pages.reports), less the customer
SCHEDULE = {
    "kind": "inventory",
    "format": "csv",
    "cadence": "weekly",
    "day": "1",
    "hour": "6",
    "recipients": "a@b.example",
}


@dataclass
class User:
    person: Person
    role: str
    sees: frozenset[str]  # the customers it must see
    client: TestClient


@pytest.fixture
def fleet(
    db: Database, pipeline: Pipeline, registry: Registry, server_kit: ServerKit, tmp_path: Path
) -> Fleet:
    return build_fleet(pipeline, registry, server_kit, tmp_path)


@pytest.fixture
def users(db: Database, fleet: Fleet, tmp_path: Path, server_kit: ServerKit) -> Iterator[dict[str, User]]:
    ctx = web_ctx(tmp_path)
    ctx.config.keys = KeysSection(encryption_key=server_kit.key_path)  # retry runs the pipeline
    everyone = frozenset(c for cs in DEALERS.values() for c in cs)
    plan = {
        "admin": ("admin", {}, everyone),
        "north": ("dealer", {"dealer": "North"}, frozenset(DEALERS["North"])),
        "south": ("dealer", {"dealer": "South"}, frozenset(DEALERS["South"])),
        "acme": ("customer", {"customers": ("ACME",)}, frozenset({"ACME"})),
        "globex": ("customer", {"customers": ("Globex",)}, frozenset({"Globex"})),
    }
    out = {}
    with ExitStack() as stack:  # each client keeps one event loop and worker threads while open
        for name, (role, scope, sees) in plan.items():
            person = enrol(f"{name}-user", role, **scope)  # type: ignore[arg-type]
            client = stack.enter_context(
                TestClient(
                    create_app(ctx, db=db, base_url="https://testserver"), base_url="https://testserver"
                )
            )
            login(client, person)
            out[name] = User(person, role, sees, client)
        yield out


def _body(text: str) -> str:
    """A page without what differs per session or request (CSRF token, the user's name)."""
    text = re.sub(r'content="[^"]*"(?= *>)', "", text)
    return re.sub(r'name="csrf" value="[^"]*"', "", text)


def billing_steps(period_id: int) -> list[str]:
    """Every billing route that changes something, on a period and on its first meter."""
    meter = workflow.show(period_id).meters[0].id
    return [
        *(f"/billing/periods/{period_id}/{step}" for step in ("validate", "approve", "export")),
        *(f"/billing/meters/{meter}/{step}" for step in ("correct", "exclude")),
    ]


def test_tenant_isolation_matrix(fleet: Fleet, users: dict[str, User], db: Database) -> None:
    """Every route for every role: another tenant's device, chart, client, quarantine entry or
    billing period answers 404 with the same page as one that does not exist; pages of other
    roles 404 too."""
    periods = collect_periods(db, fleet)
    failures: list[tuple[object, ...]] = []
    for name, user in users.items():
        c = user.client
        missing = _missing_answers(c, name, failures)
        _role_pages(c, name, user, failures)
        for customer, device_ids in fleet.devices.items():
            mine = customer in user.sees
            _reads(c, name, user, fleet, periods[customer], customer, mine, missing, failures)
            _writes_refused(c, name, user, fleet, periods[customer], customer, mine, failures)
            _lists(c, name, user, device_ids, mine, failures)
            _unchanged(name, fleet, customer, failures)
        r = c.get(f"/quarantine/{fleet.stranger_quarantine}")
        if r.status_code != (200 if user.role == "admin" else 404):
            failures.append((name, "stranger quarantine", r.status_code))
        _all_customers(c, name, user, missing, failures)
    assert failures == []
    assert {workflow.show(p).state for p in periods.values()} == {"collected"}
    assert (
        BillingCorrection.select().count() == 0
        and not BillingMeter.select().where(BillingMeter.excluded).exists()
    )


Failures = list[tuple[object, ...]]


def _missing_answers(c: Any, name: str, failures: Failures) -> dict[str, Any]:
    """What each kind of object answers when it does not exist (404, the page others compare to)."""
    missing = {
        "device": c.get(f"/devices/{MISSING}"),
        "chart": c.get(f"/devices/{MISSING}/counters.json"),
        "client": c.get("/clients/no-such-client"),
        "quarantine": c.get(f"/quarantine/{MISSING}"),
        "period": c.get(f"/billing/periods/{MISSING}"),
        "order": c.get(f"/orders/{MISSING}"),
        "report": c.get("/reports/download?kind=inventory&customer=no-such-customer"),
    }
    for kind, r in missing.items():
        if r.status_code != 404:
            failures.append((name, kind, "missing", r.status_code))
    return missing


def _role_pages(c: Any, name: str, user: User, failures: Failures) -> None:
    for page in PAGES + DEALER_PAGES:
        want = 404 if page in DEALER_PAGES and user.role == "customer" else 200
        r = c.get(page)
        if r.status_code != want:
            failures.append((name, page, r.status_code))


def _reads(
    c: Any,
    name: str,
    user: User,
    fleet: Fleet,
    period: int,
    customer: str,
    mine: bool,
    missing: dict[str, Any],
    failures: Failures,
) -> None:
    """Each object of ``customer``: 200 when the user's tenancy holds it, else the missing page."""
    device_ids = fleet.devices[customer]
    urls = {
        "device": f"/devices/{device_ids[0]}",
        "chart": f"/devices/{device_ids[0]}/counters.json",
        "client": f"/clients/{quote(fleet.clients[customer])}",
        "quarantine": f"/quarantine/{fleet.quarantine[customer]}",
        "period": f"/billing/periods/{period}",
        "order": f"/orders/{first_order(customer)}",
        "report": f"/reports/download?kind=inventory&format=csv&customer={quote(customer)}",
    }
    for kind, url in urls.items():
        want = 200 if mine and not (kind == "quarantine" and user.role == "customer") else 404
        r = c.get(url)
        if r.status_code != want:
            failures.append((name, url, r.status_code, want))
        elif want == 404 and _body(r.text) != _body(missing[kind].text):
            failures.append((name, url, "404 differs from a missing object's"))


def _all_customers(c: Any, name: str, user: User, missing: dict[str, Any], failures: Failures) -> None:
    """The report and schedule over "all customers" (``customer`` empty): every customer for an
    administrator, the dealer's own for a dealer user, the missing page for a customer user."""
    r = c.get("/reports/download?kind=inventory&format=csv&customer=")
    if user.role == "customer":
        if r.status_code != 404 or _body(r.text) != _body(missing["report"].text):
            failures.append((name, "all-customers report", r.status_code))
        form = {"csrf": csrf_of(c.get("/reports").text), **SCHEDULE, "customer": ""}
        if (r := c.post("/reports/schedules", data=form, follow_redirects=False)).status_code != 404:
            failures.append((name, "all-customers schedule", r.status_code))
        return
    covered = (
        {row["customer"] for row in csv.DictReader(io.StringIO(r.text))} if r.status_code == 200 else None
    )
    if covered != set(user.sees):
        failures.append((name, "all-customers report covers", r.status_code, covered))


def _writes_refused(
    c: Any, name: str, user: User, fleet: Fleet, period: int, customer: str, mine: bool, failures: Failures
) -> None:
    """State changes on another tenant's objects (or by a customer user, who may schedule its own
    customers' reports): 404."""
    device_ids = fleet.devices[customer]
    csrf = csrf_of(c.get("/data").text)
    if not (mine and user.role != "customer"):  # the allowed ones are tested elsewhere
        for url in (
            f"/alerts/{device_ids[0]}/jam/ack",
            f"/quarantine/{fleet.quarantine[customer]}/dismiss",
            f"/orders/{first_order(customer)}/approve",
            f"/orders/{first_order(customer)}/ignore",
            *(() if mine else ("/reports/schedules",)),
        ):
            form = {"csrf": csrf, **SCHEDULE, "customer": customer}  # fields the others ignore
            r = c.post(url, data=form, follow_redirects=False)
            if r.status_code != 404:
                failures.append((name, "POST", url, r.status_code))
    if mine:
        return
    for url in billing_steps(period):  # every billing step on another tenant's period or meter
        r = c.post(url, data={"csrf": csrf, "note": "x", "usage": "1"}, follow_redirects=False)
        if r.status_code != 404:
            failures.append((name, "POST", url, r.status_code))
    for url in (f"/billing/periods/{period}/{s}" for s in ("approve", "export")):
        if (r := c.get(url, follow_redirects=False)).status_code != 404:
            failures.append((name, "GET", url, r.status_code))


def _lists(c: Any, name: str, user: User, device_ids: list[int], mine: bool, failures: Failures) -> None:
    """The devices and supplies lists link the customer's devices exactly when they are the user's."""
    for listing in ("/devices", "/supplies"):
        page = c.get(listing).text
        for device_id in device_ids:
            if (f'href="/devices/{device_id}"' in page) != mine:
                failures.append((name, listing, device_id))
    if user.role != "customer":
        csv_text = c.get("/orders.csv").text
        if csv_text.count("\r\n") != 1:  # nothing approved yet
            failures.append((name, "orders.csv", csv_text))


def _unchanged(name: str, fleet: Fleet, customer: str, failures: Failures) -> None:
    status = Quarantine.get_by_id(fleet.quarantine[customer]).status
    if status != "held":
        failures.append((name, "quarantine entry changed", customer, status))
    if SupplyOrder.get_by_id(first_order(customer)).state != "proposed":
        failures.append((name, "order changed", customer))


def first_order(customer: str) -> int:
    """The first supply order ingest proposed for ``customer`` (the fleet's black toners run low)."""
    return int(
        SupplyOrder.select(SupplyOrder.id)
        .join_from(SupplyOrder, SupplyOrder.customer.rel_model)
        .where(SupplyOrder.customer.rel_model.name == customer)
        .order_by(SupplyOrder.id)
        .scalar()
    )


def test_hostile_text_is_shown_as_text(fleet: Fleet, users: dict[str, User]) -> None:
    c = users["acme"].client
    hostile_device = fleet.devices["ACME"][1]
    hostile_order = SupplyOrder.get(SupplyOrder.device == hostile_device).id
    for url in (
        "/devices",
        f"/devices/{hostile_device}",
        "/",
        "/alerts",
        "/supplies",
        "/orders",
        f"/orders/{hostile_order}",
    ):
        html = c.get(url).text
        assert "<script>alert" not in html and "<img src=x" not in html, url
    page = c.get(f"/devices/{hostile_device}").text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<script" not in re.sub(r'<script src="/static/[^"]+" defer></script>', "", page)


def test_devices_csv_is_scoped_and_defused(fleet: Fleet, users: dict[str, User]) -> None:
    r = users["north"].client.get("/devices.csv?customer=ACME")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    lines = r.text.strip().split("\r\n")
    assert len(lines) == 3 and all(line.startswith("ACME,") for line in lines[1:])
    assert users["north"].client.get("/devices.csv?customer=Globex").text.count("\r\n") == 1


def test_htmx_requests_get_the_table_only(fleet: Fleet, users: dict[str, User]) -> None:
    c = users["admin"].client
    full = c.get("/devices?status=alerts")
    part = c.get("/devices?status=alerts", headers={"HX-Request": "true"})
    assert "<html" in full.text and "<html" not in part.text
    assert len(re.findall(r'href="/devices/\d+"', part.text)) == 4 and "4 devices" in part.text


def test_a_dealer_acknowledges_and_acts_on_its_quarantine(fleet: Fleet, users: dict[str, User]) -> None:
    north = users["north"].client
    device_id = fleet.devices["ACME"][0]
    csrf = csrf_of(north.get("/alerts").text)
    r = north.post(f"/alerts/{device_id}/jam/ack", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303
    assert "acknowledged by north-user" in north.get(f"/devices/{device_id}").text
    entry = fleet.quarantine["ACME"]
    r = north.post(f"/quarantine/{entry}/dismiss", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and Quarantine.get_by_id(entry).status == "dismissed"
    r = north.post(f"/quarantine/{entry}/retry", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303
    assert Quarantine.get_by_id(entry).status == "dismissed"  # still from days ahead of the clock
    audit = users["admin"].client.get("/audit").text
    assert "quarantine.dismiss" in audit and "quarantine.retry" in audit and "alert.acknowledge" in audit
    # a customer may not act at all, even on its own entry
    acme = users["acme"].client
    r = acme.post(
        f"/quarantine/{entry}/retry", data={"csrf": csrf_of(acme.get("/data").text)}, follow_redirects=False
    )
    assert r.status_code == 404


def test_a_dealer_steps_orders_sets_lead_times_and_filters_supplies(
    fleet: Fleet, users: dict[str, User]
) -> None:
    north = users["north"].client
    order_id = first_order("ACME")
    csrf = csrf_of(north.get("/orders").text)
    assert f'action="/orders/{order_id}/approve"' in north.get("/orders").text
    r = north.post(
        f"/orders/{order_id}/approve", data={"csrf": csrf, "back": "/orders"}, follow_redirects=False
    )
    assert (r.status_code, r.headers["location"]) == (303, "/orders")
    again = north.post(f"/orders/{order_id}/approve", data={"csrf": csrf})
    assert again.status_code == 409 and "it can be approved only when proposed" in again.text
    lines = north.get("/orders.csv").text.strip().split("\r\n")
    assert len(lines) == 2 and lines[1].startswith(f"{order_id},ACME,")
    assert users["south"].client.get("/orders.csv").text.count("\r\n") == 1
    r = north.post(f"/orders/{order_id}/ordered", data={"csrf": csrf, "ref": "SO-1"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/orders/{order_id}"  # no back: the order
    page = north.get(f"/orders/{order_id}").text
    assert "SO-1" in page and "approved" in page and "north-user" in page
    no_csrf = north.post(f"/orders/{order_id}/delivered", data={})
    assert no_csrf.status_code == 403
    # an order of Initech is ignored with a reason; without one it is refused
    other = first_order("Initech")
    assert north.post(f"/orders/{other}/ignore", data={"csrf": csrf, "reason": " "}).status_code == 409
    north.post(f"/orders/{other}/ignore", data={"csrf": csrf, "reason": "buys its own"})
    assert SupplyOrder.get_by_id(other).ignore_reason == "buys its own"
    # lead times: set for a customer in scope, refused out of range, 404 for another dealer's; a
    # change is applied to the customer's supplies at once (the order removed here comes back)
    acme_id = Customer.get(Customer.name == "ACME").id
    gone = (
        SupplyOrder.delete().where(SupplyOrder.customer == acme_id, SupplyOrder.state == "proposed").execute()
    )
    assert gone >= 1
    r = north.post(
        "/orders/lead-times", data={"csrf": csrf, "customer": "ACME", "lead_days": "9", "margin_days": "2"}
    )
    assert r.status_code == 200 and 'value="9"' in r.text
    again = SupplyOrder.select().where(SupplyOrder.customer == acme_id, SupplyOrder.state == "proposed")
    assert [(o.lead_days, o.margin_days) for o in again] == [(9, 2)] * gone
    bad = north.post(
        "/orders/lead-times", data={"csrf": csrf, "customer": "ACME", "lead_days": "999", "margin_days": "2"}
    )
    assert bad.status_code == 400
    r = north.post(
        "/orders/lead-times", data={"csrf": csrf, "customer": "Globex", "lead_days": "1", "margin_days": "1"}
    )
    assert r.status_code == 404
    audit = users["admin"].client.get("/audit").text
    assert "order.approve" in audit and "order.ignore" in audit and "order.lead_time" in audit
    # customers read their orders and act on none
    acme = users["acme"].client
    assert "SO-1" in acme.get(f"/orders/{order_id}").text
    assert 'action="/orders/' not in acme.get("/orders").text
    r = acme.post(f"/orders/{order_id}/delivered", data={"csrf": csrf_of(acme.get("/data").text)})
    assert r.status_code == 404
    assert acme.get("/orders.csv").status_code == 404
    # the supplies page (one fleet build for both: it is the slow part)
    c = users["admin"].client
    every = c.get("/supplies").text
    assert "16 supplies" in every  # 8 printers, a black and a cyan toner each
    black = c.get("/supplies?color=black&sort=level").text
    assert "8 supplies" in black and "cyan" not in black.split("<tbody>")[1]
    soon = c.get("/supplies?days_max=7", headers={"HX-Request": "true"}).text
    assert "<html" not in soon and "supplies" in soon
    assert "0 supplies" in c.get("/supplies?kind=opc").text
    assert "16 supplies" in c.get("/supplies?kind=<script>&color=x&level_max=abc&page=-3").text  # ignored
    low = c.get("/supplies?level_max=10").text
    assert "0 supplies" not in low and "70 %" not in low
    assert "4 supplies" in users["acme"].client.get("/supplies").text


def test_reports_naming_another_customer_are_flagged_for_dealers_not_customers(
    fleet: Fleet, users: dict[str, User]
) -> None:
    north = users["north"].client
    clients = north.get("/clients").text
    # each of North's clients sent one report naming "Elsewhere": loaded under its own customer
    badge = r'<div class="badge warn claim">its reports name <q>([^<]*)</q> \((\d+), last #(\d+)\)'
    assert [(name, n) for name, n, _ in re.findall(badge, clients)] == [("Elsewhere", "1")] * 2, clients
    tile = "<strong>{}</strong> clients naming another customer"
    assert tile.format(2) in north.get("/").text
    assert tile.format(4) in users["admin"].client.get("/").text
    acme = users["acme"].client
    assert "Elsewhere" not in acme.get("/clients").text
    assert "naming another customer" not in acme.get("/").text
