"""Logging in and out, the second-factor step, setup links and re-authentication."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from .. import audit
from ..accounts import sessions, users
from ..config import WebSection
from ..errors import AccountError
from .middleware import expired_cookie, session_cookie
from .render import client_address, field, form_data, render


def settings_of(request: Request) -> WebSection:
    settings: WebSection = request.app.state.settings
    return settings


def local_target(value: str | None, default: str = "/") -> str:
    """A path on this portal to go to next: never another site (//host, /\\host, scheme:)."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")) or "\\" in value:
        return default
    return value


def redirect(target: str, cookie: str | None = None) -> RedirectResponse:
    response = RedirectResponse(target, status_code=303)
    if cookie is not None:
        response.headers.append("set-cookie", cookie)
    return response


def _throttled(request: Request, template: str, wait: float, **ctx: object) -> Response:
    seconds = max(1, math.ceil(wait))
    return render(
        request,
        template,
        status_code=429,
        headers={"Retry-After": str(seconds)},
        error=f"Too many failed attempts. Try again in {seconds} seconds.",
        **ctx,
    )


def login_page(request: Request) -> Response:
    next_path = local_target(request.query_params.get("next"))
    if request.state.principal is not None:
        return redirect(next_path)
    if request.method == "GET":
        return render(request, "login.html", next=next_path, name="")
    form = form_data(request)
    name, password = field(form, "name", 200), field(form, "password", 1024)
    next_path = local_target(field(form, "next"))
    address = client_address(request)
    now = datetime.now(UTC)
    result = users.login_password(name, password, address=address, settings=settings_of(request), now=now)
    if result.wait_seconds > 0:
        return _throttled(request, "login.html", result.wait_seconds, next=next_path, name=name)
    if result.user_id is None:
        return render(
            request, "login.html", status_code=401, error=users.LOGIN_FAILED, next=next_path, name=name
        )
    old = request.state.session
    if old is not None:
        sessions.end(old.id)
    token = sessions.create(
        result.user_id,
        mfa_passed=not result.needs_totp,
        address=address,
        user_agent=request.headers.get("user-agent", ""),
        now=now,
        settings=settings_of(request),
    )
    if result.needs_totp:
        return redirect("/login/totp?next=" + quote(next_path, safe=""), session_cookie(token))
    return redirect(next_path, session_cookie(token))


def totp_page(request: Request) -> Response:
    session = request.state.session
    next_path = local_target(request.query_params.get("next"))
    if session is None:
        return redirect("/login")
    if request.state.principal is not None:
        return redirect(next_path)
    if request.method == "GET":
        return render(request, "login_totp.html", next=next_path)
    form = form_data(request)
    next_path = local_target(field(form, "next"))
    now = datetime.now(UTC)
    outcome = users.login_second_factor(
        session.user_id,
        field(form, "code", 64),
        address=client_address(request),
        settings=settings_of(request),
        now=now,
    )
    if outcome is True:
        token = sessions.promote(session.id, now=now, settings=settings_of(request))
        return redirect(next_path, session_cookie(token))
    if isinstance(outcome, float):
        return _throttled(request, "login_totp.html", outcome, next=next_path)
    return render(
        request,
        "login_totp.html",
        status_code=401,
        next=next_path,
        error="That code is wrong or was used already.",
    )


def logout(request: Request) -> Response:
    if request.method == "GET":
        if request.state.session is None:
            return redirect("/login")
        return render(request, "logout.html")
    session = request.state.session
    if session is not None:
        sessions.end(session.id)
        principal = request.state.principal
        if principal is not None:
            audit.record(
                "logout",
                actor=principal.name,
                target=principal.name,
                address=client_address(request),
                dealer=users.audit_dealer(principal.role, principal.dealer, principal.customers),
            )
    return redirect("/login", expired_cookie())


def setup_page(request: Request) -> Response:
    token = request.path_params["token"]
    try:
        offer = users.setup_offer(token)
    except AccountError as exc:
        return render(
            request, "message.html", status_code=404, title="Setup link", error=exc.message, hint=exc.hint
        )
    if request.method == "GET":
        return render(request, "setup.html", offer=offer)
    form = form_data(request)
    try:
        codes = users.complete_setup(
            token,
            field(form, "password", 1024),
            field(form, "confirm", 1024),
            field(form, "code", 64),
            address=client_address(request),
        )
    except AccountError as exc:
        return render(request, "setup.html", status_code=400, offer=offer, error=exc.message, hint=exc.hint)
    return render(request, "codes.html", title="Account ready", codes=codes, after_setup=True)


def reauth_page(request: Request) -> Response:
    """Give the password (and second factor) again before a sensitive change."""
    principal = request.state.principal
    session = request.state.session
    next_path = local_target(request.query_params.get("next"), "/account")
    user = users.get_user(principal.name, None)
    if request.method == "GET":
        return render(request, "reauth.html", next=next_path, totp=user.totp)
    form = form_data(request)
    next_path = local_target(field(form, "next"), "/account")
    now = datetime.now(UTC)
    ok = users.reauthenticate(
        principal.user_id,
        field(form, "password", 1024),
        field(form, "code", 64),
        address=client_address(request),
        settings=settings_of(request),
        now=now,
    )
    if not ok:
        return render(
            request,
            "reauth.html",
            status_code=401,
            next=next_path,
            totp=user.totp,
            error="The password or the code is wrong.",
        )
    sessions.mark_reauth(session.id, now)
    return redirect(next_path)


def needs_reauth(request: Request) -> Response | None:
    """A redirect to the re-authentication page unless the session gave its password lately."""
    session = request.state.session
    if session is not None and sessions.recently_authenticated(
        session, datetime.now(UTC), settings_of(request)
    ):
        return None
    back = request.url.path if request.method == "GET" else request.headers.get("x-return-to", "/account")
    return redirect("/reauth?next=" + quote(local_target(back, "/account"), safe=""))


def routes() -> list[Route]:
    return [
        Route("/login", login_page, methods=["GET", "POST"]),
        Route("/login/totp", totp_page, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["GET", "POST"]),
        Route("/setup/{token}", setup_page, methods=["GET", "POST"]),
        Route("/reauth", reauth_page, methods=["GET", "POST"]),
    ]


__all__ = ["local_target", "needs_reauth", "redirect", "routes", "settings_of"]
