"""Scheduled reports: a report mailed every week or month to its recipients, each send logged.

    from fsm_server.schedules import add_schedule, ReportScheduler
    add_schedule(scoped, customer="ACME", kind="meters", fmt="pdf", cadence="monthly", day=1,
                 hour=6, recipients=["billing@acme.example"], by="north-user", now=now)
    await ReportScheduler(db, config).run_once()      # what `fsm-server ingest` runs beside it

See docs/portal.md, "Scheduled reports".
"""

from .book import (
    ScheduleView,
    SendView,
    add_schedule,
    delete_schedule,
    may_stop,
    parse_recipients,
    schedule,
    schedules,
    sends,
)
from .models import ReportSchedule, ReportSend
from .sender import ReportScheduler, build_report_mail
from .times import CADENCES, next_due, period_for

__all__ = [
    "CADENCES",
    "ReportSchedule",
    "ReportScheduler",
    "ReportSend",
    "ScheduleView",
    "SendView",
    "add_schedule",
    "build_report_mail",
    "delete_schedule",
    "may_stop",
    "next_due",
    "parse_recipients",
    "period_for",
    "schedule",
    "schedules",
    "sends",
]
