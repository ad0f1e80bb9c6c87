"""Where PMD files are: the shipped set, the active bundle set, the operator's local overrides,
and the order the pool takes them in (lowest precedence first)."""

from __future__ import annotations

from pathlib import Path
from typing import TypeGuard

from ...config import ClientConfig
from ...errors import PmdError
from .sets import PmdSets


def shipped_dir() -> Path:
    """The PMD pool shipped with this release (``pmd/`` beside the packages)."""
    from ..authoring.loader import default_dirs

    return default_dirs()[0]


def local_dir(config: ClientConfig | None, data_dir: Path | None) -> Path | None:
    """The operator's override directory: ``pmd.local_dir``, else ``<data_dir>/pmd``."""
    if config is not None and config.pmd.local_dir is not None:
        return Path(config.pmd.local_dir)
    return Path(data_dir) / "pmd" if data_dir is not None else None


def has_pmds(d: Path | None) -> TypeGuard[Path]:
    """Whether ``d`` is a directory with PMD files in it."""
    return d is not None and d.is_dir() and any(d.glob("*.toml"))


def bundle_dirs(data_dir: Path | None) -> list[Path]:
    """The active bundle set's directory (resolved, so a loaded pool never mixes two sets'
    files), or nothing when the shipped set is active."""
    if data_dir is None:
        return []
    sets = PmdSets.in_data_dir(Path(data_dir))
    name = sets.current_name()
    if name is None:
        return []
    target = sets.root / name
    if not target.is_dir():
        raise PmdError(
            f"the active PMD set {str(target)!r} is missing",
            hint="run `fsm-client pmd rollback`, or install a bundle with `fsm-client pmd update`",
        )
    return [target]


def active_pmd_dirs(config: ClientConfig | None, data_dir: Path | None) -> list[Path]:
    """The pool's directories, lowest precedence first (the order ``load_pool`` takes)."""
    dirs = [shipped_dir(), *bundle_dirs(data_dir)]
    local = local_dir(config, data_dir)
    if has_pmds(local):
        dirs.append(local)
    return dirs


__all__ = ["active_pmd_dirs", "bundle_dirs", "has_pmds", "local_dir", "shipped_dir"]
