"""The reports page: run a report for a customer in scope (administrators: every customer, dealer
users: all their customers) and a period, download it as HTML, CSV or PDF
(``fsm_server.portal.reports``); scheduled reports and the log of their sends
(``fsm_server.schedules``): administrators and dealers manage those of their scope, customer
users schedule their own customers' reports and stop the ones they made."""

from __future__ import annotations

import functools
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Route

from ... import reports
from ...accounts import ROLES
from ...config import ReportsSection
from ...errors import NotFound, ReportError
from ...portal import reports as portal_reports
from ...schedules import CADENCES, add_schedule, delete_schedule, may_stop, schedules, sends
from ...scoping import Scoped
from .. import NavItem, audit_event, field, form_data, principal_of, render, require, scoped_of

NAV = [NavItem("Reports", "/reports", roles=ROLES)]


def settings_of(request: Request) -> ReportsSection:
    ctx = getattr(request.app.state, "ctx", None)
    return ctx.config.reports if ctx is not None else ReportsSection()


def all_label(scoped: Scoped) -> str | None:
    """The customer choice covering more than one customer, as the viewer may pick it (None: none)."""
    if scoped.sees_all:
        return "all customers"
    return f"all customers of {scoped.dealer}" if scoped.role == "dealer" and scoped.dealer else None


def page_context(request: Request, scoped: Scoped) -> dict[str, Any]:
    """What the reports page shows besides a message: the choices of the form."""
    return {
        "kinds": reports.KINDS,
        "formats": portal_reports.FORMATS,
        "customers": portal_reports.customer_choices(scoped),
        "all_label": all_label(scoped),
        "asked": request.query_params,
        "title": "Reports",
        "schedules": schedules(scoped),
        "sends": sends(scoped),
        "cadences": CADENCES,
        "may_stop": functools.partial(may_stop, scoped),
    }


def show(request: Request, *, status_code: int = 200, **extra: Any) -> Response:
    """The reports page, with a message (``error``, ``hint``, ``notice``) when given."""
    scoped = Scoped.of(principal_of(request))
    context = page_context(request, scoped)
    context.update(extra)
    return render(request, "p_reports.html", status_code=status_code, **context)


@require(*ROLES)
def reports_page(request: Request) -> Response:
    return show(request)


@require(*ROLES)
def download(request: Request) -> Response:
    """The report asked for in the query string, as a file download."""
    scoped = Scoped.of(principal_of(request))
    p = request.query_params
    now = datetime.now(UTC)
    try:
        asked = portal_reports.ask(
            scoped,
            kind=p.get("kind", ""),
            customer=p.get("customer", "")[:200],
            start=p.get("from", "")[:40],
            end=p.get("to", "")[:40],
            fmt=p.get("format", "html"),
        )
    except NotFound:
        raise HTTPException(404) from None
    except ReportError as exc:
        return show(request, status_code=400, error=exc.message, hint=exc.hint)
    work = Path(tempfile.mkdtemp(prefix="fsm-portal-report-"))
    try:
        path = portal_reports.produce(asked, work, settings=settings_of(request), now=now)
    except ReportError as exc:
        shutil.rmtree(work, ignore_errors=True)
        return show(request, status_code=400, error=exc.message, hint=exc.hint)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    audit_event(
        request,
        "report.download",
        target=f"{asked.kind} {portal_reports.describe(asked.customer, asked.dealer)}",
        detail={"format": asked.fmt, "from": p.get("from", ""), "to": p.get("to", "")},
    )
    return FileResponse(
        path,
        media_type=portal_reports.MEDIA_TYPES[asked.fmt],
        filename=asked.file_name(now),
        background=BackgroundTask(shutil.rmtree, work, ignore_errors=True),
    )


def _int(text: str, default: int = -1) -> int:
    try:
        return int(text)
    except ValueError:
        return default


@require(*ROLES)
def schedule_add(request: Request) -> Response:
    """A customer user's ``customer`` must be one of its own (another's, or "" for all customers,
    answers 404: ``add_schedule`` looks it up through the viewer's scope)."""
    scoped = scoped_of(request)
    form = form_data(request)
    try:
        row = add_schedule(
            scoped,
            customer=field(form, "customer", 200),
            kind=field(form, "kind", 20),
            fmt=field(form, "format", 10),
            cadence=field(form, "cadence", 10),
            day=_int(field(form, "day", 4)),
            hour=_int(field(form, "hour", 4)),
            recipients=[field(form, "recipients", 4000)],
            by=principal_of(request).name,
            now=datetime.now(UTC),
        )
    except NotFound:
        raise HTTPException(404) from None
    except ReportError as exc:
        return show(request, status_code=400, error=exc.message, hint=exc.hint)
    audit_event(
        request,
        "report.schedule",
        target=f"schedule {row.id}: {row.kind} {row.covers}",
        detail={"format": row.fmt, "when": row.when, "recipients": row.recipients},
        dealer=row.served_by,
    )
    return RedirectResponse("/reports#schedules", status_code=303)


@require(*ROLES)
def schedule_delete(request: Request) -> Response:
    try:
        row = delete_schedule(scoped_of(request), request.path_params["schedule_id"])
    except NotFound:
        raise HTTPException(404) from None
    except ReportError as exc:  # a customer user and its dealer's schedule
        return show(request, status_code=403, error=exc.message, hint=exc.hint)
    audit_event(
        request,
        "report.unschedule",
        target=f"schedule {row.id}: {row.kind} {row.covers}",
        dealer=row.served_by,
    )
    return RedirectResponse("/reports#schedules", status_code=303)


def routes() -> list[Route]:
    return [
        Route("/reports", reports_page),
        Route("/reports/download", download),
        Route("/reports/schedules", schedule_add, methods=["POST"]),
        Route("/reports/schedules/{schedule_id:int}/delete", schedule_delete, methods=["POST"]),
    ]


__all__ = ["NAV", "routes", "settings_of", "show"]
