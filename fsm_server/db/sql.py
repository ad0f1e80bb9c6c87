"""Hand-written SQL on either database, rows as plain tuples: what reports and state use for bulk rows.

peewee model objects cost 4-7x the query itself per row; report queries that read a period's
readings go through here instead: parameters in the database's own style, times in the form the
columns store, rows fetched in batches, times back as aware UTC datetimes.

>>> import tempfile, pathlib
>>> from fsm_server.db import open_database
>>> db = open_database("", data_dir=pathlib.Path(tempfile.mkdtemp()))
>>> sql, params = in_list(db, "id", [3, 1])
>>> list(rows(db, f"SELECT 1 WHERE 1 NOT IN (SELECT id FROM device WHERE {sql})", params))
[(1,)]
>>> db.close()
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from .connect import Database

#: Rows fetched from the driver at a time (what a streamed report holds of a query at once).
FETCH = 2000


def ts(db: Database, when: datetime) -> object:
    """``when`` as the timestamp columns store it: naive UTC (SQLite: ISO text, as peewee writes it)."""
    return iso(when) if db.kind == "sqlite" else _naive(when)


@functools.lru_cache(maxsize=1 << 14)  # a reading's time is written once per counter and supply
def _naive(when: datetime) -> datetime:
    return when.astimezone(UTC).replace(tzinfo=None)


@functools.lru_cache(maxsize=1 << 14)
def iso(when: datetime) -> str:
    """``when`` as naive UTC ISO text, as both databases read it (SQLite stores it so)."""
    return _naive(when).isoformat(" ")


@functools.lru_cache(maxsize=1 << 14)
def utc(value: Any) -> datetime:
    """A timestamp column's value as an aware UTC datetime (cached: a reading's time comes back
    once per counter or supply of it)."""
    when: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def in_list(db: Database, column: str, values: Sequence[object]) -> tuple[str, list[object]]:
    """``column IN (...)`` for SQLite, ``column = ANY(%s)`` (one array parameter) for PostgreSQL."""
    if db.kind == "postgresql":
        return f"{column} = ANY({db.peewee.param})", [list(values)]
    return f"{column} IN ({', '.join([db.peewee.param] * len(values))})", list(values)


def join_each(
    db: Database, table: str, alias: str, columns: str, condition: str, *, left: bool = False
) -> tuple[str, str]:
    """(JOIN clause, WHERE term) joining, for each outer row, the rows of ``table`` that ``condition``
    picks through an index. PostgreSQL gets a LATERAL subquery that OFFSET 0 keeps from being
    flattened, so it runs as one index seek per outer row in the outer row's order (as a plain
    join it may hash a whole readings table and sort the result when a chunk asks for a good
    part of it); SQLite (no LATERAL) a CROSS JOIN, whose order it keeps, or a LEFT JOIN.
    Parameters of ``condition`` come before those of the outer WHERE in both."""
    if db.kind == "postgresql":
        sub = f"LATERAL (SELECT {columns} FROM {table} {alias} WHERE {condition} OFFSET 0) {alias}"
        return (f"LEFT JOIN {sub} ON TRUE" if left else f"CROSS JOIN {sub}"), "TRUE"
    if left:
        return f"LEFT JOIN {table} {alias} ON {condition}", "1 = 1"
    return f"CROSS JOIN {table} {alias}", condition


def seconds_between(db: Database, later: str, earlier: str) -> str:
    """SQL for the seconds from timestamp column ``earlier`` to ``later``, as a float (SQLite's
    julianday arithmetic rounded to the millisecond, below which it is noise)."""
    if db.kind == "postgresql":
        return f"CAST(EXTRACT(EPOCH FROM {later} - {earlier}) AS DOUBLE PRECISION)"
    return f"ROUND((julianday({later}) - julianday({earlier})) * 86400.0, 3)"


def rows(db: Database, sql: str, params: Sequence[object] = ()) -> Iterator[tuple[Any, ...]]:
    """The rows of ``sql`` as tuples, fetched ``FETCH`` at a time. ``?`` marks a parameter on both
    databases (it becomes ``%s`` for PostgreSQL; the queries here hold no literal ``?``)."""
    cursor = db.peewee.execute_sql(sql.replace("?", db.peewee.param), list(params))
    while batch := cursor.fetchmany(FETCH):
        yield from batch


def execute(db: Database, sql: str, params: Sequence[object] = ()) -> int:
    """Run one statement (``?`` marks a parameter, as in ``rows``): how many rows it changed."""
    cursor = db.peewee.execute_sql(sql.replace("?", db.peewee.param), list(params))
    return int(cursor.rowcount)


def explain(db: Database, sql: str, params: Sequence[object] = ()) -> list[str]:
    """The database's plan of ``sql``: SQLite's EXPLAIN QUERY PLAN details, PostgreSQL's EXPLAIN lines."""
    if db.kind == "sqlite":
        return [str(r[3]) for r in rows(db, "EXPLAIN QUERY PLAN " + sql, params)]
    return [str(r[0]) for r in rows(db, "EXPLAIN " + sql, params)]


__all__ = [
    "FETCH",
    "execute",
    "explain",
    "in_list",
    "iso",
    "join_each",
    "rows",
    "seconds_between",
    "ts",
    "utc",
]
