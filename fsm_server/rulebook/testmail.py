"""The rule page's "Send a test": one mail made from the real notification templates, sent through
the server's ``[notify]`` relay to everyone who would get the rule's mails."""

from __future__ import annotations

from datetime import datetime

from fsm_common.errors import TransportError

from ..config import NotifySection, RuleSection
from ..db.models import EventState
from ..errors import NotifyError
from ..events.mail import build_mail, smtp_transport


async def send_test(
    notify: NotifySection, rule: RuleSection, *, customer: str, by: str, now: datetime
) -> str:
    """Mail a test of ``rule`` to its recipients; the relay's answer, or NotifyError saying why not."""
    if not rule.to:
        raise NotifyError(
            "the rule has no recipients and nobody is subscribed", hint="add a recipient, or subscribe"
        )
    if not notify.enabled:
        raise NotifyError(
            "notifications are off ([notify] enabled = false)", hint="ask the server's operator"
        )
    state = EventState(
        rule=rule.name,
        key=f"test:{rule.name}",
        status="open",
        first_seen=now,
        subject=f"test of the rule {rule.name!r}, sent by {by}",
        customer=customer,
        detail=(
            f"This is a test of a notification rule, sent from the portal by {by}. When the rule's "
            f"condition ({rule.when}) holds, a mail like this one names the device or client and what "
            "it reports."
        ),
        observed_at=now,
    )
    _, recipients, message = build_mail(notify, rule, "opened", state, now=now)
    transport = smtp_transport(notify)
    try:
        answer = await transport.send(message, mail_from=notify.from_addr, rcpt_to=recipients)
    except TransportError as exc:
        raise NotifyError(f"the test mail was not sent: {exc.message}", hint=exc.hint) from exc
    finally:
        await transport.aclose()
    return str(answer)


__all__ = ["send_test"]
