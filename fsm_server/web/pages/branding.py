"""Dealer branding pages: a dealer user sets its dealer's logo and colours (an administrator any
dealer's); the logo and the brand's stylesheet are served to the users whose pages carry them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import anyio.from_thread
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ...accounts import ROLES
from ...branding import MAX_LOGO_BYTES, brand_for, branding, dealer_of, logo_of, set_branding, style_css
from ...customers import list_dealers
from ...errors import NotFound, TenancyError
from ...scoping import Scoped
from .. import NavItem, Role, audit_event, field, form_data, principal_of, render, require

EDITORS: tuple[Role, ...] = ("admin", "dealer")
NAV = [NavItem("Branding", "/branding", roles=EDITORS)]


def _page(request: Request, *, status_code: int = 200, **extra: Any) -> Response:
    who = principal_of(request)
    scoped = Scoped.of(who)
    dealers = [d.name for d in list_dealers()] if who.role == "admin" else []
    chosen = request.query_params.get("dealer", "")[:200] or (dealers[0] if dealers else None)
    try:
        dealer = dealer_of(scoped, who, str(extra.pop("dealer", None) or chosen or ""))
    except NotFound:
        if who.role == "admin" and not dealers:
            return render(request, "p_branding.html", title="Branding", current=None, dealers=[], **extra)
        raise HTTPException(404) from None
    return render(
        request,
        "p_branding.html",
        status_code=status_code,
        title="Branding",
        current=branding(dealer),
        dealers=dealers,
        max_kib=MAX_LOGO_BYTES // 1024,
        **extra,
    )


@require(*EDITORS)
def branding_page(request: Request) -> Response:
    return _page(request)


@require(*EDITORS)
def branding_save(request: Request) -> Response:
    who = principal_of(request)
    form = form_data(request)
    upload = form.get("logo")
    logo = b""
    if isinstance(upload, UploadFile):
        try:  # one byte past the limit: a larger file is refused without being held whole
            logo = upload.file.read(MAX_LOGO_BYTES + 1)
        finally:
            anyio.from_thread.run(form.close)
    try:
        dealer = dealer_of(Scoped.of(who), who, field(form, "dealer", 200))
        saved = set_branding(
            dealer,
            colour=field(form, "colour", 20),
            accent=field(form, "accent", 20),
            logo=logo or None,
            remove_logo=field(form, "remove_logo") == "1",
            by=who.name,
            now=datetime.now(UTC),
        )
    except NotFound:
        raise HTTPException(404) from None
    except TenancyError as exc:
        return _page(
            request, status_code=400, error=exc.message, hint=exc.hint, dealer=field(form, "dealer", 200)
        )
    audit_event(
        request,
        "branding.save",
        target=f"dealer {saved.dealer}",
        detail={"colour": saved.colour, "accent": saved.accent, "logo": saved.logo_sha256},
        dealer=saved.dealer,
    )
    suffix = f"?dealer={saved.dealer}" if who.role == "admin" else ""
    return RedirectResponse(f"/branding{suffix}", status_code=303)


def _dealer_id(request: Request) -> int:
    return int(request.path_params["dealer_id"])


@require(*ROLES)
def logo(request: Request) -> Response:
    """The logo, with the type its bytes were checked to be; another dealer's answers 404."""
    who = principal_of(request)
    try:
        data, media_type = logo_of(Scoped.of(who), who, _dealer_id(request))
    except NotFound:
        raise HTTPException(404) from None
    return Response(
        data,
        media_type=media_type,
        headers={
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": "inline",
            "Cache-Control": "private, max-age=86400",
        },
    )


@require(*ROLES)
def stylesheet(request: Request) -> Response:
    who = principal_of(request)
    own = brand_for(who)
    if own is None or own.dealer_id != _dealer_id(request):
        raise HTTPException(404)
    return Response(
        style_css(own), media_type="text/css; charset=utf-8", headers={"Cache-Control": "private"}
    )


def routes() -> list[Route]:
    return [
        Route("/branding", branding_page),
        Route("/branding", branding_save, methods=["POST"]),
        Route("/branding/{dealer_id:int}/logo", logo),
        Route("/branding/{dealer_id:int}/style.css", stylesheet),
    ]


__all__ = ["NAV", "routes"]
