"""Send mail through an SMTP relay with aiosmtplib (the client's reports, the server's notifications);
the one place its errors are translated.

Certificates are verified by default (system CAs, or `ca_file`). `security` is "tls" (implicit
TLS, usually port 465), "starttls" (required, usually 587 or 25) or "none" (plain, only on a
relay the site trusts). One connection is kept open between sends and reopened when the relay
closed it.

    async with SmtpTransport("relay.example.com", 587, username="fsm", password=Secret("...")) as t:
        answer = await t.send(mail, mail_from="fsm@example.com", rcpt_to=["reports@dealer.example"])
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import aiosmtplib

from fsm_protocol.errors import ConfigError

from .configfile import Secret
from .errors import TransientTransportError, TransportError, in_chain
from .tls import tls_context
from .transport import BaseTransport

Security = Literal["tls", "starttls", "none"]
SECURITY_MODES: tuple[Security, ...] = ("tls", "starttls", "none")


class SmtpTransport(BaseTransport):
    """A relay reached by SMTP (see the module docstring)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        security: Security = "starttls",
        username: str | None = None,
        password: Secret | None = None,
        ca_file: Path | str | None = None,
        timeout: float = 30.0,
    ) -> None:
        if security not in SECURITY_MODES:
            raise ConfigError(
                f"smtp security {security!r} is not one of {', '.join(SECURITY_MODES)}",
                hint='use security = "starttls" (port 587/25), "tls" (port 465) or "none" on a trusted relay',
            )
        if username and password is None:
            raise ConfigError(
                f"smtp username {username!r} is set but no password", hint="set [smtp] password"
            )
        self.host = host
        self.port = port
        self.security = security
        self.username = username or None
        self._password = password
        self.ca_file = Path(ca_file) if ca_file else None
        self.timeout = timeout
        self._tls_context = (
            None
            if security == "none"
            else tls_context(self.ca_file, what="smtp ca_file", knob="[smtp] ca_file", peer="relay")
        )
        self._smtp: aiosmtplib.SMTP | None = None
        self._lock = asyncio.Lock()

    @property
    def relay(self) -> str:
        return f"{self.host}:{self.port}"

    def __repr__(self) -> str:
        user = f", username={self.username!r}" if self.username else ""
        return f"SmtpTransport({self.relay}, security={self.security!r}{user})"

    async def send(self, message: bytes, *, mail_from: str, rcpt_to: Sequence[str]) -> str:
        """Send one mail; return the relay's answer (e.g. "250 2.0.0 Ok: queued as 4B0E020C3A1")."""
        if not rcpt_to:
            raise TransportError("the mail has no recipient", hint='set [smtp] to = ["reports@..."]')
        async with self._lock:
            reused = self._smtp is not None and self._smtp.is_connected
            try:
                try:
                    return await self._send_once(message, mail_from, rcpt_to)
                except aiosmtplib.SMTPServerDisconnected:
                    if not reused:
                        raise
                    # The relay closed the idle connection we kept (smtpd_timeout): one fresh try.
                    await self._drop()
                    return await self._send_once(message, mail_from, rcpt_to)
            except (TimeoutError, aiosmtplib.SMTPException, ssl.SSLError, OSError) as exc:
                await self._drop()
                raise translate_error(exc, self) from exc

    async def aclose(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None and smtp.is_connected:
            protocol = smtp.protocol
            try:
                await smtp.quit()
            except (TimeoutError, aiosmtplib.SMTPException, OSError):
                smtp.close()
            await _closed(protocol)

    async def _send_once(self, message: bytes, mail_from: str, rcpt_to: Sequence[str]) -> str:
        if self._smtp is None or not self._smtp.is_connected:
            self._smtp = await self._connect()
        refused, answer = await self._smtp.sendmail(mail_from, list(rcpt_to), message)
        if refused:
            # Some recipients took the mail: it is sent. Name the others so the operator sees them.
            others = "; ".join(f"{addr}: {r.code} {r.message}" for addr, r in refused.items())
            return f"250 {answer} (refused: {others})"
        return f"250 {answer}"

    async def _connect(self) -> aiosmtplib.SMTP:
        smtp = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            use_tls=self.security == "tls",
            start_tls=self.security == "starttls",  # required, not "if offered"
            tls_context=self._tls_context,
            timeout=self.timeout,
        )
        self._smtp = smtp
        await smtp.connect()
        if self.username:
            assert self._password is not None
            password = self._password.reveal()
            if smtp.last_ehlo_response is None:
                await smtp.ehlo()  # after STARTTLS the extensions (AUTH among them) are announced anew
            methods = smtp.server_auth_methods
            # One mechanism only: each failed attempt costs the relay's failure delay.
            if not smtp.supports_extension("auth"):
                raise aiosmtplib.SMTPNotSupported("SMTP AUTH extension not supported by server.")
            if "plain" in methods:
                await smtp.auth_plain(self.username, password)
            elif "login" in methods:
                await smtp.auth_login(self.username, password)
            else:
                await smtp.login(self.username, password)
        return smtp

    async def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            protocol = smtp.protocol
            smtp.close()
            await _closed(protocol)


async def _closed(protocol: Any, timeout: float = 1.0) -> None:
    """Wait (briefly) until a closed connection's socket is really gone: asyncio finishes a close
    on a later turn of the loop, and a loop that ends first leaves the socket open until
    garbage collection (a ResourceWarning)."""
    if protocol is None:
        return
    deadline = asyncio.get_running_loop().time() + timeout
    while protocol.transport is not None and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.005)


def _refused_hint(code: int, text: str, transport: SmtpTransport) -> str:
    lowered = text.lower()
    if code == 530 and "starttls" in lowered:
        return 'the relay wants TLS first: set [smtp] security = "starttls"'
    if code in (530, 535, 534, 538) or "authentication" in lowered:
        return "check [smtp] username and password"
    if "relay access denied" in lowered:
        return (
            "the relay does not take mail for that domain from this host: check [smtp] to, or set "
            "[smtp] username and password if the relay lets logged-in users relay"
        )
    if "access denied" in lowered or "client host rejected" in lowered:
        if transport.username is None:
            return "the relay wants a login from this host: set [smtp] username and password"
        return "the relay does not let this login send to that address: ask the relay's administrator"
    if code in (552, 523) or "size" in lowered or "too large" in lowered:
        return "the mail is larger than the relay accepts: lower [outbox] chunk_bytes"
    if "user unknown" in lowered or "recipient" in lowered or code in (550, 551, 553):
        return "check the address in [smtp] to, and that the relay accepts mail for it"
    return "the relay refused the mail for good; ask the relay's administrator what the answer means"


def translate_error(exc: BaseException, transport: SmtpTransport) -> TransportError:
    """The TransportError (permanent) or TransientTransportError (retry later) for an aiosmtplib failure."""
    for translate in (_certificate, _refused, _unsupported, _timeout, _tls, _unreachable):
        error = translate(exc, transport)
        if error is not None:
            return error
    return TransportError(
        f"sending through the relay {transport.relay} failed: {exc}", hint="check the [smtp] settings"
    )


def _certificate(exc: BaseException, transport: SmtpTransport) -> TransportError | None:
    verify = in_chain(exc, ssl.SSLCertVerificationError)
    if verify is None:
        return None
    reason = getattr(verify, "verify_message", None) or str(verify)
    where = f"[smtp] ca_file = {str(transport.ca_file)!r}" if transport.ca_file else "the system's CAs"
    return TransportError(
        f"the certificate of the relay {transport.relay} failed verification against {where}: {reason}",
        hint="set `ca_file` in [smtp] to the PEM file of the CA that signed the relay's certificate "
        "(verification stays on; never disable it)",
    )


def _refused(exc: BaseException, transport: SmtpTransport) -> TransportError | None:
    """The relay answered with a refusal: of every recipient, or with one reply code."""
    relay = transport.relay
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        parts = [f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients]
        first = exc.recipients[0] if exc.recipients else None
        cls = _by_code(min((r.code for r in exc.recipients), default=550))
        return cls(
            f"the relay {relay} refused every recipient: {'; '.join(parts)}",
            hint=_refused_hint(first.code, first.message, transport) if first else "check [smtp] to",
        )
    if not isinstance(exc, aiosmtplib.SMTPResponseException):
        return None
    code, text = exc.code, exc.message
    cls = _by_code(code)
    hint = (
        "the relay asks to try again later; the envelope stays in the outbox and is retried"
        if cls is TransientTransportError
        else _refused_hint(code, text, transport)
    )
    return cls(f"the relay {relay} {_what_was_refused(exc, transport)}: {code} {text}", hint=hint)


def _what_was_refused(exc: aiosmtplib.SMTPResponseException, transport: SmtpTransport) -> str:
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return f"refused the login of {transport.username!r}"
    if isinstance(exc, aiosmtplib.SMTPSenderRefused):
        return f"refused the sender {exc.sender!r}"
    if isinstance(exc, aiosmtplib.SMTPRecipientRefused):
        return f"refused the recipient {exc.recipient!r}"
    if isinstance(exc, aiosmtplib.SMTPDataError):
        return "refused the mail's content"
    if isinstance(exc, aiosmtplib.SMTPConnectResponseError):
        return "refused the connection"
    if isinstance(exc, aiosmtplib.SMTPHeloError):
        return "refused our greeting (EHLO)"
    return "answered"


def _unsupported(exc: BaseException, transport: SmtpTransport) -> TransportError | None:
    if not (
        isinstance(exc, aiosmtplib.SMTPNotSupported)
        or (type(exc) is aiosmtplib.SMTPException and "not supported" in str(exc).lower())
    ):
        return None
    text = str(exc)
    if "starttls" in text.lower():
        hint = 'the relay offers no STARTTLS: use security = "tls" (port 465) or "none" on a trusted relay'
    elif "auth" in text.lower():
        hint = (
            "the relay offers no login on this connection: remove [smtp] username, or use "
            'security = "starttls" or "tls" if it offers AUTH only over TLS'
        )
    else:
        hint = "check [smtp] security and port"
    return TransportError(
        f"the relay {transport.relay} does not support what is configured: {text}", hint=hint
    )


def _timeout(exc: BaseException, transport: SmtpTransport) -> TransportError | None:
    if not isinstance(exc, (aiosmtplib.SMTPTimeoutError, TimeoutError)):
        return None
    hint = "the envelope stays in the outbox and is retried; raise [smtp] timeout if the relay is slow"
    if transport.security != "tls":
        hint += ', or set security = "tls" if it expects TLS at once (port 465)'
    return TransientTransportError(
        f"the relay {transport.relay} did not answer within timeout={transport.timeout} s", hint=hint
    )


def _tls(exc: BaseException, transport: SmtpTransport) -> TransportError | None:
    tls_error = in_chain(exc, ssl.SSLError)
    if tls_error is None:
        return None
    return TransportError(
        f"TLS with the relay {transport.relay} failed: {tls_error}",
        hint='check [smtp] security ("tls" for port 465, "starttls" for 587/25) and port',
    )


def _unreachable(exc: BaseException, transport: SmtpTransport) -> TransportError | None:
    if not isinstance(exc, (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPServerDisconnected, OSError)):
        return None
    cause = exc.__cause__ if isinstance(exc.__cause__, OSError) else exc
    if isinstance(cause, ConnectionRefusedError):
        plain = "connection refused (nothing listens there)"
    elif isinstance(exc, aiosmtplib.SMTPServerDisconnected):
        plain = f"the relay closed the connection ({exc})"
    else:
        plain = str(cause) or type(cause).__name__
    return TransientTransportError(
        f"cannot reach the relay {transport.relay}: {plain}",
        hint="check that the relay runs and [smtp] host and port; the envelope stays in the outbox "
        "and is retried",
    )


def _by_code(code: int) -> type[TransportError]:
    return TransientTransportError if 400 <= code < 500 else TransportError


__all__ = ["SECURITY_MODES", "Security", "SmtpTransport", "translate_error"]
