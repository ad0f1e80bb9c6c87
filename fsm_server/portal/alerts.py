"""The alerts page: open alerts (in each device's newest reading) with when they began and who
acknowledged them, and the history of alerts seen in the last days. Acknowledging records who
saw an alert; nothing is sent anywhere."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, cast

import msgspec
from peewee import fn

from fsm_protocol.display import device_name

from ..db.connect import translated
from ..db.models import AlertAck, AlertValue, Customer, Device, Reading
from ..errors import NotFound
from ..reports.alerts import alert_readings
from ..reports.scope import bound_database
from ..scoping import Scoped
from .latest import AlertNow, alerting, latest_states, with_state

if TYPE_CHECKING:
    # What the queries select beside a device's fields (aliased columns) peewee sets on each row.

    class _AlertedDevice(Device):  # a device with open alerts (``open_alerts``)
        customer_name: str

    # a device and code of ``alert_history``; first_seen and last_seen, the code's, are in Device's fields
    class _AlertHistoryRow(_AlertedDevice):
        code: str
        severity: str
        description: str
        readings: int


#: Most devices with open alerts one page lists, and most history rows.
LIMIT = 100
HISTORY_DAYS = 30
LOOKBACK = timedelta(days=90)


class AlertRow(msgspec.Struct, kw_only=True):
    device_id: int
    device: str
    serial: str | None
    customer: str
    alert: AlertNow
    since: datetime
    acked_by: str | None = None
    acked_at: datetime | None = None


class HistoryRow(msgspec.Struct, kw_only=True):
    device_id: int
    device: str
    serial: str | None
    customer: str
    code: str
    severity: str
    description: str
    first_seen: datetime
    last_seen: datetime
    readings: int


class AlertsPage(msgspec.Struct, kw_only=True):
    open: list[AlertRow]
    history: list[HistoryRow]
    more_open: bool


def _starts(device_ids: list[int], now: datetime) -> dict[tuple[int, str], datetime]:
    """When each code of each device's newest reading began (its unbroken run of readings)."""
    out: dict[tuple[int, str], datetime] = {}
    for dev, rows in alert_readings(
        bound_database(), device_ids, since=now - LOOKBACK, until=now + timedelta(days=1)
    ):
        if not rows:
            continue
        for code in rows[-1][1]:
            since = rows[-1][0]
            for at, codes in reversed(rows):
                if code not in codes:
                    break
                since = at
            out[(dev, code)] = since
    return out


def open_alerts(
    scoped: Scoped,
    *,
    now: datetime,
    device_id: int | None = None,
    limit: int = LIMIT,
    after: int | None = None,
) -> tuple[list[AlertRow], bool]:
    """Open alerts of the devices in scope (of ``device_id`` only when given), newest devices first;
    with ``after``, of the devices whose id is greater, in id order (the API's pages)."""
    with translated("cannot list alerts"):
        q = with_state(
            scoped.devices(
                Device.id,
                Device.manufacturer,
                Device.model,
                Device.serial,
                Customer.name.alias("customer_name"),
            )
            .join(Customer, on=(Device.customer == Customer.id))
            .switch(Device)
        ).where(alerting())
        if device_id is not None:
            q = q.where(Device.id == device_id)
        if after is not None:
            q = q.where(Device.id > after).order_by(Device.id)
        else:
            q = q.order_by(Device.last_seen.desc(), Device.id)
        q = q.limit(limit + 1)
        devices = list(cast("Iterable[_AlertedDevice]", q.objects()))
        more = len(devices) > limit
        devices = devices[:limit]
        ids = [d.id for d in devices]
        states = latest_states(ids)
        starts = _starts(ids, now)
        acks = {(a.device_id, a.code, a.since): a for a in AlertAck.select().where(AlertAck.device.in_(ids))}
    rows = []
    for d in devices:
        state = states.get(d.id)
        for alert in state.alerts if state else []:
            since = starts.get((d.id, alert.code), state.observed_at if state else now)
            ack = acks.get((d.id, alert.code, since))
            rows.append(
                AlertRow(
                    device_id=d.id,
                    device=device_name(d.manufacturer, d.model),
                    serial=d.serial,
                    customer=d.customer_name,
                    alert=alert,
                    since=since,
                    acked_by=ack.acked_by if ack else None,
                    acked_at=ack.acked_at if ack else None,
                )
            )
    return rows, more


def alert_history(
    scoped: Scoped, *, now: datetime, days: int = HISTORY_DAYS, limit: int = LIMIT
) -> list[HistoryRow]:
    """Alerts (prtAlertTable entries) seen in the last ``days``, per device and code, newest first."""
    with translated("cannot list the alert history"):
        last = fn.MAX(AlertValue.observed_at)
        q = (
            scoped.devices(
                Device.id,
                Device.manufacturer,
                Device.model,
                Device.serial,
                Customer.name.alias("customer_name"),
                AlertValue.code,
                fn.MAX(AlertValue.severity).alias("severity"),
                fn.MAX(AlertValue.description).alias("description"),
                fn.MIN(AlertValue.observed_at).alias("first_seen"),
                last.alias("last_seen"),
                fn.COUNT(AlertValue.id).alias("readings"),
            )
            .join(Customer, on=(Device.customer == Customer.id))
            .switch(Device)
            .join(Reading, on=(Reading.device == Device.id))
            .join(AlertValue, on=(AlertValue.reading == Reading.id))
            .where(Reading.observed_at >= now - timedelta(days=days))
            .group_by(
                Device.id, Device.manufacturer, Device.model, Device.serial, Customer.name, AlertValue.code
            )
            .order_by(last.desc())
            .limit(limit)
        )
        conv = AlertValue.observed_at
        return [
            HistoryRow(
                device_id=r.id,
                device=device_name(r.manufacturer, r.model),
                serial=r.serial,
                customer=r.customer_name,
                code=r.code,
                severity=r.severity,
                description=r.description or r.code.replace("_", " "),
                first_seen=conv.python_value(r.first_seen),
                last_seen=conv.python_value(r.last_seen),
                readings=r.readings,
            )
            for r in cast("Iterable[_AlertHistoryRow]", q.objects())
        ]


def alerts_page(scoped: Scoped, *, now: datetime) -> AlertsPage:
    rows, more = open_alerts(scoped, now=now)
    return AlertsPage(open=rows, history=alert_history(scoped, now=now), more_open=more)


def acknowledge(
    scoped: Scoped, device_id: int, code: str, *, by: str, now: datetime | None = None
) -> AlertRow:
    """Record that ``by`` saw open alert ``code`` of device ``device_id`` (NotFound when the device is
    not in scope or has no such open alert). Acknowledging twice keeps the first."""
    scoped.device(device_id)
    rows, _ = open_alerts(scoped, now=now or datetime.now(UTC), device_id=device_id)
    found = next((r for r in rows if r.alert.code == code), None)
    if found is None:
        raise NotFound(f"no open alert {code!r} on device {device_id}", hint="see the alerts page")
    at = now or datetime.now(UTC)
    with translated("cannot record the acknowledgement"):
        AlertAck.insert(
            device=device_id, code=code, since=found.since, acked_by=by, acked_at=at
        ).on_conflict_ignore().execute()
    if found.acked_by is None:
        found.acked_by, found.acked_at = by, at
    return found


__all__ = [
    "AlertRow",
    "AlertsPage",
    "HistoryRow",
    "acknowledge",
    "alert_history",
    "alerts_page",
    "open_alerts",
]
