"""Events and notifications: rules in the config, conditions in the database, mails by SMTP.

    from fsm_server.events import EventService
    events = EventService(db, config)            # checks [[rules]] and [notify]
    daemon = IngestDaemon(pipeline, config.mailboxes)
    result = await run_beside(daemon, events, once=once, install_signals=True)

See docs/reports.md, "Notifications".
"""

from __future__ import annotations

from ..db.models import EventState, Notification
from .mail import build_mail
from .rules import ALL_KINDS, ON_INGEST, Condition, active, check_rules
from .service import EventService, run_beside
from .states import apply

__all__ = [
    "ALL_KINDS",
    "ON_INGEST",
    "Condition",
    "EventService",
    "EventState",
    "Notification",
    "active",
    "apply",
    "build_mail",
    "check_rules",
    "run_beside",
]
