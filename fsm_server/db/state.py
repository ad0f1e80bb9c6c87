"""State kept at ingest for what pages ask constantly: each device's newest reading and each
supply's newest level with its forecast fit, one row each (tables ``device_latest`` and
``supply_latest``; the newest counters are ``counter_latest``, which ingest kept already).

The loader calls ``after_load`` inside the load's transaction. A reading newer than the state
updates it in constant time: the fit is kept as least-squares sums over (days since the fit's
first level, percent) of every level since the supply's last replacement (a rise of at least
``REPLACEMENT_JUMP`` points). A reading that is not newer (a report that arrived late) makes its
device's state be computed again from the readings, so the state is always what ``rebuild``
computes from history (``fsm-server db rebuild-state``; a test checks the two agree).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import NamedTuple

import msgspec
import peewee

from . import sql
from .connect import Database

#: A level rising this many points is a replacement: the default of [reports] replacement_jump_percent.
REPLACEMENT_JUMP = 15.0
#: Supply states that are running out whatever the percent says.
LOW_STATES = ("low", "empty")
CHUNK = 500
#: A forecast further out than this is kept as this (a nearly flat line would overflow a date).
MAX_FORECAST_DAYS = 36500.0


def supply_key(kind: str, color: str | None, index: int | None, description: str) -> str:
    """Which supply of its device a level belongs to: kind, colour and slot (else the description)."""
    return f"{kind}|{color or ''}|{index if index is not None else description}"


class Fit(NamedTuple):
    """A supply's least-squares fit since its last replacement, as sums (x in days since ``since``)."""

    since: datetime | None = None
    last_at: datetime | None = None
    last_percent: float | None = None
    replaced_at: datetime | None = None
    n: int = 0
    sx: float = 0.0
    sy: float = 0.0
    sxx: float = 0.0
    sxy: float = 0.0

    def add(self, at: datetime, percent: float | None) -> Fit:
        """The fit with one more level (levels come in time order; None adds nothing)."""
        if percent is None:
            return self
        if self.since is None or (
            self.last_percent is not None and percent - self.last_percent >= REPLACEMENT_JUMP
        ):
            replaced = self.replaced_at if self.since is None else at
            return Fit(
                since=at,
                last_at=at,
                last_percent=percent,
                replaced_at=replaced,
                n=1,
                sx=0.0,
                sy=percent,
                sxx=0.0,
                sxy=0.0,
            )
        x = (at - self.since).total_seconds() / 86400
        return Fit(
            self.since,
            at,
            percent,
            self.replaced_at,
            self.n + 1,
            self.sx + x,
            self.sy + percent,
            self.sxx + x * x,
            self.sxy + x * percent,
        )

    def forecast(self, *, min_points: int = 3, min_span_days: float = 3.0) -> tuple[float, float] | None:
        """(percentage points used per day, days remaining from the newest level) by the fitted line,
        or None: too few levels, too short a span, or a level that is not falling."""
        if self.since is None or self.last_at is None or self.n < min_points:
            return None
        span = (self.last_at - self.since).total_seconds() / 86400
        denominator = self.n * self.sxx - self.sx * self.sx
        if span < min_span_days or denominator <= 0:
            return None
        slope = (self.n * self.sxy - self.sx * self.sy) / denominator
        if slope >= -1e-6:
            return None
        level = (self.sy - slope * self.sx) / self.n + slope * span
        return -slope, max(level, 0.0) / -slope


class Level(NamedTuple):
    """One supply level of one reading, as ``after_load`` and ``rebuild`` fold them."""

    device_id: int
    reading_id: int
    observed_at: datetime
    key: str
    description: str
    kind: str
    color: str | None
    percent: float | None
    state: str


class Newest(NamedTuple):
    """One reading's device-level fields, as ``device_latest`` keeps them."""

    device_id: int
    reading_id: int
    observed_at: datetime
    reachability: str
    device_status: str | None
    printer_status: str | None
    conditions: list[str] | None
    alerts: list[tuple[str, str]]


_SUPPLY_COLS = (
    "device_id",
    "key",
    "reading",
    "observed_at",
    "description",
    "kind",
    "color",
    "percent",
    "state",
    "since",
    "last_at",
    "last_percent",
    "replaced_at",
    "n",
    "sx",
    "sy",
    "sxx",
    "sxy",
    "empty_at",
)
_DEVICE_COLS = (
    "device_id",
    "reading",
    "observed_at",
    "reachability",
    "device_status",
    "printer_status",
    "conditions",
    "alerts",
    "lowest_supply",
)


def after_load(db: Database, newest: Sequence[Newest], levels: Sequence[Level]) -> None:
    """Fold a load's readings (``newest``: one per reading; ``levels``: their supplies) into the state."""
    if not newest:
        return
    ids = sorted({n.device_id for n in newest})
    current = _read_state(db, ids)
    devices = _read_devices(db, ids)
    late = {
        n.device_id
        for n in newest
        if n.device_id in devices and (n.observed_at, n.reading_id) <= devices[n.device_id]
    }
    late |= {
        lv.device_id
        for lv in levels
        if (lv.device_id, lv.key) in current and lv.observed_at <= current[(lv.device_id, lv.key)][0]
    }
    if late:
        rebuild(db, sorted(late))
    fits = {k: v[1] for k, v in current.items() if k[0] not in late}
    supply_rows: dict[tuple[int, str], tuple[object, ...]] = {}
    kept: dict[tuple[int, str], Level] = {}  # each supply's level as supply_latest keeps it
    for lv in sorted(
        (lv for lv in levels if lv.device_id not in late), key=lambda lv: (lv.observed_at, lv.reading_id)
    ):
        fit = fits.get((lv.device_id, lv.key), Fit()).add(lv.observed_at, lv.percent)
        fits[(lv.device_id, lv.key)] = fit
        supply_rows[(lv.device_id, lv.key)] = _supply_row(db, lv, fit)
        kept[(lv.device_id, lv.key)] = lv
    _write_supplies(db, list(supply_rows.values()))
    best: dict[int, Newest] = {}
    for n in newest:
        if n.device_id not in late and (
            n.device_id not in best
            or (n.observed_at, n.reading_id) > (best[n.device_id].observed_at, best[n.device_id].reading_id)
        ):
            best[n.device_id] = n
    by_device: dict[int, list[Level]] = {}
    for lv in kept.values():
        by_device.setdefault(lv.device_id, []).append(lv)
    _write_devices(db, [_device_row(db, n, by_device.get(n.device_id, [])) for n in best.values()])


#: One device's readings with their supplies, in any order (``rebuild`` sorts each device's few).
_LEVELS_SQL = """
SELECT r.device_id, r.id, r.observed_at, s.id, s."index", s.description, s.kind, s.color, s.percent, s.state
FROM reading r CROSS JOIN supply_value s
WHERE {devices} AND s.reading_id = r.id
ORDER BY r.device_id
"""
#: Each device's newest reading (the (device, time) index backwards) and its alerts.
_NEWEST_SQL = """
SELECT r.device_id, r.id, r.observed_at, r.reachability, r.device_status, r.printer_status, r.conditions,
       a.code, a.severity
FROM reading r LEFT JOIN alert_value a ON a.reading_id = r.id
WHERE {devices} AND r.id = (SELECT r2.id FROM reading r2 WHERE r2.device_id = r.device_id
                            ORDER BY r2.observed_at DESC, r2.id DESC LIMIT 1)
ORDER BY r.device_id, a.id
"""


def rebuild(db: Database, device_ids: Iterable[int] | None = None) -> int:
    """Compute the state of ``device_ids`` (default: every device) again from the readings; returns
    how many devices were done. Run inside a transaction for a consistent result."""
    if device_ids is None:
        ids = [r[0] for r in sql.rows(db, "SELECT id FROM device ORDER BY id")]
        db.peewee.execute_sql("DELETE FROM supply_latest")
        db.peewee.execute_sql("DELETE FROM device_latest")
    else:
        ids = sorted(set(device_ids))
    for part in [ids[i : i + CHUNK] for i in range(0, len(ids), CHUNK)]:
        if device_ids is not None:
            for table in ("supply_latest", "device_latest"):
                where, params = sql.in_list(db, "device_id", part)
                db.peewee.execute_sql(f"DELETE FROM {table} WHERE {where}", params)
        where, params = sql.in_list(db, "r.device_id", part)
        supply_rows = []
        kept: dict[int, list[Level]] = {}
        for dev, group in itertools.groupby(
            sql.rows(db, _LEVELS_SQL.format(devices=where), params), key=lambda r: r[0]
        ):
            fits: dict[str, tuple[Level, Fit]] = {}
            for r in sorted(group, key=lambda r: (sql.utc(r[2]), r[1], r[3])):
                lv = Level(
                    r[0],
                    r[1],
                    sql.utc(r[2]),
                    supply_key(r[6], r[7], r[4], r[5]),
                    r[5],
                    r[6],
                    r[7],
                    r[8],
                    r[9],
                )
                fit = fits[lv.key][1] if lv.key in fits else Fit()
                fits[lv.key] = (lv, fit.add(lv.observed_at, lv.percent))
            supply_rows += [_supply_row(db, lv, fit) for lv, fit in fits.values()]
            kept[dev] = [lv for lv, _ in fits.values()]
        _write_supplies(db, supply_rows)
        device_rows = []
        for _dev, group in itertools.groupby(
            sql.rows(db, _NEWEST_SQL.format(devices=where), params), key=lambda r: r[0]
        ):
            rows = list(group)
            d = rows[0]
            device_rows.append(
                _device_row(
                    db,
                    Newest(
                        d[0],
                        d[1],
                        sql.utc(d[2]),
                        d[3],
                        d[4],
                        d[5],
                        msgspec.json.decode(d[6]) if d[6] else None,
                        [(r[7], r[8]) for r in rows if r[7] is not None],
                    ),
                    kept.get(d[0], []),
                )
            )
        _write_devices(db, device_rows)
    return len(ids)


def _read_state(db: Database, ids: list[int]) -> dict[tuple[int, str], tuple[datetime, Fit]]:
    where, params = sql.in_list(db, "device_id", ids)
    out = {}
    for r in sql.rows(
        db,
        "SELECT device_id, key, observed_at, since, last_at, last_percent, replaced_at, "
        f"n, sx, sy, sxx, sxy FROM supply_latest WHERE {where}",
        params,
    ):
        out[(r[0], r[1])] = (
            sql.utc(r[2]),
            Fit(
                since=None if r[3] is None else sql.utc(r[3]),
                last_at=None if r[4] is None else sql.utc(r[4]),
                last_percent=r[5],
                replaced_at=None if r[6] is None else sql.utc(r[6]),
                n=r[7],
                sx=r[8],
                sy=r[9],
                sxx=r[10],
                sxy=r[11],
            ),
        )
    return out


def _read_devices(db: Database, ids: list[int]) -> dict[int, tuple[datetime, int]]:
    where, params = sql.in_list(db, "device_id", ids)
    return {
        dev: (sql.utc(at), rid)
        for dev, at, rid in sql.rows(
            db, f"SELECT device_id, observed_at, reading FROM device_latest WHERE {where}", params
        )
    }


def _opt_ts(db: Database, when: datetime | None) -> object:
    return None if when is None else sql.ts(db, when)


def empty_at(fit: Fit, percent: float | None) -> datetime | None:
    """When the fitted line reaches zero (None: no forecast, or the newest level has no percent):
    ``supply_latest.empty_at``, what the supplies page filters and sorts by."""
    f = fit.forecast()
    if f is None or percent is None or fit.last_at is None:
        return None
    return fit.last_at + timedelta(days=min(f[1], MAX_FORECAST_DAYS))


def _supply_row(db: Database, lv: Level, fit: Fit) -> tuple[object, ...]:
    return (
        lv.device_id,
        lv.key,
        lv.reading_id,
        sql.ts(db, lv.observed_at),
        lv.description,
        lv.kind,
        lv.color,
        lv.percent,
        lv.state,
        _opt_ts(db, fit.since),
        _opt_ts(db, fit.last_at),
        fit.last_percent,
        _opt_ts(db, fit.replaced_at),
        fit.n,
        fit.sx,
        fit.sy,
        fit.sxx,
        fit.sxy,
        _opt_ts(db, empty_at(fit, lv.percent)),
    )


def lowest_supply(levels: Iterable[Level]) -> float | None:
    """What ``device_latest.lowest_supply`` keeps of a reading's supply levels: the lowest percent,
    -1 when one is reported low or empty (so "at or below X, or low/empty" is ``<= X``), None when
    no level is known."""
    found = [-1.0 if lv.state in LOW_STATES else lv.percent for lv in levels]
    known = [p for p in found if p is not None]
    return min(known) if known else None


def _device_row(db: Database, n: Newest, levels: Iterable[Level]) -> tuple[object, ...]:
    """``n``'s row of device_latest; ``levels``: its device's supplies as kept (those of ``n``'s
    reading are its current ones)."""
    return (
        n.device_id,
        n.reading_id,
        sql.ts(db, n.observed_at),
        n.reachability,
        n.device_status,
        n.printer_status,
        msgspec.json.encode(n.conditions).decode() if n.conditions else None,
        msgspec.json.encode(n.alerts).decode() if n.alerts else None,
        lowest_supply(lv for lv in levels if lv.reading_id == n.reading_id),
    )


def _upsert(
    db: Database, table: str, cols: tuple[str, ...], key: tuple[str, ...], rows: list[tuple[object, ...]]
) -> None:
    if not rows:
        return
    ph = db.peewee.param
    sets = ", ".join(f'"{c}" = excluded."{c}"' for c in cols if c not in key)
    names = ", ".join(f'"{c}"' for c in cols)
    statement = (
        f"INSERT INTO {table} ({names}) VALUES ({', '.join([ph] * len(cols))}) "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {sets}"
    )
    with peewee.__exception_wrapper__:  # type: ignore[attr-defined]  # driver errors as peewee's
        db.peewee.cursor().executemany(statement, rows)


def _write_supplies(db: Database, rows: list[tuple[object, ...]]) -> None:
    _upsert(db, "supply_latest", _SUPPLY_COLS, ("device_id", "key"), rows)


def _write_devices(db: Database, rows: list[tuple[object, ...]]) -> None:
    _upsert(db, "device_latest", _DEVICE_COLS, ("device_id",), rows)


__all__ = [
    "CHUNK",
    "LOW_STATES",
    "MAX_FORECAST_DAYS",
    "REPLACEMENT_JUMP",
    "Fit",
    "Level",
    "Newest",
    "after_load",
    "empty_at",
    "lowest_supply",
    "rebuild",
    "supply_key",
]
