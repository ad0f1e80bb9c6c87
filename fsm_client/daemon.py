"""`fsm-client run`: one asyncio loop for the schedules, the status polls and the outbox worker.

Jobs run one at a time in the scheduler task (a scan never races a report); the outbox
worker sends in parallel and is woken the moment an envelope is queued, so an alert leaves
within seconds. ``--once`` runs what is due (a missed report included), one poll round,
and drains the outbox, then returns its counts (cron, tests, the demo use it).

Time: sleeps are on the monotonic clock; calendar due times are computed from the wall
clock at each wake-up, and the scheduler wakes at least once a minute (and for every status
poll, which runs on elapsed time) to look again. So a step of the wall clock (NTP, a VM
resumed) is noticed within a minute: forward, a job due in between runs once; back, nothing
already run runs again, and status polls go on at their interval. Each step is logged once.

A full data disk: the step that could not store is dropped whole (a reading that could not be
stored counts as never taken; the next read takes it again), the problem is logged once and
written where `fsm-client status` shows it (``health``), and the daemon tries a small write every
second and goes on the moment one succeeds.

Stop: the first SIGTERM/SIGINT takes no new work and lets the current step finish within
``shutdown_timeout`` (then cancels it: every step commits to the store in transactions, so
a cancelled one leaves nothing half-done); a second signal cancels at once. The previous
signal handlers are restored, and one summary line with counts is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from fsm_common.backoff import Backoff
from fsm_common.signals import capture_signals
from fsm_protocol.errors import FsmError
from fsm_protocol.schema import Device, utcnow

from . import alerts
from .config import ClientConfig
from .errors import AlreadyRunning, StoreFull
from .health import HealthFile
from .pmd.distribution.active import bundle_label, current_pool
from .pmd.distribution.update import Updater
from .report import Queued, Sealer, queue_report
from .scan import SourceFactory, is_range, parse_target, scan
from .schedule import Rule, latest_due, next_due, parse_rule, zone
from .sender import DrainResult, Sender, TransportFactory
from .store import Store
from .transports.filedrop import remove_stale_parts

log = logging.getLogger("fsm_client.daemon")

#: Jobs whose last due time is kept in the store, in the order they run when due together.
PERSISTENT_JOBS = ("discovery", "scan", "report")
#: How often the outbox worker looks for envelopes queued by another process (resend, send).
OUTBOX_RECHECK_SECONDS = 10.0
#: Pause after an unexpected error in a loop before it goes on.
BUG_RETRY_SECONDS = 30.0
#: A failed calendar job is tried again after this, doubling up to the cap while it fails.
JOB_RETRY_SECONDS = 30.0
JOB_RETRY_CAP = 600.0
#: The longest the scheduler sleeps before it reads the wall clock again (a step is seen within it).
RECHECK_SECONDS = 60.0
#: How often a daemon stopped by a full data disk tries a write again.
DISK_RECHECK_SECONDS = 1.0
#: Wall-clock time that passed differing from monotonic time by this much is a step of the clock.
CLOCK_STEP_SECONDS = 2.0
LOCK_FILE = "fsm-client.lock"


class RunLock:
    """One `fsm-client run` per data dir: an flock on ``<data_dir>/fsm-client.lock`` (released
    by the kernel when the process dies, kill -9 included)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / LOCK_FILE

    @contextlib.contextmanager
    def held(self, *, required: bool = False) -> Iterator[bool]:
        """Yields whether this process holds the lock; with ``required``, refuses instead."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if required:
                    raise AlreadyRunning(
                        f"another fsm-client run is already using {str(self.path.parent)!r}",
                        hint="stop it first (systemctl stop fsm-client), or give this one another --data-dir",
                    ) from None
                yield False
                return
            try:
                f.seek(0)
                f.truncate()
                f.write(f"{os.getpid()}\n")
                f.flush()
                yield True
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)


@dataclass
class Counts:
    """What a run did; the summary line prints these."""

    scans: int = 0
    readings: int = 0
    polls: int = 0
    reports: int = 0
    alerts: int = 0
    sent: int = 0
    send_failures: int = 0
    job_failures: int = 0
    queued: list[int] = field(default_factory=list)

    def add_drain(self, result: DrainResult) -> None:
        self.sent += result.sent_envelopes
        self.send_failures += result.failures


def summary_line(counts: Counts, depth: int) -> str:
    return (
        f"fsm-client stopped: {counts.scans} scans ({counts.readings} readings), "
        f"{counts.polls} poll rounds, "
        f"{counts.reports} reports and {counts.alerts} alerts queued, {counts.sent} envelopes sent, "
        f"{counts.send_failures} send failures, {counts.job_failures} failed jobs; outbox depth {depth}"
    )


class Daemon:
    """The client's scheduler, poller and outbox worker around one store."""

    def __init__(
        self,
        config: ClientConfig,
        data_dir: Path,
        *,
        store: Store | None = None,
        sealer: Sealer | None = None,
        open_transport: TransportFactory | None = None,
        open_source: SourceFactory | None = None,
        pool: Any = None,
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
        shutdown_timeout: float = 30.0,
    ) -> None:
        self.config = config
        self.data_dir = Path(data_dir)
        self.store = store or Store.in_data_dir(self.data_dir)
        self.sealer = sealer or Sealer.from_config(config, self.data_dir)
        self.sender = Sender.from_config(self.store, config, open_transport=open_transport, clock=clock)
        self.open_source = open_source
        self._pool = pool
        self.clock = clock
        self.monotonic = monotonic
        self.shutdown_timeout = shutdown_timeout
        self.tz = zone(config.schedule.timezone)
        self.rules: dict[str, Rule] = {
            "discovery": parse_rule(config.schedule.discovery),
            "scan": parse_rule(config.schedule.scan),
            "report": parse_rule(config.schedule.report),
            "poll": parse_rule(config.schedule.status_poll),
        }
        self.policy = alerts.Policy.from_config(config.alerts)
        self.counts = Counts()
        self._stopping = False
        self._stop_event = asyncio.Event()
        self._outbox_event = asyncio.Event()
        self._poll_at: float | None = None  # monotonic; None: poll at the next pass
        self._clock_mark: tuple[datetime, float] | None = None  # (wall, monotonic) at the last wake-up
        self.deferred = False  # send_now left the sending to a running daemon
        self.pmd_updater = Updater(config, self.data_dir, clock=clock)
        self._pmd_warned = False
        self.health = HealthFile(self.data_dir)
        self._full_since: datetime | None = None  # the data disk has been full since then
        #: job -> (monotonic time of its next try, its backoff) while it fails
        self._retry: dict[str, tuple[float, Backoff]] = {}

    # -- what to read --

    @property
    def pool(self) -> Any:
        return self._pool if self._pool is not None else current_pool(self.config, self.data_dir)

    def targets(self) -> list[str]:
        """Configured single targets, then devices found by discovery (on the default port)."""
        specs = [t.range for t in self.config.targets if not is_range(t.range)]
        hosts = {parse_target(s, default_port=self.config.snmp.port).host for s in specs}
        specs += [d.ip for d in self.store.devices(discovered=True) if d.ip not in hosts]
        return specs

    async def _read(self, specs: Sequence[str], *, poll: bool = False) -> AsyncIterator[Device]:
        """Read targets concurrently (bounded by [snmp] concurrency), yielding each as it ends.

        ``poll``: read only status and alerts, and the whole device only where that reading
        raises or clears a condition (the alert report then carries the whole reading)."""
        gate = asyncio.Semaphore(max(1, self.config.snmp.concurrency))

        by_spec = {t.range: t.credentials for t in self.config.targets}

        async def one(spec: str) -> Device:
            names = by_spec.get(spec)
            creds = [c for c in self.config.credentials if c.name in names] if names else None
            async with gate:
                # readings are dated by the daemon's clock, as its reports are
                [device] = await scan(
                    [spec],
                    config=self.config,
                    pool=self.pool,
                    credentials=creds,
                    open_source=self.open_source,
                    status_only=poll,
                    now=self.clock(),
                )
                if (
                    poll
                    and device.reachability != "unreachable"
                    and alerts.would_change(self.store, self.policy, device)
                ):
                    [device] = await scan(
                        [spec],
                        config=self.config,
                        pool=self.pool,
                        credentials=creds,
                        open_source=self.open_source,
                        now=self.clock(),
                    )
                return device

        tasks = [asyncio.create_task(one(s)) for s in specs]
        try:
            for next_done in asyncio.as_completed(tasks):
                yield await next_done
        finally:
            for t in tasks:
                t.cancel()

    # -- jobs --

    async def full_read(self, specs: Sequence[str] | None = None, *, keep_unreachable: bool = True) -> int:
        """Read every target and store each reading as soon as it is read."""
        n = 0
        async for device in self._read(self.targets() if specs is None else specs):
            if device.reachability == "unreachable" and not keep_unreachable:
                continue
            self.store.add_reading(device, kind="scan")
            n += 1
            self.counts.readings += 1  # only what is stored counts as read
        self.counts.scans += 1
        self.store.set_meta_time("last_scan_at", self.clock())
        return n

    async def discover(self) -> int:
        """Sweep the configured ranges (scan sweeps, then reads what answers); the devices
        found are stored and join the targets of later scans and polls."""
        found = 0
        for target in self.config.targets:
            if not is_range(target.range):
                continue
            creds = [c for c in self.config.credentials if c.name in target.credentials] or None
            for device in await scan(
                [target.range],
                config=self.config,
                pool=self.pool,
                credentials=creds,
                open_source=self.open_source,
                exclude=target.exclude,
                now=self.clock(),
            ):
                if device.reachability != "unreachable":
                    with self.store.atomic():
                        self.store.add_reading(device, kind="scan")
                        self.store.mark_discovered(device.ip)
                    found += 1
        self.counts.readings += found
        self.store.set_meta_time("last_discovery_at", self.clock())
        return found

    def queue(self, kind: Any, *, also: Callable[[int], None] | None = None) -> Queued:
        queued = queue_report(
            self.store,
            self.sealer,
            self.config,
            kind=kind,
            now=self.clock(),
            also=also,
            pmd_bundle=bundle_label(self.data_dir),
        )
        self.counts.reports += 1
        self.counts.queued.append(queued.seq)
        self._outbox_event.set()
        log.info(
            "report %d (%s) queued: %d readings in %d chunk(s)",
            queued.seq,
            kind,
            queued.devices,
            queued.chunks,
        )
        return queued

    async def run_job(self, job: str, due: datetime | None) -> None:
        """Run one persistent job; its due time is recorded in the same transaction as its
        result (the report envelope), so it runs once per due time, even across a crash."""

        def done(_seq: int | None = None) -> None:
            if due is not None:
                self.store.set_schedule_state(job, last_due=due, last_run=self.clock())

        if job == "discovery":
            await self.discover()
            done()
        elif job == "scan":
            await self.full_read()
            done()
        elif job == "report":
            await self.full_read()
            self.queue("periodic", also=done)
            self._purge()  # retention is applied once per report, never more often than needed

    async def poll(self) -> int:
        """One status poll round: read each known target, raise or clear critical conditions."""
        raised = 0
        if not self.config.alerts.enabled:
            return 0
        async for device in self._read(self.targets(), poll=True):
            change = alerts.evaluate(
                self.store,
                self.sealer,
                self.config,
                self.policy,
                device,
                now=self.clock(),
                pmd_bundle=bundle_label(self.data_dir),
            )
            if change.queued is not None:
                raised += 1
                self.counts.alerts += 1
                self.counts.queued.append(change.queued.seq)
                self._outbox_event.set()
                log.warning(
                    "alert report %d queued for %s: raised %s, cleared %s",
                    change.queued.seq,
                    device.ip,
                    sorted(change.raised) or "-",
                    sorted(change.cleared) or "-",
                )
        self.counts.polls += 1
        return raised

    # -- scheduling --

    def _init_schedule(self, now: datetime) -> None:
        """A job never run before starts counting from now (no catch-up on first start)."""
        states = self.store.schedule_states()
        for job in PERSISTENT_JOBS:
            if job not in states and self.rules[job].kind != "off":
                self.store.set_schedule_state(job, last_due=now, last_run=None)

    def due_jobs(self, now: datetime) -> list[tuple[str, datetime]]:
        """The jobs due at ``now``, less those waiting to be tried again after a failure."""
        states = self.store.schedule_states()
        out = []
        for job in PERSISTENT_JOBS:
            if job in states and not self._waiting(job):
                due = latest_due(self.rules[job], states[job][0], now, self.tz)
                if due is not None:
                    out.append((job, due))
        return out

    def next_wakeup(self, now: datetime) -> datetime | None:
        """The wall-clock time the next calendar job (or PMD check) is due; status polls are not
        in it (they run on elapsed time, see ``sleep_seconds``)."""
        states = self.store.schedule_states()
        times = [
            next_due(self.rules[j], states[j][0], self.tz)
            for j in PERSISTENT_JOBS
            if j in states and j not in self._retry
        ]
        times.append(self._pmd_due(now))
        real = [t for t in times if t is not None]
        return min(real) if real else None

    def sleep_seconds(self) -> float:
        """How long the scheduler may sleep: until the next due job or status poll, and never
        longer than RECHECK_SECONDS, so a step of the wall clock is noticed."""
        now = self.clock()
        waits = [RECHECK_SECONDS]
        wall = self.next_wakeup(now)
        if wall is not None:
            waits.append((wall - now).total_seconds())
        if self._poll_at is not None:
            waits.append(self._poll_at - self.monotonic())
        waits += [at - self.monotonic() for at, _ in self._retry.values()]
        return max(0.0, min(waits))

    def _waiting(self, job: str) -> bool:
        """Whether ``job`` failed and its wait before the next try is not over."""
        retry = self._retry.get(job)
        return retry is not None and retry[0] > self.monotonic()

    def _failed(self, job: str) -> float:
        """Note a failure of ``job``: the seconds until it is tried again. Its due time stays
        unrecorded, so it runs once it succeeds; a job that fails at once (a PMD override saved
        half-edited, nothing read) would otherwise run again on every pass, without a pause."""
        _, backoff = self._retry.get(job, (0.0, Backoff(initial=JOB_RETRY_SECONDS, cap=JOB_RETRY_CAP)))
        wait = backoff.next()
        self._retry[job] = (self.monotonic() + wait, backoff)
        return wait

    def note_clock_step(self) -> timedelta | None:
        """Compare the wall clock with the monotonic clock since the last call; a step of the
        wall clock is logged (once: the next call measures from here) and returned."""
        wall, mono = self.clock(), self.monotonic()
        mark, self._clock_mark = self._clock_mark, (wall, mono)
        if mark is None:
            return None
        step = (wall - mark[0]).total_seconds() - (mono - mark[1])
        if abs(step) < CLOCK_STEP_SECONDS:
            return None
        size = timedelta(seconds=round(abs(step)))
        if step > 0:
            log.warning(
                "the wall clock jumped forward by %s (now %s): a job due in between runs once now",
                size,
                wall.astimezone(self.tz).isoformat(timespec="seconds"),
            )
        else:
            log.warning(
                "the wall clock stepped back by %s (now %s): jobs already run are not run again "
                "until their next due time; status polls go on (%s)",
                size,
                wall.astimezone(self.tz).isoformat(timespec="seconds"),
                self.rules["poll"],
            )
        return timedelta(seconds=step)

    async def scheduler_pass(self) -> None:
        """Run every job that is due now (each once), then the status poll if it is due."""
        for job, due in self.due_jobs(self.clock()):
            if self._stopping:
                return
            try:
                await self.run_job(job, due)
            except StoreFull:
                raise  # nothing else can be stored either: the scheduler waits for room
            except FsmError as exc:
                self.counts.job_failures += 1
                log.error(
                    "job %s failed: %s%s; trying again in %.0f s",
                    job,
                    exc.message,
                    f" (hint: {exc.hint})" if exc.hint else "",
                    self._failed(job),
                )
            else:
                self._retry.pop(job, None)
        await self._pmd_update()
        if self.rules["poll"].kind != "off" and (self._poll_at is None or self._poll_at <= self.monotonic()):
            try:
                await self.poll()
            except StoreFull:
                raise
            except FsmError as exc:
                self.counts.job_failures += 1
                log.error("status poll failed: %s", exc.message)
            # Counted on the monotonic clock from now, so a step of the wall clock neither
            # stalls the polls (back) nor bunches them (forward).
            now = self.clock()
            after = next_due(self.rules["poll"], now, self.tz)
            self._poll_at = self.monotonic() + ((after - now).total_seconds() if after else RECHECK_SECONDS)

    def _pmd_due(self, now: datetime) -> datetime | None:
        try:
            return self.pmd_updater.next_due(now)
        except FsmError as exc:  # a bad [pmd.update]: say so once, keep everything else running
            if not self._pmd_warned:
                self._pmd_warned = True
                log.error("PMD updates are off: %s (%s)", exc.message, exc.hint)
            return None

    async def _pmd_update(self) -> None:
        """The daily PMD bundle check ([pmd.update]); a download runs in a thread so polls and
        sends go on. A new bundle is picked up by the next read (``pool``)."""
        now = self.clock()
        due = self._pmd_due(now)
        if self._stopping or due is None or due > now:
            return
        result = await asyncio.to_thread(self.pmd_updater.update_if_due, now)
        if result.outcome == "failed":
            log.error("PMD update from %s failed: %s", result.source, result.message)
        elif result.outcome == "installed":
            log.info("PMD bundle version %s installed from %s", result.version, result.source)

    async def _sleep(self, seconds: float, event: asyncio.Event) -> None:
        """Sleep ``seconds`` of monotonic time (asyncio's clock), or until ``event`` or a stop."""
        timeout = max(0.0, seconds)
        waiter = asyncio.ensure_future(event.wait())
        stopper = asyncio.ensure_future(self._stop_event.wait())
        try:
            await asyncio.wait({waiter, stopper}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            stopper.cancel()

    async def _scheduler(self) -> None:
        never = asyncio.Event()
        while not self._stopping:
            self.note_clock_step()
            try:
                await self.scheduler_pass()
            except StoreFull as exc:
                self.counts.job_failures += 1
                self._disk_full(exc)
                await self._wait_for_room()
                continue
            except Exception:  # a bug in one pass must not end the schedules: log, wait, go on
                self.counts.job_failures += 1
                log.exception("a scheduler pass failed; trying again in %.0f s", BUG_RETRY_SECONDS)
                await self._sleep(BUG_RETRY_SECONDS, never)
                continue
            if self._full_since is not None:
                self._disk_has_room()
            if self._stopping:
                break
            await self._sleep(self.sleep_seconds(), never)

    def _disk_full(self, exc: StoreFull) -> None:
        """Say once per episode that the disk is full, in the log and for `fsm-client status`."""
        if self._full_since is not None:
            log.debug("still full: %s", exc.message)
            return
        self._full_since = self.clock()
        log.error(
            "%s: what was read or queued meanwhile is not stored and counts as never taken (the "
            "next read takes it again); retrying every %.0f s (hint: %s)",
            exc.message,
            DISK_RECHECK_SECONDS,
            exc.hint,
        )
        if not self.health.record(exc.message, exc.hint, self._full_since):
            log.error("could not record the full disk for `fsm-client status` in %s", self.health.path)

    def _disk_has_room(self) -> None:
        log.info(
            "the data disk has room again (%d bytes free at %s), full since %s: going on",
            self.store.free_bytes(),
            str(self.data_dir),
            self._full_since.isoformat(timespec="seconds") if self._full_since else "?",
        )
        self._full_since = None
        self.health.clear()

    async def _wait_for_room(self) -> None:
        """Return once a small write to the store succeeds again (or the daemon stops)."""
        never = asyncio.Event()
        while not self._stopping:
            await self._sleep(DISK_RECHECK_SECONDS, never)
            try:
                self.store.probe_write()
            except StoreFull:
                continue
            return

    async def _outbox_worker(self) -> None:
        while not self._stopping:
            self._outbox_event.clear()
            retry = self.config.outbox.retry_initial
            try:
                result = await self.sender.drain(stop=lambda: self._stopping)
            except StoreFull as exc:  # a sent chunk could not be marked: it goes again (same number)
                self._disk_full(exc)
                await self._sleep(DISK_RECHECK_SECONDS, asyncio.Event())
                continue
            except FsmError as exc:  # e.g. a [smtp] ca_file that went missing: say what to fix
                log.error("cannot send the outbox: %s (hint: %s)", exc.message, exc.hint)
                await self._sleep(retry, asyncio.Event())
                continue
            except Exception:  # a bug must not end delivery: log it and try again later
                log.exception("the outbox worker failed; retrying in %.1f s", retry)
                await self._sleep(retry, asyncio.Event())
                continue
            self.counts.add_drain(result)
            if self._stopping:
                break
            # Also look again now and then: `fsm-client resend` or `send` in another process
            # may have queued envelopes without waking this one.
            idle = OUTBOX_RECHECK_SECONDS
            if self.store.outbox_depth():
                idle = min(idle, self.sender.wait_seconds())
            await self._sleep(idle, self._outbox_event)

    def _purge(self) -> None:
        o = self.config.outbox
        self.store.purge(
            now=self.clock(), envelope_days=o.retention_days, plaintext_days=o.plaintext_retention_days
        )

    # -- entry points --

    def stop(self) -> None:
        """Take no new work; the current step finishes (see ``run``)."""
        self._stopping = True
        self._stop_event.set()

    async def send_now(self, *, read: bool = True) -> Counts:
        """`fsm-client send`: read every target, queue a periodic report, and drain the outbox.
        While `fsm-client run` holds the data dir, the report is only queued: the daemon sends it."""
        if read:
            await self.full_read()
        self.queue("periodic")
        with RunLock(self.data_dir).held() as mine:
            if mine:
                self.counts.add_drain(await self.sender.drain(force=True))
            else:
                self.deferred = True
                log.info("fsm-client run is using %s: it will send the report", self.data_dir)
        return self.counts

    async def run(self, *, once: bool = False, install_signals: bool = True) -> Counts:
        """The daemon. ``once``: run what is due and drain the outbox, then return."""
        with RunLock(self.data_dir).held(required=True):
            return await self._run(once=once, install_signals=install_signals)

    async def _run(self, *, once: bool, install_signals: bool) -> Counts:
        if not once:
            self.health.reserve()  # while there is room: a full disk can still be reported later
            problem = self.health.read()
            if problem is not None:  # left by the last run: cleared by the first pass that stores
                self._full_since = problem.since
        try:
            self._init_schedule(self.clock())
            self._purge()
        except StoreFull as exc:
            if once:
                raise
            self._disk_full(exc)  # the scheduler waits for room
        if self.config.transport.kind == "filedrop" and self.config.filedrop.directory is not None:
            remove_stale_parts(self.config.filedrop.directory)  # a write killed with the last run
        log.info(
            "fsm-client %s running: %d targets, report %s, scan %s, discovery %s, status poll %s (%s); "
            "outbox depth %d",
            self.config.client.id,
            len(self.targets()),
            self.rules["report"],
            self.rules["scan"],
            self.rules["discovery"],
            self.rules["poll"],
            self.config.schedule.timezone,
            self.store.outbox_depth(),
        )
        if once:
            self._poll_at = None  # one poll round each time, also for a Daemon run once again later
            await self.scheduler_pass()
            self.counts.add_drain(await self.sender.drain(force=True))
            log.info(summary_line(self.counts, self.store.outbox_depth()))
            return self.counts
        tasks = [
            asyncio.create_task(self._scheduler(), name="scheduler"),
            asyncio.create_task(self._outbox_worker(), name="outbox"),
        ]
        forced = asyncio.Event()

        def on_signal(sig: signal.Signals) -> None:
            if self._stopping:
                log.warning("second %s: stopping now", sig.name)
                forced.set()
                return
            log.info("%s: finishing the current step, then stopping", sig.name)
            self.stop()

        with capture_signals(on_signal, enabled=install_signals):
            try:
                await self._stop_event.wait()
                force_wait = asyncio.ensure_future(forced.wait())
                finished = asyncio.ensure_future(asyncio.wait(tasks))
                await asyncio.wait(
                    {force_wait, finished}, timeout=self.shutdown_timeout, return_when=asyncio.FIRST_COMPLETED
                )
                force_wait.cancel()
                finished.cancel()
            finally:
                for t in tasks:
                    t.cancel()
                for t in tasks:
                    with contextlib.suppress(asyncio.CancelledError):
                        outcome = await asyncio.gather(t, return_exceptions=True)
                        if outcome and isinstance(outcome[0], Exception):
                            log.error("%s task failed: %r", t.get_name(), outcome[0])
        log.info(summary_line(self.counts, self.store.outbox_depth()))
        return self.counts


class StatusProblem(msgspec.Struct, frozen=True):
    """The daemon's current problem (a full data disk), kept in a file the store cannot hold."""

    error: str
    hint: str
    since: str


class StatusAlert(msgspec.Struct, frozen=True):
    ip: str
    condition: str
    since: str


class ClientStatus(msgspec.Struct, frozen=True):
    """What `fsm-client status` shows (``--json`` prints it as it is)."""

    client_id: str
    last_scan: str | None
    last_send: str | None
    outbox_depth: int
    oldest_unsent_seq: int | None
    last_error: str | None  # the daemon's problem if it has one, else the outbox's last send error
    send_error: str | None
    problem: StatusProblem | None
    next_attempt: str | None
    last_seq: int
    devices: int
    active_alerts: list[StatusAlert]
    next_runs: dict[str, str | None]  # local time: what operators read
    timezone: str


def client_status(config: ClientConfig, store: Store, *, now: datetime | None = None) -> ClientStatus:
    """What `fsm-client status` shows: last scan, last send, outbox depth, next runs. ``last_error``
    is the daemon's current problem (``problem``: a full data disk) if it has one, else the
    outbox's last send error (``send_error``)."""
    now = now or utcnow()
    tz = zone(config.schedule.timezone)
    states = store.schedule_states()
    next_runs: dict[str, str | None] = {}
    for job in (*PERSISTENT_JOBS, "poll"):
        rule = parse_rule(getattr(config.schedule, "status_poll" if job == "poll" else job))
        if job in states:
            missed = latest_due(rule, states[job][0], now, tz)
            at = now if missed is not None else next_due(rule, states[job][0], tz)
        else:
            at = next_due(rule, now, tz)
        next_runs[job] = at.astimezone(tz).isoformat() if at else None  # local: what operators read
    pending = [e for e in store.outbox() if e.sent_at is None]
    problem = HealthFile(store.path.parent).read()  # e.g. a full disk, which the store cannot hold
    send_error = pending[0].last_error if pending else None
    return ClientStatus(
        client_id=config.client.id,
        last_scan=_iso(store.meta_time("last_scan_at")),
        last_send=_iso(store.meta_time("last_send_at")),
        outbox_depth=len(pending),
        oldest_unsent_seq=pending[0].seq if pending else None,
        last_error=problem.error if problem else send_error,
        send_error=send_error,
        problem=StatusProblem(problem.error, problem.hint, problem.since.isoformat()) if problem else None,
        next_attempt=_iso(pending[0].next_attempt_at) if pending else None,
        last_seq=store.last_seq(),
        devices=len(store.devices()),
        active_alerts=[
            StatusAlert(a.ip, a.condition, a.since.isoformat()) for a in store.alert_states(active_only=True)
        ],
        next_runs=next_runs,
        timezone=config.schedule.timezone,
    )


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None


__all__ = [
    "CLOCK_STEP_SECONDS",
    "OUTBOX_RECHECK_SECONDS",
    "PERSISTENT_JOBS",
    "RECHECK_SECONDS",
    "ClientStatus",
    "Counts",
    "Daemon",
    "RunLock",
    "StatusAlert",
    "StatusProblem",
    "client_status",
    "summary_line",
]
