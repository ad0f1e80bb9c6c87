"""The state machine of notifications: one "opened" mail when a rule's condition starts, one
"cleared" when it ends.

State lives in the database (``event_state``), so a restart neither repeats nor forgets a mail:

    (not there) --active--> pending --held delay_seconds--> open   (mail "opened")
    pending --gone--> (dropped: it flapped, nobody is told)
    open --gone--> clearing --gone for delay_seconds--> (mail "cleared", state dropped)
    clearing --active again--> open (no mail: it flapped)

With ``delay_seconds = 0`` (the default) both steps happen at the evaluation that sees the
change. Mails are queued in ``notification`` in the same transaction as the state change and
sent by ``drain``; a mail the relay refuses is retried with a doubling delay (capped at an hour).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from ..config import NotifySection, RuleSection
from ..db.models import EventState, Notification
from .mail import build_mail, templates
from .rules import ALL_KINDS, Condition


def apply(
    conditions: Iterable[Condition],
    rules: list[RuleSection],
    notify: NotifySection,
    *,
    now: datetime,
    kinds: Iterable[str] = ALL_KINDS,
) -> list[int]:
    """Move the stored states of rules of ``kinds`` to what ``conditions`` say; queue the mails.

    Runs in one transaction of the caller's; returns the ids of the notifications queued.
    """
    by_name = {r.name: r for r in rules}
    evaluated = {r.name for r in rules if r.when in set(kinds)}
    env = templates(notify.templates_dir)
    now_active = {(c.rule, c.key): c for c in conditions if c.rule in evaluated}
    queued: list[int] = []

    def queue(rule: RuleSection, event: str, st: EventState) -> None:
        subject, recipients, message = build_mail(notify, rule, event, st, now=now, env=env)
        queued.append(
            Notification.insert(
                rule=rule.name,
                key=st.key,
                event=event,
                recipients=recipients,
                subject=subject,
                message=message,
                observed_at=st.observed_at,
                created_at=now,
                next_try_at=now,
            ).execute()
        )

    states = {(s.rule, s.key): s for s in EventState.select()}
    for (rule_name, _key), removed in states.items():
        if rule_name not in by_name:  # the rule was removed from the config
            removed.delete_instance()
    for ident, c in now_active.items():
        rule = by_name[c.rule]
        st = states.get(ident)
        if st is None:
            st = EventState(rule=c.rule, key=c.key, status="pending", first_seen=now)
        elif st.status == "clearing":
            st.status, st.clearing_since = "open", None  # back before the delay ran out: no mail
        st.subject, st.customer, st.detail, st.observed_at, st.last_seen = (
            c.subject,
            c.customer,
            c.detail,
            c.observed_at,
            now,
        )
        if st.status == "pending" and now - st.first_seen >= timedelta(seconds=rule.delay_seconds):
            st.status, st.opened_at = "open", now
            st.save()
            queue(rule, "opened", st)
        else:
            st.save()
    for ident, st in states.items():
        if ident in now_active or st.rule not in evaluated or st.rule not in by_name:
            continue
        rule = by_name[st.rule]
        if st.status == "pending":
            st.delete_instance()  # gone before the delay ran out: it flapped
            continue
        if st.status == "open":
            st.status, st.clearing_since = "clearing", now
        assert st.clearing_since is not None  # set whenever the status is "clearing"
        if now - st.clearing_since >= timedelta(seconds=rule.delay_seconds):
            if rule.cleared:
                queue(rule, "cleared", st)
            st.delete_instance()
        else:
            st.save()
    return queued


__all__ = ["apply"]
