"""The dashboard: what needs attention in scope, as counts and short lists.

Every count reads indexes of the devices in scope and of the state ingest keeps (``latest``,
migration m023): devices and silent devices ``device (customer_id, last_seen, id)``, devices
with alerts the partial index of alerting states, devices with a supply running out
``device_latest (lowest_supply)`` (the count of the short list's devices page)."""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec

from ..config import ReportsSection
from ..db.connect import translated
from ..db.models import Device, Quarantine
from ..scoping import Scoped
from .clients import ClientView, client_views
from .devices import DeviceFilter, DevicePage, device_page
from .latest import alerting, with_state


class Dashboard(msgspec.Struct, kw_only=True):
    devices: int
    silent_devices: int
    clients: int
    silent_clients: list[ClientView]
    reporting_clients: int
    devices_with_alerts: int
    low_supplies: int  # devices with a supply low or empty or at or below low_percent
    low_supply_devices: DevicePage
    gaps: int  # missing report numbers
    quarantine: int | None  # held entries (admins and dealers)
    claims: int | None = None  # clients whose recent reports named another customer (admins, dealers)
    low_percent: float


def dashboard(scoped: Scoped, *, now: datetime, settings: ReportsSection | None = None) -> Dashboard:
    cfg = settings or ReportsSection()
    silence = now - timedelta(hours=cfg.expected_report_hours + cfg.silence_grace_hours)
    with translated("cannot build the dashboard"):
        devices = scoped.devices(Device.id).count()
        silent_devices = scoped.devices(Device.id).where(Device.last_seen < silence).count()
        with_alerts = with_state(scoped.devices(Device.id)).where(alerting()).count()
        quarantine = (
            scoped.quarantine(Quarantine.id).where(Quarantine.status == "held").count()
            if scoped.sees_quarantine
            else None
        )
    clients = client_views(scoped, now=now, settings=cfg)
    lowest = device_page(
        scoped,
        DeviceFilter(supply_max=cfg.low_supply_percent, sort="last_seen", desc=True),
        now=now,
        page_size=8,
    )
    return Dashboard(
        devices=devices,
        silent_devices=silent_devices,
        clients=len(clients),
        silent_clients=[c for c in clients if c.silent],
        reporting_clients=sum(1 for c in clients if not c.silent and c.status == "active"),
        devices_with_alerts=with_alerts,
        low_supplies=lowest.total,
        low_supply_devices=lowest,
        gaps=sum(g.count for c in clients for g in c.gaps),
        quarantine=quarantine,
        claims=sum(1 for c in clients if c.claims) if scoped.sees_quarantine else None,
        low_percent=cfg.low_supply_percent,
    )


__all__ = ["Dashboard", "dashboard"]
