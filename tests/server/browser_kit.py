"""What the portal's browser tests share: Debian's chromium for Playwright (never a downloaded
browser), the portal served over TLS on a free loopback port, logging in through the login
pages, and screenshots at each width that fail a page wider than the window."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from portal_kit import Person

from fsm_server.context import ServerContext
from fsm_server.db.connect import Database
from fsm_server.web import create_app
from fsm_server.web.serve import TlsFiles, make_self_signed, running_in_thread, servers

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WIDTHS = (1280, 360)


def need_chromium() -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (scripts/setup installs it)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(ctx: ServerContext, db: Database, tls_dir: Path) -> Iterator[tuple[str, TlsFiles]]:
    """The portal of ``ctx`` over TLS (a self-signed certificate in ``tls_dir``) on a free port;
    yields its base URL and certificate files."""
    port = free_port()
    base = f"https://127.0.0.1:{port}"
    files = make_self_signed(tls_dir, "127.0.0.1")
    main, _ = servers(
        ctx, host="127.0.0.1", port=port, files=files, app=create_app(ctx, db=db, base_url=base)
    )
    with running_in_thread(main):
        yield base, files


def log_in(page: Any, base: str, person: Person) -> None:
    """Through /login, and /login/totp when the person has a second factor."""
    page.goto(f"{base}/account")
    page.fill("#name", person.name)
    page.fill("#password", person.password)
    page.click("button[type=submit]")
    if person.secret:
        page.wait_for_selector("#code")
        page.fill("#code", person.code())
        page.click("form[action='/login/totp'] button[type=submit]")
    page.wait_for_selector("h1:has-text('My account')")


def shoot(page: Any, artifacts: Path, name: str) -> None:
    """Screenshots of the page at each width into ``artifacts``; none may be wider than the window."""
    artifacts.mkdir(parents=True, exist_ok=True)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(artifacts / f"{name}-{width}.png"), full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name} is wider than {width} px by {overflow} px"
    page.set_viewport_size({"width": 1280, "height": 900})


__all__ = ["ARGS", "CHROMIUM", "WIDTHS", "free_port", "log_in", "need_chromium", "serving", "shoot"]
