"""``/alerts``: the open alerts (in each device's newest reading) of the devices in the token's
scope, with when each began and who acknowledged it, a page of devices at a time in id order."""

from __future__ import annotations

from dataclasses import replace

from msgspec import UNSET

from ..portal.alerts import open_alerts
from .endpoint import Call, Endpoint
from .schemas import AlertList, AlertsQuery, DeviceAlert


def list_alerts(call: Call) -> AlertList:
    q: AlertsQuery = call.query
    scoped = call.scoped
    if q.customer is not UNSET:  # narrowed to one customer of the scope (NotFound for another's)
        scoped = replace(scoped, customer_ids=frozenset({scoped.customer_named(q.customer).id}))
    rows, more = open_alerts(scoped, now=call.now, limit=q.limit, after=q.after)
    return AlertList(
        items=[
            DeviceAlert(
                device_id=r.device_id,
                customer=r.customer,
                serial=r.serial,
                code=r.alert.code,
                severity=r.alert.severity,
                description=r.alert.description,
                source=r.alert.source,
                since=r.since,
                acked_by=r.acked_by,
                acked_at=r.acked_at,
            )
            for r in rows
        ],
        next_after=rows[-1].device_id if more and rows else None,
    )


ENDPOINTS = [
    Endpoint(
        "/alerts",
        "listAlerts",
        "Open alerts of the devices in scope",
        "alerts",
        AlertList,
        list_alerts,
        query=AlertsQuery,
        description="A page holds the open alerts of up to `limit` devices, in device id order; "
        "page with `after` (the previous page's `next_after`). `customer` of another tenant: 404.",
    )
]

__all__ = ["ENDPOINTS", "list_alerts"]
