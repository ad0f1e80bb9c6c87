"""The read-only API through HTTP (the real app and database, both backends): the portal's
tenant-isolation matrix extended to every API route and every token scope, revoked and unknown
tokens, the session cookie refused, rate limits, paging, the portal's API tokens page and the CLI."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from portal_fleet import DEALERS, Fleet, build_fleet
from portal_kit import Person, csrf_of, enrol, login, web_ctx
from starlette.testclient import TestClient

from fsm_devtools.corpus import ServerKit
from fsm_server import audit
from fsm_server.api import endpoints, tokens
from fsm_server.api.models import ApiToken
from fsm_server.billing.workflow import collect_period
from fsm_server.cli import main
from fsm_server.db.connect import Database
from fsm_server.ingest.pipeline import Pipeline
from fsm_server.orders.models import SupplyOrder
from fsm_server.registry import Registry
from fsm_server.web import create_app

BASE = "https://testserver"
#: rate limits no test here reaches but the one about them
UNLIMITED = {"api_burst": 10_000, "api_requests_per_minute": 100_000, "api_failed_auth_per_minute": 10_000}
MISSING = 987_654
#: token name -> (dealer, customer) it is made for
SCOPES = {
    "north": ("North", None),
    "south": ("South", None),
    "acme": (None, "ACME"),
    "globex": (None, "Globex"),
}


def visible(name: str) -> set[str]:
    dealer, customer = SCOPES[name]
    return set(DEALERS[dealer]) if dealer else {customer or ""}


@pytest.fixture
def fleet(
    db: Database, pipeline: Pipeline, registry: Registry, server_kit: ServerKit, tmp_path: Path
) -> Fleet:
    return build_fleet(pipeline, registry, server_kit, tmp_path)


@pytest.fixture
def client(db: Database, tmp_path: Path) -> Iterator[TestClient]:
    ctx = web_ctx(tmp_path, **UNLIMITED)
    with TestClient(create_app(ctx, db=db, base_url=BASE), base_url=BASE) as c:
        yield c


@pytest.fixture
def secrets(fleet: Fleet) -> dict[str, str]:
    out = {}
    for name, (dealer, customer) in SCOPES.items():
        _, out[name] = tokens.create(f"{name} ERP", dealer=dealer, customer=customer, by=None)
    return out


def get(client: TestClient, secret: str, url: str, **params: Any) -> Any:
    return client.get(url, params=params, headers={"Authorization": f"Bearer {secret}"})


def _periods(fleet: Fleet, db: Database) -> dict[str, int]:
    now = datetime.now(UTC)
    return {
        c: collect_period(db, c, start=fleet.start, end=now - timedelta(minutes=1), now=now).id
        for c in fleet.devices
    }


@dataclass
class Matrix:
    """What one token's requests found wrong, and which operations they exercised."""

    client: TestClient
    fleet: Fleet
    periods: dict[str, int]
    secret: str = ""  # the token under test
    covered: set[str] = field(default_factory=set)
    failures: list[object] = field(default_factory=list)

    def expect(self, token: str, operation: str, url: str, status: int, **params: Any) -> Any:
        self.covered.add(operation)
        r = get(self.client, self.secret, url, **params)
        if r.status_code != status:
            self.failures.append((token, url, params, r.status_code, status, r.text[:200]))
        return r

    def listed(self, token: str, operation: str, url: str, key: str) -> set[int]:
        return {item[key] for item in self.expect(token, operation, url, 200).json()["items"]}

    def lists(self, token: str, mine: set[str]) -> None:
        """Each list holds exactly the token's own objects."""
        own = {d for c in mine for d in self.fleet.devices[c]}
        found = {
            "devices": self.listed(token, "listDevices", "/api/v1/devices", "id"),
            "supplies": self.listed(token, "listSupplies", "/api/v1/supplies", "device_id"),
            "alerts": self.listed(token, "listAlerts", "/api/v1/alerts", "device_id"),
            "periods": self.listed(token, "listBillingPeriods", "/api/v1/billing/periods", "id"),
            "orders": self.listed(token, "listOrders", "/api/v1/orders", "device_id"),
        }
        want = {
            "devices": own,
            "supplies": own,
            "alerts": {self.fleet.devices[c][0] for c in mine},  # the first printer of each has a jam
            "periods": {self.periods[c] for c in mine},
            "orders": own,  # the forecast proposed an order for each printer's black toner
        }
        if found != want:
            self.failures.append((token, "lists", found, want))

    def objects(self, token: str, customer: str, ours: bool, start: str) -> None:
        """A customer's objects: 200 when the token's, else the 404 a missing object gets."""
        want = 200 if ours else 404
        missing = get(self.client, self.secret, f"/api/v1/devices/{MISSING}").text
        for device_id in self.fleet.devices[customer]:
            r = self.expect(token, "getDevice", f"/api/v1/devices/{device_id}", want)
            if ours and r.json().get("customer") != customer:
                self.failures.append((token, "device of", customer, r.text[:200]))
            if not ours and r.text.replace(str(device_id), "N") != missing.replace(str(MISSING), "N"):
                self.failures.append((token, device_id, "404 differs from a missing device's"))
            self.expect(token, "listSupplies", "/api/v1/supplies", want, device_id=device_id)
        r = self.expect(token, "getBillingPeriod", f"/api/v1/billing/periods/{self.periods[customer]}", want)
        if ours and {m["device_id"] for m in r.json()["meters"]} != set(self.fleet.devices[customer]):
            self.failures.append((token, "period meters", customer))
        r = self.expect(token, "listMeters", "/api/v1/meters", want, customer=customer, start=start)
        if ours and (
            {m["device_id"] for m in r.json()["items"]} != set(self.fleet.devices[customer])
            or any(m["usage"] <= 0 for m in r.json()["items"])
        ):
            self.failures.append((token, "meters of", customer, r.text[:300]))
        for order in SupplyOrder.select().where(SupplyOrder.device.in_(self.fleet.devices[customer])):
            r = self.expect(token, "getOrder", f"/api/v1/orders/{order.id}", want)
            if ours and r.json()["customer"] != customer:
                self.failures.append((token, "order of", customer, r.text[:200]))
        for url in ("devices", "supplies", "alerts", "billing/periods", "orders"):
            url = f"/api/v1/{url}"
            r = self.expect(token, url, url, want, customer=customer)
            if ours and not r.json()["items"]:
                self.failures.append((token, url, customer, "empty"))
        if not ours:
            other = get(self.client, self.secret, "/api/v1/meters", customer=customer).text
            nothing = get(self.client, self.secret, "/api/v1/meters", customer="NoSuch").text
            if other.replace(customer, "C") != nothing.replace("NoSuch", "C"):
                self.failures.append((token, "meters 404 differs", customer))


def test_api_tenant_isolation_matrix(
    fleet: Fleet, db: Database, client: TestClient, secrets: dict[str, str]
) -> None:
    """Every route for every token: its own objects 200, another tenant's 404 with the answer a
    missing one gets, and lists that hold exactly its own."""
    matrix = Matrix(client, fleet, _periods(fleet, db))
    start = fleet.start.date().isoformat()  # and a month from there: the whole fleet's history
    for token, secret in secrets.items():
        matrix.secret = secret
        mine = visible(token)
        matrix.lists(token, mine)
        matrix.expect(token, "getDevice", f"/api/v1/devices/{MISSING}", 404)
        matrix.expect(token, "getBillingPeriod", f"/api/v1/billing/periods/{MISSING}", 404)
        matrix.expect(token, "getOrder", f"/api/v1/orders/{MISSING}", 404)
        for customer in fleet.devices:
            matrix.objects(token, customer, customer in mine, start)
    assert matrix.failures == []
    assert {e.operation for e in endpoints()} <= matrix.covered  # a new endpoint must join this matrix


def test_unknown_revoked_or_missing_tokens_and_session_cookies_are_401(
    fleet: Fleet, db: Database, client: TestClient, secrets: dict[str, str], tmp_path: Path
) -> None:
    ok = get(client, secrets["acme"], "/api/v1/devices")
    assert ok.status_code == 200 and ok.headers["content-type"] == "application/json"
    [info] = [t for t in tokens.list_tokens(None) if t.name == "acme ERP"]
    assert info.last_used_at is not None and info.last_used_address == "testclient"
    tokens.revoke(info.id, by=None)
    for headers in (
        {"Authorization": f"Bearer {secrets['acme']}"},  # revoked
        {"Authorization": "Bearer fsm_" + "A" * 43},  # unknown
        {"Authorization": f"Basic {secrets['north']}"},  # not a bearer token
        {},
    ):
        r = client.get("/api/v1/devices", headers=headers)
        assert r.status_code == 401, headers
        assert r.headers["www-authenticate"].startswith("Bearer") and r.json()["error"]
    # a logged-in portal user's cookie opens no API door, and the API never looks the session up
    person = enrol("ada", "admin")
    login(client, person)
    r = client.get("/api/v1/devices")
    assert r.status_code == 401 and "session cookie" in r.json()["error"]
    assert client.get("/account").status_code == 200  # the session itself still works
    # read-only: every other method is 405, with or without a token
    r = client.post("/api/v1/devices", headers={"Authorization": f"Bearer {secrets['north']}"})
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"
    assert client.get("/api/v1/nothing-here").json()["error"].startswith("no API endpoint")


def test_rate_limits_answer_429_with_retry_after(fleet: Fleet, db: Database, tmp_path: Path) -> None:
    ctx = web_ctx(tmp_path, api_burst=3, api_requests_per_minute=1, api_failed_auth_per_minute=2)
    _, north = tokens.create("north", dealer="North", by=None)
    _, south = tokens.create("south", dealer="South", by=None)
    with TestClient(create_app(ctx, db=db, base_url=BASE), base_url=BASE) as c:
        assert [get(c, north, "/api/v1/devices").status_code for _ in range(4)] == [200, 200, 200, 429]
        r = get(c, north, "/api/v1/devices")
        assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 60
        assert get(c, south, "/api/v1/devices").status_code == 200  # per token
        bad = [
            c.get("/api/v1/devices", headers={"Authorization": "Bearer fsm_x"}).status_code for _ in range(3)
        ]
        assert bad == [401, 401, 429]
        r = get(c, south, "/api/v1/devices")  # this address is waiting now, whatever it sends
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1


def test_paging_walks_every_device_once_and_bad_parameters_are_400(
    fleet: Fleet, client: TestClient, secrets: dict[str, str]
) -> None:
    seen: list[int] = []
    after = 0
    for _ in range(10):
        page = get(client, secrets["north"], "/api/v1/devices", limit=3, after=after).json()
        seen += [d["id"] for d in page["items"]]
        if page["next_after"] is None:
            break
        after = page["next_after"]
    assert seen == sorted(fleet.devices["ACME"] + fleet.devices["Initech"])
    supplies: list[tuple[int, str]] = []
    cursor = ""
    while True:
        page = get(client, secrets["north"], "/api/v1/supplies", limit=3, after=cursor).json()
        supplies += [(s["device_id"], s["color"]) for s in page["items"]]
        if page["next_after"] is None:
            break
        cursor = page["next_after"]
    assert len(supplies) == len(set(supplies)) == 8  # four printers, two supplies each
    low = get(client, secrets["north"], "/api/v1/supplies", max_percent=10).json()["items"]
    assert low and all(s["percent"] <= 10 for s in low)
    assert all(s["days_remaining"] is not None for s in low if s["color"] == "black")
    for params in ({"limit": 0}, {"limit": 201}, {"limt": 3}, {"after": "x"}, {"customer": ""}):
        r = get(client, secrets["north"], "/api/v1/devices", **params)
        assert r.status_code == 400 and r.json()["error"].startswith("bad query parameter"), params
    r = get(client, secrets["north"], "/api/v1/supplies", after="not-a-cursor")
    assert r.status_code == 400 and "after" in r.json()["error"]
    r = get(client, secrets["acme"], "/api/v1/meters", customer="ACME", start="2026-02-30")
    assert r.status_code == 400 and "start" in r.json()["error"]
    r = get(client, secrets["acme"], "/api/v1/meters", customer="ACME", start="2026-01-31", months=13)
    assert r.status_code == 400 and "months" in r.json()["error"]
    jan = get(client, secrets["acme"], "/api/v1/meters", customer="ACME", start="2026-01-31").json()
    assert (jan["start"], jan["end"]) == ("2026-01-31T00:00:00Z", "2026-02-28T00:00:00Z")
    last = get(client, secrets["acme"], "/api/v1/meters", customer="ACME").json()  # the billing plan's
    assert last["start"].endswith("-01T00:00:00Z") and last["end"].endswith("-01T00:00:00Z")


def test_openapi_document_lists_every_endpoint(client: TestClient) -> None:
    doc = client.get("/api/v1/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    ops = {op["operationId"] for path in doc["paths"].values() for op in path.values()}
    assert ops == {e.operation for e in endpoints()}
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    device = doc["components"]["schemas"]["DeviceDetail"]
    assert {"counters", "supplies", "alerts", "serial"} <= set(device["properties"])


def test_tokens_made_and_revoked_in_the_portal(fleet: Fleet, db: Database, client: TestClient) -> None:
    """A dealer user makes a token on the page (shown once), it reads the dealer's fleet, its use
    is shown, revoking it there makes it 401; both are in the audit log. A customer user cannot
    make one for another customer, not even by editing the form."""
    nora = enrol("nora", "dealer", dealer="North")
    login(client, nora)
    page = client.get("/account/api-tokens")
    assert page.status_code == 200 and "customer:ACME" in page.text and "Globex" not in page.text
    form = {"csrf": csrf_of(page.text), "name": "ERP import", "scope": "dealer:North"}
    r = client.post("/account/api-tokens", data=form, follow_redirects=False)
    assert r.headers["location"] == "/reauth?next=/account/api-tokens" and not tokens.list_tokens(None)
    reauth(client, nora)
    r = client.post("/account/api-tokens", data=form)
    assert r.status_code == 200
    [secret] = re.findall(r'<code class="brk" id="token-secret">([^<]+)</code>', r.text)
    assert ApiToken.get(ApiToken.name == "ERP import").token_hash == tokens.digest(secret)
    assert secret not in client.get("/account/api-tokens").text  # shown only once
    assert len(get(client, secret, "/api/v1/devices").json()["items"]) == 4
    listed = client.get("/account/api-tokens").text
    assert "from testclient" in listed and secret[:12] in listed
    token_id = ApiToken.get(ApiToken.name == "ERP import").id
    r = client.post(
        f"/account/api-tokens/{token_id}/revoke", data={"csrf": csrf_of(listed)}, follow_redirects=False
    )
    assert r.status_code == 303
    assert get(client, secret, "/api/v1/devices").status_code == 401
    actions = [(e.action, e.actor, e.dealer) for e in audit.entries(limit=10)]
    assert ("api_token.create", "nora", "North") in actions and (
        "api_token.revoke",
        "nora",
        "North",
    ) in actions
    assert secret not in json.dumps([msgspec_to_builtins(e) for e in audit.entries(limit=50)])

    south_token, _ = tokens.create("south", dealer="South", by=None)
    with TestClient(client.app, base_url=BASE) as other:
        carl = enrol("carl", "customer", customers=("ACME",))
        login(other, carl)
        reauth(other, carl)
        page = other.get("/account/api-tokens")
        assert "customer:ACME" in page.text and "dealer:" not in page.text
        assert "ERP import" not in page.text and ">south<" not in page.text  # dealers' tokens
        r = other.post(
            "/account/api-tokens", data={"csrf": csrf_of(page.text), "name": "x", "scope": "customer:Globex"}
        )
        assert r.status_code == 400 and "no customer &#39;Globex&#39;" in r.text
        for victim in (token_id, south_token.id):
            r = other.post(f"/account/api-tokens/{victim}/revoke", data={"csrf": csrf_of(page.text)})
            assert r.status_code == 404
    assert ApiToken.get_by_id(south_token.id).revoked_at is None


def reauth(client: TestClient, person: Person) -> None:
    csrf = csrf_of(client.get("/account").text)
    code = person.code() if person.secret else ""
    r = client.post(
        "/reauth",
        data={"csrf": csrf, "password": person.password, "code": code, "next": "/account"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text


def msgspec_to_builtins(value: object) -> object:
    import msgspec

    return msgspec.to_builtins(value)


def test_cli_adds_lists_and_revokes(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FSM_DATABASE_URL", database_url)

    def run(*args: str, code: int = 0) -> str:
        result = CliRunner().invoke(main, ["--data-dir", str(tmp_path / "data"), *args])
        assert result.exit_code == code, result.output
        return result.output

    run("dealers", "add", "North")
    run("customers", "add", "ACME", "--dealer", "North")
    made = json.loads(run("api-tokens", "add", "ERP", "--customer", "ACME", "--json"))
    assert made["secret"].startswith("fsm_") and made["token"]["of"] == "ACME"
    assert "no customer 'Globex'" in run("api-tokens", "add", "x", "--customer", "Globex", code=1)
    assert "exactly one" in run("api-tokens", "add", "x", "--customer", "ACME", "--dealer", "North", code=1)
    [row] = json.loads(run("api-tokens", "list", "--json"))
    assert row["name"] == "ERP" and made["secret"] not in json.dumps(row)
    assert "revoked API token" in run("api-tokens", "revoke", str(row["id"]))
    assert json.loads(run("api-tokens", "list", "--json"))[0]["revoked_by"].startswith("cli")
    assert "no API token 99" in run("api-tokens", "revoke", "99", code=1)
