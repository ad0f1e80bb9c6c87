"""The daemon's schedules with a controllable clock, reading real snmpsim printers:
a report missed while the machine was off is sealed once after start-up, not skipped and
not repeated; a first start sends no backlog; extra scans ride along in the next report."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from client_fixtures import Keys, Printers, make_config

from fsm_client.daemon import Daemon, client_status
from fsm_client.store import Store

pytestmark = [pytest.mark.snmp]

BERLIN = ZoneInfo("Europe/Berlin")


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def printers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Printers]:
    p = Printers(["lobby"], tmp_path_factory.mktemp("printers"), first_ip="127.0.0.30").start()
    try:
        yield p
    finally:
        p.stop()


def daemon_at(clock: Clock, keys: Keys, printers: Printers, data: Path, **schedule: Any) -> Daemon:
    config = make_config(
        keys,
        **printers.client_sections(),
        schedule={
            "timezone": "Europe/Berlin",
            "report": "daily 06:00",
            "discovery": "off",
            "status_poll": "off",
            **schedule,
        },
        smtp={"to": ["dealer@fsm.test"]},
    )
    return Daemon(config, data, clock=clock)


def kinds(store: Store) -> list[tuple[int, str]]:
    return [(e.seq, e.kind) for e in store.outbox()]


async def test_a_report_missed_while_the_machine_was_off_is_sealed_once_at_start_up(
    keys: Keys, printers: Printers, tmp_path: Path
) -> None:
    clock = Clock(datetime(2026, 6, 1, 6, 0, tzinfo=BERLIN))
    with Store.in_data_dir(tmp_path) as store:  # the last report went out on 1 June 06:00
        store.set_schedule_state("report", last_due=clock.now, last_run=clock.now)
    clock.now = datetime(2026, 6, 3, 9, 15, tzinfo=BERLIN)  # off over 2 and 3 June 06:00
    daemon = daemon_at(clock, keys, printers, tmp_path)
    await daemon.scheduler_pass()
    assert kinds(daemon.store) == [(1, "periodic")]
    assert daemon.store.schedule_state("report")[0] == datetime(2026, 6, 3, 6, 0, tzinfo=BERLIN)
    assert len(daemon.store.readings(seq=1)) == 1  # it read the printer first
    clock.now += timedelta(hours=5)
    await daemon.scheduler_pass()
    assert kinds(daemon.store) == [(1, "periodic")]  # not repeated
    clock.now = datetime(2026, 6, 4, 6, 0, tzinfo=BERLIN)
    await daemon.scheduler_pass()
    assert kinds(daemon.store) == [(1, "periodic"), (2, "periodic")]


async def test_a_restart_after_the_missed_report_does_not_send_it_again(
    keys: Keys, printers: Printers, tmp_path: Path
) -> None:
    clock = Clock(datetime(2026, 6, 1, 6, 0, tzinfo=BERLIN))
    with Store.in_data_dir(tmp_path) as store:
        store.set_schedule_state("report", last_due=clock.now, last_run=clock.now)
    clock.now = datetime(2026, 6, 2, 7, 0, tzinfo=BERLIN)
    first = daemon_at(clock, keys, printers, tmp_path)
    await first.scheduler_pass()
    first.store.close()
    clock.now += timedelta(minutes=10)
    second = daemon_at(clock, keys, printers, tmp_path)
    await second.scheduler_pass()
    assert kinds(second.store) == [(1, "periodic")]


async def test_a_first_start_sends_no_backlog_and_says_when_the_next_report_is_due(
    keys: Keys, printers: Printers, tmp_path: Path
) -> None:
    clock = Clock(datetime(2026, 3, 31, 20, 0, tzinfo=BERLIN))
    daemon = daemon_at(clock, keys, printers, tmp_path, report="quarterly 18:00")
    daemon._init_schedule(clock.now)
    await daemon.scheduler_pass()
    assert kinds(daemon.store) == []
    status = client_status(daemon.config, daemon.store, now=clock.now)
    assert status.next_runs["report"] == datetime(2026, 6, 30, 18, 0, tzinfo=BERLIN).isoformat()
    assert status.next_runs["discovery"] is None


async def test_readings_of_extra_scans_ride_along_in_the_next_periodic_report(
    keys: Keys, printers: Printers, tmp_path: Path
) -> None:
    clock = Clock(datetime(2026, 1, 5, 0, 30, tzinfo=BERLIN))
    daemon = daemon_at(clock, keys, printers, tmp_path, scan="every 6h", report="daily 23:00")
    daemon._init_schedule(clock.now)
    for hour in (6, 12, 18):
        clock.now = datetime(2026, 1, 5, hour, 0, 1, tzinfo=BERLIN)
        await daemon.scheduler_pass()
    assert kinds(daemon.store) == [] and len(daemon.store.unreported_readings()) == 3
    clock.now = datetime(2026, 1, 5, 23, 0, tzinfo=BERLIN)
    await daemon.scheduler_pass()
    assert kinds(daemon.store) == [(1, "periodic")]
    assert len(daemon.store.readings(seq=1)) == 4 and daemon.store.unreported_readings() == []


async def test_a_month_end_report_on_the_31st_runs_on_the_30th_of_april(
    keys: Keys, printers: Printers, tmp_path: Path
) -> None:
    clock = Clock(datetime(2026, 4, 1, 0, 0, tzinfo=BERLIN))
    daemon = daemon_at(clock, keys, printers, tmp_path, report="monthly 31 06:00")
    daemon._init_schedule(clock.now)
    clock.now = datetime(2026, 4, 30, 5, 59, tzinfo=BERLIN)
    await daemon.scheduler_pass()
    assert kinds(daemon.store) == []
    clock.now = datetime(2026, 4, 30, 6, 0, tzinfo=BERLIN)
    await daemon.scheduler_pass()
    assert kinds(daemon.store) == [(1, "periodic")]
    [report_period_end] = [daemon.store.meta_time("last_period_end")]
    assert report_period_end == clock.now


async def test_discovery_on_its_own_schedule_finds_devices_that_later_scans_read(
    keys: Keys, printers: Printers, tmp_path: Path
) -> None:
    ip = printers.ips["lobby"]
    base = ip.rsplit(".", 1)[0]
    last = int(ip.rsplit(".", 1)[1])
    clock = Clock(datetime(2026, 2, 1, 0, 0, tzinfo=BERLIN))
    neighbourhood = {"range": f"{base}.{last - 1}-{last + 1}", "credentials": ["lobby"]}
    schedule = {
        "timezone": "Europe/Berlin",
        "discovery": "weekly sun 03:00",
        "report": "off",
        "scan": "daily 12:00",
        "status_poll": "off",
    }
    config = make_config(
        keys,
        **{**printers.client_sections(), "targets": [neighbourhood]},
        schedule=schedule,
        smtp={"to": ["dealer@fsm.test"]},
    )
    daemon = Daemon(config, tmp_path, clock=clock)
    daemon._init_schedule(clock.now)
    assert daemon.targets() == []
    clock.now = datetime(2026, 2, 1, 3, 0, tzinfo=BERLIN)  # Sunday
    await daemon.scheduler_pass()
    assert [d.ip for d in daemon.store.devices()] == [ip]  # the silent neighbours are not devices
    assert daemon.targets() == [ip]
    clock.now = datetime(2026, 2, 1, 12, 0, tzinfo=BERLIN)
    await daemon.scheduler_pass()
    assert [r.device.ip for r in daemon.store.unreported_readings()] == [ip, ip]


async def test_the_daily_pmd_update_runs_from_the_daemon_loop_at_its_hour(
    keys: Keys, printers: Printers, tmp_path: Path
) -> None:
    from fsm_client.pmd.distribution.update import load_state

    bundles = tmp_path / "bundles"
    bundles.mkdir()  # a synced folder with no bundle in it yet
    clock = Clock(datetime(2026, 5, 4, 3, 0, tzinfo=BERLIN))
    config = make_config(
        keys,
        **printers.client_sections(),
        schedule={"timezone": "Europe/Berlin", "report": "off", "discovery": "off", "status_poll": "off"},
        pmd={"update": {"directory": str(bundles), "hour": 4}},
        smtp={"to": ["dealer@fsm.test"]},
    )
    daemon = Daemon(config, tmp_path / "data", clock=clock)
    await daemon.scheduler_pass()  # never checked before: checks at start-up
    first = load_state(tmp_path / "data")
    assert first.last_attempt == clock.now
    clock.now = datetime(2026, 5, 4, 3, 59, tzinfo=BERLIN)
    assert daemon.next_wakeup(clock.now) == datetime(2026, 5, 4, 4, 0, tzinfo=BERLIN)
    await daemon.scheduler_pass()
    assert load_state(tmp_path / "data").last_attempt == first.last_attempt  # not again before 04:00
    clock.now = datetime(2026, 5, 4, 4, 0, tzinfo=BERLIN)
    await daemon.scheduler_pass()
    assert load_state(tmp_path / "data").last_attempt == clock.now


async def test_a_report_in_the_spring_forward_gap_is_sealed_once_after_the_clock_jumps(
    keys: Keys, printers: Printers, tmp_path: Path
) -> None:
    clock = Clock(datetime(2026, 3, 28, 12, 0, tzinfo=BERLIN))
    daemon = daemon_at(clock, keys, printers, tmp_path, report="daily 02:30")
    daemon._init_schedule(clock.now)
    clock.now = datetime(2026, 3, 29, 1, 59, tzinfo=BERLIN)  # 01:59 CET, then the clock jumps to 03:00 CEST
    await daemon.scheduler_pass()
    assert kinds(daemon.store) == []
    clock.now = datetime(2026, 3, 29, 3, 30, tzinfo=BERLIN)  # 02:30 never happened: due now, once
    await daemon.scheduler_pass()
    clock.now = datetime(2026, 3, 29, 9, 0, tzinfo=BERLIN)
    await daemon.scheduler_pass()
    assert kinds(daemon.store) == [(1, "periodic")]
    clock.now = datetime(2026, 3, 30, 2, 30, tzinfo=BERLIN)
    await daemon.scheduler_pass()
    assert kinds(daemon.store) == [(1, "periodic"), (2, "periodic")]


async def test_a_target_removed_from_the_config_is_no_longer_read(
    keys: Keys, printers: Printers, tmp_path: Path
) -> None:
    clock = Clock(datetime(2026, 2, 2, 12, 0, tzinfo=BERLIN))
    daemon = daemon_at(clock, keys, printers, tmp_path)
    await daemon.full_read()
    assert daemon.targets() == [printers.ips["lobby"]]
    daemon.store.close()
    without = {**printers.client_sections(), "targets": []}
    config = make_config(keys, **without, smtp={"to": ["dealer@fsm.test"]})
    assert Daemon(config, tmp_path, clock=clock).targets() == []


async def test_status_polls_raise_an_alert_for_a_jammed_printer_unless_alerts_are_off(
    keys: Keys, printers: Printers, tmp_path: Path
) -> None:
    clock = Clock(datetime(2026, 2, 2, 12, 0, tzinfo=BERLIN))
    printers.set_state("lobby", "jammed")
    try:
        off = make_config(
            keys,
            **printers.client_sections(),
            alerts={"enabled": False},
            schedule={"report": "off", "discovery": "off", "status_poll": "every 90s"},
            smtp={"to": ["dealer@fsm.test"]},
        )
        quiet = Daemon(off, tmp_path / "off", clock=clock)
        await quiet.scheduler_pass()
        assert kinds(quiet.store) == [] and quiet.store.alert_states() == []
        on = daemon_at(clock, keys, printers, tmp_path / "on", status_poll="every 90s")
        await on.scheduler_pass()
        assert kinds(on.store) == [(1, "alert")]
        assert [s.condition for s in on.store.alert_states(active_only=True)] == ["jam"]
    finally:
        printers.set_state("lobby", "ok")


async def test_readings_are_dated_by_the_daemons_clock_in_reports_and_alerts(
    keys: Keys, printers: Printers, tmp_path: Path
) -> None:
    """A reading is observed when the daemon's clock says, as its reports are: a test clock or a
    simulated day (the demo's history) gets readings of that moment, not of the machine's."""
    clock = Clock(datetime(2026, 1, 5, 0, 30, tzinfo=BERLIN))
    daemon = daemon_at(clock, keys, printers, tmp_path, status_poll="every 90s")
    daemon._init_schedule(clock.now)
    clock.now = datetime(2026, 1, 5, 6, 0, 7, tzinfo=BERLIN)
    await daemon.scheduler_pass()
    [periodic] = daemon.store.readings(seq=1)
    assert periodic.device.observed_at == clock.now
    printers.set_state("lobby", "jammed")
    try:
        clock.now += timedelta(minutes=3)
        await daemon.poll()
    finally:
        printers.set_state("lobby", "ok")
    assert kinds(daemon.store) == [(1, "periodic"), (2, "alert")]
    [alert] = daemon.store.readings(seq=2)
    assert "jammed" in alert.device.status.conditions
    assert alert.device.observed_at == clock.now


async def test_each_run_once_polls_even_when_the_same_daemon_ran_once_seconds_before(
    keys: Keys, printers: Printers, tmp_path: Path
) -> None:
    clock = Clock(datetime(2026, 2, 2, 12, 0, tzinfo=BERLIN))
    drop = tmp_path / "drop"
    drop.mkdir()
    config = make_config(
        keys,
        **printers.client_sections(),
        schedule={"report": "off", "discovery": "off", "status_poll": "every 90s"},
        transport={"kind": "filedrop"},
        filedrop={"directory": str(drop)},
    )
    daemon = Daemon(config, tmp_path / "data", clock=clock)
    await daemon.run(once=True, install_signals=False)  # status polls count elapsed time ...
    printers.set_state("lobby", "jammed")
    try:
        clock.now += timedelta(minutes=5)  # ... but `run --once` always makes its one poll round
        await daemon.run(once=True, install_signals=False)
    finally:
        printers.set_state("lobby", "ok")
    assert daemon.counts.polls == 2 and kinds(daemon.store) == [(1, "alert")]


async def test_a_job_failing_at_once_is_retried_after_a_backoff_not_in_a_busy_loop(
    keys: Keys, printers: Printers, tmp_path: Path
) -> None:
    """A half-edited PMD override in place when the daemon starts fails every read at once: the
    report job waits (capped exponential backoff) instead of being run again on every pass."""
    clock = Clock(datetime(2026, 3, 2, 5, 0, tzinfo=BERLIN))
    monotonic = [1000.0]
    daemon = daemon_at(clock, keys, printers, tmp_path)
    daemon.monotonic = lambda: monotonic[0]
    broken = tmp_path / "pmd" / "zz-half-edited.toml"
    broken.parent.mkdir()
    broken.write_text("[pmd\nid = ")
    daemon._init_schedule(clock.now)
    clock.now += timedelta(hours=2)  # the 06:00 report is due
    await daemon.scheduler_pass()
    assert daemon.counts.job_failures == 1 and kinds(daemon.store) == []
    wait = daemon.sleep_seconds()
    assert 15 <= wait <= 30  # the first retry's wait, not 0
    await daemon.scheduler_pass()  # a pass before the wait is over leaves the job alone
    assert daemon.counts.job_failures == 1
    monotonic[0] += wait
    await daemon.scheduler_pass()
    assert daemon.counts.job_failures == 2 and 30 <= daemon.sleep_seconds() <= 60  # twice as long
    broken.unlink()  # the operator fixes it
    monotonic[0] += 60
    await daemon.scheduler_pass()
    assert kinds(daemon.store) == [(1, "periodic")] and daemon.counts.job_failures == 2
    assert daemon.next_wakeup(clock.now) == datetime(2026, 3, 3, 6, 0, tzinfo=BERLIN)  # no retry left
