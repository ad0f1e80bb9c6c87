"""My account: the password, the authenticator, recovery codes and the user's own sessions.

Changing the password or the second factor needs the password given again (``/reauth``) within
``[web] reauth_minutes``; a new password ends every other session of the user.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import audit
from ..accounts import second_factor, sessions, users
from ..errors import AccountError
from .auth_pages import needs_reauth, redirect, settings_of
from .middleware import expired_cookie
from .render import client_address, field, form_data, principal_of, render

_SECRET = re.compile(r"[A-Z2-7]{32}")


def account_page(request: Request) -> Response:
    principal = principal_of(request)
    session = request.state.session
    now = datetime.now(UTC)
    return render(
        request,
        "account.html",
        title="My account",
        user=users.get_user(principal.name, None),
        sessions=sessions.of_user(
            principal.user_id, current=session.id, now=now, settings=settings_of(request)
        ),
        recovery_left=users.unused_recovery_codes(principal.user_id),
        reauth_fresh=sessions.recently_authenticated(session, now, settings_of(request)),
        done=request.query_params.get("done", ""),
    )


def password_page(request: Request) -> Response:
    principal = principal_of(request)
    stale = needs_reauth(request)
    if stale is not None:
        return stale
    if request.method == "GET":
        return render(request, "account_password.html", title="Change password")
    form = form_data(request)
    try:
        users.change_password(
            principal.user_id,
            field(form, "password", 1024),
            field(form, "confirm", 1024),
            keep_session=request.state.session.id,
            address=client_address(request),
        )
    except AccountError as exc:
        return render(
            request,
            "account_password.html",
            status_code=400,
            title="Change password",
            error=exc.message,
            hint=exc.hint,
        )
    return redirect("/account?done=password")


def totp_page(request: Request) -> Response:
    principal = principal_of(request)
    stale = needs_reauth(request)
    if stale is not None:
        return stale
    if request.method == "GET":
        secret = second_factor.new_secret()
        return render(
            request,
            "account_totp.html",
            title="Authenticator",
            secret=secret,
            uri=second_factor.otpauth_uri(secret, principal.name),
        )
    form = form_data(request)
    secret = field(form, "secret", 64)
    if not _SECRET.fullmatch(secret):
        return render(
            request,
            "message.html",
            status_code=400,
            title="Authenticator",
            error="the form carried no valid secret",
            hint="open the page again",
        )
    try:
        codes = users.replace_second_factor(
            principal.user_id, secret, field(form, "code", 64), address=client_address(request)
        )
    except AccountError as exc:
        return render(
            request,
            "account_totp.html",
            status_code=400,
            title="Authenticator",
            secret=secret,
            uri=second_factor.otpauth_uri(secret, principal.name),
            error=exc.message,
            hint=exc.hint,
        )
    return render(request, "codes.html", title="New recovery codes", codes=codes)


def recovery_codes(request: Request) -> Response:
    principal = principal_of(request)
    stale = needs_reauth(request)
    if stale is not None:
        return stale
    try:
        codes = users.renew_recovery_codes(principal.user_id, address=client_address(request))
    except AccountError as exc:
        return render(
            request, "message.html", status_code=400, title="Recovery codes", error=exc.message, hint=exc.hint
        )
    return render(request, "codes.html", title="New recovery codes", codes=codes)


def revoke_session(request: Request) -> Response:
    principal = principal_of(request)
    current = request.state.session
    target = request.path_params["session_id"]
    if not sessions.end_of_user(principal.user_id, target):
        return render(request, "message.html", status_code=404, title="Sessions", error="no such session")
    audit.record(
        "session.revoke",
        actor=principal.name,
        target=principal.name,
        address=client_address(request),
        detail={"session": target, "own": target == current.id},
        dealer=users.audit_dealer(principal.role, principal.dealer, principal.customers),
    )
    if target == current.id:
        return redirect("/login", expired_cookie())
    return redirect("/account?done=revoked")


def revoke_others(request: Request) -> Response:
    principal = principal_of(request)
    ended = sessions.end_all(principal.user_id, keep=request.state.session.id)
    audit.record(
        "session.revoke",
        actor=principal.name,
        target=principal.name,
        address=client_address(request),
        detail={"others": ended},
        dealer=users.audit_dealer(principal.role, principal.dealer, principal.customers),
    )
    return redirect("/account?done=revoked")


def routes() -> list[Route]:
    return [
        Route("/account", account_page),
        Route("/account/password", password_page, methods=["GET", "POST"]),
        Route("/account/totp", totp_page, methods=["GET", "POST"]),
        Route("/account/recovery-codes", recovery_codes, methods=["POST"]),
        Route("/account/sessions/{session_id:int}/revoke", revoke_session, methods=["POST"]),
        Route("/account/sessions/revoke-others", revoke_others, methods=["POST"]),
    ]


__all__ = ["routes"]
