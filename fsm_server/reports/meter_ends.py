"""The meters report's start/end reads, usage and flags computed without reading the period's reads
into Python: what billing collects. The same numbers, flags and provenance ids as
``meters.meter_rows`` (docs/reports.md, "Meters"); ``reads`` is not counted (0).

Usage is ``end - start`` plus what the steps flagged between them add (``meters.step``: the
previous value at a reset or swap, 2**32 at a wrap). Ingest flags each read against the newest
read of its counter then stored (``counter_value.flag``, ``previous``), which is the read before it
in time unless a report came late: such reads are marked ``late``. So per counter the database
seeks the start read, the end read, and the reads between them that are flagged or late (the
partial index ``counter_value_doubt``): a handful, usually none. Only for a counter with a late read
between its start and end does it walk every read of the period (``WALK_SQL``: window functions,
the same on SQLite and PostgreSQL), classifying a decrease ingest did not flag as
``CounterPolicy.flag`` does: ``wrap`` in SQL (it depends on the values only), ``reset`` or
``device_swap`` here (it depends on the device's identity). Flags keep the order ``meter_rows``
gives them: by the moment each kind first occurred.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from ..config import ReportsSection
from ..db import sql
from ..db.connect import Database, translated
from ..db.loader import CounterPolicy
from .meters import CHUNK, MeterRow
from .scope import DeviceInfo, Scope, chunks, device_facts, sorted_devices

_WRAP = 2**32
#: The flags of a step, in the column order of ``WALK_SQL``; ``decrease`` is one ingest did not flag.
_KINDS = ("reset", "device_swap", "decrease", "wrap", "jump")

#: Per counter of a chunk of devices: the start read (the newest at or before the period start,
#: else the first in the period) and the end read (the newest before the end), the first stored
#: of its moment; a counter not read during the period has no end and is left out. Index seeks:
#: on SQLite, subqueries giving the two ids; on PostgreSQL, LATERAL subqueries giving the rows
#: (joining the ids as SQLite does, it hash-joins counter_value whole). There the end is the
#: newest read before the end, kept when it is after the start (bounding the seek on both sides
#: made it a third slower), and a counter with no read at or before the start gets its first
#: read in the period from ``FIRSTS_SQL_PG`` (a seek falling back to another in the same query
#: cost every counter a tenth more).
ENDS_SQL = """
SELECT x.device_id, x.name, s.observed_at, s.value, s.id, e.observed_at, e.value, e.id{sources}
FROM (SELECT cl.device_id AS device_id, cl.name AS name,
             COALESCE(
                 (SELECT c.id FROM counter_value c WHERE c.device_id = cl.device_id AND c.name = cl.name
                  AND c.observed_at <= ? ORDER BY c.observed_at DESC, c.id LIMIT 1),
                 (SELECT c.id FROM counter_value c WHERE c.device_id = cl.device_id AND c.name = cl.name
                  AND c.observed_at > ? AND c.observed_at < ? ORDER BY c.observed_at, c.id LIMIT 1)
             ) AS start_id,
             (SELECT c.id FROM counter_value c WHERE c.device_id = cl.device_id AND c.name = cl.name
              AND c.observed_at > ? AND c.observed_at < ? ORDER BY c.observed_at DESC, c.id LIMIT 1
             ) AS end_id
      FROM counter_latest cl WHERE {devices}) x
JOIN counter_value s ON s.id = x.start_id
JOIN counter_value e ON e.id = x.end_id
{envelopes}
"""
ENDS_SQL_PG = """
SELECT cl.device_id, cl.name, s.observed_at, s.value, s.id, e.observed_at, e.value, e.id{sources}
FROM counter_latest cl
CROSS JOIN LATERAL (
    SELECT c.observed_at, c.value, c.id, c.reading_id FROM counter_value c
    WHERE c.device_id = cl.device_id AND c.name = cl.name AND c.observed_at < %s
    ORDER BY c.observed_at DESC, c.id LIMIT 1) e
LEFT JOIN LATERAL (
    SELECT c.observed_at, c.value, c.id, c.reading_id FROM counter_value c
    WHERE c.device_id = cl.device_id AND c.name = cl.name AND c.observed_at <= %s
    ORDER BY c.observed_at DESC, c.id LIMIT 1) s ON TRUE
{envelopes}
WHERE e.observed_at > %s AND {devices}
"""
#: PostgreSQL, per counter of a chunk's devices: the first read in the period, the start of a
#: counter ``ENDS_SQL_PG`` found no read at or before the period start for (a device added).
FIRSTS_SQL_PG = """
SELECT cl.device_id, cl.name, s.observed_at, s.value, s.id{sources}
FROM counter_latest cl
CROSS JOIN LATERAL (
    SELECT c.observed_at, c.value, c.id, c.reading_id FROM counter_value c
    WHERE c.device_id = cl.device_id AND c.name = cl.name AND c.observed_at > %s AND c.observed_at < %s
    ORDER BY c.observed_at, c.id LIMIT 1) s
{envelopes}
WHERE {devices}
"""
#: With ``sources``: the envelope (client, seq, sha256) of the start and the end read.
_SOURCES = ", sc.name, se.seq, se.sha256, ec.name, ee.seq, ee.sha256"
_START_ENVELOPE = """{join} reading sr ON sr.id = s.reading_id {join} envelope se ON se.id = sr.envelope_id
{join} client sc ON sc.id = se.client_id"""
_END_ENVELOPE = """JOIN reading er ON er.id = e.reading_id JOIN envelope ee ON ee.id = er.envelope_id
JOIN client ec ON ec.id = ee.client_id"""
_ENVELOPES = _START_ENVELOPE.format(join="JOIN") + "\n" + _END_ENVELOPE
_ENVELOPES_PG = _START_ENVELOPE.format(join="LEFT JOIN") + "\n" + _END_ENVELOPE

#: The flagged or late reads of a chunk's devices in a time range: the partial index
#: ``counter_value_doubt``, one seek per device (a handful of rows, usually none).
DOUBTS_SQL = """
SELECT cv.device_id, cv.name, cv.observed_at, cv.flag, cv.late, cv.previous
FROM counter_value cv
WHERE {devices} AND (cv.flag IS NOT NULL OR cv.late) AND cv.observed_at >= ? AND cv.observed_at < ?
"""

#: Per counter of a chunk of devices: every read from the start read to the period end, one per
#: moment (the first stored), walked in time order; what the steps add to ``end - start`` and when
#: each kind of flag first occurred.
WALK_SQL = """
SELECT device_id, name, MIN(observed_at), MAX(observed_at),
       MAX(CASE WHEN pv IS NULL THEN value END), MAX(CASE WHEN nv IS NULL THEN value END),
       MAX(CASE WHEN pv IS NULL THEN id END), MAX(CASE WHEN nv IS NULL THEN id END),
       SUM(CASE WHEN ef IN ('reset', 'device_swap', 'decrease') THEN pv WHEN ef = 'wrap' THEN {wrap}
           ELSE 0 END),
       MIN(CASE WHEN ef = 'reset' THEN observed_at END),
       MIN(CASE WHEN ef = 'device_swap' THEN observed_at END),
       MIN(CASE WHEN ef = 'decrease' THEN observed_at END),
       MIN(CASE WHEN ef = 'wrap' THEN observed_at END),
       MIN(CASE WHEN ef = 'jump' THEN observed_at END)
FROM (
    SELECT device_id, name, observed_at, value, id, pv, nv,
           CASE WHEN pv IS NULL THEN NULL
                WHEN flag IS NOT NULL THEN flag
                WHEN value < pv THEN
                    CASE WHEN pv >= {wrap_high} AND value < {wrap_low} THEN 'wrap' ELSE 'decrease' END
           END AS ef
    FROM (
        SELECT device_id, name, observed_at, value, flag, id,
               LAG(value) OVER w AS pv, LEAD(value) OVER w AS nv
        FROM (
            SELECT cv.device_id AS device_id, cv.name AS name, cv.observed_at AS observed_at,
                   cv.value AS value, cv.flag AS flag, cv.id AS id,
                   ROW_NUMBER() OVER (PARTITION BY cv.device_id, cv.name, cv.observed_at
                                      ORDER BY cv.id) AS nth
            FROM (SELECT cl.device_id AS device_id, cl.name AS name,
                         COALESCE((SELECT MAX(c.observed_at) FROM counter_value c
                                   WHERE c.device_id = cl.device_id AND c.name = cl.name
                                   AND c.observed_at <= ?), ?) AS since
                  FROM counter_latest cl WHERE {devices}) b
            {join}
            WHERE {term}
        ) r
        WHERE nth = 1
        WINDOW w AS (PARTITION BY device_id, name ORDER BY observed_at)
    ) s
) f
GROUP BY device_id, name
HAVING MAX(observed_at) > ?
"""

_Key = tuple[int, str]
Source = tuple[str, int, str]  # the (client, seq, sha256) of an envelope
#: (start_at, start_value, start_id, end_at, end_value, end_id, added to end - start, first
#: moment of each kind of flag in ``_KINDS`` order)
_Ends = tuple[datetime, int, int, datetime, int, int, int, list[datetime | None]]


def ends_query(
    db: Database, device_ids: Sequence[int], start: datetime, end: datetime, *, sources: bool = False
) -> tuple[str, list[object]]:
    where, params = sql.in_list(db, "cl.device_id", device_ids)
    s, e = sql.ts(db, start), sql.ts(db, end)
    parts = {"sources": _SOURCES if sources else "", "envelopes": _ENVELOPES if sources else ""}
    if db.kind == "postgresql":
        parts["envelopes"] = _ENVELOPES_PG if sources else ""
        return ENDS_SQL_PG.format(devices=where, **parts), [e, s, s, *params]
    return ENDS_SQL.format(devices=where, **parts), [s, s, e, s, e, *params]


def firsts_query(
    db: Database, device_ids: Sequence[int], start: datetime, end: datetime, *, sources: bool = False
) -> tuple[str, list[object]]:
    """PostgreSQL's ``FIRSTS_SQL_PG`` for ``device_ids``."""
    where, params = sql.in_list(db, "cl.device_id", device_ids)
    parts = {
        "sources": _SOURCES[: _SOURCES.index(", ec.name")] if sources else "",
        "envelopes": _START_ENVELOPE.format(join="JOIN") if sources else "",
    }
    return FIRSTS_SQL_PG.format(devices=where, **parts), [sql.ts(db, start), sql.ts(db, end), *params]


def doubts_query(
    db: Database, device_ids: Sequence[int], since: datetime, end: datetime
) -> tuple[str, list[object]]:
    where, params = sql.in_list(db, "cv.device_id", device_ids)
    return DOUBTS_SQL.format(devices=where), [*params, sql.ts(db, since), sql.ts(db, end)]


def walk_query(
    db: Database, device_ids: Sequence[int], start: datetime, end: datetime
) -> tuple[str, list[object]]:
    where, params = sql.in_list(db, "cl.device_id", device_ids)
    join, term = sql.join_each(
        db,
        "counter_value",
        "cv",
        "cv.device_id, cv.name, cv.observed_at, cv.value, cv.flag, cv.id",
        "cv.device_id = b.device_id AND cv.name = b.name AND cv.observed_at >= b.since "
        "AND cv.observed_at < ?",
    )
    query = WALK_SQL.format(
        devices=where, join=join, term=term, wrap=_WRAP, wrap_high=_WRAP * 7 // 8, wrap_low=_WRAP // 8
    )
    s, e = sql.ts(db, start), sql.ts(db, end)
    return query, [s, s, *params, e, s]


def _seek(
    db: Database, device_ids: list[int], scope: Scope, sources: dict[int, Source] | None
) -> tuple[dict[_Key, _Ends], set[int]]:
    """The counters of ``device_ids`` from their start, end and doubtful reads, and the devices
    with a counter that has a late read between its start and end (to walk)."""
    found: dict[_Key, _Ends] = {}
    with_sources = sources is not None
    no_start: dict[_Key, tuple[Any, ...]] = {}

    def put(r: tuple[Any, ...]) -> None:
        found[r[0], r[1]] = (sql.utc(r[2]), r[3], r[4], sql.utc(r[5]), r[6], r[7], 0, [None] * 5)
        if sources is not None:
            sources[r[4]], sources[r[7]] = (r[8], r[9], r[10]), (r[11], r[12], r[13])

    q, params = ends_query(db, device_ids, scope.start, scope.end, sources=with_sources)
    for r in sql.rows(db, q, params):
        if r[2] is None:  # PostgreSQL: no read at or before the start; the first in the period is it
            no_start[r[0], r[1]] = r
        else:
            put(r)
    if no_start:
        q, params = firsts_query(
            db, sorted({d for d, _ in no_start}), scope.start, scope.end, sources=with_sources
        )
        for f in sql.rows(db, q, params):
            ends = no_start.get((f[0], f[1]))
            if ends is not None:
                put((*f[:5], *ends[5:8], *f[5:8], *ends[11:14]) if with_sources else (*f[:5], *ends[5:8]))
    if not found:
        return found, set()
    since = min(v[0] for v in found.values())
    walk: set[int] = set()
    q, params = doubts_query(db, device_ids, since, scope.end)
    for dev, name, at, flag, late, previous in sql.rows(db, q, params):
        ends = found.get((dev, name))
        when = sql.utc(at)
        if ends is None or not ends[0] <= when <= ends[3]:
            continue
        if late:
            walk.add(dev)
            continue
        if when == ends[0] or flag not in _KINDS:
            continue  # the start read's own flag is about the step before the period
        add = (previous or 0) if flag in ("reset", "device_swap") else _WRAP if flag == "wrap" else 0
        firsts = ends[7]
        k = _KINDS.index(flag)
        if firsts[k] is None or when < firsts[k]:  # type: ignore[operator]
            firsts[k] = when
        found[dev, name] = (*ends[:6], ends[6] + add, firsts)
    return found, walk


def _walk(db: Database, device_ids: list[int], scope: Scope) -> dict[_Key, _Ends]:
    """The counters of ``device_ids`` from every read of the period (``WALK_SQL``)."""
    q, params = walk_query(db, device_ids, scope.start, scope.end)
    return {
        (r[0], r[1]): (
            sql.utc(r[2]),
            r[4],
            r[6],
            sql.utc(r[3]),
            r[5],
            r[7],
            int(r[8] or 0),
            [None if at is None else sql.utc(at) for at in r[9:14]],
        )
        for r in sql.rows(db, q, params)
    }


def _row(
    info: DeviceInfo,
    name: str,
    ends: _Ends,
    cfg: ReportsSection,
    scope: Scope,
    removed_after: timedelta,
    *,
    strong: bool,
    first_seen: datetime,
) -> MeterRow:
    start_at, start_value, start_id, end_at, end_value, end_id, added, firsts = ends
    flags: list[str] = []
    if start_at > scope.start and first_seen > scope.start:
        flags.append("added")
    if min(scope.end, scope.now) - end_at > removed_after:
        flags.append("removed")
    if any(firsts):
        decrease = "reset" if strong else "device_swap"
        for _, kind in sorted(
            (at, decrease if kind == "decrease" else kind)
            for kind, at in zip(_KINDS, firsts, strict=True)
            if at
        ):
            if kind not in flags:
                flags.append(kind)
    return MeterRow(
        device=info,
        counter=name,
        meter=cfg.meter_names.get(name, name),
        start_at=start_at,
        start_value=start_value,
        end_at=end_at,
        end_value=end_value,
        usage=end_value - start_value + added,
        reads=0,
        flags=flags,
        start_id=start_id,
        end_id=end_id,
    )


def meter_ends(
    db: Database,
    scope: Scope,
    settings: ReportsSection | None = None,
    *,
    policy: CounterPolicy | None = None,
    sources: dict[int, Source] | None = None,
) -> Iterable[MeterRow]:
    """``meters.meter_rows(db, scope, settings)`` with ``reads`` 0, in the same order, ``CHUNK``
    devices at a time. With ``sources``, the envelope (client, seq, sha256) of the start and end
    reads are put there by counter value id, as far as the same query finds them (not for the
    counters walked)."""
    del policy  # the decreases it classifies depend on the values and the identity only
    cfg = settings or ReportsSection()
    removed_after = timedelta(hours=cfg.expected_report_hours + cfg.silence_grace_hours)
    with translated("cannot build the meters report"):
        infos = sorted_devices(scope.customer, scope.dealer)
        strong, first_seen = device_facts(db, [d.id for d in infos])
    for part in chunks(infos, CHUNK):
        by_id = {d.id: d for d in part}
        ids = list(by_id)
        with translated("cannot build the meters report"):
            found, walk = _seek(db, ids, scope, sources)
            if walk:
                walked = _walk(db, sorted(walk), scope)
                found = {k: v for k, v in found.items() if k[0] not in walk} | walked
        rows: dict[int, list[MeterRow]] = {}
        for (dev, name), ends in sorted(found.items()):
            if cfg.only_mapped_meters and name not in cfg.meter_names:
                continue
            rows.setdefault(dev, []).append(
                _row(
                    by_id[dev],
                    name,
                    ends,
                    cfg,
                    scope,
                    removed_after,
                    strong=strong[dev],
                    first_seen=first_seen[dev],
                )
            )
        for d in part:
            yield from rows.get(d.id, ())


__all__ = [
    "DOUBTS_SQL",
    "ENDS_SQL",
    "ENDS_SQL_PG",
    "FIRSTS_SQL_PG",
    "WALK_SQL",
    "doubts_query",
    "ends_query",
    "firsts_query",
    "meter_ends",
    "walk_query",
]
