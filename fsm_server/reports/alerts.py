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


#: Every reading of a chunk of devices in a time range, device by device: one range seek of the
#: reading (device, time) index per device (``sql.join_each``).
READINGS_SQL = """
SELECT d.id, r.observed_at, r.id, r.reachability, r.conditions
FROM device d {join_readings}
WHERE {term_readings} AND {devices}
ORDER BY d.id
"""

#: The alerts of the same devices and range: one range seek of the alert (device, time) index per
#: device, not one seek per reading (most readings have none). Alerts carry their reading's time.
ALERTS_SQL = """
SELECT a.reading_id, a.id, a.code, a.severity, a.description
FROM device d {join_alerts}
WHERE {term_alerts} AND {devices}
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
    query = READINGS_SQL.format(join_readings=join_r, term_readings=term_r, devices=where)
    return query, [sql.ts(db, since), sql.ts(db, until), *params]


def alerts_query(
    db: Database, device_ids: Sequence[int], since: datetime, until: datetime
) -> tuple[str, list[object]]:
    where, params = sql.in_list(db, "d.id", device_ids)
    join_a, term_a = sql.join_each(
        db,
        "alert_value",
        "a",
        "a.reading_id, a.id, a.code, a.severity, a.description",
        "a.device_id = d.id AND a.observed_at >= ? AND a.observed_at < ?",
    )
    query = ALERTS_SQL.format(join_alerts=join_a, term_alerts=term_a, devices=where)
    return query, [sql.ts(db, since), sql.ts(db, until), *params]


def alert_readings(
    db: Database, device_ids: Iterable[int], *, since: datetime, until: datetime
) -> Iterator[tuple[int, list[tuple[datetime, Codes]]]]:
    """Per device (in id order), its reachable readings in time order, each with its codes."""
    for part in chunks(sorted(device_ids), CHUNK):
        q, params = alerts_query(db, part, since, until)
        found = sorted(sql.rows(db, q, params))  # a reading's alerts in the order stored
        alerts: dict[int, list[tuple[str, str, str]]] = {}
        for rid, _, code, severity, description in found:
            alerts.setdefault(rid, []).append((code, severity, description))
        q, params = readings_query(db, part, since, until)
        for dev, group in itertools.groupby(sql.rows(db, q, params), key=_FIRST):
            readings: list[tuple[datetime, int, Codes]] = []
            for _, at, rid, reachability, conditions in group:
                if reachability == "unreachable":
                    continue  # says nothing about the device's conditions
                codes: Codes = {}
                if conditions:
                    for c in msgspec.json.decode(conditions):
                        codes[c] = ("condition", c.replace("_", " "), "condition")
                for code, severity, description in alerts.get(rid, ()):
                    codes[code] = (severity, description or code.replace("_", " "), "alert")
                readings.append((sql.utc(at), rid, codes))
            readings.sort(key=_TIME_READING)
            yield dev, [(at, codes) for at, _, codes in readings]


_FIRST = operator.itemgetter(0)
_TIME_READING = operator.itemgetter(0, 1)


def alerts(scope: Scope, *, db: Database | None = None) -> Alerts:
    """Open alerts (in each device's newest reading) and alerts closed within the period."""
    db = db or bound_database()
    opened: list[AlertEpisode] = []
    closed: list[AlertEpisode] = []
    with translated("cannot build the alerts report"):
        infos = devices_in_scope(scope.customer, dealer=scope.dealer)
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
    "ALERTS_SQL",
    "ALERT_LOOKBACK",
    "CHUNK",
    "READINGS_SQL",
    "AlertEpisode",
    "Alerts",
    "Codes",
    "alert_readings",
    "alerts",
    "alerts_query",
    "readings_query",
]
