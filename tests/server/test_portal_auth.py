"""Portal accounts through the HTTP interface (Starlette's TestClient over the real app and
database, both backends): login with password and TOTP, cookies, CSRF, throttling, timeouts,
disabling, re-authentication, the users page's scope, and the audit log's hash chain."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from portal_kit import PASSWORD, Person, csrf_of, enrol, login, web_ctx
from starlette.testclient import TestClient

from fsm_server import audit, customers
from fsm_server.accounts import models as account_models
from fsm_server.accounts import users
from fsm_server.accounts.models import AuditEntry, User, WebSession
from fsm_server.cli import main
from fsm_server.config import WebSection
from fsm_server.db import models
from fsm_server.db.connect import Database
from fsm_server.errors import AccountError
from fsm_server.web import create_app


@pytest.fixture
def tenants(db: Database) -> None:
    """Two dealers with two customers each."""
    for dealer, names in (("North", ("ACME", "Globex")), ("South", ("Initech", "Umbrella"))):
        customers.add_dealer(dealer)
        for name in names:
            customers.add_customer(name, dealer=dealer)


def client_for(db: Database, tmp_path: Path, **web: object) -> TestClient:
    app = create_app(web_ctx(tmp_path, **web), db=db, base_url="https://testserver")
    return TestClient(app, base_url="https://testserver")


@pytest.fixture
def client(db: Database, tmp_path: Path) -> Iterator[TestClient]:
    with client_for(db, tmp_path) as c:
        yield c


@pytest.fixture
def admin(db: Database) -> Person:
    return enrol("ada", "admin")


def run_cli(db: Database, tmp_path: Path, *args: str) -> Result:
    """`fsm-server ARGS` on the test's database; its models are bound back to ``db`` after (the
    command opens, binds and closes a database of its own)."""
    result = CliRunner().invoke(main, ["--data-dir", str(tmp_path), *args], env={"FSM_DATABASE_URL": db.url})
    models.bind(db.peewee)
    account_models.bind(db.peewee)
    return result


def set_cookie(response: object) -> str:
    cookies = [v for k, v in response.headers.multi_items() if k == "set-cookie"]  # type: ignore[attr-defined]
    assert len(cookies) == 1, cookies
    return cookies[0]


def test_every_response_carries_the_security_headers(client: TestClient) -> None:
    for path in ("/login", "/static/fsm.css", "/no-such-page", "/account"):
        r = client.get(path, follow_redirects=False)
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert r.headers["strict-transport-security"].startswith("max-age=31536000")
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert "server" not in r.headers
    assert client.get("/login").headers["cache-control"] == "no-store"


def test_login_with_password_and_totp_sets_a_host_only_strict_cookie_and_a_new_token(
    client: TestClient, admin: Person
) -> None:
    r = client.post("/login", data={"name": "ada", "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login/totp")
    pending = set_cookie(r)
    assert client.get("/account", follow_redirects=False).headers["location"] == "/login/totp"
    page = client.get("/login/totp")
    r = client.post(
        "/login/totp", data={"code": admin.code(), "csrf": csrf_of(page.text)}, follow_redirects=False
    )
    assert r.status_code == 303
    full = set_cookie(r)
    name, _, attrs = full.partition(";")
    assert name.startswith("__Host-fsm_session=") and name != pending.partition(";")[0]
    assert {a.strip() for a in attrs.split(";")} == {"Path=/", "Secure", "HttpOnly", "SameSite=Strict"}
    token = name.split("=", 1)[1]
    assert len(token) >= 43  # 256 bits, base64url
    assert WebSession.select().count() == 1  # the pending session is gone
    assert "ada" in client.get("/account").text
    assert audit.entries(limit=1)[0].action == "login"


def test_a_wrong_or_reused_totp_code_is_refused(client: TestClient, admin: Person) -> None:
    client.post("/login", data={"name": "ada", "password": PASSWORD})
    token = csrf_of(client.get("/login/totp").text)
    assert client.post("/login/totp", data={"code": "000000", "csrf": token}).status_code == 401
    code = admin.code()
    assert (
        client.post("/login/totp", data={"code": code, "csrf": token}, follow_redirects=False).status_code
        == 303
    )
    other = TestClient(client.app, base_url="https://testserver")
    other.post("/login", data={"name": "ada", "password": PASSWORD})
    r = other.post("/login/totp", data={"code": code, "csrf": csrf_of(other.get("/login/totp").text)})
    assert r.status_code == 401, "a TOTP code works once"


def test_a_recovery_code_logs_in_once(client: TestClient, admin: Person) -> None:
    recovery = admin.recovery_codes[0]
    for expected in (303, 401):
        c = TestClient(client.app, base_url="https://testserver")
        c.post("/login", data={"name": "ada", "password": PASSWORD})
        r = c.post(
            "/login/totp",
            data={"code": recovery.upper(), "csrf": csrf_of(c.get("/login/totp").text)},
            follow_redirects=False,
        )
        assert r.status_code == expected


def test_logout_ends_the_session_on_the_server(client: TestClient, admin: Person) -> None:
    login(client, admin)
    cookie = client.cookies.get("__Host-fsm_session")
    r = client.post("/logout", data={"csrf": csrf_of(client.get("/account").text)}, follow_redirects=False)
    assert r.headers["location"] == "/login" and "Max-Age=0" in set_cookie(r)
    assert WebSession.select().count() == 0
    replay = TestClient(client.app, base_url="https://testserver", cookies={"__Host-fsm_session": cookie})
    assert replay.get("/account", follow_redirects=False).headers["location"].startswith("/login")


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
    ],
)
def test_a_cross_site_state_change_is_refused(
    client: TestClient, admin: Person, headers: dict[str, str]
) -> None:
    login(client, admin)
    token = csrf_of(client.get("/account").text)
    r = client.post("/account/sessions/revoke-others", data={"csrf": token}, headers=headers)
    assert r.status_code == 403 and "cross-site" in r.text
    r = client.post("/login", data={"name": "ada", "password": PASSWORD}, headers=headers)
    assert r.status_code == 403, "a cross-site login (login CSRF) is refused too"


def test_a_state_change_without_the_sessions_csrf_token_is_refused(client: TestClient, admin: Person) -> None:
    login(client, admin)
    token = csrf_of(client.get("/account").text)
    assert client.post("/account/sessions/revoke-others", data={}).status_code == 403
    assert (
        client.post(
            "/account/sessions/revoke-others", data={"csrf": token[:-1] + ("1" if token[-1] == "0" else "0")}
        ).status_code
        == 403
    )
    r = client.post(
        "/account/sessions/revoke-others",
        headers={"X-CSRF-Token": token, "Sec-Fetch-Site": "same-origin"},
        follow_redirects=False,
    )
    assert r.status_code == 303, "htmx's header carries the token as well as a form field"


def test_the_11th_wrong_password_in_a_minute_waits_even_with_the_right_one(
    db: Database, tmp_path: Path, admin: Person
) -> None:
    with client_for(db, tmp_path, throttle_first_delay_seconds=2.0) as c:
        for _ in range(10):
            assert c.post("/login", data={"name": "ada", "password": "wrong password!"}).status_code == 401
        started = time.monotonic()
        r = c.post("/login", data={"name": "ada", "password": PASSWORD})
        assert r.status_code == 429 and r.headers["retry-after"] in ("1", "2")
        assert f"Try again in {r.headers['retry-after']} seconds" in r.text
        assert time.monotonic() - started < 1.0, "a throttled attempt is answered at once, nothing is checked"
        time.sleep(2.1)
        r = c.post("/login", data={"name": "ada", "password": "wrong again!!"})
        assert r.status_code == 401
        r = c.post("/login", data={"name": "ada", "password": PASSWORD})
        assert r.status_code == 429 and r.headers["retry-after"] in ("3", "4"), "the wait doubles"
    assert "login.throttled" in {e.action for e in audit.entries(limit=20)}


def test_failures_of_many_names_from_one_address_are_throttled_too(db: Database, tmp_path: Path) -> None:
    with client_for(db, tmp_path, throttle_free_failures_per_address=5) as c:
        for k in range(5):
            assert c.post("/login", data={"name": f"nobody{k}", "password": "x" * 12}).status_code == 401
        assert c.post("/login", data={"name": "nobody-else", "password": "x" * 12}).status_code == 429


def test_unknown_user_and_wrong_password_get_the_same_answer_in_comparable_time(
    client: TestClient, admin: Person
) -> None:
    def attempt(name: str) -> tuple[int, str, float]:
        started = time.perf_counter()
        r = client.post("/login", data={"name": name, "password": "not the password"})
        return r.status_code, r.text.replace(name, "NAME"), time.perf_counter() - started

    unknown = [attempt(f"ghost{k}") for k in range(4)]
    wrong = [attempt("ada") for _ in range(4)]
    assert {(s, t) for s, t, _ in unknown} == {(s, t) for s, t, _ in wrong}
    assert unknown[0][0] == 401 and users.LOGIN_FAILED in unknown[0][1]
    ratio = statistics.median(t for *_, t in unknown) / statistics.median(t for *_, t in wrong)
    assert 0.5 < ratio < 2.0, f"unknown user took {ratio:.2f} times as long as a wrong password"


def test_disabling_a_user_ends_its_sessions(
    client: TestClient, admin: Person, db: Database, tmp_path: Path
) -> None:
    login(client, admin)
    second = TestClient(client.app, base_url="https://testserver")
    login(second, admin)
    assert WebSession.select().count() == 2
    result = run_cli(db, tmp_path, "users", "disable", "ada")
    assert result.exit_code == 0, result.output
    assert WebSession.select().count() == 0
    for c in (client, second):
        assert c.get("/account", follow_redirects=False).headers["location"].startswith("/login")
    r = client.post("/login", data={"name": "ada", "password": PASSWORD})
    assert r.status_code == 401 and users.LOGIN_FAILED in r.text


def test_idle_and_absolute_timeouts_end_a_session(client: TestClient, admin: Person) -> None:
    login(client, admin)
    WebSession.update(last_seen=datetime.now(UTC) - timedelta(minutes=31)).execute()
    assert client.get("/account", follow_redirects=False).status_code == 303
    assert WebSession.select().count() == 0
    login(client, admin)
    WebSession.update(expires_at=datetime.now(UTC) - timedelta(seconds=1)).execute()
    assert client.get("/account", follow_redirects=False).status_code == 303


def test_changing_the_password_needs_reauthentication_and_ends_other_sessions(
    client: TestClient, admin: Person
) -> None:
    login(client, admin)
    other = TestClient(client.app, base_url="https://testserver")
    login(other, admin)
    r = client.get("/account/password", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/reauth?next=%2Faccount%2Fpassword"
    token = csrf_of(client.get("/account").text)
    new = "a completely different sentence"
    r = client.post(
        "/account/password", data={"csrf": token, "password": new, "confirm": new}, follow_redirects=False
    )
    assert r.headers["location"].startswith("/reauth"), "a POST without re-authentication changes nothing"
    r = client.post(
        "/reauth",
        data={
            "csrf": token,
            "password": "wrong password!",
            "code": admin.code(),
            "next": "/account/password",
        },
    )
    assert r.status_code == 401
    r = client.post(
        "/reauth",
        data={"csrf": token, "password": PASSWORD, "code": admin.code(), "next": "/account/password"},
        follow_redirects=False,
    )
    assert r.headers["location"] == "/account/password"
    r = client.post("/account/password", data={"csrf": token, "password": "short", "confirm": "short"})
    assert r.status_code == 400 and "at least 12" in r.text
    r = client.post(
        "/account/password", data={"csrf": token, "password": "password1234", "confirm": "password1234"}
    )
    assert r.status_code == 400 and "common passwords" in r.text
    r = client.post(
        "/account/password", data={"csrf": token, "password": new, "confirm": new}, follow_redirects=False
    )
    assert r.headers["location"] == "/account?done=password"
    assert other.get("/account", follow_redirects=False).status_code == 303, "the other session ended"
    assert client.get("/account").status_code == 200
    assert users.login_password("ada", new, address="192.0.2.9", settings=client.app.state.settings).user_id


def test_replacing_the_authenticator_needs_reauthentication(client: TestClient, admin: Person) -> None:
    login(client, admin)
    assert client.get("/account/totp", follow_redirects=False).headers["location"].startswith("/reauth")


def test_setup_links_work_once_and_refuse_weak_passwords(client: TestClient, db: Database) -> None:
    _, link = users.add_user(
        "cy", "admin", by=None, settings=client.app.state.settings, base_url="https://testserver"
    )
    path = link.removeprefix("https://testserver")
    page = client.get(path)
    assert page.status_code == 200 and "otpauth://totp/" in page.text
    secret = users.setup_offer(path.rsplit("/", 1)[1]).totp_secret
    assert secret and secret in page.text
    import pyotp

    r = client.post(
        path, data={"password": "correct horse battery", "confirm": "correct horse battery", "code": "000000"}
    )
    assert r.status_code == 400 and "authenticator code" in r.text
    r = client.post(
        path,
        data={
            "password": "correct horse battery",
            "confirm": "correct horse battery",
            "code": pyotp.TOTP(secret).now(),
        },
    )
    assert r.status_code == 200 and r.text.count("<li><code>") == 10
    assert client.get(path).status_code == 404


def test_an_admin_without_a_second_factor_cannot_exist(db: Database) -> None:
    _, link = users.add_user("dee", "admin", by=None, settings=WebSection(), base_url="https://x")
    token = link.rsplit("/", 1)[1]
    with pytest.raises(AccountError, match="did not offer a second factor"):
        users.complete_setup(token, PASSWORD, PASSWORD, "")
    assert users.setup_offer(token).totp_secret
    with pytest.raises(AccountError, match="authenticator code"):
        users.complete_setup(token, PASSWORD, PASSWORD, "")


def test_customers_see_no_users_page_and_dealers_only_their_customers_users(
    client: TestClient, tenants: None, db: Database
) -> None:
    dealer = enrol("nora", "dealer", dealer="North")
    enrol("south-staff", "dealer", dealer="South")
    acme = enrol("acme-user", "customer", customers=("ACME",))
    enrol("initech-user", "customer", customers=("Initech",))
    login(client, acme)
    assert client.get("/users").status_code == 404
    assert client.get("/audit").status_code == 404
    client.cookies.clear()
    login(client, dealer)
    page = client.get("/users").text
    assert "acme-user" in page and "initech-user" not in page and "south-staff" not in page
    token = csrf_of(page)
    r = client.post("/users", data={"csrf": token, "name": "sneaky", "customer": "Initech"})
    assert r.status_code == 400 and users.list_users(None)[-1].name != "sneaky"
    r = client.post(
        "/users", data={"csrf": token, "name": "globex-user", "customer": "Globex", "role": "admin"}
    )
    assert r.status_code == 200 and "/setup/" in r.text
    assert users.get_user("globex-user", None).role == "customer", "a dealer adds customer users only"
    assert client.post("/users/initech-user/disable", data={"csrf": token}).status_code == 404
    assert (
        client.post("/users/acme-user/disable", data={"csrf": token}, follow_redirects=False).status_code
        == 303
    )
    assert not users.get_user("acme-user", None).enabled
    assert client.get("/users/acme-user/role").status_code == 404, "only administrators change roles"
    mine = {e.target for e in audit.entries(dealer="North", only_dealer=True)}
    assert {"acme-user", "globex-user", "nora"} <= mine and "initech-user" not in mine


def test_changing_a_role_needs_reauthentication_and_ends_the_users_sessions(
    client: TestClient, tenants: None, admin: Person
) -> None:
    acme = enrol("acme-user", "customer", customers=("ACME",))
    theirs = TestClient(client.app, base_url="https://testserver")
    login(theirs, acme)
    login(client, admin)
    assert (
        client.get("/users/acme-user/role", follow_redirects=False).headers["location"].startswith("/reauth")
    )
    token = csrf_of(client.get("/account").text)
    client.post("/reauth", data={"csrf": token, "password": PASSWORD, "code": admin.code()})
    r = client.post(
        "/users/acme-user/role",
        data={"csrf": token, "role": "customer", "customer": ["ACME", "Globex"]},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert users.get_user("acme-user", None).customers == ["ACME", "Globex"]
    assert theirs.get("/account", follow_redirects=False).status_code == 303
    r = client.post("/users/acme-user/role", data={"csrf": token, "role": "dealer", "dealer": "North"})
    assert r.status_code == 200 and "/setup/" in r.text, "a dealer needs an authenticator: a new setup link"


def test_the_audit_chain_detects_a_changed_entry(
    client: TestClient, admin: Person, db: Database, tmp_path: Path
) -> None:
    login(client, admin)
    for k in range(3):
        audit.record("quarantine.retry", actor="ada", target=f"quarantine {k}", detail={"n": k})
    ok = run_cli(db, tmp_path, "audit", "verify")
    assert ok.exit_code == 0 and "audit log intact" in ok.output
    victim = AuditEntry.select().where(AuditEntry.target == "quarantine 1").get()
    AuditEntry.update(actor="mallory").where(AuditEntry.id == victim.id).execute()
    bad = run_cli(db, tmp_path, "audit", "verify")
    assert bad.exit_code == 1 and f"broken at entry {victim.id}" in bad.output
    page = client.get("/audit?verify=1").text
    assert f"The chain is broken at entry {victim.id}" in page
    AuditEntry.update(actor="ada").where(AuditEntry.id == victim.id).execute()
    assert audit.verify().ok
    AuditEntry.delete().where(AuditEntry.id == victim.id).execute()
    verdict = audit.verify()
    assert not verdict.ok and verdict.first_bad == victim.id + 1, "a removed entry breaks the next one"


def test_users_cli_prints_a_setup_link_and_lists(db: Database, tmp_path: Path, tenants: None) -> None:
    runner = CliRunner()
    env = {"FSM_DATABASE_URL": db.url}
    base = ["--data-dir", str(tmp_path)]
    r = runner.invoke(main, [*base, "users", "add", "nora", "--role", "dealer", "--dealer", "North"], env=env)
    assert r.exit_code == 0 and "https://127.0.0.1:8443/setup/" in r.output
    r = runner.invoke(main, [*base, "users", "add", "x", "--role", "customer", "--customer", "Nope"], env=env)
    assert r.exit_code == 1 and "no customer 'Nope'" in r.output and "hint:" in r.output
    r = runner.invoke(main, [*base, "users", "add", "y", "--role", "dealer"], env=env)
    assert r.exit_code == 1 and "--dealer" in r.output
    r = runner.invoke(main, [*base, "users", "list"], env=env)
    assert r.exit_code == 0 and "nora" in r.output and "setup pending" in r.output
    r = runner.invoke(main, [*base, "users", "reset", "nora"], env=env)
    assert r.exit_code == 0 and "/setup/" in r.output


def test_a_hash_made_with_old_parameters_is_rehashed_at_login(admin: Person, client: TestClient) -> None:
    from argon2 import PasswordHasher

    from fsm_server.accounts.passwords import needs_rehash

    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    User.update(password_hash=weak).where(User.name_key == "ada").execute()
    assert needs_rehash(weak)
    login(client, admin)
    stored = User.get(User.name_key == "ada").password_hash
    assert stored != weak and not needs_rehash(stored) and stored.startswith("$argon2id$")


def test_a_user_sees_and_ends_only_their_own_sessions(
    client: TestClient, admin: Person, tenants: None
) -> None:
    login(client, admin)
    phone = TestClient(client.app, base_url="https://testserver", headers={"user-agent": "Phone/1.0"})
    login(phone, admin)
    acme = enrol("acme-user", "customer", customers=("ACME",))
    theirs = TestClient(client.app, base_url="https://testserver")
    login(theirs, acme)
    page = client.get("/account").text
    assert "Phone/1.0" in page and page.count('/revoke"') == 2
    others = WebSession.select().join(User).where(User.name_key == "acme-user").get()
    token = csrf_of(page)
    assert client.post(f"/account/sessions/{others.id}/revoke", data={"csrf": token}).status_code == 404
    assert theirs.get("/account").status_code == 200, "another user's session is not mine to end"
    mine = (
        WebSession.select()
        .join(User)
        .where(User.name_key == "ada")
        .where(WebSession.user_agent == "Phone/1.0")
        .get()
    )
    r = client.post(f"/account/sessions/{mine.id}/revoke", data={"csrf": token}, follow_redirects=False)
    assert r.headers["location"] == "/account?done=revoked"
    assert phone.get("/account", follow_redirects=False).status_code == 303
    assert "session.revoke" in {e.action for e in audit.entries(limit=5)}
