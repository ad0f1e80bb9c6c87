"""``/devices`` and ``/devices/{device_id}``: the devices in the token's scope, from the state kept
at ingest (each device's newest reading, counters and supply fits), never a scan of history."""

from __future__ import annotations

from typing import Any, cast

import peewee
from msgspec import UNSET

from ..db.connect import translated
from ..db.models import Client, CounterLatest, Customer, Device, DeviceLatest, Site
from ..portal.alerts import open_alerts
from ..scoping import Scoped
from .endpoint import Call, Endpoint
from .schemas import Alert, Counter, DeviceDetail, DeviceList, DevicePath, DevicesQuery, DeviceSummary
from .supplies import device_supplies


def _status(reachability: str | None, device_status: str | None) -> str:
    if reachability is None:
        return "unknown"
    if reachability != "ok":
        return reachability
    return device_status or "unknown"


def _listed(scoped: Scoped) -> peewee.ModelSelect[Device]:
    """Devices in scope with their names, newest state and total counter, in id order."""
    return (
        scoped.devices(
            Device.id,
            Device.manufacturer,
            Device.model,
            Device.serial,
            Device.firmware,
            Device.pmd,
            Device.ip,
            Device.mac,
            Device.hostname,
            Device.location,
            Device.first_seen,
            Device.last_seen,
            Customer.name.alias("customer"),
            Site.name.alias("site"),
            Client.name.alias("client"),
            DeviceLatest.reachability,
            DeviceLatest.device_status,
            DeviceLatest.printer_status,
            CounterLatest.value.alias("total"),
        )
        .join(Customer, on=(Device.customer == Customer.id))
        .switch(Device)
        .join(Client, on=(Device.client == Client.id))
        .switch(Device)
        .join(Site, peewee.JOIN.LEFT_OUTER, on=(Device.site == Site.id))
        .switch(Device)
        .join(DeviceLatest, peewee.JOIN.LEFT_OUTER, on=(DeviceLatest.device == Device.id))
        .switch(Device)
        .join(
            CounterLatest,
            peewee.JOIN.LEFT_OUTER,
            on=((CounterLatest.device == Device.id) & (CounterLatest.name == "total")),
        )
        .order_by(Device.id)
    )


def _summary(r: dict[str, Any]) -> dict[str, Any]:
    conv = Device.first_seen
    return {
        "id": r["id"],
        "customer": r["customer"],
        "site": r["site"] or "",
        "client": r["client"],
        "manufacturer": r["manufacturer"],
        "model": r["model"],
        "serial": r["serial"],
        "ip": r["ip"],
        "mac": r["mac"],
        "hostname": r["hostname"],
        "location": r["location"],
        "first_seen": conv.python_value(r["first_seen"]),
        "last_seen": conv.python_value(r["last_seen"]),
        "status": _status(r["reachability"], r["device_status"]),
        "total": r["total"],
    }


def list_devices(call: Call) -> DeviceList:
    q: DevicesQuery = call.query
    scoped = call.scoped
    with translated("cannot list devices"):
        found = _listed(scoped).where(Device.id > q.after)
        if q.customer is not UNSET:
            found = found.where(Device.customer == scoped.customer_named(q.customer).id)
        rows = cast("list[dict[str, Any]]", list(found.limit(q.limit + 1).dicts()))
    more = len(rows) > q.limit
    rows = rows[: q.limit]
    return DeviceList(
        items=[DeviceSummary(**_summary(r)) for r in rows], next_after=rows[-1]["id"] if more else None
    )


def one_device(call: Call) -> DeviceDetail:
    p: DevicePath = call.path
    scoped = call.scoped
    device = scoped.device(p.device_id)  # NotFound: another tenant's, or none
    with translated(f"cannot read device {device.id}"):
        r = cast("dict[str, Any]", _listed(scoped).where(Device.id == device.id).dicts().get())
        counters = [
            Counter(name=c.name, value=c.value, observed_at=c.observed_at)
            for c in CounterLatest.select()
            .where(CounterLatest.device == device.id)
            .order_by(CounterLatest.name)
        ]
        alerts = [
            Alert(
                code=a.alert.code,
                severity=a.alert.severity,
                description=a.alert.description,
                source=a.alert.source,
                since=a.since,
                acked_by=a.acked_by,
                acked_at=a.acked_at,
            )
            for a in open_alerts(scoped, now=call.now, device_id=device.id)[0]
        ]
    return DeviceDetail(
        **_summary(r),
        firmware=r["firmware"],
        pmd=r["pmd"],
        printer_status=r["printer_status"],
        counters=counters,
        supplies=device_supplies(scoped, device.id, call.settings),
        alerts=alerts,
    )


ENDPOINTS = [
    Endpoint(
        "/devices",
        "listDevices",
        "The devices in scope, in id order",
        "devices",
        DeviceList,
        list_devices,
        query=DevicesQuery,
        description="Page with `after` (the previous page's `next_after`) and `limit`. "
        "`customer` narrows to one customer in scope (404 for another's).",
    ),
    Endpoint(
        "/devices/{device_id}",
        "getDevice",
        "One device with its newest counters, supplies and open alerts",
        "devices",
        DeviceDetail,
        one_device,
        path_params=DevicePath,
        description="404 for a device that does not exist or is another tenant's.",
    ),
]

__all__ = ["ENDPOINTS", "list_devices", "one_device"]
