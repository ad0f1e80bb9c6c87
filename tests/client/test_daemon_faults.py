"""A real `fsm-client run` under faults from outside the process: the wall clock stepped with
libfaketime (the monotonic clock left alone, as NTP and VM resumes leave it), the data disk a
2 MiB tmpfs filled to the last byte, leftovers of a killed file-drop write, a read-only data dir.

Mounting needs root; CI runs as root, and under FSM_REQUIRE_PEERS=1 a skip is a failure.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from client_fixtures import Keys, Printers, write_toml

from fsm_client.store import Store
from fsm_client.transports.filedrop import TEMP_PREFIX, TEMP_SUFFIX

pytestmark = [pytest.mark.snmp]

FSM_CLIENT = str(Path(sys.executable).parent / "fsm-client")
LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1")


@pytest.fixture(scope="module")
def printers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Printers]:
    p = Printers(["desk"], tmp_path_factory.mktemp("printers"), first_ip="127.0.0.50").start()
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture
def healthy(printers: Printers) -> Iterator[Printers]:
    printers.set_state("desk", "ok")
    yield printers
    printers.set_state("desk", "ok")


def _require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")


@contextlib.contextmanager
def tmpfs(directory: Path, size: str = "2m") -> Iterator[Path]:
    """A size-limited tmpfs at ``directory``, unmounted afterwards."""
    _require_root()
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(directory)], check=True
    )
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False)


def config(
    keys: Keys, printers: Printers, drop: Path, path: Path, *, retry: float = 0.2, **schedule: str
) -> Path:
    drop.mkdir(parents=True, exist_ok=True)
    return write_toml(
        path,
        {
            "client": {"id": "faults", "customer": "ACME", "site": "HQ"},
            "keys": {"signing_key": str(keys.client_key), "server_public_key": str(keys.server_pub)},
            **printers.client_sections(timeout=0.5),
            "schedule": {
                "timezone": "Europe/Berlin",
                "report": "off",
                "scan": "off",
                "discovery": "off",
                "status_poll": "off",
                **schedule,
            },
            "outbox": {"retry_initial": retry, "retry_max": 5 * retry},
            "transport": {"kind": "filedrop"},
            "filedrop": {"directory": str(drop)},
        },
    )


class Client:
    """`fsm-client run` as a subprocess, its log in a file."""

    def __init__(self, config: Path, data_dir: Path, log: Path, env: dict[str, str] | None = None) -> None:
        self.config, self.data_dir, self.log = config, data_dir, log
        self._log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.argv("run"),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )

    def argv(self, *args: str) -> list[str]:
        return [FSM_CLIENT, "--config", str(self.config), "--data-dir", str(self.data_dir), *args]

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_log(self, pattern: str, timeout: float = 20.0) -> str:
        until(
            lambda: re.search(pattern, self.text()) is not None or self.proc.poll() is not None,
            f"log line {pattern!r}",
            timeout,
        )
        assert self.proc.poll() is None, f"fsm-client run exited: {self.text()[-2000:]}"
        return self.text()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@contextlib.contextmanager
def running(config: Path, data_dir: Path, log: Path, env: dict[str, str] | None = None) -> Iterator[Client]:
    client = Client(config, data_dir, log, env)
    try:
        client.wait_log(r"fsm-client faults running")
        yield client
    finally:
        client.stop()


def until(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> float:
    """Wait for ``condition``; returns the seconds it took."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - start


def outbox_kinds(data_dir: Path) -> list[tuple[int, str]]:
    with Store.in_data_dir(data_dir) as store:
        return [(e.seq, e.kind) for e in store.outbox()]


def dropped(drop: Path) -> list[str]:
    return sorted(p.name for p in drop.glob("*.eml"))


# -- wall-clock steps (libfaketime) ------------------------------------------------------------


class FakeClock:
    """libfaketime for one subprocess: its wall clock is the real one plus an offset the test
    rewrites (``step``); CLOCK_MONOTONIC is left alone, as a real step of the clock leaves it."""

    def __init__(self, spec_file: Path) -> None:
        if not LIBFAKETIME.exists():
            pytest.skip(f"{LIBFAKETIME} is missing: apt-get install faketime (scripts/setup does)")
        self.spec_file = spec_file
        self.spec_file.write_text("+0\n")

    @property
    def env(self) -> dict[str, str]:
        return {
            "LD_PRELOAD": str(LIBFAKETIME),
            "FAKETIME_TIMESTAMP_FILE": str(self.spec_file),
            "FAKETIME_CACHE_DURATION": "1",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        }

    def step(self, offset: str) -> None:
        self.spec_file.write_text(offset + "\n")
        time.sleep(1.5)  # libfaketime reads the file again at most once a second


def test_a_backward_clock_step_does_not_stall_status_polls_and_the_alert_leaves_at_once(
    keys: Keys, healthy: Printers, tmp_path: Path
) -> None:
    drop = tmp_path / "drop"
    cfg = config(keys, healthy, drop, tmp_path / "client.toml", status_poll="every 1s")
    clock = FakeClock(tmp_path / "faketime")
    with running(cfg, tmp_path / "data", tmp_path / "run.log", clock.env) as client:
        until(lambda: (tmp_path / "data" / "client.sqlite").exists(), "the store")
        time.sleep(2.0)  # a few poll rounds on the true time
        clock.step("-1h")  # NTP correction / VM resume: the wall clock goes back an hour
        healthy.set_state("desk", "jammed")
        took = until(lambda: bool(dropped(drop)), "the jam's alert report in the drop folder", timeout=15)
        time.sleep(2.0)
        log = client.text()
    assert outbox_kinds(tmp_path / "data") == [(1, "alert")]
    assert took < 10, f"the alert took {took:.1f} s after the clock went back"
    steps = [line for line in log.splitlines() if "wall clock" in line]
    assert len(steps) == 1 and "back by 1:00:0" in steps[0], log[-3000:]


def test_a_send_retry_set_before_the_clock_went_back_is_not_held_back_by_the_step(
    keys: Keys, healthy: Printers, tmp_path: Path
) -> None:
    drop = tmp_path / "drop"
    cfg = config(keys, healthy, drop, tmp_path / "client.toml", retry=5.0, status_poll="every 1s")
    clock = FakeClock(tmp_path / "faketime")
    away = tmp_path / "stick-pulled"
    drop.rename(away)  # the stick is out: the alert waits in the outbox, its retry 2.5-5 s away
    with running(cfg, tmp_path / "data", tmp_path / "run.log", clock.env) as client:
        healthy.set_state("desk", "jammed")
        client.wait_log(r"sending report 1 failed \(attempt 1\)")
        clock.step("-1h")  # the retry time stored before the step is now an hour off
        away.rename(drop)
        took = until(lambda: bool(dropped(drop)), "the alert once the stick is back", timeout=20)
    assert took < 6, f"the alert left {took:.1f} s after the stick was back"


@pytest.mark.slow
def test_a_forward_clock_jump_runs_the_missed_report_once_without_status_polls(
    keys: Keys, healthy: Printers, tmp_path: Path
) -> None:
    drop = tmp_path / "drop"
    cfg = config(keys, healthy, drop, tmp_path / "client.toml", report="every 6h")
    clock = FakeClock(tmp_path / "faketime")
    with running(cfg, tmp_path / "data", tmp_path / "run.log", clock.env) as client:
        time.sleep(1.0)
        assert dropped(drop) == []  # a first start sends no backlog
        clock.step("+1d")  # four due times of "every 6h" pass at once: one catch-up
        took = until(lambda: bool(dropped(drop)), "the caught-up report", timeout=75)
        time.sleep(3.0)
        log = client.text()
    assert outbox_kinds(tmp_path / "data") == [(1, "periodic")]  # once, not four times
    assert took < 65, f"the missed report ran {took:.0f} s after the clock jumped"
    steps = [line for line in log.splitlines() if "wall clock" in line]
    assert len(steps) == 1 and "forward by 1 day" in steps[0], log[-3000:]


# -- a full data disk --------------------------------------------------------------------------


def fill(directory: Path) -> Path:
    """Write a file into ``directory`` until the file system is full; returns it."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as f:
        with contextlib.suppress(OSError):
            while f.write(b"\0" * 4096):
                pass
        with contextlib.suppress(OSError):  # the last partial page, byte by byte
            while f.write(b"\0"):
                pass
    return filler


def test_a_full_data_disk_is_named_shown_in_status_and_left_the_moment_space_returns(
    keys: Keys, healthy: Printers, tmp_path: Path
) -> None:
    drop = tmp_path / "drop"
    cfg = config(
        keys,
        healthy,
        drop,
        tmp_path / "client.toml",
        scan="every 1s",
        report="every 2s",
        status_poll="every 1s",
    )
    with tmpfs(tmp_path / "data") as data, running(cfg, data, tmp_path / "run.log") as client:
        until(lambda: bool(dropped(drop)), "a first report")
        filler = fill(data)
        log = client.wait_log(r"data disk is full", timeout=30)
        status = subprocess.run(client.argv("status", "--json"), capture_output=True, text=True, timeout=30)
        assert status.returncode == 0, status.stderr
        shown = json.loads(status.stdout)["last_error"] or ""
        assert re.search(r"the data disk is full \(\d+ bytes free at .*data", shown), shown
        time.sleep(3.0)  # several failed passes while it stays full
        filler.unlink()
        freed = time.monotonic()
        reports = len(dropped(drop))
        until(lambda: len(dropped(drop)) > reports, "a report once there is room again", timeout=40)
        took = time.monotonic() - freed
        time.sleep(1.0)
        after = json.loads(
            subprocess.run(client.argv("status", "--json"), capture_output=True, text=True, timeout=30).stdout
        )
        log = client.text()
        client.stop()
        with Store.in_data_dir(data) as store:
            last = store.last_seq()
            readings = store.readings()
    full = [line for line in log.splitlines() if "data disk is full" in line]
    assert re.search(r"the data disk is full \(\d+ bytes free at \S+\)", full[0]), full[0]
    assert "hint:" in full[0]
    assert any("not stored" in line for line in full), full  # readings lost to it were never taken
    assert "Traceback" not in log and "scheduler pass failed" not in log, log[-3000:]
    assert took < 5, f"the daemon went on {took:.1f} s after space returned"
    assert after["last_error"] is None or "data disk" not in after["last_error"]
    # the books still balance: every number reached the drop folder, no reading is lost in between
    seqs = sorted({int(name.split("-")[1]) for name in dropped(drop)})
    assert seqs == list(range(1, last + 1))
    assert all(r.reported_seq is None or 1 <= r.reported_seq <= last for r in readings)


# -- leftovers of a killed file-drop write ----------------------------------------------------


def stale_part(drop: Path) -> Path:
    """What a kill -9 during a file-drop write leaves: a temporary file of our naming, half written."""
    path = drop / f"{TEMP_PREFIX}{secrets.token_hex(8)}{TEMP_SUFFIX}"
    path.write_bytes(b"From: client@fsm.test\r\nX-Fsm-Client: faults\r\n")
    return path


def test_stale_file_drop_parts_are_removed_at_start_up_and_before_each_write(
    keys: Keys, healthy: Printers, tmp_path: Path
) -> None:
    drop = tmp_path / "drop"
    cfg = config(keys, healthy, drop, tmp_path / "client.toml", report="every 2s")
    left = [stale_part(drop) for _ in range(3)]
    others = [drop / ".fsm-notes.part", drop / "readme.part", drop / "faults-9-1of1.eml.part"]
    for path in others:
        path.write_text("not ours")
    # a write in progress elsewhere (another client on the same share): its writer holds it
    busy = drop / f"{TEMP_PREFIX}{secrets.token_hex(8)}{TEMP_SUFFIX}"
    busy.write_bytes(b"in progress")
    holder = open(busy, "rb")  # noqa: SIM115 - closed below
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        with running(cfg, tmp_path / "data", tmp_path / "run.log") as client:
            until(lambda: not any(p.exists() for p in left), "stale parts removed at start-up", timeout=5)
            assert busy.exists() and all(p.exists() for p in others)
            until(lambda: bool(dropped(drop)), "a first report")
            later = stale_part(drop)
            count = len(dropped(drop))
            until(lambda: len(dropped(drop)) > count, "the next report")
            assert not later.exists()
            log = client.text()
    finally:
        holder.close()
    assert busy.exists() and all(p.exists() for p in others)
    assert "removed 3 stale" in log


# -- a read-only data dir ----------------------------------------------------------------------


def test_status_and_outbox_list_read_a_read_only_data_dir_and_run_says_why_it_cannot(
    keys: Keys, healthy: Printers, tmp_path: Path
) -> None:
    drop = tmp_path / "drop"
    cfg = config(keys, healthy, drop, tmp_path / "client.toml")
    with tmpfs(tmp_path / "data", size="8m") as data:
        base = [FSM_CLIENT, "--config", str(cfg), "--data-dir", str(data)]
        sent = subprocess.run([*base, "send"], capture_output=True, text=True, timeout=60)
        assert sent.returncode == 0, sent.stdout + sent.stderr
        subprocess.run(["mount", "-o", "remount,ro", str(data)], check=True)
        status = subprocess.run([*base, "status", "--json"], capture_output=True, text=True, timeout=30)
        assert status.returncode == 0, status.stdout + status.stderr
        info: dict[str, Any] = json.loads(status.stdout)
        assert (info["last_seq"], info["outbox_depth"], info["devices"]) == (1, 0, 1)
        listing = subprocess.run(
            [*base, "outbox", "list", "--json"], capture_output=True, text=True, timeout=30
        )
        assert listing.returncode == 0, listing.stdout + listing.stderr
        assert [(e["seq"], e["state"]) for e in json.loads(listing.stdout)] == [(1, "sent")]
        shown = subprocess.run([*base, "outbox", "show", "1"], capture_output=True, text=True, timeout=30)
        assert shown.returncode == 0 and json.loads(shown.stdout)["kind"] == "periodic"
        run = subprocess.run([*base, "run", "--once"], capture_output=True, text=True, timeout=30)
        assert run.returncode != 0
        assert "Traceback" not in run.stderr and "error:" in run.stderr and "hint:" in run.stderr
        assert "read-only" in run.stderr
