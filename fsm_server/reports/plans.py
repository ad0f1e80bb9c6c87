"""Every query a report runs over readings-sized tables, built as the reports build them, so that a
test and ``bench/reports.py`` can ask each database for its plan (``db.sql.explain``).

A report query must seek: no full scan of ``counter_value``, ``reading``, ``supply_value`` or
``alert_value``, and no sort of the period's rows (SQLite's "USE TEMP B-TREE", PostgreSQL's Sort
above one of those tables; sorting a chunk's few ``counter_latest`` rows is fine). ``forbidden``
says what a plan breaks.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta

from ..db import sql
from ..db.connect import Database
from .alerts import ALERT_LOOKBACK, alerts_query, readings_query
from .health import ANOMALIES_SQL, CLAIMS_SQL, CLIENTS_SQL, latency_query, recent_query
from .meters import anchors_query, reads_query
from .scope import Scope
from .supplies import levels_query

#: Tables that grow with every reading (and the one that grows with every report).
READINGS_TABLES = ("counter_value", "reading", "supply_value", "alert_value", "envelope")


def report_queries(
    db: Database, scope: Scope, device_ids: Sequence[int]
) -> dict[str, tuple[str, list[object]]]:
    """Name -> (SQL, parameters) of every report query, for a chunk of ``device_ids``."""
    start, end = sql.ts(db, scope.start), sql.ts(db, scope.end)
    return {
        "meters.anchors": anchors_query(db, device_ids, scope.start),
        "meters.reads": reads_query(db, device_ids, scope.start, scope.end),
        "supplies.levels": levels_query(db, device_ids, scope.start - timedelta(days=31), scope.end),
        "alerts.readings": readings_query(db, device_ids, scope.start - ALERT_LOOKBACK, scope.end),
        "alerts.alerts": alerts_query(db, device_ids, scope.start - ALERT_LOOKBACK, scope.end),
        "health.anomalies": (ANOMALIES_SQL, [start, end]),
        "health.claims": (CLAIMS_SQL, [start, end]),
        "health.latency": latency_query(db, scope.start, scope.end, 200_000),
        "health.clients": (CLIENTS_SQL, [end, end]),
        "health.recent": recent_query(db, scope.end),
    }


def forbidden(db: Database, plan: list[str]) -> list[str]:
    """The lines of ``plan`` that scan or sort a readings-sized table."""
    tables = "|".join(READINGS_TABLES)
    bad = []
    if db.kind == "sqlite":
        # "SCAN t" and "SCAN t USING [COVERING] INDEX i" both read the whole table or index
        scans = re.compile(rf"^SCAN ({tables})\b")
        bad += [line for line in plan if scans.match(line) or "TEMP B-TREE" in line]
    else:
        bad += [line for line in plan if re.search(rf"Seq Scan on ({tables})\b", line)]
        bad += [
            line
            for i, line in enumerate(plan)
            if re.match(r"\s*(->\s*)?(Incremental )?Sort\b", line) and _below(plan, i, tables)
        ]
    return bad


def _below(plan: list[str], i: int, tables: str) -> bool:
    """Whether a node of the plan under line ``i`` (more indented) reads one of ``tables``."""
    depth = len(plan[i]) - len(plan[i].lstrip())
    for line in plan[i + 1 :]:
        if line.strip() and len(line) - len(line.lstrip()) <= depth:
            return False
        if re.search(rf" on ({tables})\b", line):
            return True
    return False


__all__ = ["READINGS_TABLES", "forbidden", "report_queries"]
