"""The quarantine page: held entries in scope with reason and hint; retry and dismiss go
through the ingest core API (``Pipeline.retry``, ``Loader.dismiss``) for entries in scope only."""

from __future__ import annotations

from datetime import datetime

import msgspec

from ..db.connect import Database, translated
from ..db.loader import Loader
from ..db.models import Quarantine
from ..ingest.pipeline import Pipeline, Verdict
from ..listings import QuarantineRow, quarantine_row
from ..scoping import Scoped

LIMIT = 200


class QuarantinePage(msgspec.Struct, kw_only=True):
    rows: list[QuarantineRow]
    held: int
    status: str | None
    at: datetime


def quarantine_page(
    scoped: Scoped, *, status: str | None = "held", now: datetime, limit: int = LIMIT
) -> QuarantinePage:
    fields = [f for f in Quarantine._meta.sorted_fields if f.name != "raw"]
    with translated("cannot list the quarantine"):
        q = scoped.quarantine(*fields)
        if status is not None:
            q = q.where(Quarantine.status == status)
        rows = [
            quarantine_row(r)
            for r in q.order_by(Quarantine.quarantined_at.desc(), Quarantine.id.desc()).limit(limit)
        ]
        held = scoped.quarantine(Quarantine.id).where(Quarantine.status == "held").count()
    return QuarantinePage(rows=rows, held=held, status=status, at=now)


def quarantine_entry(scoped: Scoped, entry_id: int) -> QuarantineRow:
    """One entry in scope; NotFound otherwise."""
    return quarantine_row(scoped.quarantine_entry(entry_id))


def retry(scoped: Scoped, pipeline: Pipeline, entry_id: int) -> Verdict:
    """Put entry ``entry_id`` (in scope, else NotFound) through the pipeline again."""
    scoped.quarantine_entry(entry_id)
    return pipeline.retry(entry_id)


def dismiss(scoped: Scoped, db: Database, entry_id: int) -> bool:
    """Set entry ``entry_id`` (in scope, else NotFound) aside; False when it was not held."""
    scoped.quarantine_entry(entry_id)
    return bool(Loader(db).dismiss([entry_id]))


__all__ = ["QuarantinePage", "dismiss", "quarantine_entry", "quarantine_page", "retry"]
