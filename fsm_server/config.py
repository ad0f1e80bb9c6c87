"""The server's TOML config, declared once with its defaults (see config.example.toml)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import msgspec

from fsm_common import configfile
from fsm_common.configfile import Duration, Secret

#: Where a config is looked for when neither --config nor $FSM_SERVER_CONFIG names one (in order).
CONFIG_ENV = "FSM_SERVER_CONFIG"
CONFIG_SEARCH = ("./fsm-server.toml", "/etc/fsm/server.toml")


def _range(ge: float, le: float) -> msgspec.Meta:
    return msgspec.Meta(ge=ge, le=le)


# Every number is bounded where it is declared: a zero, negative or absurd value is refused at
# start-up naming its key, instead of a loop that never sleeps or a wait that never ends.
Port = Annotated[int, _range(1, 65535)]
Bytes = Annotated[int, _range(1024, 1 << 30)]  # a size limit, 1 KiB .. 1 GiB
Seconds = Annotated[float, _range(0.05, 3600.0)]  # a network timeout or a timer
Percent = Annotated[float, _range(0.0, 100.0)]
Hours = Annotated[float, _range(0.0, 87600.0)]  # up to ten years


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

    max_mail_bytes: Bytes = 16 * 1024 * 1024  # a bigger mail is quarantined too_large before parsing
    max_envelope_bytes: Bytes = 64 * 1024 * 1024  # a whole (joined) envelope
    max_report_bytes: Bytes = 64 * 1024 * 1024  # the report after decompression
    # of a too-large mail, how much is kept
    quarantine_keep_bytes: Annotated[int, _range(0, 1 << 30)] = 1024 * 1024
    # created-at later than now + this is implausible
    future_tolerance_seconds: Annotated[int, _range(0, 30 * 86400)] = 3600
    max_age_days: Annotated[int, _range(1, 36500)] = 3650  # created-at older than this is implausible
    max_devices: Annotated[int, _range(1, 1_000_000)] = 20_000  # readings per report
    # a counter rising faster is stored but flagged "jump"
    max_pages_per_day: Annotated[int, _range(1, 100_000_000)] = 200_000
    rotation_grace_days: Annotated[int, _range(0, 3650)] = 7  # a rotated-out client key is accepted this long
    batch: Annotated[int, _range(1, 1000)] = 50  # IMAP messages fetched per round trip
    # IDLE restarted (or NOOP poll) at least this often; RFC 2177 lets a server drop it after 30 min
    poll_seconds: Annotated[int, _range(1, 29 * 60)] = 300
    # on SIGTERM, time to finish the current message
    shutdown_timeout: Annotated[float, _range(0.0, 600.0)] = 10.0


class ReceiveSection(_Section):
    """The HTTPS endpoint clients may post sealed envelopes to (`fsm-server receive`, docs/ingest.md)."""

    host: str = "127.0.0.1"  # address to listen on; "0.0.0.0" or "::" to take posts from other hosts
    port: Port = 8443
    cert_file: Path | None = None  # PEM certificate chain served to clients (required)
    key_file: Path | None = None  # its private key (PEM)
    # a larger body is answered 413 before it is read
    max_body_bytes: Bytes = 16 * 1024 * 1024
    # seconds a body may take to arrive; a slower one is answered 408
    body_timeout: Seconds = 60.0
    # posts per second one address may make on average, and how many at once (a token bucket)
    address_rate: Annotated[float, _range(0.001, 10_000.0)] = 2.0
    address_burst: Annotated[int, _range(1, 100_000)] = 60
    # the same for the client an envelope names (a report of many chunks posts many times)
    client_rate: Annotated[float, _range(0.001, 10_000.0)] = 5.0
    client_burst: Annotated[int, _range(1, 100_000)] = 200
    # addresses and clients remembered by the rate limits; the least recently seen are forgotten
    max_tracked: Annotated[int, _range(100, 10_000_000)] = 100_000
    # connections served at once; more are answered 503
    max_connections: Annotated[int, _range(1, 100_000)] = 256


class MailboxSection(_Section, kw_only=True):
    """One IMAP account the ingest daemon watches ([[mailboxes]], as many as needed)."""

    name: str = ""  # for logs; default user@host
    host: str = "127.0.0.1"
    port: Port = 993
    security: Literal["tls", "starttls", "none"] = "tls"
    user: Annotated[str, msgspec.Meta(min_length=1)]  # required: the login of the mailbox
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
    # fit the consumption of at most the last N days ...
    forecast_window_days: Annotated[int, _range(1, 3650)] = 30
    # ... which must span at least this long ...
    forecast_min_span_days: Annotated[float, _range(0.0, 3650.0)] = 3.0
    # ... with at least this many readings, else no forecast (reason given)
    forecast_min_points: Annotated[int, _range(2, 100_000)] = 3
    # a level rising this much (points) is a replacement
    replacement_jump_percent: Annotated[float, _range(1.0, 100.0)] = 15.0
    early_replacement_percent: Percent = 10.0  # replaced while still above this: flagged "early"
    low_supply_percent: Percent = 10.0  # what the supplies report marks as low
    # a client or device silent longer than this + grace is silent
    expected_report_hours: Annotated[float, _range(0.1, 87600.0)] = 24.0
    silence_grace_hours: Hours = 6.0
    # alerts/health "recent" window when --from is not given
    recent_days: Annotated[int, _range(1, 36500)] = 30
    # the Chromium that prints PDF reports (portal downloads, scheduled mails); empty: chromium on PATH
    pdf_browser: str = ""
    pdf_timeout_seconds: Annotated[float, _range(1.0, 3600.0)] = 120.0


class OrdersSection(_Section):
    """Supply-order proposals (docs/orders.md): a supply is proposed for ordering when its forecast
    says it runs out within lead_days + margin_days, or the device reports it low or empty.
    These are the defaults of customers without their own (`fsm-server orders settings`)."""

    enabled: bool = True  # false: ingest proposes nothing (replacements still close open orders)
    lead_days: Annotated[int, _range(0, 365)] = 5  # days from ordering to the supply arriving
    margin_days: Annotated[int, _range(0, 365)] = 3  # days of supply kept in hand beyond that
    # `fsm-server ingest` applies the rules to every supply this often (changed lead times, devices
    # that stopped reporting): "6h", "30m", "1d"; "off" (or 0): only at ingest and `orders scan`
    scan_every: Duration = Duration("6h")


class BackupSection(_Section):
    """Scheduled backups, run by `fsm-server ingest` (docs/operations.md, "Backup and restore")."""

    enabled: bool = True  # false: only `fsm-server backup` by hand (cron) makes backups
    dir: Path | None = None  # default: <data_dir>/backups (keep a copy off this disk as well)
    hour: Annotated[int, _range(0, 23)] = 3  # local time of day the daily backup is taken
    # rotation: the newest backup of each of the last N days, ISO weeks and months is kept
    keep_daily: Annotated[int, _range(0, 3650)] = 7
    keep_weekly: Annotated[int, _range(0, 520)] = 4
    keep_monthly: Annotated[int, _range(0, 1200)] = 12
    # a backup older than this (and no newer one) is "missed": health report, rules `when = "backup"`
    max_age_hours: Annotated[float, _range(1.0, 87600.0)] = 26.0
    with_keys: bool = False  # add the server key, encrypted under the passphrase in passphrase_file
    passphrase_file: Path | None = None


class RetentionSection(_Section):
    """How long readings are kept whole ([retention]; docs/operations.md, "Retention and the state
    kept at ingest (server)")."""

    # readings older than this are reduced to each device's last of each day (and of each counter)
    raw_days: Annotated[int, _range(1, 36500)] = 400
    keep_days: Annotated[int, _range(1, 36500)] = 3650  # readings older than this are removed
    batch: Annotated[int, _range(1, 100_000)] = 500  # readings removed per transaction


RuleKind = Literal[
    "alert",
    "supply_level",
    "supply_days",
    "silent_client",
    "silent_device",
    "sequence_gap",
    "counter_anomaly",
    "backup",
]


class RuleSection(_Section):
    """One notification rule ([[rules]]): a condition, a scope and who gets the mail."""

    name: str
    when: RuleKind
    codes: list[str] = msgspec.field(default_factory=list)  # alert: codes/conditions; empty = any
    severities: list[str] = msgspec.field(default_factory=list)  # alert: e.g. ["critical"]; empty = any
    # supply_level: percent; supply_days: days remaining
    below: Annotated[float, _range(0.0, 36500.0)] | None = None
    supply_kinds: list[str] = msgspec.field(default_factory=list)  # supply rules: e.g. ["toner"]
    customers: list[str] = msgspec.field(default_factory=list)  # scope; empty = every customer
    to: list[str] = msgspec.field(default_factory=list)  # empty: [notify] to
    # the condition must hold (and, to clear, stay away) this long
    delay_seconds: Annotated[int, _range(0, 30 * 86400)] = 0
    cleared: bool = True  # send a "cleared" mail when it ends
    # counter_anomaly: flags newer than this are active
    lookback_hours: Annotated[float, _range(0.01, 87600.0)] = 24.0


class NotifySection(_Section):
    """Where notification mails go and how they are sent ([notify])."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: Port = 25
    security: Literal["tls", "starttls", "none"] = "starttls"
    username: str = ""
    password: Secret = Secret("")
    ca_file: Path | None = None
    timeout: Seconds = 30.0
    from_addr: str = "fsm@localhost"
    to: list[str] = msgspec.field(default_factory=list)  # default recipients of every rule
    # the timer for silence, delays and retries
    evaluate_seconds: Annotated[float, _range(0.05, 86400.0)] = 60.0
    # a failed mail is retried after this (doubling, capped at 1 h)
    retry_seconds: Annotated[float, _range(0.05, 86400.0)] = 60.0
    templates_dir: Path | None = None  # override the mail templates (opened.txt.j2, cleared.txt.j2)


class WebSection(_Section):
    """The browser portal (`fsm-server web`, docs/portal.md)."""

    host: str = "127.0.0.1"
    port: Port = 8443
    cert_file: Path | None = None  # PEM certificate chain; required unless --self-signed
    key_file: Path | None = None  # its PEM private key
    redirect_port: Port | None = None  # a plain-HTTP listener that only redirects to HTTPS
    # X-Forwarded-For/-Proto are believed only from these addresses (a reverse proxy); empty: none
    trusted_proxies: list[str] = msgspec.field(default_factory=list)
    public_url: str = ""  # how users reach the portal, for setup links; default https://host:port
    # a session unused this long ends ...
    idle_timeout_minutes: Annotated[int, _range(1, 24 * 60)] = 30
    # ... and any session ends this long after its login
    absolute_timeout_hours: Annotated[float, _range(0.1, 30 * 24.0)] = 12.0
    # a password or second-factor change needs the password given again within this
    reauth_minutes: Annotated[int, _range(1, 60)] = 5
    setup_link_hours: Annotated[float, _range(0.1, 14 * 24.0)] = 24.0  # `users add|reset` links expire
    # failed logins of one account (or address) within this window of each other count together
    throttle_window_seconds: Annotated[int, _range(1, 86400)] = 60
    throttle_free_failures: Annotated[int, _range(1, 1000)] = 10  # per account before delays start
    throttle_free_failures_per_address: Annotated[int, _range(1, 100_000)] = 50
    throttle_first_delay_seconds: Annotated[float, _range(0.05, 600.0)] = 1.0  # doubling after that ...
    throttle_max_delay_seconds: Annotated[float, _range(1.0, 86400.0)] = 900.0  # ... up to this
    # the read-only API (docs/api.md): requests a minute per token on average, up to a burst at once
    api_requests_per_minute: Annotated[int, _range(1, 100_000)] = 120
    api_burst: Annotated[int, _range(1, 10_000)] = 30
    # requests with a missing, unknown or revoked token, per address (an IPv6 /64), a minute
    api_failed_auth_per_minute: Annotated[int, _range(1, 10_000)] = 10


class ServerConfig(_Section):
    server: ServerSection = msgspec.field(default_factory=ServerSection)
    keys: KeysSection = msgspec.field(default_factory=KeysSection)
    database: DatabaseSection = msgspec.field(default_factory=DatabaseSection)
    ingest: IngestSection = msgspec.field(default_factory=IngestSection)
    mailboxes: list[MailboxSection] = msgspec.field(default_factory=list)
    receive: ReceiveSection = msgspec.field(default_factory=ReceiveSection)
    reports: ReportsSection = msgspec.field(default_factory=ReportsSection)
    orders: OrdersSection = msgspec.field(default_factory=OrdersSection)
    retention: RetentionSection = msgspec.field(default_factory=RetentionSection)
    rules: list[RuleSection] = msgspec.field(default_factory=list)
    notify: NotifySection = msgspec.field(default_factory=NotifySection)
    web: WebSection = msgspec.field(default_factory=WebSection)
    backup: BackupSection = msgspec.field(default_factory=BackupSection)


def load_config(path: str | Path | None) -> ServerConfig:
    """Load the server config; with no path, every default."""
    return configfile.load_or_defaults(path, ServerConfig)


__all__ = [
    "CONFIG_ENV",
    "CONFIG_SEARCH",
    "BackupSection",
    "DatabaseSection",
    "IngestSection",
    "KeysSection",
    "MailboxSection",
    "NotifySection",
    "OrdersSection",
    "ReceiveSection",
    "ReportsSection",
    "RetentionSection",
    "RuleKind",
    "RuleSection",
    "ServerConfig",
    "ServerSection",
    "WebSection",
    "load_config",
]
