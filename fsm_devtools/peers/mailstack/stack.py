"""A private Postfix + Dovecot mail stack on loopback, for tests, the demo and benchmarks.

Postfix takes mail on SMTP (127.0.0.1:10025, STARTTLS offered), on submission (10587,
STARTTLS required, AUTH through Dovecot's SASL socket) and on smtps (10465, implicit TLS,
AUTH), and delivers it by LMTP to a private Dovecot serving IMAP (10143, STARTTLS offered)
and IMAPS (10993). Every file, socket and log lives under one short state directory; nothing
from /etc/postfix or /etc/dovecot is read.
A test CA (``peers.ca``) signs the servers' certificate, so clients verify TLS exactly as in
production. The config files are templates beside this module (``configs.py``).

Example::

    stack = MailStack(port_offset=100)       # ports 10125, 10687, 10565, 10243, 11093
    stack.start()                            # waits for the SMTP and IMAP greetings
    with stack.imap("dealer") as imap: ...   # imaplib.IMAP4_SSL, CA verified, logged in
    stack.stop()                             # stops only the PIDs this stack started

Command line (``__main__.py``): ``python -m fsm_devtools.peers.mailstack start|stop|status|wipe
[--offset N]``.
See docs/development.md "Mail stack" for the ports, the state directory and the why.
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from fsm_protocol.errors import FsmError

from .. import procs
from ..ca import TestCa
from ..procs import MAIL_OFFSET_ENV, alive, cmdline, cwd, exe, port_open, read_pid, tail
from .configs import DOMAIN, HOST, MAIL_GID, MAIL_UID, render

SMTP_PORT = 10025
SUBMISSION_PORT = 10587
SMTPS_PORT = 10465  # implicit TLS ("smtps"), for clients configured with security = "tls"
IMAP_PORT = 10143
IMAPS_PORT = 10993
FOLDERS = ("FSM/Processed", "FSM/Quarantine")
OFFSET_ENV = MAIL_OFFSET_ENV
DOVECOT = "/usr/sbin/dovecot"
POSTFIX = "/usr/sbin/postfix"
POSTFIX_MASTER = "/usr/lib/postfix/sbin/master"
# Unix socket paths are limited to 107 bytes; the longest one is DIR/postfix/q/private/<service>.
MAX_STATE_DIR_CHARS = 60


@dataclass(frozen=True)
class MailUser:
    """A mailbox of the stack: its address doubles as the IMAP/SASL login."""

    name: str
    address: str
    password: str


USERS: dict[str, MailUser] = {
    "dealer": MailUser("dealer", f"dealer@{DOMAIN}", "dealer-pass"),
    "alerts": MailUser("alerts", f"alerts@{DOMAIN}", "alerts-pass"),
    "client": MailUser("client", f"client@{DOMAIN}", "client-pass"),
}


class MailStackError(FsmError):
    """The private mail stack cannot be set up, started or stopped."""

    reason = "mail_stack_error"


@dataclass(frozen=True)
class MailStackStatus:
    """What `status()` reports: the master PIDs (None when not running) and the ports."""

    state_dir: Path
    postfix_pid: int | None
    dovecot_pid: int | None
    smtp_port: int
    submission_port: int
    smtps_port: int
    imap_port: int
    imaps_port: int

    @property
    def running(self) -> bool:
        return self.postfix_pid is not None and self.dovecot_pid is not None

    def describe(self) -> str:
        def pid(p: int | None) -> str:
            return f"running (pid {p})" if p else "stopped"

        return (
            f"state dir   {self.state_dir}\n"
            f"postfix     {pid(self.postfix_pid)}: smtp {HOST}:{self.smtp_port}, "
            f"submission {HOST}:{self.submission_port}, smtps {HOST}:{self.smtps_port}\n"
            f"dovecot     {pid(self.dovecot_pid)}: imap {HOST}:{self.imap_port}, "
            f"imaps {HOST}:{self.imaps_port}"
        )


def offset_from_env() -> int:
    """``$FSM_MAIL_PORT_OFFSET``, else 0."""
    return procs.port_offset(OFFSET_ENV, error=MailStackError)


class MailStack(procs.StateDirPeer):
    """Controller of one private Postfix + Dovecot instance (see the module docstring)."""

    error = MailStackError
    max_state_dir_chars = MAX_STATE_DIR_CHARS
    base_state_dir = "/tmp/fsm-mail"

    def __init__(
        self,
        state_dir: Path | str | None = None,
        *,
        port_offset: int = 0,
        start_timeout: float = 15.0,
        stop_timeout: float = 10.0,
    ) -> None:
        super().__init__(
            state_dir, port_offset=port_offset, start_timeout=start_timeout, stop_timeout=stop_timeout
        )
        self.host = HOST
        self.domain = DOMAIN
        self.users = USERS
        self.folders = FOLDERS
        self.smtp_port = SMTP_PORT + port_offset
        self.submission_port = SUBMISSION_PORT + port_offset
        self.smtps_port = SMTPS_PORT + port_offset
        self.imap_port = IMAP_PORT + port_offset
        self.imaps_port = IMAPS_PORT + port_offset

    # ----------------------------------------------------------------- paths
    @property
    def tls_dir(self) -> Path:
        return self.state_dir / "tls"

    @property
    def ca_file(self) -> Path:
        """The test CA's certificate: what clients pass as `ca_file` to verify the stack."""
        return self.tls_dir / "ca.pem"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "log"

    @property
    def dovecot_base(self) -> Path:
        return self.state_dir / "dovecot"

    @property
    def postfix_dir(self) -> Path:
        return self.state_dir / "postfix"

    @property
    def queue_dir(self) -> Path:
        return self.postfix_dir / "q"

    @property
    def lmtp_socket(self) -> Path:
        return self.dovecot_base / "lmtp"

    @property
    def auth_socket(self) -> Path:
        return self.dovecot_base / "auth-postfix"

    def maildir(self, user: str) -> Path:
        return self.state_dir / "home" / user / "Maildir"

    # ------------------------------------------------------------- lifecycle
    def start(self) -> Self:
        """Write the config (once), start whatever is not running, and wait for both greetings.

        Idempotent: a stack that is already up is left as it is.
        """
        self._check_binaries()
        with self._lock():
            procs.stop_foreign(
                self.state_dir,
                {"postfix": self._postfix_pid(), "dovecot": self._dovecot_pid()},
                self._terminate,
                MailStackError,
                OFFSET_ENV,
            )
            changed = self._prepare()
            dovecot_pid = self._dovecot_pid()
            if dovecot_pid is None:
                self._ensure_ports_free(self.imap_port, self.imaps_port)
                self._spawn([DOVECOT, "-c", str(self.state_dir / "dovecot.conf")], "dovecot-start.log")
                self._owns_processes = True
            elif changed & {"dovecot.conf", "users"}:
                # A stack left running by an older version of this module: take the new config.
                os.kill(dovecot_pid, signal.SIGHUP)
            if self._postfix_pid() is None:
                self._ensure_ports_free(self.smtp_port, self.submission_port, self.smtps_port)
                self._spawn([POSTFIX, "-c", str(self.postfix_dir), "start"], "postfix-start.log")
                self._owns_processes = True
            elif changed & {"main.cf", "master.cf", "vmailbox"}:
                self._spawn([POSTFIX, "-c", str(self.postfix_dir), "reload"], "postfix-start.log")
            deadline = time.monotonic() + self.start_timeout
            self._wait_greeting(self.imap_port, b"* OK", deadline, "Dovecot IMAP", "dovecot.log")
            self._wait_greeting(self.imaps_port, b"* OK", deadline, "Dovecot IMAPS", "dovecot.log", tls=True)
            self._wait_greeting(self.smtp_port, b"220", deadline, "Postfix SMTP", "postfix.log")
            self._wait_greeting(self.submission_port, b"220", deadline, "Postfix submission", "postfix.log")
            self._wait_greeting(self.smtps_port, b"220", deadline, "Postfix smtps", "postfix.log", tls=True)
        return self

    def stop(self) -> None:
        """Stop this stack's Postfix and Dovecot masters (and so their children); keep the mail."""
        with self._lock():
            (self.state_dir / "started-by-lease").unlink(missing_ok=True)
            for name, pid in (("postfix", self._postfix_pid()), ("dovecot", self._dovecot_pid())):
                if pid is not None:
                    self._terminate(name, pid)
            # Children (smtpd, imap-login ...) exit with their master; wait for the ports to close so
            # that an immediate restart can bind them again.
            deadline = time.monotonic() + self.stop_timeout
            for port in self.ports:
                while port_open(HOST, port) and time.monotonic() < deadline:
                    time.sleep(0.05)
        self._owns_processes = False

    def status(self) -> MailStackStatus:
        return MailStackStatus(
            state_dir=self.state_dir,
            postfix_pid=self._postfix_pid(),
            dovecot_pid=self._dovecot_pid(),
            smtp_port=self.smtp_port,
            submission_port=self.submission_port,
            smtps_port=self.smtps_port,
            imap_port=self.imap_port,
            imaps_port=self.imaps_port,
        )

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.smtp_port, self.submission_port, self.smtps_port, self.imap_port, self.imaps_port)

    # ------------------------------------------------------- checking helpers
    def ssl_context(self) -> ssl.SSLContext:
        """A client context that verifies the stack's certificate against its CA."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    @contextlib.contextmanager
    def imap(self, user: str = "dealer") -> Iterator[imaplib.IMAP4_SSL]:
        """A logged-in stdlib IMAPS connection (CA verified) for tests to look at a mailbox."""
        account = self.users[user]
        conn = imaplib.IMAP4_SSL(self.host, self.imaps_port, ssl_context=self.ssl_context(), timeout=10)
        try:
            conn.login(account.address, account.password)
            yield conn
        finally:
            with contextlib.suppress(Exception):
                conn.logout()

    def messages(self, user: str = "dealer", folder: str = "INBOX") -> list[tuple[int, bytes]]:
        """(UID, raw message) of every message in a folder, read with BODY.PEEK[] (\\Seen untouched)."""
        with self.imap(user) as conn:
            _ok(conn.select(_quote(folder), readonly=True), f"select {folder}")
            typ, data = conn.uid("SEARCH", "ALL")
            _ok((typ, data), "uid search")
            uids = [int(u) for u in data[0].split()] if data and data[0] else []
            result = []
            for uid in uids:
                typ, parts = conn.uid("FETCH", str(uid), "(BODY.PEEK[])")
                _ok((typ, parts), "uid fetch")
                for part in parts:
                    if isinstance(part, tuple):
                        result.append((uid, part[1]))
            return result

    def wait_for_messages(
        self, count: int, *, user: str = "dealer", folder: str = "INBOX", timeout: float = 10.0
    ) -> list[tuple[int, bytes]]:
        """Poll until a folder holds at least `count` messages; Postfix delivers a few ms after 250."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.messages(user, folder)
            if len(found) >= count or time.monotonic() > deadline:
                if len(found) < count:
                    raise MailStackError(
                        f"{folder} of {user} holds {len(found)} messages, expected {count} in {timeout} s",
                        hint=f"look at {self.log_dir}/postfix.log for the delivery status",
                    )
                return found
            time.sleep(0.05)

    def kick(self, user: str = "dealer") -> None:
        """Make Dovecot drop every IMAP connection of a user (a server-side disconnect for tests)."""
        conf = str(self.state_dir / "dovecot.conf")
        proc = subprocess.run(
            ["doveadm", "-c", conf, "kick", self.users[user].address],
            capture_output=True, text=True, check=False, timeout=30, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        if proc.returncode != 0:
            raise MailStackError(f"doveadm kick failed: {proc.stderr.strip()}", hint=f"read {self.log_dir}")

    def wait_until_delivered(self, timeout: float = 5.0) -> bool:
        """Wait until Postfix holds no mail still on its way (incoming/active); False on timeout.

        Deferred mail (delivery failed, retried later) is not waited for.
        """
        deadline = time.monotonic() + timeout
        while True:
            pending = [
                f
                for sub in ("maildrop", "incoming", "active")
                for f in (self.queue_dir / sub).rglob("*")
                if f.is_file()
            ]
            if not pending:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)

    def empty_mailbox(self, user: str = "dealer") -> None:
        """Delete every message in INBOX and the FSM folders of one user (after Postfix delivered
        what it had accepted, so mail of an earlier test cannot trickle in later)."""
        self.wait_until_delivered()
        with self.imap(user) as conn:
            for folder in ("INBOX", *self.folders):
                _ok(conn.select(_quote(folder)), f"select {folder}")
                _typ, data = conn.uid("SEARCH", "ALL")
                if data and data[0]:
                    conn.uid("STORE", b",".join(data[0].split()).decode(), "+FLAGS.SILENT", r"(\Deleted)")
                    conn.expunge()
                conn.close()

    # ------------------------------------------------------------- internals
    def _check_binaries(self) -> None:
        missing = [p for p in (DOVECOT, POSTFIX, POSTFIX_MASTER) if not os.path.exists(p)]
        if missing:
            raise MailStackError(
                f"missing {', '.join(missing)}",
                hint="run scripts/setup (installs postfix, dovecot-imapd, dovecot-lmtpd)",
            )
        if os.geteuid() != 0:
            raise MailStackError(
                "the mail stack must be started as root (Postfix and Dovecot drop privileges themselves)",
                hint="run scripts/mailstack with sudo",
            )

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        # Two pytest processes with the same offset must not write configs or spawn masters together.
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.state_dir.chmod(0o755)  # Postfix (uid postfix) walks it to reach Dovecot's sockets
        with procs.locked(self.state_dir / ".lock"):
            yield

    def _prepare(self) -> set[str]:
        """Write state dir, certificates and configs; return the names of config files that changed."""
        for d in (self.log_dir, self.dovecot_base, self.state_dir / "dovecot-state", self.queue_dir):
            d.mkdir(parents=True, exist_ok=True)
        for d in (self.state_dir, self.log_dir, self.dovecot_base, self.postfix_dir, self.queue_dir):
            d.chmod(0o755)
        home = self.state_dir / "home"
        home.mkdir(exist_ok=True)
        home.chmod(0o755)
        for user in self.users:
            (home / user).mkdir(exist_ok=True)
            os.chown(home / user, MAIL_UID, MAIL_GID)
            (home / user).chmod(0o700)
        names = [f"mail.{DOMAIN}", "localhost", HOST]
        ca = TestCa.once(self.tls_dir, name="fsm test mail CA", server_names=names, days=825)
        files = self._config_files(ca, home)
        old = time.time() - 120
        changed: set[str] = set()
        for path, text in files.items():
            if not path.exists() or path.read_text() != text:
                path.write_text(text)
                path.chmod(0o644)
                changed.add(path.name)
            # Postfix re-reads a main.cf younger than ~1 s five times (+1.5 s per command): backdate.
            os.utime(path, (old, old))
        return changed

    def _config_files(self, ca: TestCa, home: Path) -> dict[Path, str]:
        """Every config file of the daemons (path: text), rendered from the templates."""
        daemons = {
            self.state_dir: ("dovecot.conf", "users"),
            self.postfix_dir: ("main.cf", "master.cf", "vmailbox"),
        }
        users = list(self.users.values())
        return {
            where / name: render(name, stack=self, ca=ca, users=users, home=home)
            for where, names in daemons.items()
            for name in names
        }

    def _spawn(self, argv: list[str], log_name: str) -> None:
        # Daemons must not inherit our stdout/stderr: Dovecot would hold a caller's pipe open forever.
        log = self.log_dir / log_name
        with open(os.devnull, "rb") as devnull, open(log, "ab") as out:
            proc = subprocess.run(argv, stdin=devnull, stdout=out, stderr=out, check=False, timeout=60)
        if proc.returncode != 0:
            raise MailStackError(
                f"{' '.join(argv)} exited with status {proc.returncode}: {tail(log)}",
                hint=f"read {log} and {self.log_dir}/{'dovecot' if 'dovecot' in argv[0] else 'postfix'}.log",
            )

    def _ensure_ports_free(self, *ports: int) -> None:
        taken = [p for p in ports if port_open(HOST, p)]
        if taken:
            raise MailStackError(
                f"port(s) {', '.join(map(str, taken))} on {HOST} are already in use by another process",
                hint=f"stop whatever listens there, or pick another offset with {OFFSET_ENV}",
            )

    def _wait_greeting(
        self, port: int, expect: bytes, deadline: float, what: str, log: str, *, tls: bool = False
    ) -> None:
        last_error = "no connection yet"
        while True:
            try:
                greeting = _read_greeting(port, self.ssl_context() if tls else None)
                if greeting.startswith(expect):
                    return
                last_error = f"unexpected greeting {greeting[:80]!r}"
            except (OSError, ssl.SSLError) as exc:
                last_error = str(exc)
            if time.monotonic() > deadline:
                raise MailStackError(
                    f"{what} on {HOST}:{port} did not greet within start_timeout={self.start_timeout} s "
                    f"({last_error})",
                    hint=f"read {self.log_dir / log}; on a slow machine raise MailStack(start_timeout=...)",
                )
            time.sleep(0.02)

    def _postfix_pid(self) -> int | None:
        pid = read_pid(self.queue_dir / "pid" / "master.pid")
        # Postfix's master runs in its queue directory: that tells it apart from a reused PID.
        if pid is not None and alive(pid) and exe(pid) == POSTFIX_MASTER and cwd(pid) == self.queue_dir:
            return pid
        return None

    def _dovecot_pid(self) -> int | None:
        pid = read_pid(self.dovecot_base / "master.pid")
        if pid is not None and alive(pid) and exe(pid) == DOVECOT:
            conf = str(self.state_dir / "dovecot.conf")
            if conf in cmdline(pid):
                return pid
        return None

    def _terminate(self, name: str, pid: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        while alive(pid):
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                time.sleep(0.2)
                if alive(pid):
                    raise MailStackError(
                        f"{name} master (pid {pid}) did not stop within stop_timeout={self.stop_timeout} s",
                        hint=f"look at /proc/{pid}/status; kill it by its pid",
                    )
                break
            time.sleep(0.05)


default_state_dir = MailStack.default_state_dir


# ---------------------------------------------------------------- helpers
def _ok(result: tuple[str, Sequence[object]], what: str) -> None:
    typ, data = result
    if typ != "OK":
        raise MailStackError(f"IMAP {what} failed: {typ} {data!r}", hint="read the stack's dovecot.log")


def _quote(folder: str) -> str:
    return f'"{folder}"'


def _read_greeting(port: int, context: ssl.SSLContext | None) -> bytes:
    with socket.create_connection((HOST, port), timeout=2) as raw:
        if context is None:
            return raw.recv(512)
        with context.wrap_socket(raw, server_hostname=HOST) as tls:
            return tls.recv(512)
