"""Templates, navigation and the helpers every page uses: ``render``, ``require``, ``principal_of``.

Templates extend ``base.html`` (blocks ``title``, ``head``, ``content``, ``scripts``) and are
autoescaped; a string is shown defused (``fsm_protocol.display``) like in the HTML reports, and
the ``cell`` filter shortens reported text for a table.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import anyio.from_thread
import msgspec
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from ..accounts.principal import ROLES, Principal, Role
from ..branding import Brand, brand_for
from ..reports.html import cell, duration, shown
from ..scoping import Scoped

TEMPLATES = Path(__file__).with_name("templates")
PAGES_TEMPLATES = Path(__file__).with_name("pages") / "templates"
STATIC = Path(__file__).with_name("static")

Endpoint = Callable[[Request], Response]


class NavItem(msgspec.Struct, frozen=True):
    """An entry of the navigation bar, shown to the listed roles."""

    label: str
    path: str
    roles: tuple[Role, ...] = ROLES


#: the entries of the accounts part, after those of the pages module
ACCOUNT_NAV: tuple[NavItem, ...] = (
    NavItem("Users", "/users", ("admin", "dealer")),
    NavItem("Audit log", "/audit", ("admin", "dealer")),
    NavItem("My account", "/account"),
)


@functools.cache
def environment() -> Environment:
    loaders = [FileSystemLoader(TEMPLATES)]
    if PAGES_TEMPLATES.is_dir():
        loaders.append(FileSystemLoader(PAGES_TEMPLATES))
    env = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=shown,
    )
    env.filters["cell"] = cell
    env.filters["dt"] = lambda v: "" if v is None else v.strftime("%Y-%m-%d %H:%M")
    env.filters["dur"] = duration
    return env


def principal_of(request: Request) -> Principal:
    """The logged-in user of ``request`` (every page but the public ones has one)."""
    found = getattr(request.state, "principal", None)
    if not isinstance(found, Principal):
        raise HTTPException(404)
    return found


def scoped_of(request: Request) -> Scoped:
    """What the logged-in user of ``request`` may see: every query of a page goes through it."""
    return Scoped.of(principal_of(request))


def form_data(request: Request) -> FormData:
    """The submitted form, from a sync endpoint (which runs in a worker thread)."""
    return anyio.from_thread.run(_read_form, request)


async def _read_form(request: Request) -> FormData:
    return await request.form()


def field(form: FormData, name: str, limit: int = 1000) -> str:
    """One text field of ``form`` ("" when absent or a file), at most ``limit`` characters."""
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


def client_address(request: Request) -> str:
    """The caller's address (a trusted proxy's X-Forwarded-For is applied by uvicorn before this)."""
    return request.client.host if request.client else ""


def csrf_of(request: Request) -> str:
    return str(getattr(request.state, "csrf_token", "") or "")


def nav_for(request: Request, principal: Principal | None) -> list[NavItem]:
    if principal is None:
        return []
    items: Sequence[NavItem] = (*getattr(request.app.state, "nav", ()), *ACCOUNT_NAV)
    return [item for item in items if principal.role in item.roles]


def brand_of(request: Request) -> Brand | None:
    """The dealer brand of the logged-in user's pages (None: no dealer, or not logged in), looked
    up at the first page drawn for the request: answers that draw none (JSON, CSV, zip,
    redirects) do not pay for it."""
    principal = getattr(request.state, "principal", None)
    if not isinstance(principal, Principal):
        return None
    if not hasattr(request.state, "brand"):
        request.state.brand = brand_for(principal)
    brand: Brand | None = request.state.brand
    return brand


def render(
    request: Request,
    template: str,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """``template`` rendered with the principal, its navigation and the session's CSRF token."""
    principal = getattr(request.state, "principal", None)
    token = csrf_of(request)
    page = (
        environment()
        .get_template(template)
        .render(
            request=request,
            principal=principal,
            nav=nav_for(request, principal),
            csrf_token=token,
            csrf_input=lambda: Markup('<input type="hidden" name="csrf" value="{}">').format(token),
            path=request.url.path,
            brand=brand_of(request),
            **context,
        )
    )
    return HTMLResponse(page, status_code=status_code, headers=headers)


def require(*roles: Role) -> Callable[[Endpoint], Endpoint]:
    """Only these roles reach the endpoint; anyone else gets the 404 of a page that does not exist."""
    unknown = [r for r in roles if r not in ROLES]
    if unknown or not roles:
        raise ValueError(f"require() takes roles among {ROLES}, not {unknown or 'none'}")

    def decorate(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        def guarded(request: Request) -> Response:
            principal = getattr(request.state, "principal", None)
            if not isinstance(principal, Principal) or principal.role not in roles:
                raise HTTPException(404)
            return endpoint(request)

        return guarded

    return decorate


__all__ = [
    "ACCOUNT_NAV",
    "STATIC",
    "TEMPLATES",
    "NavItem",
    "brand_of",
    "client_address",
    "csrf_of",
    "environment",
    "field",
    "form_data",
    "nav_for",
    "principal_of",
    "render",
    "require",
    "scoped_of",
]
