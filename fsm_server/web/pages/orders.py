"""The portal's supplies and orders pages: every supply in scope with its forecast, the supply
orders with their steps (dealers and administrators act, customers read), each customer's lead
time, and the CSV of approved orders for the ERP. Every read and write goes through
``fsm_server.orders`` / ``fsm_server.portal.supplies`` with the viewer's ``Scoped``: another
tenant's order answers 404 like a missing one."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from ...accounts import ROLES
from ...config import OrdersSection
from ...errors import NotFound, OrderError
from ...orders import workflow
from ...portal.devices import filter_choices
from ...portal.supplies import KINDS, SORTS, SUPPLY_COLORS, SupplyFilter, supply_page
from .. import NavItem, audit_event, principal_of, render, require, scoped_of
from ..render import field, form_data

NAV = [NavItem("Supplies", "/supplies", roles=ROLES), NavItem("Orders", "/orders", roles=ROLES)]
ACTIONS = {"approve": "approved", "ordered": "ordered", "delivered": "delivered", "ignore": "ignored"}


def _defaults(request: Request) -> OrdersSection:
    ctx = getattr(request.app.state, "ctx", None)
    return ctx.config.orders if ctx is not None else OrdersSection()


def _now() -> datetime:
    return datetime.now(UTC)


def _number(value: str | None, *, high: float) -> float | None:
    try:
        number = float(value) if value not in (None, "") else None
    except ValueError:
        return None
    return number if number is not None and 0 <= number <= high else None


def _supply_filter(request: Request) -> SupplyFilter:
    """The supplies list's filter from the query string; a value that makes no sense is ignored."""
    p = request.query_params
    sort = p.get("sort", "days_left")
    return SupplyFilter(
        customer=p.get("customer", "")[:200],
        kind=p.get("kind", "") if p.get("kind") in KINDS else "",
        color=p.get("color", "") if p.get("color") in SUPPLY_COLORS else "",
        level_max=_number(p.get("level_max"), high=100),
        days_max=_number(p.get("days_max"), high=3650),
        sort=sort if sort in SORTS else "days_left",
        desc=p.get("desc") == "1",
        page=int(_number(p.get("page"), high=1e9) or 1),
    )


@require(*ROLES)
def supplies(request: Request) -> Response:
    scoped = scoped_of(request)
    f = _supply_filter(request)
    ctx: dict[str, Any] = {"page": supply_page(scoped, f, now=_now()), "f": f, "sorts": list(SORTS)}
    if request.headers.get("HX-Request") == "true":
        return render(request, "p_supplies_table.html", **ctx)
    customers, _ = filter_choices(scoped)
    return render(
        request,
        "p_supplies.html",
        customers=customers,
        kinds=KINDS,
        colors=SUPPLY_COLORS,
        title="Supplies",
        **ctx,
    )


def _order_filter(request: Request) -> workflow.OrderFilter:
    p = request.query_params
    state = p.get("state", "open")
    return workflow.OrderFilter(
        state=state if state in workflow.STATE_FILTERS else "open",
        customer=p.get("customer", "")[:200],
        page=int(_number(p.get("page"), high=1e9) or 1),
    )


@require(*ROLES)
def orders(request: Request) -> Response:
    scoped = scoped_of(request)
    f = _order_filter(request)
    page = workflow.order_page(scoped, f)
    customers, _ = filter_choices(scoped)
    return render(
        request,
        "p_orders.html",
        page=page,
        f=f,
        customers=customers,
        states=workflow.STATE_FILTERS,
        title="Orders",
        now=_now(),
    )


@require("admin", "dealer")
def lead_times(request: Request) -> Response:
    """Each customer's lead time and margin, with a form per customer."""
    rows = workflow.all_lead_settings(scoped_of(request), _defaults(request))
    return render(request, "p_lead_times.html", leads=rows, title="Lead times")


@require(*ROLES)
def order(request: Request) -> Response:
    try:
        o = workflow.get_order(scoped_of(request), int(request.path_params["order_id"]))
    except NotFound:
        raise HTTPException(404) from None
    return render(request, "p_order.html", o=o, title=f"Order {o.id}", now=_now(), error=None)


@require("admin", "dealer")
def order_action(request: Request) -> Response:
    """One step of an order in scope; logged to the audit log. A refused step shows the order
    again with what was wrong."""
    scoped = scoped_of(request)
    order_id = int(request.path_params["order_id"])
    action = request.path_params["action"]
    if action not in ACTIONS:
        raise HTTPException(404)
    form = form_data(request)
    who = principal_of(request).name
    try:
        before = workflow.get_order(scoped, order_id)
        if action == "approve":
            o = workflow.approve(scoped, order_id, by=who)
        elif action == "ordered":
            o = workflow.mark_ordered(scoped, order_id, by=who, ref=field(form, "ref", 200))
        elif action == "delivered":
            o = workflow.mark_delivered(scoped, order_id, by=who)
        else:
            o = workflow.ignore(scoped, order_id, by=who, reason=field(form, "reason", 1000))
    except NotFound:
        raise HTTPException(404) from None
    except OrderError as exc:
        return render(
            request,
            "p_order.html",
            status_code=409,
            o=before,
            title=f"Order {order_id}",
            now=_now(),
            error=exc,
        )
    audit_event(
        request,
        f"order.{action}",
        target=f"order {order_id}",
        detail={"customer": o.customer, "from": before.state, "to": o.state},
    )
    back = field(form, "back", 300)
    return RedirectResponse(back if back.startswith("/orders") else f"/orders/{order_id}", status_code=303)


@require("admin", "dealer")
def set_lead_time(request: Request) -> Response:
    """Set (or reset to the server's defaults) one customer's lead time and margin."""
    scoped = scoped_of(request)
    form = form_data(request)
    customer = field(form, "customer", 200)
    try:
        if field(form, "reset", 10):
            s = workflow.reset_lead(scoped, customer, _defaults(request))
        else:
            lead = _number(field(form, "lead_days", 10), high=365)
            margin = _number(field(form, "margin_days", 10), high=365)
            if lead is None or margin is None or lead != int(lead) or margin != int(margin):
                raise OrderError(
                    "lead time and margin are whole numbers of days", hint="give numbers from 0 to 365"
                )
            s = workflow.set_lead(
                scoped, customer, lead_days=int(lead), margin_days=int(margin), by=principal_of(request).name
            )
        # the customer's supplies are looked at again under the new values now, not at their next report
        proposed, closed = workflow.rescan(scoped, request.app.state.db, customer, _defaults(request))
    except NotFound:
        raise HTTPException(404) from None
    except OrderError as exc:
        return render(
            request,
            "message.html",
            status_code=400,
            title="Lead time not changed",
            error=exc.message,
            hint=exc.hint,
        )
    audit_event(
        request,
        "order.lead_time",
        target=f"customer {customer}",
        detail={
            "lead_days": s.lead_days,
            "margin_days": s.margin_days,
            "own": s.own,
            "proposed": proposed,
            "closed": closed,
        },
    )
    return RedirectResponse("/orders/lead-times", status_code=303)


@require("admin", "dealer")
def orders_export(request: Request) -> Response:
    """The approved orders in scope (of one customer) as CSV for the ERP."""
    scoped = scoped_of(request)
    customer = request.query_params.get("customer", "")[:200] or None
    lines = workflow.approved_csv(scoped, customer=customer)
    db = request.app.state.db

    def batches() -> Iterator[str]:
        # each batch is read in a worker thread of its own choosing: close that thread's connection
        try:
            for text in lines:
                db.close()
                yield text
        finally:
            db.close()

    audit_event(request, "order.export", target=f"customer {customer}" if customer else "orders")
    stamp = _now().strftime("%Y%m%d-%H%M")
    return StreamingResponse(
        batches(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="orders-approved-{stamp}.csv"'},
    )


def routes() -> list[Route]:
    return [
        Route("/supplies", supplies),
        Route("/orders", orders),
        Route("/orders.csv", orders_export),
        Route("/orders/lead-times", lead_times),
        Route("/orders/lead-times", set_lead_time, methods=["POST"]),
        Route("/orders/{order_id:int}", order),
        Route("/orders/{order_id:int}/{action:str}", order_action, methods=["POST"]),
    ]


__all__ = ["NAV", "routes"]
