"""Dealer branding (migration 18): a logo and two colours per dealer."""

from __future__ import annotations

import peewee

from ..db.models import Dealer, UtcDateTimeField


class _Model(peewee.Model):
    class Meta:
        legacy_table_names = False


class DealerBranding(_Model):
    """What a dealer's customers see on their pages and report PDFs: ``logo`` (PNG or JPEG, checked
    by its first bytes when uploaded), the bar colour and the accent (links, buttons)."""

    dealer_id: int

    dealer = peewee.ForeignKeyField(Dealer, primary_key=True, on_delete="CASCADE")
    logo = peewee.BlobField(null=True)
    logo_type = peewee.CharField(max_length=16, null=True)  # image/png | image/jpeg
    logo_sha256 = peewee.CharField(max_length=64, null=True)
    colour = peewee.CharField(max_length=7, null=True)  # "#rrggbb"
    accent = peewee.CharField(max_length=7, null=True)
    updated_by = peewee.CharField(max_length=200)
    updated_at = UtcDateTimeField()


MODELS: tuple[type[_Model], ...] = (DealerBranding,)


def bind(database: peewee.Database) -> None:
    database.bind(MODELS, bind_refs=False, bind_backrefs=False)


def create_tables(database: peewee.Database) -> None:
    with database.bind_ctx(MODELS):
        database.create_tables(MODELS, safe=True)


__all__ = ["MODELS", "DealerBranding", "bind", "create_tables"]
