"""The alerts report: conditions open in each device's newest reading and those closed in the period."""

from __future__ import annotations

import itertools
import operator
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta

import msgspec

from ..db import sql
from ..db.connect import Database, translated
from .scope import DeviceInfo, Scope, bound_database, chunks, device_sort_key, devices_in_scope


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


#: Every reading of a chunk of devices in a time range with its alerts, device by device: one range
#: seek of the reading (device, time) index per device, its alerts by the reading's id
#: (``sql.join_each``; a reading without alerts comes once with NULLs). Each device's rows are
#: put in time order in Python.
READINGS_SQL = """
SELECT d.id, r.observed_at, r.id, r.reachability, r.conditions, a.id, a.code, a.severity, a.description
FROM device d {join_readings} {join_alerts}
WHERE {term_readings} AND {term_alerts} AND {devices}
ORDER BY d.id
"""

CHUNK = 500

#: {code: (severity, description, source)} of one reading
Codes = dict[str, tuple[str, str, str]]


def readings_query(
    db: Database, device_ids: Sequence[int], since: datetime, until: datetime
) -> tuple[str, list[object]]:
    where, params = sql.in_list(db, "d.id", device_ids)
    join_r, term_r = sql.join_each(
        db,
        "reading",
        "r",
        "r.id, r.observed_at, r.reachability, r.conditions",
        "r.device_id = d.id AND r.observed_at >= ? AND r.observed_at < ?",
    )
    join_a, term_a = sql.join_each(
        db, "alert_value", "a", "a.id, a.code, a.severity, a.description", "a.reading_id = r.id", left=True
    )
    query = READINGS_SQL.format(
        join_readings=join_r, join_alerts=join_a, term_readings=term_r, term_alerts=term_a, devices=where
    )
    return query, [sql.ts(db, since), sql.ts(db, until), *params]


def alert_readings(
    db: Database, device_ids: Iterable[int], *, since: datetime, until: datetime
) -> Iterator[tuple[int, list[tuple[datetime, Codes]]]]:
    """Per device (in id order), its reachable readings in time order, each with its codes."""
    for part in chunks(sorted(device_ids), CHUNK):
        q, params = readings_query(db, part, since, until)
        for dev, group in itertools.groupby(sql.rows(db, q, params), key=_FIRST):
            rows = list(group)
            # (reading, alert): a reading's alerts in the order stored (a reading without alerts
            # has one row, so no None is compared); rows come in this order already but for ties
            rows.sort(key=_READING_ALERT)
            readings: dict[int, tuple[datetime, Codes]] = {}
            for _, at, rid, reachability, conditions, _, code, severity, description in rows:
                if reachability == "unreachable":
                    continue  # says nothing about the device's conditions
                if rid not in readings:
                    codes: Codes = {}
                    if conditions:
                        for c in msgspec.json.decode(conditions):
                            codes[c] = ("condition", c.replace("_", " "), "condition")
                    readings[rid] = (sql.utc(at), codes)
                if code is not None:
                    readings[rid][1][code] = (severity, description or code.replace("_", " "), "alert")
            ordered = [(at, rid, codes) for rid, (at, codes) in readings.items()]
            ordered.sort(key=_TIME_READING)
            yield dev, [(at, codes) for at, _, codes in ordered]


_FIRST = operator.itemgetter(0)
_READING_ALERT = operator.itemgetter(2, 5)
_TIME_READING = operator.itemgetter(0, 1)


def alerts(scope: Scope, *, db: Database | None = None) -> Alerts:
    """Open alerts (in each device's newest reading) and alerts closed within the period."""
    db = db or bound_database()
    opened: list[AlertEpisode] = []
    closed: list[AlertEpisode] = []
    with translated("cannot build the alerts report"):
        infos = devices_in_scope(scope.customer)
        for dev, rows in alert_readings(db, infos, since=scope.start - ALERT_LOOKBACK, until=scope.end):
            _episodes(infos[dev], rows, scope, opened, closed)
    opened.sort(key=lambda e: (e.start, device_sort_key(e.device), e.code))
    closed.sort(key=lambda e: e.end or e.start, reverse=True)
    return Alerts(
        generated_at=scope.now,
        customer=scope.customer,
        start=scope.start,
        end=scope.end,
        open=opened,
        recent=closed,
    )


def _episodes(
    info: DeviceInfo,
    rows: list[tuple[datetime, Codes]],
    scope: Scope,
    opened: list[AlertEpisode],
    closed: list[AlertEpisode],
) -> None:
    """One device's episodes: each code from the first reading showing it to the first not showing it."""
    running: dict[str, tuple[datetime, tuple[str, str, str]]] = {}
    for at, codes in rows:
        for code in list(running):
            if code not in codes:
                began, (sev, desc, src) = running.pop(code)
                if at >= scope.start:
                    closed.append(
                        AlertEpisode(
                            device=info,
                            code=code,
                            severity=sev,
                            description=desc,
                            source=src,
                            start=began,
                            end=at,
                            duration_seconds=(at - began).total_seconds(),
                        )
                    )
        for code, what in codes.items():
            running.setdefault(code, (at, what))
    for code, (began, (sev, desc, src)) in running.items():
        opened.append(
            AlertEpisode(
                device=info,
                code=code,
                severity=sev,
                description=desc,
                source=src,
                start=began,
                end=None,
                duration_seconds=(scope.end - began).total_seconds(),
            )
        )


__all__ = [
    "ALERT_LOOKBACK",
    "CHUNK",
    "READINGS_SQL",
    "AlertEpisode",
    "Alerts",
    "Codes",
    "alert_readings",
    "alerts",
    "readings_query",
]
