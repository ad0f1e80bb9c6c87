"""The clients page: per client in scope its key fingerprint, last sequence number, cadence,
silence, latency, sequence gaps with the `fsm-client resend` line to give the customer, the PMD
bundle its newest report named, and (for
administrators and dealers) the reports that named another customer than the client's."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, cast

import msgspec
from peewee import JOIN, fn

from .. import listings as core
from ..config import ReportsSection
from ..db.connect import translated
from ..db.models import Client, Customer, Envelope
from ..reports.health import expected_hours
from ..scoping import Scoped

if TYPE_CHECKING:

    class _ListedClient(Client):  # a client with its customer's name
        customer_name: str | None


#: How many of a client's newest reports its cadence and latency are taken from.
RECENT_REPORTS = 11

#: How long a client's reports naming another customer stay shown (since the newest was ingested).
CLAIM_DAYS = 30


class GapView(msgspec.Struct, kw_only=True):
    first: int
    last: int
    count: int
    kind: str  # missing | incomplete
    resend: str  # the command the customer's admin runs on the client


class ClaimView(msgspec.Struct, kw_only=True):
    """Reports of the client that named another customer (loaded under the client's own)."""

    claimed: str
    reports: int
    last_seq: int


class ClientView(msgspec.Struct, kw_only=True):
    name: str
    customer: str | None
    status: str
    fingerprint: str
    added_at: datetime
    last_seq: int | None
    last_report_at: datetime | None  # sealed
    last_ingested_at: datetime | None
    reports: int
    expected_hours: float
    silent: bool
    latency_seconds: float | None  # median sealed -> ingested of its newest reports
    gaps: list[GapView]
    pmd_bundle: str | None = None  # the PMD bundle its newest report named (None: too old a client)
    claims: list[ClaimView] = msgspec.field(default_factory=list)  # admins and dealers only


def resend_line(first: int, last: int) -> str:
    return f"fsm-client resend --from {first} --to {last}"


def client_views(
    scoped: Scoped, *, now: datetime, settings: ReportsSection | None = None, only: str | None = None
) -> list[ClientView]:
    """The clients in scope (``only``: that one, NotFound when not in scope); four queries."""
    cfg = settings or ReportsSection()
    if only is not None:
        scoped.client(only)
    with translated("cannot list clients"):
        q = (
            scoped.clients(
                Client.id,
                Client.name,
                Client.status,
                Client.fingerprint,
                Client.added_at,
                Customer.name.alias("customer_name"),
            )
            .join(Customer, JOIN.LEFT_OUTER, on=(Client.customer == Customer.id))
            .order_by(Client.name)
        )
        if only is not None:
            q = q.where(Client.name == only)
        clients = list(cast("Iterable[_ListedClient]", q.objects()))
        ids = [c.id for c in clients]
        # per client and customer its reports named (NULL: its own), so that the reports that
        # named another one come with the totals, in the same scan of the client's envelopes
        counted = (
            Envelope.select(
                Envelope.client,
                Envelope.claimed_customer,
                fn.COUNT(Envelope.id),
                fn.MAX(Envelope.seq),
                fn.MAX(Envelope.ingested_at),
            )
            .where(Envelope.client.in_(ids))
            .group_by(Envelope.client, Envelope.claimed_customer)
            .order_by(Envelope.client, Envelope.claimed_customer)
            .tuples()
        )
        totals: dict[int, tuple[int, int | None]] = {}
        claims: dict[int, list[ClaimView]] = defaultdict(list)
        recently = now - timedelta(days=CLAIM_DAYS)
        for client, claimed, n, top_seq, last_in in cast(
            "Iterable[tuple[int, str | None, int, int, datetime | str]]", counted
        ):
            before, top = totals.get(client, (0, None))
            totals[client] = (before + n, top_seq if top is None else max(top, top_seq))
            if claimed is not None and scoped.sees_quarantine and _aware(last_in) >= recently:
                claims[client].append(ClaimView(claimed=claimed, reports=n, last_seq=top_seq))
        rank = fn.ROW_NUMBER().over(partition_by=[Envelope.client], order_by=[Envelope.created_at.desc()])
        inner = Envelope.select(
            Envelope.client,
            Envelope.kind,
            Envelope.created_at,
            Envelope.ingested_at,
            Envelope.pmd_bundle,
            rank.alias("rank"),
        ).where(Envelope.client.in_(ids))
        recent: dict[int, list[tuple[str, datetime, datetime, str | None]]] = defaultdict(list)
        newest = (
            Envelope.select(
                inner.c.client_id, inner.c.kind, inner.c.created_at, inner.c.ingested_at, inner.c.pmd_bundle
            )
            .from_(inner)
            .where(inner.c.rank <= RECENT_REPORTS)
            .tuples()
        )
        for client, kind, created, ingested, bundle in cast(
            "Iterable[tuple[int, str, datetime | str, datetime | str, str | None]]", newest
        ):
            recent[client].append((kind, _aware(created), _aware(ingested), bundle))
        gaps = core.gaps(client_ids=ids)
    by_client: dict[str, list[GapView]] = defaultdict(list)
    for g in gaps:
        by_client[g.client].append(
            GapView(
                first=g.first, last=g.last, count=g.count, kind=g.kind, resend=resend_line(g.first, g.last)
            )
        )
    out = []
    for c in clients:
        rows = sorted(recent.get(c.id, []), key=lambda r: r[1])
        periodic = [at for kind, at, _, _ in rows if kind in ("periodic", "inventory")]
        hours = expected_hours(periodic, cfg.expected_report_hours)
        last = rows[-1] if rows else None
        reference = last[1] if last else c.added_at
        silent = c.status == "active" and now - reference > timedelta(hours=hours + cfg.silence_grace_hours)
        n, last_seq = totals.get(c.id, (0, None))
        out.append(
            ClientView(
                name=c.name,
                customer=c.customer_name,
                status=c.status,
                fingerprint=c.fingerprint,
                added_at=c.added_at,
                last_seq=last_seq,
                last_report_at=last[1] if last else None,
                last_ingested_at=last[2] if last else None,
                reports=n,
                expected_hours=hours,
                silent=silent,
                latency_seconds=statistics.median((i - s).total_seconds() for _, s, i, _ in rows)
                if rows
                else None,
                gaps=by_client.get(c.name, []),
                pmd_bundle=last[3] if last else None,
                claims=claims.get(c.id, []),
            )
        )
    return out


def _aware(value: datetime | str) -> datetime:
    """A time read through a subquery's columns (no field conversion): aware UTC."""
    from ..db.models import UtcDateTimeField

    field = UtcDateTimeField()
    converted = field.python_value(value)
    assert isinstance(converted, datetime)
    return converted


__all__ = [
    "CLAIM_DAYS",
    "RECENT_REPORTS",
    "ClaimView",
    "ClientView",
    "GapView",
    "client_views",
    "resend_line",
]
