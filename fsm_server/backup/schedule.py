"""Backups on a schedule, run by the server daemon (`fsm-server ingest`), and what they did.

Every attempt (scheduled or by hand) is a row of ``backup_run``; ``status`` reads them for `fsm-server
backup status`, the health report and the ``backup`` notification rule. The daily backup is due at
``[backup] hour`` local time; a daemon that was down then takes it as soon as it starts, and a
failed attempt is tried again an hour later. After each success the directory is rotated.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec

from fsm_protocol.errors import FsmError

from ..config import BackupSection
from ..db.connect import Database, translated
from ..db.models import BackupRun
from ..errors import BackupError
from ..periodic import DbThread, repeat
from .archive import list_backups
from .keywrap import read_passphrase_file
from .rotation import rotate
from .snapshot import BackupResult, take_backup

log = logging.getLogger("fsm_server.backup")

RETRY = timedelta(hours=1)


@dataclass
class BackupPlan:
    """Where and how backups are taken (``wiring.backup_plan`` builds it from the config)."""

    directory: Path
    settings: BackupSection
    key_file: Path | None = None  # the server key; only used with with_keys


class BackupStatus(msgspec.Struct, kw_only=True):
    """The last backups and what is due; ``missed`` and ``failed`` are what the rules mail about."""

    directory: str
    scheduled: bool
    hour: int
    last_ok_at: datetime | None = None
    last_ok_path: str | None = None
    last_ok_size: int | None = None
    last_attempt_at: datetime | None = None
    last_status: str | None = None  # ok | failed
    last_error: str = ""
    due_by: datetime | None = None  # a backup is missed when none succeeded by then
    missed: bool = False
    failed: bool = False
    files: int = 0
    newest_file: str | None = None


def record(
    db: Database,
    *,
    started: datetime,
    trigger: str,
    status: str,
    max_age_hours: float,
    result: BackupResult | None = None,
    error: str = "",
    now: datetime | None = None,
) -> None:
    finished = now or datetime.now(UTC)
    with translated("cannot record the backup"), db.atomic():
        BackupRun.create(
            started_at=started,
            finished_at=finished,
            trigger=trigger,
            status=status,
            path=str(result.path) if result else "",
            size=result.size if result else 0,
            rows=result.manifest.total_rows if result else 0,
            error=error[:2000],
            due_by=finished + timedelta(hours=max_age_hours),
        )


def _latest(ok: bool | None = None) -> BackupRun | None:
    q = BackupRun.select()
    if ok:
        q = q.where(BackupRun.status == "ok")
    return q.order_by(BackupRun.finished_at.desc(), BackupRun.id.desc()).get_or_none()


def status(plan: BackupPlan | None, *, now: datetime | None = None) -> BackupStatus:
    """The backup state of the database the models are bound to (and of ``plan``'s directory)."""
    now = now or datetime.now(UTC)
    with translated("cannot read the backup history"):
        last, last_ok = _latest(), _latest(ok=True)
    files = list_backups(plan.directory) if plan else []
    s = BackupStatus(
        directory=str(plan.directory) if plan else "",
        scheduled=bool(plan and plan.settings.enabled),
        hour=plan.settings.hour if plan else 0,
        files=len(files),
        newest_file=str(files[-1]) if files else None,
    )
    if last is not None:
        s.last_attempt_at, s.last_status, s.last_error = last.finished_at, last.status, last.error
        s.failed = last.status != "ok"
    if last_ok is not None:
        s.last_ok_at, s.last_ok_path, s.last_ok_size = last_ok.finished_at, last_ok.path, last_ok.size
        s.due_by = last_ok.due_by
        s.missed = now > last_ok.due_by
    return s


def next_due(now: datetime, hour: int, last: BackupRun | None) -> datetime:
    """When the next scheduled backup is due (``now`` or earlier: at once)."""
    local = now.astimezone()
    slot = local.replace(hour=hour, minute=0, second=0, microsecond=0)
    if slot > local:
        slot -= timedelta(days=1)  # the most recent scheduled moment
    if last is None or last.finished_at < slot:
        return now
    if last.status != "ok":
        return min(last.finished_at + RETRY, slot + timedelta(days=1))
    return slot + timedelta(days=1)


def run_backup(
    db: Database,
    plan: BackupPlan,
    *,
    trigger: str = "manual",
    to: Path | None = None,
    with_keys: bool | None = None,
    passphrase: str | None = None,
    now: Callable[[], datetime] | None = None,
) -> BackupResult:
    """Take one backup as ``plan`` says, record it, rotate the directory; a failure is recorded too
    (when the database still takes the record) and raised."""
    clock = now or (lambda: datetime.now(UTC))
    started = clock()
    cfg = plan.settings
    directory = to or plan.directory
    try:
        keys = cfg.with_keys if with_keys is None else with_keys
        if keys and passphrase is None:
            if cfg.passphrase_file is None:
                raise BackupError(
                    "a backup with the server key needs a passphrase",
                    hint="set [backup] passphrase_file (or give --passphrase-file)",
                )
            passphrase = read_passphrase_file(cfg.passphrase_file)
        result = take_backup(
            db,
            directory,
            key_file=plan.key_file if keys else None,
            passphrase=passphrase if keys else None,
            now=started,
        )
        if to is None:
            gone = rotate(directory, daily=cfg.keep_daily, weekly=cfg.keep_weekly, monthly=cfg.keep_monthly)
            if gone:
                log.info("rotation removed %d old backups", len(gone))
    except FsmError as exc:
        try:
            record(
                db,
                started=started,
                trigger=trigger,
                status="failed",
                max_age_hours=cfg.max_age_hours,
                error=f"{exc.message} ({exc.hint})" if exc.hint else exc.message,
                now=clock(),
            )
        except FsmError as again:
            log.error("the failed backup cannot be recorded either: %s", again.message)
        raise
    record(
        db,
        started=started,
        trigger=trigger,
        status="ok",
        max_age_hours=cfg.max_age_hours,
        result=result,
        now=clock(),
    )
    return result


class BackupService:
    """Takes the daily backup beside the ingest daemon, in a thread of its own (its own connection).

    >>> # service = BackupService(db, wiring.backup_plan(ctx))
    >>> # await asyncio.gather(daemon.run(), service.run(stop))
    """

    def __init__(
        self,
        db: Database,
        plan: BackupPlan,
        *,
        now: Callable[[], datetime] | None = None,
        check_seconds: float = 60.0,
    ) -> None:
        self.db = db
        self.plan = plan
        self.now = now or (lambda: datetime.now(UTC))
        self.check_seconds = check_seconds
        self.taken = 0
        self.failed = 0
        self._thread = DbThread(db, "fsm-backup")

    def step(self) -> datetime:
        """Take the backup if it is due; returns when the next one is (runs in the worker thread)."""
        with translated("cannot read the backup history"):
            last = _latest()
        now = self.now()
        due = next_due(now, self.plan.settings.hour, last)
        if due > now:
            return due
        try:
            result = run_backup(self.db, self.plan, trigger="schedule", now=self.now)
            self.taken += 1
            log.info("scheduled backup written: %s", result.path)
        except FsmError as exc:
            self.failed += 1
            log.error("scheduled backup failed: %s", exc.message)
        with translated("cannot read the backup history"):
            return next_due(self.now(), self.plan.settings.hour, _latest())

    async def run(self, stop: asyncio.Event) -> None:
        async def check() -> float:
            due: datetime = await self._thread.call(self.step)
            return (due - self.now()).total_seconds()

        try:
            await repeat(stop, check, every=self.check_seconds, log=log, what="backup schedule")
        finally:
            await self._thread.aclose()


__all__ = ["BackupPlan", "BackupService", "BackupStatus", "next_due", "record", "run_backup", "status"]
