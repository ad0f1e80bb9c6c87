"""The billing pages: periods of the customers in scope, a period's meters per device with the
report each number came from, and the workflow (docs/billing.md, docs/portal-pages.md "Billing").

A customer user reads its periods and may validate one; dealer users and administrators correct
or exclude flagged meters (with a note), approve and export. Approving and exporting need the
password given again (``/reauth``) within ``[web] reauth_minutes``, like the account pages. Every
step goes through ``fsm_server.portal.billing`` (scoped: another tenant's period or meter is 404)
and is written to the audit log.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from fsm_protocol.errors import FsmError

from ... import wiring
from ...accounts import sessions
from ...billing.workflow import MAX_NOTE, STATES, PeriodView, Tally
from ...config import ReportsSection
from ...errors import BillingError, NotFound
from ...portal import billing as data
from ...scoping import Scoped
from .. import audit_event, field, form_data, principal_of, render, require, scoped_of
from ..auth_pages import settings_of

#: what the period page confirms after a step (any other ?done= is not shown)
DONE = frozenset({"validated", "corrected", "excluded", "approved"})
MAX_PAGES = 10**12  # a meter count no printer reaches: what the correction form accepts


def _settings(request: Request) -> ReportsSection:
    ctx = getattr(request.app.state, "ctx", None)
    return ctx.config.reports if ctx is not None else ReportsSection()


def _id(request: Request, name: str) -> int:
    value = request.path_params[name]
    return value if isinstance(value, int) else 0


def _period_url(period_id: int) -> str:
    return f"/billing/periods/{period_id}"


def _stale(request: Request, back: str) -> Response | None:
    """A redirect to the re-authentication page, back to ``back`` after it, unless the session
    gave its password within ``[web] reauth_minutes``."""
    session = request.state.session
    if session is not None and sessions.recently_authenticated(
        session, datetime.now(UTC), settings_of(request)
    ):
        return None
    return RedirectResponse("/reauth?next=" + quote(back, safe=""), status_code=303)


def _done(period_id: int, what: str) -> RedirectResponse:
    return RedirectResponse(f"{_period_url(period_id)}?done={what}", status_code=303)


def _count(value: str, name: str) -> int | None:
    """A page count typed in the correction form ("" = not given)."""
    value = value.strip().replace(",", "").replace("_", "")
    if not value:
        return None
    if not value.isdigit() or int(value) > MAX_PAGES:
        raise BillingError(
            f"the {name} {value[:20]!r} is not a page count",
            hint="give a whole number of pages (0 or more), or leave the field empty",
        )
    return int(value)


@require("admin", "dealer", "customer")
def periods_page(request: Request) -> Response:
    rows = data.customer_periods(scoped_of(request))
    return render(request, "p_billing.html", customers=rows, title="Billing")


def _show(request: Request, period_id: int, *, status_code: int = 200, **extra: Any) -> Response:
    flagged_only = request.query_params.get("show") == "flagged"
    try:
        number = int(request.query_params.get("page", "1"))
    except ValueError:
        number = 1
    try:
        page = data.period_page(scoped_of(request), period_id, flagged_only=flagged_only, page=number)
    except NotFound:
        raise HTTPException(404) from None
    view = page.period
    tally = view.tally or Tally()
    return render(
        request,
        "p_billing_period.html",
        status_code=status_code,
        title=f"Billing {view.customer} {view.start:%Y-%m-%d}",
        p=view,
        tally=tally,
        groups=page.devices,
        listed=page.listed,
        flagged_only=flagged_only,
        page=page.page,
        pages=page.pages,
        states=STATES,
        to_settle=tally.to_settle,
        settle_flags=page.settle_flags,
        editable=view.state in ("collected", "validated"),
        max_note=MAX_NOTE,
        done=done if (done := request.query_params.get("done", "")) in DONE else "",
        **extra,
    )


@require("admin", "dealer", "customer")
def period_page(request: Request) -> Response:
    return _show(request, _id(request, "period_id"))


@require("customer")
def validate(request: Request) -> Response:
    """The customer confirms the collected meters."""
    period_id = _id(request, "period_id")
    who = principal_of(request)
    scoped = scoped_of(request)
    try:
        view = data.validate(scoped, period_id, who.name)
    except NotFound:
        raise HTTPException(404) from None
    except BillingError as exc:
        return _show(request, period_id, status_code=400, error=exc.message, hint=exc.hint)
    audit_event(
        request, "billing.validate", target=f"period {view.id}", dealer=data.period_dealer(scoped, period_id)
    )
    return _done(period_id, "validated")


def _meter_step(request: Request, action: str) -> Response:
    """Correct or exclude one meter (``action``) from the period page's forms."""
    meter_id = _id(request, "meter_id")
    scoped = scoped_of(request)
    who = principal_of(request)
    try:
        period_id = data.meter_period(scoped, meter_id)
    except NotFound:
        raise HTTPException(404) from None
    form = form_data(request)
    note = field(form, "note", MAX_NOTE + 1)
    try:
        if action == "correct":
            values = {n: _count(field(form, n, 40), n) for n in ("start", "end", "usage")}
            _, meter = data.correct(
                scoped,
                meter_id,
                who.name,
                note,
                start_value=values["start"],
                end_value=values["end"],
                usage=values["usage"],
            )
            detail: dict[str, object] = {
                "counter": meter.counter,
                "device": meter.device_id,
                "collected": [meter.collected_start, meter.collected_end, meter.collected_usage],
                "billed": [meter.start_value, meter.end_value, meter.usage],
                "note": meter.corrections[-1][2],
            }
        else:
            _, meter = data.exclude(scoped, meter_id, who.name, note)
            detail = {"counter": meter.counter, "device": meter.device_id, "note": meter.exclude_note}
    except NotFound:
        raise HTTPException(404) from None
    except BillingError as exc:
        return _show(
            request, period_id, status_code=400, error=exc.message, hint=exc.hint, failed_meter=meter_id
        )
    audit_event(
        request,
        f"billing.{action}",
        target=f"period {period_id} meter {meter_id}",
        detail=detail,
        dealer=data.period_dealer(scoped, period_id),
    )
    return RedirectResponse(f"{_period_url(period_id)}?done={action}ed#meter-{meter_id}", status_code=303)


@require("admin", "dealer")
def correct(request: Request) -> Response:
    return _meter_step(request, "correct")


@require("admin", "dealer")
def exclude(request: Request) -> Response:
    return _meter_step(request, "exclude")


@require("admin", "dealer")
def exclude_to_settle(request: Request) -> Response:
    """Exclude every meter still to settle (or those with one flag) with one note."""
    period_id = _id(request, "period_id")
    scoped = scoped_of(request)
    form = form_data(request)
    note = field(form, "note", MAX_NOTE + 1)
    flag = field(form, "flag", 40)
    try:
        who = principal_of(request).name
        count = data.exclude_to_settle(scoped, period_id, who, note, [flag] if flag else [])
    except NotFound:
        raise HTTPException(404) from None
    except BillingError as exc:
        return _show(request, period_id, status_code=400, error=exc.message, hint=exc.hint)
    audit_event(
        request,
        "billing.exclude_to_settle",
        target=f"period {period_id}",
        detail={"meters": count, "flag": flag or "any", "note": note.strip()},
        dealer=data.period_dealer(scoped, period_id),
    )
    return _done(period_id, "excluded")


def _confirmed(request: Request, action: str, title: str) -> tuple[Scoped, int, PeriodView, Response | None]:
    """The period (with its tally) of a step that needs a fresh re-authentication and a
    confirmation page; the last item is the answer to give at once (the way to re-authenticate,
    or the GET's confirmation page), None for a POST to carry out."""
    period_id = _id(request, "period_id")
    scoped = scoped_of(request)
    try:
        view = data.summary(scoped, period_id)
    except NotFound:
        raise HTTPException(404) from None
    answer = _stale(request, f"{_period_url(period_id)}/{action}")
    if answer is None and request.method == "GET":
        answer = render(request, "p_billing_confirm.html", title=title, p=view, action=action)
    return scoped, period_id, view, answer


def _refused(request: Request, action: str, title: str, view: PeriodView, exc: FsmError) -> Response:
    return render(
        request,
        "p_billing_confirm.html",
        status_code=400,
        title=title,
        p=view,
        action=action,
        error=exc.message,
        hint=exc.hint,
    )


@require("admin", "dealer")
def approve(request: Request) -> Response:
    """GET: what is approved (after re-authentication); POST: approve it."""
    scoped, period_id, before, answer = _confirmed(request, "approve", "Approve period")
    if answer is not None:
        return answer
    try:
        view = data.approve(scoped, period_id, principal_of(request).name)
    except BillingError as exc:
        return _refused(request, "approve", "Approve period", before, exc)
    audit_event(
        request,
        "billing.approve",
        target=f"period {period_id}",
        detail={"customer": view.customer, "start": view.start.isoformat(), "end": view.end.isoformat()},
        dealer=data.period_dealer(scoped, period_id),
    )
    return _done(period_id, "approved")


@require("admin", "dealer")
def export(request: Request) -> Response:
    """GET: the export page (after re-authentication); POST: the zip of the CSV and its signed
    manifest (the period becomes exported)."""
    scoped, period_id, before, answer = _confirmed(request, "export", "Export period")
    if answer is not None:
        return answer
    try:
        signer = wiring.signing_key(request.app.state.ctx)
        name, body = data.export_zip(scoped, period_id, signer, _settings(request))
    except FsmError as exc:  # a period not approved, or no signing key on this server
        return _refused(request, "export", "Export period", before, exc)
    audit_event(
        request,
        "billing.export",
        target=f"period {period_id}",
        detail={"file": name, "signer": signer.fingerprint},
        dealer=data.period_dealer(scoped, period_id),
    )
    return Response(
        body, media_type="application/zip", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


def routes() -> list[Route]:
    return [
        Route("/billing", periods_page),
        Route("/billing/periods/{period_id:int}", period_page),
        Route("/billing/periods/{period_id:int}/validate", validate, methods=["POST"]),
        Route("/billing/periods/{period_id:int}/approve", approve, methods=["GET", "POST"]),
        Route("/billing/periods/{period_id:int}/export", export, methods=["GET", "POST"]),
        Route("/billing/periods/{period_id:int}/exclude-to-settle", exclude_to_settle, methods=["POST"]),
        Route("/billing/meters/{meter_id:int}/correct", correct, methods=["POST"]),
        Route("/billing/meters/{meter_id:int}/exclude", exclude, methods=["POST"]),
    ]


__all__ = ["routes"]
