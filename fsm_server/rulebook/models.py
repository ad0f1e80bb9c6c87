"""Notification rules kept in the database (migration 17): a dealer's rules, edited in the portal,
and the users subscribed to them."""

from __future__ import annotations

import peewee

from ..accounts.models import User
from ..db.models import Dealer, JsonTextField, UtcDateTimeField


class _Model(peewee.Model):
    class Meta:
        legacy_table_names = False


class PortalRule(_Model):
    """A ``[[rules]]`` entry made in the portal: ``dealer`` NULL is an administrator's rule (any
    customer); a dealer's rule only ever sees that dealer's customers. ``customers`` holds
    customer ids (empty: every customer the owner serves); ``recipients`` addresses."""

    id: peewee.AutoField[int]
    dealer_id: int | None

    dealer = peewee.ForeignKeyField(Dealer, null=True, on_delete="CASCADE")
    label = peewee.CharField(max_length=100)
    when = peewee.CharField(max_length=32)
    codes = JsonTextField()
    severities = JsonTextField()
    below = peewee.FloatField(null=True)
    supply_kinds = JsonTextField()
    customers = JsonTextField()
    recipients = JsonTextField()
    delay_seconds = peewee.IntegerField(default=0)
    cleared = peewee.BooleanField(default=True)
    lookback_hours = peewee.FloatField(default=24.0)
    enabled = peewee.BooleanField(default=True)
    created_by = peewee.CharField(max_length=200)
    updated_at = UtcDateTimeField()


class RuleSubscription(_Model):
    """A user who gets a rule's mails at ``address`` (about the customers that user may see)."""

    id: peewee.AutoField[int]
    rule_id: int
    user_id: int

    rule = peewee.ForeignKeyField(PortalRule, on_delete="CASCADE", backref="subscriptions")
    user = peewee.ForeignKeyField(User, on_delete="CASCADE")
    address = peewee.CharField(max_length=320)
    created_at = UtcDateTimeField()

    class Meta:
        indexes = ((("rule", "user"), True),)


MODELS: tuple[type[_Model], ...] = (PortalRule, RuleSubscription)


def bind(database: peewee.Database) -> None:
    database.bind(MODELS, bind_refs=False, bind_backrefs=False)


def create_tables(database: peewee.Database) -> None:
    with database.bind_ctx(MODELS):
        database.create_tables(MODELS, safe=True)


__all__ = ["MODELS", "PortalRule", "RuleSubscription", "bind", "create_tables"]
