"""The server's TOML config, declared once with its defaults (see config.example.toml)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import msgspec

from fsm_protocol import configfile
from fsm_protocol.configfile import Secret


class _Section(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class ServerSection(_Section):
    data_dir: Path | None = None  # default: --data-dir, else ./var/server


class KeysSection(_Section):
    encryption_key: Path | None = None  # default: <data_dir>/keys/server.key


class DatabaseSection(_Section):
    url: str = ""  # empty: SQLite file <data_dir>/fsm.db; or postgresql://user@host/db


class IngestSection(_Section):
    """Limits and plausibility rules every ingest source (IMAP, import, retry) applies."""

    max_mail_bytes: int = 16 * 1024 * 1024  # a bigger mail is quarantined too_large before parsing
    max_envelope_bytes: int = 64 * 1024 * 1024  # a whole (joined) envelope
    max_report_bytes: int = 64 * 1024 * 1024  # the report after decompression
    quarantine_keep_bytes: int = 1024 * 1024  # of a too-large mail, how much is kept
    future_tolerance_seconds: int = 3600  # created-at later than now + this is implausible
    max_age_days: int = 3650  # created-at older than this is implausible
    max_devices: int = 20_000  # readings per report
    max_pages_per_day: int = 200_000  # a counter rising faster is stored but flagged "jump"
    rotation_grace_days: int = 7  # a rotated-out client key is accepted this long
    batch: int = 50  # IMAP messages fetched per round trip
    poll_seconds: int = 300  # IDLE restarted (or NOOP poll) at least this often
    shutdown_timeout: float = 10.0  # on SIGTERM, time to finish the current message


class MailboxSection(_Section):
    """One IMAP account the ingest daemon watches ([[mailboxes]], as many as needed)."""

    name: str = ""  # for logs; default user@host
    host: str = "127.0.0.1"
    port: int = 993
    security: Literal["tls", "starttls", "none"] = "tls"
    user: str = ""
    password: Secret = Secret("")
    ca_file: Path | None = None  # CA to verify the server with; default: the system's
    folder: str = "INBOX"
    processed_folder: str = "FSM/Processed"
    quarantine_folder: str = "FSM/Quarantine"


class ServerConfig(_Section):
    server: ServerSection = msgspec.field(default_factory=ServerSection)
    keys: KeysSection = msgspec.field(default_factory=KeysSection)
    database: DatabaseSection = msgspec.field(default_factory=DatabaseSection)
    ingest: IngestSection = msgspec.field(default_factory=IngestSection)
    mailboxes: list[MailboxSection] = msgspec.field(default_factory=list)


def load_config(path: str | Path | None) -> ServerConfig:
    """Load the server config; with no path, every default."""
    if path is None:
        return ServerConfig()
    return configfile.load(path, ServerConfig)


__all__ = [
    "DatabaseSection",
    "IngestSection",
    "KeysSection",
    "MailboxSection",
    "ServerConfig",
    "ServerSection",
    "load_config",
]
