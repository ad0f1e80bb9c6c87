"""``create_app``: the portal as one Starlette application (docs/portal.md, "Developer interface")."""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import ParamSpec

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from .. import audit
from ..api import pages as api_pages
from ..api.routes import routes as api_routes
from ..context import ServerContext
from ..db.connect import Database
from ..errors import NotFound
from . import account_pages, auth_pages, user_pages
from .middleware import CrossSite, CsrfToken, SecurityHeaders, Sessions
from .render import STATIC, NavItem, client_address, render

PAGES_MODULE = "fsm_server.web.pages"
P = ParamSpec("P")


def audit_event(
    request: Request,
    action: str,
    *,
    target: str = "",
    detail: Mapping[str, object] | None = None,
    dealer: str | None = None,
) -> audit.AuditRecord:
    """Append an audit entry with the request's user as actor and its address."""
    principal = getattr(request.state, "principal", None)
    return audit.record(
        action,
        actor=principal.name if principal else "-",
        target=target,
        detail=detail,
        dealer=dealer,
        address=client_address(request),
    )


def _home(request: Request) -> Response:
    return RedirectResponse("/account", status_code=303)


def _closing(endpoint: Callable[P, Response], db: Database) -> Callable[P, Response]:
    """``endpoint`` (or an error page's handler, which reads the brand of the page), closing its
    worker thread's database connection when done: the threads come and go, and a connection
    left open in one that ends is never closed."""

    @functools.wraps(endpoint)
    def closing(*args: P.args, **kwargs: P.kwargs) -> Response:
        try:
            return endpoint(*args, **kwargs)
        finally:
            db.close()

    return closing


def _closing_routes(routes: Sequence[BaseRoute], db: Database) -> list[BaseRoute]:
    out: list[BaseRoute] = []
    for route in routes:
        if isinstance(route, Route) and not inspect.iscoroutinefunction(route.endpoint):
            route = Route(
                route.path,
                _closing(route.endpoint, db),
                methods=route.methods,
                name=route.name,
                include_in_schema=route.include_in_schema,
            )
        out.append(route)
    return out


def _healthz(request: Request) -> Response:
    return PlainTextResponse("ok\n")


def _not_found(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 404
    if status == 404:
        return render(
            request,
            "message.html",
            status_code=404,
            title="Not found",
            error="There is no such page, or it is not yours to see.",
        )
    return render(
        request,
        "message.html",
        status_code=status,
        title="Error",
        error=exc.detail if isinstance(exc, HTTPException) else "error",
    )


def _pages() -> tuple[list[BaseRoute], list[NavItem]]:
    """Routes and navigation of the pages module, when it is installed."""
    if importlib.util.find_spec(PAGES_MODULE) is None:
        return [], []
    module = importlib.import_module(PAGES_MODULE)
    return list(module.routes()), list(getattr(module, "NAV", []))


def public_url(ctx: ServerContext, host: str | None = None, port: int | None = None) -> str:
    web = ctx.config.web
    if web.public_url:
        return web.public_url.rstrip("/")
    shown = host or web.host
    if shown in ("0.0.0.0", "::", ""):
        import socket

        shown = socket.getfqdn()
    if ":" in shown:
        shown = f"[{shown}]"
    return f"https://{shown}:{port or web.port}"


def create_app(
    ctx: ServerContext,
    *,
    db: Database | None = None,
    routes: Sequence[BaseRoute] = (),
    base_url: str | None = None,
) -> Starlette:
    """The portal of ``ctx``'s database (opened and migrated here unless ``db`` is given); ``routes``
    are added before the pages module's (tests)."""
    if db is None:
        from .. import wiring

        db = wiring.open_db(ctx)
    page_routes, nav = _pages()
    all_routes: list[BaseRoute] = [
        *api_routes(ctx.config.web),
        *api_pages.routes(),
        *auth_pages.routes(),
        *account_pages.routes(),
        *user_pages.routes(),
        *routes,
        *page_routes,
        Route("/healthz", _healthz),
    ]
    if not any(isinstance(r, Route) and r.path == "/" for r in all_routes):
        all_routes.append(Route("/", _home))
    all_routes = [
        *_closing_routes(all_routes, db),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
    settings = ctx.config.web
    not_found = _closing(_not_found, db)
    app = Starlette(
        routes=all_routes,
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(CrossSite),
            Middleware(Sessions, settings=settings, close=db.close),
            Middleware(CsrfToken),
        ],
        exception_handlers={404: not_found, 405: not_found, NotFound: not_found},
    )
    app.state.ctx = ctx
    app.state.db = db
    app.state.settings = settings
    app.state.nav = nav
    app.state.base_url = base_url or public_url(ctx)
    return app


__all__ = ["PAGES_MODULE", "audit_event", "create_app", "public_url"]
