"""Every report query seeks: no full scan and no sort of a readings-sized table, on both databases.

On the small databases of the tests PostgreSQL would rightly scan whole tables; with sequential
scans and sorts priced out, a plan that still needs one has no index to use, which is what this
checks. ``bench/reports.py --plans`` shows the plans at fleet size.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fsm_server.db import migrations, sql
from fsm_server.db.connect import Database
from fsm_server.reports import plans
from fsm_server.reports.scope import Scope

SCOPE = Scope(
    start=datetime(2026, 10, 1, tzinfo=UTC),
    end=datetime(2026, 11, 1, tzinfo=UTC),
    now=datetime(2026, 11, 2, tzinfo=UTC),
)
QUERIES = sorted(
    [
        "meters.anchors",
        "meters.reads",
        "supplies.levels",
        "alerts.readings",
        "alerts.alerts",
        "health.anomalies",
        "health.claims",
        "health.latency",
        "health.clients",
        "health.recent",
    ]
)


@pytest.mark.parametrize("name", QUERIES)
def test_the_report_query_seeks_its_rows(db: Database, name: str) -> None:
    if db.kind == "postgresql":
        db.peewee.execute_sql("SET enable_seqscan = off")
        db.peewee.execute_sql("SET enable_sort = off")
    query, params = plans.report_queries(db, SCOPE, list(range(1, 501)))[name]
    plan = sql.explain(db, query, params)
    assert plan and plans.forbidden(db, plan) == [], "\n".join(plan)


def test_alerts_are_read_by_device_range(db: Database) -> None:
    """One range of the (device, time) index per device, not one seek per reading."""
    if db.kind == "postgresql":
        db.peewee.execute_sql("SET enable_seqscan = off")
    query, params = plans.report_queries(db, SCOPE, list(range(1, 501)))["alerts.alerts"]
    plan = "\n".join(sql.explain(db, query, params))
    assert migrations.ALERT_DEVICE_INDEX in plan, plan


def test_every_report_query_is_checked(db: Database) -> None:
    assert sorted(plans.report_queries(db, SCOPE, [1])) == QUERIES


def test_a_plan_that_scans_or_sorts_the_readings_is_caught(db: Database) -> None:
    if db.kind == "postgresql":
        db.peewee.execute_sql("SET enable_sort = off")
    query = "SELECT device_id, value FROM counter_value WHERE observed_at > ? ORDER BY value"
    assert plans.forbidden(db, sql.explain(db, query, [sql.ts(db, SCOPE.start)]))
