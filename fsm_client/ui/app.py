"""The client's local page: a Starlette application over fsm_client.ui.views (see fsm_client.ui.auth).

Pages: status, devices, outbox, what left the network (every sent report as sealed, its diff to
the previous one, searchable), the configuration with secrets masked, and two local actions
(scan now, send now). Nothing here talks to anything but this machine's store and printers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from fsm_protocol.display import display_text
from fsm_protocol.errors import FsmError

from ..context import ClientContext
from ..store import STORE_FILE, Store
from . import views
from .auth import COOKIE, Sessions, host_is_loopback, is_loopback, password_hash, same_token, verify_password

HERE = Path(__file__).parent
PUBLIC = ("/login", "/static/", "/favicon.ico")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

Action = Callable[[], Awaitable[str]]


@dataclass
class Actions:
    """The local actions the page's buttons run; each returns a line saying what it did."""

    scan: Action
    send: Action


def daemon_actions(ctx: ClientContext) -> Actions:
    """Scan now and send now with the client's own daemon code, on this machine's store."""
    from ..daemon import Daemon

    async def scan() -> str:
        daemon = Daemon(ctx.config, ctx.data_dir)
        try:
            await daemon.full_read()
            return f"scan done: {daemon.counts.readings} readings stored"
        finally:
            daemon.store.close()

    async def send() -> str:
        daemon = Daemon(ctx.config, ctx.data_dir)
        try:
            counts = await daemon.send_now(read=False)
            waiting = daemon.store.outbox_depth()
        finally:
            daemon.store.close()
        if daemon.deferred:
            return "report queued; the running fsm-client run sends it"
        return f"report queued; {counts.sent} envelope(s) sent, {waiting} waiting in the outbox"

    return Actions(scan=scan, send=send)


class Guard(BaseHTTPMiddleware):
    """Loopback peers and Host names only; no cross-origin writes; a session for all but the login."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await self._check(request, call_next)
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    async def _check(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        peer = request.client.host if request.client else None
        if not is_loopback(peer):
            return PlainTextResponse("the local page answers this machine only\n", status_code=403)
        if not host_is_loopback(request.headers.get("host", "")):
            return PlainTextResponse(
                "the local page answers only as localhost or a loopback address\n", status_code=403
            )
        if request.method not in SAFE_METHODS and not _same_origin(request):
            return PlainTextResponse("refused: a request from another origin\n", status_code=403)
        state: UiState = request.app.state.ui
        session = state.sessions.get(request.cookies.get(COOKIE))
        request.state.session = session
        if session is None and not request.url.path.startswith(PUBLIC):
            if request.method in SAFE_METHODS:
                return RedirectResponse("/login", status_code=303)
            return PlainTextResponse("log in first\n", status_code=401)
        if session is not None and request.method not in SAFE_METHODS and request.url.path != "/login":
            form = await request.form()
            token = form.get("csrf")
            if not same_token(token if isinstance(token, str) else None, session.csrf):
                return PlainTextResponse(
                    "refused: the form's CSRF token does not match the session\n", status_code=403
                )
        return await call_next(request)


def _same_origin(request: Request) -> bool:
    """Whether a write comes from this page: Sec-Fetch-Site where the browser sends it, else Origin
    (absent for tools such as curl, which no other site can drive; "null" is refused)."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return True
    scheme, _, rest = origin.partition("://")
    return scheme in ("http", "https") and host_is_loopback(rest)


@dataclass
class UiState:
    ctx: ClientContext
    sessions: Sessions
    actions: Actions
    templates: jinja2.Environment
    password_hash: str


def create_app(ctx: ClientContext, *, actions: Actions | None = None) -> Starlette:
    """The local page for ``ctx`` (a password must be set: ConfigError otherwise)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True, undefined=jinja2.StrictUndefined
    )
    env.filters["display"] = display_text
    state = UiState(ctx, Sessions(), actions or daemon_actions(ctx), env, password_hash(ctx.data_dir))
    app = Starlette(
        routes=[
            Route("/login", login, methods=["GET", "POST"]),
            Route("/logout", logout, methods=["POST"]),
            Route("/", status_page),
            Route("/devices", devices_page),
            Route("/outbox", outbox_page),
            Route("/sent", sent_page),
            Route("/config", config_page),
            Route("/actions/{name}", action, methods=["POST"]),
            Route("/favicon.ico", lambda request: Response(status_code=204)),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ],
        middleware=[Middleware(Guard)],
    )
    app.state.ui = state
    return app


def _state(request: Request) -> UiState:
    state: UiState = request.app.state.ui
    return state


def render(request: Request, template: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    state = _state(request)
    session = getattr(request.state, "session", None)
    html = state.templates.get_template(template).render(
        request_path=request.url.path,
        csrf=session.csrf if session else "",
        client_id=state.ctx.config.client.id,
        message=context.pop("message", None),
        **context,
    )
    return HTMLResponse(html, status_code=status_code)


def _store(request: Request) -> Store | None:
    path = _state(request).ctx.data_dir / STORE_FILE
    return Store.open(path) if path.is_file() else None  # a page never creates a store


async def login(request: Request) -> Response:
    state = _state(request)
    if request.method == "GET":
        return render(request, "login.html", title="Log in", error=None)
    form = await request.form()
    password = form.get("password")
    ok = isinstance(password, str) and await asyncio.to_thread(verify_password, state.password_hash, password)
    if not ok:
        await asyncio.sleep(1.0)  # each wrong guess costs a second
        return render(request, "login.html", title="Log in", status_code=401, error="wrong password")
    state.sessions.drop(request.cookies.get(COOKIE))  # a new id at every login
    sid, _ = state.sessions.create()
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(COOKIE, sid, httponly=True, samesite="strict", path="/")
    return response


async def logout(request: Request) -> Response:
    _state(request).sessions.drop(request.cookies.get(COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


def _no_store(request: Request, title: str) -> HTMLResponse:
    where = _state(request).ctx.data_dir / STORE_FILE
    return render(
        request,
        "empty.html",
        title=title,
        text=f"There is no client store at {where} yet: `fsm-client run` (or scan, send) creates it.",
    )


async def status_page(request: Request, message: str | None = None) -> Response:
    store = _store(request)
    if store is None:
        return _no_store(request, "Status")
    try:
        info = views.status(_state(request).ctx.config, store, _state(request).ctx.data_dir)
    finally:
        store.close()
    return render(request, "status.html", title="Status", s=info, message=message)


async def devices_page(request: Request) -> Response:
    store = _store(request)
    if store is None:
        return _no_store(request, "Devices")
    try:
        rows = views.devices(store)
    finally:
        store.close()
    return render(request, "devices.html", title="Devices", rows=rows)


async def outbox_page(request: Request) -> Response:
    store = _store(request)
    if store is None:
        return _no_store(request, "Outbox")
    try:
        entries, answers = store.outbox(), store.answers()
    finally:
        store.close()
    return render(request, "outbox.html", title="Outbox", entries=entries[::-1], answers=answers)


async def sent_page(request: Request) -> Response:
    store = _store(request)
    if store is None:
        return _no_store(request, "What left the network")
    try:
        reports = views.sent_reports(store)
    finally:
        store.close()
    query = request.query_params.get("q", "")[:200]
    found = views.search(reports, query)
    wanted = request.query_params.get("seq", "")
    by_seq = {r.seq: i for i, r in enumerate(reports)}
    index = by_seq.get(int(wanted)) if wanted.isdigit() else (by_seq.get(found[0].seq) if found else None)
    current = reports[index] if index is not None else None
    previous = reports[index - 1] if index else None
    lines = views.diff(previous, current) if current is not None else []
    return render(
        request,
        "sent.html",
        title="What left the network",
        found=found,
        query=query,
        current=current,
        previous=previous,
        diff=lines,
    )


async def config_page(request: Request) -> Response:
    ctx = _state(request).ctx
    return render(
        request,
        "config.html",
        title="Configuration",
        text=views.config_view(ctx.config),
        source=str(ctx.config_choice.path or "none: every default"),
    )


async def action(request: Request) -> Response:
    name = request.path_params["name"]
    actions = _state(request).actions
    run = {"scan": actions.scan, "send": actions.send}.get(name)
    if run is None:
        return PlainTextResponse("no such action\n", status_code=404)
    try:
        message = await run()
    except FsmError as exc:
        message = f"{name} failed: {exc.message}" + (f" ({exc.hint})" if exc.hint else "")
    return await status_page(request, message=message)


__all__ = ["Actions", "create_app", "daemon_actions"]
