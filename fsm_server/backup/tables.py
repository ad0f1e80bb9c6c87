"""The database's own list of tables, their columns and their foreign keys, read the same way on
SQLite and PostgreSQL: a backup covers every table there is, including ones this module has never
heard of (a later migration's), and loads them parents first."""

from __future__ import annotations

from collections.abc import Iterable

import peewee

from ..db import triggers
from .archive import ColumnKind

#: Not data: the schema is recreated by the migrations, the rest belongs to the engine.
SKIPPED = frozenset({"migrations"})


def column_kind(data_type: str) -> ColumnKind:
    """How values of a column declared ``data_type`` travel (archive.ColumnKind)."""
    t = data_type.lower()
    if "blob" in t or "bytea" in t:
        return "bytes"
    if "bool" in t:
        return "bool"
    if "timestamp" in t or "datetime" in t:
        return "datetime"
    return "value"


def data_tables(db: peewee.Database) -> list[str]:
    """The tables holding data, parents before children (by foreign key), then by name."""
    names = [n for n in db.get_tables() if not n.startswith("sqlite_") and n not in SKIPPED]
    parents = {n: {fk.dest_table for fk in db.get_foreign_keys(n)} - {n} for n in names}
    for child, refs in triggers.REFERENCES.items():  # kept by triggers on PostgreSQL (db.triggers)
        if child in parents:
            parents[child] |= set(refs.values())
    return topological(names, parents)


def topological(names: Iterable[str], parents: dict[str, set[str]]) -> list[str]:
    """``names`` ordered so each comes after its parents (a cycle is broken by name order)."""
    order: list[str] = []
    done: set[str] = set()
    visiting: set[str] = set()

    def visit(n: str) -> None:
        if n in done or n in visiting:
            return
        visiting.add(n)
        for p in sorted(parents.get(n, ())):
            if p in parents:
                visit(p)
        visiting.discard(n)
        done.add(n)
        order.append(n)

    for n in sorted(names):
        visit(n)
    return order


def columns(db: peewee.Database, table: str) -> list[tuple[str, ColumnKind]]:
    """(name, kind) of each column of ``table``, in the table's order."""
    return [(c.name, column_kind(c.data_type)) for c in db.get_columns(table)]


def primary_key(db: peewee.Database, table: str) -> list[str]:
    return list(db.get_primary_keys(table))


def quote(name: str) -> str:
    """An identifier quoted for both engines (table and column names come from the database)."""
    return '"' + name.replace('"', '""') + '"'


__all__ = ["SKIPPED", "column_kind", "columns", "data_tables", "primary_key", "quote", "topological"]
