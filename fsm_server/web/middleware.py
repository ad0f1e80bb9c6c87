"""The portal's ASGI middleware, outermost first: security headers on every response, the session
(who is logged in), and CSRF refusal of cross-site or token-less state changes.

Pages never see a request that failed these: an anonymous request to a non-public path is sent to
the login page (GET, HEAD) or refused with 401; a POST, PUT, PATCH or DELETE that a browser marks
cross-site (``Sec-Fetch-Site``, else an ``Origin`` other than the portal's) is refused with 403,
and so is one of a session without the session's CSRF token (form field ``csrf`` or header
``X-CSRF-Token``).
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, quote

from starlette.concurrency import run_in_threadpool

from ..accounts import sessions, users
from ..config import WebSection

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

COOKIE = "__Host-fsm_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_FORM_BYTES = 1 << 20
#: reachable without a session
PUBLIC_PATHS = frozenset({"/login", "/logout", "/healthz", "/favicon.ico"})
PUBLIC_PREFIXES = ("/static/", "/setup/")
#: the read-only API authenticates by bearer token (fsm_server.api): no session is looked up there
API_PREFIX = "/api/"
#: reachable with a session whose second factor is still to come
PENDING_PATHS = frozenset({"/login/totp", "/logout"})

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CSP.encode()),
    (b"strict-transport-security", b"max-age=31536000; includeSubDomains"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=(), usb=()"),
)


def session_cookie(token: str) -> str:
    """The Set-Cookie value of a session: host-only, HTTPS-only, out of scripts' reach, same-site."""
    return f"{COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Strict"


def expired_cookie() -> str:
    return f"{COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0"


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin-1")
    return ""


async def _plain(send: Send, status: int, text: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                *(extra or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class SecurityHeaders:
    """CSP, HSTS, nosniff, frame and referrer policy on every response; no-store except static files."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"server"]
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                if b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-cache" if static else b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class Sessions:
    """Finds the session of the request's cookie and puts ``principal`` (or None), ``session`` and
    ``csrf_token`` in the request state; keeps anonymous requests off non-public paths."""

    def __init__(self, app: ASGIApp, settings: WebSection, close: Callable[[], None]) -> None:
        self.app = app
        self.settings = settings
        self.close = close  # the worker thread's database connection, after the lookup

    def _lookup(self, token: str) -> tuple[Any, Any] | None:
        """(session, principal or None); the dealer brand is looked up by ``render``, when a page
        is drawn (a JSON, CSV or zip answer or a redirect shows none)."""
        try:
            found = sessions.lookup(token, now=datetime.now(UTC), settings=self.settings)
            if found is None:
                return None
            session, user = found
            return session, users.principal(user) if session.mfa_passed else None
        finally:
            self.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        state = scope.setdefault("state", {})
        state.update(principal=None, session=None, csrf_token="")
        token = ""
        cookie_header = _header(scope, b"cookie")
        if cookie_header:
            try:
                jar: SimpleCookie = SimpleCookie(cookie_header)
                token = jar[COOKIE].value if COOKIE in jar else ""
            except Exception:  # a malformed Cookie header is no session
                token = ""
        if token and not path.startswith(("/static/", API_PREFIX)):
            found = await run_in_threadpool(self._lookup, token)
            if found is not None:
                state["session"], state["principal"] = found
                state["csrf_token"] = sessions.csrf_token(token)
                state["session_token"] = token
        public = path in PUBLIC_PATHS or path.startswith((*PUBLIC_PREFIXES, API_PREFIX))
        if state["principal"] is None and not public:
            pending = state["session"] is not None
            if pending and path in PENDING_PATHS:
                await self.app(scope, receive, send)
                return
            if scope.get("method") in ("GET", "HEAD"):
                target = "/login/totp" if pending else "/login"
                if not pending and path not in ("/", ""):
                    query = scope.get("query_string", b"").decode("latin-1")
                    target += "?next=" + quote(path + (f"?{query}" if query else ""), safe="")
                await send(
                    {
                        "type": "http.response.start",
                        "status": 303,
                        "headers": [(b"location", target.encode()), (b"content-length", b"0")],
                    }
                )
                await send({"type": "http.response.body", "body": b""})
            else:
                await _plain(send, 401, "log in first\n")
            return
        await self.app(scope, receive, send)


def cross_site(scope: Scope) -> str:
    """Why a state-changing request is cross-site ("" when it is not), as Go's
    CrossOriginProtection decides: Sec-Fetch-Site first, else Origin against the Host."""
    site = _header(scope, b"sec-fetch-site").lower()
    if site:
        return "" if site in ("same-origin", "none") else f"Sec-Fetch-Site is {site!r}"
    origin = _header(scope, b"origin")
    if not origin:
        return ""  # not a browser, or one too old to send either: the CSRF token still decides
    host = _header(scope, b"host")
    if origin.lower() in (f"https://{host}".lower(), f"{scope.get('scheme', 'https')}://{host}".lower()):
        return ""
    return f"Origin {origin!r} is not this portal"


#: the csrf field of a multipart form (a file upload): its part, as browsers write it
_MULTIPART_CSRF = re.compile(
    rb'content-disposition: *form-data; *name="' + CSRF_FIELD.encode() + rb'"\r\n\r\n([0-9a-f]{1,128})\r\n',
    re.IGNORECASE,
)


def multipart_csrf(body: bytes) -> str:
    """The ``csrf`` field of a multipart form body ("" when it has none). Only a part that holds
    the session's own token can pass the comparison, so text of the same shape inside an
    uploaded file gains nothing."""
    found = _MULTIPART_CSRF.search(body)
    return found.group(1).decode() if found else ""


class CrossSite:
    """Refuses state changes a browser marks as coming from another site (before any session work)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("method") in UNSAFE:
            why = cross_site(scope)
            if why:
                await _plain(send, 403, f"refused: a cross-site request may not change anything ({why})\n")
                return
        await self.app(scope, receive, send)


class CsrfToken:
    """Refuses state changes of a session that do not carry the session's CSRF token."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in UNSAFE:
            await self.app(scope, receive, send)
            return
        expected = str(scope.get("state", {}).get("csrf_token", ""))
        if not expected:  # no session (login, setup link): the site check is the protection
            await self.app(scope, receive, send)
            return
        # read the whole body (bounded) to look at the form, then hand it on unchanged
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = bytes(message.get("body", b""))
            size += len(chunk)
            if size > MAX_FORM_BYTES:
                await _plain(send, 413, "refused: the request body is too large\n")
                return
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        given = _header(scope, CSRF_HEADER.encode())
        content_type = _header(scope, b"content-type")
        if not given and content_type.startswith("application/x-www-form-urlencoded"):
            fields = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
            given = next((v for k, v in fields if k == CSRF_FIELD), "")
        elif not given and content_type.startswith("multipart/form-data"):
            given = multipart_csrf(body)
        if not given or not hmac.compare_digest(given.encode(), expected.encode()):
            await _plain(
                send,
                403,
                "refused: the form is stale or not from this portal (CSRF token); "
                "reload the page and try again\n",
            )
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


__all__ = [
    "API_PREFIX",
    "COOKIE",
    "CSP",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "SECURITY_HEADERS",
    "CrossSite",
    "CsrfToken",
    "SecurityHeaders",
    "Sessions",
    "cross_site",
    "expired_cookie",
    "multipart_csrf",
    "session_cookie",
]
