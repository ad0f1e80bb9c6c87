"""Who may use the client's local page: loopback only, one password (argon2id), sessions, CSRF.

* The page binds to loopback only (`check_host`), and refuses any request whose peer is not a
  loopback address or whose Host header names something else (a DNS-rebinding page in the
  administrator's browser cannot reach it by another name).
* The password's argon2id hash lives in ``<data_dir>/ui-password`` (mode 0600), set with
  ``fsm-client ui set-password``; without one the page does not start.
* A login gives a random session id in an HttpOnly, SameSite=Strict cookie; sessions live in the
  process's memory (at most ``MAX_SESSIONS``, ``IDLE_SECONDS`` idle) and end with it.
* Every POST but the login's carries the session's CSRF token, and none may come from another
  origin (``Origin`` / ``Sec-Fetch-Site``).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from fsm_protocol.errors import ConfigError

PASSWORD_FILE = "ui-password"
COOKIE = "fsm_ui_session"
MAX_SESSIONS = 32
IDLE_SECONDS = 30 * 60
MIN_PASSWORD = 10

_hasher = PasswordHasher()


def check_host(host: str) -> str:
    """The address to bind for ``--host``: a loopback address, or ConfigError naming what was given."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        address = None
    if address is None or not address.is_loopback:
        raise ConfigError(
            f"--host {host!r} is not a loopback address: the local page answers this machine only",
            hint="use --host 127.0.0.1 or --host ::1 (reach it from elsewhere through an SSH tunnel)",
        )
    return str(address)


def is_loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def host_is_loopback(host_header: str) -> bool:
    """Whether a Host header names this machine: localhost or a loopback address, any port."""
    host = host_header.strip().lower()
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host == "localhost" or is_loopback(host)


def set_password(data_dir: Path, password: str) -> Path:
    """Store the argon2id hash of ``password`` (at least MIN_PASSWORD characters)."""
    if len(password) < MIN_PASSWORD:
        raise ConfigError(
            f"the password has {len(password)} characters, fewer than {MIN_PASSWORD}",
            hint=f"choose a password of at least {MIN_PASSWORD} characters",
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / PASSWORD_FILE
    temp = path.with_suffix(".tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(_hasher.hash(password) + "\n")
    os.replace(temp, path)
    return path


def password_hash(data_dir: Path) -> str:
    path = data_dir / PASSWORD_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        raise ConfigError(
            f"no password is set for the local page ({str(path)!r} does not exist)",
            hint="run `fsm-client ui set-password` first",
        ) from None


def verify_password(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@dataclass
class Session:
    csrf: str
    seen: float


class Sessions:
    """Sessions in memory: the least recently used is dropped beyond MAX_SESSIONS."""

    def __init__(self) -> None:
        self._by_id: OrderedDict[str, Session] = OrderedDict()

    def create(self) -> tuple[str, Session]:
        sid = secrets.token_urlsafe(32)
        session = Session(csrf=secrets.token_urlsafe(32), seen=time.monotonic())
        self._by_id[sid] = session
        while len(self._by_id) > MAX_SESSIONS:
            self._by_id.popitem(last=False)
        return sid, session

    def get(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        session = self._by_id.get(sid)
        now = time.monotonic()
        if session is None or now - session.seen > IDLE_SECONDS:
            self._by_id.pop(sid, None)
            return None
        session.seen = now
        self._by_id.move_to_end(sid)
        return session

    def drop(self, sid: str | None) -> None:
        if sid:
            self._by_id.pop(sid, None)


def same_token(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


__all__ = [
    "COOKIE",
    "PASSWORD_FILE",
    "Session",
    "Sessions",
    "check_host",
    "host_is_loopback",
    "is_loopback",
    "password_hash",
    "same_token",
    "set_password",
    "verify_password",
]
