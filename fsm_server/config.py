"""The server's TOML config, declared once with its defaults (see config.example.toml)."""

from __future__ import annotations

from pathlib import Path

import msgspec

from fsm_protocol import configfile


class _Section(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class ServerSection(_Section):
    data_dir: Path | None = None  # default: --data-dir, else ./var/server


class KeysSection(_Section):
    encryption_key: Path | None = None  # default: <data_dir>/keys/server.key


class DatabaseSection(_Section):
    url: str = ""  # empty: SQLite file <data_dir>/fsm.db; or postgresql://user@host/db


class ServerConfig(_Section):
    server: ServerSection = msgspec.field(default_factory=ServerSection)
    keys: KeysSection = msgspec.field(default_factory=KeysSection)
    database: DatabaseSection = msgspec.field(default_factory=DatabaseSection)


def load_config(path: str | Path | None) -> ServerConfig:
    """Load the server config; with no path, every default."""
    if path is None:
        return ServerConfig()
    return configfile.load(path, ServerConfig)


__all__ = ["DatabaseSection", "KeysSection", "ServerConfig", "ServerSection", "load_config"]
