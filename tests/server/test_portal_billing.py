"""The billing pages through the HTTP interface (the real app and database, both backends): who may
do which step, re-authentication before approval and export, corrections shown beside the
original, refusals that say what is wrong, hostile notes shown as text, and the exported zip
that `billing verify` accepts."""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from billing_fleet import RESET_TO, add_reset, collect_periods, filled_periods, report_csv
from portal_fleet import HOSTILE, Fleet, Viewer, build_fleet
from portal_kit import PASSWORD, Person, csrf_of, enrol, login, web_ctx
from starlette.testclient import TestClient

from fsm_devtools.corpus import ServerKit
from fsm_protocol.display import device_name
from fsm_protocol.keys import generate_server_signing_keys, load_verify_key
from fsm_server.accounts.models import AuditEntry
from fsm_server.billing import export, workflow
from fsm_server.billing.models import BillingCorrection, BillingMeter
from fsm_server.config import ReportsSection
from fsm_server.db.connect import Database
from fsm_server.db.models import Device, Site
from fsm_server.errors import BillingError
from fsm_server.ingest.pipeline import Pipeline
from fsm_server.portal.billing import period_page
from fsm_server.registry import Registry
from fsm_server.scoping import Scoped
from fsm_server.web import create_app


@pytest.fixture
def fleet(
    db: Database, pipeline: Pipeline, registry: Registry, server_kit: ServerKit, tmp_path: Path
) -> Fleet:
    fleet = build_fleet(pipeline, registry, server_kit, tmp_path)
    add_reset(fleet, pipeline, server_kit, tmp_path)
    return fleet


@pytest.fixture
def periods(db: Database, fleet: Fleet) -> dict[str, int]:
    return collect_periods(db, fleet)


@pytest.fixture
def clients(db: Database, tmp_path: Path) -> Iterator[dict[str, tuple[TestClient, Person]]]:
    ctx = web_ctx(tmp_path)
    out = {}
    for name, role, scope in (
        ("north", "dealer", {"dealer": "North"}),
        ("acme", "customer", {"customers": ("ACME",)}),
    ):
        person = enrol(f"{name}-user", role, **scope)  # type: ignore[arg-type]
        client = TestClient(
            create_app(ctx, db=db, base_url="https://testserver"), base_url="https://testserver"
        )
        client.__enter__()
        login(client, person)
        out[name] = (client, person)
    yield out
    for client, _ in out.values():
        client.__exit__(None, None, None)


def _meter(period_id: int, serial: str, counter: str) -> workflow.MeterView:
    device = Device.get(Device.serial == serial, Device.ip.startswith("10.0."))
    view = workflow.show(period_id)
    return next(m for m in view.meters if m.device_id == device.id and m.counter == counter)


def _reauth(client: TestClient, person: Person, next_path: str) -> None:
    token = csrf_of(client.get("/account").text)
    r = client.post(
        "/reauth",
        data={"csrf": token, "password": PASSWORD, "code": person.code(), "next": next_path},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == next_path


def test_the_list_shows_each_viewers_customers_and_what_is_left_to_settle(
    periods: dict[str, int], clients: dict[str, tuple[TestClient, Person]]
) -> None:
    north, _ = clients["north"]
    page = north.get("/billing").text
    assert {"ACME", "Initech"} <= set(re.findall(r"<h2>(\w+) <small", page))
    assert "Globex" not in page and "Umbrella" not in page
    assert f'href="/billing/periods/{periods["ACME"]}"' in page
    assert f'href="/billing/periods/{periods["Globex"]}"' not in page
    assert '<span class="badge">2</span>' in page  # ACME: the reset total and black counters
    acme, _ = clients["acme"]
    mine = acme.get("/billing").text
    assert "ACME" in mine and "Initech" not in mine
    assert "fsm-server billing collect" not in mine  # a customer is not told about the dealer's CLI


def test_a_customer_reads_and_validates_but_changes_nothing_else(
    periods: dict[str, int], clients: dict[str, tuple[TestClient, Person]]
) -> None:
    acme, _ = clients["acme"]
    pid = periods["ACME"]
    page = acme.get(f"/billing/periods/{pid}").text
    assert "Validate these meters" in page and "/correct" not in page and "Approve" not in page
    token = csrf_of(page)
    reset = _meter(pid, "SHARED-1", "total")
    for url in (
        f"/billing/meters/{reset.id}/correct",
        f"/billing/meters/{reset.id}/exclude",
        f"/billing/periods/{pid}/approve",
        f"/billing/periods/{pid}/export",
        f"/billing/periods/{pid}/exclude-to-settle",
    ):
        r = acme.post(url, data={"csrf": token, "note": "mine", "usage": "1"}, follow_redirects=False)
        assert r.status_code == 404, url
    assert BillingCorrection.select().count() == 0 and not BillingMeter.get_by_id(reset.id).excluded
    r = acme.post(f"/billing/periods/{pid}/validate", data={}, follow_redirects=False)
    assert r.status_code == 403  # no CSRF token
    r = acme.post(f"/billing/periods/{pid}/validate", data={"csrf": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/billing/periods/{pid}?done=validated"
    view = workflow.show(pid)
    assert (view.state, view.validated_by) == ("validated", "acme-user")
    again = acme.post(f"/billing/periods/{pid}/validate", data={"csrf": token})
    assert again.status_code == 400 and "it can become validated only when collected" in again.text
    north, _ = clients["north"]
    r = north.post(f"/billing/periods/{pid}/validate", data={"csrf": csrf_of(north.get("/billing").text)})
    assert r.status_code == 404  # validation is the customer's
    assert AuditEntry.select().where(AuditEntry.action == "billing.validate").count() == 1


def test_a_dealer_settles_flags_approves_and_exports_after_reauthentication(
    periods: dict[str, int], clients: dict[str, tuple[TestClient, Person]], tmp_path: Path
) -> None:
    north, person = clients["north"]
    pid = periods["ACME"]
    page = north.get(f"/billing/periods/{pid}").text
    token = csrf_of(page)
    assert "2 to settle" in page and "Approve…" not in page
    reset, black = _meter(pid, "SHARED-1", "total"), _meter(pid, "SHARED-1", "total_black")
    assert reset.flags == ["reset"] and reset.end_value == RESET_TO

    # refusals name what is wrong, and store nothing
    url = f"/billing/meters/{reset.id}/correct"
    r = north.post(url, data={"csrf": token, "note": " ", "usage": "5"})
    assert r.status_code == 400 and "needs a note saying why" in r.text
    r = north.post(url, data={"csrf": token, "note": "x", "usage": "-5"})
    assert r.status_code == 400 and "is not a page count" in r.text
    r = north.post(url, data={"csrf": token, "note": "x", "usage": "12e3"})
    assert r.status_code == 400 and "&#39;12e3&#39; is not a page count" in r.text
    assert BillingCorrection.select().count() == 0
    r = north.get(f"/billing/periods/{pid}/approve", follow_redirects=False)
    assert r.headers["location"] == f"/reauth?next=%2Fbilling%2Fperiods%2F{pid}%2Fapprove"

    # a correction with a hostile note, stored beside the original and shown as text
    usage = reset.collected_usage + 900
    r = north.post(
        url,
        data={"csrf": token, "note": f"board replaced {HOSTILE}", "usage": f"{usage:,}"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"].endswith(f"#meter-{reset.id}")
    stored = BillingMeter.get_by_id(reset.id)
    assert stored.usage == reset.collected_usage and stored.flags == ["reset"]
    page = north.get(f"/billing/periods/{pid}").text
    assert "<script>alert" not in page and "board replaced &lt;script&gt;" in page
    row = page[page.index(f'id="meter-{reset.id}"') :]
    row = row[: row.index("</tr>")]
    assert f"{usage:,}" in row and f"collected {reset.collected_usage:,}" in row
    r = north.post(
        f"/billing/meters/{black.id}/exclude", data={"csrf": token, "note": "black counter unreadable"}
    )
    assert r.status_code == 200 and "excluded</strong>: black counter unreadable" in r.text
    assert "Approve…" in r.text

    # approval and export wait for the password; a stale POST changes nothing
    r = north.post(f"/billing/periods/{pid}/approve", data={"csrf": token}, follow_redirects=False)
    assert r.headers["location"].startswith("/reauth") and workflow.show(pid).state == "collected"
    _reauth(north, person, f"/billing/periods/{pid}/approve")
    confirm = north.get(f"/billing/periods/{pid}/approve").text
    assert "1 corrected" in confirm and "1 excluded" in confirm
    r = north.post(f"/billing/periods/{pid}/approve", data={"csrf": token}, follow_redirects=False)
    assert r.headers["location"] == f"/billing/periods/{pid}?done=approved"
    assert workflow.show(pid).approved_by == "north-user"
    r = north.post(f"/billing/meters/{reset.id}/correct", data={"csrf": token, "note": "late", "usage": "1"})
    assert r.status_code == 400 and "no longer change" in r.text

    # no signing key yet: the export page says how to make one
    r = north.post(f"/billing/periods/{pid}/export", data={"csrf": token})
    assert r.status_code == 400 and "keys init --signing-only" in r.text
    _, public = generate_server_signing_keys(tmp_path / "keys")
    r = north.post(f"/billing/periods/{pid}/export", data={"csrf": token})
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    assert r.headers["content-disposition"].startswith(f'attachment; filename="billing-{pid}-')
    unpacked = tmp_path / "unpacked"
    zipfile.ZipFile(io.BytesIO(r.content)).extractall(unpacked)
    [csv_path] = unpacked.glob("*.csv")
    manifest = export.verify(csv_path, load_verify_key(public))
    assert csv_path.read_bytes().decode() == report_csv(pid, ReportsSection())
    assert "MP C3004" in csv_path.read_text() and '"<script>alert(""x"")' in csv_path.read_text()
    assert manifest.customer == "ACME" and manifest.approved_by == "north-user"
    assert [m for m, _ in manifest.excluded] == [black.id]
    assert workflow.show(pid).state == "exported"
    csv_path.write_text(csv_path.read_text().replace(f",{usage},", f",{usage + 1},", 1), newline="")
    with pytest.raises(BillingError, match="not the CSV the manifest was signed for"):
        export.verify(csv_path, load_verify_key(public))
    actions = [e.action for e in AuditEntry.select().order_by(AuditEntry.id)]
    assert [a for a in actions if a.startswith("billing.")] == [
        "billing.correct",
        "billing.exclude",
        "billing.approve",
        "billing.export",
    ]
    assert AuditEntry.get(AuditEntry.action == "billing.approve").dealer == "North"


def test_a_dealer_excludes_the_meters_to_settle_at_once_by_flag(
    periods: dict[str, int], clients: dict[str, tuple[TestClient, Person]]
) -> None:
    north, _ = clients["north"]
    pid = periods["ACME"]
    page = north.get(f"/billing/periods/{pid}").text
    token = csrf_of(page)
    assert "Exclude the 2 meter(s) still to settle at once" in page
    assert '<option value="reset">only reset (2)</option>' in page
    url = f"/billing/periods/{pid}/exclude-to-settle"
    for name, pid_elsewhere in periods.items():
        if name in ("Globex", "Umbrella"):  # South's customers: not North's to settle
            r = north.post(
                f"/billing/periods/{pid_elsewhere}/exclude-to-settle", data={"csrf": token, "note": "x"}
            )
            assert r.status_code == 404
    r = north.post(url, data={"csrf": token, "note": "x", "flag": "reboot"})
    assert r.status_code == 400 and "no meter flag named reboot" in r.text
    r = north.post(url, data={"csrf": token, "note": "  ", "flag": "reset"})
    assert r.status_code == 400 and "needs a note saying why" in r.text
    tally = workflow.summary(pid).tally
    assert tally is not None and (tally.excluded, tally.to_settle) == (0, 2)
    r = north.post(
        url, data={"csrf": token, "note": f"board swap {HOSTILE}", "flag": "reset"}, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"] == f"/billing/periods/{pid}?done=excluded"
    view = workflow.show(pid)
    assert view.tally is not None and (view.tally.excluded, view.tally.to_settle) == (2, 0)
    assert {m.exclude_note for m in view.meters if m.excluded} == {f"board swap {HOSTILE}"}
    page = north.get(f"/billing/periods/{pid}?show=flagged").text
    assert "<script>alert" not in page and "Approve…" in page and "still to settle at once" not in page
    entry = AuditEntry.get(AuditEntry.action == "billing.exclude_to_settle")
    assert entry.dealer == "North" and json.loads(entry.detail)["meters"] == 2


#: (maker, model) as printers report them: each way ``device_name`` names a device
NAMES = [
    ("Ricoh", "MP C3004"),
    ("HP", "hp Color LaserJet"),
    ("HP", "HPLaserJet"),
    ("HP", "HP/LaserJet"),
    (None, "Aficio"),
    ("Kyocera", None),
    ("Ricoh", " Ricoh-Aficio "),
    ("Brother", "MFC"),
]


def test_the_period_page_reads_its_devices_page_by_page_in_the_order_of_their_names(db: Database) -> None:
    pid = filled_periods(db)["Customer 000"]
    # a meter with two flags: counted under each in the bulk exclusion's choice
    BillingMeter.update(flags=["colour_over_total", "jump"]).where(
        BillingMeter.id == workflow.show(pid).meters[5].id
    ).execute()
    view = workflow.show(pid)
    ids = sorted({m.device_id for m in view.meters})
    for i, d in enumerate(ids[:80]):  # the first client's site: the names decide the order there
        maker, model = NAMES[i % len(NAMES)]
        Device.update(manufacturer=maker, model=model).where(Device.id == d).execute()
    rows = {d.id: d for d in Device.select(Device, Site).join(Site).where(Device.id.in_(ids))}
    want = sorted(
        ids,
        key=lambda d: (
            rows[d].site.name,
            device_name(rows[d].manufacturer, rows[d].model),
            rows[d].serial or "",
            d,
        ),
    )
    scoped = Scoped.of(Viewer("admin"))
    first = period_page(scoped, pid)
    assert (first.listed, first.pages, len(first.devices)) == (len(ids), 12, 100)
    shown = [period_page(scoped, pid, page=n) for n in range(1, first.pages + 1)]
    assert [g.device.id for p in shown for g in p.devices] == want
    assert period_page(scoped, pid, page=99).page == 12 and period_page(scoped, pid, page=-3).page == 1
    meters: dict[int, list[workflow.MeterView]] = {}
    for m in view.meters:
        meters.setdefault(m.device_id, []).append(m)
    assert all(g.meters == meters[g.device.id] for p in shown for g in p.devices)
    names = {g.device.name for p in shown for g in p.devices}
    assert names >= {"hp Color LaserJet", "HP HPLaserJet", "HP/LaserJet", "Ricoh-Aficio", "Aficio", "Kyocera"}

    noted = [d for d in want if any(m.flags or m.corrections or m.excluded for m in meters[d])]
    flagged = period_page(scoped, pid, flagged_only=True)
    assert [g.device.id for g in flagged.devices] == noted and flagged.listed == len(noted) >= 2
    assert flagged.settle_flags == sorted(Counter(f for m in view.blocking for f in m.flags).items())
    assert {"colour_over_total", "jump"} < {f for f, _ in flagged.settle_flags}
    assert flagged.period.tally == view.tally
