"""The fleet pages of the portal: dashboard, customers, devices, device page, alerts, clients,
quarantine and the page on what leaves a customer's network.

Every endpoint turns the principal into a ``Scoped`` (``fsm_server.scoping``) and reads through
``fsm_server.portal``; an object outside the scope answers 404 like one that does not exist. No
endpoint sends anything to a client or a device: the only writes are an alert acknowledgement
and the quarantine's retry and dismiss, which act on the server's own database.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from ...accounts import ROLES
from ...config import ReportsSection
from ...customers import list_customers
from ...errors import NotFound
from ...portal import alerts as alerts_data
from ...portal import quarantine as quarantine_data
from ...portal.clients import client_views
from ...portal.dashboard import dashboard as dashboard_data
from ...portal.device import counter_chart, device_view
from ...portal.devices import SORTS, STATUSES, DeviceFilter, device_page, devices_csv, filter_choices
from .. import NavItem, audit_event, principal_of, render, require, scoped_of
from . import billing, orders
from . import branding as branding_pages
from . import reports as report_pages
from . import rules as rule_pages

ALL = ROLES
NAV = [
    NavItem("Dashboard", "/", roles=ALL),
    NavItem("Customers", "/customers", roles=("admin", "dealer")),
    NavItem("Devices", "/devices", roles=ALL),
    NavItem("Alerts", "/alerts", roles=ALL),
    *orders.NAV,
    NavItem("Clients", "/clients", roles=ALL),
    NavItem("Quarantine", "/quarantine", roles=("admin", "dealer")),
    NavItem("Billing", "/billing", roles=ALL),
    *report_pages.NAV,
    *rule_pages.NAV,
    *branding_pages.NAV,
    NavItem("Your data", "/data", roles=ALL),
]


def _settings(request: Request) -> ReportsSection:
    ctx = getattr(request.app.state, "ctx", None)
    return ctx.config.reports if ctx is not None else ReportsSection()


def _now() -> datetime:
    return datetime.now(UTC)


def _not_found() -> HTTPException:
    return HTTPException(status_code=404)


def _int(value: str | None, default: int | None = None) -> int | None:
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        return default


def _float(value: str | None) -> float | None:
    try:
        number = float(value) if value not in (None, "") else None
    except ValueError:
        return None
    return number if number is not None and 0 <= number <= 100_000 else None


def _filter(request: Request) -> DeviceFilter:
    """The devices list's filter from the query string; a value that makes no sense is ignored."""
    p = request.query_params
    sort = p.get("sort", "name")
    return DeviceFilter(
        q=p.get("q", "")[:100],
        customer=p.get("customer", "")[:200],
        site=p.get("site", "")[:200],
        model=p.get("model", "")[:100],
        status=p.get("status", "") if p.get("status") in STATUSES else "",
        supply_max=_float(p.get("supply_max")),
        silent_hours=_float(p.get("silent_hours")),
        sort=sort if sort in SORTS else "name",
        desc=p.get("desc") == "1",
        page=_int(p.get("page"), 1) or 1,
    )


@require(*ALL)
def dashboard(request: Request) -> Response:
    scoped = scoped_of(request)
    data = dashboard_data(scoped, now=_now(), settings=_settings(request))
    return render(request, "p_dashboard.html", d=data, title="Dashboard", now=_now())


@require("admin", "dealer")
def customers(request: Request) -> Response:
    scoped = scoped_of(request)
    rows = list_customers(ids=scoped.customer_ids)
    return render(request, "p_customers.html", rows=rows, title="Customers")


@require(*ALL)
def devices(request: Request) -> Response:
    scoped = scoped_of(request)
    f = _filter(request)
    page = device_page(scoped, f, now=_now())
    ctx: dict[str, Any] = {"page": page, "f": f, "now": _now(), "statuses": STATUSES, "sorts": list(SORTS)}
    if request.headers.get("HX-Request") == "true":
        return render(request, "p_devices_table.html", **ctx)
    customers_, sites = filter_choices(scoped)
    return render(request, "p_devices.html", customers=customers_, sites=sites, title="Devices", **ctx)


@require(*ALL)
def devices_export(request: Request) -> Response:
    scoped = scoped_of(request)
    lines = devices_csv(scoped, _filter(request), now=_now())
    db = request.app.state.db

    def batches() -> Iterator[str]:
        # each batch is read in a worker thread of its own choosing: close that thread's connection
        try:
            for text in lines:
                db.close()
                yield text
        finally:
            db.close()  # the last batch's query, which found nothing more

    stamp = _now().strftime("%Y%m%d-%H%M")
    return StreamingResponse(
        batches(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="devices-{stamp}.csv"'},
    )


@require(*ALL)
def device(request: Request) -> Response:
    scoped = scoped_of(request)
    device_id = _int(request.path_params["device_id"])
    try:
        view = device_view(scoped, device_id or 0, now=_now(), settings=_settings(request))
        chart = counter_chart(scoped, view.id, now=_now())
    except NotFound:
        raise _not_found() from None
    step = max(1, len(chart.x) // 30)
    fallback = [
        (datetime.fromtimestamp(t, UTC), [chart.series[n][i] for n in chart.series])
        for i, t in enumerate(chart.x)
        if i % step == 0 or i == len(chart.x) - 1
    ]
    return render(
        request,
        "p_device.html",
        v=view,
        chart=chart,
        fallback=fallback,
        title=view.name or "Device",
        now=_now(),
    )


@require(*ALL)
def device_counters(request: Request) -> Response:
    """The chart's data (uPlot's aligned arrays) as JSON."""
    scoped = scoped_of(request)
    days = _int(request.query_params.get("days"), 90) or 90
    try:
        chart = counter_chart(scoped, _int(request.path_params["device_id"]) or 0, now=_now(), days=days)
    except NotFound:
        raise _not_found() from None
    return JSONResponse({"x": chart.x, "series": chart.series})


@require(*ALL)
def alerts(request: Request) -> Response:
    data = alerts_data.alerts_page(scoped_of(request), now=_now())
    return render(request, "p_alerts.html", a=data, title="Alerts", now=_now())


@require("admin", "dealer")
def acknowledge(request: Request) -> Response:
    device_id = _int(request.path_params["device_id"]) or 0
    code = request.path_params["code"]
    who = principal_of(request)
    try:
        row = alerts_data.acknowledge(scoped_of(request), device_id, code, by=who.name)
    except NotFound:
        raise _not_found() from None
    audit_event(
        request,
        "alert.acknowledge",
        target=f"device {device_id} {code}",
        detail={"since": row.since.isoformat()},
    )
    return RedirectResponse(request.headers.get("HX-Current-URL") or "/alerts", status_code=303)


@require(*ALL)
def clients(request: Request) -> Response:
    rows = client_views(scoped_of(request), now=_now(), settings=_settings(request))
    return render(request, "p_clients.html", rows=rows, title="Clients", now=_now())


@require(*ALL)
def client(request: Request) -> Response:
    try:
        rows = client_views(
            scoped_of(request), now=_now(), settings=_settings(request), only=request.path_params["name"]
        )
    except NotFound:
        raise _not_found() from None
    return render(
        request, "p_clients.html", rows=rows, title=f"Client {rows[0].name}", now=_now(), single=True
    )


@require("admin", "dealer")
def quarantine(request: Request) -> Response:
    status = request.query_params.get("status", "held")
    page = quarantine_data.quarantine_page(
        scoped_of(request), status=None if status == "all" else "held", now=_now()
    )
    return render(request, "p_quarantine.html", q=page, title="Quarantine")


@require("admin", "dealer")
def quarantine_entry(request: Request) -> Response:
    try:
        row = quarantine_data.quarantine_entry(scoped_of(request), _int(request.path_params["entry_id"]) or 0)
    except NotFound:
        raise _not_found() from None
    return render(request, "p_quarantine_entry.html", r=row, title=f"Quarantine entry {row.id}")


@require("admin", "dealer")
def quarantine_action(request: Request) -> Response:
    """Retry or dismiss one entry in scope, through the ingest core API; logged to the audit log."""
    from ... import wiring

    scoped = scoped_of(request)
    entry_id = _int(request.path_params["entry_id"]) or 0
    action = request.path_params["action"]
    if action not in ("retry", "dismiss"):
        raise _not_found()
    try:
        row = quarantine_data.quarantine_entry(scoped, entry_id)
        ctx, db = request.app.state.ctx, request.app.state.db
        if action == "retry":
            verdict = quarantine_data.retry(scoped, wiring.pipeline(ctx, db), entry_id)
            detail: dict[str, object] = {"outcome": verdict.outcome, "reason": verdict.reason}
        else:
            detail = {"dismissed": quarantine_data.dismiss(scoped, db, entry_id)}
    except NotFound:
        raise _not_found() from None
    audit_event(
        request,
        f"quarantine.{action}",
        target=f"quarantine {entry_id}",
        detail={"reason": row.reason, "client": row.client, "seq": row.seq, **detail},
    )
    return RedirectResponse(f"/quarantine/{entry_id}", status_code=303)


@require(*ALL)
def data_page(request: Request) -> Response:
    return render(request, "p_data.html", title="What leaves your network")


def routes() -> list[Route]:
    return [
        Route("/", dashboard),
        Route("/customers", customers),
        Route("/devices", devices),
        Route("/devices.csv", devices_export),
        Route("/devices/{device_id:int}", device),
        Route("/devices/{device_id:int}/counters.json", device_counters),
        Route("/alerts", alerts),
        Route("/alerts/{device_id:int}/{code}/ack", acknowledge, methods=["POST"]),
        Route("/clients", clients),
        Route("/clients/{name}", client),
        Route("/quarantine", quarantine),
        Route("/quarantine/{entry_id:int}", quarantine_entry),
        Route("/quarantine/{entry_id:int}/{action:str}", quarantine_action, methods=["POST"]),
        Route("/data", data_page),
        *billing.routes(),
        *orders.routes(),
        *report_pages.routes(),
        *rule_pages.routes(),
        *branding_pages.routes(),
    ]


__all__ = ["NAV", "routes"]
