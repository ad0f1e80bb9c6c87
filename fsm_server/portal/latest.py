"""The newest reading of each device: its status, conditions, supplies and alerts.

The portal reads "latest state" only through this module, so it can be pointed at a table of
per-device state once ingest keeps one. Today the newest reading is the one whose
``observed_at`` is the device's ``last_seen`` (the loader keeps them equal), found through the
``reading (device_id, observed_at)`` index.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime
from typing import cast

import msgspec
import peewee

from ..db.models import AlertValue, Device, Reading, SupplyValue


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


class LatestState(msgspec.Struct, kw_only=True):
    device_id: int
    reading_id: int
    envelope_id: int
    observed_at: datetime
    reachability: str
    device_status: str | None
    printer_status: str | None
    supplies: list[SupplyNow] = msgspec.field(default_factory=list)
    alerts: list[AlertNow] = msgspec.field(default_factory=list)

    @property
    def lowest(self) -> SupplyNow | None:
        """The most urgent supply: empty, then low, then by percent, unknown levels last."""

        def rank(s: SupplyNow) -> tuple[int, float]:
            pct = s.percent if s.percent is not None else 0.0
            if s.state == "empty":
                return (0, pct)
            if s.state == "low":
                return (1, pct)
            return (2, pct) if s.percent is not None else (3, 0.0)

        return min(self.supplies, key=rank) if self.supplies else None


def latest_join(query: peewee.ModelSelect[Device]) -> peewee.ModelSelect[Device]:
    """``query`` (over Device) joined to each device's newest reading."""
    return query.join(Reading, on=((Reading.device == Device.id) & (Reading.observed_at == Device.last_seen)))


def newest_reading_of_outer_device() -> peewee.ModelSelect[Reading]:
    """Readings that are the newest of the ``device`` row of the enclosing query (for EXISTS)."""
    return Reading.select(Reading.id).where(
        (Reading.device == Device.id) & (Reading.observed_at == Device.last_seen)
    )


def latest_states(device_ids: Collection[int]) -> dict[int, LatestState]:
    """Each device's newest reading with its supplies and alerts, by device id (three queries)."""
    if not device_ids:
        return {}
    q = latest_join(
        Device.select(
            Reading.id,
            Reading.device,
            Reading.envelope,
            Reading.observed_at,
            Reading.reachability,
            Reading.device_status,
            Reading.printer_status,
            Reading.conditions,
        )
    ).where(Device.id.in_(list(device_ids)))
    out: dict[int, LatestState] = {}
    for r in cast("Iterable[Reading]", q.objects(Reading)):  # rows made as Reading
        known = out.get(r.device_id)
        if known is not None and known.reading_id > r.id:
            continue  # two readings at one instant (a resend): the later loaded wins
        out[r.device_id] = LatestState(
            device_id=r.device_id,
            reading_id=r.id,
            envelope_id=r.envelope_id,
            observed_at=r.observed_at,
            reachability=r.reachability,
            device_status=r.device_status,
            printer_status=r.printer_status,
            alerts=[
                AlertNow(code=c, severity="condition", description=c.replace("_", " "), source="condition")
                for c in r.conditions or []
            ],
        )
    by_reading = {s.reading_id: s for s in out.values()}
    for s in SupplyValue.select().where(SupplyValue.reading.in_(list(by_reading))).order_by(SupplyValue.id):
        by_reading[s.reading_id].supplies.append(
            SupplyNow(
                description=s.description,
                kind=s.kind,
                color=s.color,
                percent=s.percent,
                state=s.state,
                index=s.index,
            )
        )
    for a in AlertValue.select().where(AlertValue.reading.in_(list(by_reading))).order_by(AlertValue.id):
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
    "AlertNow",
    "LatestState",
    "SupplyNow",
    "latest_join",
    "latest_states",
    "newest_reading_of_outer_device",
]
