"""The newest state of each device as the portal shows it: status, conditions, supplies, alerts.

The portal reads "latest state" only through this module, and this module reads only the state
ingest keeps (``fsm_server.db.state``), never the readings' history: ``device_latest`` (per
device: its newest reading's status, conditions and alert codes), ``supply_latest`` (per supply:
its newest level) and ``counter_latest``. A page that filters or counts by state joins its query
over Device to ``device_latest`` (``with_state``) and narrows it with the expressions here
(``in_status``, ``alerting``, ``low_supply``); migration m023 indexes what they look at, so a
filter or a count reads index entries of the kept state, never readings.

Supplies "now" are those of the device's newest reading (``supply_latest`` rows whose reading is
``device_latest``'s): a supply the device stopped reporting keeps its row there, and is not shown.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, cast

import msgspec
import peewee
from peewee import JOIN

from ..db.models import AlertValue, Device, DeviceLatest, SupplyLatest
from ..db.state import LOW_STATES

if TYPE_CHECKING:

    class _StateRow(DeviceLatest):  # peewee's accessor for the primary-key foreign key
        device_id: int

    class _SupplyRow(SupplyLatest):
        device_id: int


class SupplyNow(msgspec.Struct, kw_only=True):
    description: str
    kind: str
    color: str | None
    percent: float | None
    state: str
    index: int | None = None


class AlertNow(msgspec.Struct, kw_only=True):
    code: str
    severity: str
    description: str
    source: str  # "alert" (prtAlertTable) or "condition" (hrPrinterDetectedErrorState)


def lowest(supplies: Iterable[SupplyNow]) -> SupplyNow | None:
    """The most urgent supply: empty, then low, then by percent, unknown levels last."""

    def rank(s: SupplyNow) -> tuple[int, float]:
        pct = s.percent if s.percent is not None else 0.0
        if s.state == "empty":
            return (0, pct)
        if s.state == "low":
            return (1, pct)
        return (2, pct) if s.percent is not None else (3, 0.0)

    return min(supplies, key=rank, default=None)


class LatestState(msgspec.Struct, kw_only=True):
    device_id: int
    reading_id: int
    observed_at: datetime
    reachability: str
    device_status: str | None
    printer_status: str | None
    supplies: list[SupplyNow] = msgspec.field(default_factory=list)
    alerts: list[AlertNow] = msgspec.field(default_factory=list)

    @property
    def lowest(self) -> SupplyNow | None:
        return lowest(self.supplies)


def with_state(query: peewee.ModelSelect[Device]) -> peewee.ModelSelect[Device]:
    """``query`` (over Device) LEFT JOINed to each device's kept state: a device without one (no
    reading yet) stays, with NULL state columns; a count that does not look at them drops the
    join (both databases remove an unused LEFT JOIN on a unique key)."""
    return query.join(DeviceLatest, JOIN.LEFT_OUTER, on=(DeviceLatest.device == Device.id)).switch(Device)


def alerting() -> peewee.Expression:
    """The newest reading (of a query joined ``with_state``) has alerts or error conditions
    (a partial index of m023 holds exactly these devices)."""
    return DeviceLatest.alerts.is_null(False) | DeviceLatest.conditions.is_null(False)


def in_status(status: str) -> peewee.Expression:
    """The status a list row shows is ``status``: the newest reading's device status when the
    device answered; "unreachable" and "alerts" look at its reachability and at its alerts and
    conditions."""
    if status == "unreachable":
        return DeviceLatest.reachability == "unreachable"
    if status == "alerts":
        return alerting()
    return (DeviceLatest.reachability == "ok") & (DeviceLatest.device_status == status)


def current(query: peewee.ModelSelect[SupplyLatest]) -> peewee.ModelSelect[SupplyLatest]:
    """``query`` (over SupplyLatest) narrowed to supplies of their device's newest reading."""
    return query.join(
        DeviceLatest,
        on=((DeviceLatest.device == SupplyLatest.device) & (DeviceLatest.reading == SupplyLatest.reading)),
    ).switch(SupplyLatest)


def low_supply(percent: float) -> peewee.Expression:
    """The device (of a query joined ``with_state``) has a supply of its newest reading low or
    empty or at or below ``percent`` (``device_latest.lowest_supply``, indexed)."""
    return DeviceLatest.lowest_supply <= percent


def supplies_now(device_ids: Collection[int]) -> dict[int, list[SupplyNow]]:
    """The supplies of each device's newest reading, by device id, in slot order (one query)."""
    if not device_ids:
        return {}
    q = (
        current(
            SupplyLatest.select(
                SupplyLatest.device,
                SupplyLatest.description,
                SupplyLatest.kind,
                SupplyLatest.color,
                SupplyLatest.percent,
                SupplyLatest.state,
                SupplyLatest.key,
            )
        )
        # the ids on both sides: PostgreSQL carries an equality, not an IN list, across a join
        .where(SupplyLatest.device.in_(sorted(device_ids)), DeviceLatest.device.in_(sorted(device_ids)))
        .order_by(SupplyLatest.device, SupplyLatest.key)
    )
    out: dict[int, list[SupplyNow]] = {}
    for s in cast("Iterable[_SupplyRow]", q):
        slot = s.key.rpartition("|")[2]
        out.setdefault(s.device_id, []).append(
            SupplyNow(
                description=s.description,
                kind=s.kind,
                color=s.color,
                percent=s.percent,
                state=s.state,
                index=int(slot) if slot.isdigit() else None,
            )
        )
    for found in out.values():
        found.sort(key=lambda s: (s.index is None, s.index or 0))  # report order: by slot
    return out


def conditions_now(conditions: list[str] | None) -> list[AlertNow]:
    """A reading's hrPrinterDetectedErrorState conditions as alerts."""
    return [
        AlertNow(code=c, severity="condition", description=c.replace("_", " "), source="condition")
        for c in conditions or []
    ]


def latest_states(device_ids: Collection[int]) -> dict[int, LatestState]:
    """Each device's newest state with its supplies and alerts, by device id (at most three
    queries: the state, its supplies, the descriptions of its alerts)."""
    if not device_ids:
        return {}
    rows = list(
        cast("Iterable[_StateRow]", DeviceLatest.select().where(DeviceLatest.device.in_(sorted(device_ids))))
    )
    supplies = supplies_now([r.device_id for r in rows])
    out = {
        r.device_id: LatestState(
            device_id=r.device_id,
            reading_id=r.reading,
            observed_at=r.observed_at,
            reachability=r.reachability,
            device_status=r.device_status,
            printer_status=r.printer_status,
            supplies=supplies.get(r.device_id, []),
            alerts=conditions_now(r.conditions),
        )
        for r in rows
    }
    by_reading = {out[r.device_id].reading_id: out[r.device_id] for r in rows if r.alerts}
    if by_reading:
        q = AlertValue.select().where(AlertValue.reading.in_(sorted(by_reading))).order_by(AlertValue.id)
        for a in q:
            by_reading[a.reading_id].alerts.append(
                AlertNow(
                    code=a.code,
                    severity=a.severity,
                    description=a.description or a.code.replace("_", " "),
                    source="alert",
                )
            )
    return out


__all__ = [
    "LOW_STATES",
    "AlertNow",
    "LatestState",
    "SupplyNow",
    "alerting",
    "conditions_now",
    "current",
    "in_status",
    "latest_states",
    "low_supply",
    "lowest",
    "supplies_now",
    "with_state",
]
