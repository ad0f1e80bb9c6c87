"""The outbox as the commands show it: each report with the state of its sending."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from .store import OutboxEntry, Store

OutboxState = Literal["sent", "retrying", "pending"]


class OutboxRow(msgspec.Struct, frozen=True):
    """One report of `fsm-client outbox list` (``--json`` prints these as they are)."""

    seq: int
    kind: str
    state: OutboxState
    created_at: datetime
    sent_at: datetime | None
    chunks: int
    chunks_sent: int
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    retained: bool  # the sealed chunks are still kept (not purged by retention)


def state_of(entry: OutboxEntry) -> OutboxState:
    """sent; retrying (a send of it failed); or pending (not tried yet)."""
    if entry.sent_at is not None:
        return "sent"
    return "retrying" if entry.attempts else "pending"


def outbox_rows(store: Store, *, limit: int) -> list[OutboxRow]:
    """The newest ``limit`` reports of the outbox, oldest first."""
    return [
        OutboxRow(
            seq=e.seq,
            kind=e.kind,
            state=state_of(e),
            created_at=e.created_at,
            sent_at=e.sent_at,
            chunks=e.chunk_count,
            chunks_sent=e.chunks_sent,
            attempts=e.attempts,
            next_attempt_at=e.next_attempt_at,
            last_error=e.last_error,
            retained=e.retained,
        )
        for e in store.outbox(limit=limit)
    ]


__all__ = ["OutboxRow", "OutboxState", "outbox_rows", "state_of"]
