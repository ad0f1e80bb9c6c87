"""The API's table (migration ``m017_api_tokens``): tokens scoped to a dealer or a customer.

A token is stored as the SHA-256 of its text only (256 random bits: a fast hash is enough, as for
session tokens), with the first characters kept apart so people can tell their tokens apart.
"""

from __future__ import annotations

import peewee

from ..db.models import Customer, Dealer, UtcDateTimeField


class _Model(peewee.Model):
    class Meta:
        legacy_table_names = False


class ApiToken(_Model):
    """A bearer token of the read-only API; exactly one of ``dealer`` and ``customer`` is set."""

    id: peewee.AutoField[int]
    dealer_id: int | None
    customer_id: int | None

    name = peewee.CharField(max_length=100)  # what it is for ("ERP export"), chosen by its maker
    token_hash = peewee.CharField(max_length=64, unique=True)
    prefix = peewee.CharField(max_length=16)  # the token's first characters, shown in listings
    dealer = peewee.ForeignKeyField(Dealer, null=True, on_delete="CASCADE")
    customer = peewee.ForeignKeyField(Customer, null=True, on_delete="CASCADE")
    created_by = peewee.CharField(max_length=64)
    created_at = UtcDateTimeField()
    revoked_at = UtcDateTimeField(null=True)
    revoked_by = peewee.CharField(max_length=64, null=True)
    last_used_at = UtcDateTimeField(null=True)
    last_used_address = peewee.CharField(max_length=64, null=True)


MODELS: tuple[type[_Model], ...] = (ApiToken,)


def bind(database: peewee.Database) -> None:
    database.bind(MODELS, bind_refs=False, bind_backrefs=False)


def create_tables(database: peewee.Database) -> None:
    with database.bind_ctx(MODELS):
        database.create_tables(MODELS, safe=True)


__all__ = ["MODELS", "ApiToken", "bind", "create_tables"]
