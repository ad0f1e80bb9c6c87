"""The supplies report: current levels, days-remaining forecasts and replacements."""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import msgspec

from ..config import ReportsSection
from ..db import sql
from ..db.connect import Database, translated
from .forecast import Forecast, Replacement, forecast
from .scope import MAX_CHARTS, DeviceInfo, Scope, bound_database, chunks, device_sort_key, devices_in_scope
from .spill import sorted_payloads


class SupplyRow(msgspec.Struct, kw_only=True):
    device: DeviceInfo
    description: str
    supply_kind: str
    color: str | None
    percent: float | None
    state: str
    observed_at: datetime
    low: bool
    forecast: Forecast
    #: (observed_at, percent) over the forecast window and the period, for the chart
    history: list[tuple[datetime, float]] = msgspec.field(default_factory=list)


class Supplies(msgspec.Struct, kw_only=True, tag="supplies", tag_field="kind"):
    generated_at: datetime
    customer: str | None
    start: datetime
    end: datetime
    rows: list[SupplyRow]
    replacements_in_period: int = 0
    early_replacements_in_period: int = 0


#: Every supply level of a chunk of devices from ``since`` on, device by device: one range seek of
#: the reading (device, time) index per device, its supplies by the reading's id
#: (``sql.join_each``); each device's few rows are put in time order in Python.
LEVELS_SQL = """
SELECT d.id, r.observed_at, r.id, s.id, s."index", s.description, s.kind, s.color, s.percent, s.state
FROM device d {join_readings} {join_supplies}
WHERE {term_readings} AND {term_supplies} AND {devices}
ORDER BY d.id
"""

CHUNK = 500


class Level(NamedTuple):
    """One supply's level in one reading."""

    observed_at: datetime
    reading_id: int
    id: int
    slot: int | None  # the supply's index (prtMarkerSuppliesIndex) where there is one
    description: str
    kind: str
    color: str | None
    percent: float | None
    state: str


def levels_query(
    db: Database, device_ids: Sequence[int], since: datetime, until: datetime
) -> tuple[str, list[object]]:
    where, params = sql.in_list(db, "d.id", device_ids)
    join_r, term_r = sql.join_each(
        db,
        "reading",
        "r",
        "r.id, r.observed_at",
        "r.device_id = d.id AND r.observed_at >= ? AND r.observed_at < ?",
    )
    join_s, term_s = sql.join_each(
        db,
        "supply_value",
        "s",
        's.id, s."index", s.description, s.kind, s.color, s.percent, s.state',
        "s.reading_id = r.id",
    )
    query = LEVELS_SQL.format(
        join_readings=join_r, join_supplies=join_s, term_readings=term_r, term_supplies=term_s, devices=where
    )
    return query, [sql.ts(db, since), sql.ts(db, until), *params]


class Series(NamedTuple):
    """One supply of one device: its newest level and its (time, percent) history, in time order."""

    key: tuple[str, str, str]
    newest: Level
    history: list[tuple[datetime, float]]


def supply_series(
    db: Database, device_ids: Sequence[int], since: datetime, until: datetime
) -> Iterator[tuple[int, list[Series]]]:
    """Per device (in id order), each of its supplies' series, ``CHUNK`` devices a query."""
    utc = sql.utc
    for part in chunks(sorted(device_ids), CHUNK):
        q, params = levels_query(db, part, since, until)
        for dev, group in itertools.groupby(sql.rows(db, q, params), key=_FIRST):
            newest: dict[tuple[str, str, str], tuple[object, ...]] = {}
            history: dict[tuple[str, str, str], list[tuple[datetime, float]]] = {}
            rows = list(group)
            # (time, reading, supply value): times of one database compare right as they come;
            # the rows come in time order already, so this only checks them but for ties
            rows.sort(key=_TIME_READING_SUPPLY)
            keys: dict[tuple[object, ...], tuple[str, str, str]] = {}
            for r in rows:
                # which supply of the device: kind, colour and slot (else its description), made
                # once per supply of the device rather than once per level
                raw = r[4:8]
                key = keys.get(raw)
                if key is None:
                    key = keys[raw] = (r[6], r[7] or "", str(r[4]) if r[4] is not None else r[5])
                    history[key] = history.get(key, [])
                newest[key] = r
                if r[8] is not None:
                    history[key].append((utc(r[1]), r[8]))
            yield (
                dev,
                [
                    Series(key, Level(utc(r[1]), *r[2:]), history[key])  # type: ignore[arg-type]
                    for key, r in newest.items()
                ],
            )


_FIRST = operator.itemgetter(0)
_TIME_READING_SUPPLY = operator.itemgetter(1, 2, 3)


def supplies(
    scope: Scope,
    settings: ReportsSection | None = None,
    *,
    with_history: bool = False,
    db: Database | None = None,
) -> Supplies:
    """Current levels, days-remaining forecasts and replacements of every supply in scope.

    Holds one row per supply (the report is sorted by urgency across the fleet), never the
    period's readings; the charts' history is read again for the first ``MAX_CHARTS`` devices.
    ``sorted_supplies`` gives the same rows without holding them.
    """
    cfg = settings or ReportsSection()
    db = db or bound_database()
    head = _head(scope)
    rows = []
    keys: dict[int, tuple[int, tuple[str, str, str]]] = {}  # id(row) -> (device, supply key)
    with translated("cannot build the supplies report"):
        for row, dev, key in supply_rows(db, scope, cfg, head):
            rows.append(row)
            keys[id(row)] = (dev, key)
        rows.sort(key=report_order)
        if with_history:
            _add_history(db, rows, keys, _since(scope, cfg), scope.end)
    head.rows = rows
    return head


def sorted_supplies(
    scope: Scope, settings: ReportsSection | None, encode: Callable[[SupplyRow], Any]
) -> tuple[Supplies, Iterator[Any]]:
    """The report without its rows (its counts final) and ``encode`` of each row in report order,
    holding at most ``spill.RUN`` rows whatever the fleet's size (the rest in temporary files)."""
    cfg = settings or ReportsSection()
    db = bound_database()
    head = _head(scope)
    with translated("cannot build the supplies report"):
        ordered = sorted_payloads(
            (report_order(row), encode(row)) for row, _, _ in supply_rows(db, scope, cfg, head)
        )
    return head, ordered


def supply_rows(
    db: Database, scope: Scope, cfg: ReportsSection, head: Supplies
) -> Iterator[tuple[SupplyRow, int, tuple[str, str, str]]]:
    """Each supply in scope as a row with its device id and supply key, device by device; the
    replacements within the period are counted into ``head`` on the way."""
    infos = devices_in_scope(scope.customer, dealer=scope.dealer)
    for dev, series in supply_series(db, list(infos), _since(scope, cfg), scope.end):
        for one in series:
            row = _supply_row(infos[dev], one, cfg, scope)
            in_period = [r for r in row.forecast.replacements if scope.start <= r.at < scope.end]
            head.replacements_in_period += len(in_period)
            head.early_replacements_in_period += sum(r.early for r in in_period)
            yield row, dev, one.key


def report_order(row: SupplyRow) -> tuple[bool, float, float, str, str, str, str]:
    """The report's order: soonest empty first, then those without a forecast; then by percent,
    then by device."""
    return (
        row.forecast.days_remaining is None,
        row.forecast.days_remaining or 0.0,
        row.percent if row.percent is not None else 101.0,
        *device_sort_key(row.device),
    )


def _head(scope: Scope) -> Supplies:
    return Supplies(
        generated_at=scope.now, customer=scope.customer, start=scope.start, end=scope.end, rows=[]
    )


def _since(scope: Scope, cfg: ReportsSection) -> datetime:
    return min(scope.start, scope.end - timedelta(days=cfg.forecast_window_days + 1))


def _supply_row(info: DeviceInfo, series: Series, cfg: ReportsSection, scope: Scope) -> SupplyRow:
    newest = series.newest
    f = forecast(
        series.history,
        now=scope.end,
        window_days=cfg.forecast_window_days,
        min_span_days=cfg.forecast_min_span_days,
        min_points=cfg.forecast_min_points,
        replacement_jump=cfg.replacement_jump_percent,
        early_percent=cfg.early_replacement_percent,
    )
    if newest.percent is None:
        f.days_remaining = f.empty_at = f.rate_per_day = None
        f.reason = f"the device reports no percent level (state {newest.state})"
    low = newest.state in ("low", "empty") or (
        newest.percent is not None and newest.percent <= cfg.low_supply_percent
    )
    return SupplyRow(
        device=info,
        description=newest.description,
        supply_kind=newest.kind,
        color=newest.color,
        percent=newest.percent,
        state=newest.state,
        observed_at=newest.observed_at,
        low=low,
        forecast=f,
    )


def _add_history(
    db: Database,
    rows: list[SupplyRow],
    keys: dict[int, tuple[int, tuple[str, str, str]]],
    since: datetime,
    until: datetime,
) -> None:
    """Fill ``history`` of the rows of the first ``MAX_CHARTS`` devices (in report order)."""
    charted: list[int] = []
    for row in rows:
        if row.device.id not in charted and len(charted) < MAX_CHARTS:
            charted.append(row.device.id)
    wanted = {keys[id(r)]: r for r in rows if r.device.id in charted}
    for dev, series in supply_series(db, charted, since, until):
        for one in series:
            found = wanted.get((dev, one.key))
            if found is not None:
                found.history = one.history


def supply_rank(row: SupplyRow) -> tuple[int, float]:
    """How urgent a supply is, most urgent first: empty, then low (by the device's state, whatever
    its percent), then by percent, then supplies whose level is unknown."""
    pct = row.percent if row.percent is not None else 0.0
    if row.state == "empty":
        return (0, pct)
    if row.state == "low":
        return (1, pct)
    return (2, pct) if row.percent is not None else (3, 0.0)


def lowest_supplies(rows: Iterable[SupplyRow]) -> dict[int, SupplyRow]:
    """Each device's most urgent supply (``supply_rank``), by device id: a Brother whose black toner
    is empty (it reports no percent) shows the toner, not its drum at 69 %."""
    out: dict[int, SupplyRow] = {}
    for row in rows:
        best = out.get(row.device.id)
        if best is None or supply_rank(row) < supply_rank(best):
            out[row.device.id] = row
    return out


def supply_replacements(rows: list[SupplyRow], scope: Scope) -> list[tuple[SupplyRow, Replacement]]:
    """The replacements within the period, newest first, with the supply they belong to."""
    out = [(r, rep) for r in rows for rep in r.forecast.replacements if scope.start <= rep.at < scope.end]
    return sorted(out, key=lambda x: x[1].at, reverse=True)


__all__ = [
    "CHUNK",
    "LEVELS_SQL",
    "Level",
    "Series",
    "Supplies",
    "SupplyRow",
    "levels_query",
    "lowest_supplies",
    "report_order",
    "sorted_supplies",
    "supplies",
    "supply_rank",
    "supply_replacements",
    "supply_rows",
    "supply_series",
]
