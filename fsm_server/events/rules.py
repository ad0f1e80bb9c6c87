"""Notification rules ([[rules]] in the server config) and the conditions they see in the database.

A rule names one kind of condition (``when``), narrows it (alert codes and severities, supply
kinds, a threshold ``below``), scopes it by customer, and says who gets the mail. ``active``
returns every condition that holds *now*, each under a stable key (``device:12:jammed``), which
``notify`` compares with what was active before to send "opened" and "cleared" mails once.

    when             active while                                          key
    alert            the device's newest reading shows a matching code     device:ID:CODE
                     (a group name such as ``jam`` or ``door_open`` matches every code of the group)
    supply_level     a supply's newest percent is below ``below``          device:ID:supply:KIND:COLOR:INDEX
    supply_days      a supply's forecast days remaining is below ``below`` device:ID:days:KIND:COLOR:NAME
    silent_client    no report within the expected interval + grace        client:NAME:silent
    silent_device    the device missing from reports as long               device:ID:silent
    sequence_gap     reports of a client are missing (health's gaps)       client:NAME:gap:FIRST-LAST
    counter_anomaly  a counter was flagged within ``lookback_hours``       counter:ID
    backup           the newest backup attempt failed                      backup:failed
                     no backup succeeded by its due time ([backup])        backup:missed
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, cast

import msgspec
from peewee import fn

from fsm_protocol.vocabulary import CONDITION_GROUPS

from .. import listings
from ..config import ReportsSection, RuleSection, ServerConfig
from ..db.connect import translated
from ..db.models import AlertValue, CounterValue, Reading, SupplyValue
from ..errors import NotifyError
from ..reports.health import ClientHealth, client_health, silent_devices
from ..reports.scope import DeviceInfo, Scope, chunks, devices_in_scope
from ..reports.supplies import supplies

if TYPE_CHECKING:

    class _NewestReading(Reading):  # a device with the time of its newest reading, aliased "at"
        at: datetime


#: Rule kinds evaluated right after a report is loaded (cheap, and what a new report can change);
#: every kind is evaluated on the timer.
ON_INGEST: frozenset[str] = frozenset({"alert", "supply_level", "sequence_gap", "counter_anomaly"})
ALL_KINDS: frozenset[str] = frozenset(
    {
        "alert",
        "supply_level",
        "supply_days",
        "silent_client",
        "silent_device",
        "sequence_gap",
        "counter_anomaly",
        "backup",
    }
)


class Condition(msgspec.Struct, kw_only=True):
    """One thing a rule sees as true now."""

    rule: str
    key: str
    subject: str  # what the mail's subject names: device or client, and the condition
    customer: str
    detail: str  # a sentence or two for the mail body
    observed_at: datetime | None = None  # when the data showing it was observed
    device: DeviceInfo | None = None


def check_rules(config: ServerConfig) -> list[RuleSection]:
    """The configured rules, refusing ones that cannot work (NotifyError naming the rule)."""
    names: set[str] = set()
    for r in config.rules:
        where = f"[[rules]] {r.name!r}"
        if not r.name or r.name in names:
            raise NotifyError(
                f"{where}: every rule needs a unique name", hint="give each [[rules]] its own name"
            )
        names.add(r.name)
        if r.when in ("supply_level", "supply_days") and r.below is None:
            raise NotifyError(
                f"{where}: when = {r.when!r} needs `below`",
                hint="e.g. below = 10 (percent) or below = 7 (days)",
            )
        if not (r.to or config.notify.to):
            raise NotifyError(
                f"{where}: nobody would get its mails",
                hint="set `to` in the rule or a default `to` in [notify]",
            )
        if r.delay_seconds < 0:
            raise NotifyError(f"{where}: delay_seconds = {r.delay_seconds} is negative", hint="use 0 or more")
    return list(config.rules)


def expand_codes(codes: Iterable[str]) -> frozenset[str]:
    """Codes plus the members of any condition group named (``jam`` -> jam, jammed), the same
    groups fsm-client's ``[alerts] critical`` uses, so one name covers the alert-table code and
    the error-state bit a device may report for the same problem."""
    out: set[str] = set()
    for code in codes:
        out |= {code, *CONDITION_GROUPS.get(code, ())}
    return frozenset(out)


def _in_scope(rule: RuleSection, customer: str) -> bool:
    return not rule.customers or customer in rule.customers


def _name(d: DeviceInfo) -> str:
    where = " / ".join(p for p in (d.customer, d.site) if p)
    return f"{d.label} ({where}, {d.ip})" if where else f"{d.label} ({d.ip})"


def latest_readings(device_ids: Iterable[int]) -> dict[int, tuple[int, datetime]]:
    """Per device, its newest answered reading: (reading id, observed_at)."""
    out: dict[int, tuple[int, datetime]] = {}
    for part in chunks(device_ids):
        newest = (
            Reading.select(Reading.device, fn.MAX(Reading.observed_at).alias("at"))
            .where(Reading.device.in_(part), Reading.reachability != "unreachable")
            .group_by(Reading.device)
        )
        wanted = {(r.device_id, r.at) for r in cast("Iterable[_NewestReading]", newest)}
        q = Reading.select(Reading.id, Reading.device, Reading.observed_at).where(
            Reading.device.in_(part),
            Reading.reachability != "unreachable",
            Reading.observed_at.in_(sorted({at for _, at in wanted})),
        )
        for r in q.order_by(Reading.id):
            if (r.device_id, r.observed_at) in wanted:
                out[r.device_id] = (r.id, r.observed_at)  # the last loaded of equal times wins
    return out


def _alerts(
    rule: RuleSection, infos: dict[int, DeviceInfo], latest: dict[int, tuple[int, datetime]]
) -> list[Condition]:
    by_reading = {rid: dev for dev, (rid, _) in latest.items()}
    found: dict[int, dict[str, tuple[str, str]]] = {}
    for part in chunks(by_reading):
        for r in Reading.select(Reading.id, Reading.conditions).where(Reading.id.in_(part)):
            for c in r.conditions or []:
                found.setdefault(by_reading[r.id], {})[c] = ("condition", c.replace("_", " "))
        for a in AlertValue.select().where(AlertValue.reading.in_(part)):
            found.setdefault(by_reading[a.reading_id], {})[a.code] = (a.severity, a.description or a.code)
    wanted = expand_codes(rule.codes)
    out = []
    for dev, codes in found.items():
        d = infos[dev]
        for code, (severity, description) in sorted(codes.items()):
            if wanted and code not in wanted:
                continue
            if rule.severities and severity not in rule.severities:
                continue
            out.append(
                Condition(
                    rule=rule.name,
                    key=f"device:{dev}:{code}",
                    subject=f"{_name(d)}: {description}",
                    customer=d.customer,
                    observed_at=latest[dev][1],
                    device=d,
                    detail=f"{d.label} reports {code!r} ({severity}): {description}. "
                    f"Location: {d.location or 'not set'}; client {d.client}.",
                )
            )
    return out


def _supply_levels(
    rule: RuleSection, infos: dict[int, DeviceInfo], latest: dict[int, tuple[int, datetime]]
) -> list[Condition]:
    by_reading = {rid: dev for dev, (rid, _) in latest.items()}
    out = []
    for part in chunks(by_reading):
        q = SupplyValue.select().where(SupplyValue.reading.in_(part), SupplyValue.percent.is_null(False))
        for s in q:
            if rule.supply_kinds and s.kind not in rule.supply_kinds:
                continue
            if s.percent is None or s.percent >= (rule.below or 0):  # the query leaves no None
                continue
            dev = by_reading[s.reading_id]
            d = infos[dev]
            what = s.description or f"{s.color or ''} {s.kind}".strip()
            out.append(
                Condition(
                    rule=rule.name,
                    key=f"device:{dev}:supply:{s.kind}:{s.color or ''}:{s.index}",
                    subject=f"{_name(d)}: {what} at {s.percent:.0f} %",
                    customer=d.customer,
                    observed_at=latest[dev][1],
                    device=d,
                    detail=f"{what} of {d.label} is at {s.percent:.0f} % (rule: below {rule.below:g} %).",
                )
            )
    return out


def _supply_days(rule: RuleSection, scope: Scope, settings: ReportsSection) -> list[Condition]:
    out = []
    for row in supplies(scope, settings).rows:
        f = row.forecast
        if f.days_remaining is None or f.days_remaining >= (rule.below or 0):
            continue
        if rule.supply_kinds and row.supply_kind not in rule.supply_kinds:
            continue
        d = row.device
        what = row.description or row.supply_kind
        out.append(
            Condition(
                rule=rule.name,
                key=f"device:{d.id}:days:{row.supply_kind}:{row.color or ''}:{what}",
                subject=f"{_name(d)}: {what} empty in {f.days_remaining:.1f} days",
                customer=d.customer,
                observed_at=row.observed_at,
                device=d,
                detail=(
                    f"{what} of {d.label} is at {row.percent:.0f} % and falls {f.rate_per_day:.2f} % a "
                    f"day: empty around {f.empty_at:%Y-%m-%d} (rule: below {rule.below:g} days)."
                ),
            )
        )
    return out


def _client_in_scope(rule: RuleSection, customers: set[str]) -> bool:
    return not rule.customers or bool(customers & set(rule.customers))


def _client_rules(
    rule: RuleSection,
    scope: Scope,
    cfg: ReportsSection,
    infos: dict[int, DeviceInfo],
    clients: list[ClientHealth],
) -> list[Condition]:
    """silent_client, silent_device and sequence_gap conditions."""
    customers_of: dict[str, set[str]] = {}
    for d in infos.values():
        customers_of.setdefault(d.client, set()).add(d.customer)
    out = []
    if rule.when == "silent_client":
        for c in clients:
            if c.silent and _client_in_scope(rule, customers_of.get(c.client, set())):
                out.append(
                    Condition(
                        rule=rule.name,
                        key=f"client:{c.client}:silent",
                        subject=f"client {c.client} is silent",
                        customer=", ".join(sorted(customers_of.get(c.client, set()))),
                        observed_at=c.last_report_at,
                        detail=f"No report from client {c.client} since "
                        f"{c.last_report_at or 'it was registered'}; "
                        f"it reports about every {c.expected_hours:g} h "
                        f"(grace {cfg.silence_grace_hours:g} h).",
                    )
                )
    elif rule.when == "silent_device":
        scoped = {i: d for i, d in infos.items() if _in_scope(rule, d.customer)}
        for s in silent_devices(scope, cfg, scoped, clients):
            d = s.device
            out.append(
                Condition(
                    rule=rule.name,
                    key=f"device:{d.id}:silent",
                    subject=f"{_name(d)} is silent",
                    customer=d.customer,
                    observed_at=s.last_seen,
                    device=d,
                    detail=f"{d.label} was last read {s.last_seen:%Y-%m-%d %H:%M} UTC, "
                    f"{s.silent_hours:.1f} h ago (expected every {s.expected_hours:g} h).",
                )
            )
    else:
        for g in listings.gaps():
            if _client_in_scope(rule, customers_of.get(g.client, set())):
                out.append(
                    Condition(
                        rule=rule.name,
                        key=f"client:{g.client}:gap:{g.first}-{g.last}",
                        subject=f"client {g.client} is missing reports {g.first}-{g.last}",
                        customer=", ".join(sorted(customers_of.get(g.client, set()))),
                        detail=(
                            f"Reports {g.first} to {g.last} of client {g.client} have not arrived "
                            f"({g.kind}). Ask for them: fsm-client resend --from {g.first} --to {g.last}."
                        ),
                    )
                )
    return out


def _anomalies(rule: RuleSection, scoped: dict[int, DeviceInfo], now: datetime) -> list[Condition]:
    since = now - timedelta(hours=rule.lookback_hours)
    out = []
    for part in chunks(scoped):
        q = CounterValue.select().where(
            CounterValue.device.in_(part), CounterValue.flag.is_null(False), CounterValue.observed_at >= since
        )
        for c in q:
            d = scoped[c.device_id]
            out.append(
                Condition(
                    rule=rule.name,
                    key=f"counter:{c.id}",
                    subject=f"{_name(d)}: counter {c.name} {c.flag}",
                    customer=d.customer,
                    observed_at=c.observed_at,
                    device=d,
                    detail=f"Counter {c.name} of {d.label} went from {c.previous} to {c.value} ({c.flag}) "
                    f"at {c.observed_at:%Y-%m-%d %H:%M} UTC; check the meter read.",
                )
            )
    return out


def _backups(rule: RuleSection, now: datetime) -> list[Condition]:
    from ..backup.schedule import status

    s = status(None, now=now)
    out = []
    if s.failed and s.last_attempt_at is not None:
        out.append(
            Condition(
                rule=rule.name,
                key="backup:failed",
                subject="the database backup failed",
                customer="",
                observed_at=s.last_attempt_at,
                detail=f"The backup at {s.last_attempt_at:%Y-%m-%d %H:%M} UTC failed: {s.last_error}. "
                f"Last good backup: {s.last_ok_at or 'none'}. See `fsm-server backup status`.",
            )
        )
    if s.missed and s.due_by is not None:
        out.append(
            Condition(
                rule=rule.name,
                key="backup:missed",
                subject=f"no database backup since {s.last_ok_at:%Y-%m-%d %H:%M} UTC",
                customer="",
                observed_at=s.last_ok_at,
                detail=f"The newest backup ({s.last_ok_path}) was taken {s.last_ok_at:%Y-%m-%d %H:%M} UTC; "
                f"the next was due by {s.due_by:%Y-%m-%d %H:%M} UTC. Is `fsm-server ingest` running "
                f"with [backup] enabled?",
            )
        )
    return out


def active(
    rules: list[RuleSection],
    *,
    now: datetime | None = None,
    settings: ReportsSection | None = None,
    kinds: Iterable[str] = ALL_KINDS,
) -> list[Condition]:
    """Every condition of ``rules`` (of the given kinds) that holds now."""
    cfg = settings or ReportsSection()
    now = now or datetime.now(UTC)
    wanted = [r for r in rules if r.when in set(kinds)]
    if not wanted:
        return []
    out: list[Condition] = []
    scope = Scope(start=now - timedelta(days=cfg.recent_days), end=now, now=now)
    with translated("cannot evaluate the notification rules"):
        infos = devices_in_scope(None)
        latest = latest_readings(infos) if any(r.when in ("alert", "supply_level") for r in wanted) else {}
        clients: list[ClientHealth] | None = None
        for rule in wanted:
            scoped = {i: d for i, d in infos.items() if _in_scope(rule, d.customer)}
            if rule.when == "alert":
                out += _alerts(rule, scoped, {i: v for i, v in latest.items() if i in scoped})
            elif rule.when == "supply_level":
                out += _supply_levels(rule, scoped, {i: v for i, v in latest.items() if i in scoped})
            elif rule.when == "supply_days":
                out += [c for c in _supply_days(rule, scope, cfg) if _in_scope(rule, c.customer)]
            elif rule.when == "counter_anomaly":
                out += _anomalies(rule, scoped, now)
            elif rule.when == "backup":
                out += _backups(rule, now)
            else:
                if clients is None:
                    clients = client_health(scope, cfg, infos)
                out += _client_rules(rule, scope, cfg, infos, clients)
    return out


__all__ = ["ALL_KINDS", "ON_INGEST", "Condition", "active", "check_rules", "expand_codes", "latest_readings"]
