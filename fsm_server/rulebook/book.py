"""Notification rules as the portal edits them, scoped: an administrator's rules (any customer)
are seen by administrators; a dealer's rules by that dealer's users, who alone edit them; a
customer user sees the rules of its customers' dealers that watch one of its customers, and may
subscribe to them (its mails then name only its own customers, ``engine.stored_rules``).
Another tenant's rule is ``NotFound``, like one that does not exist.

The customers a viewer may name come from ``Scoped`` (the scoping helper); the dealers whose
rules a viewer sees are those of the customers in its scope, plus a dealer user's own dealer.
"""

from __future__ import annotations

from datetime import datetime

import msgspec
import peewee

from ..addresses import parse_addresses
from ..config import RuleSection
from ..db.connect import translated
from ..db.models import Customer, Dealer
from ..errors import NotFound, NotifyError
from ..scoping import Scoped, Viewer
from .models import PortalRule, RuleSubscription

#: what every rule may watch; ``backup`` is the server's own, for administrators' rules only
KINDS: tuple[str, ...] = (
    "alert",
    "supply_level",
    "supply_days",
    "silent_client",
    "silent_device",
    "sequence_gap",
    "counter_anomaly",
    "backup",
)
DEALER_KINDS = tuple(k for k in KINDS if k != "backup")
PREFIX = "portal-"


def engine_name(rule_id: int) -> str:
    """The name the rules engine (and its mails' ``X-Fsm-Rule``) knows a portal rule by; stable
    when the rule's label changes, so its open conditions are not mailed again."""
    return f"{PREFIX}{rule_id}"


class RuleForm(msgspec.Struct, kw_only=True):
    """What the rule form sends (names, not ids)."""

    label: str
    when: str
    codes: list[str] = msgspec.field(default_factory=list)
    severities: list[str] = msgspec.field(default_factory=list)
    below: float | None = None
    supply_kinds: list[str] = msgspec.field(default_factory=list)
    customers: list[str] = msgspec.field(default_factory=list)
    recipients: str = ""
    delay_seconds: int = 0
    cleared: bool = True
    lookback_hours: float = 24.0
    enabled: bool = True


class RuleView(msgspec.Struct, kw_only=True):
    id: int
    name: str  # engine_name
    label: str
    dealer: str | None
    when: str
    codes: list[str]
    severities: list[str]
    below: float | None
    supply_kinds: list[str]
    customers: list[str]
    recipients: list[str]
    delay_seconds: int
    cleared: bool
    lookback_hours: float
    enabled: bool
    created_by: str
    updated_at: datetime
    editable: bool
    subscribers: int
    my_address: str | None  # the viewer's subscription


def _dealer_id(name: str | None) -> int | None:
    row = Dealer.get_or_none(Dealer.name == name) if name else None
    return row.id if row is not None else None


def _visible(scoped: Scoped, viewer: Viewer) -> peewee.ModelSelect[PortalRule]:
    q = PortalRule.select()
    if scoped.sees_all:
        return q
    dealers = {c.dealer_id for c in scoped.customers() if c.dealer_id is not None}
    if scoped.role == "dealer":
        own = _dealer_id(viewer.dealer)
        dealers = {own} if own is not None else set()
    return q.where(PortalRule.dealer.in_(sorted(dealers)))


def _editable(scoped: Scoped, rule: PortalRule, own_dealer: int | None) -> bool:
    """Administrators edit every rule, a dealer user (of ``own_dealer``) its dealer's."""
    if scoped.role == "admin":
        return True
    return scoped.role == "dealer" and rule.dealer_id is not None and rule.dealer_id == own_dealer


class _Lookups(msgspec.Struct):
    """What the views of some rules need besides the rules, read in a fixed number of queries
    whatever their number."""

    customers: dict[int, str]
    dealers: dict[int, str]
    own_dealer: int | None  # a dealer user's dealer
    subscriptions: dict[int, list[tuple[int, str]]]  # rule id -> (user id, address) of each


def _lookups(scoped: Scoped, viewer: Viewer, rules: peewee.ModelSelect[PortalRule]) -> _Lookups:
    """Names and subscriptions for the rules ``rules`` selects."""
    dealers = {d.id: d.name for d in Dealer.select(Dealer.id, Dealer.name)}
    own = None
    if scoped.role == "dealer":
        own = next((i for i, name in dealers.items() if name == viewer.dealer), None)
    subs = (
        RuleSubscription.select(RuleSubscription.rule, RuleSubscription.user, RuleSubscription.address)
        .where(RuleSubscription.rule.in_(rules.select(PortalRule.id)))
        .order_by(RuleSubscription.id)
    )
    subscriptions: dict[int, list[tuple[int, str]]] = {}
    for sub in subs:
        subscriptions.setdefault(sub.rule_id, []).append((sub.user_id, sub.address))
    customers = {c.id: c.name for c in Customer.select(Customer.id, Customer.name)}
    return _Lookups(customers, dealers, own, subscriptions)


def _view(scoped: Scoped, rule: PortalRule, found: _Lookups, user_id: int | None) -> RuleView | None:
    """The rule as the viewer sees it; None for a customer user whose customers it does not watch."""
    names = found.customers
    customers = [names[i] for i in rule.customers if i in names]
    if scoped.role == "customer":
        mine = {names[i] for i in scoped.customer_ids or () if i in names}
        if customers and not (set(customers) & mine):
            return None
        customers = sorted(set(customers) & mine) if customers else sorted(mine)
    subs = found.subscriptions.get(rule.id, [])
    return RuleView(
        id=rule.id,
        name=engine_name(rule.id),
        label=rule.label,
        dealer=found.dealers.get(rule.dealer_id) if rule.dealer_id is not None else None,
        when=rule.when,
        codes=list(rule.codes),
        severities=list(rule.severities),
        below=rule.below,
        supply_kinds=list(rule.supply_kinds),
        customers=customers,
        recipients=list(rule.recipients) if scoped.role != "customer" else [],
        delay_seconds=rule.delay_seconds,
        cleared=rule.cleared,
        lookback_hours=rule.lookback_hours,
        enabled=rule.enabled,
        created_by=rule.created_by,
        updated_at=rule.updated_at,
        editable=_editable(scoped, rule, found.own_dealer),
        subscribers=len(subs),
        my_address=next((address for user, address in subs if user == user_id), None),
    )


def list_rules(scoped: Scoped, viewer: Viewer, *, user_id: int | None = None) -> list[RuleView]:
    """The rules in scope, in a fixed number of queries however many there are."""
    with translated("cannot list the notification rules"):
        rules = _visible(scoped, viewer)
        found = _lookups(scoped, viewer, rules)
        views = [_view(scoped, r, found, user_id) for r in rules.order_by(PortalRule.id)]
    return [v for v in views if v is not None]


def get_rule(scoped: Scoped, viewer: Viewer, rule_id: int, *, user_id: int | None = None) -> RuleView:
    with translated("cannot read the notification rule"):
        rules = _visible(scoped, viewer).where(PortalRule.id == rule_id)
        row = rules.get_or_none()
        view = _view(scoped, row, _lookups(scoped, viewer, rules), user_id) if row is not None else None
    if view is None:
        raise NotFound(f"no notification rule {rule_id}", hint="see the rules page")
    return view


def _checked(form: RuleForm, kinds: tuple[str, ...]) -> RuleSection:
    """The form as a rules-engine rule, with every bound of ``[[rules]]`` applied."""
    label = " ".join(form.label.split())
    if not label or len(label) > 100:
        raise NotifyError("a rule needs a name of 1 to 100 characters", hint="e.g. 'Jams at ACME'")
    if form.when not in kinds:
        raise NotifyError(f"a rule cannot watch {form.when!r}", hint=f"pick one of {', '.join(kinds)}")
    if form.when in ("supply_level", "supply_days") and form.below is None:
        raise NotifyError(f"a {form.when} rule needs 'below'", hint="e.g. 10 (percent) or 7 (days remaining)")
    try:
        return msgspec.convert(
            {
                "name": label,
                "when": form.when,
                "codes": [c for c in form.codes if c][:50],
                "severities": [s for s in form.severities if s][:10],
                "below": form.below,
                "supply_kinds": [k for k in form.supply_kinds if k][:20],
                "delay_seconds": form.delay_seconds,
                "cleared": form.cleared,
                "lookback_hours": form.lookback_hours,
            },
            RuleSection,
        )
    except msgspec.ValidationError as exc:
        raise NotifyError(f"the rule is not valid: {exc}", hint="correct the field it names") from None


def save_rule(
    scoped: Scoped, viewer: Viewer, form: RuleForm, *, by: str, now: datetime, rule_id: int | None = None
) -> RuleView:
    """Create (``rule_id`` None) or change a rule; NotifyError saying what is wrong, NotFound for a
    rule or customer outside the scope."""
    if scoped.role not in ("admin", "dealer"):
        raise NotFound("customer users do not edit rules", hint="subscribe to your dealer's rules")
    section = _checked(form, KINDS if scoped.role == "admin" else DEALER_KINDS)
    recipients = parse_addresses(form.recipients, error=NotifyError, required=False)
    with translated("cannot save the notification rule"), PortalRule._meta.database.atomic():
        customer_ids = sorted({scoped.customer_named(name).id for name in form.customers if name})
        dealer = None if scoped.role == "admin" else _dealer_id(viewer.dealer)
        if scoped.role == "dealer" and dealer is None:
            raise NotifyError("your account names no dealer that exists", hint="ask an administrator")
        values = {
            "label": section.name,
            "when": section.when,
            "codes": section.codes,
            "severities": section.severities,
            "below": section.below,
            "supply_kinds": section.supply_kinds,
            "customers": customer_ids,
            "recipients": recipients,
            "delay_seconds": section.delay_seconds,
            "cleared": section.cleared,
            "lookback_hours": section.lookback_hours,
            "enabled": form.enabled,
            "updated_at": now,
        }
        if rule_id is None:
            return get_rule(scoped, viewer, PortalRule.create(dealer=dealer, created_by=by, **values).id)
        found = _visible(scoped, viewer).where(PortalRule.id == rule_id).get_or_none()
        if found is None or not _editable(scoped, found, dealer):
            raise NotFound(f"no notification rule {rule_id}", hint="see the rules page")
        PortalRule.update(**values).where(PortalRule.id == found.id).execute()
        return get_rule(scoped, viewer, found.id)


def delete_rule(scoped: Scoped, viewer: Viewer, rule_id: int) -> RuleView:
    found = get_rule(scoped, viewer, rule_id)
    if not found.editable:
        raise NotFound(f"no notification rule {rule_id}", hint="see the rules page")
    with translated("cannot delete the notification rule"):
        PortalRule.delete().where(PortalRule.id == rule_id).execute()
    return found


def subscribe(
    scoped: Scoped, viewer: Viewer, rule_id: int, *, user_id: int, address: str, now: datetime
) -> RuleView:
    """Send this rule's mails to ``address`` too (the viewer's customers' only, for a customer user)."""
    get_rule(scoped, viewer, rule_id)  # NotFound outside the scope
    [checked] = parse_addresses(address, error=NotifyError, limit=1)
    with translated("cannot save the subscription"):
        RuleSubscription.delete().where(
            RuleSubscription.rule == rule_id, RuleSubscription.user == user_id
        ).execute()
        RuleSubscription.create(rule=rule_id, user=user_id, address=checked, created_at=now)
    return get_rule(scoped, viewer, rule_id, user_id=user_id)


def unsubscribe(scoped: Scoped, viewer: Viewer, rule_id: int, *, user_id: int) -> RuleView:
    get_rule(scoped, viewer, rule_id)
    with translated("cannot remove the subscription"):
        RuleSubscription.delete().where(
            RuleSubscription.rule == rule_id, RuleSubscription.user == user_id
        ).execute()
    return get_rule(scoped, viewer, rule_id, user_id=user_id)


__all__ = [
    "DEALER_KINDS",
    "KINDS",
    "PREFIX",
    "RuleForm",
    "RuleView",
    "delete_rule",
    "engine_name",
    "get_rule",
    "list_rules",
    "save_rule",
    "subscribe",
    "unsubscribe",
]
