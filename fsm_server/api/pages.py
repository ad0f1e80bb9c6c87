"""The portal's API tokens page (``/account/api-tokens``): the tokens in the user's reach, making
one (after the password is given again; the token is shown once) and revoking one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..accounts import sessions
from ..accounts.principal import Principal
from ..db.connect import translated
from ..db.models import Customer, Dealer
from ..errors import ApiError, NotFound
from ..scoping import Scoped
from ..web.auth_pages import needs_reauth, redirect, settings_of
from ..web.render import client_address, field, form_data, principal_of, render
from . import tokens

PAGE = "/account/api-tokens"


def scope_choices(principal: Principal) -> list[tuple[str, str]]:
    """(value, label) of each scope ``principal`` may make a token for: ``dealer:NAME`` or
    ``customer:NAME``."""
    with translated("cannot list the scopes"):
        dealers: list[str] = []
        if principal.role == "admin":
            dealers = [d.name for d in Dealer.select(Dealer.name).order_by(Dealer.name)]
        elif principal.role == "dealer" and principal.dealer:
            dealers = [principal.dealer]
        customers = [
            c.name
            for c in Scoped.of(principal).customers().select(Customer.name).order_by(Customer.name)
            if c.name
        ]
    return [(f"dealer:{d}", f"dealer {d} (all its customers)") for d in dealers] + [
        (f"customer:{c}", f"customer {c}") for c in customers
    ]


def _page(request: Request, *, status_code: int = 200, **ctx: Any) -> Response:
    principal = principal_of(request)
    return render(
        request,
        "api_tokens.html",
        status_code=status_code,
        title="API tokens",
        tokens=tokens.list_tokens(principal),
        scopes=scope_choices(principal),
        reauth_fresh=sessions.recently_authenticated(
            request.state.session, datetime.now(UTC), settings_of(request)
        ),
        **ctx,
    )


def tokens_page(request: Request) -> Response:
    principal = principal_of(request)
    if request.method == "GET":
        return _page(request, done=request.query_params.get("done", ""))
    if needs_reauth(request) is not None:
        return redirect("/reauth?next=" + PAGE)
    form = form_data(request)
    kind, _, name = field(form, "scope", 300).partition(":")
    try:
        if kind not in ("dealer", "customer") or not name:
            raise ApiError("choose what the token may read", hint="pick a dealer or a customer in the list")
        info, secret = tokens.create(
            field(form, "name", 200),
            dealer=name if kind == "dealer" else None,
            customer=name if kind == "customer" else None,
            by=principal,
            address=client_address(request),
        )
    except ApiError as exc:
        return _page(request, status_code=400, error=exc.message, hint=exc.hint)
    return _page(request, made=info, secret=secret)


def revoke(request: Request) -> Response:
    principal = principal_of(request)
    try:
        tokens.revoke(int(request.path_params["token_id"]), by=principal, address=client_address(request))
    except NotFound as exc:
        return _page(request, status_code=404, error=exc.message, hint=exc.hint)
    return redirect(PAGE + "?done=revoked")


def routes() -> list[Route]:
    return [
        Route(PAGE, tokens_page, methods=["GET", "POST"]),
        Route(PAGE + "/{token_id:int}/revoke", revoke, methods=["POST"]),
    ]


__all__ = ["PAGE", "routes", "scope_choices"]
