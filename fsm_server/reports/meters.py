"""Meter reads per billing period: start and end meter of each counter of each device, and usage.

Rules (docs/reports.md, "Meters"):

- The start meter is the newest read at or before the period start; a device with none (added
  during the period) starts at its first read in the period, flagged ``added``.
- The end meter is the newest read before the period end; a device not read at all during the
  period is left out. A device that stopped reporting
  during the period (its last read is older than the expected report interval + grace before
  the period end) ends at its last read, flagged ``removed``.
- Usage is the sum of the steps between consecutive reads from start to end, so a counter that
  went backwards inside the period does not make usage negative: after a ``reset`` (or a
  ``device_swap``: a weak-identity device replaced by another) the counter is taken to have
  restarted from 0, so the step is the new value; after a ``wrap`` (a 32-bit counter passing
  4,294,967,295) the step is ``value + 2**32 - previous``. A ``jump`` (more pages than
  ``[ingest] max_pages_per_day`` allows) is counted as it is but flagged for a human to check.
  Flags come from the ingest pipeline; a decrease it did not flag (reports that arrived out of
  order) is classified here by the same policy.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import msgspec

from ..config import ReportsSection
from ..db import sql
from ..db.connect import Database, translated
from ..db.loader import CounterPolicy
from .scope import MAX_CHARTS, DeviceInfo, Scope, bound_database, chunks, device_facts, sorted_devices

_WRAP = 2**32


class MeterRow(msgspec.Struct, kw_only=True):
    device: DeviceInfo
    counter: str  # canonical name
    meter: str  # the ERP's name ([reports] meter_names), else the canonical one
    start_at: datetime
    start_value: int
    end_at: datetime
    end_value: int
    usage: int
    reads: int  # reads used, start and end included
    flags: list[str] = msgspec.field(default_factory=list)  # added, removed, reset, wrap, jump, device_swap
    #: counter_value ids of the start and end reads: where each number came from (billing's provenance)
    start_id: int = 0
    end_id: int = 0


class Meters(msgspec.Struct, kw_only=True, tag="meters", tag_field="kind"):
    generated_at: datetime
    customer: str | None
    start: datetime
    end: datetime
    rows: list[MeterRow]
    #: (observed_at, value) of the "total" counter (else the first counter) per device, for charts
    history: dict[int, list[tuple[datetime, int]]] = msgspec.field(default_factory=dict)


def previous_month(now: datetime | None = None) -> tuple[datetime, datetime]:
    """The last complete calendar month (UTC): the default billing period."""
    now = now or datetime.now(UTC)
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    start = (first - timedelta(days=1)).replace(day=1)
    return start, first


def step(previous: int, value: int, flag: str | None) -> int:
    """The pages between two consecutive reads of one counter, given how ingest flagged the second."""
    if flag in ("reset", "device_swap"):
        return value
    if flag == "wrap":
        return value + _WRAP - previous
    return value - previous


#: The newest read at or before the period start of each counter of a chunk of devices: two index
#: seeks per (device, counter) (the moment, then the first row at that moment), driven by
#: counter_latest, which holds one row per counter a device ever reported.
ANCHORS_SQL = """
SELECT a.device_id, a.name, a.observed_at, a.value, a.flag, a.id
FROM (SELECT cl.device_id AS device_id, cl.name AS name,
             (SELECT MIN(b.id) FROM counter_value b
              WHERE b.device_id = cl.device_id AND b.name = cl.name AND b.observed_at = (
                  SELECT MAX(c.observed_at) FROM counter_value c
                  WHERE c.device_id = cl.device_id AND c.name = cl.name AND c.observed_at <= ?)) AS id
      FROM counter_latest cl WHERE {devices}) x
JOIN counter_value a ON a.id = x.id
"""

#: Every read in the period of each counter of a chunk of devices, grouped by (device, counter) in
#: the order of counter_latest's key: one range seek of the (device, counter, time) index per
#: counter (``sql.join_each``), no sort of the period's rows (each counter's few reads are put in
#: time order in Python).
READS_SQL = """
SELECT cv.device_id, cv.name, cv.observed_at, cv.value, cv.flag, cv.id
FROM counter_latest cl {join}
WHERE {term} AND {devices}
ORDER BY cl.device_id, cl.name
"""

#: How many devices one pair of queries covers (what a streamed report holds at once).
CHUNK = 500


class _Read(NamedTuple):
    observed_at: datetime
    value: int
    flag: str | None
    id: int


_TIME_ID = operator.itemgetter(0, 3)


def anchors_query(db: Database, device_ids: Sequence[int], start: datetime) -> tuple[str, list[object]]:
    where, params = sql.in_list(db, "cl.device_id", device_ids)
    return ANCHORS_SQL.format(devices=where), [sql.ts(db, start), *params]


def reads_query(
    db: Database, device_ids: Sequence[int], start: datetime, end: datetime
) -> tuple[str, list[object]]:
    where, params = sql.in_list(db, "cl.device_id", device_ids)
    join, term = sql.join_each(
        db,
        "counter_value",
        "cv",
        "cv.device_id, cv.name, cv.observed_at, cv.value, cv.flag, cv.id",
        "cv.device_id = cl.device_id AND cv.name = cl.name AND cv.observed_at > ? AND cv.observed_at < ?",
    )
    query = READS_SQL.format(join=join, term=term, devices=where)
    return query, [sql.ts(db, start), sql.ts(db, end), *params]


def meter_rows(
    db: Database,
    scope: Scope,
    settings: ReportsSection | None = None,
    *,
    policy: CounterPolicy | None = None,
    history: dict[int, list[tuple[datetime, int]]] | None = None,
) -> Iterator[MeterRow]:
    """The meters report's rows in report order, as they are computed: ``CHUNK`` devices at a time,
    each chunk two queries. With ``history``, the series of the first ``MAX_CHARTS`` devices are
    put there for the charts."""
    cfg = settings or ReportsSection()
    policy = policy or CounterPolicy()
    removed_after = timedelta(hours=cfg.expected_report_hours + cfg.silence_grace_hours)
    utc = sql.utc
    with translated("cannot build the meters report"):
        infos = sorted_devices(scope.customer, scope.dealer)
        strong, first_seen = device_facts(db, [d.id for d in infos])
    for part in chunks(infos, CHUNK):
        ids = [d.id for d in part]
        with translated("cannot build the meters report"):
            q, params = anchors_query(db, ids, scope.start)
            anchors = {
                (dev, name): _Read(sql.utc(at), value, flag, rid)
                for dev, name, at, value, flag, rid in sql.rows(db, q, params)
            }
            q, params = reads_query(db, ids, scope.start, scope.end)
            found: dict[int, list[MeterRow]] = {}
            by_id = {d.id: d for d in part}
            for (dev, name), group in itertools.groupby(sql.rows(db, q, params), key=lambda r: (r[0], r[1])):
                if cfg.only_mapped_meters and name not in cfg.meter_names:
                    continue
                period = [_Read(utc(at), value, flag, rid) for _, _, at, value, flag, rid in group]
                period.sort(key=_TIME_ID)  # in index order already but for ties
                reads = _dedupe(anchors.get((dev, name)), period)
                row = _meter_row(
                    by_id[dev],
                    name,
                    reads,
                    cfg,
                    policy,
                    scope,
                    removed_after,
                    strong=strong[dev],
                    first_seen=first_seen[dev],
                )
                found.setdefault(dev, []).append(row)
                if (
                    history is not None
                    and (name == "total" or dev not in history)
                    and (dev in history or len(history) < MAX_CHARTS)
                ):
                    history[dev] = [(r.observed_at, r.value) for r in reads]
        for d in part:
            yield from sorted(found.get(d.id, ()), key=lambda r: r.counter)


def meters(
    scope: Scope,
    settings: ReportsSection | None = None,
    *,
    policy: CounterPolicy | None = None,
    with_history: bool = False,
    db: Database | None = None,
) -> Meters:
    """Start/end meters and usage of every counter of every device in scope over the period."""
    history: dict[int, list[tuple[datetime, int]]] | None = {} if with_history else None
    rows = list(meter_rows(db or bound_database(), scope, settings, policy=policy, history=history))
    return Meters(
        generated_at=scope.now,
        customer=scope.customer,
        start=scope.start,
        end=scope.end,
        rows=rows,
        history=history or {},
    )


def _meter_row(
    info: DeviceInfo,
    name: str,
    reads: list[_Read],
    cfg: ReportsSection,
    policy: CounterPolicy,
    scope: Scope,
    removed_after: timedelta,
    *,
    strong: bool,
    first_seen: datetime,
) -> MeterRow:
    flags: list[str] = []
    if reads[0].observed_at > scope.start and first_seen > scope.start:
        flags.append("added")
    if min(scope.end, scope.now) - reads[-1].observed_at > removed_after:
        flags.append("removed")
    usage = 0
    for prev, cur in itertools.pairwise(reads):
        flag = cur.flag
        if flag is None and cur.value < prev.value:
            flag = policy.flag(
                prev.value, cur.value, cur.observed_at - prev.observed_at, strong_identity=strong
            )
        usage += step(prev.value, cur.value, flag)
        if flag and flag not in flags:
            flags.append(flag)
    return MeterRow(
        device=info,
        counter=name,
        meter=cfg.meter_names.get(name, name),
        start_at=reads[0].observed_at,
        start_value=reads[0].value,
        end_at=reads[-1].observed_at,
        end_value=reads[-1].value,
        usage=usage,
        reads=len(reads),
        flags=flags,
        start_id=reads[0].id,
        end_id=reads[-1].id,
    )


def _dedupe(anchor: _Read | None, reads: Iterable[_Read]) -> list[_Read]:
    """The anchor then the period's reads, one per moment: the first stored (an alert report may
    carry the same observation as a periodic one)."""
    out: list[_Read] = [] if anchor is None else [anchor]
    for r in reads:
        if out and out[-1].observed_at == r.observed_at:
            if r.id < out[-1].id:
                out[-1] = r
            continue
        out.append(r)
    return out


__all__ = [
    "ANCHORS_SQL",
    "CHUNK",
    "READS_SQL",
    "MeterRow",
    "Meters",
    "anchors_query",
    "meter_rows",
    "meters",
    "previous_month",
    "reads_query",
    "step",
]
