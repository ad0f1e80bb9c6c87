"""Helpers of the portal tests: a config, enrolled users (through their real setup links), TOTP
codes that have not been used yet, and logging in through the login pages.

The server accepts each 30-second TOTP step once, so a test that logs in more than three times
would wait for the next step; it moves the process's clock forward instead (time-machine, with
the clock still running), and ``tests/server/conftest.py`` puts it back after the test.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyotp
import time_machine

from fsm_server.accounts import users
from fsm_server.accounts.models import User
from fsm_server.config import ServerConfig, WebSection
from fsm_server.context import ServerContext
from fsm_server.db.connect import Database

PASSWORD = "violet tractor umbrella harbour"
BASE_URL = "https://portal.test"

_travels: list[time_machine.travel] = []  # clock moves of the running test, undone at its end


def skip_ahead(seconds: float) -> None:
    """Move the clock of this process ``seconds`` forward (it keeps running from there)."""
    travel = time_machine.travel(datetime.fromtimestamp(time.time() + seconds, UTC), tick=True)
    travel.start()
    _travels.append(travel)


def undo_clock_moves() -> None:
    while _travels:
        _travels.pop().stop()


def web_ctx(tmp_path: Path, **web: Any) -> ServerContext:
    return ServerContext(ServerConfig(web=WebSection(**web)), tmp_path)


@dataclass
class Person:
    name: str
    password: str
    secret: str | None
    recovery_codes: list[str] = field(default_factory=list)

    def code(self) -> str:
        """A TOTP code the server has not seen yet (moving the clock to the next step when it must)."""
        assert self.secret is not None
        totp = pyotp.TOTP(self.secret)
        while True:
            last = User.get(User.name_key == self.name.casefold()).totp_last_step
            now = time.time()
            step = max(int(now) // 30 - 1, last + 1)
            if step <= int(now) // 30 + 1:
                return totp.generate_otp(step)
            skip_ahead((step - 1) * 30 - now + 0.5)


def enrol(
    name: str,
    role: str,
    *,
    customers: tuple[str, ...] = (),
    dealer: str | None = None,
    password: str = PASSWORD,
    settings: WebSection | None = None,
) -> Person:
    """Add ``name`` and complete its setup link as the user would."""
    _, link = users.add_user(
        name,
        role,
        customers=customers,
        dealer=dealer,
        by=None,
        settings=settings or WebSection(),
        base_url=BASE_URL,
    )
    token = link.rsplit("/", 1)[1]
    offer = users.setup_offer(token)
    code = pyotp.TOTP(offer.totp_secret).now() if offer.totp_secret else ""
    codes = users.complete_setup(token, password, password, code)
    return Person(name, password, offer.totp_secret, codes)


def csrf_of(html: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]*)"', html)
    assert found, "the page has no csrf-token meta tag"
    return found.group(1)


def login(client: Any, person: Person) -> None:
    """Log ``person`` in through /login (and /login/totp) with an httpx-like client."""
    r = client.post(
        "/login",
        data={"name": person.name, "password": person.password, "next": "/account"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    if person.secret:
        assert r.headers["location"].startswith("/login/totp")
        page = client.get("/login/totp")
        r = client.post(
            "/login/totp",
            data={"code": person.code(), "csrf": csrf_of(page.text), "next": "/account"},
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
    assert r.headers["location"] == "/account"


@contextmanager
def counting(db: Database) -> Iterator[list[str]]:
    """Every SQL statement run on ``db`` inside the block (by this thread or the portal's)."""
    seen: list[str] = []
    original = db.peewee.execute_sql

    def execute_sql(sql: str, params: object = None, *args: object, **kwargs: object) -> object:
        seen.append(sql)
        return original(sql, params, *args, **kwargs)

    db.peewee.execute_sql = execute_sql  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        db.peewee.execute_sql = original  # type: ignore[method-assign]


__all__ = [
    "BASE_URL",
    "PASSWORD",
    "Person",
    "counting",
    "csrf_of",
    "enrol",
    "login",
    "skip_ahead",
    "undo_clock_moves",
    "web_ctx",
]
