"""Post sealed envelopes to the dealer's server over HTTPS (``POST /api/v1/envelopes``).

The same sealed envelope (or chunk) a mail would carry is the body; the server answers ``202``
with a receipt ``{client, seq, status}`` for exactly that envelope, and only then is it sent.
Anything else (no answer, another status, a receipt for another envelope) leaves it queued.

Security, none of it optional:

* ``https://`` only: an ``http://`` URL is refused when the transport is made (no plaintext
  fallback), and redirects are never followed.
* the certificate is verified against the system's CAs or ``ca_file``; with ``pins`` the SHA-256
  of the server certificate's public key (SPKI) must also be one of them, checked right after the
  TLS handshake, before a byte of the request is sent.
* an outbound proxy (``proxy``, else ``HTTPS_PROXY`` / ``https_proxy`` unless ``NO_PROXY`` names
  the host) is used by HTTP CONNECT: TLS runs end to end through the tunnel, so the proxy sees
  the server's name and nothing else; ``http://user:password@proxy:3128`` logs in with basic auth.

The client library is httpx: maintained by the Encode team with Starlette and uvicorn (the server
side), it has async, HTTP CONNECT proxies with basic auth, per-phase timeouts, and a trace hook at
the TLS handshake for the pin check; aiohttp would have needed its own pinning fingerprint type
(SHA-256 of the whole certificate, not of the key) and has no hook before the body is sent.
"""

from __future__ import annotations

import base64
import hashlib
import os
import ssl
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from fsm_client.errors import TransientTransportError, TransportError
from fsm_common.errors import in_chain
from fsm_common.tls import tls_context as shared_tls_context
from fsm_common.transport import BaseTransport
from fsm_protocol import envelope, mime
from fsm_protocol.errors import ConfigError, FsmError

#: The path envelopes are posted to, below the configured URL's origin.
ENVELOPES_PATH = "/api/v1/envelopes"
#: A receipt is a few dozen bytes; an answer longer than this is not one.
_MAX_ANSWER = 4096
_STATUSES = ("loaded", "duplicate", "chunk_stored", "quarantined")


class Receipt(msgspec.Struct, forbid_unknown_fields=True):
    client: str | None
    seq: int | None
    status: str


class PinMismatch(TransportError):
    reason = "pin_mismatch"


def spki_sha256(certificate_der: bytes) -> str:
    """Base64 SHA-256 of a certificate's SubjectPublicKeyInfo (what HPKP and curl's --pinnedpubkey use)."""
    cert = x509.load_der_x509_certificate(certificate_der)
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii")


def normalise_pin(pin: str) -> str:
    """A pin as base64 of 32 bytes; accepts ``sha256//BASE64``, base64, or 64 hex digits."""
    text = pin.strip().removeprefix("sha256//")
    try:
        raw = bytes.fromhex(text) if len(text) == 64 else base64.b64decode(text, validate=True)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ConfigError(
            f"[transport] pin_sha256 entry {pin!r} is not a SHA-256 (base64 or 64 hex digits)",
            hint="a pin is the base64 SHA-256 of the server key's SubjectPublicKeyInfo: "
            "`openssl x509 -in server.pem -pubkey -noout | "
            "openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64`",
        )
    return base64.b64encode(raw).decode("ascii")


def check_url(url: str, what: str = "[transport] url") -> str:
    """The URL if it is https:// with a host; ConfigError (refusing plaintext) otherwise."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "https":
        raise ConfigError(
            f"{what} {url!r} is not an https:// URL: reports are never posted in plaintext",
            hint="use the server's https:// address (fsm-server receive serves HTTPS only)",
        )
    if not parts.hostname:
        raise ConfigError(f"{what} {url!r} names no host", hint="use https://HOST[:PORT]")
    return url


def proxy_for(url: str, proxy: str | None, environ: Mapping[str, str] = os.environ) -> str | None:
    """The proxy to reach ``url`` through: ``proxy`` if set, else $HTTPS_PROXY unless $NO_PROXY
    names the host (``*``, a host name, or a domain suffix such as ``.example.com``)."""
    if proxy:
        return _check_proxy(proxy, "[transport] proxy")
    env = environ.get("HTTPS_PROXY") or environ.get("https_proxy")
    if not env:
        return None
    host = (urlsplit(url).hostname or "").lower()
    for entry in (environ.get("NO_PROXY") or environ.get("no_proxy") or "").split(","):
        entry = entry.strip().lower().lstrip(".")
        if entry == "*" or (entry and (host == entry or host.endswith("." + entry))):
            return None
    return _check_proxy(env, "$HTTPS_PROXY")


def _check_proxy(proxy: str, what: str) -> str:
    if "://" not in proxy:
        proxy = "http://" + proxy  # "proxy:3128", as many tools accept
    parts = urlsplit(proxy)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"{what} {_redact(proxy)!r} is not an http:// or https:// proxy address",
            hint="use http://[USER:PASSWORD@]HOST:PORT of the proxy (it is asked to CONNECT)",
        )
    return proxy


def _redact(proxy: str) -> str:
    parts = urlsplit(proxy)
    if parts.password:
        return proxy.replace(f":{parts.password}@", ":***@", 1)
    return proxy


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """Verification against ``ca_file`` or the system's CAs; host names checked; TLS 1.2 at least."""
    context = shared_tls_context(
        ca_file, what="[transport] ca_file", knob="[transport] ca_file", peer="server"
    )
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class HttpsTransport(BaseTransport):
    """The dealer's server reached by HTTPS (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        ca_file: Path | str | None = None,
        pins: Sequence[str] = (),
        proxy: str | None = None,
        timeout: float = 30.0,
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        self.url = check_url(url)
        parts = urlsplit(url)
        self.endpoint = f"https://{parts.netloc}{parts.path.rstrip('/')}{ENVELOPES_PATH}"
        self.server = parts.netloc
        self.ca_file = Path(ca_file) if ca_file else None
        self.pins = frozenset(normalise_pin(p) for p in pins)
        self.proxy = proxy_for(url, proxy, environ)
        self.timeout = timeout
        self._client = httpx.AsyncClient(
            verify=tls_context(self.ca_file),
            proxy=self.proxy,
            trust_env=False,
            follow_redirects=False,
            timeout=httpx.Timeout(timeout),
            http2=False,
            headers={"User-Agent": "fsm-client", "Content-Type": "application/octet-stream"},
        )

    def __repr__(self) -> str:
        via = f", proxy={_redact(self.proxy)!r}" if self.proxy else ""
        return f"HttpsTransport({self.endpoint!r}{via})"

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(self, message: bytes, *, mail_from: str = "", rcpt_to: Sequence[str] = ()) -> str:
        """Post the envelope a report mail carries (sender and recipients are not used)."""
        return await self.send_envelope(mime.parse_message(message).envelope)

    async def send_envelope(self, data: bytes) -> str:
        """Post one envelope or chunk; return the receipt as text ("202 loaded acme-hq #12").

        Raises TransientTransportError (retry later) or TransportError (a person must act).
        """
        try:
            header = envelope.peek(data, max_bytes=len(data))
        except FsmError as exc:
            raise TransportError(
                f"the outbox entry is no envelope: {exc.message}", hint="this is a bug in fsm; report it"
            ) from exc
        try:
            async with self._client.stream(
                "POST", self.endpoint, content=data, extensions={"trace": self._trace}
            ) as response:
                self._check_pin(response)
                answer = await _read_capped(response)
        except TransportError:
            raise
        except httpx.HTTPError as exc:
            raise self._translate(exc) from exc
        return self._receipt(response, answer, header.client_id, header.seq)

    # -- checks --------------------------------------------------------------------------------------

    async def _trace(self, event: str, info: dict[str, Any]) -> None:
        # right after the handshake (direct or inside the proxy's tunnel), before the request
        if self.pins and event.endswith("start_tls.complete"):
            stream = info.get("return_value")
            ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
            try:
                self._check_ssl_object(ssl_object)
            except PinMismatch:
                if stream is not None:
                    await stream.aclose()
                raise

    def _check_pin(self, response: httpx.Response) -> None:
        if self.pins:
            stream = response.extensions.get("network_stream")
            self._check_ssl_object(stream.get_extra_info("ssl_object") if stream is not None else None)

    def _check_ssl_object(self, ssl_object: ssl.SSLObject | None) -> None:
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if not der:
            raise PinMismatch(
                f"the server {self.server} showed no certificate to check the pin against",
                hint="this should not happen over TLS; report it",
            )
        got = spki_sha256(der)
        if got not in self.pins:
            raise PinMismatch(
                f"the public key of the server {self.server} (SPKI SHA-256 {got}) is not one of "
                f"[transport] pin_sha256; nothing was sent",
                hint="if the server's key was replaced on purpose, add its pin to [transport] pin_sha256; "
                "otherwise something between this site and the server answers in its name",
            )

    def _receipt(self, response: httpx.Response, answer: bytes, client: str, seq: int) -> str:
        code = response.status_code
        text = answer.decode("utf-8", "replace").strip()[:200]
        if code == 202:
            try:
                receipt = msgspec.json.decode(answer, type=Receipt)
            except msgspec.DecodeError as exc:
                raise TransientTransportError(
                    f"the server {self.server} answered 202 without a valid receipt ({exc}); the report "
                    f"stays queued",
                    hint="check [transport] url names an fsm server",
                ) from None
            if receipt.status not in _STATUSES or receipt.seq != seq or receipt.client not in (client, None):
                raise TransientTransportError(
                    f"the server {self.server} answered a receipt for another envelope "
                    f"({receipt.client!r} #{receipt.seq}, {receipt.status!r}) to #{seq} of {client!r}; "
                    f"the report stays queued",
                    hint="check [transport] url names an fsm server",
                )
            return f"202 {receipt.status} {client} #{seq}"
        hint = "the report stays queued and is retried"
        if code in (408, 429) or code >= 500:
            after = response.headers.get("Retry-After", "")
            more = f" (retry after {after[:10]} s)" if after.isdigit() else ""
            raise TransientTransportError(
                f"the server {self.server} answered {code}: {text}{more}", hint=hint
            )
        if code == 413:
            raise TransportError(
                f"the server {self.server} refused the envelope as too large: {text}",
                hint="lower [outbox] chunk_bytes below the server's [receive] max_body_bytes, "
                "or ask the dealer to raise it",
            )
        if 300 <= code < 400:
            where = response.headers.get("Location", "")[:200]
            raise TransportError(
                f"the server {self.server} redirects to {where!r}; redirects are not followed",
                hint="set [transport] url to the address the server really answers on",
            )
        raise TransportError(
            f"the server {self.server} refused the envelope: {code} {text}",
            hint="check [transport] url; the report stays queued",
        )

    def _translate(self, exc: httpx.HTTPError) -> TransportError:
        verify = in_chain(exc, ssl.SSLCertVerificationError)
        where = f"[transport] ca_file = {str(self.ca_file)!r}" if self.ca_file else "the system's CAs"
        if verify is not None or "CERTIFICATE_VERIFY_FAILED" in str(exc):
            reason = getattr(verify, "verify_message", None) or str(exc)
            return TransportError(
                f"the certificate of the server {self.server} failed verification against {where}: {reason}",
                hint="set [transport] ca_file to the PEM file of the CA that signed the server's certificate "
                "(verification stays on; never disable it)",
            )
        if isinstance(exc, httpx.ProxyError):
            return TransientTransportError(
                f"the proxy {_redact(self.proxy or '')} refused or failed the tunnel to {self.server}: {exc}",
                hint="check [transport] proxy (or $HTTPS_PROXY), its login, and that it lets this host "
                "CONNECT to the server's port",
            )
        if isinstance(exc, httpx.TimeoutException):
            return TransientTransportError(
                f"the server {self.server} did not answer within timeout={self.timeout} s",
                hint="the report stays queued and is retried; raise [transport] timeout if the link is slow",
            )
        if isinstance(exc, httpx.ConnectError):
            via = f" through the proxy {_redact(self.proxy)}" if self.proxy else ""
            return TransientTransportError(
                f"cannot reach the server {self.server}{via}: {exc or type(exc).__name__}",
                hint="check that the server runs and [transport] url; the report stays queued and is retried",
            )
        return TransientTransportError(
            f"posting to the server {self.server} failed: {exc or type(exc).__name__}",
            hint="the report stays queued and is retried",
        )


async def _read_capped(response: httpx.Response) -> bytes:
    body = bytearray()
    async for part in response.aiter_raw():
        body += part
        if len(body) > _MAX_ANSWER:
            break  # a hostile or wrong server: what we have is enough to refuse it
    return bytes(body[:_MAX_ANSWER])


__all__ = [
    "ENVELOPES_PATH",
    "HttpsTransport",
    "PinMismatch",
    "check_url",
    "normalise_pin",
    "proxy_for",
    "spki_sha256",
    "tls_context",
]
