"""The meters computed from the start, end and doubtful reads (reports.meter_ends, what billing
collects) equal the meters report's rows (reports.meters.meter_rows) on the fleets of the
streamed-report tests: late reports across a reset (walked), the same moment twice, a 32-bit wrap
(seeked), unreachable days, devices added mid-period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from reports_fleet import Feeder
from test_reports import NOV, OCT, SETTINGS, october  # noqa: F401 - the fixture the report tests use
from test_reports_streamed import PERIODS, messy  # noqa: F401 - the late, repeated, wrapping fleet

from fsm_server.billing.collect import provenance
from fsm_server.db import migrations, sql
from fsm_server.reports.meter_ends import meter_ends
from fsm_server.reports.meters import meter_rows
from fsm_server.reports.scope import Scope, bound_database


def same_rows(scope: Scope) -> list[dict[str, object]]:
    db = bound_database()
    sources: dict[int, tuple[str, int, str]] = {}
    ends = list(meter_ends(db, scope, SETTINGS, sources=sources))
    summed = msgspec.to_builtins(ends)
    assert bool(sources) == bool(ends)
    assert provenance(db, sources) == sources
    assert {i for r in ends for i in (r.start_id, r.end_id)} >= set(sources)
    rows = msgspec.to_builtins([msgspec.structs.replace(r, reads=0) for r in meter_rows(db, scope, SETTINGS)])
    assert summed == rows
    return summed  # type: ignore[no-any-return]


@pytest.mark.parametrize("period", range(len(PERIODS)))
def test_database_sums_equal_the_meters_report_on_a_messy_fleet(messy: Feeder, period: int) -> None:  # noqa: F811
    start, end = PERIODS[period]
    rows = same_rows(Scope(start=start, end=end, now=end + timedelta(hours=6)))
    if period == 1:  # E's late reports and board replacement, G's 32-bit wrap are in this period
        flags = {(r["device"]["serial"], r["counter"]): r["flags"] for r in rows}  # type: ignore[index]
        assert "reset" in flags["E5", "total"] and "wrap" in flags["G7", "total"]
        late = {
            serial
            for (serial,) in sql.rows(
                bound_database(),
                "SELECT d.serial FROM counter_value cv JOIN device d ON d.id = cv.device_id WHERE cv.late",
            )
        }
        assert late == {"E5"}  # E's counters are walked, F's repeated moments and G's wrap seeked


def test_database_sums_equal_the_meters_report_on_the_report_tests_fleet(october: Feeder) -> None:  # noqa: F811
    rows = same_rows(Scope(start=OCT, end=NOV, now=datetime(2026, 11, 20, tzinfo=UTC)))
    assert rows and any(r["flags"] for r in rows) and any("added" in r["flags"] for r in rows)


def test_migration_16_marks_the_late_reads_of_a_database_made_before_it(messy: Feeder) -> None:  # noqa: F811
    db = bound_database()
    late_ids = "SELECT id FROM counter_value WHERE late ORDER BY id"
    stored = list(sql.rows(db, late_ids))
    assert stored  # E's reports of days 20-22 came after day 25's
    db.peewee.execute_sql("DROP INDEX counter_value_doubt")
    db.peewee.execute_sql("ALTER TABLE counter_value DROP COLUMN late")
    db.peewee.execute_sql("DELETE FROM migrations WHERE name = 'm018_counter_late'")
    assert migrations.migrate(db) == ["m018_counter_late"]
    assert list(sql.rows(db, late_ids)) == stored
