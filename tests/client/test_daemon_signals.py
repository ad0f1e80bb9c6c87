"""Clean stop: SIGTERM/SIGINT finish the current step, restore the previous handlers, and log
one summary line; `fsm-client run` as a real process exits 0 on SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from client_fixtures import Keys, Printers, make_config, write_toml

from fsm_client.daemon import Daemon
from fsm_common.backoff import Backoff

pytestmark = [pytest.mark.snmp]

FSM_CLIENT = str(Path(sys.executable).parent / "fsm-client")


@pytest.fixture(scope="module")
def printers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Printers]:
    p = Printers(["hall"], tmp_path_factory.mktemp("printers"), first_ip="127.0.0.35").start()
    try:
        yield p
    finally:
        p.stop()


def sections(keys: Keys, printers: Printers) -> dict[str, object]:
    return {
        "client": {"id": "sig", "customer": "ACME", "site": "HQ"},
        "keys": {"signing_key": str(keys.client_key), "server_public_key": str(keys.server_pub)},
        **printers.client_sections(),
        "schedule": {"report": "off", "discovery": "off", "status_poll": "every 1s"},
        "smtp": {"to": ["dealer@fsm.test"]},
    }


async def test_sigterm_stops_the_loop_and_restores_the_previous_handler(
    keys: Keys, printers: Printers, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(
        keys,
        **printers.client_sections(),
        schedule={"report": "off", "discovery": "off", "status_poll": "every 1s"},
        smtp={"to": ["dealer@fsm.test"]},
    )
    daemon = Daemon(config, tmp_path)
    caplog.set_level(logging.INFO, logger="fsm_client.daemon")

    def previous(signum: int, frame: object) -> None:  # pragma: no cover - must not be called
        raise AssertionError("the daemon's handler should have run")

    old = signal.signal(signal.SIGTERM, previous)
    try:
        task = asyncio.create_task(daemon.run())
        while daemon.counts.polls < 1:
            await asyncio.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)
        counts = await asyncio.wait_for(task, 10)
        assert signal.getsignal(signal.SIGTERM) is previous
    finally:
        signal.signal(signal.SIGTERM, old)
    assert counts.polls >= 1
    summary = [r.message for r in caplog.records if r.message.startswith("fsm-client stopped:")]
    assert len(summary) == 1 and "poll rounds" in summary[0] and "outbox depth" in summary[0]


def test_fsm_client_run_exits_0_on_sigterm_with_one_summary_line(
    keys: Keys, printers: Printers, tmp_path: Path
) -> None:
    config = write_toml(tmp_path / "client.toml", sections(keys, printers))
    argv = [FSM_CLIENT, "--config", str(config), "--data-dir", str(tmp_path / "data"), "run"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 20
    seen = ""
    assert proc.stdout is not None
    while "running:" not in seen and time.monotonic() < deadline:
        seen += proc.stdout.readline()
    time.sleep(1.5)  # let it poll
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    log = seen + out
    assert proc.returncode == 0, log
    assert log.count("fsm-client stopped:") == 1, log
    assert "SIGTERM: finishing the current step" in log


def test_backoff_is_capped_exponential_with_jitter() -> None:
    low = Backoff(initial=30, cap=1800, rng=lambda: 0.0)
    high = Backoff(initial=30, cap=1800, rng=lambda: 0.999999)
    assert [low.delay(n) for n in (1, 2, 3)] == [15, 30, 60]
    assert [round(high.delay(n)) for n in (1, 2, 3)] == [30, 60, 120]
    assert low.delay(30) == 900 and round(high.delay(30)) == 1800  # days of outage: never above the cap


def test_backoff_stays_at_the_cap_however_many_attempts_failed() -> None:
    # 2**n past ~1024 overflows a float: weeks of a relay down must not turn into an error
    low = Backoff(initial=30.0, cap=1800.0, rng=lambda: 0.0)
    high = Backoff(initial=30.0, cap=1800.0, rng=lambda: 0.999999)
    for n in (1023, 1024, 1100, 10**6):
        assert low.delay(n) == 900 and round(high.delay(n)) == 1800


def test_a_second_run_on_the_same_data_dir_is_refused_and_send_hands_over_to_the_running_one(
    keys: Keys, printers: Printers, tmp_path: Path
) -> None:
    config = write_toml(tmp_path / "client.toml", sections(keys, printers))
    base = [FSM_CLIENT, "--config", str(config), "--data-dir", str(tmp_path / "data")]
    proc = subprocess.Popen([*base, "run"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        deadline, seen = time.monotonic() + 20, ""
        while "running:" not in seen and time.monotonic() < deadline:
            seen += proc.stdout.readline()
        second = subprocess.run([*base, "run", "--once"], capture_output=True, text=True, timeout=30)
        assert second.returncode == 3
        assert "another fsm-client run is already using" in second.stderr and "hint:" in second.stderr
        handed = subprocess.run([*base, "send", "--no-read"], capture_output=True, text=True, timeout=30)
        assert handed.returncode == 0, handed.stderr
        assert "queued report 1; the running `fsm-client run` sends it" in handed.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
    assert proc.returncode == 0


async def test_a_second_sigint_stops_at_once_instead_of_waiting_for_the_step(
    keys: Keys, tmp_path: Path
) -> None:
    # one silent target (nothing listens there): a poll round takes the whole 4 s timeout
    config = make_config(
        keys,
        snmp={"port": 9, "timeout": 4.0, "retries": 0},
        targets=[{"range": "127.0.0.98"}],
        schedule={"report": "off", "discovery": "off", "status_poll": "every 1s"},
        smtp={"to": ["dealer@fsm.test"]},
    )
    daemon = Daemon(config, tmp_path, shutdown_timeout=30)
    task = asyncio.create_task(daemon.run())
    await asyncio.sleep(1.0)  # the poll is now waiting for the silent device
    started = time.monotonic()
    os.kill(os.getpid(), signal.SIGINT)
    await asyncio.sleep(0.2)
    assert not task.done()  # the first one lets the step finish
    os.kill(os.getpid(), signal.SIGINT)
    await asyncio.wait_for(task, 10)
    assert time.monotonic() - started < 2.0
    assert daemon.counts.polls == 0  # the round was cancelled, nothing half-stored
    assert daemon.store.readings() == []
