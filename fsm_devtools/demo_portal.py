"""The demo's last step: the portal on https://127.0.0.1:PORT with a dealer and a customer login.

A dealer (``Northside Office Supplies``) is made to serve the demo's customer; two portal users
are added with ``fsm-server users add``, as an operator would, and their one-time setup links
completed through the accounts core API, as the person following the link would (a random
password each, and for the dealer an authenticator: the TOTP secret). The logins are kept in
``<state>/portal-logins.json`` (0600) so that a second run prints the same ones. Then
``fsm-server web --self-signed`` serves the portal in the foreground until Ctrl-C.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType

import httpx

DEALER = "Northside Office Supplies"
DEALER_USER = "dealer"
CUSTOMER_USER = "acme"
#: The portal's port when FSM_DEMO_PORTAL_PORT is not set: 8443 + the demo's mail offset.
BASE_PORT = 8443
READY_TIMEOUT = 60.0


class PortalError(RuntimeError):
    """The portal did not come up (the message says why and what to do)."""


@dataclass(frozen=True)
class Login:
    user: str
    role: str
    password: str
    totp_secret: str | None = None

    def totp_command(self) -> str:
        """A command that prints the current TOTP code of this login."""
        assert self.totp_secret is not None and self.totp_secret.isalnum()  # base32: nothing to quote
        code = f"import pyotp; print(pyotp.TOTP('{self.totp_secret}').now())"
        return f'{shlex.quote(sys.executable)} -c "{code}"'

    def otpauth_uri(self) -> str:
        import pyotp

        assert self.totp_secret is not None
        return pyotp.TOTP(self.totp_secret).provisioning_uri(name=self.user, issuer_name="fsm demo")


def portal_port(mail_offset: int) -> int:
    return int(os.environ.get("FSM_DEMO_PORTAL_PORT") or BASE_PORT + mail_offset)


def _password(user: str) -> str:
    from fsm_server.accounts.passwords import check_policy
    from fsm_server.errors import AccountError

    while True:
        word = secrets.token_urlsafe(15)  # 20 characters, 120 bits
        try:
            check_policy(word, user_name=user)
        except AccountError:
            continue
        return word


def _complete(server_cfg: Path, link: str, user: str, role: str) -> Login:
    """Follow ``link`` as its user: choose a password (and, for a dealer, enrol an authenticator)."""
    import pyotp

    from fsm_server import wiring
    from fsm_server.accounts import users
    from fsm_server.context import ServerContext

    token = link.rstrip("/").rsplit("/", 1)[1]
    password = _password(user)
    ctx = ServerContext.load(str(server_cfg), None)
    with wiring.open_db(ctx):
        offer = users.setup_offer(token)
        code = pyotp.TOTP(offer.totp_secret).now() if offer.totp_secret else ""
        users.complete_setup(token, password, password, code)
    return Login(user=user, role=role, password=password, totp_secret=offer.totp_secret)


def logins(
    run: Callable[..., str],
    say: Callable[[str], None],
    sv: tuple[str | Path, ...],
    server_cfg: Path,
    state: Path,
    customer: str,
) -> list[Login]:
    """The dealer and customer logins, made on the first run (``run`` echoes each command)."""
    saved = state / "portal-logins.json"
    run(*sv, "dealers", "add", DEALER, quiet=True)
    run(*sv, "customers", "add", customer, "--dealer", DEALER)  # an existing customer gets the dealer
    if saved.is_file():
        return [Login(**row) for row in json.loads(saved.read_text())]
    existing = {u["name"] for u in json.loads(run(*sv, "users", "list", "--json", quiet=True))}
    made = []
    for user, role, scope in (
        (DEALER_USER, "dealer", ("--dealer", DEALER)),
        (CUSTOMER_USER, "customer", ("--customer", customer)),
    ):
        verb = ("reset", user) if user in existing else ("add", user, "--role", role, *scope)
        link = json.loads(run(*sv, "users", *verb, "--json", quiet=True))["setup_link"]
        made.append(_complete(server_cfg, link, user, role))
        say(
            f"{user}'s setup link followed as {user} would: a password chosen"
            + (", an authenticator enrolled" if made[-1].totp_secret else "")
        )
    saved.touch(mode=0o600, exist_ok=True)
    saved.chmod(0o600)
    saved.write_text(json.dumps([asdict(m) for m in made], indent=2) + "\n")
    return made


def _ready(url: str, cert: Path, proc: subprocess.Popen[bytes]) -> None:
    """Wait until the portal answers over verified TLS (or its process ends)."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise PortalError(
                f"`fsm-server web` exited {proc.returncode} before serving (see its lines above); "
                "if the port is taken, set FSM_DEMO_PORTAL_PORT to a free one"
            )
        if cert.is_file():
            try:
                trust = ssl.create_default_context(cafile=str(cert))
                if httpx.get(f"{url}/login", verify=trust, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
        time.sleep(0.2)
    raise PortalError(f"the portal did not answer on {url} within {READY_TIMEOUT:.0f} s")


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def serve(
    argv: list[str], url: str, cert: Path, on_ready: Callable[[], None], say: Callable[[str], None]
) -> int:
    """Run ``fsm-server web`` (its own process group, so one Ctrl-C here stops it once, cleanly),
    call ``on_ready`` once it answers, and serve until Ctrl-C or SIGTERM."""
    say("[bold cyan]$[/] " + " ".join(shlex.quote(a) for a in [Path(argv[0]).name, *argv[1:]]))
    sys.stdout.flush()
    # SIGINT explicitly too: a demo started in the background of a script inherits it ignored
    previous = {sig: signal.signal(sig, _raise_interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        _ready(url, cert, proc)
        on_ready()
        sys.stdout.flush()
        return proc.wait()
    except KeyboardInterrupt:
        say("stopping the portal ...")
        return 0
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # uvicorn's clean stop
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


__all__ = ["CUSTOMER_USER", "DEALER", "DEALER_USER", "Login", "PortalError", "logins", "portal_port", "serve"]
