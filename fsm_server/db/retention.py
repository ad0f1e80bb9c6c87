"""Retention: readings older than ``[retention] raw_days`` are reduced to what billing needs, and
readings older than ``keep_days`` are removed, a few hundred per transaction while ingest goes on.

What stays of a downsampled day of a device (UTC days, so month boundaries are day boundaries):

- its last reading of the day, and for each page counter the last reading carrying it: the
  meters report's start (the newest read at or before the period start) and end (the newest
  read before the period end) are the same before and after;
- each reading with a flagged counter (reset, wrap, device swap, jump) and, for each flagged
  counter, the reading before it that carries the counter: usage across a reset or a wrap is the
  same; between kept reads a counter only grows, so the steps in between add up to the same.

Each batch is one transaction that only deletes; what to keep is decided from what is still
there, which a killed run leaves consistent, so running it again finishes the work and keeps
the same readings. ``retention_mark`` records how far it got, so a daily run reads one new day.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta

import msgspec

from . import sql
from .connect import Database, translated

MARK = "downsampled_before"

#: The window's readings of a chunk of devices with their counters (a reading without counters
#: comes once with NULLs): the reading (device, time) index, counters by the reading's id.
_WINDOW_SQL = """
SELECT r.device_id, r.id, r.observed_at, c.name, c.flag
FROM reading r LEFT JOIN counter_value c ON c.reading_id = r.id
WHERE {devices} AND r.observed_at >= ? AND r.observed_at < ?
ORDER BY r.device_id
"""


class RetentionResult(msgspec.Struct, kw_only=True):
    """What one run did."""

    downsampled_before: datetime  # readings before this are one per device and day (and counter)
    removed_before: datetime  # readings before this are gone
    devices: int
    readings_removed: int
    batches: int


def day_start(when: datetime) -> datetime:
    return datetime.combine(when.astimezone(UTC).date(), time(), tzinfo=UTC)


def to_remove(rows: list[tuple[int, datetime, str | None, str | None]]) -> set[int]:
    """Of one device's readings ``(reading id, observed_at, counter name, flag)`` (one row per
    counter; name None for a reading without counters), the ids downsampling removes."""
    order = sorted({(at, rid) for rid, at, _, _ in rows})
    position = {rid: i for i, (_, rid) in enumerate(order)}
    keep: set[int] = set()
    last_of_day: dict[object, int] = {}
    last_of_counter: dict[tuple[object, str], int] = {}
    carrying: dict[str, list[int]] = {}  # counter -> positions of the readings carrying it
    for rid, at, name, _ in rows:
        day = at.date()
        if day not in last_of_day or position[rid] > position[last_of_day[day]]:
            last_of_day[day] = rid
        if name is not None:
            key = (day, name)
            if key not in last_of_counter or position[rid] > position[last_of_counter[key]]:
                last_of_counter[key] = rid
            carrying.setdefault(name, []).append(position[rid])
    keep |= set(last_of_day.values()) | set(last_of_counter.values())
    for positions in carrying.values():
        positions.sort()
    for rid, _, name, flag in rows:
        if flag is not None and name is not None:
            keep.add(rid)
            positions = carrying[name]
            i = positions.index(position[rid])
            if i > 0:
                keep.add(order[positions[i - 1]][1])
    return {rid for _, rid in order} - keep


def apply_retention(
    db: Database,
    *,
    raw_days: int = 400,
    keep_days: int = 3650,
    batch: int = 500,
    now: datetime | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> RetentionResult:
    """Downsample readings older than ``raw_days`` and remove those older than ``keep_days``;
    ``on_batch`` is called with the readings removed after each committed transaction."""
    now = now or datetime.now(UTC)
    cutoff = day_start(now - timedelta(days=raw_days))
    horizon = day_start(now - timedelta(days=max(keep_days, raw_days)))
    removed = batches = 0
    pending: list[int] = []

    def flush() -> None:
        nonlocal removed, batches, pending
        while pending:
            part, pending = pending[:batch], pending[batch:]
            where, params = sql.in_list(db, "reading_id", part)
            with translated("cannot remove old readings"), db.atomic():
                for table in ("counter_value", "supply_value", "alert_value"):
                    db.peewee.execute_sql(f"DELETE FROM {table} WHERE {where}", params)
                db.peewee.execute_sql(
                    f"DELETE FROM reading WHERE {where.replace('reading_id', 'id')}", params
                )
            removed += len(part)
            batches += 1
            if on_batch is not None:
                on_batch(len(part))

    with translated("cannot read the retention mark"):
        marks = list(sql.rows(db, "SELECT at FROM retention_mark WHERE name = ?", [MARK]))
        device_ids = [r[0] for r in sql.rows(db, "SELECT id FROM device ORDER BY id")]
    # One day back from the mark: a kill after the mark's day was written is redone.
    since = max(horizon, sql.utc(marks[0][0]) - timedelta(days=1)) if marks else horizon
    # 50 devices at a time: a first run over years of history holds their removals only
    for part in [device_ids[i : i + 50] for i in range(0, len(device_ids), 50)]:
        with translated("cannot read old readings"):
            where, params = sql.in_list(db, "device_id", part)
            old = f"SELECT id FROM reading WHERE {where} AND observed_at < ?"
            pending += [r[0] for r in sql.rows(db, old, [*params, sql.ts(db, horizon)])]
            where, params = sql.in_list(db, "r.device_id", part)
            rows = sql.rows(
                db, _WINDOW_SQL.format(devices=where), [*params, sql.ts(db, since), sql.ts(db, cutoff)]
            )
            for _dev, group in itertools.groupby(rows, key=lambda r: r[0]):
                found = [(rid, sql.utc(at), name, flag) for _, rid, at, name, flag in group]
                pending += sorted(to_remove(found))
        if len(pending) >= batch:
            flush()
    flush()
    if since < cutoff:
        with translated("cannot write the retention mark"), db.atomic():
            db.peewee.execute_sql(f"DELETE FROM retention_mark WHERE name = {db.peewee.param}", [MARK])
            db.peewee.execute_sql(
                f"INSERT INTO retention_mark (name, at) VALUES ({db.peewee.param}, {db.peewee.param})",
                [MARK, sql.ts(db, cutoff)],
            )
    return RetentionResult(
        downsampled_before=cutoff,
        removed_before=horizon,
        devices=len(device_ids),
        readings_removed=removed,
        batches=batches,
    )


__all__ = ["MARK", "RetentionResult", "apply_retention", "day_start", "to_remove"]
