"""Notification rules kept in the database and edited in the portal, beside the config's
``[[rules]]``: scoped editing (``book``), the rules engine's view of them (``engine``), per-user
subscriptions and the "send a test" button (``testmail``). See docs/portal.md, "Notification rules".

    events = EventService(db, config, extra_rules=stored_rules)
"""

from .book import (
    DEALER_KINDS,
    KINDS,
    RuleForm,
    RuleView,
    delete_rule,
    engine_name,
    get_rule,
    list_rules,
    save_rule,
    subscribe,
    unsubscribe,
)
from .engine import check_config_names, stored_rules
from .models import PortalRule, RuleSubscription

__all__ = [
    "DEALER_KINDS",
    "KINDS",
    "PortalRule",
    "RuleForm",
    "RuleSubscription",
    "RuleView",
    "check_config_names",
    "delete_rule",
    "engine_name",
    "get_rule",
    "list_rules",
    "save_rule",
    "stored_rules",
    "subscribe",
    "unsubscribe",
]
