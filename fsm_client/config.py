"""The client's TOML config, declared once with its defaults (see config.example.toml)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import msgspec

from fsm_common import configfile
from fsm_common.configfile import Secret
from fsm_protocol.errors import ConfigError

from .snmp.addresses import check_target

#: Where a config is looked for when neither --config nor $FSM_CLIENT_CONFIG names one (in order).
CONFIG_ENV = "FSM_CLIENT_CONFIG"
CONFIG_SEARCH = ("./fsm-client.toml", "/etc/fsm/client.toml")

# Every number is bounded where it is declared: a zero, negative or absurd value is refused at
# start-up naming its key, instead of a loop that never sleeps or a wait that never ends.
Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
Seconds = Annotated[float, msgspec.Meta(ge=0.05, le=3600.0)]  # a network timeout
Days = Annotated[float, msgspec.Meta(ge=0.0, le=36500.0)]
#: Smallest chunk that leaves room for the envelope header and some payload.
MIN_CHUNK_BYTES = 256


class _Section(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class ClientSection(_Section):
    id: str = "fsm-client"
    customer: str = ""
    site: str = ""
    data_dir: Path | None = None  # default: --data-dir, else ./var/client


class KeysSection(_Section):
    signing_key: Path | None = None  # default: <data_dir>/keys/client.key
    server_public_key: Path | None = None  # the dealer's server.pub


class Credential(_Section):
    """One way to talk to a device; targets name these by ``name``. PMDs never hold them."""

    name: str
    version: Literal["1", "2c", "3"] = "2c"
    community: Secret = Secret("public")
    user: str = ""
    auth_protocol: Literal["", "MD5", "SHA", "SHA-224", "SHA-256", "SHA-384", "SHA-512"] = ""
    auth_key: Secret = Secret("")
    priv_protocol: Literal["", "DES", "AES", "AES-128", "AES-192", "AES-256"] = ""
    priv_key: Secret = Secret("")
    context: str = ""


class Target(_Section):
    range: str  # CIDR, a.b.c.d-e, a single address or a host name
    exclude: list[str] = []
    credentials: list[str] = []  # tried in order; empty means all, in declaration order

    def __post_init__(self) -> None:
        # A broadcast or malformed target is refused at load, not met at the first scan.
        try:
            check_target(self.range)
            for spec in self.exclude:
                check_target(spec, exclude=True)
        except ConfigError as exc:
            raise ValueError(f"{exc.message} ({exc.hint})") from None


class SnmpSection(_Section):
    port: Port = 161
    timeout: Annotated[float, msgspec.Meta(ge=0.05, le=60.0)] = 2.0
    retries: Annotated[int, msgspec.Meta(ge=0, le=10)] = 1
    concurrency: Annotated[int, msgspec.Meta(ge=1, le=1024)] = 32  # devices read at once
    discovery_rate: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 5000  # probes per second during a sweep


class ScheduleSection(_Section):
    """When jobs run; rules are parsed by fsm_client.schedule (e.g. "daily 06:00", "every 6h")."""

    timezone: str = "UTC"  # IANA name the calendar rules are read in, e.g. "Europe/Berlin"
    report: str = "daily 06:00"  # full read of every device, then a periodic report
    scan: str = "off"  # extra full reads between reports (they go into the next report)
    discovery: str = "weekly sun 03:00"  # sweep [[targets]] for new devices
    status_poll: str = "every 90s"  # a light read of status and alerts, for critical alerts


class AlertsSection(_Section):
    enabled: bool = True
    # condition groups (jam, no_toner, service_requested, offline, door_open, no_paper,
    # output_full, supply_missing) or any raw hrPrinterDetectedErrorState / prtAlertCode name
    critical: list[str] = msgspec.field(
        default_factory=lambda: ["jam", "no_toner", "service_requested", "offline", "door_open"]
    )
    # consecutive unanswered polls before a device counts as offline
    offline_after: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 2
    report_cleared: bool = True  # send an alert report when a critical condition clears


TransportKind = Literal["smtp", "filedrop", "https"]
TRANSPORT_KINDS: tuple[str, ...] = ("smtp", "filedrop", "https")


class TransportSection(_Section):
    """How reports leave: one transport, or several tried in order for each report."""

    kind: TransportKind | list[TransportKind] = "smtp"  # e.g. "https", or ["https", "smtp"]
    # https: the dealer's server (POST <url>/api/v1/envelopes); http:// is refused
    url: str = ""
    ca_file: Path | None = None  # https: CA to verify the server with (default: the system's CAs)
    pin_sha256: list[str] = []  # https: accepted SPKI SHA-256 pins of the server's key (base64)
    # https: http://[user:password@]host:port of an outbound proxy (default: $HTTPS_PROXY)
    proxy: Secret = Secret("")
    timeout: Seconds = 30.0  # https: seconds for connecting and for each read or write

    @property
    def kinds(self) -> list[str]:
        """The transports in the order they are tried."""
        return [self.kind] if isinstance(self.kind, str) else list(self.kind)

    def __post_init__(self) -> None:
        kinds = self.kinds
        if not kinds:
            raise ValueError(f"kind is an empty list: name at least one of {', '.join(TRANSPORT_KINDS)}")
        if len(set(kinds)) != len(kinds):
            raise ValueError(f"kind {kinds} names a transport twice")
        if "https" in kinds:
            if not self.url:
                raise ValueError('kind "https" needs url = "https://SERVER[:PORT]"')
            from .transports.https import check_url

            try:
                check_url(self.url, "url")
            except ConfigError as exc:
                raise ValueError(f"{exc.message} ({exc.hint})") from None


class SmtpSection(_Section):
    host: str = "localhost"
    port: Port = 25
    security: Literal["tls", "starttls", "none"] = "starttls"  # "none" only on a trusted relay
    username: str = ""
    password: Secret = Secret("")
    ca_file: Path | None = None  # default: the system's trusted CAs
    from_addr: str = msgspec.field(name="from", default="fsm-client@localhost")
    to: list[str] = []  # the dealer's report mailbox
    timeout: Seconds = 30.0


class FileDropSection(_Section):
    directory: Path | None = None  # where envelopes are written for air-gapped sites


class OutboxSection(_Section):
    # largest mail attachment; bigger reports are chunked
    chunk_bytes: Annotated[int, msgspec.Meta(ge=MIN_CHUNK_BYTES, le=1 << 30)] = 5 * 1024 * 1024
    retention_days: Days = 30.0  # sealed envelopes kept after sending, for `fsm-client resend`
    plaintext_retention_days: Days = 365.0  # report plaintexts kept for `fsm-client outbox show`
    # seconds before the first retry when the relay fails
    retry_initial: Annotated[float, msgspec.Meta(ge=0.05, le=86400.0)] = 30.0
    # cap of the exponential backoff, seconds
    retry_max: Annotated[float, msgspec.Meta(ge=0.05, le=7 * 86400.0)] = 1800.0
    redact_ips: bool = False  # `outbox show` hides device IP addresses
    redact_locations: bool = False  # `outbox show` hides sysLocation / contact

    def __post_init__(self) -> None:
        if self.retry_max < self.retry_initial:
            raise ValueError(
                f"retry_max ({self.retry_max}) is below retry_initial ({self.retry_initial}); "
                "the backoff starts at retry_initial and is capped at retry_max"
            )


class PmdUpdateSection(_Section):
    """Where signed PMD bundles come from (see docs/pmd-format.md, "PMD bundles")."""

    url: str = ""  # https://... of the newest bundle; certificate verified
    directory: Path | None = None  # or a folder an operator syncs bundles (*.zip) into
    ca_file: Path | None = None  # CA bundle for url (default: the system's trusted CAs)
    publisher_keys: list[str] = []  # pinned publisher public keys: one-line text or a .pub path
    hour: Annotated[int, msgspec.Meta(ge=0, le=23)] = 4  # daily check at this hour, schedule.timezone
    timeout: Seconds = 60.0  # seconds for the download to make progress


class PmdSection(_Section):
    local_dir: Path | None = None  # an operator's own PMDs; win over bundles (default <data_dir>/pmd)
    update: PmdUpdateSection = msgspec.field(default_factory=PmdUpdateSection)


class ClientConfig(_Section):
    client: ClientSection = msgspec.field(default_factory=ClientSection)
    keys: KeysSection = msgspec.field(default_factory=KeysSection)
    snmp: SnmpSection = msgspec.field(default_factory=SnmpSection)
    credentials: list[Credential] = msgspec.field(default_factory=lambda: [Credential(name="public")])
    targets: list[Target] = []
    schedule: ScheduleSection = msgspec.field(default_factory=ScheduleSection)
    alerts: AlertsSection = msgspec.field(default_factory=AlertsSection)
    transport: TransportSection = msgspec.field(default_factory=TransportSection)
    smtp: SmtpSection = msgspec.field(default_factory=SmtpSection)
    filedrop: FileDropSection = msgspec.field(default_factory=FileDropSection)
    outbox: OutboxSection = msgspec.field(default_factory=OutboxSection)
    pmd: PmdSection = msgspec.field(default_factory=PmdSection)


def load_config(path: str | Path | None) -> ClientConfig:
    """Load the client config; with no path, every default."""
    return configfile.load_or_defaults(path, ClientConfig)


__all__ = [
    "CONFIG_ENV",
    "CONFIG_SEARCH",
    "MIN_CHUNK_BYTES",
    "TRANSPORT_KINDS",
    "AlertsSection",
    "ClientConfig",
    "ClientSection",
    "Credential",
    "FileDropSection",
    "KeysSection",
    "OutboxSection",
    "PmdSection",
    "PmdUpdateSection",
    "ScheduleSection",
    "SmtpSection",
    "SnmpSection",
    "Target",
    "TransportKind",
    "TransportSection",
    "load_config",
]
