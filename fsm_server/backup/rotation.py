"""Which backups to keep: the newest of each of the last ``keep_daily`` days, ``keep_weekly`` ISO
weeks and ``keep_monthly`` months that have a backup (local time), and always the newest one.
Everything else in the directory that is an fsm backup (by its name) may go."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from datetime import datetime, tzinfo
from pathlib import Path

from .archive import list_backups, taken_at


def keep(
    backups: list[tuple[Path, datetime]], *, daily: int, weekly: int, monthly: int, tz: tzinfo | None = None
) -> set[Path]:
    """The paths to keep of ``backups`` ((path, taken at), any order)."""
    newest_first = sorted(backups, key=lambda b: b[1], reverse=True)
    kept: set[Path] = {newest_first[0][0]} if newest_first else set()
    buckets: list[tuple[int, Callable[[datetime], Hashable]]] = [
        (daily, lambda t: t.date()),
        (weekly, lambda t: t.isocalendar()[:2]),
        (monthly, lambda t: (t.year, t.month)),
    ]
    for limit, bucket in buckets:
        seen: set[Hashable] = set()
        for path, at in newest_first:
            key = bucket(at.astimezone(tz))
            if key in seen:
                continue
            if len(seen) >= limit:
                break
            seen.add(key)
            kept.add(path)
    return kept


def rotate(directory: Path, *, daily: int, weekly: int, monthly: int, tz: tzinfo | None = None) -> list[Path]:
    """Delete the backups (and their .sha256) ``keep`` does not keep; returns those deleted."""
    found = [(p, t) for p in list_backups(directory) if (t := taken_at(p)) is not None]
    kept = keep(found, daily=daily, weekly=weekly, monthly=monthly, tz=tz)
    gone = []
    for path, _ in found:
        if path not in kept:
            path.unlink(missing_ok=True)
            path.with_name(path.name + ".sha256").unlink(missing_ok=True)
            gone.append(path)
    return gone


__all__ = ["keep", "rotate"]
