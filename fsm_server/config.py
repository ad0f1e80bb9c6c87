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


class ReportsSection(_Section):
    """What the reports assume (docs/reports.md)."""

    #: canonical counter name -> the ERP's meter name, for the meters CSV; unmapped counters keep
    #: their canonical name unless ``only_mapped_meters`` is set
    meter_names: dict[str, str] = msgspec.field(default_factory=dict)
    only_mapped_meters: bool = False
    forecast_window_days: int = 30  # fit the consumption of at most the last N days ...
    forecast_min_span_days: float = 3.0  # ... which must span at least this long ...
    forecast_min_points: int = 3  # ... with at least this many readings, else no forecast (reason given)
    replacement_jump_percent: float = 15.0  # a level rising this much (points) is a replacement
    early_replacement_percent: float = 10.0  # replaced while still above this: flagged "early"
    low_supply_percent: float = 10.0  # what the supplies report marks as low
    expected_report_hours: float = 24.0  # a client or device silent longer than this + grace is silent
    silence_grace_hours: float = 6.0
    recent_days: int = 30  # alerts/health "recent" window when --from is not given


RuleKind = Literal["alert", "supply_level", "supply_days", "silent_client", "silent_device",
                   "sequence_gap", "counter_anomaly"]


class RuleSection(_Section):
    """One notification rule ([[rules]]): a condition, a scope and who gets the mail."""

    name: str
    when: RuleKind
    codes: list[str] = msgspec.field(default_factory=list)  # alert: codes/conditions; empty = any
    severities: list[str] = msgspec.field(default_factory=list)  # alert: e.g. ["critical"]; empty = any
    below: float | None = None  # supply_level: percent; supply_days: days remaining
    supply_kinds: list[str] = msgspec.field(default_factory=list)  # supply rules: e.g. ["toner"]
    customers: list[str] = msgspec.field(default_factory=list)  # scope; empty = every customer
    to: list[str] = msgspec.field(default_factory=list)  # empty: [notify] to
    delay_seconds: int = 0  # the condition must hold (and, to clear, stay away) this long
    cleared: bool = True  # send a "cleared" mail when it ends
    lookback_hours: float = 24.0  # counter_anomaly: flags newer than this are active


class NotifySection(_Section):
    """Where notification mails go and how they are sent ([notify])."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 25
    security: Literal["tls", "starttls", "none"] = "starttls"
    username: str = ""
    password: Secret = Secret("")
    ca_file: Path | None = None
    timeout: float = 30.0
    from_addr: str = "fsm@localhost"
    to: list[str] = msgspec.field(default_factory=list)  # default recipients of every rule
    evaluate_seconds: float = 60.0  # the timer for silence, delays and retries
    retry_seconds: float = 60.0  # a failed mail is retried after this (doubling, capped at 1 h)
    templates_dir: Path | None = None  # override the mail templates (opened.txt.j2, cleared.txt.j2)


class ServerConfig(_Section):
    server: ServerSection = msgspec.field(default_factory=ServerSection)
    keys: KeysSection = msgspec.field(default_factory=KeysSection)
    database: DatabaseSection = msgspec.field(default_factory=DatabaseSection)
    ingest: IngestSection = msgspec.field(default_factory=IngestSection)
    mailboxes: list[MailboxSection] = msgspec.field(default_factory=list)
    reports: ReportsSection = msgspec.field(default_factory=ReportsSection)
    rules: list[RuleSection] = msgspec.field(default_factory=list)
    notify: NotifySection = msgspec.field(default_factory=NotifySection)


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
    "NotifySection",
    "ReportsSection",
    "RuleKind",
    "RuleSection",
    "ServerConfig",
    "ServerSection",
    "load_config",
]
