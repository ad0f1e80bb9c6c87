"""Critical conditions: which ones count, and what a new poll reading changes.

A condition is raised once (an ``alert`` report is sealed at once), stays quiet while it
stays active, and is reported again when it clears. Condition names in the config are
either one of the groups below or any raw name a device reports (an
hrPrinterDetectedErrorState bit such as ``low_toner`` or a prtAlertCode such as
``marker_waste_toner_receptacle_full``).

>>> from datetime import datetime, UTC
>>> from fsm_protocol.schema import Device, Status
>>> d = Device(ip="192.0.2.1", observed_at=datetime(2026, 1, 1, tzinfo=UTC),
...            status=Status(conditions=["jammed", "low_toner"]))
>>> sorted(active_conditions(d, Policy()))
['jam']
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from fsm_protocol.errors import ConfigError
from fsm_protocol.schema import Device, utcnow
from fsm_protocol.vocabulary import CONDITION_GROUPS

from .config import AlertsSection, ClientConfig
from .report import Queued, Sealer, queue_report
from .store import Store

DEFAULT_CRITICAL = ("jam", "no_toner", "service_requested", "offline", "door_open")


@dataclass(frozen=True)
class Policy:
    critical: tuple[str, ...] = DEFAULT_CRITICAL
    offline_after: int = 2
    report_cleared: bool = True

    @classmethod
    def from_config(cls, section: AlertsSection) -> Policy:
        for name in section.critical:
            if not name or not name.replace("_", "").isalnum():
                groups = ", ".join(CONDITION_GROUPS)
                raise ConfigError(
                    f"[alerts] critical: {name!r} is not a condition name",
                    hint=f"use group names ({groups}) or raw snake_case codes",
                )
        if section.offline_after < 1:
            raise ConfigError(
                f"[alerts] offline_after = {section.offline_after} must be at least 1",
                hint="1 raises offline on the first unanswered poll",
            )
        return cls(
            critical=tuple(section.critical),
            offline_after=section.offline_after,
            report_cleared=section.report_cleared,
        )


def _names(device: Device) -> set[str]:
    return set(device.status.conditions) | {a.code for a in device.alerts}


def active_conditions(device: Device, policy: Policy, *, misses: int = 0) -> set[str]:
    """The critical conditions this reading shows. ``misses`` counts unanswered polls in a row
    including this one; an unreachable reading says nothing about the other conditions."""
    if device.reachability == "unreachable":
        return {"offline"} if "offline" in policy.critical and misses >= policy.offline_after else set()
    names = _names(device)
    return {c for c in policy.critical if names & CONDITION_GROUPS.get(c, frozenset({c}))}


@dataclass
class Change:
    raised: set[str] = field(default_factory=set)
    cleared: set[str] = field(default_factory=set)
    queued: Queued | None = None

    def __bool__(self) -> bool:
        return bool(self.raised or self.cleared)


def diff(previous: Iterable[str], device: Device, policy: Policy, *, misses: int) -> Change:
    """What changed between the conditions active before and this reading."""
    before = set(previous)
    now = active_conditions(device, policy, misses=misses)
    if device.reachability == "unreachable":
        # nothing can be said about a jam on a device that does not answer: keep it as it was
        return Change(raised=now - before, cleared=set())
    return Change(raised=now - before, cleared=before - now)


def would_change(store: Store, policy: Policy, device: Device) -> bool:
    """Whether ``evaluate`` would raise or clear a condition for this reading (reads only).

    A status poll reads little; when this says yes, the daemon reads the device in full first,
    so that the alert report carries the whole reading."""
    previous, misses = _before(store, device)
    return bool(diff(previous, device, policy, misses=misses))


def _before(store: Store, device: Device) -> tuple[list[str], int]:
    """The conditions active at the reading's address, and its unanswered polls in a row
    counting this reading."""
    previous = [s.condition for s in store.alert_states(device.ip, active_only=True)]
    known = store.device(device.ip)
    misses = ((known.misses if known else 0) + 1) if device.reachability == "unreachable" else 0
    return previous, misses


def evaluate(
    store: Store,
    sealer: Sealer,
    config: ClientConfig,
    policy: Policy,
    device: Device,
    *,
    now: datetime | None = None,
    pmd_bundle: str | None = None,
) -> Change:
    """Apply one poll reading: store it and seal an ``alert`` report when a critical condition
    is raised (or cleared, if reported); otherwise only note that the device was seen.
    Conditions are dated by the reading's ``observed_at``; the report by ``now``."""
    at = device.observed_at
    with store.atomic():
        store.follow_move(device)  # a device with a new address brings its active conditions
        previous, misses = _before(store, device)
        change = diff(previous, device, policy, misses=misses)
        reportable = bool(change.raised) or (bool(change.cleared) and policy.report_cleared)
        if reportable:
            rid = store.add_reading(device, kind="poll")

            def record(seq: int) -> None:
                for c in change.raised:
                    store.set_alert_state(device.ip, c, active=True, at=at, seq=seq)
                for c in change.cleared:
                    store.set_alert_state(device.ip, c, active=False, at=at, seq=seq)

            change.queued = queue_report(
                store,
                sealer,
                config,
                kind="alert",
                now=now or utcnow(),
                reading_ids=[rid],
                also=record,
                pmd_bundle=pmd_bundle,
            )
        else:
            store.note_seen(device)
            for c in change.cleared:  # cleared but not reported
                store.set_alert_state(device.ip, c, active=False, at=at, seq=None)
            store.touch_alerts(device.ip, previous, at)
    return change


__all__ = ["DEFAULT_CRITICAL", "Change", "Policy", "active_conditions", "diff", "evaluate", "would_change"]
