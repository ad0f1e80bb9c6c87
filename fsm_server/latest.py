"""What a dashboard or a device list shows: one row per device and per supply, read from the state
ingest keeps (``fsm_server.db.state``), never from the readings' history.

    from fsm_server import latest
    for d in latest.devices(customer="ACME"):
        print(d.device.label, d.reachability, d.total, [code for code, _ in d.alerts])
    soon = [s for s in latest.supplies(customer="ACME") if (s.days_remaining or 99) < 7]

Both functions take the models bound by ``open_database`` and return msgspec Structs.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from .db import sql
from .db.connect import translated
from .db.state import Fit
from .reports.scope import DeviceInfo, bound_database, chunks, sorted_devices


class DeviceState(msgspec.Struct, kw_only=True):
    """A device and its newest reading."""

    device: DeviceInfo
    observed_at: datetime | None  # None: no reading kept (state not built yet)
    reachability: str | None = None
    device_status: str | None = None
    printer_status: str | None = None
    conditions: list[str] = msgspec.field(default_factory=list)
    alerts: list[tuple[str, str]] = msgspec.field(default_factory=list)  # (code, severity)
    total: int | None = None  # the newest "total" page counter


class SupplyState(msgspec.Struct, kw_only=True):
    """A supply's newest level and the forecast of the fit since its last replacement."""

    device: DeviceInfo
    description: str
    supply_kind: str
    color: str | None
    percent: float | None
    state: str
    observed_at: datetime
    replaced_at: datetime | None  # the last replacement seen (a rise of 15 points or more)
    rate_per_day: float | None  # percentage points used per day
    days_remaining: float | None
    points: int  # levels the fit holds


_DEVICES_SQL = """
SELECT d.id, l.observed_at, l.reachability, l.device_status, l.printer_status, l.conditions, l.alerts, c.value
FROM device d
LEFT JOIN device_latest l ON l.device_id = d.id
LEFT JOIN counter_latest c ON c.device_id = d.id AND c.name = 'total'
WHERE {devices}
"""
_SUPPLIES_SQL = """
SELECT device_id, key, description, kind, color, percent, state, observed_at, replaced_at, since, last_at,
       last_percent, n, sx, sy, sxx, sxy
FROM supply_latest WHERE {devices} ORDER BY device_id, key
"""


def devices(*, customer: str | None = None) -> list[DeviceState]:
    """Every device (of ``customer``) with its newest reading, in report order."""
    db = bound_database()
    out = []
    with translated("cannot read the devices' latest state"):
        infos = sorted_devices(customer)
        for part in chunks(infos, 1000):
            by_id = {d.id: d for d in part}
            where, params = sql.in_list(db, "d.id", list(by_id))
            found = {r[0]: r for r in sql.rows(db, _DEVICES_SQL.format(devices=where), params)}
            for d in part:
                _, at, reach, dev_status, printer, conditions, alerts, total = found[d.id]
                out.append(
                    DeviceState(
                        device=d,
                        observed_at=None if at is None else sql.utc(at),
                        reachability=reach,
                        device_status=dev_status,
                        printer_status=printer,
                        conditions=msgspec.json.decode(conditions) if conditions else [],
                        alerts=[tuple(a) for a in msgspec.json.decode(alerts)] if alerts else [],
                        total=total,
                    )
                )
    return out


def supplies(*, customer: str | None = None, device_id: int | None = None) -> list[SupplyState]:
    """Every supply of every device (of ``customer``, or the one ``device_id``), in report order."""
    db = bound_database()
    out = []
    with translated("cannot read the supplies' latest state"):
        infos = [d for d in sorted_devices(customer) if device_id is None or d.id == device_id]
        for part in chunks(infos, 1000):
            by_id = {d.id: d for d in part}
            where, params = sql.in_list(db, "device_id", list(by_id))
            found: dict[int, list[SupplyState]] = {}
            for r in sql.rows(db, _SUPPLIES_SQL.format(devices=where), params):
                fit = Fit(
                    since=_at(r[9]),
                    last_at=_at(r[10]),
                    last_percent=r[11],
                    replaced_at=_at(r[8]),
                    n=r[12],
                    sx=r[13],
                    sy=r[14],
                    sxx=r[15],
                    sxy=r[16],
                )
                f = fit.forecast()
                found.setdefault(r[0], []).append(
                    SupplyState(
                        device=by_id[r[0]],
                        description=r[2],
                        supply_kind=r[3],
                        color=r[4],
                        percent=r[5],
                        state=r[6],
                        observed_at=sql.utc(r[7]),
                        replaced_at=fit.replaced_at,
                        rate_per_day=None if f is None else f[0],
                        days_remaining=None if f is None or r[5] is None else f[1],
                        points=fit.n,
                    )
                )
            for d in part:
                out += found.get(d.id, [])
    return out


def _at(value: object) -> datetime | None:
    return None if value is None else sql.utc(value)


__all__ = ["DeviceState", "SupplyState", "devices", "supplies"]
