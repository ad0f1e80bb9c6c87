"""``/orders`` and ``/orders/{order_id}``: the supply orders in the token's scope, as the orders
core lists them (``fsm_server.orders.workflow``), newest proposed first."""

from __future__ import annotations

import msgspec
from msgspec import UNSET

from ..orders.workflow import OrderView, get_order, list_orders
from .endpoint import Call, Endpoint
from .schemas import Order, OrderList, OrderPath, OrdersQuery


def _order(view: OrderView) -> Order:
    return Order(**msgspec.structs.asdict(view))


def list_supply_orders(call: Call) -> OrderList:
    q: OrdersQuery = call.query
    scoped = call.scoped
    customer = None if q.customer is UNSET else scoped.customer_named(q.customer).name
    rows = list_orders(scoped, state=q.state, customer=customer, limit=q.limit + 1, offset=q.after)
    more = len(rows) > q.limit
    return OrderList(
        items=[_order(r) for r in rows[: q.limit]], next_after=q.after + q.limit if more else None
    )


def one_order(call: Call) -> Order:
    p: OrderPath = call.path
    return _order(get_order(call.scoped, p.order_id))  # NotFound: another tenant's, or none


ENDPOINTS = [
    Endpoint(
        "/orders",
        "listOrders",
        "Supply orders in scope, newest proposed first",
        "orders",
        OrderList,
        list_supply_orders,
        query=OrdersQuery,
        description="`state`: one state, `open`, `closed` or `all` (default). Page with `after` "
        "(the previous page's `next_after`). `customer` of another tenant: 404.",
    ),
    Endpoint(
        "/orders/{order_id}",
        "getOrder",
        "One supply order",
        "orders",
        Order,
        one_order,
        path_params=OrderPath,
        description="404 for an order that does not exist or is another tenant's.",
    ),
]

__all__ = ["ENDPOINTS", "list_supply_orders", "one_order"]
