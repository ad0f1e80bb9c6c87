"""The scheduler beside the ingest daemon: mails each scheduled report when it is due, through the
SMTP relay of ``[notify]``, and logs every send (``report_send``).

A report covers the period before its due time (``times.period_for``), whenever it is actually
sent; a server that was down past several due times sends the latest one once, not a backlog.
A send the relay or the report refuses is tried again after ``[notify] retry_seconds``
(doubling, capped at an hour), up to ``MAX_ATTEMPTS`` times; then that due time is given up and
logged as failed, and the next one is scheduled.

    scheduler = ReportScheduler(db, config)          # now=: the clock (tests advance it)
    sent = await scheduler.run_once()                # or: await scheduler.run(stop)
"""

from __future__ import annotations

import asyncio
import email.policy
import email.utils
import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from fsm_common.backoff import Backoff
from fsm_common.errors import TransportError
from fsm_protocol.errors import FsmError

from ..config import NotifySection, ServerConfig
from ..db.connect import Database, translated
from ..db.models import Customer, Dealer
from ..errors import ReportError
from ..events.mail import smtp_transport
from ..periodic import DbThread, repeat
from ..portal.reports import MEDIA_TYPES, ReportAsk, describe, produce
from .models import ReportSchedule, ReportSend
from .times import next_due, period_for

log = logging.getLogger("fsm_server.schedules")

MAX_ATTEMPTS = 5
MAX_RETRY = timedelta(hours=1)
#: a larger report is not mailed (relays refuse such mails): the log says to pick CSV or one customer
MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024


@dataclass
class Prepared:
    """One due report, built and put in a mail."""

    schedule_id: int
    customer_id: int | None
    dealer_id: int | None
    kind: str
    fmt: str
    start: datetime
    end: datetime
    recipients: list[str]
    message: bytes
    size: int
    subject: str


def build_report_mail(
    notify: NotifySection,
    *,
    schedule: ReportSchedule,
    customer: str | None,
    start: datetime,
    dealer: str | None = None,
    end: datetime,
    attachment: bytes,
    file_name: str,
    now: datetime,
) -> tuple[str, bytes]:
    """(subject, RFC 5322 bytes) of a scheduled report's mail with the report attached."""
    who = describe(customer, dealer)
    last_day = end - timedelta(days=1)
    subject = f"[fsm] {schedule.kind} report - {who} - {start:%Y-%m-%d} to {last_day:%Y-%m-%d}"
    msg = EmailMessage()
    msg["From"] = notify.from_addr
    msg["To"] = ", ".join(schedule.recipients)
    msg["Subject"] = " ".join(subject.split())
    msg["Date"] = email.utils.format_datetime(now)
    msg["Message-ID"] = email.utils.make_msgid(domain=notify.from_addr.rpartition("@")[2] or "fsm.invalid")
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Fsm-Schedule"] = str(schedule.id)
    msg.set_content(
        f"The {schedule.kind} report of {who} for {start:%Y-%m-%d} to {last_day:%Y-%m-%d} (UTC) is "
        f"attached as {schedule.fmt.upper()}.\n\n"
        f"It is sent {'every week' if schedule.cadence == 'weekly' else 'every month'}: "
        f"{schedule.created_by} scheduled it on the fsm portal's Reports page, where it can be "
        f"stopped.\n"
    )
    maintype, subtype = MEDIA_TYPES[schedule.fmt].split(";")[0].split("/")
    msg.add_attachment(attachment, maintype=maintype, subtype=subtype, filename=file_name)
    return msg["Subject"], msg.as_bytes(policy=email.policy.SMTP)


class ReportScheduler:
    """Sends the scheduled reports that are due (see the module docstring)."""

    def __init__(
        self,
        db: Database,
        config: ServerConfig,
        *,
        now: Callable[[], datetime] | None = None,
        open_transport: Callable[[NotifySection], Any] = smtp_transport,
        check_seconds: float = 60.0,
    ) -> None:
        self.db = db
        self.config = config
        self.notify = config.notify
        self.now = now or (lambda: datetime.now(UTC))
        self.open_transport = open_transport
        self.check_seconds = check_seconds
        self.sent = 0
        self.failed = 0
        self._transport: Any = None
        self._thread = DbThread(db, "fsm-schedules-db")

    # -- database work (the worker thread) ---------------------------------------------------------

    def due(self) -> list[int]:
        with translated("cannot read the scheduled reports"):
            q = ReportSchedule.select(ReportSchedule.id).where(ReportSchedule.next_due_at <= self.now())
            return [r.id for r in q.order_by(ReportSchedule.next_due_at, ReportSchedule.id)]

    def prepare(self, schedule_id: int) -> Prepared | None:
        """Build the report of a due schedule and its mail (None: it is gone or no longer due)."""
        with translated("cannot read the scheduled report"):
            row = ReportSchedule.get_or_none(ReportSchedule.id == schedule_id)
            if row is None or row.next_due_at > self.now():
                return None
            customer = Customer.get_by_id(row.customer_id).name if row.customer_id is not None else None
            dealer = Dealer.get_by_id(row.dealer_id).name if row.dealer_id is not None else None
        start, end = period_for(row.cadence, row.next_due_at)
        now = self.now()
        asked = ReportAsk(kind=row.kind, customer=customer, dealer=dealer, start=start, end=end, fmt=row.fmt)
        work = Path(tempfile.mkdtemp(prefix="fsm-scheduled-report-"))
        try:
            path = produce(asked, work, settings=self.config.reports, now=now)
            size = path.stat().st_size
            if size > MAX_ATTACHMENT_BYTES:
                raise ReportError(
                    f"the report is {size} bytes, more than the {MAX_ATTACHMENT_BYTES} a mail may carry",
                    hint="schedule it as CSV, or for one customer",
                )
            subject, message = build_report_mail(
                self.notify,
                schedule=row,
                customer=customer,
                dealer=dealer,
                start=start,
                end=end,
                attachment=path.read_bytes(),
                file_name=asked.file_name(now),
                now=now,
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return Prepared(
            schedule_id=row.id,
            customer_id=row.customer_id,
            dealer_id=row.dealer_id,
            kind=row.kind,
            fmt=row.fmt,
            start=start,
            end=end,
            recipients=list(row.recipients),
            message=message,
            size=size,
            subject=subject,
        )

    def record(self, schedule_id: int, p: Prepared | None, error: str | None, answer: str = "") -> None:
        """Log one send or failure and move the schedule to its next due time (or a retry)."""
        now = self.now()
        with translated("cannot record the scheduled report's send"), self.db.atomic():
            row = ReportSchedule.get_or_none(ReportSchedule.id == schedule_id)
            if row is None:
                return
            start, end = (p.start, p.end) if p else period_for(row.cadence, row.next_due_at)
            ReportSend.create(
                schedule=row.id,
                customer=row.customer_id,
                dealer=row.dealer_id,
                at=now,
                kind=row.kind,
                fmt=row.fmt,
                period_start=start,
                period_end=end,
                recipients=list(row.recipients),
                outcome="sent" if error is None else "failed",
                detail=(answer if error is None else error)[:2000],
                size=p.size if p else 0,
            )
            if error is None or row.attempts + 1 >= MAX_ATTEMPTS:
                row.next_due_at = next_due(row.cadence, row.day, row.hour, after=max(now, row.next_due_at))
                row.attempts = 0
                if error is None:
                    row.last_sent_at = now
            else:
                backoff = Backoff(self.notify.retry_seconds, MAX_RETRY.total_seconds(), jitter=0.0)
                row.next_due_at = now + timedelta(seconds=backoff.delay(row.attempts + 1))
                row.attempts += 1
            row.save()

    # -- async side --------------------------------------------------------------------------------

    async def _db(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await self._thread.call(fn, *args)

    async def send_one(self, schedule_id: int) -> bool:
        """Build, mail and log one due schedule; True when the relay took it."""
        try:
            prepared: Prepared | None = await self._db(self.prepare, schedule_id)
        except FsmError as exc:
            hint = f" ({exc.hint})" if exc.hint else ""
            log.warning("scheduled report %d not built: %s", schedule_id, exc.message)
            self.failed += 1
            await self._db(self.record, schedule_id, None, exc.message + hint)
            return False
        if prepared is None:
            return False
        try:
            if self._transport is None:
                self._transport = self.open_transport(self.notify)
            answer = await self._transport.send(
                prepared.message, mail_from=self.notify.from_addr, rcpt_to=prepared.recipients
            )
        except TransportError as exc:
            log.warning("scheduled report %d not sent: %s", schedule_id, exc.message)
            self.failed += 1
            await self._db(self.record, schedule_id, prepared, f"{exc.message} ({exc.hint})")
            return False
        log.info("scheduled report %d sent: %s", schedule_id, prepared.subject)
        self.sent += 1
        await self._db(self.record, schedule_id, prepared, None, str(answer))
        return True

    async def run_once(self) -> int:
        """Send every schedule that is due now; returns how many went out."""
        if not self.notify.enabled:
            return 0
        sent = 0
        for schedule_id in await self._db(self.due):
            sent += await self.send_one(schedule_id)
        return sent

    async def run(self, stop: asyncio.Event) -> None:
        """Check every ``check_seconds`` and send what is due, until ``stop`` is set."""

        async def check() -> None:
            await self.run_once()

        try:
            await repeat(stop, check, every=self.check_seconds, log=log, what="scheduled reports")
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        transport, self._transport = self._transport, None
        try:
            if transport is not None:
                await transport.aclose()
        finally:
            await self._thread.aclose()


__all__ = ["MAX_ATTACHMENT_BYTES", "MAX_ATTEMPTS", "Prepared", "ReportScheduler", "build_report_mail"]
