"""Login throttling per account name and per address, with growing waits and no lockout.

Failures of one key (``user:<name>``, ``addr:<address>``) that follow each other within the window
are counted; from the ``free``-th on, the next attempt must wait ``first_delay`` seconds, doubling
with every further failure up to ``max_delay``. An attempt made before then is refused without
looking at the password (the right one too), so guessing costs time whatever the guess. A success
clears the account's count (not the address's: one good login does not excuse a spray of guesses).
Unknown names are counted like known ones: the answer does not tell them apart.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from datetime import datetime, timedelta

from ..config import WebSection
from ..db.connect import translated
from .models import LoginThrottle


def address_key(address: str) -> str:
    """``addr:<address>``; an IPv6 address counts as its /64 (one host usually holds all of it)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return f"addr:{address[:60]}"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return f"addr:{ip.ipv4_mapped}"
        return f"addr:{ipaddress.ip_network(f'{ip}/64', strict=False)}"
    return f"addr:{ip}"


def user_key(name_key: str) -> str:
    return f"user:{name_key[:190]}"


def wait_seconds(keys: Iterable[str], now: datetime) -> float:
    """How long the caller must still wait before an attempt on ``keys`` is looked at (0: go)."""
    with translated("cannot read the login throttle"):
        rows = list(LoginThrottle.select().where(LoginThrottle.key.in_(list(keys))))
    waits = [(r.not_before - now).total_seconds() for r in rows if r.not_before is not None]
    return float(max([0.0, *waits]))


def _delay(failures: int, free: int, settings: WebSection) -> float | None:
    if failures < free:
        return None
    first = settings.throttle_first_delay_seconds
    return float(min(settings.throttle_max_delay_seconds, first * 2 ** (failures - free)))


def failed(name_key: str, address: str, now: datetime, settings: WebSection) -> None:
    """Count a failed attempt against the account name and the address."""
    window = timedelta(seconds=settings.throttle_window_seconds)
    keys = (
        (user_key(name_key), settings.throttle_free_failures),
        (address_key(address), settings.throttle_free_failures_per_address),
    )
    db = LoginThrottle._meta.database
    with translated("cannot write the login throttle"), db.atomic():
        for key, free in keys:
            row = LoginThrottle.get_or_none(LoginThrottle.key == key)
            failures = 1 if row is None or now - row.last_failure > window else row.failures + 1
            # the wait counts from the end of the last one: failures made while waiting are refused
            # earlier (wait_seconds), so they never reach here
            delay = _delay(failures, free, settings)
            not_before = None if delay is None else now + timedelta(seconds=delay)
            (
                LoginThrottle.insert(key=key, failures=failures, last_failure=now, not_before=not_before)
                .on_conflict(
                    conflict_target=[LoginThrottle.key],
                    update={
                        LoginThrottle.failures: failures,
                        LoginThrottle.last_failure: now,
                        LoginThrottle.not_before: not_before,
                    },
                )
                .execute()
            )


def succeeded(name_key: str) -> None:
    with translated("cannot write the login throttle"):
        LoginThrottle.delete().where(LoginThrottle.key == user_key(name_key)).execute()


__all__ = ["address_key", "failed", "succeeded", "user_key", "wait_seconds"]
