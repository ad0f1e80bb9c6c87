"""Reports from the portal (the real app and database, both backends): a report for a customer in
scope downloads as HTML, CSV and PDF; another tenant's customer answers 404; administrators run
a report over every customer, dealer users over all their customers (and no other dealer's),
customer users over neither. The PDF is printed by Debian's chromium and one page is
rendered to PNG (poppler's pdftoppm) for a person to look at, kept in ARTIFACTS; it carries the
customer's dealer's logo and colours."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from browser_kit import need_chromium
from portal_fleet import Fleet, build_fleet
from portal_kit import csrf_of, web_ctx
from portal_reports_kit import PDFTOPPM, User, logged_in, pdf_page, png

from fsm_devtools.corpus import ServerKit
from fsm_server.branding import set_branding
from fsm_server.db.connect import Database
from fsm_server.db.models import Dealer
from fsm_server.ingest.pipeline import Pipeline
from fsm_server.registry import Registry

ARTIFACTS = Path("/tmp/fsm-portal-reports")
NOW = datetime.now(UTC)


@pytest.fixture
def fleet(
    db: Database, pipeline: Pipeline, registry: Registry, server_kit: ServerKit, tmp_path: Path
) -> Fleet:
    return build_fleet(pipeline, registry, server_kit, tmp_path)


@pytest.fixture
def users(db: Database, fleet: Fleet, tmp_path: Path) -> Iterator[dict[str, User]]:
    yield from logged_in(web_ctx(tmp_path), db, fleet)


def test_a_dealer_downloads_its_customers_report_as_csv_and_html(users: dict[str, User]) -> None:
    north = users["north"].client
    page = north.get("/reports")
    assert page.status_code == 200
    assert 'value="ACME"' in page.text and 'value="Initech"' in page.text and "Globex" not in page.text
    assert "all customers of North" in page.text  # one of its customers, or all of them
    r = north.get("/reports/download", params={"kind": "supplies", "customer": "ACME", "format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"].startswith("attachment; filename=")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert rows and {row["customer"] for row in rows} == {"ACME"}
    r = north.get(
        "/reports/download",
        params={"kind": "inventory", "customer": "Initech", "format": "html", "from": "2026-01-01"},
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "fsm inventory report - Initech" in r.text and "ACME" not in r.text
    # the download is in the audit log
    assert "report.download" in users["admin"].client.get("/audit").text


def test_another_tenants_customer_is_not_found_and_all_is_for_admins_and_dealers(
    users: dict[str, User],
) -> None:
    for name, user in users.items():
        for customer in ("ACME", "Globex", "Initech", "Umbrella", "No such customer"):
            r = user.client.get("/reports/download", params={"kind": "alerts", "customer": customer})
            want = 200 if customer in user.sees else 404
            assert r.status_code == want, (name, customer, r.status_code)
        r = user.client.get("/reports/download", params={"kind": "alerts", "customer": ""})
        assert r.status_code == (404 if user.role == "customer" else 200), name
        if user.role == "customer":  # no "all" choice on its page either
            assert '<option value=""' not in user.client.get("/reports").text
    admin = users["admin"].client
    r = admin.get("/reports/download", params={"kind": "inventory", "customer": "", "format": "csv"})
    assert {row["customer"] for row in csv.DictReader(io.StringIO(r.text))} == set(users["admin"].sees)


def test_a_dealers_all_customers_report_lists_its_customers_devices_only(users: dict[str, User]) -> None:
    def inventory(user: str, customer: str, fmt: str = "csv", kind: str = "inventory") -> str:
        params = {"kind": kind, "customer": customer, "format": fmt, "from": "2026-01-01"}
        r = users[user].client.get("/reports/download", params=params)
        assert r.status_code == 200, (user, r.text[:500])
        return r.text

    everything = list(csv.DictReader(io.StringIO(inventory("admin", ""))))
    for dealer in ("north", "south"):
        rows = list(csv.DictReader(io.StringIO(inventory(dealer, ""))))
        mine = users[dealer].sees
        assert {r["customer"] for r in rows} == mine
        for kind in ("meters", "supplies", "alerts", "health"):  # each report's own query
            text = inventory(dealer, "", kind=kind)
            others = {c for c in users["admin"].sees if c not in mine}
            assert not any(c in text for c in others), (dealer, kind)
        assert {
            r["customer"] for r in csv.DictReader(io.StringIO(inventory(dealer, "", kind="supplies")))
        } == mine
        assert sorted((r["customer"], r["serial"]) for r in rows) == sorted(
            (r["customer"], r["serial"]) for r in everything if r["customer"] in mine
        )
    # the page names the dealer and carries its branding; the other dealer's customers are absent
    north = Dealer.get(Dealer.name == "North")
    set_branding(north, colour="#0b6e4f", accent="#c2410c", logo=png(60, 16, (11, 110, 79)), by="t", now=NOW)
    page = inventory("north", "", "html")
    assert "fsm inventory report - all customers of North" in page
    assert "#0b6e4f" in page and "data:image/png;base64," in page
    assert "ACME" in page and "Initech" in page and "Globex" not in page and "Umbrella" not in page
    r = users["north"].client.get("/reports/download", params={"kind": "alerts", "customer": ""})
    assert "alerts-all-North-" in r.headers["content-disposition"]
    assert "all customers of North" in users["admin"].client.get("/audit").text


def test_bad_requests_say_what_is_wrong(users: dict[str, User]) -> None:
    c = users["north"].client
    r = c.get("/reports/download", params={"kind": "sales", "customer": "ACME"})
    assert r.status_code == 400 and "report kind &#39;sales&#39; is not one of" in r.text
    r = c.get("/reports/download", params={"kind": "meters", "customer": "ACME", "from": "yesterday"})
    assert r.status_code == 400 and "is not YYYY-MM-DD" in r.text
    r = c.get("/reports/download", params={"kind": "meters", "customer": "ACME", "format": "docx"})
    assert r.status_code == 400 and "pick html, csv or pdf" in r.text


@pytest.mark.parametrize("db_backend", ["sqlite"])
def test_the_pdf_opens_and_its_first_page_shows_the_report(users: dict[str, User]) -> None:
    need_chromium()
    if not Path(PDFTOPPM).exists():
        pytest.skip("poppler-utils is not installed (scripts/setup --for test installs it)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    north = Dealer.get(Dealer.name == "North")
    set_branding(north, colour="#0b6e4f", accent="#c2410c", logo=png(180, 48, (11, 110, 79)), by="t", now=NOW)
    r = users["north"].client.get(
        "/reports/download", params={"kind": "supplies", "customer": "ACME", "format": "pdf"}
    )
    assert r.status_code == 200, r.text[:2000]
    assert r.headers["content-type"] == "application/pdf" and r.content.startswith(b"%PDF-")
    pdf = ARTIFACTS / "supplies-acme.pdf"
    pdf.write_bytes(r.content)
    width, height, ink = pdf_page(pdf, ARTIFACTS / "supplies-acme-page1")
    assert width > height  # A4 landscape, as the report's print CSS asks
    assert 0.005 < ink < 0.5, ink  # text and charts on white, not a blank or black page


def test_dealers_schedule_reports_for_their_customers_only(users: dict[str, User]) -> None:
    north, south, acme = users["north"].client, users["south"].client, users["acme"].client
    form = {
        "kind": "meters",
        "customer": "ACME",
        "format": "pdf",
        "cadence": "monthly",
        "day": "1",
        "hour": "6",
        "recipients": "billing@acme.example, boss@acme.example",
    }
    r = north.post("/reports/schedules", data={**form, "csrf": csrf_of(north.get("/reports").text)})
    assert r.status_code == 200 and "monthly on day 1 at 06:00 UTC" in r.text  # followed to the page
    assert "billing@acme.example, boss@acme.example" in r.text
    [schedule_id] = [int(n) for n in re.findall(r'action="/reports/schedules/(\d+)/delete"', r.text)]
    # ACME's user sees the schedule, may not stop it; South sees nothing of it
    page = acme.get("/reports").text
    assert "monthly on day 1 at 06:00 UTC" in page and f"/reports/schedules/{schedule_id}/delete" not in page
    assert "set up by your dealer" in page
    r = acme.post(f"/reports/schedules/{schedule_id}/delete", data={"csrf": csrf_of(page)})
    assert r.status_code == 403 and "ask your dealer to stop or change it" in r.text
    assert "monthly on day 1" not in south.get("/reports").text
    south_csrf = csrf_of(south.get("/reports").text)
    r = south.post("/reports/schedules", data={**form, "csrf": south_csrf})
    assert r.status_code == 404  # ACME is not South's customer
    r = south.post(f"/reports/schedules/{schedule_id}/delete", data={"csrf": south_csrf})
    assert r.status_code == 404
    r = north.post(
        "/reports/schedules",
        data={**form, "recipients": "not an address", "csrf": csrf_of(north.get("/reports").text)},
    )
    assert r.status_code == 400 and "&#39;not&#39; is not an e-mail address" in r.text
    r = north.post(
        f"/reports/schedules/{schedule_id}/delete", data={"csrf": csrf_of(north.get("/reports").text)}
    )
    assert r.status_code == 200 and "No scheduled reports." in r.text
    audit = users["admin"].client.get("/audit").text
    assert "report.schedule" in audit and "report.unschedule" in audit


def test_customer_users_schedule_their_own_customers_reports(users: dict[str, User]) -> None:
    """ACME's user schedules ACME's supplies report and stops it; another customer's name or the
    dealer-wide choice is a 404 whatever the form says, so is another customer's schedule; the
    dealer sees what its customer did in its audit log."""
    acme, globex, north = users["acme"].client, users["globex"].client, users["north"].client
    page = acme.get("/reports").text
    assert 'id="add-schedule"' in page and "all customers" not in page  # no dealer-wide choice
    form = {"kind": "supplies", "customer": "ACME", "format": "csv", "cadence": "weekly", "day": "2",
            "hour": "7", "recipients": "buyer@acme.example", "csrf": csrf_of(page)}  # fmt: skip
    r = acme.post("/reports/schedules", data=form)
    assert r.status_code == 200 and "every Tuesday at 07:00 UTC" in r.text
    [schedule_id] = [int(n) for n in re.findall(r'action="/reports/schedules/(\d+)/delete"', r.text)]
    for customer in ("Globex", "Initech", ""):  # South's, North's other customer, all of North's
        assert acme.post("/reports/schedules", data={**form, "customer": customer}).status_code == 404
    r = acme.post("/reports/schedules", data={**form, "recipients": " ".join(["x@acme.example"] * 5000)})
    assert r.status_code == 400 and "more than 20" in r.text  # 4,000 characters kept: 21+ addresses
    # Globex's user neither sees nor stops it; North, ACME's dealer, sees it and the audit entry
    globex_page = globex.get("/reports").text
    assert "every Tuesday" not in globex_page
    r = globex.post(f"/reports/schedules/{schedule_id}/delete", data={"csrf": csrf_of(globex_page)})
    assert r.status_code == 404
    assert "every Tuesday at 07:00 UTC" in north.get("/reports").text
    r = acme.post(f"/reports/schedules/{schedule_id}/delete", data={"csrf": form["csrf"]})
    assert r.status_code == 200 and "every Tuesday" not in r.text
    audit = north.get("/audit").text
    assert "report.schedule" in audit and "report.unschedule" in audit and "acme-user" in audit
