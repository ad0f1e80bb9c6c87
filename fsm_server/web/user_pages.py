"""Users (administrators: all; dealers: their customers' users) and the audit log."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import audit
from ..accounts import ROLES, users
from ..db.connect import translated
from ..db.models import Customer, Dealer
from ..errors import AccountError
from .auth_pages import needs_reauth, redirect, settings_of
from .render import client_address, field, form_data, principal_of, render, require

PAGE = 100


def _choices(request: Request) -> dict[str, Any]:
    """Customers (and, for administrators, dealers and roles) the add form offers."""
    principal = principal_of(request)
    with translated("cannot list customers"):
        if principal.role == "admin":
            customers = [c.name for c in Customer.select(Customer.name).order_by(Customer.name) if c.name]
            dealers = [d.name for d in Dealer.select(Dealer.name).order_by(Dealer.name)]
            return {"customers": customers, "dealers": dealers, "roles": ROLES}
    return {
        "customers": sorted(users.dealer_customers(principal.dealer)),
        "dealers": [],
        "roles": ("customer",),
    }


def _page(request: Request, *, status_code: int = 200, **ctx: Any) -> Response:
    principal = principal_of(request)
    return render(
        request,
        "users.html",
        status_code=status_code,
        title="Users",
        users=users.list_users(principal),
        **_choices(request),
        **ctx,
    )


@require("admin", "dealer")
def users_page(request: Request) -> Response:
    if request.method == "GET":
        return _page(request)
    principal = principal_of(request)
    form = form_data(request)
    role = field(form, "role", 16) if principal.role == "admin" else "customer"
    customers = [c for c in form.getlist("customer") if isinstance(c, str)][:200]
    try:
        info, link = users.add_user(
            field(form, "name", 64),
            role,
            customers=customers,
            dealer=field(form, "dealer", 200) or None,
            by=principal,
            settings=settings_of(request),
            base_url=request.app.state.base_url,
            address=client_address(request),
        )
    except AccountError as exc:
        return _page(request, status_code=400, error=exc.message, hint=exc.hint)
    return render(request, "user_link.html", title="Setup link", user=info, link=link, made="added")


def _act(request: Request, action: str) -> Response:
    principal = principal_of(request)
    name = request.path_params["name"]
    address = client_address(request)
    try:
        if action == "reset":
            info, link = users.reset(
                name,
                by=principal,
                settings=settings_of(request),
                base_url=request.app.state.base_url,
                address=address,
            )
            return render(request, "user_link.html", title="Setup link", user=info, link=link, made="reset")
        users.set_enabled(name, action == "enable", by=principal, address=address)
    except AccountError as exc:
        return _page(
            request,
            status_code=404 if exc.message.startswith("no user") else 400,
            error=exc.message,
            hint=exc.hint,
        )
    return redirect("/users")


@require("admin", "dealer")
def disable_user(request: Request) -> Response:
    return _act(request, "disable")


@require("admin", "dealer")
def enable_user(request: Request) -> Response:
    return _act(request, "enable")


@require("admin", "dealer")
def reset_user(request: Request) -> Response:
    return _act(request, "reset")


@require("admin")
def role_page(request: Request) -> Response:
    """Change a user's role or scope: administrators, after giving their password again."""
    principal = principal_of(request)
    stale = needs_reauth(request)
    if stale is not None:
        return stale
    name = request.path_params["name"]
    try:
        user = users.get_user(name, principal)
    except AccountError as exc:
        return render(request, "message.html", status_code=404, title="Users", error=exc.message)
    if request.method == "GET":
        return render(request, "user_role.html", title=f"Role of {user.name}", user=user, **_choices(request))
    form = form_data(request)
    customers = [c for c in form.getlist("customer") if isinstance(c, str)][:200]
    try:
        info, link = users.set_role(
            name,
            field(form, "role", 16),
            dealer=field(form, "dealer", 200) or None,
            customers=customers,
            by=principal,
            settings=settings_of(request),
            base_url=request.app.state.base_url,
            address=client_address(request),
        )
    except AccountError as exc:
        return render(
            request,
            "user_role.html",
            status_code=400,
            title=f"Role of {user.name}",
            user=user,
            error=exc.message,
            hint=exc.hint,
            **_choices(request),
        )
    if link:
        return render(request, "user_link.html", title="Setup link", user=info, link=link, made="role")
    return redirect("/users")


@require("admin", "dealer")
def audit_page(request: Request) -> Response:
    """Administrators: every entry, and a check of the chain; dealers: entries about their users."""
    principal = principal_of(request)
    try:
        before = int(request.query_params.get("before", "")) if request.query_params.get("before") else None
    except ValueError:
        before = None
    rows = audit.entries(
        dealer=principal.dealer, only_dealer=principal.role != "admin", limit=PAGE + 1, before=before
    )
    verdict = audit.verify() if principal.role == "admin" and request.query_params.get("verify") else None
    return render(
        request,
        "audit.html",
        title="Audit log",
        rows=rows[:PAGE],
        older=rows[PAGE - 1].id if len(rows) > PAGE else None,
        verdict=verdict,
    )


def routes() -> list[Route]:
    return [
        Route("/users", users_page, methods=["GET", "POST"]),
        Route("/users/{name}/disable", disable_user, methods=["POST"]),
        Route("/users/{name}/enable", enable_user, methods=["POST"]),
        Route("/users/{name}/reset", reset_user, methods=["POST"]),
        Route("/users/{name}/role", role_page, methods=["GET", "POST"]),
        Route("/audit", audit_page),
    ]


__all__ = ["routes"]
