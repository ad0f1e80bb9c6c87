"""Which PMD files are in force: local overrides, then the active bundle set, then the shipped set.

``active_pmd_dirs(config, data_dir)`` gives the directories in the order
``loader.load_pool`` takes them (a later directory's file replaces an earlier one's with
the same id)::

    [<release>/pmd,  <data_dir>/pmd-sets/<active set>,  pmd.local_dir]
      shipped          signed bundle (if one is installed)   operator's own (win)

An operator's file for one model (``pmd.local_dir``, default ``<data_dir>/pmd``) is never
touched by updates and always wins, by file name (= PMD id).

``ActivePool`` is what a long-running process holds: ``get()`` costs one ``readlink`` and
one directory listing when nothing changed, and reloads the pool when the active set's
link or a local override changed -- so the daemon picks up an update or a rollback at its
next scan without a restart.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from ...config import ClientConfig
from ...errors import PmdError
from ..authoring.matcher import PmdPool
from .dirs import active_pmd_dirs, has_pmds, local_dir, shipped_dir
from .sets import PmdSets, info_dict


def load_active_pool(config: ClientConfig | None, data_dir: Path | None) -> PmdPool:
    from ..authoring.loader import load_pool

    return load_pool(active_pmd_dirs(config, data_dir))


def _local_signature(d: Path | None) -> tuple[tuple[str, int, int], ...]:
    if d is None or not d.is_dir():
        return ()
    out = []
    for p in sorted(d.glob("*.toml")):
        try:
            st = p.stat()
        except FileNotFoundError:
            continue
        out.append((p.name, st.st_mtime_ns, st.st_size))
    return tuple(out)


class ActivePool:
    """The active PMD pool, reloaded only when the active set or a local override changed.

    >>> pool = ActivePool(config, data_dir)   # doctest: +SKIP
    >>> pool.get().match(sys_object_id, sys_descr)   # doctest: +SKIP

    When a reload fails (a local override was saved half-edited), ``get()`` keeps serving
    the last pool that loaded and ``last_error`` says why; with no earlier pool it raises.
    """

    def __init__(self, config: ClientConfig | None, data_dir: Path | None) -> None:
        self.config = config
        self.data_dir = data_dir
        self._key: object = None
        self._pool: PmdPool | None = None
        self.last_error: PmdError | None = None
        self.reloads = 0

    def _current_key(self) -> object:
        name = None
        if self.data_dir is not None:
            name = PmdSets.in_data_dir(Path(self.data_dir)).current_name()
        return (name, _local_signature(local_dir(self.config, self.data_dir)))

    def get(self) -> PmdPool:
        key = self._current_key()
        if self._pool is not None and key == self._key:
            return self._pool
        try:
            pool = load_active_pool(self.config, self.data_dir)
        except PmdError as exc:
            if self._pool is None:
                raise
            self.last_error = exc
            return self._pool
        self._pool, self._key, self.last_error = pool, key, None
        self.reloads += 1
        return pool


_SHARED: dict[tuple[Path | None, Path | None], ActivePool] = {}


def current_pool(config: ClientConfig | None, data_dir: Path | None) -> PmdPool:
    """The active pool from a process-wide ``ActivePool`` per data dir: cheap to call before
    every scan, and it follows updates and rollbacks without a restart."""
    key = (Path(data_dir).resolve() if data_dir is not None else None, local_dir(config, data_dir))
    holder = _SHARED.get(key)
    if holder is None:
        holder = _SHARED[key] = ActivePool(config, data_dir)
    return holder.get()


def bundle_label(data_dir: Path | None) -> str:
    """The active PMD bundle as reports name it (``Report.pmd_bundle``): the installed set's name,
    ``v<version>-<digest>``, or ``shipped`` when the release's own PMD files are active."""
    if data_dir is None:
        return "shipped"
    try:
        return PmdSets.in_data_dir(Path(data_dir)).current_name() or "shipped"
    except PmdError:
        return "unknown"  # an unreadable link must not stop a report; `pmd status` says why


# --- status --------------------------------------------------------------------------------------


def _pool_for(sets: PmdSets, name: str | None, config: ClientConfig | None, data_dir: Path) -> PmdPool | None:
    """The effective pool as it is with set ``name`` active (None: shipped); None if gone."""
    from ..authoring.loader import load_pool

    dirs = [shipped_dir()]
    if name is not None:
        if not (sets.root / name).is_dir():
            return None
        dirs.append(sets.root / name)
    local = local_dir(config, data_dir)
    if has_pmds(local):
        dirs.append(local)
    try:
        return load_pool(dirs)
    except PmdError:
        return None


#: (ip, model, sysObjectID, sysDescr) of a device in the local store.
KnownSystem = tuple[str, str | None, str | None, str | None]


def changed_devices(before: PmdPool, after: PmdPool, devices: Sequence[KnownSystem]) -> list[dict[str, Any]]:
    """Devices (ip, model, sysObjectID, sysDescr) whose PMD differs between two pools: another
    PMD matches now, or the same PMD reads differently (its file or one it extends changed)."""
    out = []
    for ip, model, oid, descr in devices:
        old, new = before.match(oid, descr), after.match(oid, descr)
        if old.id != new.id:
            why = "matches another PMD"
        elif old != new:
            why = "its PMD changed"
        else:
            continue
        out.append({"ip": ip, "model": model, "before": old.id, "after": new.id, "why": why})
    return out


def _store_devices(data_dir: Path) -> list[KnownSystem] | None:
    """(ip, model, sysObjectID, sysDescr) of the latest reading of each device; None: no store."""
    try:
        from ...store import STORE_FILE, Store
    except ImportError:  # the store module is not part of this installation
        return None
    path = Path(data_dir) / STORE_FILE
    if not path.is_file():
        return None
    latest: dict[str, KnownSystem] = {}
    with Store.open(path) as store:
        for r in store.readings():
            d = r.device
            if d.sys_object_id or d.sys_descr:
                latest[d.ip] = (d.ip, d.model, d.sys_object_id, d.sys_descr)
    return sorted(latest.values())


def status(config: ClientConfig | None, data_dir: Path) -> dict[str, Any]:
    """What is active, where it came from and when, and which devices the last change affected."""
    from .update import update_status

    sets = PmdSets.in_data_dir(Path(data_dir))
    cur = sets.current()
    state = sets.state()
    local = local_dir(config, data_dir)
    previous = (
        sets.get(cur.info.previous)
        if cur and cur.info.previous and (sets.root / cur.info.previous).is_dir()
        else None
    )
    result: dict[str, Any] = {
        "active": info_dict(cur) or {"set": "shipped", "path": str(shipped_dir())},
        "previous": info_dict(previous) if cur else None,
        "highest_version": max(state.highest, cur.version if cur else 0),
        "last_change": msgspec.to_builtins(state.last_change) if state.last_change else None,
        "local_dir": str(local) if local else None,
        "local_overrides": sorted(p.name for p in local.glob("*.toml")) if has_pmds(local) else [],
        "update": update_status(config, data_dir),
    }
    devices = _store_devices(Path(data_dir))
    change = state.last_change
    if devices is None:
        result["devices_changed"] = "no store"
    elif change is None:
        result["devices_changed"] = []
    else:
        before = _pool_for(sets, change.from_set, config, data_dir)
        after = _pool_for(sets, change.to_set, config, data_dir)
        if before is None or after is None:
            result["devices_changed"] = "the set before the last change is no longer on disk"
        else:
            result["devices_changed"] = changed_devices(before, after, devices)
    return result


__all__ = [
    "ActivePool",
    "KnownSystem",
    "bundle_label",
    "changed_devices",
    "current_pool",
    "load_active_pool",
    "status",
]
