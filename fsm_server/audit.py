"""The audit log: who did what in the portal (and through `fsm-server users`), hash-chained.

Each entry's hash is SHA-256 over the previous entry's hash and this entry's fields, so changing,
inserting or deleting an entry anywhere before the newest breaks the chain at that entry, and
``verify`` names it. (Cutting entries off the end leaves a shorter, intact chain: compare the
count or the newest hash with a copy kept elsewhere to see that.)

>>> import tempfile, pathlib
>>> from fsm_server.db import open_database
>>> db = open_database("", data_dir=pathlib.Path(tempfile.mkdtemp()))
>>> record("login", actor="alice", address="192.0.2.1").action
'login'
>>> verify().ok
True
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime

import msgspec
import peewee

from .accounts.models import AuditEntry
from .db.connect import translated

GENESIS = "0" * 64
_LOCK_KEY = 0x46534D5F41554454  # "FSM_AUDT": one writer appends at a time (PostgreSQL)
MAX_TARGET = 300


class AuditRecord(msgspec.Struct, kw_only=True):
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    detail: dict[str, object]
    dealer: str | None
    address: str
    entry_hash: str


class Verdict(msgspec.Struct, kw_only=True):
    """The result of ``verify``: ``first_bad`` is the id of the first entry that does not chain."""

    ok: bool
    entries: int
    first_bad: int | None = None
    problem: str = ""
    newest_hash: str = GENESIS


def _hash(
    prev: str,
    at: datetime,
    actor: str,
    action: str,
    target: str,
    detail: str,
    dealer: str | None,
    address: str,
) -> str:
    fields = [
        prev,
        at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        actor,
        action,
        target,
        detail,
        dealer,
        address,
    ]
    return hashlib.sha256(msgspec.json.encode(fields)).hexdigest()


def _to_record(e: AuditEntry) -> AuditRecord:
    try:
        detail = msgspec.json.decode(e.detail) if e.detail else {}
    except msgspec.DecodeError:
        detail = {"unreadable": e.detail}
    return AuditRecord(
        id=e.id,
        at=e.at,
        actor=e.actor,
        action=e.action,
        target=e.target,
        detail=detail if isinstance(detail, dict) else {"value": detail},
        dealer=e.dealer,
        address=e.address,
        entry_hash=e.entry_hash,
    )


def record(
    action: str,
    *,
    actor: str,
    target: str = "",
    detail: Mapping[str, object] | None = None,
    dealer: str | None = None,
    address: str = "",
    now: datetime | None = None,
) -> AuditRecord:
    """Append one entry (its own transaction, or part of the caller's)."""
    at = now or datetime.now(UTC)
    detail_text = msgspec.json.encode(dict(detail or {})).decode()
    target = target[:MAX_TARGET]
    db = AuditEntry._meta.database
    with translated(f"cannot write the audit entry {action!r}"), db.atomic():
        if isinstance(db, peewee.PostgresqlDatabase):
            db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        last = AuditEntry.select(AuditEntry.entry_hash).order_by(AuditEntry.id.desc()).first()
        prev = last.entry_hash if last else GENESIS
        entry = AuditEntry.create(
            at=at,
            actor=actor[:64],
            action=action[:64],
            target=target,
            detail=detail_text,
            dealer=dealer,
            address=address[:64],
            prev_hash=prev,
            entry_hash=_hash(prev, at, actor[:64], action[:64], target, detail_text, dealer, address[:64]),
        )
    return _to_record(entry)


def entries(
    *, dealer: str | None = None, only_dealer: bool = False, limit: int = 100, before: int | None = None
) -> list[AuditRecord]:
    """The newest entries first; ``only_dealer``: only those whose ``dealer`` is ``dealer``."""
    with translated("cannot read the audit log"):
        q = AuditEntry.select().order_by(AuditEntry.id.desc()).limit(max(1, min(limit, 1000)))
        if only_dealer:
            q = q.where(AuditEntry.dealer == dealer)
        if before is not None:
            q = q.where(AuditEntry.id < before)
        return [_to_record(e) for e in q]


def verify(*, batch: int = 5000) -> Verdict:
    """Walk the chain from the first entry; stops at the first one that does not chain."""
    prev = GENESIS
    count = 0
    last_id = 0
    with translated("cannot read the audit log"):
        while True:
            rows = list(
                AuditEntry.select().where(AuditEntry.id > last_id).order_by(AuditEntry.id).limit(batch)
            )
            if not rows:
                return Verdict(ok=True, entries=count, newest_hash=prev)
            for e in rows:
                if e.prev_hash != prev:
                    return Verdict(
                        ok=False,
                        entries=count,
                        first_bad=e.id,
                        newest_hash=prev,
                        problem="its previous-entry hash does not match the entry before it "
                        "(an entry before it was removed or inserted)",
                    )
                expected = _hash(prev, e.at, e.actor, e.action, e.target, e.detail, e.dealer, e.address)
                if e.entry_hash != expected:
                    return Verdict(
                        ok=False,
                        entries=count,
                        first_bad=e.id,
                        newest_hash=prev,
                        problem="its fields do not match its hash (the entry was changed)",
                    )
                prev = e.entry_hash
                count += 1
                last_id = e.id


__all__ = ["GENESIS", "AuditRecord", "Verdict", "entries", "record", "verify"]
