"""What the PMD bundle tests share: a real publisher key pair, signed bundles of the shipped
pool (optionally changed), hand-made hostile archives, and a snapshot of the active set."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import zipfile
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fsm_client.config import ClientConfig
from fsm_client.pmd.distribution.bundle import build_bundle
from fsm_client.pmd.distribution.dirs import shipped_dir
from fsm_client.pmd.distribution.sets import CURRENT, SETS_DIR
from fsm_common import configfile
from fsm_protocol.keys import generate_client_keys, load_signing_key

CREATED = datetime(2026, 11, 1, 4, 0, tzinfo=UTC)


def shipped_files() -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(shipped_dir().glob("*.toml"))}


class Publisher:
    """An Ed25519 publisher key pair in ``directory`` (0600 private file) that signs bundles."""

    def __init__(self, directory: Path) -> None:
        self.key_file, self.pub_file = generate_client_keys(directory)
        self.key = load_signing_key(self.key_file)
        self.pub_text = self.key.public.to_text()

    def bundle(
        self, version: int, files: dict[str, bytes] | None = None, *, created_at: datetime = CREATED
    ) -> bytes:
        return build_bundle(
            shipped_files() if files is None else files,
            version=version,
            signing_key=self.key,
            created_at=created_at,
        )


def marked(version: int) -> dict[str, bytes]:
    """The shipped pool with every file marked ``# set <version>`` at its end."""
    return {n: c + f"\n# set {version}\n".encode() for n, c in shipped_files().items()}


def with_name(files: dict[str, bytes], pmd: str, name: str) -> dict[str, bytes]:
    """``files`` with PMD ``pmd``'s top-level ``name`` key set to ``name`` (a visible change)."""
    out = dict(files)
    text = out[f"{pmd}.toml"].decode()
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.startswith("name = "):
            lines[i] = f'name = "{name}"\n'
            break
    else:
        lines.insert(0, f'name = "{name}"\n')
    out[f"{pmd}.toml"] = "".join(lines).encode()
    return out


def make_config(publisher_keys: Iterable[str] = (), **update: Any) -> ClientConfig:
    """A strict config (as loaded from TOML) with [pmd.update] set."""
    data: dict[str, Any] = {"pmd": {"update": {"publisher_keys": list(publisher_keys), **update}}}
    return configfile.convert(data, ClientConfig, source="test")


def zip_of(entries: Iterable[tuple[str | zipfile.ZipInfo, bytes]]) -> bytes:
    """A ZIP with exactly these entries (duplicates allowed), for hostile-archive tests."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return out.getvalue()


def entries_of(data: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return [(i.filename, zf.read(i)) for i in zf.infolist()]


def symlink_entry(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


def snapshot(data_dir: Path) -> dict[str, Any]:
    """Everything that makes up the active set: the link, every file's digest under the sets
    directory (but the lock and the updater's memory), so "unchanged" can be asserted."""
    root = data_dir / SETS_DIR
    link = root / CURRENT
    files: dict[str, str] = {}
    if root.is_dir():
        for dirpath, _dirs, names in os.walk(root):
            for n in names:
                p = Path(dirpath) / n
                rel = str(p.relative_to(root))
                if rel in (".lock", "update.json") or p.is_symlink():
                    continue
                files[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return {"current": os.readlink(link) if link.is_symlink() else None, "files": files}


__all__ = [
    "CREATED",
    "Publisher",
    "entries_of",
    "make_config",
    "marked",
    "shipped_files",
    "snapshot",
    "symlink_entry",
    "with_name",
    "zip_of",
]
