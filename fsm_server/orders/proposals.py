"""Order proposals made from the supply state ingest keeps (``db.state``), and closed by it.

``after_state`` runs inside a load's transaction for the devices the load touched, right after
``state.after_load``; ``scan`` runs the same rules over every device, a chunk at a time
(`fsm-server orders scan`, and ``scanner.OrderScanner`` beside the ingest daemon), or over one
customer's (after its lead time changed: ``workflow.rescan``). Per chunk: one read of the
supplies' state, one of the customers' settings, one of the orders still waiting for a
replacement, and writes only for what changes.

The rules, per supply:

* a replacement (the fit restarted after the order's cycle) closes an open order as delivered
  at the replacement's time, with how early it came (days before the forecast empty date; < 0:
  after it) and how long after approval; an order delivered or ignored by hand gets the
  replacement noted;
* an open order follows the newest level and forecast;
* a supply with no order in its current cycle is proposed when its forecast empty date is
  within lead + margin days of its newest level ("forecast"), or when the device reports it
  low or empty ("level").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import NamedTuple

from ..config import OrdersSection
from ..db import sql
from ..db.connect import Database
from .models import OPEN_STATES, SupplyOrder
from .partnumbers import part_number

CHUNK = 500
DAY = 86400.0


class Lead(NamedTuple):
    lead_days: int
    margin_days: int


class _Supply(NamedTuple):
    device_id: int
    customer_id: int
    key: str
    description: str
    kind: str
    color: str | None
    percent: float | None
    state: str
    observed_at: datetime
    cycle: datetime | None
    replaced_at: datetime | None
    empty_at: datetime | None


class _Live(NamedTuple):
    id: int
    cycle: datetime | None
    state: str
    approved_at: datetime | None
    empty_at: datetime | None


_SUPPLIES_SQL = """
SELECT s.device_id, d.customer_id, s.key, s.description, s.kind, s.color, s.percent, s.state,
       s.observed_at, s.since, s.replaced_at, s.empty_at
FROM supply_latest s JOIN device d ON d.id = s.device_id
WHERE {devices}
"""
_LIVE_SQL = """
SELECT id, device_id, supply_key, cycle, state, approved_at, empty_at
FROM supply_order WHERE {devices} AND replaced_at IS NULL
"""


def _at(value: object) -> datetime | None:
    return None if value is None else sql.utc(value)


def _days(a: datetime, b: datetime) -> float:
    return round((a - b).total_seconds() / DAY, 2)


def leads(db: Database, customer_ids: Iterable[int], defaults: OrdersSection) -> dict[int, Lead]:
    """Each customer's lead time and margin: its own settings, else ``defaults``."""
    ids = sorted(set(customer_ids))
    out = {c: Lead(defaults.lead_days, defaults.margin_days) for c in ids}
    if ids:
        where, params = sql.in_list(db, "customer_id", ids)
        for c, lead, margin in sql.rows(
            db, f"SELECT customer_id, lead_days, margin_days FROM order_settings WHERE {where}", params
        ):
            out[c] = Lead(lead, margin)
    return out


def _trigger(s: _Supply, lead: Lead) -> str | None:
    if s.empty_at is not None and _days(s.empty_at, s.observed_at) <= lead.lead_days + lead.margin_days:
        return "forecast"
    if s.state in ("low", "empty"):
        return "level"
    return None


def _replaced(s: _Supply, o: _Live) -> bool:
    """The supply was replaced since ``o`` was proposed: its fit restarted after the order's cycle."""
    if s.replaced_at is None or s.cycle == o.cycle:
        return False
    return o.cycle is None or s.replaced_at > o.cycle


def _close(s: _Supply, o: _Live) -> None:
    assert s.replaced_at is not None
    when = s.replaced_at
    changes: dict[object, object] = {SupplyOrder.replaced_at: when}
    if o.state in OPEN_STATES or o.state == "delivered":
        changes[SupplyOrder.early_days] = None if o.empty_at is None else _days(o.empty_at, when)
        changes[SupplyOrder.after_approval_days] = (
            None if o.approved_at is None else _days(when, o.approved_at)
        )
    if o.state in OPEN_STATES:
        changes[SupplyOrder.state] = "delivered"
        changes[SupplyOrder.delivered_at] = when
    SupplyOrder.update(changes).where(SupplyOrder.id == o.id).execute()


def _follow(s: _Supply, o: _Live) -> None:
    SupplyOrder.update(
        {
            SupplyOrder.percent: s.percent,
            SupplyOrder.observed_at: s.observed_at,
            SupplyOrder.empty_at: s.empty_at,
            SupplyOrder.cycle: s.cycle,  # a first level with a percent starts the order's cycle
        }
    ).where(SupplyOrder.id == o.id).execute()


def _proposal(s: _Supply, lead: Lead, reason: str, now: datetime) -> dict[str, object]:
    return {
        "device": s.device_id,
        "customer": s.customer_id,
        "supply_key": s.key,
        "description": s.description,
        "kind": s.kind,
        "color": s.color,
        "part_number": part_number(s.description),
        "cycle": s.cycle,
        "state": "proposed",
        "reason": reason,
        "lead_days": lead.lead_days,
        "margin_days": lead.margin_days,
        "proposed_at": now,
        "percent": s.percent,
        "observed_at": s.observed_at,
        "empty_at": s.empty_at,
    }


def _one_chunk(
    db: Database, device_ids: Sequence[int], defaults: OrdersSection, now: datetime
) -> tuple[int, int]:
    where, params = sql.in_list(db, "s.device_id", device_ids)
    supplies = [
        _Supply(
            r[0],
            r[1],
            r[2],
            r[3] or "",
            r[4],
            r[5],
            r[6],
            r[7],
            sql.utc(r[8]),
            _at(r[9]),
            _at(r[10]),
            _at(r[11]),
        )
        for r in sql.rows(db, _SUPPLIES_SQL.format(devices=where), params)
    ]
    if not supplies:
        return 0, 0
    where, params = sql.in_list(db, "device_id", device_ids)
    live: dict[tuple[int, str], list[_Live]] = {}
    for r in sql.rows(db, _LIVE_SQL.format(devices=where), params):
        live.setdefault((r[1], r[2]), []).append(_Live(r[0], _at(r[3]), r[4], _at(r[5]), _at(r[6])))
    by_customer = leads(db, (s.customer_id for s in supplies), defaults)
    proposed: list[dict[str, object]] = []
    closed = 0
    for s in supplies:
        current = False
        for o in live.get((s.device_id, s.key), []):
            if _replaced(s, o):
                _close(s, o)
                closed += o.state in OPEN_STATES
            elif o.state in OPEN_STATES:
                _follow(s, o)
                current = True
            elif o.cycle == s.cycle:
                current = True  # delivered or ignored by hand in this cycle: not proposed again
        if current or not defaults.enabled:
            continue
        lead = by_customer[s.customer_id]
        reason = _trigger(s, lead)
        if reason is not None:
            proposed.append(_proposal(s, lead, reason, now))
    for i in range(0, len(proposed), 200):
        # a concurrent load that proposed the same supply first wins (the one-open-order index);
        # an error here would refuse the whole report
        SupplyOrder.insert_many(proposed[i : i + 200]).on_conflict_ignore().execute()
    return len(proposed), closed


def after_state(
    db: Database, device_ids: Iterable[int], defaults: OrdersSection, *, now: datetime
) -> tuple[int, int]:
    """Apply the rules to the supplies of ``device_ids`` (their state already updated); returns
    (orders proposed, orders closed by a replacement). Run inside the caller's transaction."""
    ids = sorted(set(device_ids))
    proposed = closed = 0
    for i in range(0, len(ids), CHUNK):
        p, c = _one_chunk(db, ids[i : i + CHUNK], defaults, now)
        proposed, closed = proposed + p, closed + c
    return proposed, closed


def scan(
    db: Database, defaults: OrdersSection, *, now: datetime, customer_id: int | None = None
) -> tuple[int, int]:
    """``after_state`` over every device (of ``customer_id`` when given), ``CHUNK`` devices per
    transaction."""
    proposed = closed = 0
    last = 0
    only = "" if customer_id is None else " AND customer_id = ?"
    while True:
        ids = [
            r[0]
            for r in sql.rows(
                db,
                f"SELECT id FROM device WHERE id > ?{only} ORDER BY id LIMIT {CHUNK}",
                [last] if customer_id is None else [last, customer_id],
            )
        ]
        if not ids:
            return proposed, closed
        with db.peewee.atomic():
            p, c = _one_chunk(db, ids, defaults, now)
        proposed, closed, last = proposed + p, closed + c, ids[-1]


__all__ = ["CHUNK", "Lead", "after_state", "leads", "scan"]
