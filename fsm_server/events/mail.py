"""Notification mails: built from Jinja2 templates (``templates/``, or the operator's
``[notify] templates_dir`` first), sent through the SMTP relay of ``[notify]``."""

from __future__ import annotations

import email.policy
import email.utils
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError

from fsm_common.smtp import SmtpTransport
from fsm_protocol.display import display_text

from ..config import NotifySection, RuleSection
from ..db.models import EventState
from ..errors import NotifyError

TEMPLATES = Path(__file__).with_name("templates")


def _shown(value: object) -> object:
    # subjects and details carry what printers report (models, locations, alert texts): a
    # right-to-left override or a control character must not disguise them in a mail client
    return display_text(value) if isinstance(value, str) else value


def templates(directory: Path | None) -> Environment:
    dirs = [str(directory), str(TEMPLATES)] if directory else [str(TEMPLATES)]
    return Environment(
        loader=FileSystemLoader(dirs),
        autoescape=False,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        finalize=_shown,
    )


def build_mail(
    notify: NotifySection,
    rule: RuleSection,
    event: str,
    state: EventState,
    *,
    now: datetime,
    env: Environment | None = None,
) -> tuple[str, list[str], bytes]:
    """(subject, recipients, RFC 5322 bytes) of one notification, from its Jinja2 template."""
    env = env or templates(notify.templates_dir)
    recipients = list(rule.to or notify.to)
    context = {
        "event": event,
        "rule": rule,
        "subject": state.subject,
        "customer": state.customer,
        "detail": state.detail,
        "since": state.first_seen,
        "observed_at": state.observed_at,
        "now": now,
        "duration": now - state.first_seen,
        "key": state.key,
    }
    try:
        subject = env.get_template("subject.txt.j2").render(context).strip()
        body = env.get_template(f"{event}.txt.j2").render(context)
    except TemplateError as exc:
        raise NotifyError(
            f"notification template failed: {exc}",
            hint="fix the templates in [notify] templates_dir (or remove it for the defaults)",
        ) from exc
    msg = EmailMessage()
    msg["From"] = notify.from_addr
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = " ".join(subject.split())
    msg["Date"] = email.utils.format_datetime(now)
    msg["Message-ID"] = email.utils.make_msgid(domain=notify.from_addr.rpartition("@")[2] or "fsm.invalid")
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to these
    msg["X-Fsm-Rule"] = rule.name
    msg["X-Fsm-Event"] = event
    msg["X-Fsm-Key"] = state.key
    if state.observed_at is not None:
        msg["X-Fsm-Observed-At"] = state.observed_at.isoformat()
    msg.set_content(body)
    return msg["Subject"], recipients, msg.as_bytes(policy=email.policy.SMTP)  # CRLF line ends


def smtp_transport(notify: NotifySection) -> SmtpTransport:
    """The SMTP relay notifications go through (the sender the client uses too: same TLS rules)."""
    password = notify.password if notify.username else None
    return SmtpTransport(
        notify.host,
        notify.port,
        security=notify.security,
        username=notify.username or None,
        password=password,
        ca_file=notify.ca_file,
        timeout=notify.timeout,
    )


__all__ = ["TEMPLATES", "build_mail", "smtp_transport", "templates"]
