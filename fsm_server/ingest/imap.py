"""The dealer's mailbox over IMAP (aioimaplib); the one place its errors become MailboxError.

What the ingest daemon needs and nothing more: connect (IMAPS verified by default, STARTTLS,
or plain only when configured), wait for new mail (IDLE, with a NOOP poll where the server has
no IDLE), fetch what is in the folder in batches with ``BODY.PEEK[]`` (\\Seen stays unset, so a
crash before the move leaves the mail as it was), and move processed mail with ``UID MOVE``
(``UID COPY`` + ``\\Deleted`` + ``UID EXPUNGE`` on servers without MOVE). Reconnecting with
backoff is the daemon's job: every failure here is a MailboxError saying what to check.

    mailbox = Mailbox("imap.example.com", 993, user="dealer", password=Secret("..."))
    await mailbox.connect()
    async for uid, raw in mailbox.fetch_new(batch=50):
        ...  # load raw, commit
    await mailbox.move([uid], "FSM/Processed")
    await mailbox.wait_for_new(300)   # True when the server announced a change
    await mailbox.aclose()

aioimaplib quirks handled here: untagged lines come without their ``*`` and keyword prefix
(``UID SEARCH`` gives ``b"1 2 3"``); FETCH literals are ``bytearray`` items after their
``N FETCH (UID u BODY[] {size}`` line; Dovecot delays IDLE notifications by ~0.5 s and
coalesces them, so EXISTS only means "something changed" and a UID SEARCH tells what.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import aioimaplib

from fsm_common.configfile import Secret
from fsm_common.tls import tls_context
from fsm_protocol.errors import ConfigError
from fsm_server.errors import MailboxError

if TYPE_CHECKING:
    from fsm_server.config import MailboxSection

Security = Literal["tls", "starttls", "none"]
SECURITY_MODES: tuple[Security, ...] = ("tls", "starttls", "none")
#: aioimaplib re-scans every line of a response for each line it receives: keep batches small.
MAX_BATCH = 100
#: UIDs per UID MOVE / COPY / STORE command, so command lines stay short.
UIDS_PER_COMMAND = 500
#: Without IDLE, NOOP this often while waiting.
DEFAULT_POLL_INTERVAL = 10.0

_FETCH_UID = re.compile(rb"\bUID (\d+)")
_EXISTS = re.compile(rb"^\d+ (EXISTS|RECENT)$")


class Mailbox:
    """One IMAP folder that report mails arrive in (see the module docstring)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        user: str,
        password: Secret,
        security: Security = "tls",
        ca_file: Path | str | None = None,
        folder: str = "INBOX",
        timeout: float = 30.0,
        use_idle: bool = True,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        max_message_bytes: int | None = None,
        name: str | None = None,
    ) -> None:
        if security not in SECURITY_MODES:
            raise ConfigError(
                f"mailbox security {security!r} is not one of {', '.join(SECURITY_MODES)}",
                hint='use security = "tls" (port 993), "starttls" (port 143) or "none" on a trusted network',
            )
        self.host = host
        self.port = port
        self.user = user
        self._password = password
        self.security: Security = security
        self.ca_file = Path(ca_file) if ca_file else None
        self.folder = folder
        self.timeout = timeout
        self.use_idle = use_idle
        self.poll_interval = poll_interval
        # A mail bigger than this is fetched only up to limit + 1 bytes: the pipeline sees it is too
        # large (and quarantines its head) without this process holding a 50 MB attachment.
        self.max_message_bytes = max_message_bytes
        self.name = name or f"{user}@{host}:{port}"
        self._tls = (
            tls_context(self.ca_file, what="mailbox ca_file", knob="ca_file", peer="IMAP server")
            if security != "none"
            else None
        )
        self._imap: aioimaplib.IMAP4 | None = None
        self._lost: asyncio.Event | None = None
        self._lost_reason: str = ""
        self._high_uid = 0
        self.uidvalidity: int | None = None
        self.capabilities: frozenset[str] = frozenset()

    @classmethod
    def from_config(cls, cfg: MailboxSection, **options: Any) -> Mailbox:
        """A Mailbox for one ``[[mailboxes]]`` section of the server config."""
        return cls(
            cfg.host,
            cfg.port,
            user=cfg.user,
            password=cfg.password,
            security=cfg.security,
            ca_file=cfg.ca_file,
            folder=cfg.folder,
            name=cfg.name or None,
            **options,
        )

    def __repr__(self) -> str:
        return f"Mailbox({self.name!r}, folder={self.folder!r}, security={self.security!r})"

    async def __aenter__(self) -> Mailbox:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------------------------ API
    async def connect(self) -> None:
        """Connect, check TLS, log in and select the folder; raises MailboxError saying what failed."""
        await self.aclose()
        loop = asyncio.get_running_loop()
        # One event per connection: a late connection_lost of the previous one must not mark this one.
        lost = self._lost = asyncio.Event()
        self._lost_reason = ""

        def on_lost(exc: Exception | None) -> None:
            if lost is self._lost:
                self._lost_reason = str(exc) if exc else "the server closed the connection"
            lost.set()

        self._high_uid = 0
        async with self._errors("connecting"):
            if self.security == "starttls":
                imap: aioimaplib.IMAP4 = _StartTlsIMAP4(
                    self.host, self.port, timeout=self.timeout, conn_lost_cb=on_lost, ssl_context=self._tls
                )
            else:
                imap = aioimaplib.IMAP4(
                    self.host, self.port, loop=loop, timeout=self.timeout, conn_lost_cb=on_lost,
                    ssl_context=self._tls,
                )  # fmt: skip
            self._imap = imap
            await imap.wait_hello_from_server()
        async with self._errors("logging in"):
            response = await imap.login(self.user, self._password.reveal())
        if response.result != "OK":
            raise MailboxError(
                f"the IMAP server {self.host}:{self.port} refused the login of {self.user!r}: "
                f"{_status_text(response.lines)}",
                hint="check user and password of this [[mailboxes]] entry",
            )
        self.capabilities = frozenset(c.upper() for c in imap.protocol.capabilities)
        async with self._errors(f"selecting {self.folder!r}"):
            response = await imap.select(_quote(self.folder))
        if response.result != "OK":
            raise MailboxError(
                f"cannot open folder {self.folder!r} of {self.name}: {_status_text(response.lines)}",
                hint="check folder in this [[mailboxes]] entry (with the server's separator: FSM/Processed)",
            )
        for line in response.lines:
            if m := re.search(rb"UIDVALIDITY (\d+)", bytes(line)):
                self.uidvalidity = int(m[1])

    async def wait_for_new(self, timeout: float) -> bool:
        """Return True as soon as the server reports a change (new mail), False after `timeout` s.

        Uses IDLE where the server has it (Dovecot announces ~0.5 s after delivery); otherwise
        NOOP every `poll_interval` s. Mail that arrived since the last fetch returns at once.
        """
        imap = self._connected()
        if await self._has_unseen_uids():
            return True
        if self.use_idle and "IDLE" in self.capabilities:
            return await self._idle(imap, timeout)
        return await self._poll(imap, timeout)

    async def fetch_new(self, batch: int = 50) -> AsyncIterator[tuple[int, bytes]]:
        """Every undeleted mail of the folder, oldest UID first, as (UID, raw bytes); \\Seen untouched.

        Fetched `batch` mails per round trip (at most MAX_BATCH). Mail still in the folder is
        yielded again on the next call: the daemon moves what it has committed.
        """
        imap = self._connected()
        batch = max(1, min(batch, MAX_BATCH))
        uids = await self._search("UNDELETED")
        part = (
            "BODY.PEEK[]"
            if self.max_message_bytes is None
            else f"BODY.PEEK[]<0.{self.max_message_bytes + 1}>"
        )
        for start in range(0, len(uids), batch):
            chunk = uids[start : start + batch]
            async with self._errors("fetching mail"):
                response = await imap.uid("fetch", _uid_set(chunk), f"(UID RFC822.SIZE {part})")
            self._check(response, "UID FETCH")
            for uid, raw in sorted(_fetched(response.lines)):
                self._high_uid = max(self._high_uid, uid)
                yield uid, raw

    async def move(self, uids: Sequence[int] | Iterable[int], folder: str) -> None:
        """Move mails to another folder (created if missing): UID MOVE, else COPY + \\Deleted + EXPUNGE."""
        imap = self._connected()
        ordered = sorted(set(uids))
        if not ordered:
            return
        async with self._errors("syncing the folder"):
            # Another session (a second daemon, or a killed one's) may have moved some already:
            # after NOOP their UIDs are gone from our view and UID MOVE skips them.
            self._check(await imap.noop(), "NOOP")
        for start in range(0, len(ordered), UIDS_PER_COMMAND):
            uid_set = _uid_set(ordered[start : start + UIDS_PER_COMMAND])
            for attempt in (1, 2):
                if "MOVE" in self.capabilities:
                    async with self._errors(f"moving mail to {folder!r}"):
                        response = await imap.uid("move", uid_set, _quote(folder))
                else:
                    response = await self._copy_delete_expunge(imap, uid_set, folder)
                answer = _status_text(response.lines).upper()
                # EXPUNGEISSUED: some were moved away meanwhile by another session; the rest moved.
                if response.result == "OK" or "[EXPUNGEISSUED]" in answer:
                    break
                if attempt == 1 and "TRYCREATE" in answer:
                    await self._create(folder)
                    continue
                self._check(response, f"moving mail to {folder!r}")

    async def aclose(self) -> None:
        """Leave IDLE, log out and close; never raises."""
        imap, self._imap = self._imap, None
        if imap is None:
            return
        with contextlib.suppress(Exception):
            if imap.has_pending_idle():
                imap.idle_done()
                await asyncio.wait_for(imap.protocol.wait("SELECTED|AUTH"), 2)
        lost = self._lost
        with contextlib.suppress(Exception):
            if not (lost and lost.is_set()):
                await asyncio.wait_for(imap.logout(), 5)
        transport = getattr(imap.protocol, "transport", None)
        if transport is not None:
            transport.close()
            # TLS closes over a few loop turns (close_notify, then the socket): wait for it, so a
            # caller that ends its event loop right after aclose() leaves no socket behind.
            if lost is not None:
                try:
                    await asyncio.wait_for(lost.wait(), 2)
                except TimeoutError:
                    transport.abort()
                except asyncio.CancelledError:
                    transport.abort()
                    raise
        for task in list(getattr(imap, "tasks", ())) + list(getattr(imap.protocol, "tasks", ())):
            task.cancel()

    # ----------------------------------------------------------------------------- internals
    def _connected(self) -> aioimaplib.IMAP4:
        if self._imap is None:
            raise MailboxError(f"{self.name} is not connected", hint="call connect() first")
        if self._lost is not None and self._lost.is_set():
            raise MailboxError(
                f"the connection to {self.name} was lost: {self._lost_reason}",
                hint="the daemon reconnects with backoff; check the IMAP server if this repeats",
            )
        return self._imap

    async def _search(self, *criteria: str) -> list[int]:
        imap = self._connected()
        async with self._errors("searching the folder"):
            # Dovecot updates the selected folder's view (new and expunged mail) on NOOP, not on
            # UID SEARCH: without it a search misses mail that arrived after the last sync.
            synced = await imap.noop()
            self._check(synced, "NOOP")
            response = await imap.uid_search(*criteria, charset=None)
        self._check(response, "UID SEARCH")
        uids: list[int] = []
        for line in response.lines[:-1]:
            tokens = bytes(line).split()
            # The SEARCH line comes without its keyword; "3 EXISTS" and the like may come along.
            if tokens and all(tok.isdigit() for tok in tokens):
                uids.extend(int(tok) for tok in tokens)
        return sorted(set(uids))

    async def _has_unseen_uids(self) -> bool:
        # "n:*" always matches the newest mail even when its UID is below n: filter ourselves.
        return any(
            uid > self._high_uid for uid in await self._search("UNDELETED", "UID", f"{self._high_uid + 1}:*")
        )

    async def _idle(self, imap: aioimaplib.IMAP4, timeout: float) -> bool:
        assert self._lost is not None
        # Pushes left from an earlier IDLE (or aioimaplib's own stop marker) are stale.
        while not imap.protocol.idle_queue.empty():
            imap.protocol.idle_queue.get_nowait()
        async with self._errors("starting IDLE"):
            # Our own deadline ends the wait; aioimaplib's stop timer is only a backstop.
            idle = await imap.idle_start(timeout=timeout + 60)
        lost = asyncio.ensure_future(self._lost.wait())
        announced = False
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while not announced:
                left = deadline - loop.time()
                if left <= 0:
                    break
                push = asyncio.ensure_future(imap.wait_server_push(timeout=left))
                done, _ = await asyncio.wait({push, lost}, return_when=asyncio.FIRST_COMPLETED)
                if lost in done:
                    push.cancel()
                    self._connected()  # raises MailboxError naming the loss
                try:
                    lines = push.result()
                except TimeoutError:
                    break
                if lines == aioimaplib.STOP_WAIT_SERVER_PUSH:
                    break
                announced = any(_EXISTS.match(bytes(line)) for line in _as_lines(lines))
        finally:
            lost.cancel()
            if self._lost.is_set():
                idle.cancel()  # no DONE can be answered on a lost connection
            else:
                if imap.has_pending_idle():
                    imap.idle_done()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(idle, self.timeout)
        return announced or await self._has_unseen_uids()

    async def _poll(self, imap: aioimaplib.IMAP4, timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            left = deadline - loop.time()
            if left <= 0:
                return False
            await asyncio.sleep(min(self.poll_interval, left))
            async with self._errors("polling (NOOP)"):
                response = await imap.noop()
            self._check(response, "NOOP")
            if await self._has_unseen_uids():
                return True

    async def _copy_delete_expunge(self, imap: aioimaplib.IMAP4, uid_set: str, folder: str) -> Any:
        async with self._errors(f"copying mail to {folder!r}"):
            response = await imap.uid("copy", uid_set, _quote(folder))
            if response.result != "OK" and "[EXPUNGEISSUED]" not in _status_text(response.lines).upper():
                return response
            stored = await imap.uid("store", uid_set, "+FLAGS.SILENT", r"(\Deleted)")
            self._check(stored, "UID STORE \\Deleted")
            if "UIDPLUS" in self.capabilities:
                expunged = await imap.uid("expunge", uid_set)
            else:
                # Plain EXPUNGE removes every \Deleted mail of the folder; ours are the only ones
                # fsm marks, and fetch_new skips \Deleted mail in any case.
                expunged = await imap.expunge()
            self._check(expunged, "EXPUNGE")
        return response

    async def _create(self, folder: str) -> None:
        imap = self._connected()
        async with self._errors(f"creating folder {folder!r}"):
            created = await imap.create(_quote(folder))
            if created.result == "OK":
                await imap.subscribe(_quote(folder))
        if created.result != "OK" and "ALREADYEXISTS" not in _status_text(created.lines).upper():
            self._check(created, f"CREATE {folder!r}")

    def _check(self, response: Any, what: str) -> None:
        if response.result != "OK":
            raise MailboxError(
                f"the IMAP server {self.name} answered {what} with {response.result}: "
                f"{_status_text(response.lines)}",
                hint="read the server's answer above; the daemon retries after reconnecting",
            )

    @contextlib.asynccontextmanager
    async def _errors(self, doing: str) -> AsyncIterator[None]:
        """Translate whatever aioimaplib, ssl or the socket raises into MailboxError."""
        try:
            yield
        except MailboxError:
            raise
        except (aioimaplib.AioImapException, OSError, TimeoutError) as exc:
            raise translate_error(exc, self, doing) from exc


def translate_error(exc: BaseException, mailbox: Mailbox, doing: str) -> MailboxError:
    """The MailboxError (message + hint) for an aioimaplib, ssl, timeout or socket failure."""
    where = f"{mailbox.host}:{mailbox.port}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        against = f"ca_file = {str(mailbox.ca_file)!r}" if mailbox.ca_file else "the system's CAs"
        return MailboxError(
            f"the certificate of the IMAP server {where} failed verification against {against}: "
            f"{getattr(exc, 'verify_message', None) or exc}",
            hint="set `ca_file` in this [[mailboxes]] entry to the PEM file of the CA that signed the "
            "server's certificate (verification stays on)",
        )
    if isinstance(exc, ssl.SSLError):
        return MailboxError(
            f"TLS with the IMAP server {where} failed while {doing}: {exc}",
            hint='check security ("tls" for port 993, "starttls" for 143) and port in [[mailboxes]]',
        )
    if isinstance(exc, ConnectionRefusedError):
        return MailboxError(
            f"cannot connect to the IMAP server {where}: connection refused",
            hint="check host and port of this [[mailboxes]] entry and that the server runs; "
            "the daemon reconnects with backoff",
        )
    if isinstance(exc, (TimeoutError, aioimaplib.CommandTimeout)):
        return MailboxError(
            f"the IMAP server {mailbox.name} did not answer within {mailbox.timeout} s while {doing}",
            hint="check the server and the network; the daemon reconnects with backoff",
        )
    if isinstance(exc, aioimaplib.AioImapException):
        reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
        return MailboxError(
            f"IMAP failure with {mailbox.name} while {doing}: {reason}",
            hint="the daemon reconnects with backoff; check the IMAP server's log if this repeats",
        )
    if isinstance(exc, OSError):
        return MailboxError(
            f"network failure with the IMAP server {where} while {doing}: {exc.strerror or exc}",
            hint="check host and port of this [[mailboxes]] entry; the daemon reconnects with backoff",
        )
    return MailboxError(
        f"IMAP failure with {mailbox.name} while {doing}: {exc!r}", hint="check the IMAP server's log"
    )


class _StartTlsIMAP4(aioimaplib.IMAP4):
    """aioimaplib has no STARTTLS: speak it before handing the TLS connection to the protocol."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout: float,
        conn_lost_cb: Callable[[Exception | None], None],
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        super().__init__(host, port, timeout=timeout, conn_lost_cb=conn_lost_cb, ssl_context=ssl_context)

    def create_client(
        self,
        host: str,
        port: int,
        loop: asyncio.AbstractEventLoop | None,
        conn_lost_cb: Callable[[Exception | None], None] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        local_loop = loop if loop is not None else asyncio.get_running_loop()
        self.protocol = aioimaplib.IMAP4ClientProtocol(local_loop, conn_lost_cb)
        self._client_task = local_loop.create_task(self._starttls(local_loop, host, port, ssl_context))

    async def _starttls(
        self, loop: asyncio.AbstractEventLoop, host: str, port: int, context: ssl.SSLContext | None
    ) -> None:
        assert context is not None
        reader, writer = await asyncio.open_connection(host, port)
        try:
            greeting = await reader.readline()
            if not greeting.startswith(b"* OK"):
                raise aioimaplib.Error(f"unexpected greeting {greeting[:80]!r}")
            writer.write(b"S0 STARTTLS\r\n")
            while True:
                line = await reader.readline()
                if not line:
                    raise aioimaplib.Abort("the server closed the connection after STARTTLS")
                if line.startswith(b"S0 "):
                    break
            if not line.startswith(b"S0 OK"):
                raise aioimaplib.Error(
                    f"the server refused STARTTLS: {line.strip().decode(errors='replace')}"
                )
            tls = await loop.start_tls(
                writer.transport, writer.transport.get_protocol(), context, server_hostname=host
            )
        except BaseException:
            writer.close()
            raise
        assert tls is not None
        tls.set_protocol(self.protocol)
        self.protocol.connection_made(tls)
        # Replay the greeting: the protocol moves to NONAUTH and asks for the (new, TLS) CAPABILITY.
        self.protocol.data_received(greeting)


def _fetched(lines: Sequence[Any]) -> Iterator[tuple[int, bytes]]:
    """(UID, literal) pairs from a UID FETCH response as aioimaplib hands it over.

    The literal follows its ``N FETCH (UID u BODY[] {size}`` line; a server that puts UID after
    the literal (``... {size}``, literal, `` UID u)``) is understood too.
    """
    pending_uid: int | None = None
    orphan: bytes | None = None
    for item in lines:
        if isinstance(item, bytearray):
            if pending_uid is not None:
                yield pending_uid, bytes(item)
            else:
                orphan = bytes(item)
            pending_uid = None
            continue
        line = bytes(item)
        if orphan is not None:
            if m := _FETCH_UID.search(line):
                yield int(m[1]), orphan
            orphan = None
            continue
        if b"FETCH (" in line and line.endswith(b"}"):
            m = _FETCH_UID.search(line)
            pending_uid = int(m[1]) if m else None


def _uid_set(uids: Sequence[int]) -> str:
    """``1:3,7,9:10`` for [1, 2, 3, 7, 9, 10]."""
    parts: list[str] = []
    ordered = sorted(uids)
    start = prev = ordered[0]
    for uid in ordered[1:]:
        if uid == prev + 1:
            prev = uid
            continue
        parts.append(f"{start}:{prev}" if prev != start else str(start))
        start = prev = uid
    parts.append(f"{start}:{prev}" if prev != start else str(start))
    return ",".join(parts)


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _status_text(lines: Sequence[Any]) -> str:
    """The tagged answer's text (the last line), without the untagged EXPUNGE/EXISTS lines before it."""
    texts = [bytes(line) for line in lines if not isinstance(line, bytearray)]
    return texts[-1].decode(errors="replace") if texts else ""


def _as_lines(push: Any) -> list[Any]:
    return push if isinstance(push, list) else [push]


__all__ = [
    "DEFAULT_POLL_INTERVAL",
    "MAX_BATCH",
    "SECURITY_MODES",
    "UIDS_PER_COMMAND",
    "Mailbox",
    "Security",
    "translate_error",
]
