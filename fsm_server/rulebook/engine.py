"""The portal's rules as the rules engine takes them (``RuleSection``, like ``[[rules]]``).

``stored_rules()`` is read at every evaluation of ``EventService`` (its ``extra_rules``), so a
rule saved in the portal is in force at the next report or timer tick, without a restart.

Tenancy holds here: a dealer's rule watches only that dealer's customers (the ones it names, or
all of them; a dealer without customers watches nothing), never the server's ``backup``. Its
mails go to the rule's recipients and to subscribed administrators and users of that dealer.
A customer user's subscription becomes a rule of its own (``portal-ID-user-UID``) limited to
the customers that user sees, so its mails never name another customer.
"""

from __future__ import annotations

from collections import defaultdict

from ..accounts.models import User, UserCustomer
from ..config import RuleSection, ServerConfig
from ..db.connect import translated
from ..db.models import Customer, Dealer
from ..errors import NotifyError
from .book import PREFIX, engine_name
from .models import PortalRule, RuleSubscription


def check_config_names(config: ServerConfig) -> None:
    """Config rules may not take the names portal rules have (``portal-...``)."""
    for r in config.rules:
        if r.name.startswith(PREFIX):
            raise NotifyError(
                f"[[rules]] {r.name!r}: names starting with {PREFIX!r} are the portal's rules'",
                hint="rename the rule in the config",
            )


def _section(rule: PortalRule, name: str, customers: list[str], to: list[str]) -> RuleSection:
    return RuleSection(
        name=name,
        when=rule.when,  # type: ignore[arg-type]  # checked by book.save_rule
        codes=list(rule.codes),
        severities=list(rule.severities),
        below=rule.below,
        supply_kinds=list(rule.supply_kinds),
        customers=customers,
        to=to,
        delay_seconds=rule.delay_seconds,
        cleared=rule.cleared,
        lookback_hours=rule.lookback_hours,
    )


def stored_rules() -> list[RuleSection]:
    """The enabled portal rules, with their subscribers, as engine rules (see the module docstring)."""
    with translated("cannot read the portal's notification rules"):
        dealers = {d.id: d.name for d in Dealer.select()}
        names: dict[int, str] = {}
        by_dealer: dict[int | None, list[str]] = defaultdict(list)
        for c in Customer.select(Customer.id, Customer.name, Customer.dealer):
            names[c.id] = c.name
            by_dealer[c.dealer_id].append(c.name)
        rules = list(PortalRule.select().where(PortalRule.enabled == True))  # noqa: E712 (peewee)
        subs: dict[int, list[tuple[User, str]]] = defaultdict(list)
        for s in RuleSubscription.select(RuleSubscription, User).join(User).where(User.enabled == True):  # noqa: E712
            subs[s.rule_id].append((s.user, s.address))
        seen: dict[int, set[str]] = defaultdict(set)
        for link in UserCustomer.select():
            if link.customer_id in names:
                seen[link.user_id].add(names[link.customer_id])
    out: list[RuleSection] = []
    for rule in rules:
        allowed = set(names.values()) if rule.dealer_id is None else set(by_dealer.get(rule.dealer_id, []))
        named = [names[i] for i in rule.customers if i in names and names[i] in allowed]
        if rule.dealer_id is not None and not (named or allowed):
            continue  # nothing to watch: an empty list would mean every customer
        customers = sorted(named or (allowed if rule.dealer_id is not None else []))
        watched = set(customers) or allowed
        to = list(rule.recipients)
        for user, address in subs[rule.id]:
            if user.role == "admin" or (
                user.role == "dealer"
                and rule.dealer_id is not None
                and user.dealer == dealers.get(rule.dealer_id)
            ):
                to.append(address)
            elif user.role == "customer":
                own = sorted(seen[user.id] & watched)
                if own:
                    out.append(_section(rule, f"{engine_name(rule.id)}-user-{user.id}", own, [address]))
        if rule.when == "backup" and rule.dealer_id is not None:
            continue
        if to:
            out.append(_section(rule, engine_name(rule.id), customers, list(dict.fromkeys(to))))
    return out


__all__ = ["check_config_names", "stored_rules"]
