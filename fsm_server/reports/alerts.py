"""The alerts report: conditions open in each device's newest reading and those closed in the period."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

import msgspec

from ..db.connect import translated
from ..db.models import AlertValue, Reading
from .scope import DeviceInfo, Scope, chunks, device_sort_key, devices_in_scope


class AlertEpisode(msgspec.Struct, kw_only=True):
    """One condition on one device from the first reading showing it to the first not showing it."""

    device: DeviceInfo
    code: str
    severity: str
    description: str
    source: str  # "alert" (prtAlertTable) or "condition" (hrPrinterDetectedErrorState)
    start: datetime
    end: datetime | None  # None: still open in the newest reading
    duration_seconds: float


class Alerts(msgspec.Struct, kw_only=True, tag="alerts", tag_field="kind"):
    generated_at: datetime
    customer: str | None
    start: datetime
    end: datetime
    open: list[AlertEpisode]
    recent: list[AlertEpisode]  # closed within the period



#: How far before the period alerts are read, so an episode that began earlier gets its real start.
ALERT_LOOKBACK = timedelta(days=90)


def alert_readings(device_ids: Iterable[int], *, since: datetime, until: datetime
                   ) -> dict[int, list[tuple[datetime, dict[str, tuple[str, str, str]]]]]:
    """Per device, its readings in time order, each with {code: (severity, description, source)}."""
    by_reading: dict[int, dict[str, tuple[str, str, str]]] = defaultdict(dict)
    readings: dict[int, list[tuple[int, datetime]]] = defaultdict(list)
    for part in chunks(device_ids):
        q = (Reading.select(Reading.id, Reading.device, Reading.observed_at, Reading.conditions,
                            Reading.reachability)
             .where(Reading.device.in_(part), Reading.observed_at >= since, Reading.observed_at < until)
             .order_by(Reading.observed_at, Reading.id))
        ids = []
        for r in q:
            if r.reachability == "unreachable":
                continue  # says nothing about the device's conditions
            readings[r.device_id].append((r.id, r.observed_at))
            ids.append(r.id)
            for c in r.conditions or []:
                by_reading[r.id][c] = ("condition", c.replace("_", " "), "condition")
        for ids_part in chunks(ids):
            for a in AlertValue.select().where(AlertValue.reading.in_(ids_part)):
                by_reading[a.reading_id][a.code] = (a.severity, a.description or a.code.replace("_", " "),
                                                    "alert")
    return {dev: [(at, by_reading.get(rid, {})) for rid, at in rows] for dev, rows in readings.items()}


def alerts(scope: Scope) -> Alerts:
    """Open alerts (in each device's newest reading) and alerts closed within the period."""
    with translated("cannot build the alerts report"):
        infos = devices_in_scope(scope.customer)
        history = alert_readings(infos, since=scope.start - ALERT_LOOKBACK, until=scope.end)
    opened: list[AlertEpisode] = []
    closed: list[AlertEpisode] = []
    for dev, rows in history.items():
        running: dict[str, tuple[datetime, tuple[str, str, str]]] = {}
        for at, codes in rows:
            for code in list(running):
                if code not in codes:
                    began, (sev, desc, src) = running.pop(code)
                    if at >= scope.start:
                        closed.append(AlertEpisode(device=infos[dev], code=code, severity=sev,
                                                   description=desc, source=src, start=began, end=at,
                                                   duration_seconds=(at - began).total_seconds()))
            for code, what in codes.items():
                running.setdefault(code, (at, what))
        for code, (began, (sev, desc, src)) in running.items():
            opened.append(AlertEpisode(device=infos[dev], code=code, severity=sev, description=desc,
                                       source=src, start=began, end=None,
                                       duration_seconds=(scope.end - began).total_seconds()))
    opened.sort(key=lambda e: (e.start, device_sort_key(e.device), e.code))
    closed.sort(key=lambda e: (e.end or e.start), reverse=True)
    return Alerts(generated_at=scope.now, customer=scope.customer, start=scope.start, end=scope.end,
                  open=opened, recent=closed)



__all__ = ["ALERT_LOOKBACK", "AlertEpisode", "Alerts", "alert_readings", "alerts"]
