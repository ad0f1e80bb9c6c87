"""Installed PMD bundle sets on disk: install with an atomic swap, keep the previous, roll back.

Layout under ``<data_dir>/pmd-sets/``::

    current -> v0020261123110000-3f9a1c2e     the active set (a relative symlink)
    v0020261123110000-3f9a1c2e/               one installed bundle: the PMD files flat,
        hp.toml ... manifest.json manifest.sig install.json
    v0020261101040000-77b0e1d4/               the set it replaced, kept for rollback
    state.json                                highest version ever installed, last change
    update.json                               the daily update's own state (update.py)
    .lock                                     serialises installs and rollbacks

An install writes the new set into a hidden staging directory, fsyncs every file and the
directory, renames it to its final name, and only then replaces ``current`` with
``os.replace`` of a freshly made temporary symlink -- one atomic rename(2). A process
killed at any moment therefore leaves ``current`` naming either the old complete set or
the new complete set, never a mix; leftovers of a killed install are removed by the next
one. No ``current`` means the PMDs shipped with the release are active.

Versions only go up: a bundle is refused unless its version is greater than every
version ever installed here (``state.json`` "highest", and the active set's own), so an
old signed bundle can never be replayed, and a set that was rolled back is not
re-installed by the next daily check -- only a newer bundle from the publisher is.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec

from fsm_protocol.files import fsync_dir, write_atomic, write_new

from ...errors import PmdBundleError, PmdBundleNotNewer, PmdError, PmdUpdateError
from .bundle import MANIFEST_NAME, SIGNATURE_NAME, Bundle

SETS_DIR = "pmd-sets"
CURRENT = "current"
INSTALL_INFO = "install.json"
STATE_FILE = "state.json"
LOCK_FILE = ".lock"
#: Installed sets kept on disk: the active one and the ones before it, for rollback.
KEEP_SETS = 3
_STAGING_PREFIX = ".staging-"
_LINK_PREFIX = ".current-"


class InstallInfo(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """What ``install.json`` in each set records."""

    version: int
    created_at: datetime
    installed_at: datetime
    source: str  # the file, URL or directory the bundle came from
    signer: str  # fingerprint of the publisher key
    files: int
    previous: str | None  # the set (directory name) that was active before, None: the shipped set


class Change(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    action: str  # "install" | "rollback"
    at: datetime
    from_set: str | None  # directory names; None is the shipped set
    to_set: str | None


class State(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    highest: int = 0
    last_change: Change | None = None


@dataclass(frozen=True)
class InstalledSet:
    name: str
    path: Path
    info: InstallInfo

    @property
    def version(self) -> int:
        return self.info.version


class PmdSets:
    """The sets installed under ``root`` (``<data_dir>/pmd-sets``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> PmdSets:
        return cls(Path(data_dir) / SETS_DIR)

    # -- reading --

    def current_name(self) -> str | None:
        """The active set's directory name, or None when the shipped set is active."""
        try:
            return os.readlink(self.root / CURRENT)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise PmdError(
                f"cannot read {self.root / CURRENT}: {exc.strerror}", hint="check the data dir's permissions"
            ) from exc

    def get(self, name: str) -> InstalledSet:
        path = self.root / name
        try:
            info = msgspec.json.decode((path / INSTALL_INFO).read_bytes(), type=InstallInfo)
        except FileNotFoundError:
            raise PmdError(
                f"the PMD set {str(path)!r} is missing or incomplete",
                hint="run `fsm-client pmd rollback` or install a bundle with `fsm-client pmd update`",
            ) from None
        except (OSError, msgspec.DecodeError) as exc:
            raise PmdError(
                f"cannot read {path / INSTALL_INFO}: {exc}",
                hint="run `fsm-client pmd rollback` or `fsm-client pmd update`",
            ) from exc
        return InstalledSet(name, path, info)

    def current(self) -> InstalledSet | None:
        name = self.current_name()
        return self.get(name) if name else None

    def state(self) -> State:
        try:
            return msgspec.json.decode((self.root / STATE_FILE).read_bytes(), type=State)
        except FileNotFoundError:
            return State()
        except (OSError, msgspec.DecodeError) as exc:
            raise PmdError(
                f"cannot read {self.root / STATE_FILE}: {exc}",
                hint="restore it from backup, or delete it (the downgrade guard then "
                "starts from the active set's version)",
            ) from exc

    def highest(self) -> int:
        """The highest version ever installed here (the downgrade guard)."""
        cur = self.current()
        return max(self.state().highest, cur.version if cur else 0)

    def installed(self) -> list[InstalledSet]:
        """Complete sets on disk, newest version first."""
        out = []
        if self.root.is_dir():
            for p in self.root.iterdir():
                if p.name.startswith("v") and p.is_dir() and (p / INSTALL_INFO).is_file():
                    with contextlib.suppress(PmdError):
                        out.append(self.get(p.name))
        return sorted(out, key=lambda s: (s.version, s.info.installed_at), reverse=True)

    # -- changing --

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise PmdUpdateError(
                f"cannot create {self.root}: {exc.strerror}",
                hint="check that the data dir is writable by this user",
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _clean_leftovers(self) -> None:
        """Remove what a killed install left: staging directories and temporary links."""
        for p in self.root.iterdir():
            if p.name.startswith(_STAGING_PREFIX):
                shutil.rmtree(p, ignore_errors=True)
            elif p.name.startswith(_LINK_PREFIX) or (p.name.startswith(".") and p.name.endswith(".tmp")):
                p.unlink(missing_ok=True)

    def _swap(self, name: str | None) -> None:
        """Make ``name`` the active set (None: the shipped set) in one atomic step."""
        link = self.root / CURRENT
        if name is None:
            link.unlink(missing_ok=True)
        else:
            tmp = self.root / f"{_LINK_PREFIX}{secrets.token_hex(4)}"
            os.symlink(name, tmp)
            os.replace(tmp, link)
        fsync_dir(self.root)

    def _write_state(self, state: State) -> None:
        write_atomic(self.root / STATE_FILE, msgspec.json.encode(state))

    def install(
        self, bundle: Bundle, *, source: str, now: datetime, check: Callable[[Path], None] | None = None
    ) -> InstalledSet:
        """Install ``bundle`` (already verified) and make it the active set.

        ``check(staging_dir)`` loads the staged set the way scans will (raising PmdError);
        the swap happens only when it passes. Refuses a version that is not newer.
        """
        with self._locked():
            try:
                cur = self.current()
            except PmdError:  # the active set was deleted by hand: a new install repairs that
                cur = None
            highest = max(self.state().highest, cur.version if cur else 0)
            if bundle.version <= highest:
                active = f"version {cur.version}" if cur else "the shipped set"
                raise PmdBundleNotNewer(
                    f"bundle version {bundle.version} is not newer than {highest}, the highest "
                    f"installed here (active: {active}); refusing a downgrade or replay",
                    hint="the active PMD set was left unchanged; wait for a newer bundle from the "
                    "publisher (`fsm-client pmd status` shows what is active)",
                )
            self._clean_leftovers()
            token = secrets.token_hex(4)
            staging = self.root / f"{_STAGING_PREFIX}{token}"
            try:
                staging.mkdir(mode=0o755)
                for name, content in bundle.files.items():
                    write_new(staging / name, content)
                write_new(staging / MANIFEST_NAME, bundle.manifest_bytes)
                write_new(staging / SIGNATURE_NAME, bundle.signature_bytes)
                info = InstallInfo(
                    version=bundle.version,
                    created_at=bundle.manifest.created_at,
                    installed_at=now,
                    source=source,
                    signer=bundle.signer,
                    files=len(bundle.files),
                    previous=cur.name if cur else None,
                )
                write_new(staging / INSTALL_INFO, msgspec.json.encode(info))
                fsync_dir(staging)
                if check is not None:
                    try:
                        check(staging)
                    except PmdError as exc:
                        problem = exc.message.replace(f"{staging}/", "")  # name files as in the bundle
                        raise PmdBundleError(
                            f"bundle version {bundle.version} has a PMD that does not load: {problem}",
                            hint="the active PMD set was left unchanged; tell the publisher, or fix "
                            "the local override the message names",
                        ) from exc
                final = self.root / f"v{bundle.version:020d}-{token}"
                os.rename(staging, final)
                fsync_dir(self.root)
            except OSError as exc:
                shutil.rmtree(staging, ignore_errors=True)
                raise PmdUpdateError(
                    f"cannot write the new PMD set under {self.root}: {exc}",
                    hint="check free space and permissions; the active set is unchanged",
                ) from exc
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            self._swap(final.name)
            self._write_state(
                State(
                    highest=bundle.version,
                    last_change=Change(
                        action="install", at=now, from_set=cur.name if cur else None, to_set=final.name
                    ),
                )
            )
            self._prune()
            return self.get(final.name)

    def rollback(self, *, now: datetime) -> tuple[InstalledSet, InstalledSet | None]:
        """Make the set active before the current one active again; (from, to) with to=None
        meaning the shipped set."""
        with self._locked():
            cur = self.current()
            if cur is None:
                raise PmdError(
                    "no PMD bundle is installed: the shipped PMD set is active, there is "
                    "nothing to roll back",
                    hint="`fsm-client pmd status` shows the active set",
                )
            target = None
            if cur.info.previous is not None:
                if not (self.root / cur.info.previous / INSTALL_INFO).is_file():
                    raise PmdError(
                        f"the set that bundle version {cur.version} replaced "
                        f"({cur.info.previous}) is no longer kept, so it cannot be restored",
                        hint=f"only the last {KEEP_SETS} sets are kept; install a newer bundle "
                        "with `fsm-client pmd update`",
                    )
                target = self.get(cur.info.previous)
            state = self.state()
            # Raise the guard before the swap: the set rolled away from is never reinstalled.
            state.highest = max(state.highest, cur.version)
            self._write_state(state)
            self._swap(target.name if target else None)
            state.last_change = Change(
                action="rollback", at=now, from_set=cur.name, to_set=target.name if target else None
            )
            self._write_state(state)
            return cur, target

    def _prune(self) -> None:
        """Keep the active set and the chain of sets before it (KEEP_SETS in all)."""
        keep: set[str] = set()
        name = self.current_name()
        while name and len(keep) < KEEP_SETS:
            keep.add(name)
            try:
                name = self.get(name).info.previous
            except PmdError:
                break
        for p in self.root.iterdir():
            if p.name.startswith("v") and p.is_dir() and p.name not in keep:
                shutil.rmtree(p, ignore_errors=True)


def info_dict(s: InstalledSet | None) -> dict[str, Any] | None:
    if s is None:
        return None
    return {"set": s.name, "path": str(s.path), **msgspec.to_builtins(s.info)}


__all__ = [
    "CURRENT",
    "INSTALL_INFO",
    "KEEP_SETS",
    "SETS_DIR",
    "STATE_FILE",
    "Change",
    "InstallInfo",
    "InstalledSet",
    "PmdSets",
    "State",
    "info_dict",
]
