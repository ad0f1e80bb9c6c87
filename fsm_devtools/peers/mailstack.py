"""A private Postfix + Dovecot mail stack on loopback, for tests, the demo and benchmarks.

Postfix takes mail on SMTP (127.0.0.1:10025, STARTTLS offered), on submission (10587,
STARTTLS required, AUTH through Dovecot's SASL socket) and on smtps (10465, implicit TLS,
AUTH), and delivers it by LMTP to a private Dovecot serving IMAP (10143, STARTTLS offered)
and IMAPS (10993). Every file, socket and log lives under one short state directory; nothing
from /etc/postfix or /etc/dovecot is read.
A test CA signs the servers' certificate, so clients verify TLS exactly as in production.

Example::

    stack = MailStack(port_offset=100)       # ports 10125, 10687, 10565, 10243, 11093
    stack.start()                            # waits for the SMTP and IMAP greetings
    with stack.imap("dealer") as imap: ...   # imaplib.IMAP4_SSL, CA verified, logged in
    stack.stop()                             # stops only the PIDs this stack started

Command line: ``python -m fsm_devtools.peers.mailstack start|stop|status [--offset N]``.
See docs/development.md "Mail stack" for the ports, the state directory and the why.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import imaplib
import ipaddress
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fsm_protocol.errors import FsmError

from . import procs
from .procs import alive, cmdline, cwd, exe, port_open, read_pid, tail

HOST = "127.0.0.1"
DOMAIN = "fsm.test"
SMTP_PORT = 10025
SUBMISSION_PORT = 10587
SMTPS_PORT = 10465  # implicit TLS ("smtps"), for clients configured with security = "tls"
IMAP_PORT = 10143
IMAPS_PORT = 10993
FOLDERS = ("FSM/Processed", "FSM/Quarantine")
OFFSET_ENV = "FSM_MAIL_PORT_OFFSET"
DOVECOT = "/usr/sbin/dovecot"
POSTFIX = "/usr/sbin/postfix"
POSTFIX_MASTER = "/usr/lib/postfix/sbin/master"
MAIL_UID = MAIL_GID = 8  # Debian's system user `mail`: mail is stored as it, no account to create
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


def default_state_dir(port_offset: int) -> Path:
    return Path("/tmp/fsm-mail" if port_offset == 0 else f"/tmp/fsm-mail-{port_offset}")


def offset_from_env() -> int:
    raw = os.environ.get(OFFSET_ENV, "0") or "0"
    try:
        return int(raw)
    except ValueError:
        raise MailStackError(
            f"{OFFSET_ENV}={raw!r} is not an integer", hint=f"set {OFFSET_ENV} to e.g. 0, 100, 200 or 300"
        ) from None


class MailStack:
    """Controller of one private Postfix + Dovecot instance (see the module docstring)."""

    def __init__(
        self,
        state_dir: Path | str | None = None,
        *,
        port_offset: int = 0,
        start_timeout: float = 15.0,
        stop_timeout: float = 10.0,
    ) -> None:
        if not 0 <= port_offset <= 50000:
            raise MailStackError(f"port offset {port_offset} is out of range", hint="use 0..50000")
        self.port_offset = port_offset
        self.state_dir = Path(state_dir) if state_dir is not None else default_state_dir(port_offset)
        if len(str(self.state_dir)) > MAX_STATE_DIR_CHARS:
            raise MailStackError(
                f"state directory {str(self.state_dir)!r} is longer than {MAX_STATE_DIR_CHARS} characters",
                hint="unix socket paths are limited to 107 bytes: pick a short one such as /tmp/fsm-mail",
            )
        if not self.state_dir.is_absolute():
            self.state_dir = self.state_dir.absolute()
        self.host = HOST
        self.domain = DOMAIN
        self.users = USERS
        self.folders = FOLDERS
        self.smtp_port = SMTP_PORT + port_offset
        self.submission_port = SUBMISSION_PORT + port_offset
        self.smtps_port = SMTPS_PORT + port_offset
        self.imap_port = IMAP_PORT + port_offset
        self.imaps_port = IMAPS_PORT + port_offset
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._owns_processes = False

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
    def start(self) -> MailStack:
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

    @contextlib.contextmanager
    def lease(self) -> Iterator[MailStack]:
        """Use the stack for a while (a pytest session): start it if needed, and stop it at the end
        only when a lease started it and no other live process holds a lease.

        Several pytest processes on one offset then share one stack, and a stack started by hand
        (`scripts/mailstack start`) is never stopped by a test run.
        """
        self.start()
        with procs.lease(self.state_dir, self._lock, self._owns_processes, self.stop):
            yield self

    def wipe(self) -> None:
        """Stop the stack and delete its state directory (mail, queue, certificates)."""
        self.stop()
        shutil.rmtree(self.state_dir, ignore_errors=True)

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
    def running(self) -> bool:
        return self.status().running

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.smtp_port, self.submission_port, self.smtps_port, self.imap_port, self.imaps_port)

    @property
    def started_here(self) -> bool:
        """True when this object started a daemon (a fixture then stops the stack at the end)."""
        return self._owns_processes

    def __enter__(self) -> MailStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

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
        _make_certificates(self.tls_dir)
        files = {
            self.state_dir / "dovecot.conf": self._dovecot_conf(),
            self.state_dir / "users": "".join(
                f"{u.address}:{{PLAIN}}{u.password}:{MAIL_UID}:{MAIL_GID}::{home / u.name}::\n"
                for u in self.users.values()
            ),
            self.postfix_dir / "main.cf": self._postfix_main_cf(),
            self.postfix_dir / "master.cf": self._postfix_master_cf(),
            self.postfix_dir / "vmailbox": "".join(f"{u.address} OK\n" for u in self.users.values()),
        }
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

    def _dovecot_conf(self) -> str:
        d = self.state_dir
        mailboxes = "".join(f"  mailbox {folder} {{\n    auto = subscribe\n  }}\n" for folder in self.folders)
        return f"""# Generated by fsm_devtools.peers.mailstack: a private Dovecot; includes nothing from /etc.
instance_name = fsm-mail-{self.port_offset}
base_dir = {self.dovecot_base}
state_dir = {d}/dovecot-state
log_path = {self.log_dir}/dovecot.log
protocols = imap lmtp
listen = {HOST}
ssl = yes
ssl_cert = <{self.tls_dir}/server.pem
ssl_key = <{self.tls_dir}/server.key
ssl_min_protocol = TLSv1.2
# Plain IMAP login on {self.imap_port} is allowed so that "plain only if configured" can be tested.
disable_plaintext_auth = no
auth_mechanisms = plain login
# Tests try wrong passwords on purpose; the default 2 s penalty per attempt only slows them down.
auth_failure_delay = 0
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {d}/users
}}
first_valid_uid = {MAIL_UID}
last_valid_uid = {MAIL_UID}
first_valid_gid = {MAIL_GID}
last_valid_gid = {MAIL_GID}
mail_location = maildir:~/Maildir
mail_max_userip_connections = 200
imap_idle_notify_interval = 1 mins
namespace inbox {{
  inbox = yes
  separator = /
{mailboxes}}}
service imap-login {{
  inet_listener imap {{
    address = {HOST}
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    address = {HOST}
    port = {self.imaps_port}
    ssl = yes
  }}
}}
service lmtp {{
  unix_listener lmtp {{
    mode = 0666
  }}
}}
# Nor the growing penalty (2, 4 .. 15 s) every later login from the failing IP pays (all tests
# come from 127.0.0.1): with its anvil socket closed, Dovecot disables the penalty.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service auth {{
  unix_listener auth-postfix {{
    mode = 0660
    user = postfix
    group = postfix
  }}
}}
protocol lmtp {{
  postmaster_address = postmaster@{DOMAIN}
}}
"""

    def _postfix_main_cf(self) -> str:
        d = self.state_dir
        return f"""# Generated by fsm_devtools.peers.mailstack: a private Postfix delivering only to {DOMAIN}.
compatibility_level = 3.6
queue_directory = {self.queue_dir}
data_directory = {self.postfix_dir}/data
mail_owner = postfix
setgid_group = postdrop
# Logging without syslog: maillog_file must lie under maillog_file_prefixes, or every command fails.
maillog_file_prefixes = {self.log_dir}
maillog_file = {self.log_dir}/postfix.log
myhostname = mail.{DOMAIN}
mydomain = {DOMAIN}
myorigin = {DOMAIN}
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = {HOST}
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_banner = $myhostname ESMTP fsm test relay
biff = no
append_dot_mydomain = no
virtual_mailbox_domains = {DOMAIN}
virtual_mailbox_maps = texthash:{self.postfix_dir}/vmailbox
virtual_transport = lmtp:unix:{self.lmtp_socket}
# Nothing ever leaves this machine.
default_transport = error:the fsm test stack delivers only to {DOMAIN}
relay_transport = error:the fsm test stack delivers only to {DOMAIN}
local_transport = error:the fsm test stack delivers only to {DOMAIN}
smtpd_relay_restrictions = reject_unauth_destination
# Large reports and the 50 MB attachments of the server's bad-mail corpus must get through.
message_size_limit = 104857600
# Tests restart Dovecot: retry deferred LMTP deliveries within seconds, not minutes.
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 5s
smtpd_tls_security_level = may
smtpd_tls_cert_file = {self.tls_dir}/server.pem
smtpd_tls_key_file = {self.tls_dir}/server.key
smtpd_tls_auth_only = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = {self.auth_socket}
smtpd_sasl_auth_enable = no
smtp_tls_security_level = none
lmtp_tls_security_level = none
# state dir: {d}
"""

    def _postfix_master_cf(self) -> str:
        services = [
            f"{HOST}:{self.smtp_port} inet n - n - - smtpd",
            f"{HOST}:{self.submission_port} inet n - n - - smtpd\n"
            "  -o syslog_name=postfix/submission\n"
            "  -o smtpd_tls_security_level=encrypt\n"
            "  -o smtpd_sasl_auth_enable=yes\n"
            "  -o smtpd_client_restrictions=permit_sasl_authenticated,reject\n"
            "  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject",
            f"{HOST}:{self.smtps_port} inet n - n - - smtpd\n"
            "  -o syslog_name=postfix/smtps\n"
            "  -o smtpd_tls_wrappermode=yes\n"
            "  -o smtpd_sasl_auth_enable=yes",
            "pickup unix n - n 60 1 pickup",
            "cleanup unix n - n - 0 cleanup",
            "qmgr unix n - n 300 1 qmgr",
            "tlsmgr unix - - n 1000? 1 tlsmgr",
            "rewrite unix - - n - - trivial-rewrite",
            "bounce unix - - n - 0 bounce",
            "defer unix - - n - 0 bounce",
            "trace unix - - n - 0 bounce",
            "verify unix - - n - 1 verify",
            "flush unix n - n 1000? 0 flush",
            "proxymap unix - - n - - proxymap",
            "proxywrite unix - - n - 1 proxymap",
            "smtp unix - - n - - smtp",
            "relay unix - - n - - smtp",
            "showq unix n - n - - showq",
            "error unix - - n - - error",
            "retry unix - - n - - error",
            "discard unix - - n - - discard",
            "local unix - n n - - local",
            "virtual unix - n n - - virtual",
            "lmtp unix - - n - - lmtp",
            "anvil unix - - n - 1 anvil",
            "scache unix - - n - 1 scache",
            "postlog unix-dgram n - n - 1 postlogd",
        ]
        return (
            "# Generated by fsm_devtools.peers.mailstack (no chroot: paths are absolute).\n"
            + "\n".join(services)
            + "\n"
        )

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


# ---------------------------------------------------------------- helpers
def _ok(result: tuple[str, list[object]], what: str) -> None:
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


def _make_certificates(tls_dir: Path) -> None:
    """A test CA and a server certificate for 127.0.0.1 / localhost / mail.fsm.test (once per state dir)."""
    if (tls_dir / "server.pem").exists() and (tls_dir / "ca.pem").exists():
        return
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    tls_dir.mkdir(parents=True, exist_ok=True)
    tls_dir.chmod(0o755)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fsm test mail CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"mail.{DOMAIN}")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.DNSName(f"mail.{DOMAIN}"),
                    x509.IPAddress(ipaddress.IPv4Address(HOST)),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    def write(name: str, data: bytes, mode: int) -> None:
        path = tls_dir / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        path.chmod(mode)

    pem = serialization.Encoding.PEM
    pkcs8 = serialization.PrivateFormat.PKCS8
    write("server.key", key.private_bytes(pem, pkcs8, serialization.NoEncryption()), 0o600)
    write("ca.key", ca_key.private_bytes(pem, pkcs8, serialization.NoEncryption()), 0o600)
    write("server.pem", cert.public_bytes(pem) + ca.public_bytes(pem), 0o644)
    write("ca.pem", ca.public_bytes(pem), 0o644)  # written last: its presence means "all done"


# -------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="mailstack", description="Private Postfix + Dovecot on 127.0.0.1 for fsm's tests and demo."
    )
    parser.add_argument("command", choices=["start", "stop", "status", "wipe"])
    parser.add_argument("--offset", type=int, default=None, help=f"port offset (default ${OFFSET_ENV} or 0)")
    parser.add_argument("--dir", type=Path, default=None, help="state directory (<= 60 characters)")
    args = parser.parse_args(argv)
    offset = args.offset if args.offset is not None else offset_from_env()
    return procs.control(
        lambda: MailStack(args.dir, port_offset=offset),
        args.command,
        started=lambda stack: [
            f"ca file     {stack.ca_file}",
            "users       " + ", ".join(f"{u.address} ({u.password})" for u in stack.users.values()),
        ],
    )


if __name__ == "__main__":
    sys.exit(main())


__all__ = [
    "DOMAIN",
    "FOLDERS",
    "HOST",
    "IMAPS_PORT",
    "IMAP_PORT",
    "OFFSET_ENV",
    "SMTPS_PORT",
    "SMTP_PORT",
    "SUBMISSION_PORT",
    "USERS",
    "MailStack",
    "MailStackError",
    "MailStackStatus",
    "MailUser",
    "default_state_dir",
    "offset_from_env",
]
